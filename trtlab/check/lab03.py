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
from trtlab.i18n import N_, _

__all__ = ["build_plan", "choose_calibration", "fp32_layers", "run_engine"]


TOY_SHAPES = {"images": ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))}
# The build is checked on two models, so that neither the input name nor the shapes can be hard-coded: the toy
# classifier, and the same graph with a long input name and another profile (min 2, opt 3, max 7, 12×12 images).
LONG_NAME = "pixel_values_from_camera_0_normalised_nchw"
LONG_SHAPES = {LONG_NAME: ((2, 3, 12, 12), (3, 3, 12, 12), (7, 3, 12, 12))}


# ---------------------------------------------------------------- 1. build with the raw API


def _recording_module(trt: ModuleType, log: dict[str, Any]) -> ModuleType:
    """A copy of the ``tensorrt`` module whose ``Builder`` is a subclass of the real one that remembers the calls the
    exercise is about. Everything else is the real thing: every other name of the module, ``isinstance`` checks,
    the context-manager style of NVIDIA's samples (``with trt.Builder(logger) as builder, ...``; the bindings call
    context managers deprecated and without effect, but still accept them), and its class name is ``Builder``."""

    class Builder(trt.Builder):  # type: ignore[name-defined, misc]
        def create_network(self, flags: int = 0) -> Any:
            log["network_flags"].append(int(flags))
            return super().create_network(flags)

        def create_optimization_profile(self) -> Any:
            profile = super().create_optimization_profile()
            log["profiles"].append(profile)
            return profile

        def create_builder_config(self) -> Any:
            config = super().create_builder_config()
            log["configs"].append(config)
            return config

        def build_serialized_network(self, network: Any, config: Any) -> Any:
            log["builds"] += 1
            plan = super().build_serialized_network(network, config)
            log["plan"] = plan
            return plan

    Builder.__module__ = trt.__name__
    module = ModuleType(trt.__name__, trt.__doc__)
    module.__dict__.update({k: v for k, v in vars(trt).items() if k not in ("__name__", "__doc__")})
    module.Builder = Builder  # type: ignore[attr-defined]
    return module


def _new_log() -> dict[str, Any]:
    return {"network_flags": [], "profiles": [], "configs": [], "builds": 0, "plan": None}


def _builder_module() -> ModuleType:
    from trtlab.env import builder_flavour

    return builder_flavour().module


def _with_input_name(onnx_bytes: bytes, name: str, size: int) -> bytes:
    """The toy graph with its input renamed (every reference to it too)."""
    import onnx

    from trtlab._toy import toy_classifier_onnx

    model = onnx.load_from_string(toy_classifier_onnx(size=size))
    old = model.graph.input[0].name
    model.graph.input[0].name = name
    for node in model.graph.node:
        node.input[:] = [name if i == old else i for i in node.input]
    return model.SerializeToString()


def _profile_shape(profile: Any, name: str) -> tuple | None:
    """min/opt/max the profile holds for ``name``; None when it holds none (TensorRT then logs an error and
    returns an empty list)."""
    try:
        shapes = profile.get_shape(name)
    except Exception:  # noqa: BLE001 - older bindings raise instead
        return None
    return tuple(tuple(int(d) for d in s) for s in shapes) or None


def _build_failure_cause(log: dict[str, Any], shapes: dict) -> str | None:
    """Why build_serialized_network returned None, when the log shows it: a missing, unadded, invalid or misnamed
    profile."""
    if log["builds"] == 0 or log["plan"] is not None:
        return None
    missing = [n for n in shapes if log["profiles"] and _profile_shape(log["profiles"][-1], n) is None]
    if missing:
        return _("the optimization profile sets no shape for the input {name!r}, so build_serialized_network "
                 "returned None: call profile.set_shape for every name in `shapes` (do not hard-code "
                 "'images')").format(name=missing[0])
    if not log["profiles"]:
        return _("no optimization profile was created: the input's batch is dynamic (-1), so TensorRT needs "
                 "min/opt/max shapes (builder.create_optimization_profile(), profile.set_shape(name, min, opt, max), "
                 "config.add_optimization_profile(profile)) and build_serialized_network returned None")
    if any(c.num_optimization_profiles for c in log["configs"]):
        return None
    if not all(bool(p) for p in log["profiles"]):  # IOptimizationProfile is falsy when it is not valid
        return _("the optimization profile is not valid, so config.add_optimization_profile refused it (it returns "
                 "-1, it does not raise) and build_serialized_network returned None. Every input needs a shape with "
                 "min ≤ opt ≤ max in every dimension: pass the `shapes` entries in the order (min, opt, max)")
    return _("an optimization profile was created but never added to the config: call "
             "config.add_optimization_profile(profile) before build_serialized_network (which returned None)")


