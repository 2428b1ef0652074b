"""The GeM CUDA kernel (``gem_pool.cu``): NVRTC compilation (any machine) and CuPy launches (GPU machines).

The per-plane reduction, ``gem_plane``, is Lab 05's kernel exercise: ``gem_plane.cuh`` is the course's answer, and
:func:`use` makes a learner's (checked) version the one every launch, AOT PTX and plugin compiles.

Reuses Lab 04's tooling (:mod:`trtlab.kernels`): ``compile_source`` for NVRTC with line-numbered errors,
``require_gpu``/``as_stream``/``from_device_pointer`` for launches on any stream, ``cuda_timer`` for benchmarks.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from trtlab.errors import InputMismatch
from trtlab.i18n import _
from trtlab.plugins import BLOCK, DEFAULT_EPS, DEFAULT_P, PLUGIN_DIR, launch_grid, output_shape

__all__ = ["AOT_KERNEL", "GEM_PLANE_FILE", "JIT_KERNEL", "SOURCE_FILE", "aot_ptx", "compile_kernel", "gem_pool_gpu",
           "in_use", "launch", "source", "use"]

SOURCE_FILE = PLUGIN_DIR / "gem_pool.cu"
GEM_PLANE_FILE = PLUGIN_DIR / "gem_plane.cuh"
GEM_PLANE_INCLUDE = '#include "gem_plane.cuh"'
JIT_KERNEL = "gem_pool_f32"
AOT_KERNEL = "gem_pool_aot_f32"
#: PTX for compute capability 7.5 is JIT-compiled by the driver on every newer GPU (Turing and later).
PORTABLE_ARCH = "compute_75"


#: The learner's ``gem_plane`` that :func:`use` selected (None: the course's ``gem_plane.cuh``).
_SELECTED: dict[str, str | None] = {"gem_plane": None}


def source(gem_plane: str | None = None) -> str:
    """The CUDA C text of the kernel, with ``gem_plane`` (a learner's device function; default: the one :func:`use`
    selected, else the course's ``gem_plane.cuh``) pasted where ``gem_pool.cu`` includes it."""
    from trtlab.kernels import clean_exercise_source

    chosen = gem_plane if gem_plane is not None else _SELECTED["gem_plane"]
    device_fn = clean_exercise_source(chosen) if chosen is not None else GEM_PLANE_FILE.read_text()
    return SOURCE_FILE.read_text().replace(GEM_PLANE_INCLUDE, device_fn.rstrip() + "\n")


def use(gem_plane: str | None, *, checked: Any = True) -> str:
    """Make ``gem_plane`` (a learner's CUDA C, whose check result is ``checked``) the device function of every later
    launch, AOT PTX and plugin build; ``None`` or a failed check selects the course's. Returns what was chosen."""
    if gem_plane is None or not checked:
        _SELECTED["gem_plane"] = None
        why = _("no gem_plane given") if gem_plane is None else _("your gem_plane did not pass its check")
        return _("{why}: the plugin uses the course's kernel ({file}), announced here").format(
            why=why, file=GEM_PLANE_FILE.name)
    compile_kernel(gem_plane=gem_plane).raise_for_errors()
    _SELECTED["gem_plane"] = gem_plane
    return _("the plugin uses YOUR gem_plane: every launch, the AOT PTX and the engine compile it")


def in_use() -> str:
    """Whose ``gem_plane`` the kernel is compiled with now: "yours" or "the course's"."""
    return "yours" if _SELECTED["gem_plane"] is not None else "the course's"


def _float_literal(value: float) -> str:
    text = repr(float(value))
    return text + ("f" if ("." in text or "e" in text) else ".0f")


def compile_kernel(*, p: float | None = None, eps: float | None = None, arch: str = PORTABLE_ARCH,
                   gem_plane: str | None = None) -> Any:
    """Compile ``gem_pool.cu`` (with ``gem_plane`` as in :func:`source`) to PTX with NVRTC (no GPU needed). With
    ``p`` and ``eps`` the AOT entry point is compiled too, with both values baked in. Returns Lab 04's
    ``CompileResult`` (raise_for_errors() to raise)."""
    from trtlab.kernels import compile_source

    options = []
    if p is not None:
        options += [f"-DGEM_P={_float_literal(p)}", f"-DGEM_EPS={_float_literal(DEFAULT_EPS if eps is None else eps)}"]
    return compile_source(source(gem_plane), name="gem_pool.cu", arch=arch, options=options)


def aot_ptx(p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> str:
    """The PTX of ``gem_pool_aot_f32`` for one (p, eps): what ``tensorrt.plugin.aot_impl`` embeds in the engine."""
    return _aot_ptx(source(), p, eps)


@functools.cache
def _aot_ptx(text: str, p: float, eps: float) -> str:
    from trtlab.kernels import compile_source

    options = [f"-DGEM_P={_float_literal(p)}", f"-DGEM_EPS={_float_literal(eps)}"]
    return compile_source(text, name="gem_pool.cu", arch=PORTABLE_ARCH, options=options).raise_for_errors().ptx


@functools.cache
def _module(text: str) -> Any:
    from trtlab.kernels import require_gpu

    cupy = require_gpu("the GemPool kernel")
    module = cupy.RawModule(code=text, options=("--std=c++17",))
    module.compile()
    return module


def launch(x_ptr: int, y_ptr: int, planes: int, hw: int, p: float, eps: float, stream: Any = None, *,
           gem_plane: str | None = None) -> None:
    """Launch ``gem_pool_f32`` on raw device pointers (what a TensorRT plugin's enqueue receives), compiled with
    ``gem_plane`` as in :func:`source`."""
    from trtlab.kernels import as_stream

    if planes <= 0 or hw <= 0:
        raise InputMismatch(_("GemPool launch: planes={planes}, hw={hw}; expected both > 0").format(planes=planes, hw=hw))
    fn = _module(source(gem_plane)).get_function(JIT_KERNEL)
    grid = launch_grid(planes, BLOCK)
    with as_stream(stream):
        fn((grid,), (BLOCK,), (np.uint64(x_ptr), np.float32(p), np.float32(eps), np.int32(planes), np.int32(hw),
                               np.uint64(y_ptr)))


def gem_pool_gpu(x: Any, p: float = DEFAULT_P, eps: float = DEFAULT_EPS, *, out: Any = None,
                 stream: Any = None, gem_plane: str | None = None) -> Any:
    """GeM of a float32 N×C×H×W GPU array (CuPy, torch CUDA, NumPy is uploaded) → CuPy N×C×1×1."""
    from trtlab.kernels import as_device_array, require_gpu

    cupy = require_gpu("the GemPool kernel")
    xd = as_device_array(x, stream=stream)
    if xd.dtype != np.float32:
        raise InputMismatch(_("GemPool kernel: dtype {dtype}; expected float32 (cast with .astype(np.float32))").format(
            dtype=xd.dtype))
    xd = cupy.ascontiguousarray(xd)
    shape = output_shape(xd.shape)
    if out is None:
        out = cupy.empty(shape, dtype=cupy.float32)
    elif tuple(out.shape) != shape or out.dtype != np.float32:
        raise InputMismatch(_("GemPool kernel: out has shape {got} {dtype}; expected {shape} float32").format(
            got=tuple(out.shape), dtype=out.dtype, shape=shape))
    n, c, h, w = xd.shape
    launch(int(xd.data.ptr), int(out.data.ptr), n * c, h * w, p, eps, stream, gem_plane=gem_plane)
    return out
