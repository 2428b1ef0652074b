"""Device memory, streams and GPU timing: the one place that talks to CUDA through torch or CuPy.

- :class:`DeviceMemory`, the declared protocol of a "device" (buffers, copies, events, graph capture, all on one
  stream), implemented by :class:`TorchDevice`, :class:`CupyDevice` and the CPU stand-in
  :class:`trtlab.standin.SimDevice`; :class:`trtlab.runtime.TensorRTRunner` needs nothing else.
- Interop: :func:`as_stream` (any stream → CuPy), :func:`as_device_array`, :func:`to_torch` (DLPack, no copy),
  :func:`address` and :func:`from_device_pointer` (raw pointers, as TensorRT takes them).
- Timing: :func:`cuda_timer`, the course's only CUDA-event timer (``tl.bench`` and Lab 04 use it), and
  :func:`copy_bandwidth`, the measured ceiling of a memory-bound kernel.
- :func:`on_gpu`: whether a notebook cell runs its GPU part; where it cannot, says plainly what that part shows.

torch and CuPy are imported inside the functions that need them, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from trtlab.errors import InputMismatch, UnsupportedFeature

__all__ = ["CupyDevice", "DeviceMemory", "Graph", "TorchDevice", "address", "as_device_array", "as_stream",
           "copy_bandwidth", "cuda_timer", "default_device", "from_device_pointer", "on_gpu", "require_gpu",
           "to_torch"]

@runtime_checkable
class Graph(Protocol):
    """A captured CUDA graph; ``replay()`` launches it on the stream it was captured on."""

    def replay(self) -> None: ...


@runtime_checkable
class DeviceMemory(Protocol):
    """What a runner needs from device memory: every call enqueues on the one non-default stream ``stream``
    (a ``cudaStream_t`` handle, what ``execute_async_v3`` takes), so copies, execution and events stay ordered."""

    name: str

    @property
    def stream(self) -> int: ...

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        """An uninitialised buffer."""

    def upload(self, array: Any) -> Any:
        """A new buffer holding a copy of ``array``."""

    def copy_(self, dst: Any, array: Any) -> None:
        """Copy host ``array`` into buffer ``dst`` (asynchronous on ``stream``)."""

    def download(self, buf: Any) -> np.ndarray:
        """``buf`` as a NumPy array, after everything queued before it."""

    def ptr(self, buf: Any) -> int:
        """The buffer's device address (for ``set_tensor_address``)."""

    def synchronize(self) -> None:
        """Wait for everything queued on ``stream``."""

    def event(self) -> Any:
        """A timing event, recorded on ``stream`` now."""

    def elapsed_ms(self, start: Any, end: Any) -> float:
        """Milliseconds between two events of :meth:`event` (waits for ``end``)."""

    def capture(self, fn: Callable[[], Any]) -> Graph:
        """Record what ``fn`` enqueues on ``stream`` into a graph that replays on ``stream``."""


# ---------------------------------------------------------------- the torch and CuPy devices


