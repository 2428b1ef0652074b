"""The GPU stand-in for a TensorRT engine: TensorRT's execution contract, with PyTorch computing the real model.

Where a GPU is present but TensorRT cannot execute the plan (not installed, or TensorRT-RTX on a GPU it does not
support, such as Hopper), Lab 03's inference loop and ``tl.runtime.TensorRTRunner`` still have to run for real:
device buffers, addresses, streams, CUDA graphs. :class:`GpuEngine` keeps exactly that contract:

- the engine/context calls the course uses, with TensorRT's enums and return values (``set_input_shape`` outside
  the profile → ``False``; ``set_tensor_address`` for an unknown tensor → ``False``; ``execute_async_v3`` with a
  shape or an address missing → ``False``);
- ``execute_async_v3(stream)`` reads the inputs from, and writes the outputs to, only the raw addresses given with
  ``set_tensor_address``, and enqueues all its work on ``stream`` (``torch.cuda.ExternalStream``), so stream-ordering
  mistakes show up as wrong outputs, as they would with TensorRT;
- it can be captured into a CUDA graph by torch (``torch.cuda.CUDAGraph`` on the caller's stream) or by CuPy
  (``Stream.begin_capture``), like an engine (enqueue once before capturing, as TensorRT advises).

Memory during a capture: the model's intermediate tensors are allocated while the stream records, so the graph
keeps their addresses and reuses them at every replay. They must never go back to memory that other work can
reuse. Under a torch capture, torch routes them to the graph's private pool already. Under a capture torch does not
know about (CuPy's), torch's allocator would hand them back to its general pool after the call, and later tensors
would overwrite what the graph still reads. So each capture allocates from a fresh ``torch.cuda.MemPool`` that
the engine owns and never reuses: its blocks stay reserved for as long as the engine lives (a TensorRT graph is
valid only while its context and engine are, so the lifetime matches). A pool per capture costs one forward
pass's activations per captured shape.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab import _compat
from trtlab.errors import ArtifactMissing, EngineMismatch, UnsupportedFeature
from trtlab.i18n import _
from trtlab.standin import ContextContract, EngineIO, trt_enums

__all__ = ["GpuContext", "GpuEngine", "gpu_engine", "io_from_metadata"]

#: {name: (shape with -1 for dynamic dims, NumPy dtype)}
IOSpec = Mapping[str, tuple[Sequence[int], Any]]

_TRT_TYPE_NAMES = {np.dtype(np.float32): "FLOAT", np.dtype(np.float16): "HALF", np.dtype(np.int8): "INT8",
                   np.dtype(np.int32): "INT32", np.dtype(np.int64): "INT64", np.dtype(np.bool_): "BOOL",
                   np.dtype(np.uint8): "UINT8"}


class _DevicePointer:
    """A raw device address seen as an array (CUDA Array Interface v2): ``torch.as_tensor`` wraps it, no copy."""

    def __init__(self, ptr: int, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.__cuda_array_interface__ = {"data": (int(ptr), False), "shape": tuple(int(d) for d in shape),
                                         "typestr": np.dtype(dtype).str, "version": 2}


@dataclass(frozen=True)
class _Tensor:
    name: str
    is_input: bool
    shape: tuple[int, ...]  # -1 for a dynamic dimension
    dtype: np.dtype
    profile: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None


def _tensor_table(inputs: IOSpec, outputs: IOSpec,
                  profiles: Mapping[str, Sequence[Sequence[int]]] | None) -> list[_Tensor]:
    """Validate the I/O description; every input gets a (min, opt, max) profile (a fixed input: its shape, 3×)."""
    if not inputs or not outputs:
        raise ValueError(f"a stand-in engine needs at least one input and one output; got inputs {list(inputs)}, "
                         f"outputs {list(outputs)}")
    profiles = dict(profiles or {})
    table = []
    for name, (shape, dtype) in inputs.items():
        shape = tuple(int(d) for d in shape)
        if name in profiles:
            lo, opt, hi = (tuple(int(d) for d in s) for s in profiles[name])
        elif -1 in shape:
            raise ValueError(f"input {name!r} has a dynamic shape {shape} but no profile | pass "
                             f"profiles={{{name!r}: (min, opt, max)}}")
        else:
            lo = opt = hi = shape
        ok = all(len(s) == len(shape) for s in (lo, opt, hi)) and all(
            (d == -1 or d == a == b == c) and 0 <= a <= b <= c for d, a, b, c in zip(shape, lo, opt, hi))
        if not ok:
            raise ValueError(f"profile for {name!r}: min {lo}, opt {opt}, max {hi} does not fit the shape {shape} "
                             "(same rank, fixed dims unchanged, min <= opt <= max)")
        table.append(_Tensor(name, True, shape, np.dtype(dtype), (lo, opt, hi)))
    first = table[0].shape
    for name, (shape, dtype) in outputs.items():
        shape = tuple(int(d) for d in shape)
        for axis, d in enumerate(shape):
            if d == -1 and not (axis < len(first) and first[axis] == -1):
                raise ValueError(f"output {name!r} {shape}: a stand-in takes a dynamic output dimension from the "
                                 f"same axis of the first input {first}, and axis {axis} is not dynamic there")
        table.append(_Tensor(name, False, shape, np.dtype(dtype), None))
    for t in table:
        if t.dtype not in _TRT_TYPE_NAMES:
            raise ValueError(f"tensor {t.name!r}: dtype {t.dtype} has no TensorRT DataType here")
    return table


class GpuEngine(EngineIO):
    """An engine stand-in on the GPU: TensorRT's engine API; ``module`` (PyTorch) computes the outputs.

        engine = tl.standin.GpuEngine(model, inputs={"images": ((-1, 3, 32, 32), np.float32)},
                                      outputs={"logits": ((-1, 10), np.float32)},
                                      profiles={"images": ((1, 3, 32, 32), (8, 3, 32, 32), (32, 3, 32, 32))})
        print(engine.announcement)

    ``module`` is copied (the caller's model stays where it is) and run in eval mode, in ``dtype`` if given
    (e.g. ``torch.float16`` for an fp16 plan; the I/O keeps the declared dtypes). A dynamic output dimension takes
    its size from the same axis of the first input (the batch).
    """

    def __init__(self, module: Any, inputs: IOSpec, outputs: IOSpec,
                 profiles: Mapping[str, Sequence[Sequence[int]]] | None = None, *, trt: ModuleType | None = None,
                 name: str | None = None, dtype: Any = None, device: Any = "cuda") -> None:
        import torch

        if not torch.cuda.is_available():
            raise UnsupportedFeature("the GPU stand-in needs PyTorch with CUDA; this torch sees no GPU | on a CPU "
                                     "machine use tl.standin.SimEngine (the Lab 03 checker does), or "
                                     "tl.runtime.OnnxRuntimeRunner for real outputs")
        self._tensors = _tensor_table(inputs, outputs, profiles)
        self.trt = trt or trt_enums()
        self.device = torch.device(device)
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        self.module = copy.deepcopy(module).eval().to(self.device)
        if dtype is not None:
            self.module = self.module.to(dtype)
        self.compute_dtype = dtype or next((p.dtype for p in self.module.parameters()), torch.float32)
        self.name = name or type(module).__name__
        self.label = "standin-gpu"
        self.num_optimization_profiles = 1
        self.device_memory_size_v2 = 0
        self._capture_pools: list[Any] = []  # one per capture; see the module docstring

    @property
    def announcement(self) -> str:
        """What the notebook prints so the stand-in is never mistaken for TensorRT, in the language in use."""
        return _("GPU stand-in: TensorRT is not installed here (or cannot run this plan); PyTorch computes {model} on "
                 "the stream TensorRT would use. Timings are PyTorch's, not TensorRT's.").format(model=self.name)

    # ------------------------------------------------------------ ICudaEngine's API
    def get_tensor_mode(self, name: str) -> Any:
        if name not in self.names:
            return self.trt.TensorIOMode.NONE  # what TensorRT answers for an unknown name
        return self.trt.TensorIOMode.INPUT if self._get(name).is_input else self.trt.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name: str) -> Any:
        return getattr(self.trt.DataType, _TRT_TYPE_NAMES[self._get(name).dtype])

    def create_execution_context(self, *args: Any) -> "GpuContext":
        return GpuContext(self)

    # ------------------------------------------------------------ for checkers and tests
    @property
    def names(self) -> list[str]:
        return [t.name for t in self._tensors]

    def tensors(self, *, inputs: bool) -> list[_Tensor]:
        return [t for t in self._tensors if t.is_input == inputs]

    def forward(self, xs: Sequence[Any]) -> list[Any]:
        """The module on device tensors (cast to the compute dtype); one tensor per declared output."""
        xs = [x.to(self.compute_dtype) if x.is_floating_point() else x for x in xs]
        ys = self.module(*xs)
        ys = list(ys) if isinstance(ys, (tuple, list)) else [ys]
        if len(ys) != len(self.tensors(inputs=False)):
            raise RuntimeError(f"the model returned {len(ys)} tensors, the engine declares outputs "
                               f"{[t.name for t in self.tensors(inputs=False)]}")
        return ys

    def reference(self, *arrays: Any) -> np.ndarray:
        """What a correct inference loop returns for these inputs (first output), computed eagerly on the GPU."""
        import torch

        with torch.inference_mode(), torch.cuda.device(self.device):
            xs = [torch.as_tensor(np.ascontiguousarray(a), device=self.device) for a in arrays]
            y = self.forward(xs)[0]
            return y.cpu().numpy().astype(self.tensors(inputs=False)[0].dtype)


class GpuContext(ContextContract):
    """An execution context of :class:`GpuEngine`; ``calls`` and ``errors`` record what happened (for checkers)."""

    def __init__(self, engine: GpuEngine) -> None:
        super().__init__(engine)
        self._views: dict[tuple, Any] = {}
        self._streams: dict[int, Any] = {}

    def get_tensor_shape(self, name: str) -> tuple[int, ...]:
        self.calls.append(("get_tensor_shape", name))
        t = self.engine._get(name)
        if t.is_input:
            return self.shapes.get(name, t.shape)
        first = self.engine.tensors(inputs=True)[0]
        known = self.shapes.get(first.name)
        return tuple(d if d >= 0 or known is None else known[axis] for axis, d in enumerate(t.shape))

    def set_tensor_address(self, name: str, ptr: int) -> bool:
        if int(ptr) == 0 and any(t.name == name for t in self.engine._tensors):  # real memory: 0 is never valid
            self.calls.append(("set_tensor_address", (name, 0)))
            self.errors.append(f"set_tensor_address: a null address for {name!r}")
            return False
        return super().set_tensor_address(name, ptr)

    def get_tensor_address(self, name: str) -> int:
        return self.addresses.get(name, 0)

    def _run(self, stream_handle: int) -> bool:
        try:
            self._enqueue(int(stream_handle or 0))
        except RuntimeError as err:  # TensorRT logs and returns False; so does the stand-in
            self.errors.append(f"execute_async_v3: {err}")
            return False
        return True

    def _stream(self, handle: int) -> Any:
        import torch

        if handle not in self._streams:
            self._streams[handle] = (torch.cuda.ExternalStream(handle, device=self.engine.device) if handle
                                     else torch.cuda.default_stream(self.engine.device))
        return self._streams[handle]

    def _view(self, name: str) -> Any:
        """The tensor at the address set for ``name`` (a view of that memory, cached per address and shape)."""
        import torch

        t = self.engine._get(name)
        shape = self.get_tensor_shape(name)
        key = (name, self.addresses[name], shape, t.dtype)
        if key not in self._views:
            if len(self._views) > 64:  # addresses from a loop that allocates per call: forget old views
                self._views.clear()
            pointer = _DevicePointer(self.addresses[name], shape, t.dtype)
            self._views[key] = torch.as_tensor(pointer, device=self.engine.device)
        return self._views[key]

    def _enqueue(self, handle: int) -> None:
        import torch

        engine = self.engine
        with torch.cuda.device(engine.device), torch.cuda.stream(self._stream(handle)), torch.inference_mode():
            pool: Any = contextlib.nullcontext()
            if torch.cuda.is_current_stream_capturing():
                engine._capture_pools.append(torch.cuda.MemPool())
                pool = torch.cuda.use_mem_pool(engine._capture_pools[-1], engine.device)
            with pool:
                ys = engine.forward([self._view(t.name) for t in engine.tensors(inputs=True)])
                for t, y in zip(engine.tensors(inputs=False), ys):
                    out = self._view(t.name)
                    if tuple(y.shape) != tuple(out.shape):
                        raise RuntimeError(f"the model gave {t.name!r} the shape {tuple(y.shape)}; the context "
                                           f"expects {tuple(out.shape)}")
                    out.copy_(y)


def io_from_metadata(meta: Any) -> tuple[dict, dict, dict]:
    """(inputs, outputs, profiles) for :class:`GpuEngine` from a plan's sidecar (:class:`EngineMetadata`)."""
    if not meta.inputs or not meta.outputs:
        raise EngineMismatch("the plan's metadata does not describe its inputs and outputs (an older sidecar) | "
                             "rebuild it with tl.engine.build(onnx, ...)")

    def spec(entry: Mapping[str, Any]) -> tuple[tuple[int, ...], np.dtype]:
        return tuple(int(d) for d in entry["shape"]), _compat.numpy_dtype(None, str(entry["dtype"]))  # type: ignore[arg-type]

    inputs = {name: spec(entry) for name, entry in meta.inputs.items()}
    outputs = {name: spec(entry) for name, entry in meta.outputs.items()}
    profiles = {name: tuple(tuple(int(d) for d in s) for s in shapes) for name, shapes in meta.profiles.items()}
    return inputs, outputs, profiles


def gpu_engine(plan_path: str | Path, module: Any, *, trt: ModuleType | None = None, dtype: Any = None,
               name: str | None = None) -> GpuEngine:
    """A :class:`GpuEngine` with the I/O names, dtypes and profile of a built plan (from its metadata sidecar).

    ``module`` is the PyTorch model the plan was built from; it computes in fp16 when the plan is fp16 (unless
    ``dtype`` says otherwise). The enums come from the module that built the plan when it imports here.
    """
    from trtlab.engine import read_metadata

    path = Path(plan_path)
    if not path.exists():
        raise ArtifactMissing(f"engine {path} does not exist | build it first: tl.engine.build(onnx_path, "
                              f"out={str(path)!r})")
    meta = read_metadata(path)
    inputs, outputs, profiles = io_from_metadata(meta)
    if trt is None:
        with contextlib.suppress(Exception):
            trt = importlib.import_module(meta.backend)
    if dtype is None and meta.precision == "fp16":
        import torch

        dtype = torch.float16
    engine = GpuEngine(module, inputs, outputs, profiles, trt=trt, dtype=dtype,
                       name=name or f"{type(module).__name__} (for {path.name}, {meta.precision})")
    engine.metadata = meta  # type: ignore[attr-defined]
    return engine
