"""The GeM CUDA kernel (``gem_pool.cu``): NVRTC compilation (any machine) and CuPy launches (GPU machines).

Reuses Lab 04's tooling (:mod:`trtlab.kernels`): ``compile_source`` for NVRTC with line-numbered errors,
``require_gpu``/``as_stream``/``from_device_pointer`` for launches on any stream, ``cuda_timer`` for benchmarks.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from trtlab.errors import InputMismatch
from trtlab.plugins import BLOCK, DEFAULT_EPS, DEFAULT_P, PLUGIN_DIR, launch_grid, output_shape

__all__ = ["AOT_KERNEL", "JIT_KERNEL", "SOURCE_FILE", "aot_ptx", "compile_kernel", "gem_pool_gpu", "launch",
           "source"]

SOURCE_FILE = PLUGIN_DIR / "gem_pool.cu"
JIT_KERNEL = "gem_pool_f32"
AOT_KERNEL = "gem_pool_aot_f32"
#: PTX for compute capability 7.5 is JIT-compiled by the driver on every newer GPU (Turing and later).
PORTABLE_ARCH = "compute_75"


def source() -> str:
    """The CUDA C text of the kernel."""
    return SOURCE_FILE.read_text()


def _float_literal(value: float) -> str:
    text = repr(float(value))
    return text + ("f" if ("." in text or "e" in text) else ".0f")


def compile_kernel(*, p: float | None = None, eps: float | None = None, arch: str = PORTABLE_ARCH) -> Any:
    """Compile ``gem_pool.cu`` to PTX with NVRTC (no GPU needed). With ``p`` and ``eps`` the AOT entry point is
    compiled too, with both values baked in. Returns Lab 04's ``CompileResult`` (raise_for_errors() to raise)."""
    from trtlab.kernels import compile_source

    options = []
    if p is not None:
        options += [f"-DGEM_P={_float_literal(p)}", f"-DGEM_EPS={_float_literal(DEFAULT_EPS if eps is None else eps)}"]
    return compile_source(source(), name="gem_pool.cu", arch=arch, options=options)


@functools.cache
def aot_ptx(p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> str:
    """The PTX of ``gem_pool_aot_f32`` for one (p, eps): what ``tensorrt.plugin.aot_impl`` embeds in the engine."""
    return compile_kernel(p=p, eps=eps).raise_for_errors().ptx


@functools.cache
def _module() -> Any:
    from trtlab.kernels import require_gpu

    cupy = require_gpu("the GemPool kernel")
    module = cupy.RawModule(code=source(), options=("--std=c++17",))
    module.compile()
    return module


def launch(x_ptr: int, y_ptr: int, planes: int, hw: int, p: float, eps: float, stream: Any = None) -> None:
    """Launch ``gem_pool_f32`` on raw device pointers (what a TensorRT plugin's enqueue receives)."""
    from trtlab.kernels import as_stream

    if planes <= 0 or hw <= 0:
        raise InputMismatch(f"GemPool launch: planes={planes}, hw={hw}; expected both > 0")
    fn = _module().get_function(JIT_KERNEL)
    grid = launch_grid(planes, BLOCK)
    with as_stream(stream):
        fn((grid,), (BLOCK,), (np.uint64(x_ptr), np.float32(p), np.float32(eps), np.int32(planes), np.int32(hw),
                               np.uint64(y_ptr)))


def gem_pool_gpu(x: Any, p: float = DEFAULT_P, eps: float = DEFAULT_EPS, *, out: Any = None,
                 stream: Any = None) -> Any:
    """GeM of a float32 N×C×H×W GPU array (CuPy, torch CUDA, NumPy is uploaded) → CuPy N×C×1×1."""
    from trtlab.kernels import as_device_array, require_gpu

    cupy = require_gpu("the GemPool kernel")
    xd = as_device_array(x, stream=stream)
    if xd.dtype != np.float32:
        raise InputMismatch(f"GemPool kernel: dtype {xd.dtype}; expected float32 (cast with .astype(np.float32))")
    xd = cupy.ascontiguousarray(xd)
    shape = output_shape(xd.shape)
    if out is None:
        out = cupy.empty(shape, dtype=cupy.float32)
    elif tuple(out.shape) != shape or out.dtype != np.float32:
        raise InputMismatch(f"GemPool kernel: out has shape {tuple(out.shape)} {out.dtype}; expected {shape} float32")
    n, c, h, w = xd.shape
    launch(int(xd.data.ptr), int(out.data.ptr), n * c, h * w, p, eps, stream)
    return out