class TorchDevice:
    """Device buffers owned by PyTorch on a non-default CUDA stream (copies, events and graphs on that stream).

    ``stream``: a ``torch.cuda.Stream`` to use instead of a new one (e.g. the current stream, for timing)."""

    name = "torch"

    def __init__(self, device: str = "cuda", *, stream: Any = None) -> None:
        import torch

        if not torch.cuda.is_available():
            raise UnsupportedFeature("TorchDevice needs PyTorch with CUDA; this torch sees no GPU | run on a GPU "
                                     "machine or use tl.runtime.OnnxRuntimeRunner")
        self.torch = torch
        self.device = torch.device(device)
        self._stream = stream if stream is not None else torch.cuda.Stream(self.device)

    @property
    def stream(self) -> int:
        return int(self._stream.cuda_stream)

    def _torch_dtype(self, dtype: Any) -> Any:
        return {np.dtype(np.float32): self.torch.float32, np.dtype(np.float16): self.torch.float16,
                np.dtype(np.int8): self.torch.int8, np.dtype(np.int32): self.torch.int32,
                np.dtype(np.int64): self.torch.int64, np.dtype(np.uint8): self.torch.uint8,
                np.dtype(np.bool_): self.torch.bool}[np.dtype(dtype)]

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        with self.torch.cuda.stream(self._stream):
            return self.torch.empty(tuple(shape), dtype=self._torch_dtype(dtype), device=self.device)

    def upload(self, array: Any) -> Any:
        with self.torch.cuda.stream(self._stream):
            host = array if isinstance(array, self.torch.Tensor) else self.torch.from_numpy(np.ascontiguousarray(array))
            return host.to(self.device, non_blocking=True)

    def copy_(self, dst: Any, array: Any) -> None:
        with self.torch.cuda.stream(self._stream):
            src = array if isinstance(array, self.torch.Tensor) else self.torch.from_numpy(np.ascontiguousarray(array))
            dst.copy_(src, non_blocking=True)

    def download(self, buf: Any) -> np.ndarray:
        with self.torch.cuda.stream(self._stream):
            host = buf.to("cpu", non_blocking=True)
        self._stream.synchronize()
        return host.numpy()

    @staticmethod
    def ptr(buf: Any) -> int:
        return int(buf.data_ptr())

    def synchronize(self) -> None:
        self._stream.synchronize()

    def event(self) -> Any:
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record(self._stream)
        return ev

    @staticmethod
    def elapsed_ms(start: Any, end: Any) -> float:
        end.synchronize()
        return float(start.elapsed_time(end))

    def capture(self, fn: Callable[[], Any]) -> "_TorchGraph":
        """Record ``fn`` (which enqueues on this stream) into a CUDA graph that replays on this stream.

        ``thread_local`` capture and no device-wide synchronize (``torch.cuda.graph`` does one): another runner's
        thread may be copying or capturing on its own stream meanwhile, and must neither break nor wait for this."""
        graph = self.torch.cuda.CUDAGraph()
        with self.torch.cuda.stream(self._stream):
            graph.capture_begin(capture_error_mode="thread_local")
            try:
                fn()
            except BaseException:
                with contextlib.suppress(Exception):  # the capture is broken anyway; report fn's error
                    graph.capture_end()
                raise
            graph.capture_end()
        return _TorchGraph(graph, self._stream, self.torch)


class _TorchGraph:
    """A captured graph that replays on its device's stream. ``CUDAGraph.replay()`` alone launches on the *current*
    stream, which races with the copies the runner enqueues on its own stream."""

    def __init__(self, graph: Any, stream: Any, torch: Any) -> None:
        self.graph, self.stream, self.torch = graph, stream, torch

    def replay(self) -> None:
        with self.torch.cuda.stream(self.stream):
            self.graph.replay()


class CupyDevice:
    """Device buffers owned by CuPy (for machines with CuPy but a CPU-only torch); same methods as TorchDevice.

    ``stream``: a CuPy stream to use instead of a new non-blocking one (then the current device is left as is)."""

    name = "cupy"

    def __init__(self, device: int = 0, *, stream: Any = None) -> None:
        import cupy

        self.cp = cupy
        if stream is None:
            cupy.cuda.Device(device).use()
        self._cstream = stream if stream is not None else cupy.cuda.Stream(non_blocking=True)

    @property
    def stream(self) -> int:
        return int(self._cstream.ptr)

    def empty(self, shape: Sequence[int], dtype: Any) -> Any:
        with self._cstream:
            return self.cp.empty(tuple(shape), dtype=np.dtype(dtype))

    def upload(self, array: Any) -> Any:
        with self._cstream:
            return self.cp.asarray(np.ascontiguousarray(array))

    def copy_(self, dst: Any, array: Any) -> None:
        dst.set(np.ascontiguousarray(array), stream=self._cstream)

    def download(self, buf: Any) -> np.ndarray:
        out = buf.get(stream=self._cstream)
        self._cstream.synchronize()
        return out

    @staticmethod
    def ptr(buf: Any) -> int:
        return int(buf.data.ptr)

    def synchronize(self) -> None:
        self._cstream.synchronize()

    def event(self) -> Any:
        ev = self.cp.cuda.Event()
        ev.record(self._cstream)
        return ev

    def elapsed_ms(self, start: Any, end: Any) -> float:
        end.synchronize()
        return float(self.cp.cuda.get_elapsed_time(start, end))

    def capture(self, fn: Callable[[], Any]) -> "_CupyGraph":
        """Record ``fn`` (which enqueues on this stream) into a CUDA graph that launches on this stream."""
        self._cstream.begin_capture()
        try:
            fn()
        except BaseException:
            with contextlib.suppress(Exception):
                self._cstream.end_capture()
            raise
        graph = self._cstream.end_capture()
        graph.upload(self._cstream)
        return _CupyGraph(graph, self._cstream)


