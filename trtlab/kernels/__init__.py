"""CUDA pre- and post-processing kernels (Lab 04): CUDA C sources in ``.cu`` files beside this module, run with
CuPy (``RawModule``), compiled with NVRTC everywhere, and checked against NumPy references.

Three layers, so every machine can do something real:

- **NumPy references** (``*_ref``): the ground truth on any machine, float64, written for clarity, tested in CI
  against OpenCV and torch on real photos.
- **NVRTC compile checks** (:func:`compile_source`, :func:`compile_all`): every kernel is compiled with
  ``cuda.bindings.nvrtc``, which needs no GPU, so syntax and type errors surface with line numbers in CPU-only CI.
- **GPU wrappers** (:func:`preprocess`, :func:`letterbox`, :func:`softmax_topk`): launch the kernels through CuPy
  on a given CUDA stream (CuPy's, torch's or TensorRT's) and return CuPy arrays that hand over to torch or an
  engine without a host copy (DLPack, raw device pointers: :func:`to_torch`, :func:`device_pointer`,
  :func:`from_device_pointer`). Convenient, and they decide everything on every call.
- **Plans** (:class:`PreprocessPlan`, :class:`SoftmaxTopkPlan`, :class:`FramePipeline`): the same launches
  decided once (``launch.py``), so each call allocates nothing and waits for nothing and a whole frame-to-result
  step can be captured into one CUDA graph; :mod:`trtlab.kernels.cvcuda_ops` is the library baseline (CV-CUDA).

The pixel-centre convention is stated once, in ``bilinear_taps.cuh``: OpenCV ``INTER_LINEAR`` /
torch ``align_corners=False, antialias=False`` (centres aligned, edges clamped).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from trtlab.errors import BuildError, InputMismatch, UnsupportedFeature
from trtlab.kernels.launch import (BLOCK, EXACT_BLOCK, EXACT_PIXELS, MAX_CLASSES, PIXELS_PER_THREAD, POST_BLOCK, TILE,
                                   TILE_BLOCK, Launch, bilinear_taps_ref, channel_swap, exact_scale, folded_norm,
                                   launch_config, preprocess_bytes, preprocess_launch, softmax_topk_launch)

__all__ = [
    "KERNEL_DIR",
    "SOURCES",
    "CompileResult",
    "KernelCompileError",
    "as_device_array",
    "as_stream",
    "bilinear_taps_ref",
    "clean_exercise_source",
    "compile_all",
    "compile_source",
    "copy_bandwidth",
    "cpu_preprocess",
    "cuda_timer",
    "device_pointer",
    "exact_scale",
    "from_device_pointer",
    "kernel_source",
    "launch_config",
    "letterbox",
    "letterbox_matrix",
    "letterbox_ref",
    "load_module",
    "preprocess",
    "preprocess_ref",
    "require_gpu",
    "resize_bilinear_ref",
    "sample_frames",
    "sample_photos",
    "softmax_topk",
    "softmax_topk_ref",
    "to_torch",
    "warp_affine_ref",
    "write_sample_photos",
    # launch decisions (launch.py), plans and the GPU pipeline (plan.py, pipeline.py: imported on first use)
    "Launch", "channel_swap", "folded_norm", "preprocess_bytes", "preprocess_launch", "softmax_topk_launch",
    "PreprocessPlan", "SoftmaxTopkPlan", "FramePipeline", "GraphTimes", "graph_times", "cvcuda_ops",
]

#: Names served by submodules that need CuPy or torch, imported on first use (``kernels.PreprocessPlan``).
_LAZY = {"PreprocessPlan": "plan", "SoftmaxTopkPlan": "plan", "GraphTimes": "plan", "graph_times": "plan",
         "FramePipeline": "pipeline", "cvcuda_ops": None, "plan": None, "pipeline": None}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f"trtlab.kernels.{_LAZY[name] or name}")
        return module if _LAZY[name] is None else getattr(module, name)
    raise AttributeError(f"module 'trtlab.kernels' has no attribute {name!r}")

KERNEL_DIR = Path(__file__).resolve().parent
#: The kernel sources of the package; ``bilinear_taps.cuh`` is pasted into ``preprocess.cu`` where it is included.
SOURCES = ("preprocess.cu", "postprocess.cu")
TAPS_INCLUDE = '#include "bilinear_taps.cuh"'


class KernelCompileError(BuildError):
    """NVRTC (or CuPy's compile) rejected a kernel source; the message lists each error with its line number."""


# ---------------------------------------------------------------- sources and NVRTC


_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*$", re.M)


def clean_exercise_source(text: str) -> str:
    """A learner's CUDA C from a notebook string: the ``### BEGIN/END SOLUTION`` lines of a solution notebook are
    blanked (the C preprocessor would reject them), keeping every other line where it was."""
    return _MARKER.sub("", text)


def kernel_source(name: str = "preprocess.cu", *, bilinear_taps: str | None = None) -> str:
    """The CUDA C text of a packaged kernel, with ``bilinear_taps.cuh`` (or a learner's version) pasted in."""
    text = _read_source(name)
    if bilinear_taps is not None and "NotImplementedError" in bilinear_taps:
        raise NotImplementedError("bilinear_taps: exercise 1 of Lab 04 is not done yet (the string still holds the "
                                  "`raise NotImplementedError` placeholder); write the CUDA C body first")
    if TAPS_INCLUDE in text:
        taps = clean_exercise_source(bilinear_taps) if bilinear_taps is not None else _read_source("bilinear_taps.cuh")
        text = text.replace(TAPS_INCLUDE, taps.rstrip() + "\n")
    return text


@functools.cache
def _read_source(name: str) -> str:
    path = KERNEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"no kernel source {name!r} in {KERNEL_DIR}; known: {', '.join(SOURCES)}")
    return path.read_text()


