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
from typing import Any

from trtlab import _compat

__all__ = ["EngineIO", "GpuContext", "GpuEngine", "SimContext", "SimDevice", "SimEngine", "SimMemory", "gpu_engine",
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


def __getattr__(name: str) -> Any:
    """Import ``cpu`` / ``gpu`` on first use, so ``import trtlab.standin`` stays cheap (no torch)."""
    if name in ("cpu", "gpu"):
        return importlib.import_module(f"trtlab.standin.{name}")
    if name in _HOMES:
        return getattr(importlib.import_module(f"trtlab.standin.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'trtlab.standin' has no attribute {name!r}")