@exercise("lab03.build_plan", title=N_("Build a serialized engine with the raw TensorRT API"), hints=(
    N_("Five objects, in order: Builder(logger) → network (create_network with the STRONGLY_TYPED flag) → "
       "OnnxParser(network, logger).parse(onnx_bytes) → builder config + optimization profile → "
       "build_serialized_network(network, config)."),
    N_("parse() returns False on failure and does not raise: loop over parser.num_errors / parser.get_error(i) and "
       "raise. The input's batch dimension is -1, so the build needs a profile: profile.set_shape(name, min, opt, "
       "max) for every entry of `shapes`, then config.add_optimization_profile(profile)."),
    "network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)); "
    "if not parser.parse(onnx_bytes): raise RuntimeError(parser.get_error(0).desc()); ... "
    "for name, (lo, opt, hi) in shapes.items(): profile.set_shape(name, lo, opt, hi); "
    "plan = builder.build_serialized_network(network, config); if plan is None: raise RuntimeError(...); return plan",
), time_limit_s=120)  # measured 1–4 s on 2 busy cores: three TensorRT-RTX builds of a toy network on the CPU
def build_plan(fn: Callable[[Any, bytes, dict], Any]) -> str:
    """Two models (``TOY_SHAPES`` and ``LONG_SHAPES``: another input name and profile), then an ONNX with an
    unsupported op that must make the function raise."""
    import onnx

    from trtlab._toy import toy_classifier_onnx

    trt = _builder_module()
    sizes = []
    for onnx_bytes, shapes in ((toy_classifier_onnx(), TOY_SHAPES),
                               (_with_input_name(toy_classifier_onnx(), LONG_NAME, 12), LONG_SHAPES)):
        sizes.append(_check_one_build(fn, trt, onnx_bytes, shapes))

    bad = onnx.load_from_string(toy_classifier_onnx())
    bad.graph.node[1].op_type = "NotARealOp"
    try:
        fn(_recording_module(trt, _new_log()), bad.SerializeToString(), dict(TOY_SHAPES))
    except Exception:  # noqa: BLE001 - any raise is right: the learner noticed the parser failure
        pass
    else:
        raise Mismatch(_("with an ONNX containing an unsupported op your function returned normally: parser.parse "
                         "returns False (it does not raise). Check its result and raise with parser.get_error(i)"))
    return _("built plans of {sizes} (inputs 'images' and {name!r}) with {module} {version}; parser errors are "
             "caught").format(sizes=_(" and ").join(f"{s / 1024:.0f} KiB" for s in sizes), name=LONG_NAME,
                              module=trt.__name__, version=trt.__version__)