@dataclass
class CompileResult:
    """What NVRTC said about one source: truthy when it compiled; ``errors`` as (line, message) pairs."""

    name: str
    ok: bool
    log: str
    ptx: str = ""
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.ok

    @property
    def kernels(self) -> list[str]:
        """The ``extern "C"`` entry points found in the PTX."""
        return re.findall(r"\.entry\s+(\w+)", self.ptx)

    def __repr__(self) -> str:
        if self.ok:
            return (f"CompileResult({self.name}: compiled in {self.seconds * 1e3:.0f} ms, "
                    f"{len(self.kernels)} kernels: {', '.join(self.kernels)})")
        first = "; ".join(f"line {line}: {msg}" for line, msg in self.errors[:3]) or self.log.strip()[:300]
        return f"CompileResult({self.name}: FAILED, {len(self.errors)} error(s): {first})"

    def raise_for_errors(self) -> "CompileResult":
        if not self.ok:
            listing = "\n".join(f"  line {line}: {msg}" for line, msg in self.errors) or self.log
            raise KernelCompileError(f"{self.name} does not compile (NVRTC):\n{listing}\n"
                                     "Fix the lines named above; the line numbers count from the first line of "
                                     "the source you passed.")
        return self


_ERROR_LINE = re.compile(r"^(?P<file>[^\s(]+)\((?P<line>\d+)\): (?:catastrophic )?error: (?P<msg>.*)$")


def compile_source(source: str, *, name: str = "kernel.cu", arch: str = "compute_90",
                   options: Sequence[str] = ()) -> CompileResult:
    """Compile CUDA C to PTX with NVRTC (no GPU needed) and report errors with their line numbers."""
    import time

    try:
        from cuda.bindings import nvrtc
    except ImportError as err:
        raise UnsupportedFeature("NVRTC is not available: cuda-bindings does not import "
                                 f"({err}); pip install cuda-bindings nvidia-cuda-nvrtc") from err

    def ok(result: Any) -> None:
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise UnsupportedFeature(f"NVRTC call failed with {result}; is libnvrtc installed "
                                     "(pip install nvidia-cuda-nvrtc)?")

    start = time.perf_counter()
    status, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    ok(status)
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", *(o.encode() for o in options)]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        status, size = nvrtc.nvrtcGetProgramLogSize(prog)
        ok(status)
        log = b" " * size
        ok(nvrtc.nvrtcGetProgramLog(prog, log)[0])
        log_text = log.rstrip(b"\x00 ").decode(errors="replace")
        ptx = ""
        if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
            status, size = nvrtc.nvrtcGetPTXSize(prog)
            ok(status)
            buf = b" " * size
            ok(nvrtc.nvrtcGetPTX(prog, buf)[0])
            ptx = buf.rstrip(b"\x00").decode()
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    errors = [(int(m["line"]), m["msg"].strip()) for m in map(_ERROR_LINE.match, log_text.splitlines()) if m]
    return CompileResult(name, result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log_text, ptx, errors,
                         time.perf_counter() - start)


