"""Lab 03 exercises: build an engine with the raw TensorRT API, write the inference loop, choose a calibration set.

The build exercise runs the learner's code against the real TensorRT-family builder (TensorRT-RTX builds without a
GPU), on a toy ONNX model so a check takes well under a second. The inference-loop exercise runs on a stand-in
that keeps TensorRT's execution contract (and its silent failure modes): with real device memory and streams where
torch sees a GPU (:mod:`trtlab.standin.gpu`), else on the CPU (:mod:`trtlab.standin.cpu`); the result says which.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

import numpy as np

from trtlab import _compat
from trtlab.check import Mismatch, assert_close, exercise

TOY_SHAPES = {"images": ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))}


# ---------------------------------------------------------------- 1. build with the raw API


class _RecordingBuilder:
    """Wraps a real ``Builder``: everything is real; the calls the exercise is about are remembered."""

    def __init__(self, trt: ModuleType, log: dict[str, Any], logger: Any) -> None:
        self._builder = trt.Builder(logger)
        self._log = log

    def create_network(self, flags: int = 0) -> Any:
        self._log["network_flags"].append(int(flags))
        return self._builder.create_network(flags)

    def create_optimization_profile(self) -> Any:
        profile = self._builder.create_optimization_profile()
        self._log["profiles"].append(profile)
        return profile

    def create_builder_config(self) -> Any:
        config = self._builder.create_builder_config()
        self._log["configs"].append(config)
        return config

    def build_serialized_network(self, network: Any, config: Any) -> Any:
        self._log["builds"] += 1
        plan = self._builder.build_serialized_network(network, config)
        self._log["plan"] = plan
        return plan

    def __getattr__(self, name: str) -> Any:
        return getattr(self._builder, name)


class _RecordingTrt:
    """A stand-in for the ``tensorrt`` module whose ``Builder`` records calls; every other name is the real one."""

    def __init__(self, trt: ModuleType) -> None:
        self._trt = trt
        self.log: dict[str, Any] = {"network_flags": [], "profiles": [], "configs": [], "builds": 0, "plan": None}

    def Builder(self, logger: Any) -> _RecordingBuilder:  # noqa: N802 - mirrors trt.Builder
        return _RecordingBuilder(self._trt, self.log, logger)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trt, name)


def _builder_module() -> ModuleType:
    return _compat.builder_flavour().module


@exercise("lab03.build_plan", title="Build a serialized engine with the raw TensorRT API", hints=(
    "Five objects, in order: Builder(logger) → network (create_network with the STRONGLY_TYPED flag) → "
    "OnnxParser(network, logger).parse(onnx_bytes) → builder config + optimization profile → "
    "build_serialized_network(network, config).",
    "parse() returns False on failure and does not raise: loop over parser.num_errors / parser.get_error(i) and "
    "raise. The input's batch dimension is -1, so the build needs a profile: profile.set_shape(name, min, opt, max) "
    "for every entry of `shapes`, then config.add_optimization_profile(profile).",
    "network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)); "
    "if not parser.parse(onnx_bytes): raise RuntimeError(parser.get_error(0).desc()); ... "
    "for name, (lo, opt, hi) in shapes.items(): profile.set_shape(name, lo, opt, hi); "
    "plan = builder.build_serialized_network(network, config); if plan is None: raise RuntimeError(...); return plan",
))
def build_plan(fn: Callable[[Any, bytes, dict], Any]) -> str:
    import onnx

    from trtlab._toy import toy_classifier_onnx

    trt = _builder_module()
    rec = _RecordingTrt(trt)
    plan = fn(rec, toy_classifier_onnx(), {k: tuple(v) for k, v in TOY_SHAPES.items()})
    log = rec.log
    if log["builds"] == 0:
        raise Mismatch("build_serialized_network was never called: the function must build and return the plan")
    if not log["network_flags"] or not log["network_flags"][-1] & _compat.network_flags(trt):
        raise Mismatch(f"create_network({log['network_flags'][-1] if log['network_flags'] else ''}): the network is "
                       "not created strongly typed. TensorRT 11 is always strongly typed, but on 10.x flags=0 gives "
                       "a weakly typed network that ignores the precision in the ONNX; pass "
                       "1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)")
    if not log["profiles"] or not any(c.num_optimization_profiles for c in log["configs"]):
        raise Mismatch("no optimization profile was added to the config: the input's batch is dynamic (-1), so "
                       "TensorRT needs min/opt/max shapes (create_optimization_profile, set_shape, "
                       "config.add_optimization_profile)")
    profile = log["profiles"][-1]
    for name, expected in TOY_SHAPES.items():
        got = tuple(tuple(int(d) for d in s) for s in profile.get_shape(name))
        if got != tuple(tuple(s) for s in expected):
            raise Mismatch(f"profile for {name!r}: min/opt/max = {got}, expected {expected} from the `shapes` "
                           "argument; use the shapes you are given, in the order (min, opt, max)")
    if plan is None:
        raise Mismatch("your function returned None: build_serialized_network returns None when the build fails; "
                       "check for None and raise, and return the plan otherwise")
    try:
        size = len(bytes(plan))
    except TypeError as err:
        raise Mismatch(f"return the serialized plan (IHostMemory or bytes); got {type(plan).__name__}") from err
    if size < 1000:
        raise Mismatch(f"the plan is only {size} bytes; return the result of build_serialized_network")

    bad = onnx.load_from_string(toy_classifier_onnx())
    bad.graph.node[1].op_type = "NotARealOp"
    try:
        fn(_RecordingTrt(trt), bad.SerializeToString(), dict(TOY_SHAPES))
    except Exception:  # noqa: BLE001 - any raise is right: the learner noticed the parser failure
        pass
    else:
        raise Mismatch("with an ONNX containing an unsupported op your function returned normally: parser.parse "
                       "returns False (it does not raise). Check its result and raise with parser.get_error(i)")
    return f"built a {size / 1024:.0f} KiB plan with {trt.__name__} {trt.__version__}; parser errors are caught"


# ---------------------------------------------------------------- 2. the inference loop


_SIM_WEIGHT_SEED = 0  # SimEngine's default seed: both stand-ins compute the same model


class _WatchedDevice:
    """A real device (``TorchDevice``) that refuses a -1 dimension and notes when a buffer is freed, so the checker
    can say what the CPU stand-in says: a buffer freed before ``execute_async_v3`` ran."""

    def __init__(self, device: Any, calls: list) -> None:
        self._device, self._calls = device, calls

    def _watch(self, buf: Any) -> Any:
        import weakref

        weakref.finalize(buf, self._calls.append, ("free", self._device.ptr(buf)))
        return buf

    def empty(self, shape: Any, dtype: Any) -> Any:
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"cannot allocate a buffer of shape {shape}: -1 marks a dynamic dimension. Ask the "
                             "execution context for the concrete shape (context.get_tensor_shape) after "
                             "set_input_shape, not the engine")
        return self._watch(self._device.empty(shape, dtype))

    def upload(self, array: Any) -> Any:
        return self._watch(self._device.upload(array))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)


def _gpu_standin() -> tuple[Any, Any, Any]:
    """The checker's engine on the GPU: SimEngine's model (average pool → linear) in PyTorch, real addresses."""
    import torch

    from trtlab.runtime import TorchDevice
    from trtlab.standin.gpu import GpuEngine

    weight = np.random.default_rng(_SIM_WEIGHT_SEED).standard_normal((3, 4)).astype(np.float32)
    linear = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(weight.T.copy()))
    model = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), linear)
    engine = GpuEngine(model, inputs={"images": ((-1, 3, 8, 8), np.float32)}, outputs={"logits": ((-1, 4), np.float32)},
                       profiles={"images": TOY_SHAPES["images"]}, name="the checker's model")
    context = engine.create_execution_context()
    return engine, context, _WatchedDevice(TorchDevice(), context.calls)


def _standin() -> tuple[Any, Any, Any, str]:
    """(engine, context, device, where): the GPU stand-in where torch sees a GPU, else the CPU one."""
    from trtlab.env import capabilities

    if capabilities().torch_cuda:
        return (*_gpu_standin(), "the GPU stand-in (real device memory and streams; PyTorch computes, TensorRT "
                                 "is not used)")
    from trtlab.standin.cpu import SimDevice, SimEngine

    engine = SimEngine(batch=(1, 4, 16), seed=_SIM_WEIGHT_SEED)
    return engine, engine.create_execution_context(), SimDevice(engine.memory), "the CPU stand-in (no GPU here)"


def _freed_before_execute(calls: list) -> str | None:
    """A buffer whose address was handed to the context, then freed before execute_async_v3 ran."""
    bound: dict[str, int] = {}
    for name, arg in calls:
        if name == "set_tensor_address":
            bound[arg[0]] = arg[1]
        elif name == "free" and arg in bound.values():
            return next(tensor for tensor, ptr in bound.items() if ptr == arg)
        elif name == "execute_async_v3":
            return None
    return None


@exercise("lab03.run_engine", title="The inference loop: shapes, addresses, execute_async_v3", hints=(
    "For each input: tell the context its shape, put the data in device memory, give the context that address. "
    "For each output: ask the context for its shape (only known once the inputs' shapes are set), allocate, give "
    "the address. Then execute on the device's stream, and copy the outputs back.",
    "context.set_input_shape(name, array.shape); buf = device.upload(array); "
    "context.set_tensor_address(name, device.ptr(buf)). Find outputs with engine.get_tensor_mode(name) == "
    "trt.TensorIOMode.OUTPUT over range(engine.num_io_tensors); their shape is context.get_tensor_shape(name), "
    "their dtype comes from engine.get_tensor_dtype(name) (tl._compat.numpy_dtype converts it).",
    "ok = context.execute_async_v3(device.stream); if not ok: raise RuntimeError(...); device.synchronize(); "
    "return {name: device.download(buf) for name, buf in out_buffers.items()}",
))
def run_engine(fn: Callable[..., Any], *, engine: Any = None, context: Any = None, device: Any = None) -> str:
    where = "the TensorRT engine"
    if engine is None:
        engine, context, device, where = _standin()
    trt = getattr(engine, "trt", None) or _builder_module()
    rng = np.random.default_rng(3)
    for batch in (5, 2):
        x = rng.random((batch, 3, 8, 8), dtype=np.float32)
        calls_before = len(getattr(context, "calls", []))
        errors_before = len(getattr(context, "errors", []))
        out = fn(trt, engine, context, {"images": x}, device)
        calls = getattr(context, "calls", [])[calls_before:]
        freed = _freed_before_execute(calls)
        if freed:
            raise Mismatch(f"batch {batch}: the buffer of {freed!r} was freed before the engine used it: the context "
                           "holds only its address. Keep a reference to every device buffer, e.g. in a dict, until "
                           "after synchronize")
        new_errors = getattr(context, "errors", [])[errors_before:]
        errors = "; ".join(new_errors[-2:])
        failed = [e for e in new_errors if e.startswith("execute_async_v3:") or e.startswith("set_")]
        if failed:
            raise Mismatch(f"batch {batch}: TensorRT reported: {'; '.join(failed)}. Its calls return False instead "
                           "of raising, so your code carried on: check the return values of set_input_shape, "
                           "set_tensor_address and execute_async_v3")
        if not isinstance(out, dict) or "logits" not in out:
            raise Mismatch(f"return a dict of NumPy arrays by output name, like {{'logits': array}}; got "
                           f"{type(out).__name__}{' with keys ' + str(sorted(out)) if isinstance(out, dict) else ''}")
        executes = [arg for name, arg in calls if name == "execute_async_v3"]
        if calls and not executes:
            raise Mismatch("execute_async_v3 was never called")
        if executes and executes[-1] in (0, None):
            raise Mismatch("execute_async_v3 ran on the default stream (0): it serialises with all other GPU work; "
                           "pass device.stream")
        got = np.asarray(out["logits"])
        expected = engine.reference(x) if hasattr(engine, "reference") else None
        if expected is None:
            return "ran on the TensorRT engine"
        if got.shape != expected.shape:
            raise Mismatch(f"batch {batch}: logits have shape {got.shape}, expected {expected.shape}. The output "
                           "shape depends on the input shape: ask context.get_tensor_shape(name) after "
                           "set_input_shape, not engine.get_tensor_shape (which has -1 for the batch)"
                           + (f". TensorRT said: {errors}" if errors else ""))
        if not np.any(got):
            raise Mismatch(f"batch {batch}: the logits are all zero, so the engine never wrote them. TensorRT said: "
                           f"{errors or 'nothing'}. Did you check execute_async_v3's return value (it returns "
                           "False instead of raising)?")
        try:
            assert_close(got, expected, rtol=1e-5, atol=1e-5, name=f"logits (batch {batch})")
        except Mismatch as wrong:
            raise Mismatch(f"{wrong} Were the inputs uploaded as float32 and the output buffer allocated with the "
                           "engine's dtype?") from None
    return f"both batch sizes (5, then 2 on the same context) match the reference on {where}"


# ---------------------------------------------------------------- 3. choosing a calibration set


def _calibration_pool(n: int = 2000, classes: int = 10, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A pool sorted by brightness (as a camera log sorted by time of day would be): the trap is to take the first n."""
    rng = np.random.default_rng(seed)
    brightness = np.sort(rng.uniform(0.2, 1.5, n))
    labels = rng.integers(0, classes, n)
    return brightness, labels


