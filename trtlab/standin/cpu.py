"""The CPU stand-in for a TensorRT engine and execution context, and host "device" memory (Lab 03 without a GPU).

No machine in CI can execute a TensorRT engine, yet the inference loop (shapes, addresses, ``execute_async_v3``,
copies) is the part learners get wrong. This module imitates exactly the API surface that loop uses, with TensorRT's
own enums (``TensorIOMode``, ``DataType`` from the installed ``tensorrt_rtx``/``tensorrt``), and TensorRT's failure
modes: ``set_input_shape`` outside the profile returns False, executing before every input shape and address is set
returns False, and memory is read by address as raw bytes, so a float64 buffer handed to a float32 input gives
garbage (as on a GPU) rather than a helpful exception.

It runs a small NumPy model (global average pool → linear) so outputs can be compared with a reference. It is a
teaching and testing device, never a performance stand-in; :mod:`trtlab.standin.gpu` is the one with real memory
and streams.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Callable, Sequence

import numpy as np

from trtlab.i18n import N_, _
from trtlab.standin import ContextContract, EngineIO, trt_enums

__all__ = ["SimBuffer", "SimContext", "SimDevice", "SimEngine", "SimGraph", "SimMemory", "trt_enums"]

ANNOUNCEMENT = N_("CPU stand-in: there is no GPU here, so NumPy computes a tiny model (average pool → linear) "
                  "behind TensorRT's execution-context API. It checks the inference loop; it is not TensorRT and its "
                  "timings mean nothing.")


class SimMemory:
    """Host buffers addressed by fake device pointers (256-byte aligned, like cudaMalloc)."""

    def __init__(self) -> None:
        self._buffers: dict[int, np.ndarray] = {}
        self._next = itertools.count(0x7F0000000000, 1 << 20)

    def alloc(self, nbytes: int) -> int:
        ptr = next(self._next)
        self._buffers[ptr] = np.zeros(max(int(nbytes), 1), np.uint8)
        return ptr

    def free(self, ptr: int) -> None:
        self._buffers.pop(ptr, None)
        self._freed = getattr(self, "_freed", set()) | {ptr}

    def raw(self, ptr: int) -> np.ndarray:
        if ptr not in self._buffers:
            if ptr in getattr(self, "_freed", set()):
                raise RuntimeError(f"CUDA error 700: an illegal memory access was encountered (address {ptr:#x} "
                                   "was freed before the engine used it: keep a reference to every device buffer, "
                                   "e.g. in a dict, until after synchronize)")
            raise RuntimeError(f"CUDA error 700: an illegal memory access was encountered (address {ptr:#x} was "
                               "never allocated: did you pass a host pointer?)")
        return self._buffers[ptr]


class SimBuffer:
    """A "device" array: shape, dtype and a pointer into :class:`SimMemory`."""

    def __init__(self, memory: SimMemory, shape: Sequence[int], dtype: Any) -> None:
        self.memory, self.shape, self.dtype = memory, tuple(int(d) for d in shape), np.dtype(dtype)
        if any(d < 0 for d in self.shape):
            raise ValueError(f"cannot allocate a buffer of shape {self.shape}: -1 marks a dynamic dimension. Ask the "
                             "execution context for the concrete shape (context.get_tensor_shape) after "
                             "set_input_shape, not the engine")
        self.ptr = memory.alloc(int(np.prod(self.shape)) * self.dtype.itemsize)

    def data_ptr(self) -> int:
        return self.ptr

    def __del__(self) -> None:  # like a torch/CuPy array: the device memory goes when the last reference does
        if hasattr(self, "ptr"):  # not when __init__ refused the shape
            self.memory.free(self.ptr)

    def numpy(self) -> np.ndarray:
        nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        return self.memory.raw(self.ptr)[:nbytes].view(self.dtype).reshape(self.shape).copy()


class SimDevice:
    """The device-memory helper :class:`trtlab.runtime.TensorRTRunner` and the Lab 03 exercise use, on the CPU.

    Implements :class:`trtlab.device.DeviceMemory`, as :class:`trtlab.device.TorchDevice` does: buffers, copies,
    events (host clock) and "graphs" (the recorded function, called again), so the runner runs unchanged on it.
    """

    name = "simulated"

    def __init__(self, memory: SimMemory | None = None) -> None:
        self.memory = memory or SimMemory()
        self.stream = 0x5EED  # a non-default stream handle
        self.uploads = 0
        self.downloads = 0

    def empty(self, shape: Sequence[int], dtype: Any) -> SimBuffer:
        return SimBuffer(self.memory, shape, dtype)

    def upload(self, array: Any) -> SimBuffer:
        arr = np.ascontiguousarray(array)
        buf = SimBuffer(self.memory, arr.shape, arr.dtype)
        self.memory.raw(buf.ptr)[:arr.nbytes] = arr.view(np.uint8).reshape(-1)
        self.uploads += 1
        return buf

    def copy_(self, dst: SimBuffer, array: Any) -> None:
        arr = np.ascontiguousarray(array)
        self.memory.raw(dst.ptr)[:arr.nbytes] = arr.view(np.uint8).reshape(-1)

    def download(self, buf: SimBuffer) -> np.ndarray:
        self.downloads += 1
        return buf.numpy()

    @staticmethod
    def ptr(buf: Any) -> int:
        return int(buf.data_ptr())

    def synchronize(self) -> None:
        """Nothing to wait for on the CPU."""

    @staticmethod
    def event() -> float:
        return time.perf_counter()

    @staticmethod
    def elapsed_ms(start: float, end: float) -> float:
        return (end - start) * 1e3

    def capture(self, fn: Callable[[], Any]) -> "SimGraph":
        """A "CUDA graph": ``fn`` is called once now (as the host calls it while a real capture records), then
        replayed on each ``replay()``."""
        self.captures = getattr(self, "captures", 0) + 1
        fn()
        return SimGraph(fn)


class SimGraph:
    """What :meth:`SimDevice.capture` returns: ``replay()`` calls the recorded function again."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn, self.replays = fn, 0

    def replay(self) -> None:
        self.replays += 1
        self.fn()


