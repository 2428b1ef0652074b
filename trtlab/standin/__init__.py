"""Stand-ins for a TensorRT engine, for machines that cannot execute one. They are never TensorRT.

Lab 03's inference loop (shapes, device addresses, ``execute_async_v3`` on a stream, CUDA graphs) is where learners
go wrong, and most machines the course runs on cannot execute a TensorRT engine: no GPU (CI, laptops), or a GPU
that the installed TensorRT-RTX refuses (Hopper). A stand-in keeps TensorRT's execution *contract* (the same
engine/context calls, TensorRT's own enums, ``False`` instead of an exception where TensorRT returns ``False``) while
something else computes the outputs:

- :class:`SimEngine` (``trtlab.standin.cpu``): host memory behind fake device pointers and a tiny NumPy model; for
  checkers and unit tests without a GPU.
- :class:`GpuEngine` / :func:`gpu_engine` (``trtlab.standin.gpu``): real device addresses and real CUDA streams, with
  PyTorch computing the real model on the stream given to ``execute_async_v3``; CUDA-graph capture works as with
  TensorRT. Timings are PyTorch's.

Every stand-in carries an ``announcement`` that notebooks print, so a stand-in is never mistaken for TensorRT.
Production code never imports this package: notebooks, checkers and tests pass a stand-in in.
"""

from __future__ import annotations

import enum
import importlib
from types import ModuleType
from typing import Any, Sequence

from trtlab import _compat

__all__ = ["ContextContract", "EngineIO", "GpuContext", "GpuEngine", "SimContext", "SimDevice", "SimEngine", "SimMemory", "gpu_engine",
           "io_from_metadata", "trt_enums"]

_HOMES = {"SimContext": "cpu", "SimDevice": "cpu", "SimEngine": "cpu", "SimMemory": "cpu",
          "GpuContext": "gpu", "GpuEngine": "gpu", "gpu_engine": "gpu", "io_from_metadata": "gpu"}


def trt_enums() -> ModuleType:
    """The TensorRT-family module whose enums stand-ins use (the real ones, so learner code runs unchanged).

    On a machine with no TensorRT-family package at all (a GPU laptop before TensorRT is installed), a copy of the
    two enums the execution contract needs, with TensorRT's names and values; its ``__name__`` says it is a copy.
    """
    for module in (_compat.tensorrt(), _compat.tensorrt_rtx()):
        if module is not None:
            return module
    return _copied_enums()


class _TensorIOMode(enum.Enum):
    NONE, INPUT, OUTPUT = 0, 1, 2


class _DataType(enum.Enum):
    FLOAT, HALF, INT8, INT32, BOOL, UINT8, FP8, BF16, INT64, INT4 = range(10)


def _copied_enums() -> ModuleType:
    copy = ModuleType("trtlab.standin.copied_enums", "TensorRT's TensorIOMode and DataType, copied (no TensorRT here)")
    vars(copy).update(TensorIOMode=_TensorIOMode, DataType=_DataType)
    return copy


class EngineIO:
    """The tensor-introspection half of ``ICudaEngine`` that both stand-ins share: a list ``_tensors`` of records
    with ``name``, ``shape`` (-1 where dynamic) and ``profile`` ((min, opt, max) for an input, None for an output)."""

    _tensors: list[Any]

    @property
    def num_io_tensors(self) -> int:
        return len(self._tensors)

    def get_tensor_name(self, index: int) -> str:
        return self._tensors[index].name

    def _get(self, name: str) -> Any:
        for t in self._tensors:
            if t.name == name:
                return t
        raise KeyError(f"no tensor named {name!r}; this engine has {[t.name for t in self._tensors]}")

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        return self._get(name).shape

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple[int, ...]]:
        t = self._get(name)
        if t.profile is None or profile_index != 0:
            raise RuntimeError(f"{name!r} is not an input of optimization profile {profile_index}")
        return list(t.profile)


class ContextContract:
    """What both stand-in execution contexts keep of TensorRT's ``IExecutionContext``: every call recorded in
    ``calls``, and ``False`` (with ``errors`` saying why) where TensorRT refuses: an unknown name, a shape outside the
    profile, executing before every input shape and every address is set. Subclasses give ``get_tensor_shape`` and
    ``_run(stream_handle)``, which computes the outputs once the preconditions hold."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.addresses: dict[str, int] = {}
        self.calls: list[tuple[str, Any]] = []
        self.errors: list[str] = []

    def _known(self, call: str, name: str) -> bool:
        if any(t.name == name for t in self.engine._tensors):
            return True
        self.errors.append(f"{call}: no tensor named {name!r}")
        return False

    def set_input_shape(self, name: str, shape: Sequence[int]) -> bool:
        shape = tuple(int(d) for d in shape)
        self.calls.append(("set_input_shape", (name, shape)))
        if not self._known("set_input_shape", name):
            return False
        t = self.engine._get(name)
        if t.profile is None:
            self.errors.append(f"set_input_shape: {name!r} is an output")
            return False
        lo, _, hi = t.profile
        if len(shape) != len(lo) or not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
            self.errors.append(f"set_input_shape: {shape} outside the profile [{lo}, {hi}] of {name!r}")
            return False
        self.shapes[name] = shape
        return True

    @property
    def all_binding_shapes_specified(self) -> bool:
        return not self.infer_shapes()

    def infer_shapes(self) -> list[str]:
        """Names of inputs whose shape is still unknown (TensorRT's meaning: empty list = all set)."""
        return [t.name for t in self.engine._tensors
                if t.profile is not None and -1 in t.shape and t.name not in self.shapes]

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        self.calls.append(("set_tensor_address", (name, int(ptr))))
        if not self._known("set_tensor_address", name):
            return False
        self.addresses[name] = int(ptr)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        """Run on ``stream_handle``; ``False`` (with ``errors`` saying why) where TensorRT refuses."""
        self.calls.append(("execute_async_v3", stream_handle))
        missing_shapes = self.infer_shapes()
        if missing_shapes:
            self.errors.append(f"execute_async_v3: input shapes not set for {missing_shapes} (call set_input_shape)")
            return False
        missing = [t.name for t in self.engine._tensors if t.name not in self.addresses]
        if missing:
            self.errors.append(f"execute_async_v3: no address set for {missing} (call set_tensor_address)")
            return False
        if stream_handle in (0, None):
            self.errors.append("execute_async_v3 on the default stream: it works but serialises with everything "
                               "else on the GPU (TensorRT warns about it)")
        return self._run(stream_handle)

    def _run(self, stream_handle: int) -> bool:
        raise NotImplementedError


def __getattr__(name: str) -> Any:
    """Import ``cpu`` / ``gpu`` / ``trtp`` (the ``tensorrt.plugin`` stand-in) on first use, so ``import trtlab.standin``
    stays cheap (no torch)."""
    if name in ("cpu", "gpu", "trtp"):
        return importlib.import_module(f"trtlab.standin.{name}")
    if name in _HOMES:
        return getattr(importlib.import_module(f"trtlab.standin.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'trtlab.standin' has no attribute {name!r}")
