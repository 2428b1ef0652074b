"""One small runner interface for every backend, so a comparison or a benchmark is one loop over runners.

    with tl.runtime.OnnxRuntimeRunner("model.onnx") as ort_runner:
        logits = ort_runner.infer({"images": batch})["logits"]

A runner validates what it is fed (names, ranks, fixed dimensions, dtypes) and raises
:class:`~trtlab.errors.InputMismatch` saying what it got and what it expected, instead of the backend's own
opaque error. Backends implement only ``_infer``; the base class does the checking.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab import _compat
from trtlab._ort import ORT_DISABLED_OPTIMIZERS, ORT_FP16_DISABLED_OPTIMIZERS, ort_session
from trtlab.device import CupyDevice, TorchDevice, default_device
from trtlab.errors import ExecutionFailed, InputMismatch, TrtlabError
from trtlab.i18n import _

__all__ = ["CupyDevice", "ORT_DISABLED_OPTIMIZERS", "ORT_FP16_DISABLED_OPTIMIZERS", "OnnxRuntimeRunner", "Runner",
           "StageTimes", "TensorRTRunner", "TensorSpec", "TorchDevice", "TorchRunner", "default_device",
           "input_names_of", "named_outputs", "ort_session", "predict"]


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor: ``shape`` uses None for a dynamic dimension (e.g. the batch)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def describe(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"'{self.name}' ({dims}) {np.dtype(self.dtype).name}"

    def problem_with(self, array: Any) -> str | None:
        """Why ``array`` does not fit this spec, or None if it does."""
        shape, dtype = tuple(array.shape), np.dtype(str(array.dtype).replace("torch.", ""))
        if len(shape) != len(self.shape) or any(e is not None and e != g for e, g in zip(self.shape, shape)):
            return _("input '{name}': got shape {shape}, expected {expected}").format(
                name=self.name, shape=shape, expected=self.describe())
        if dtype != np.dtype(self.dtype):
            return _("input '{name}': got dtype {dtype}, expected {expected} (convert with .astype(np.{expected}))"
                     ).format(name=self.name, dtype=dtype.name, expected=np.dtype(self.dtype).name)
        return None


class Runner(abc.ABC):
    """Base of every backend runner. Subclasses set ``name``/``device`` and implement the ``_`` methods."""

    name: str = "runner"
    device: str = "cpu"

    @abc.abstractmethod
    def inputs(self) -> dict[str, TensorSpec]:
        """Input tensors by name."""

    @abc.abstractmethod
    def outputs(self) -> dict[str, TensorSpec]:
        """Output tensors by name."""

    @abc.abstractmethod
    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the backend on already validated feeds."""

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run one batch; ``feeds`` maps input names to arrays. Returns NumPy arrays by output name."""
        self.validate(feeds)
        return self._infer(dict(feeds))

    def validate(self, feeds: Mapping[str, Any]) -> None:
        expected = self.inputs()
        missing, unknown = set(expected) - set(feeds), set(feeds) - set(expected)
        if missing or unknown:
            raise InputMismatch(
                _("{name}: got inputs {got}, expected {expected}").format(name=self.name, got=sorted(feeds),
                                                                          expected=sorted(expected))
                + (_("; missing {missing}").format(missing=sorted(missing)) if missing else "")
                + (_("; unknown {unknown}").format(unknown=sorted(unknown)) if unknown else ""))
        for name, spec in expected.items():
            problem = spec.problem_with(feeds[name])
            if problem:
                raise InputMismatch(f"{self.name}: {problem}")

    def sample_feeds(self, batch: int = 1, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs that fit the runner (dynamic dims set to ``batch``): for warm-up and smoke tests."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for name, spec in self.inputs().items():
            shape = tuple(batch if d is None else d for d in spec.shape)
            feeds[name] = rng.standard_normal(shape).astype(spec.dtype)
        return feeds

    def predict(self, x: Any, *, batch_size: int = 256, input_name: str | None = None) -> dict[str, np.ndarray]:
        """Every output for all of ``x`` (the one input's array, any length), run ``batch_size`` rows at a time and
        concatenated: for accuracy over a data set, where one call would not fit the engine's profile or memory."""
        return predict(self, x, batch_size=batch_size, input_name=input_name)

    def warmup(self, feeds: Mapping[str, Any] | None = None, n: int = 10) -> None:
        """Run ``n`` times so lazy initialisation (allocations, kernel selection, JIT) stays out of timings."""
        feeds = feeds if feeds is not None else self.sample_feeds()
        for _run in range(n):
            self.infer(feeds)

    def close(self) -> None:
        """Release the backend's resources (idempotent)."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs().values())
        outs = ", ".join(s.describe() for s in self.outputs().values())
        return f"<{type(self).__name__} {self.name} on {self.device}: {ins} -> {outs}>"


def predict(runner: Any, x: Any, *, batch_size: int = 256, input_name: str | None = None) -> dict[str, np.ndarray]:
    """:meth:`Runner.predict` for any object with ``infer`` (and, to name its input, ``inputs``): ``x`` fed as the
    runner's only input (or ``input_name``) in slices of ``batch_size``, each output concatenated over the slices."""
    label = getattr(runner, "name", type(runner).__name__)
    if input_name is None:
        names = list(runner.inputs()) if hasattr(runner, "inputs") else ["images"]
        if len(names) != 1:
            raise InputMismatch(_("{label}: predict feeds one input, and this runner takes {names} | pass "
                                  "input_name=... naming the one x feeds, or call infer() with every input").format(
                                    label=label, names=names))
        input_name = names[0]
    if int(batch_size) < 1:
        raise InputMismatch(_("{label}: predict got batch_size={batch_size}, expected a positive number of "
                              "rows").format(label=label, batch_size=batch_size))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, len(x), int(batch_size)):
        for name, value in runner.infer({input_name: x[start:start + int(batch_size)]}).items():
            parts.setdefault(name, []).append(np.asarray(value))
    if not parts:
        raise InputMismatch(_("{label}: predict got an empty x (shape {shape}) | pass at least one row").format(
                                label=label, shape=np.shape(x)))
    return {name: np.concatenate(values) for name, values in parts.items()}


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def _ort_spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime (CPU by default; CUDA or TensorRT execution providers where installed), opened by
    :func:`ort_session` (so fp16 and Q/DQ models run faithfully and do not crash ONNX Runtime). ``name`` labels it
    in tables (default: ``onnxruntime-<provider>``)."""

    def __init__(self, model: str | Path | bytes, *, providers: Sequence[str] | None = None,
                 session_options: Any = None, disabled_optimizers: Sequence[str] = (),
                 name: str | None = None) -> None:
        self.session = ort_session(model, providers=providers, session_options=session_options,
                                   disabled_optimizers=disabled_optimizers)
        used = self.session.get_providers()[0]
        self.name = name or f"onnxruntime-{used.replace('ExecutionProvider', '').lower()}"
        self.device = "cpu" if used == "CPUExecutionProvider" else "cuda"
        self._inputs = {n.name: _ort_spec(n) for n in self.session.get_inputs()}
        self._outputs = {n.name: _ort_spec(n) for n in self.session.get_outputs()}

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in feeds.items()}
        values = self.session.run(list(self._outputs), arrays)
        return dict(zip(self._outputs, values))


def _first_layer_input(module: Any) -> tuple[int | None, ...] | None:
    """The per-sample input shape the module's first layer dictates: (C, H, W) with H, W free for a conv first,
    (features,) for a linear first; None when the first layer says nothing (then pass ``input_specs``)."""
    import torch.nn as nn

    for layer in module.modules():
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return (int(layer.in_channels), *[None] * (layer.weight.dim() - 2))
        if isinstance(layer, nn.Linear):
            return (int(layer.in_features),)
    return None


#: Parameter names that say nothing about what a model takes: the course's own name is used for them instead.
PLACEHOLDER_NAMES = frozenset({"x", "input", "inputs", "inp", "tensor", "data", "batch"})


def input_names_of(module: Any, count: int = 1) -> list[str]:
    """The names ``module.forward`` gives its first ``count`` inputs (``def forward(self, pixels)`` → ``pixels``), so
    an exported file and a runner follow the model; a placeholder such as ``x`` or ``input`` becomes ``images`` for a
    single input and ``input0``, ``input1``, … for several."""
    import inspect

    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # a builtin or scripted forward: no signature to read
        params = []
    names = []
    for i in range(count):
        name = params[i] if i < len(params) else ""
        names.append(name if name and name.lower() not in PLACEHOLDER_NAMES else ("images" if count == 1 else
                                                                                  f"input{i}"))
    return names


def named_outputs(out: Any) -> tuple[list[str] | None, list[Any]]:
    """(names, values) of what a model returned: a dict's keys, a named tuple's fields, ``logits`` for one tensor;
    names are None for a plain tuple or list (its outputs carry no names: the caller must give them)."""
    if isinstance(out, dict):
        return [str(k) for k in out], list(out.values())
    if isinstance(out, tuple) and hasattr(out, "_fields"):
        return list(out._fields), list(out)
    if isinstance(out, (tuple, list)):
        return (["logits"] if len(out) == 1 else None), list(out)
    return ["logits"], [out]


class TorchRunner(Runner):
    """A PyTorch module in eval mode under ``torch.inference_mode`` (the eager baseline of every comparison).

    ``input_specs`` default: one input named as ``module.forward`` names it (:func:`input_names_of`) whose channels
    (or features) come from the module's first conv (or linear) layer, other dimensions free; pass the ONNX runner's
    ``inputs().values()`` to mirror a file. ``output_names`` default: what the module's output names itself
    (:func:`named_outputs`: a dict's keys, ``logits`` for one tensor); a plain tuple of several needs one name each.
    Note that the runner puts ``module`` in eval mode on ``device`` (``tl.export.parity`` restores it afterwards).
    ``name`` labels it in tables (default: ``pytorch-<device>[-<dtype>]``).
    """

    def __init__(self, module: Any, *, input_specs: Sequence[TensorSpec] | None = None,
                 output_names: Sequence[str] | None = None, device: str | None = None,
                 dtype: Any = None, name: str | None = None) -> None:
        import torch

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.module = module.eval().to(self.device)
        self.dtype = dtype
        if dtype is not None:
            self.module = self.module.to(dtype)
        self.name = name or (f"pytorch-{self.device}"
                             + (f"-{str(dtype).replace('torch.', '')}" if dtype is not None else ""))
        if input_specs is None:
            per_sample = _first_layer_input(module)
            if per_sample is None:
                raise InputMismatch(_("TorchRunner: {type} starts with no conv or linear layer, so its input shape "
                                      "cannot be read from it | pass input_specs=[tl.runtime.TensorSpec('images', "
                                      "(None, C, H, W), np.float32)], or the ONNX runner's "
                                      "list(runner.inputs().values())").format(type=type(module).__name__))
            input_specs = [TensorSpec(input_names_of(module)[0], (None, *per_sample), np.dtype(np.float32))]
        self._inputs = {s.name: s for s in input_specs}
        self._output_names = None if output_names is None else tuple(output_names)

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return {n: TensorSpec(n, (None,), np.dtype(np.float32)) for n in (self._output_names or ("logits",))}

    def sample_feeds(self, batch: int = 1, *, seed: int = 0) -> dict[str, np.ndarray]:
        free = [s.describe() for s in self._inputs.values() if None in s.shape[1:]]
        if free:
            raise InputMismatch(_("{name}: input {inputs} has sizes only the data can fix (a conv takes any height and "
                                  "width) | pass feeds yourself, or input_specs with every size but the batch, e.g. "
                                  "the ONNX runner's list(runner.inputs().values())").format(
                                    name=self.name, inputs=', '.join(free)))
        return super().sample_feeds(batch, seed=seed)

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        torch = self.torch
        args = []
        for name in self._inputs:
            value = feeds[name]
            tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            tensor = tensor.to(self.device, non_blocking=True)
            args.append(tensor.to(self.dtype) if self.dtype is not None else tensor)
        with torch.inference_mode():
            out = self.module(*args)
        own_names, outs = named_outputs(out)
        if isinstance(out, dict) and self._output_names:  # a dict is read by name, whatever its order
            missing = [n for n in self._output_names if n not in out]
            if missing:
                raise InputMismatch(_("{name}: {type} returned outputs {own_names}, not {missing} | pass output_names "
                                      "that are keys of what the model returns").format(
                                        name=self.name, type=type(self.module).__name__, own_names=own_names,
                                        missing=missing))
            own_names, outs = list(self._output_names), [out[n] for n in self._output_names]
        names = self._output_names or own_names
        if names is None or len(names) != len(outs):
            raise InputMismatch(_("{name}: {type} returned {n_outs} outputs, but {given} given | pass "
                                  "output_names=[...] with one name per output (the ONNX file's output names, in "
                                  "order)").format(
                                    name=self.name, type=type(self.module).__name__, n_outs=len(outs),
                                    given=_("no names were") if names is None else
                                    _("{count} name(s) {names} were").format(count=len(names), names=list(names))))
        return {name: t.float().cpu().numpy() for name, t in zip(names, outs)}


# ---------------------------------------------------------------- TensorRT (and TensorRT-RTX)
#
# Device memory is owned by torch (default) or CuPy through a "device" (trtlab.device.DeviceMemory: buffers, copies,
# events, graph capture, all on one stream); trtlab.standin.SimDevice implements the same protocol on the CPU, which
# is how the runner's logic is tested without a GPU. The engine may be a stand-in (trtlab.standin): the caller
# passes it in.


@dataclass
class StageTimes:
    """trtexec's breakdown of one inference (milliseconds): H2D copy, enqueue (host), GPU compute, D2H copy."""

    h2d_ms: float
    enqueue_ms: float
    compute_ms: float
    d2h_ms: float

    @property
    def latency_ms(self) -> float:
        """trtexec's "Latency": H2D + GPU compute + D2H."""
        return self.h2d_ms + self.compute_ms + self.d2h_ms


class TensorRTRunner(Runner):
    """A TensorRT (or TensorRT-RTX) engine behind the Runner interface.

    I/O is discovered by tensor name; each call sets the input shapes (checked against the optimization profile),
    points the context at device buffers (cached per shape), runs ``execute_async_v3`` on the device's non-default
    stream and copies the outputs back. ``cuda_graph=True`` captures one CUDA graph per input shape after a first
    normal run (as trtexec does; the capture is not part of that run's stage times) and replays it on the same
    stream; TensorRT-RTX does the capture itself (``CudaGraphStrategy``).

        with tl.runtime.TensorRTRunner("resnet18.fp16.plan") as trt_runner:
            logits = trt_runner.infer({"images": x})["logits"]

    ``plan`` is a plan path, a :class:`trtlab.engine.LoadedEngine`, or an engine object (a deserialized
    ``ICudaEngine`` with ``trt=`` its module, or a stand-in from :mod:`trtlab.standin`, which carries ``.trt``).
    """

    def __init__(self, plan: Any, *, device: Any = None, cuda_graph: bool = False, name: str | None = None,
                 trt: Any = None) -> None:
        from trtlab import engine as engine_mod

        self._loaded = None
        if isinstance(plan, (str, Path)):
            plan = engine_mod.deserialize(plan)
        if isinstance(plan, engine_mod.LoadedEngine):  # the module that loaded the plan says which runtime it is
            self._loaded = plan
            eng, trt = plan.engine, plan.module
            self.is_rtx = plan.module.__name__ == "tensorrt_rtx"
            label = "tensorrt-rtx" if self.is_rtx else "tensorrt"
            name = name or f"{label}-{plan.metadata.precision}"
        else:  # an ICudaEngine, or a stand-in that keeps its contract
            eng = plan
            trt = trt or getattr(plan, "trt", None)
            if trt is None:
                raise TrtlabError(_("TensorRTRunner got a {type} without its TensorRT module | pass trt=tensorrt (or "
                                    "tensorrt_rtx), a plan path, or tl.engine.deserialize(path)").format(
                                      type=type(plan).__name__))
            self.is_rtx = _compat.made_by_rtx(eng)
            name = name or getattr(plan, "label", None)
        self.engine, self.trt = eng, trt
        self.name = name or "tensorrt"
        self.device_mem = device if device is not None else default_device()
        self.device = "cuda" if self.device_mem.name != "simulated" else "simulated"
        context, graphs_by_runtime = _compat.create_execution_context(eng, trt, rtx=self.is_rtx, cuda_graph=cuda_graph)
        self.context: Any = context
        self.cuda_graph = cuda_graph and not graphs_by_runtime  # TensorRT-RTX captures itself: never twice
        self._inputs: dict[str, TensorSpec] = {}
        self._outputs: dict[str, TensorSpec] = {}
        self.profiles: dict[str, tuple[tuple[int, ...], ...]] = {}
        for i in range(eng.num_io_tensors):
            tname = eng.get_tensor_name(i)
            shape = tuple(None if int(d) < 0 else int(d) for d in eng.get_tensor_shape(tname))
            spec = TensorSpec(tname, shape, _compat.numpy_dtype(trt, eng.get_tensor_dtype(tname)))
            if eng.get_tensor_mode(tname) == trt.TensorIOMode.INPUT:
                self._inputs[tname] = spec
                if None in shape:
                    self.profiles[tname] = tuple(tuple(int(d) for d in s) for s in eng.get_tensor_profile_shape(tname, 0))
            else:
                self._outputs[tname] = spec
        self._buffers: dict[tuple[str, tuple[int, ...]], Any] = {}
        self._graphs: dict[tuple, Any] = {}
        self._bound: tuple | None = None
        self.last_times: StageTimes | None = None

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def validate(self, feeds: Mapping[str, Any]) -> None:
        super().validate(feeds)
        for tname, (lo, _opt, hi) in self.profiles.items():
            shape = tuple(feeds[tname].shape)
            if not all(a <= s <= b for a, s, b in zip(lo, shape, hi)):
                raise InputMismatch(_("{name}: input '{tname}': got shape {shape}, outside the engine's optimization "
                                      "profile (min {lo}, max {hi}) | split the batch, or rebuild with a larger "
                                      "profile: tl.engine.build(onnx, batch=(1, 8, {max}))").format(
                                        name=self.name, tname=tname, shape=shape, lo=lo, hi=hi,
                                        max=max(shape[0], hi[0])))

    def _buffer(self, tname: str, shape: tuple[int, ...], dtype: Any) -> Any:
        key = (tname, shape)
        if key not in self._buffers:
            self._buffers[key] = self.device_mem.empty(shape, dtype)
        return self._buffers[key]

    def _set_address(self, tname: str, buf: Any) -> None:
        if not self.context.set_tensor_address(tname, self.device_mem.ptr(buf)):
            raise ExecutionFailed(_("{name}: the execution context refused the address of tensor '{tname}' "
                                    "(set_tensor_address returned False) | expected one of the engine's tensors "
                                    "{tensors} and a device pointer | see the TensorRT log above").format(
                                      name=self.name, tname=tname, tensors=sorted([*self._inputs, *self._outputs])))

    def _bind(self, shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
        """Set input shapes and tensor addresses for these shapes; returns the output buffers."""
        ctx = self.context
        for tname, shape in shapes.items():
            if not ctx.set_input_shape(tname, shape):
                raise InputMismatch(_("{name}: TensorRT refused shape {shape} for input '{tname}' | the profile is "
                                      "{profile}").format(
                                        name=self.name, shape=shape, tname=tname, profile=self.profiles.get(tname)))
            self._set_address(tname, self._buffer(tname, shape, self._inputs[tname].dtype))
        outs = {}
        for tname, spec in self._outputs.items():
            shape = tuple(int(d) for d in ctx.get_tensor_shape(tname))
            if any(d < 0 for d in shape):
                raise InputMismatch(_("{name}: output '{tname}' still has an unknown shape {shape}; an input shape is "
                                      "missing").format(name=self.name, tname=tname, shape=shape))
            outs[tname] = self._buffer(tname, shape, spec.dtype)
            self._set_address(tname, outs[tname])
        return outs

    def _execute(self) -> None:
        if not self.context.execute_async_v3(self.device_mem.stream):
            raise ExecutionFailed(_("{name}: execute_async_v3 returned False (nothing was enqueued) | see the "
                                    "TensorRT log above").format(name=self.name))

    def _capture(self) -> Any:
        """A CUDA graph of one execution with the addresses bound now; TensorRT's return value is checked too."""
        results: list[bool] = []
        graph = self.device_mem.capture(
            lambda: results.append(bool(self.context.execute_async_v3(self.device_mem.stream))))
        if results != [True]:
            raise ExecutionFailed(_("{name}: execute_async_v3 returned {results} while a CUDA graph was being "
                                    "captured (the eager run before it worked) | see the TensorRT log above, or run "
                                    "with cuda_graph=False").format(name=self.name, results=results))
        return graph

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        dev = self.device_mem
        shapes = {n: tuple(int(d) for d in np.shape(a)) for n, a in feeds.items()}
        key = tuple(sorted(shapes.items()))
        timing = hasattr(dev, "event")
        e0 = dev.event() if timing else None
        for tname, array in feeds.items():
            dev.copy_(self._buffer(tname, shapes[tname], self._inputs[tname].dtype), array)
        e1 = dev.event() if timing else None
        if self._bound != key:
            outs = self._bind(shapes)
            self._bound = key
        else:
            outs = {t: self._buffers[(t, tuple(int(d) for d in self.context.get_tensor_shape(t)))]
                    for t in self._outputs}
        graph = self._graphs.get(key) if self.cuda_graph else None
        t0 = time.perf_counter()
        if graph is not None:
            graph.replay()  # on the device's stream, after the copies above
        else:
            self._execute()
        enqueue_ms = (time.perf_counter() - t0) * 1e3
        e2 = dev.event() if timing else None
        result = {t: dev.download(buf) for t, buf in outs.items()}
        if timing:
            e3 = dev.event()
            self.last_times = StageTimes(dev.elapsed_ms(e0, e1), enqueue_ms, dev.elapsed_ms(e1, e2),
                                         dev.elapsed_ms(e2, e3))
        dev.synchronize()
        if self.cuda_graph and graph is None:  # first run of this shape was the one-time init; capture for next time
            self._graphs[key] = self._capture()
        return result

    def gpu_timer(self, feeds: Mapping[str, Any]) -> Any:
        """A ``timer`` for :func:`trtlab.bench.benchmark`: runs one inference, returns its GPU compute ms."""
        def timed() -> float:
            self.infer(feeds)
            return self.last_times.compute_ms if self.last_times else float("nan")

        return timed

    def close(self) -> None:
        self._graphs.clear()
        self._buffers.clear()
        self.context = None
