"""Plans: a pre- or post-processing launch decided once and bound to its device buffers and stream (Lab 04).

:func:`trtlab.kernels.preprocess` is convenient: it accepts anything, checks it, allocates its output and decides
the kernel, grid and arguments on every call. That costs tens of microseconds of host time per call (more than the
kernel itself at 1080p → 224) and it cannot sit inside a CUDA graph when it allocates. A plan does all of that once,
in its constructor; calling it is one kernel launch (plus, for softmax/top-k, two small copies to pinned host memory)
that allocates nothing and waits for nothing, so a frame-to-result step can be captured into one CUDA graph
(:class:`trtlab.kernels.FramePipeline`) and replayed. :func:`graph_times` measures a call three ways, so a learner
knows which number they are looking at.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from trtlab.device import address, as_stream, cuda_timer, require_gpu
from trtlab.errors import InputMismatch, UnsupportedFeature
from trtlab.i18n import _
from trtlab.kernels.compile import load_module
from trtlab.kernels.launch import PIXELS_PER_THREAD, preprocess_bytes, preprocess_launch, softmax_topk_launch

__all__ = ["D2H", "GraphTimes", "H2D", "PreprocessPlan", "SoftmaxTopkPlan", "capture", "graph_times", "pinned_empty"]

H2D, D2H = 1, 2  # cudaMemcpyKind


def pinned_empty(shape: Sequence[int], dtype: Any) -> np.ndarray:
    """A NumPy array in page-locked host memory: copies to and from it run asynchronously (and inside CUDA graphs,
    which refuse pageable memory)."""
    cupy = require_gpu("pinned host memory")
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    memory = cupy.cuda.alloc_pinned_memory(max(count * dtype.itemsize, 1))
    return np.frombuffer(memory, dtype, count).reshape(tuple(shape))  # the array keeps `memory` alive


class PreprocessPlan:
    """The fused pre-processing of ``batch`` uint8 HWC frames of ``src_hw`` into N×3×``out_hw`` ``dtype`` at a fixed
    place (``dst``: an array or a raw device address such as an engine's input buffer), on a fixed stream.

    ``plan()`` launches the kernel that :func:`trtlab.kernels.preprocess` would launch for the same inputs (same
    kernel choice, same arguments, same output values), without checks, allocation or synchronisation."""

    def __init__(self, batch: int, src_hw: tuple[int, int], out_hw: tuple[int, int], *,
                 mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                 input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float16, src: Any = None,
                 dst: Any = None, stream: Any = None, method: str = "auto",
                 pixels_per_thread: int = PIXELS_PER_THREAD) -> None:
        cupy = require_gpu("a pre-processing plan")
        (h, w), (oh, ow) = (int(v) for v in src_hw), (int(v) for v in out_hw)
        self.stream = as_stream(stream)
        self.src = cupy.empty((batch, h, w, 3), cupy.uint8) if src is None else src
        self.dst = cupy.empty((batch, 3, oh, ow), dtype) if dst is None else dst
        strides = None
        if not isinstance(self.src, (int, np.integer)):
            shape, strides = tuple(self.src.shape), tuple(self.src.strides)
            if shape != (batch, h, w, 3) or str(self.src.dtype) != "uint8" or strides[2:] != (3, 1):
                raise InputMismatch(_("src: got shape {shape} {dtype} strides {strides}, expected "
                                      "({batch}, {h}, {w}, 3) uint8 with packed pixels (strides (…, …, 3, 1))").format(
                                          shape=shape, dtype=self.src.dtype, strides=strides, batch=batch, h=h, w=w))
        if not isinstance(self.dst, (int, np.integer)):
            if tuple(self.dst.shape) != (batch, 3, oh, ow) or np.dtype(self.dst.dtype) != np.dtype(dtype):
                raise InputMismatch(_("dst: got shape {shape} {got_dtype}, expected "
                                      "({batch}, 3, {oh}, {ow}) {dtype}, C-contiguous").format(
                                          shape=tuple(self.dst.shape), got_dtype=self.dst.dtype, batch=batch, oh=oh,
                                          ow=ow, dtype=np.dtype(dtype)))
        self.batch, self.src_hw, self.out_hw, self.dtype = int(batch), (h, w), (oh, ow), np.dtype(dtype)
        self.launch = preprocess_launch(batch, (h, w), (oh, ow), src=address(self.src), dst=address(self.dst),
                                        src_strides=strides, dtype=dtype, mean=mean, std=std,
                                        input_order=input_order, output_order=output_order, method=method,
                                        pixels_per_thread=pixels_per_thread)
        self._kernel = load_module("preprocess.cu", pixels_per_thread=pixels_per_thread).get_function(
            self.launch.kernel)  # compiled and loaded now, never during a capture

    def __call__(self) -> None:
        with self.stream:
            self._kernel(self.launch.grid, self.launch.block, self.launch.args)

    def bytes_moved(self) -> dict[str, int]:
        """What one call must read and write (:func:`trtlab.kernels.preprocess_bytes`)."""
        return preprocess_bytes(self.batch, self.src_hw, self.out_hw, dtype=self.dtype)

    def __repr__(self) -> str:
        (h, w), (oh, ow) = self.src_hw, self.out_hw
        return (f"PreprocessPlan({self.batch}×{h}×{w} uint8 → {self.batch}×3×{oh}×{ow} {self.dtype}: "
                f"{self.launch.kernel}, grid {self.launch.grid}, block {self.launch.block}; {self.launch.reason})")


class SoftmaxTopkPlan:
    """Softmax + top-k of ``rows`` × ``classes`` logits at a fixed place (an array or a raw address, e.g. an engine's
    output buffer) on a fixed stream, with the ``k`` probabilities and indices copied into pinned host memory
    (and, with ``copy_logits``, the logits too): ``plan()`` enqueues it, :meth:`result` reads it after the stream is
    synchronised. ``to_host=False`` leaves the results on the GPU (:attr:`top_p`, :attr:`top_i`), no copies."""

    def __init__(self, rows: int, classes: int, k: int = 5, *, logits: Any, dtype: Any = np.float32,
                 stream: Any = None, copy_logits: bool = False, to_host: bool = True) -> None:
        cupy = require_gpu("a softmax/top-k plan")
        self.stream = as_stream(stream)
        self.logits = logits
        self.top_p = cupy.empty((rows, k), cupy.float32)
        self.top_i = cupy.empty((rows, k), cupy.int32)
        self.launch = softmax_topk_launch(rows, classes, k, logits=address(logits), top_p=address(self.top_p),
                                          top_i=address(self.top_i), dtype=dtype)
        self._kernel = load_module("postprocess.cu").get_function(self.launch.kernel)
        self.host_p, self.host_i = pinned_empty((rows, k), np.float32), pinned_empty((rows, k), np.int32)
        self.host_logits = pinned_empty((rows, classes), dtype) if copy_logits else None
        self._copies = [(address(self.host_p), address(self.top_p), self.host_p.nbytes),
                        (address(self.host_i), address(self.top_i), self.host_i.nbytes)] if to_host else []
        if self.host_logits is not None and to_host:
            self._copies.append((address(self.host_logits), address(logits), self.host_logits.nbytes))
        self._memcpy = cupy.cuda.runtime.memcpyAsync

    def __call__(self) -> None:
        with self.stream:
            self._kernel(self.launch.grid, self.launch.block, self.launch.args, shared_mem=self.launch.shared_mem)
        for dst, src, nbytes in self._copies:
            self._memcpy(dst, src, nbytes, D2H, self.stream.ptr)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """(top-k probabilities, top-k indices) as NumPy copies; synchronise the stream first."""
        return self.host_p.copy(), self.host_i.copy()


@dataclass
class GraphTimes:
    """One call timed three ways (ms): ``per_call`` = CUDA events around ``reps`` calls issued back to back from
    Python (what a caller gets with the queue kept full: the host's launch cost whenever it exceeds the GPU's work);
    ``gpu`` = the same ``reps`` calls captured into one CUDA graph and replayed (GPU time only, no host in between:
    the kernel-only time); ``host`` = Python's time to issue one call (nothing waited for)."""

    per_call: float
    gpu: float | None
    host: float
    graph_error: str = ""

    def __str__(self) -> str:
        gpu = f"{self.gpu * 1e3:.1f} µs" if self.gpu is not None else f"n/a ({self.graph_error})"
        return (f"per call {self.per_call * 1e3:.1f} µs (queue kept full) | GPU only {gpu} (CUDA graph replay) | "
                f"host {self.host * 1e3:.1f} µs to issue")


def capture(fn: Callable[[], Any], stream: Any, *, reps: int = 1) -> Any:
    """``fn`` called ``reps`` times inside a CUDA stream capture on ``stream``: the ``cupy.cuda.Graph`` to replay.
    ``fn`` must launch on ``stream`` and neither allocate nor synchronise; if it does, the capture is invalidated
    and this raises :class:`UnsupportedFeature` with CUDA's reason."""
    cs = as_stream(stream)
    cs.begin_capture()
    failure: BaseException | None = None
    try:
        for _rep in range(reps):
            fn()
    except Exception as err:  # noqa: BLE001 - reported below, after the capture is closed
        failure = err
    try:
        graph = cs.end_capture()
    except Exception as err:  # noqa: BLE001
        failure = failure or err
    if failure is not None:
        raise UnsupportedFeature(_("this call cannot be captured into a CUDA graph: {kind}: "
                                   "{failure} | graphs need calls that launch on the capturing stream and neither "
                                   "allocate nor synchronise: build a plan (kernels.PreprocessPlan) once "
                                   "instead").format(kind=type(failure).__name__, failure=failure))
    return graph


def graph_times(fn: Callable[[], Any], stream: Any, *, reps: int = 20, iters: int = 30) -> GraphTimes:
    """Time ``fn`` (which launches on ``stream``) per call with the queue kept full, as GPU time only (a CUDA
    graph of ``reps`` calls replayed), and as host time to issue; medians of ``iters`` measurements after warm-up."""
    cs = as_stream(stream)
    eager = cuda_timer(fn, stream=cs, reps=reps)
    for _rep in range(3):
        eager()
    per_call = float(np.median([eager() for _rep in range(iters)]))
    cs.synchronize()
    host = []
    for _rep in range(iters):
        start = time.perf_counter()
        for _rep in range(reps):
            fn()
        host.append((time.perf_counter() - start) / reps * 1e3)
        cs.synchronize()
    try:
        graph = capture(fn, cs, reps=reps)
    except UnsupportedFeature as err:
        return GraphTimes(per_call, None, float(np.median(host)), str(err).split(" | ")[0])
    replay = cuda_timer(lambda: graph.launch(cs), stream=cs)
    for _rep in range(3):
        replay()
    gpu = float(np.median([replay() for _rep in range(iters)])) / reps
    return GraphTimes(per_call, gpu, float(np.median(host)))