def _check_one_build(fn: Callable[..., Any], trt: ModuleType, onnx_bytes: bytes, shapes: dict) -> int:
    log = _new_log()
    try:
        plan = fn(_recording_module(trt, log), onnx_bytes, {k: tuple(v) for k, v in shapes.items()})
    except Exception as err:
        cause = _build_failure_cause(log, shapes)
        if cause is None:
            raise
        raise Mismatch(_("your function raised {kind} ({err}) because {cause}").format(
            kind=type(err).__name__, err=err, cause=cause)) from None
    if log["builds"] == 0:
        raise Mismatch(_("build_serialized_network was never called on the `trt` module passed to your function: "
                         "build with it (if you wrote `import tensorrt` yourself, use the `trt` argument instead; the "
                         "checker passes the builder this machine has) and return the plan"))
    if not log["network_flags"] or not log["network_flags"][-1] & _compat.network_flags(trt):
        raise Mismatch(_("create_network({flags}): the network is not created strongly typed. TensorRT 11 is always "
                         "strongly typed, but on 10.x flags=0 gives a weakly typed network that ignores the precision "
                         "in the ONNX; pass 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)").format(
                             flags=log["network_flags"][-1] if log["network_flags"] else ""))
    cause = _build_failure_cause(log, shapes)
    if cause is not None:
        raise Mismatch(_("{cause}; your function did not notice").format(cause=f"{cause[0].upper()}{cause[1:]}"))
    profile = log["profiles"][-1] if log["profiles"] else None
    for name, expected in shapes.items():
        got = _profile_shape(profile, name) if profile is not None else None
        if got != tuple(tuple(s) for s in expected):
            raise Mismatch(_("profile for {name!r}: min/opt/max = {got}, expected {expected} from the `shapes` "
                             "argument; use the names and shapes you are given, in the order (min, opt, "
                             "max)").format(name=name, got=got, expected=expected))
    if plan is None:
        raise Mismatch(_("your function returned None: build_serialized_network returns None when the build fails; "
                         "check for None and raise, and return the plan otherwise"))
    try:
        size = len(bytes(plan))
    except TypeError as err:
        raise Mismatch(_("return the serialized plan (IHostMemory or bytes); got {kind}").format(
            kind=type(plan).__name__)) from err
    if size < 1000:
        raise Mismatch(_("the plan is only {size} bytes; return the result of build_serialized_network").format(
            size=size))
    return size


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
            raise ValueError(_("cannot allocate a buffer of shape {shape}: -1 marks a dynamic dimension. Ask the "
                               "execution context for the concrete shape (context.get_tensor_shape) after "
                               "set_input_shape, not the engine").format(shape=shape))
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
        return (*_gpu_standin(), _("the GPU stand-in (real device memory and streams; PyTorch computes, TensorRT "
                                   "is not used)"))
    from trtlab.standin.cpu import SimDevice, SimEngine

    engine = SimEngine(batch=(1, 4, 16), seed=_SIM_WEIGHT_SEED)
    return engine, engine.create_execution_context(), SimDevice(engine.memory), _("the CPU stand-in (no GPU here)")


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


# float32 bound of the stand-ins' model (mean over H·W = 64 pixels of values in [0, 1), then a 3-term dot product
# with weights W): k = 64 + 3 roundings, each at most u relative to the partial sums, which are bounded by
# Σ_c |W[c, j]|·max|x|: |Δlogit_j| ≤ k·u·Σ_c |W[c, j]|. A loop computing the same model in another order
# (another device, another summation tree) stays within it; a wrong dtype or shape is off by O(1).
_RUN_WEIGHTS = np.random.default_rng(_SIM_WEIGHT_SEED).standard_normal((3, 4))
_RUN_ATOL = (64 + 3) * 2.0 ** -24 * float(np.abs(_RUN_WEIGHTS).sum(axis=0).max())