@exercise("lab03.choose_calibration", title="Choose a calibration set that covers the inputs", hints=(
    "INT8 scales are set from the ranges seen during calibration. Which images must the calibration set contain "
    "so that no real input falls outside those ranges?",
    "The pool you get is sorted by brightness, so the first n are the darkest. Sample across the whole range "
    "(and all classes): without replacement, spread over brightness quantiles.",
    "A plain rng = np.random.default_rng(seed); rng.choice(len(labels), size=n, replace=False) already covers the "
    "range; stratifying by brightness quantile × class (np.quantile, np.digitize) guarantees it.",
))
def choose_calibration(fn: Callable[..., Any]) -> str:
    brightness, labels = _calibration_pool()
    n = 256
    idx = np.asarray(fn(brightness, labels, n, seed=0))
    if idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise Mismatch(f"return a 1-D array of integer indices into the pool; got dtype {idx.dtype}, shape {idx.shape}")
    if len(idx) != n:
        raise Mismatch(f"asked for {n} images, got {len(idx)}")
    if idx.min() < 0 or idx.max() >= len(labels):
        raise Mismatch(f"indices must be in 0..{len(labels) - 1}; got {idx.min()}..{idx.max()}")
    if len(np.unique(idx)) != n:
        raise Mismatch(f"{n - len(np.unique(idx))} duplicate indices: sample without replacement (replace=False); "
                       "a duplicate adds no information about the activation ranges")
    quartile = np.digitize(brightness[idx], np.quantile(brightness, [0.25, 0.5, 0.75]))
    share = np.bincount(quartile, minlength=4) / n
    spread = ", ".join(f"{v:.0%}" for v in share)
    if share[3] < 0.12:
        first_n = " The pool is sorted by brightness, so the first n are the darkest." if share[0] > 0.5 else ""
        raise Mismatch(f"only {share[3]:.0%} of your images come from the brightest quarter of the pool (expected "
                       f"about 25%; darkest→brightest: {spread}).{first_n} Activation ranges calibrated on darker "
                       "images are too narrow, so bright inputs will clip in INT8")
    if share[0] < 0.12:
        raise Mismatch(f"only {share[0]:.0%} of your images come from the darkest quarter (darkest→brightest: "
                       f"{spread}). Dark inputs will not clip (bright ranges cover them), but the set no longer "
                       "represents the data: sample across the whole brightness range")
    if share.min() < 0.12:
        raise Mismatch(f"your images leave a gap in the brightness range (darkest→brightest quarters: {spread}); "
                       "sample across the whole range")
    per_class = np.bincount(labels[idx], minlength=labels.max() + 1)
    if per_class.min() == 0:
        raise Mismatch(f"class {int(per_class.argmin())} is missing from your calibration set: cover every class")
    return ("brightness quarters " + " / ".join(f"{v:.0%}" for v in share)
            + f"; every class present (min {per_class.min()} images)")