class _Tensor:
    def __init__(self, name: str, mode: Any, dtype: Any, shape: tuple[int, ...],
                 profile: tuple[tuple[int, ...], ...] | None) -> None:
        self.name, self.mode, self.dtype, self.shape, self.profile = name, mode, dtype, shape, profile


class SimEngine(EngineIO):
    """An "engine" with one input ``images`` (N×C×H×W float32, dynamic N) and one output ``logits`` (N×K)."""

    def __init__(self, *, channels: int = 3, size: int = 8, classes: int = 4, batch: tuple[int, int, int] = (1, 4, 16),
                 seed: int = 0, memory: SimMemory | None = None,
                 model: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        trt = trt_enums()
        self.trt = trt
        self.memory = memory or SimMemory()
        rng = np.random.default_rng(seed)
        self.weight = rng.standard_normal((channels, classes)).astype(np.float32)
        self.model = model or (lambda x: x.mean(axis=(2, 3)) @ self.weight)
        lo, opt, hi = batch
        dims = (channels, size, size)
        self._tensors = [
            _Tensor("images", trt.TensorIOMode.INPUT, trt.DataType.FLOAT, (-1, *dims),
                    ((lo, *dims), (opt, *dims), (hi, *dims))),
            _Tensor("logits", trt.TensorIOMode.OUTPUT, trt.DataType.FLOAT, (-1, classes), None),
        ]
        self.classes = classes
        self.label = "standin-cpu"
        self.num_optimization_profiles = 1
        self.device_memory_size_v2 = 1 << 20

    @property
    def announcement(self) -> str:
        """What the notebook prints so the stand-in is never mistaken for TensorRT, in the language in use."""
        return _(ANNOUNCEMENT)

    def reference(self, x: np.ndarray) -> np.ndarray:
        """What a correct inference loop must return for ``x``."""
        return self.model(np.asarray(x, np.float32)).astype(np.float32)

    def get_tensor_mode(self, name: str) -> Any:
        return self._get(name).mode

    def get_tensor_dtype(self, name: str) -> Any:
        return self._get(name).dtype

    def create_execution_context(self, *args: Any) -> "SimContext":
        return SimContext(self)


class SimContext(ContextContract):
    """An "execution context": records calls and imitates TensorRT's return values and failure modes."""

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        self.calls.append(("get_tensor_shape", name))
        t = self.engine._get(name)
        if t.profile is not None:
            return self.shapes.get(name, t.shape)
        batch = self.shapes.get("images", (-1,))[0]
        return (batch, self.engine.classes)

    def _run(self, stream_handle: int) -> bool:
        memory = self.engine.memory
        shape = self.shapes["images"]
        nbytes = int(np.prod(shape)) * 4
        raw = memory.raw(self.addresses["images"])
        if raw.nbytes < nbytes:
            raise RuntimeError("CUDA error 700: an illegal memory access was encountered (the input buffer is "
                               f"{raw.nbytes} bytes, the engine reads {nbytes})")
        x = raw[:nbytes].view(np.float32).reshape(shape)
        y = self.engine.reference(x)
        out = memory.raw(self.addresses["logits"])
        if out.nbytes < y.nbytes:
            raise RuntimeError("CUDA error 700: an illegal memory access was encountered (the output buffer is "
                               f"{out.nbytes} bytes, the engine writes {y.nbytes})")
        out[:y.nbytes] = np.ascontiguousarray(y).view(np.uint8).reshape(-1)
        return True