@exercise("lab03.run_engine", title=N_("The inference loop: shapes, addresses, execute_async_v3"), hints=(
    N_("For each input: tell the context its shape, put the data in device memory, give the context that address. "
       "For each output: ask the context for its shape (only known once the inputs' shapes are set), allocate, give "
       "the address. Then execute on the device's stream, and copy the outputs back."),
    N_("context.set_input_shape(name, array.shape); buf = device.upload(array); "
       "context.set_tensor_address(name, device.ptr(buf)). Find outputs with engine.get_tensor_mode(name) == "
       "trt.TensorIOMode.OUTPUT over range(engine.num_io_tensors); their shape is context.get_tensor_shape(name), "
       "their dtype comes from engine.get_tensor_dtype(name) (tl.engine.numpy_dtype converts it)."),
    "ok = context.execute_async_v3(device.stream); if not ok: raise RuntimeError(...); device.synchronize(); "
    "return {name: device.download(buf) for name, buf in out_buffers.items()}",
), time_limit_s=60)  # measured < 1 s on the CPU stand-in; the GPU stand-in's first call starts CUDA (seconds)
def run_engine(fn: Callable[..., Any], *, engine: Any = None, context: Any = None, device: Any = None) -> str:
    where = _("the TensorRT engine")
    if engine is None:
        engine, context, device, where = _standin()
    trt = getattr(engine, "trt", None) or _builder_module()
    rng = np.random.default_rng(3)
    for batch in (5, 2, 1):  # one context, shapes changing between calls, down to the profile's minimum
        x = rng.random((batch, 3, 8, 8), dtype=np.float32)
        calls_before = len(getattr(context, "calls", []))
        errors_before = len(getattr(context, "errors", []))
        out = fn(trt, engine, context, {"images": x}, device)
        calls = getattr(context, "calls", [])[calls_before:]
        freed = _freed_before_execute(calls)
        if freed:
            raise Mismatch(_("batch {batch}: the buffer of {name!r} was freed before the engine used it: the context "
                             "holds only its address. Keep a reference to every device buffer, e.g. in a dict, until "
                             "after synchronize").format(batch=batch, name=freed))
        new_errors = getattr(context, "errors", [])[errors_before:]
        errors = "; ".join(new_errors[-2:])
        failed = [e for e in new_errors if e.startswith("execute_async_v3:") or e.startswith("set_")]
        if failed:
            raise Mismatch(_("batch {batch}: TensorRT reported: {errors}. Its calls return False instead "
                             "of raising, so your code carried on: check the return values of set_input_shape, "
                             "set_tensor_address and execute_async_v3").format(batch=batch, errors="; ".join(failed)))
        if not isinstance(out, dict) or "logits" not in out:
            keys = _(" with keys {keys}").format(keys=sorted(out)) if isinstance(out, dict) else ""
            raise Mismatch(_("return a dict of NumPy arrays by output name, like {{'logits': array}}; got "
                             "{kind}{keys}").format(kind=type(out).__name__, keys=keys))
        executes = [arg for name, arg in calls if name == "execute_async_v3"]
        if calls and not executes:
            raise Mismatch(_("execute_async_v3 was never called"))
        if executes and executes[-1] in (0, None):
            raise Mismatch(_("execute_async_v3 ran on the default stream (0): it serialises with all other GPU work; "
                             "pass device.stream"))
        got = np.asarray(out["logits"])
        expected = engine.reference(x) if hasattr(engine, "reference") else None
        if expected is None:
            return _("ran on the TensorRT engine")
        if got.shape != expected.shape:
            raise Mismatch(_("batch {batch}: logits have shape {got}, expected {expected}. The output "
                             "shape depends on the input shape: ask context.get_tensor_shape(name) after "
                             "set_input_shape, not engine.get_tensor_shape (which has -1 for the batch)").format(
                                 batch=batch, got=got.shape, expected=expected.shape)
                           + (_(". TensorRT said: {errors}").format(errors=errors) if errors else ""))
        if not np.any(got):
            raise Mismatch(_("batch {batch}: the logits are all zero, so the engine never wrote them. TensorRT said: "
                             "{errors}. Did you check execute_async_v3's return value (it returns "
                             "False instead of raising)?").format(batch=batch, errors=errors or _("nothing")))
        try:
            assert_close(got, expected, rtol=0, atol=_RUN_ATOL, name=_("logits (batch {batch})").format(batch=batch))
        except Mismatch as wrong:
            raise Mismatch(_("{wrong} Likely causes: the input uploaded in another dtype than the engine's float32 "
                             "(the engine reads the bytes as float32), or the output buffer allocated with another "
                             "dtype than engine.get_tensor_dtype(name)").format(wrong=wrong)) from None
    return _("batch sizes 5, 2 and 1 (one context) match the reference on {where}").format(where=where)