class _CupyGraph:
    """A CuPy graph that launches on its device's stream."""

    def __init__(self, graph: Any, stream: Any) -> None:
        self.graph, self.stream = graph, stream

    def replay(self) -> None:
        self.graph.launch(self.stream)


def default_device() -> DeviceMemory:
    """TorchDevice when torch sees a GPU, else CupyDevice when CuPy runs kernels; else UnsupportedFeature."""
    from trtlab.env import capabilities

    caps = capabilities()
    if caps.torch_cuda:
        return TorchDevice()
    if caps.cupy_runs_kernels:
        return CupyDevice()
    raise UnsupportedFeature("the TensorRT runner needs device memory from PyTorch (CUDA build) or CuPy; neither "
                             "can use a GPU here | install torch with CUDA or cupy-cuda13x on a GPU machine")


# ---------------------------------------------------------------- CuPy, streams, pointers, DLPack


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


def on_gpu(shows: str) -> bool:
    """Whether CuPy can launch kernels here, so a notebook cell runs its GPU part; when it cannot, says so plainly,
    with what the GPU part ``shows``, instead of each cell carrying its own ``else: print(...)``."""
    from trtlab.env import capabilities

    if capabilities().cupy_runs_kernels:
        return True
    print(f"CPU mode, no GPU that CuPy can use: {shows}")
    return False


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


def address(x: Any) -> int:
    """The raw address of an array or pointer (what ``context.set_tensor_address`` takes): an int as it is, a torch
    tensor, a CuPy array, or a NumPy array (a host address)."""
    if isinstance(x, (int, np.integer)):
        return int(x)
    if hasattr(x, "data_ptr"):
        return int(x.data_ptr())
    if hasattr(getattr(x, "data", None), "ptr"):
        return int(x.data.ptr)
    if hasattr(x, "__array_interface__"):
        return int(x.__array_interface__["data"][0])
    raise InputMismatch(f"expected a device pointer (int) or an array, got {type(x).__name__}")


def from_device_pointer(ptr: int, shape: Sequence[int], dtype: Any, *, owner: Any = None) -> Any:
    """A CuPy array over memory someone else allocated (a TensorRT output buffer); ``owner`` keeps it alive."""
    import cupy

    dtype = np.dtype(dtype)
    size = int(np.prod(shape)) * dtype.itemsize
    memory = cupy.cuda.UnownedMemory(int(ptr), size, owner)
    return cupy.ndarray(tuple(shape), dtype, cupy.cuda.MemoryPointer(memory, 0))


# ---------------------------------------------------------------- timing


def _timing_device(stream: Any) -> DeviceMemory:
    """The device whose events time work on ``stream``: torch's for a ``torch.cuda.Stream``, CuPy's otherwise (None:
    CuPy's current stream, or torch's current stream on a machine where CuPy cannot run)."""
    if hasattr(stream, "cuda_stream") and type(stream).__module__.startswith("torch"):
        return TorchDevice(stream=stream)
    if stream is None:
        from trtlab.env import capabilities

        if not capabilities().cupy_runs_kernels:
            import torch

            return TorchDevice(stream=torch.cuda.current_stream())
    require_gpu("a CUDA-event timer")
    return CupyDevice(stream=as_stream(stream))


def cuda_timer(fn: Callable[[], Any], *, stream: Any = None, reps: int = 1) -> Callable[[], float]:
    """A ``timer`` for :func:`trtlab.bench.benchmark`: runs ``fn`` ``reps`` times between two CUDA events recorded
    on ``stream`` (a torch stream, a CuPy stream, a raw handle, or None for the current stream) and returns the GPU
    milliseconds per call.

    With ``reps=1`` the time includes any gap while the GPU waits for Python to launch the work (the per-call cost
    a caller sees for a short kernel); with ``reps=10`` or more the launches queue up back to back and the time
    approaches the kernel's own duration (what Nsight Compute reports)."""
    device = _timing_device(stream)

    def timed() -> float:
        start = device.event()
        for _ in range(reps):
            fn()
        return device.elapsed_ms(start, device.event()) / reps

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