def compile_all(*, arch: str = "compute_90") -> dict[str, CompileResult]:
    """NVRTC-compile every packaged kernel source (what CPU-only CI does to keep the kernels honest)."""
    return {name: compile_source(kernel_source(name), name=name, arch=arch) for name in SOURCES}


# ---------------------------------------------------------------- NumPy references (the ground truth)


def resize_bilinear_ref(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one H×W×C image to ``out_hw`` in float64 (no rounding, no antialiasing)."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    oh, ow = out_hw
    y0, y1, wy = bilinear_taps_ref(np.arange(oh), h / oh, h)
    x0, x1, wx = bilinear_taps_ref(np.arange(ow), w / ow, w)
    wx, wy = wx[None, :, None], wy[:, None, None]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def _normalise_chw(resized: np.ndarray, mean: Sequence[float], std: Sequence[float], swap_rb: bool) -> np.ndarray:
    x = resized[..., ::-1] if swap_rb else resized
    x = (x / 255.0 - np.asarray(mean, np.float64)) / np.asarray(std, np.float64)
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def preprocess_ref(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *,
                   mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                   input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float64) -> np.ndarray:
    """What :func:`preprocess` computes, in NumPy: uint8 HWC images → N×3×H×W, (x/255 - mean)/std."""
    swap = channel_swap(input_order, output_order)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = np.stack([_normalise_chw(resize_bilinear_ref(_check_hwc3(im), out_hw), mean, std, swap) for im in batch])
    return out.astype(dtype)


def letterbox_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """The 2×3 affine matrix (input pixel centre → output pixel centre) of an aspect-preserving, centred resize.

    Same scale on both axes, padding split evenly; centres aligned as in :func:`resize_bilinear_ref`:
    (x_dst + 0.5) = s * (x_src + 0.5) + pad_x. Invert it (``cv2.invertAffineTransform``) to map output to input,
    e.g. to bring a detector's boxes back to the original image.
    """
    (h, w), (oh, ow) = src_hw, dst_hw
    s = min(oh / h, ow / w)
    pad_x, pad_y = (ow - s * w) / 2, (oh - s * h) / 2
    return np.array([[s, 0.0, pad_x + 0.5 * s - 0.5], [0.0, s, pad_y + 0.5 * s - 0.5]])


def _invert_affine(m: np.ndarray) -> np.ndarray:
    full = np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_affine_ref(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int], *,
                    border: float = 114.0) -> np.ndarray:
    """Bilinear affine warp with a constant border in float64, as ``cv2.warpAffine(INTER_LINEAR,
    BORDER_CONSTANT)`` defines it (``matrix``: input → output, pixel i's centre at coordinate i)."""
    img = np.asarray(image, dtype=np.float64)
    h, w, c = img.shape
    oh, ow = out_hw
    inv = _invert_affine(matrix)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    wx, wy = (sx - x0)[..., None], (sy - y0)[..., None]

    def tap(xi: np.ndarray, yi: np.ndarray) -> np.ndarray:
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        values = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        return np.where(inside[..., None], values, border)

    top = tap(x0, y0) * (1 - wx) + tap(x0 + 1, y0) * wx
    bottom = tap(x0, y0 + 1) * (1 - wx) + tap(x0 + 1, y0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def letterbox_ref(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *, border: float = 114.0,
                  mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                  input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float64) -> np.ndarray:
    """What :func:`letterbox` computes, in NumPy: N×3×H×W."""
    swap = channel_swap(input_order, output_order)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = []
    for im in batch:
        im = _check_hwc3(im)
        warped = warp_affine_ref(im, letterbox_matrix(im.shape[:2], out_hw), out_hw, border=border)
        out.append(_normalise_chw(warped, mean, std, swap))
    return np.stack(out).astype(dtype)


def softmax_topk_ref(logits: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-k probabilities, top-k class indices, all probabilities) per row; ties go to the smaller index."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise InputMismatch(f"logits: got shape {x.shape}, expected (N, classes)")
    e = np.exp(x - x.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(probs, idx, axis=1), idx, probs


def _check_hwc3(image: Any) -> np.ndarray:
    shape, dtype = tuple(image.shape), str(image.dtype)
    if len(shape) != 3 or shape[2] != 3 or dtype != "uint8":
        raise InputMismatch(f"image: got shape {shape} dtype {dtype}, expected (H, W, 3) uint8 (HWC, as "
                            "cv2.imread or PIL give); convert grey images with cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)")
    return image


# ---------------------------------------------------------------- GPU: CuPy modules, streams, interop


def require_gpu(what: str = "running a CUDA kernel") -> Any:
    """CuPy, if it can launch kernels here; else :class:`UnsupportedFeature` saying why and what to do."""
    from trtlab.env import capabilities

    if not capabilities().cupy_runs_kernels:
        raise UnsupportedFeature(f"{what} needs an NVIDIA GPU with CuPy; this machine has "
                                 f"{'a GPU but no working CuPy' if capabilities().has_gpu else 'no NVIDIA GPU'}. "
                                 "Use the NumPy references (trtlab.kernels.*_ref) here, or run on a GPU machine "
                                 "with pip install cupy-cuda13x")
    import cupy

    return cupy


@functools.cache
def _module(source_hash: str, source: str, options: tuple[str, ...]) -> Any:
    import cupy

    try:
        module = cupy.RawModule(code=source, options=("--std=c++17", *options))
        module.compile()
    except cupy.cuda.compiler.CompileException as err:
        raise KernelCompileError(f"CuPy could not compile the kernel: {err}") from err
    return module


def load_module(name: str = "preprocess.cu", *, bilinear_taps: str | None = None,
                pixels_per_thread: int = PIXELS_PER_THREAD, defines: dict[str, int] | None = None) -> Any:
    """The compiled ``cupy.RawModule`` of a packaged source (cached per source text and options); ``defines`` adds
    ``-D`` macros (the benchmark's variants, e.g. ``{"U8_MAGIC": 1}``)."""
    key = (name, bilinear_taps, int(pixels_per_thread), tuple(sorted((defines or {}).items())))
    if key in _LOADED:
        return _LOADED[key]
    require_gpu(f"loading {name}")
    source = kernel_source(name, bilinear_taps=bilinear_taps)
    options: tuple[str, ...] = (f"-DPIXELS_PER_THREAD={int(pixels_per_thread)}",) if name == "preprocess.cu" else ()
    options += tuple(f"-D{macro}={int(value)}" for macro, value in sorted((defines or {}).items()))
    _LOADED[key] = _module(hashlib.sha256(source.encode()).hexdigest(), source, options)
    return _LOADED[key]


_LOADED: dict[tuple, Any] = {}


def as_stream(stream: Any = None) -> Any:
    """A CuPy stream for ``stream``: None (CuPy's current stream), a CuPy stream, a ``torch.cuda.Stream``, or a raw
    ``cudaStream_t`` handle as int (e.g. the stream TensorRT's ``execute_async_v3`` runs on)."""
    import cupy

    if stream is None:
        return cupy.cuda.get_current_stream()
    if isinstance(stream, cupy.cuda.Stream) or (type(stream).__module__.startswith("cupy") and hasattr(stream, "ptr")):
        return stream  # a CuPy Stream or ExternalStream
    if hasattr(stream, "cuda_stream"):  # torch.cuda.Stream
        return _external_stream(int(stream.cuda_stream))
    if isinstance(stream, int) or hasattr(stream, "__int__"):
        return _external_stream(int(stream))
    raise InputMismatch(f"stream: got {type(stream).__name__}, expected None, a cupy stream, a torch.cuda.Stream "
                        "or a cudaStream_t handle (int)")


def _external_stream(handle: int) -> Any:
    """A CuPy view of a raw ``cudaStream_t`` (``ExternalStream``, deprecated in CuPy 14 but still the way to wrap a
    bare handle such as the one TensorRT is given)."""
    import warnings

    import cupy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cupy.cuda.ExternalStream(handle)


def as_device_array(x: Any, *, stream: Any = None) -> Any:
    """A CuPy view of ``x`` without copying when it already lives on the GPU (CuPy, torch via DLPack, anything
    with ``__cuda_array_interface__``); NumPy arrays are uploaded on ``stream``."""
    import cupy

    if isinstance(x, cupy.ndarray):
        return x
    if hasattr(x, "__dlpack__") and getattr(x, "is_cuda", False):
        return cupy.from_dlpack(x)
    if hasattr(x, "__cuda_array_interface__"):
        return cupy.asarray(x)
    with as_stream(stream):
        return cupy.asarray(np.ascontiguousarray(x))


def to_torch(x: Any) -> Any:
    """A torch tensor sharing ``x``'s GPU memory (DLPack): no copy, same pointer."""
    import torch

    return torch.from_dlpack(x)


def device_pointer(x: Any) -> int:
    """The raw device address of a GPU array (what ``context.set_tensor_address`` takes)."""
    if hasattr(x, "data_ptr"):
        return int(x.data_ptr())
    return int(x.data.ptr)


def from_device_pointer(ptr: int, shape: Sequence[int], dtype: Any, *, owner: Any = None) -> Any:
    """A CuPy array over memory someone else allocated (a TensorRT output buffer); ``owner`` keeps it alive."""
    import cupy

    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    memory = cupy.cuda.UnownedMemory(int(ptr), size, owner)
    return cupy.ndarray(tuple(shape), dtype, cupy.cuda.MemoryPointer(memory, 0))


def _images_on_device(images: Any, stream: Any) -> Any:
    x = as_device_array(images, stream=stream)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8:
        raise InputMismatch(f"images: got shape {tuple(x.shape)} dtype {x.dtype}, expected (N, H, W, 3) or "
                            "(H, W, 3) uint8 (HWC); for images of different sizes call once per image with out=")
    if x.strides[3] != 1 or x.strides[2] != 3:
        raise InputMismatch(f"images: got strides {x.strides}; pixels must be packed (W, 3) uint8 rows; "
                            "make them so with cupy.ascontiguousarray(images)")
    return x


def _output(out: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    import cupy

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise InputMismatch(f"dtype: got {dtype}, expected float32 or float16")
    if out is None:
        return cupy.empty(shape, dtype)
    out = as_device_array(out)
    if tuple(out.shape) != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise InputMismatch(f"out: got shape {tuple(out.shape)} {out.dtype}, expected a C-contiguous {shape} {dtype}")
    return out


def preprocess(images: Any, out_hw: tuple[int, int], *, mean: Sequence[float] = (0.0, 0.0, 0.0),
               std: Sequence[float] = (1.0, 1.0, 1.0), input_order: str = "BGR", output_order: str = "RGB",
               dtype: Any = np.float32, out: Any = None, stream: Any = None,
               method: str = "auto", pixels_per_thread: int = PIXELS_PER_THREAD, bilinear_taps: str | None = None,
               launch: Callable[..., Any] | None = None, defines: dict[str, int] | None = None) -> Any:
    """Fused pre-processing on the GPU: uint8 N×H×W×3 → bilinear resize to ``out_hw`` → channel order →
    (x/255 - mean)/std → N×3×h×w ``dtype`` (float32 or float16), one kernel launch on ``stream``.

    ``images`` may be CuPy, a torch CUDA tensor (no copy) or NumPy (uploaded). ``out`` may be any GPU array of the
    right shape, e.g. a slice of a batch or an engine's input buffer. Matches :func:`preprocess_ref`.
    ``method``:

    - "auto" (default): the **exact-scale fast kernel** when :func:`exact_scale` allows it, i.e. when the output
      has the input's size (the resize is the identity) or exactly half of it on both axes (each output pixel is
      the mean of a 2×2 block, OpenCV's convention at scale 2), with 16-byte aligned rows; otherwise "direct".
      A learner's ``bilinear_taps`` or ``launch`` always selects "direct", so their code is what runs.
    - "exact": the exact-scale kernel, or :class:`InputMismatch` saying why it does not apply.
    - "direct": the general kernel, any scale (each thread loads its 4 taps × 3 channels from global memory).
    - "tiled": the general kernel staging its input footprint in shared memory (scales <= 2 only; measured
      slower than "direct" on an H200, kept as a measured alternative).

    All methods compute the same values (the exact-scale blends, with weights 0 or ½ of integers, are exact in
    float32). ``pixels_per_thread`` picks the direct kernel's compiled variant; ``bilinear_taps`` (CUDA C) and
    ``launch`` (a function like :func:`launch_config`) swap in a learner's versions (direct kernel).
    """
    require_gpu("trtlab.kernels.preprocess")
    cs = as_stream(stream)
    with cs:
        x = _images_on_device(images, cs)
        n, h, w, _ = x.shape
        y = _output(out, (n, 3, int(out_hw[0]), int(out_hw[1])), dtype)
        how = preprocess_launch(n, (h, w), out_hw, src=x, dst=y, src_strides=x.strides, dtype=y.dtype, mean=mean,
                                std=std, input_order=input_order, output_order=output_order, method=method,
                                pixels_per_thread=pixels_per_thread, launch=launch,
                                learner_code=bilinear_taps is not None)
        module = load_module("preprocess.cu", bilinear_taps=bilinear_taps, pixels_per_thread=pixels_per_thread,
                             defines=defines)
        module.get_function(how.kernel)(how.grid, how.block, how.args)
    return y


def letterbox(images: Any, out_hw: tuple[int, int], *, border: float = 114.0,
              mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
              input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float32, out: Any = None,
              stream: Any = None) -> tuple[Any, np.ndarray]:
    """Letterbox on the GPU: aspect-preserving resize into ``out_hw``, padded with ``border`` (detector input),
    plus the normalisation and layout of :func:`preprocess`. Returns (N×3×h×w array, 2×3 input→output matrix)."""
    require_gpu("trtlab.kernels.letterbox")
    cs = as_stream(stream)
    with cs:
        x = _images_on_device(images, cs)
        n, h, w, _ = x.shape
        oh, ow = int(out_hw[0]), int(out_hw[1])
        y = _output(out, (n, 3, oh, ow), dtype)
        forward = letterbox_matrix((h, w), (oh, ow))
        inv = _invert_affine(forward)
        kernel = load_module("preprocess.cu").get_function("letterbox_f16" if y.dtype == np.float16
                                                           else "letterbox_f32")
        grid = ((ow + BLOCK[0] - 1) // BLOCK[0], (oh + BLOCK[1] - 1) // BLOCK[1], n)
        args = (x, np.int32(h), np.int32(w), np.int64(x.strides[1]), np.int64(x.strides[0]), y, np.int32(oh),
                np.int32(ow), *(np.float32(v) for v in inv.ravel()), np.float32(border),
                np.int32(channel_swap(input_order, output_order)), *folded_norm(mean, std))
        kernel(grid, (*BLOCK, 1), args)
    return y, forward


def softmax_topk(logits: Any, k: int = 5, *, return_probs: bool = False, stream: Any = None) -> tuple[Any, ...]:
    """Softmax + top-k per row on the GPU: (top-k probabilities float32, top-k indices int32[, all
    probabilities]) as CuPy arrays; ``logits`` N×C float32 or float16 (CuPy, torch CUDA or NumPy)."""
    cupy = require_gpu("trtlab.kernels.softmax_topk")
    cs = as_stream(stream)
    with cs:
        x = as_device_array(logits, stream=cs)
        if x.ndim != 2 or x.dtype not in (np.float32, np.float16) or not x.flags.c_contiguous:
            raise InputMismatch(f"logits: got shape {tuple(x.shape)} dtype {x.dtype}, expected a C-contiguous "
                                "(N, classes) float32 or float16 array")
        n, c = x.shape
        top_p = cupy.empty((n, k), cupy.float32)
        top_i = cupy.empty((n, k), cupy.int32)
        probs = cupy.empty((n, c), cupy.float32) if return_probs else None
        how = softmax_topk_launch(n, c, k, logits=x, top_p=top_p, top_i=top_i, dtype=x.dtype,
                                  probs=probs if probs is not None else 0)
        load_module(how.source).get_function(how.kernel)(how.grid, how.block, how.args, shared_mem=how.shared_mem)
    return (top_p, top_i, probs) if return_probs else (top_p, top_i)


def cuda_timer(fn: Callable[[], Any], *, stream: Any = None, reps: int = 1) -> Callable[[], float]:
    """A ``timer`` for :func:`trtlab.bench.benchmark`: runs ``fn`` ``reps`` times between two CUDA events recorded
    on ``stream`` and returns the GPU milliseconds per call.

    With ``reps=1`` the time includes any gap while the GPU waits for Python to launch the work (the per-call cost
    a caller sees for a short kernel); with ``reps=10`` or more the launches queue up back to back and the time
    approaches the kernel's own duration (what Nsight Compute reports)."""
    import cupy

    cs = as_stream(stream)
    start, end = cupy.cuda.Event(), cupy.cuda.Event()

    def timed() -> float:
        start.record(cs)
        for _ in range(reps):
            fn()
        end.record(cs)
        end.synchronize()
        return float(cupy.cuda.get_elapsed_time(start, end)) / reps

    return timed


def copy_bandwidth(nbytes: int = 1 << 30, *, iters: int = 20) -> float:
    """The roofline's ceiling, measured now: a device-to-device copy of ``nbytes`` (cudaMemcpyAsync), in bytes
    read + written per second (median of ``iters`` CUDA-event timings after warm-up)."""
    cupy = require_gpu("measuring the copy bandwidth")
    a = cupy.empty(nbytes, cupy.uint8)
    a.fill(7)
    b = cupy.empty_like(a)
    stream = cupy.cuda.get_current_stream()

    def copy() -> None:
        cupy.cuda.runtime.memcpyAsync(b.data.ptr, a.data.ptr, nbytes, 3, stream.ptr)  # 3 = device to device

    timer = cuda_timer(copy, stream=stream)
    for _ in range(3):
        timer()
    ms = float(np.median([timer() for _ in range(iters)]))
    del a, b
    return 2 * nbytes / (ms / 1e3)


# ---------------------------------------------------------------- the CPU path and test images


def cpu_preprocess(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *,
                   mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                   input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float32) -> np.ndarray:
    """The usual CPU pre-processing, with OpenCV: per image resize (INTER_LINEAR, uint8), channel swap, normalise,
    HWC → CHW. What the fused kernel replaces; rounds the resized pixels to uint8 (≤ 1 grey level from the
    reference)."""
    import cv2

    swap = channel_swap(input_order, output_order)
    mean32, std32 = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = np.empty((len(batch), 3, *out_hw), dtype)
    for i, image in enumerate(batch):
        resized = cv2.resize(_check_hwc3(image), (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
        if swap:
            resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        out[i] = ((resized.astype(np.float32) * np.float32(1 / 255) - mean32) / std32).transpose(2, 0, 1)
    return out


#: Colour photos bundled with scikit-image (no download), used as real test images.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled colour photos as BGR uint8 (as ``cv2.imread`` would give them)."""
    import skimage.data

    return {name: np.ascontiguousarray(getattr(skimage.data, name)()[:, :, ::-1]) for name in PHOTOS}


def write_sample_photos(folder: Path | str | None = None) -> list[Path]:
    """Write the sample photos as JPEG files (default: ``artifacts()/lab04_photos``), for the end-to-end pipeline
    that starts from image files."""
    import cv2

    from trtlab import paths

    folder = Path(folder) if folder is not None else paths.artifacts() / "lab04_photos"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in sample_photos().items():
        path = folder / f"{name}.jpg"
        if not path.exists():
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written.append(path)
    return written


def sample_frames(n: int, hw: tuple[int, int] = (1080, 1920), *, seed: int = 0) -> np.ndarray:
    """``n`` video-like BGR frames of size ``hw``: a real photo resized, plus noise (never constant: constant data
    hides unwritten pixels and wrong indexing)."""
    import cv2

    base = cv2.resize(sample_photos()["astronaut"], (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(seed)
    out = np.empty((n, *hw, 3), np.uint8)
    for i in range(n):
        noise = rng.integers(-20, 21, base.shape, dtype=np.int16)
        out[i] = np.clip(base.astype(np.int16) + noise, 0, 255)
    return out