# ---------------------------------------------------------------- 3. choosing a calibration set


def _calibration_pool(n: int = 2000, classes: int = 10, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """A pool sorted by brightness (as a camera log sorted by time of day would be): the trap is to take the first n."""
    rng = np.random.default_rng(seed)
    brightness = np.sort(rng.uniform(0.2, 1.5, n))
    labels = rng.integers(0, classes, n)
    return brightness, labels


# (pool size, classes, pool seed, images asked for, learner's seed): other sizes, class counts and seeds, so none
# of them can be hard-coded.
_CALIBRATION_CASES = ((2000, 10, 7, 256, 0), (1500, 7, 11, 100, 3))


def _quarter_floor(n: int) -> float:
    """The smallest share of a brightness quarter accepted: 4 standard deviations below 25 % for n images drawn at
    random (sd = √(0.25·0.75/n)), so a correct random sample fails with probability < 1e-4 per quarter."""
    return 0.25 - 4 * (0.25 * 0.75 / n) ** 0.5


@exercise("lab03.choose_calibration", title=N_("Choose a calibration set that covers the inputs"), hints=(
    N_("INT8 scales are set from the ranges seen during calibration. Which images must the calibration set contain "
       "so that no real input falls outside those ranges?"),
    N_("The pool you get is sorted by brightness, so the first n are the darkest. Sample across the whole range "
       "(and all classes): without replacement, spread over brightness quantiles."),
    N_("A plain rng = np.random.default_rng(seed); rng.choice(len(labels), size=n, replace=False) already covers the "
       "range; stratifying by brightness quantile × class (np.quantile, np.digitize) guarantees it."),
), time_limit_s=30)  # measured < 0.1 s: five calls on pools of 2,000 and 1,500 images
def choose_calibration(fn: Callable[..., Any]) -> str:
    """Two pools (``_CALIBRATION_CASES``), a repeated call (same seed → same set), coverage of the brightest tenth,
    of every brightness quarter and of every class."""
    notes = []
    for pool_size, classes, pool_seed, n, seed in _CALIBRATION_CASES:
        brightness, labels = _calibration_pool(pool_size, classes, pool_seed)
        idx = _valid_indices(fn(brightness, labels, n, seed=seed), n, len(labels))
        again = np.asarray(fn(brightness, labels, n, seed=seed))
        if not np.array_equal(np.sort(again), np.sort(idx)):
            raise Mismatch(_("two calls with seed={seed} chose different images: the calibration set (and so the "
                             "INT8 engine) would change from run to run. Draw from np.random.default_rng(seed)").format(
                                 seed=seed))
        notes.append(_coverage(brightness, labels, idx, n))
    return "; ".join(notes)


def _valid_indices(got: Any, n: int, pool: int) -> np.ndarray:
    idx = np.asarray(got)
    if idx.dtype.kind not in "iu" or idx.ndim != 1:
        raise Mismatch(_("return a 1-D array of integer indices into the pool; got dtype {dtype}, shape "
                         "{shape}").format(dtype=idx.dtype, shape=idx.shape))
    if len(idx) != n:
        raise Mismatch(_("asked for {n} images (from a pool of {pool}), got {got}: use the n argument").format(
            n=n, pool=pool, got=len(idx)))
    if idx.min() < 0 or idx.max() >= pool:
        raise Mismatch(_("indices must be in 0..{last} (a pool of {pool}); got {low}..{high}: use "
                         "len(labels), not a fixed pool size").format(last=pool - 1, pool=pool, low=idx.min(),
                                                                      high=idx.max()))
    if len(np.unique(idx)) != n:
        raise Mismatch(_("{count} duplicate indices: sample without replacement (replace=False); "
                         "a duplicate adds no information about the activation ranges").format(
                             count=n - len(np.unique(idx))))
    return idx


def _coverage(brightness: np.ndarray, labels: np.ndarray, idx: np.ndarray, n: int) -> str:
    top_tenth = np.quantile(brightness, 0.9)
    if brightness[idx].max() < top_tenth:
        raise Mismatch(_("none of your {n} images comes from the brightest 10% of the pool of {pool} (your "
                         "brightest is {yours:.2f}, the pool reaches {top:.2f}). INT8 "
                         "ranges calibrated without the brightest inputs clip them. Likely causes: indices that stop "
                         "before the end of the pool (a fixed stride, a range over fewer than len(labels) "
                         "images)").format(n=n, pool=len(labels), yours=brightness[idx].max(), top=brightness.max()))
    quartile = np.digitize(brightness[idx], np.quantile(brightness, [0.25, 0.5, 0.75]))
    share = np.bincount(quartile, minlength=4) / n
    spread = ", ".join(f"{v:.0%}" for v in share)
    floor = _quarter_floor(n)
    if share[3] < floor:
        first_n = _(" The pool is sorted by brightness, so the first n are the darkest.") if share[0] > 0.5 else ""
        raise Mismatch(_("only {share:.0%} of your images come from the brightest quarter of the pool (expected "
                         "about 25%; darkest→brightest: {spread}).{first_n} Activation ranges calibrated on darker "
                         "images are too narrow, so bright inputs will clip in INT8").format(
                             share=share[3], spread=spread, first_n=first_n))
    if share[0] < floor:
        raise Mismatch(_("only {share:.0%} of your images come from the darkest quarter (darkest→brightest: "
                         "{spread}). Dark inputs will not clip (bright ranges cover them), but the set no longer "
                         "represents the data: sample across the whole brightness range").format(
                             share=share[0], spread=spread))
    if share.min() < floor:
        raise Mismatch(_("your images leave a gap in the brightness range (darkest→brightest quarters: {spread}); "
                         "sample across the whole range").format(spread=spread))
    per_class = np.bincount(labels[idx], minlength=labels.max() + 1)
    if per_class.min() == 0:
        raise Mismatch(_("class {label} is missing from your calibration set: cover every class").format(
            label=int(per_class.argmin())))
    return _("{n} of {pool}: brightness quarters {quarters}, every class present (min {least} images)").format(
        n=n, pool=len(labels), quarters=" / ".join(f"{v:.0%}" for v in share), least=per_class.min())


# ---------------------------------------------------------------- 4. which layers stayed in FP32


_FLOATING = ("float32", "float16", "bfloat16", "float8", "float4")


def _stayed_fp32(layer: Any) -> bool:
    """The rule the exercise teaches: it reads and writes floating-point tensors, all of them float32."""
    ins = [d for d in layer.inputs if d in _FLOATING]
    outs = [d for d in layer.outputs if d in _FLOATING]
    return bool(ins) and bool(outs) and set(ins + outs) == {"float32"}


def _mixed_precision_onnx() -> bytes:
    """A small AutoCast-style graph: fp16 convolution, then the pooling and the classifier kept in fp32 (casts
    between), fp32 I/O. The checker parses it with this machine's TensorRT-family parser: real parser output."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    inits = [numpy_helper.from_array((rng.standard_normal((6, 3, 3, 3)) * 0.3).astype(np.float16), "conv.weight"),
             numpy_helper.from_array((rng.standard_normal((4, 6)) * 0.3).astype(np.float32), "fc.weight"),
             numpy_helper.from_array(np.zeros(4, np.float32), "fc.bias"),
             numpy_helper.from_array(np.array([2, 3], np.int64), "axes")]
    nodes = [helper.make_node("Cast", ["images"], ["x16"], to=TensorProto.FLOAT16, name="images_to_fp16"),
             helper.make_node("Conv", ["x16", "conv.weight"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
             helper.make_node("Cast", ["relu"], ["relu32"], to=TensorProto.FLOAT, name="relu_to_fp32"),
             helper.make_node("ReduceMean", ["relu32", "axes"], ["pool"], keepdims=0, name="pool"),
             helper.make_node("Gemm", ["pool", "fc.weight", "fc.bias"], ["logits"], transB=1, name="fc")]
    graph = helper.make_graph(nodes, "mixed", [helper.make_tensor_value_info("images", TensorProto.FLOAT,
                                                                             ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


# Constructed in the engine inspector's JSON layout (not the output of a real engine): 10.x layers carry
# "Format/Datatype" strings (spellings from NVIDIA TREx, trex/activations.py), an 11.x-style layer a "DataType".
# Fused names, reformat layers and a constant are what an engine adds to a network's layers.
_ENGINE_LAYOUT_JSON = {"Layers": [
    {"Name": "Reformatting CopyNode for Input Tensor 0 to stem + relu", "LayerType": "Reformat",
     "Inputs": [{"Name": "images", "Format/Datatype": "Row major linear FP32"}],
     "Outputs": [{"Name": "images_r", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
    {"Name": "stem + relu", "LayerType": "CaskConvolution",
     "Inputs": [{"Name": "images_r", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
     "Outputs": [{"Name": "stem_out", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}]},
    {"Name": "Reformatting CopyNode for Input Tensor 0 to head_pool", "LayerType": "Reformat",
     "Inputs": [{"Name": "stem_out", "Format/Datatype": "Channel major FP16 format where channel % 8 == 0"}],
     "Outputs": [{"Name": "stem_32", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "head_pool", "LayerType": "Reduce", "Inputs": [{"Name": "stem_32", "DataType": "Float"}],
     "Outputs": [{"Name": "pooled", "DataType": "Float"}]},
    {"Name": "classifier.weight", "LayerType": "Constant", "Inputs": [],
     "Outputs": [{"Name": "w", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "classifier + bias_add", "LayerType": "CaskGemmMatrixMultiply",
     "Inputs": [{"Name": "pooled", "Format/Datatype": "Row major linear FP32"},
                {"Name": "w", "Format/Datatype": "Row major linear FP32"}],
     "Outputs": [{"Name": "logits", "Format/Datatype": "Row major linear FP32"}]},
    {"Name": "logits_shape", "LayerType": "Shape", "Inputs": [{"Name": "logits", "DataType": "Float"}],
     "Outputs": [{"Name": "shape", "DataType": "Int64"}]}]}


def _explain_extra(layer: Any) -> str:
    ins, outs = set(layer.inputs), set(layer.outputs)
    if not layer.inputs:
        return _("{name!r} is a {kind} layer: it reads nothing, it holds weights. Constants compute "
                 "nothing, so they did not 'stay in FP32'; require at least one floating-point input").format(
                     name=layer.name, kind=layer.kind)
    if "float32" in ins and outs & set(_FLOATING) - {"float32"}:
        return _("{name!r} ({kind}) reads float32 but writes {outs}: it converts to a lower "
                 "precision (a cast or reformat at the boundary). Looking only at the inputs counts it; a layer "
                 "stayed in FP32 only when its outputs are float32 too").format(
                     name=layer.name, kind=layer.kind, outs=sorted(outs))
    if "float32" in outs and ins & set(_FLOATING) - {"float32"}:
        return _("{name!r} ({kind}) reads {ins} and writes float32: it converts back to FP32 "
                 "(a cast or reformat). Looking only at the outputs counts it; check the inputs too").format(
                     name=layer.name, kind=layer.kind, ins=sorted(ins))
    if (ins | outs) & set(_FLOATING) - {"float32"}:
        return _("{name!r} ({kind}) runs in {dtypes}: you returned "
                 "lower-precision layers; the question is which layers did NOT move to fp16").format(
                     name=layer.name, kind=layer.kind, dtypes=sorted((ins | outs) & set(_FLOATING)))
    return _("{name!r} ({kind}) reads {ins} and writes {outs}: not every "
             "one of its floating-point tensors is float32 (integer tensors, like a shape, do not count)").format(
                 name=layer.name, kind=layer.kind, ins=list(layer.inputs), outs=list(layer.outputs))


def _check_fp32_layers(fn: Callable[..., Any], layers: list, source: str) -> int:
    got = fn(list(layers))
    if isinstance(got, str) or not isinstance(got, (list, tuple, set)):
        raise Mismatch(_("return a list of layer names (str); got {kind}").format(kind=type(got).__name__))
    if not all(isinstance(name, str) for name in got):
        kinds = sorted({type(n).__name__ for n in got if not isinstance(n, str)})
        raise Mismatch(_("return layer *names* (layer.name, a str); got items of type {kinds}").format(
            kinds=", ".join(kinds)))
    by_name = {layer.name: layer for layer in layers}
    expected = {layer.name for layer in layers if _stayed_fp32(layer)}
    unknown = sorted(set(got) - set(by_name))
    if unknown:
        raise Mismatch(_("{name!r} is not a layer of the list you were given ({source}): return "
                         "layer.name").format(name=unknown[0], source=source))
    extra = [by_name[n] for n in by_name if n in set(got) - expected]
    if extra:  # a layer with no float32 at all names the mistake best ("you returned the fp16 layers")
        extra.sort(key=lambda layer: "float32" in layer.inputs + layer.outputs)
        raise Mismatch(f"{source}: {_explain_extra(extra[0])}")
    missing = [n for n in by_name if n in expected - set(got)]
    if missing and not got:
        raise Mismatch(_("{source}: you returned no layer, but {count} stayed in FP32 (e.g. {name!r}). "
                         "The dtypes are NumPy-style lower-case strings: 'float32', 'float16', 'int64' (TensorRT's "
                         "'FLOAT'/'HALF' and the inspector's 'FP32' are mapped to them): compare with exactly "
                         "those").format(source=source, count=len(expected), name=missing[0]))
    if missing:
        layer = by_name[missing[0]]
        raise Mismatch(_("{source}: you missed {name!r} ({kind}), which reads {ins} and "
                         "writes {outs}: every floating-point tensor it touches is float32").format(
                             source=source, name=layer.name, kind=layer.kind, ins=list(layer.inputs),
                             outs=list(layer.outputs)))
    if len(got) != len(set(got)):
        raise Mismatch(_("some layer names appear twice in your list: return each layer once"))
    return len(expected)


@exercise("lab03.fp32_layers", title=N_("Find the layers that stayed in FP32"), hints=(
    N_("A layer stayed in FP32 when it computes on float32 tensors only. What about a layer that converts float32 "
       "to float16, a constant that holds weights, or a layer that outputs a shape (int64)?"),
    N_("Look at both sides: keep the floating-point dtypes ('float32', 'float16', 'bfloat16', ...) of layer.inputs "
       "and of layer.outputs; both lists must be non-empty (a constant has no inputs) and contain only 'float32'."),
    "floats = ('float32', 'float16', 'bfloat16', 'float8', 'float4'); for each layer: ins = [d for d in "
    "layer.inputs if d in floats]; outs = [...]; keep layer.name if ins and outs and set(ins + outs) == {'float32'}",
), time_limit_s=60)  # measured ~1 s: one TensorRT-family parse of a 6-node ONNX, two calls of the learner's function
def fp32_layers(fn: Callable[[list], Any]) -> str:
    """Two sources of the same meaning: a network parsed here from a mixed fp16/fp32 ONNX (real parser output), and
    layers in the engine inspector's JSON layout (constructed: fused layers, reformats, a constant, a shape)."""
    from trtlab.engine import layer_precisions, parse

    report = parse(_mixed_precision_onnx())
    report.raise_for_errors(_("the checker's mixed-precision ONNX"))
    n_net = _check_fp32_layers(fn, layer_precisions(report), _("the network {flavour} parsed").format(
        flavour=report.flavour.label))
    n_eng = _check_fp32_layers(fn, layer_precisions(_ENGINE_LAYOUT_JSON), _("the engine-inspector layout"))
    return _("found the {n_net} FP32 layers of a network parsed by {flavour} and the {n_eng} of an "
             "engine-inspector layout (fused layers, reformats, a constant, a shape layer)").format(
                 n_net=n_net, flavour=report.flavour.label, n_eng=n_eng)
