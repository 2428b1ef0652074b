"""Build TensorRT engines from ONNX, save them with a metadata sidecar, and load them only when they fit here.

Lab 03 builds an engine by hand with the raw API (network → parser → profile → config → plan) and then with
:func:`build`, which does the same with everything a real deployment needs:

- a **strongly typed** network (the only kind in TensorRT 11; precision comes from the ONNX: fp32, AutoCast fp16,
  or explicit Q/DQ int8, see :mod:`trtlab.precision`), with parser errors reported node by node;
- an optimization profile from (min, opt, max) shapes, a workspace limit, the builder optimization level, the
  profiling verbosity, a timing cache (a no-op on TensorRT-RTX, which says so), and TensorRT-RTX compute targets;
- an atomic write of the plan plus ``<plan>.json``: backend and version, CUDA version, GPU (or RTX targets), ONNX and
  plan sha256, precision, profile shapes, build time.

:func:`load_plan` checks that sidecar before TensorRT sees a byte: a plan is executable code, so a plan whose hash
does not match is refused, and one built by another TensorRT version or for another GPU is refused with
"rebuild with ..." instead of TensorRT's opaque deserialization failure.

The same code runs on TensorRT 10.x, 11.x and TensorRT-RTX; the differences live in :mod:`trtlab._compat`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from trtlab import _compat
from trtlab.errors import ArtifactMissing, BuildError, EngineMismatch, InvalidArgument, UnsupportedFeature

__all__ = [
    "CollectingLogger",
    "EngineBuild",
    "EngineMetadata",
    "LoadedEngine",
    "Shapes",
    "build",
    "build_plan",
    "check_compatible",
    "deserialize",
    "detect_precision",
    "load_plan",
    "parse_onnx",
    "profile_shapes",
    "read_metadata",
    "sha256",
    "write_plan",
]

FORMAT = 1
#: {input name: (min shape, opt shape, max shape)}
Shapes = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]


def sha256(data: bytes | bytearray | memoryview | str | os.PathLike) -> str:
    """Hex sha256 of bytes, or of a file's contents (streamed)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- metadata


@dataclass
class EngineMetadata:
    """What ``<plan>.json`` records about a plan; :func:`check_compatible` compares it with this machine."""

    backend: str  # "tensorrt" | "tensorrt_rtx"
    backend_version: str
    cuda_version: str | None
    gpu_name: str | None  # the GPU it was built on (None for an RTX build without a GPU)
    compute_capability: str | None  # "9.0" for a TensorRT build; None for RTX ahead-of-time builds
    rtx_targets: list[str] | None  # ["SM86", "SM89", "SM120"] for TensorRT-RTX
    precision: str
    onnx_sha256: str
    plan_sha256: str
    plan_bytes: int
    profiles: dict[str, list[list[int]]]  # input → [min, opt, max]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    build_seconds: float = 0.0
    builder_optimization_level: int = 3
    workspace_bytes: int | None = None
    onnx_path: str | None = None
    built_at: str = ""
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    @property
    def label(self) -> str:
        name = "TensorRT-RTX" if self.backend == "tensorrt_rtx" else "TensorRT"
        return f"{name} {self.backend_version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EngineMetadata":
        """The metadata in ``data``; ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValueError(f"it holds a JSON {type(data).__name__}, expected an object of fields")
        for name, kinds in _REQUIRED_FIELDS.items():
            if not isinstance(data.get(name), kinds):
                got = "missing" if name not in data else f"{data[name]!r} ({type(data[name]).__name__})"
                raise ValueError(f"field {name!r} is {got}, expected {' or '.join(k.__name__ for k in kinds)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


#: Sidecar fields the checks read, with their JSON types (a sidecar edited by hand is refused, not half-read).
_REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "backend": (str,), "backend_version": (str,), "precision": (str,), "onnx_sha256": (str,), "plan_sha256": (str,),
    "plan_bytes": (int,), "profiles": (dict,), "format": (int,), "rtx_targets": (list, type(None)),
    "compute_capability": (str, type(None)),
}


def _sidecar(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.name + ".json")


def _atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a plan behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_plan(path: str | os.PathLike, plan: bytes, metadata: EngineMetadata) -> Path:
    """Save ``plan`` and its sidecar ``<plan>.json`` atomically; the sidecar records the plan's sha256."""
    path = Path(path)
    metadata.plan_sha256 = sha256(plan)
    metadata.plan_bytes = len(plan)
    _atomic_write(path, bytes(plan))
    _atomic_write(_sidecar(path), metadata.to_json().encode())
    return path


def read_metadata(path: str | os.PathLike) -> EngineMetadata:
    """The sidecar of a plan; :class:`EngineMismatch` when it is missing or unreadable."""
    path = Path(path)
    side = _sidecar(path)
    if not side.exists():
        raise EngineMismatch(f"engine {path.name}: no metadata file {side.name} next to it | an unverified plan "
                             "cannot be loaded (a plan is executable code) | rebuild it with tl.engine.build(onnx, ...)")
    try:
        return EngineMetadata.from_dict(json.loads(side.read_text()))
    except (ValueError, TypeError) as err:
        raise EngineMismatch(f"engine {path.name}: metadata {side.name} is not a trtlab sidecar: {err} | expected "
                             "the JSON object tl.engine.build writes next to the plan | rebuild it with "
                             "tl.engine.build(onnx, ...); never edit a sidecar by hand") from err


# ---------------------------------------------------------------- compatibility


def _cc_of_target(target: str) -> tuple[int, int] | None:
    digits = target.removeprefix("SM")
    if not digits.isdigit():
        return None
    return int(digits[:-1]), int(digits[-1])


def check_compatible(meta: EngineMetadata, *, backend: str, backend_version: str,
                     compute_capability: tuple[int, int] | None, gpu_name: str | None = None) -> None:
    """Refuse a plan that this runtime cannot (or must not) execute, saying how to rebuild it.

    TensorRT plans are tied to the exact TensorRT version and to the GPU's compute capability; TensorRT-RTX plans
    run on the compute capabilities they were compiled for ahead of time.
    """
    rebuild = f"rebuild it here: tl.engine.build({meta.onnx_path or 'model.onnx'!r}, precision={meta.precision!r})"
    here = "TensorRT-RTX" if backend == "tensorrt_rtx" else "TensorRT"
    if meta.format != FORMAT:
        raise EngineMismatch(f"engine metadata format {meta.format}, this trtlab reads format {FORMAT} | {rebuild}")
    if meta.backend != backend:
        raise EngineMismatch(f"this engine was built by {meta.label}; the runtime here is {here} {backend_version} | "
                             f"TensorRT and TensorRT-RTX plans are not interchangeable | {rebuild}")
    if meta.backend_version != backend_version:
        raise EngineMismatch(f"this engine was built by {meta.label}; the runtime here is {here} {backend_version} | "
                             "a plan only loads in the exact TensorRT version that built it | " + rebuild)
    if compute_capability is None:
        raise UnsupportedFeature(f"running an engine needs an NVIDIA GPU; none is visible here | the plan itself "
                                 f"({meta.label}, {meta.precision}) is fine | run it on a GPU machine, or use "
                                 "tl.runtime.OnnxRuntimeRunner on the ONNX file")
    cc = f"{compute_capability[0]}.{compute_capability[1]}"
    if meta.backend == "tensorrt_rtx":
        targets = meta.rtx_targets or []
        allowed = {_cc_of_target(t) for t in targets if t != "CURRENT"}
        if "CURRENT" in targets and meta.compute_capability:
            major, minor = meta.compute_capability.split(".")
            allowed.add((int(major), int(minor)))
        if tuple(compute_capability) not in allowed and tuple(compute_capability) not in \
                _compat.RTX_COMPUTE_CAPABILITIES:
            supported = ", ".join(f"{a}.{b}" for a, b in _compat.RTX_COMPUTE_CAPABILITIES)
            raise EngineMismatch(f"this TensorRT-RTX engine was compiled for {', '.join(targets) or 'no target'}; "
                                 f"this GPU ({gpu_name or 'unknown'}) has compute capability {cc}, which TensorRT-RTX "
                                 f"does not support at all (it runs on {supported}) | no RTX build can run here | "
                                 f"build a TensorRT engine on this GPU instead: install TensorRT (pip install -e "
                                 f"'.[tensorrt]') and tl.engine.build({meta.onnx_path or 'model.onnx'!r})")
        if tuple(compute_capability) not in allowed:
            raise EngineMismatch(f"this TensorRT-RTX engine was compiled for {', '.join(targets) or 'no target'}; "
                                 f"this GPU ({gpu_name or 'unknown'}) has compute capability {cc} | "
                                 f"{rebuild.removesuffix(')')}, rtx_targets=['CURRENT'])")
        return
    if meta.compute_capability != cc:
        raise EngineMismatch(f"this engine was built for a GPU of compute capability {meta.compute_capability} "
                             f"({meta.gpu_name}); this GPU ({gpu_name or 'unknown'}) is {cc} | engines are "
                             f"specific to the GPU architecture | {rebuild}")


def load_plan(path: str | os.PathLike, *, verify_runtime: bool = True) -> tuple[bytes, EngineMetadata]:
    """Read a plan after checking its sidecar: hash first (tampering), then version and GPU (portability).

    With ``verify_runtime=False`` only the hash is checked (to inspect a plan built for another machine).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(f"engine {path} does not exist | build it first: tl.engine.build(onnx_path, out={str(path)!r})")
    meta = read_metadata(path)
    plan = path.read_bytes()
    digest = sha256(plan)
    if digest != meta.plan_sha256:
        raise EngineMismatch(f"engine {path.name}: sha256 {digest[:12]}… but its metadata records "
                             f"{meta.plan_sha256[:12]}… | the plan was modified or replaced after it was built, and a "
                             "plan is executable code, so it is not loaded | rebuild it with tl.engine.build(...)")
    if verify_runtime:
        flavour = _compat.runtime_flavour()
        if flavour is None:
            _check_version_without_runtime(path, meta)
            raise UnsupportedFeature(f"engine {path.name} ({meta.label}, {meta.precision}): its sha256 matches its "
                                     "metadata, but no TensorRT-family runtime can execute engines on this machine, so "
                                     "whether it fits the GPU it will run on was not checked | use "
                                     "tl.runtime.OnnxRuntimeRunner here, or a machine with an NVIDIA GPU and TensorRT")
        gpu = _current_gpu()
        check_compatible(meta, backend=flavour.module_name, backend_version=str(flavour.version),
                         compute_capability=gpu[1] if gpu else None, gpu_name=gpu[0] if gpu else None)
    return plan, meta


def _check_version_without_runtime(path: Path, meta: EngineMetadata) -> None:
    """Without a runtime, still compare the plan's TensorRT version with the same package installed here, if any:
    a plan from another version will not load on a GPU machine with this install either."""
    here = next((f for f in _compat.flavours() if f.module_name == meta.backend), None)
    if here is not None and str(here.version) != meta.backend_version:
        raise EngineMismatch(f"engine {path.name} was built by {meta.label}; {here.label} is installed here | a plan "
                             f"only loads in the exact TensorRT version that built it | rebuild it with this version: "
                             f"tl.engine.build({meta.onnx_path or 'model.onnx'!r}, precision={meta.precision!r})")


@dataclass
class LoadedEngine:
    """A deserialized engine with the runtime that owns it (the runtime must outlive the engine) and its metadata."""

    engine: Any
    runtime: Any
    metadata: EngineMetadata
    module: ModuleType


def deserialize(path: str | os.PathLike, *, logger: Any = None) -> LoadedEngine:
    """Verified load (:func:`load_plan`) + ``Runtime.deserialize_cuda_engine``."""
    import importlib

    plan, meta = load_plan(path)
    trt = importlib.import_module(meta.backend)
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineMismatch(f"{meta.label} could not deserialize {Path(path).name} although its metadata matches "
                             "this machine | see the TensorRT log above; rebuild with tl.engine.build(...)")
    return LoadedEngine(engine, runtime, meta, trt)


def _current_gpu() -> tuple[str, tuple[int, int]] | None:
    from trtlab.env import capabilities

    gpus = capabilities().gpus
    return (gpus[0].name, gpus[0].compute_capability) if gpus else None


# ---------------------------------------------------------------- parsing and building


class CollectingLogger:
    """A TensorRT logger that keeps errors and warnings so a BuildError (or Lab 02's acceptance check) can quote them."""

    def __new__(cls, trt: ModuleType, verbose: bool = False) -> Any:
        class Collecting(trt.ILogger):  # type: ignore[misc, name-defined]
            def __init__(self) -> None:
                trt.ILogger.__init__(self)
                self.errors: list[str] = []
                self.warnings: list[str] = []

            def log(self, severity: Any, msg: str) -> None:
                name = getattr(severity, "name", str(severity))
                if name in ("ERROR", "INTERNAL_ERROR"):
                    self.errors.append(msg)
                elif name == "WARNING":
                    self.warnings.append(msg)
                if verbose and name in ("ERROR", "INTERNAL_ERROR", "WARNING", "INFO"):
                    print(f"[{trt.__name__}] {name}: {msg}")

        return Collecting()


def parse_onnx(parser: Any, onnx: bytes | str | os.PathLike, *, where: str = "model") -> None:
    """``parser.parse`` with every parser error reported on its own line (node index, name, operator, reason)."""
    data = onnx if isinstance(onnx, (bytes, bytearray)) else Path(onnx).read_bytes()
    path = None if isinstance(onnx, (bytes, bytearray)) else str(Path(onnx).resolve())
    if parser.parse(bytes(data), path) if path else parser.parse(bytes(data)):
        return
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = err.node()
        op, name = err.node_operator(), err.node_name()
        at = f"node {node} ({op} {name!r})" if node >= 0 else "the model"
        lines.append(f"  - {at}: {err.desc()} [{err.code()}]")
    text = " ".join(lines)
    if "Plugin not found" in text or "UNSUPPORTED_NODE" in text or "No importer" in text:
        hint = "an op TensorRT has no importer for needs a plugin (Lab 05), or a re-export that avoids it"
    elif "ParseFromCodedStream" in text or "MODEL_DESERIALIZE" in text:
        hint = "the file is not readable ONNX: export it again (Lab 02)"
    else:
        hint = ("likely causes: an unsupported opset (re-export with opset=18), an op or attribute TensorRT does "
                "not handle (a plugin, Lab 05), or a malformed file (re-export, Lab 02)")
    raise BuildError(f"the ONNX parser rejected {where} with {parser.num_errors} error(s):\n" + "\n".join(lines)
                     + f"\n| expected a graph of TensorRT-supported ops | {hint}")


def profile_shapes(input_shape: Sequence[int | None | str], batch: tuple[int, int, int] = (1, 8, 32)) -> tuple:
    """(min, opt, max) for an N×... input whose batch dimension is dynamic: ``(1,3,32,32), (8,...), (32,...)``."""
    rest = [int(d) for d in input_shape[1:]]  # type: ignore[arg-type]
    lo, opt, hi = batch
    if not lo <= opt <= hi:
        raise InvalidArgument(f"profile batch sizes must satisfy min <= opt <= max; got {batch} | reorder them")
    if lo < 1:
        raise InvalidArgument(f"profile batch sizes {batch}: a batch of {lo} images computes nothing | expected "
                              "sizes >= 1, e.g. batch=(1, 8, 32)")
    return tuple((b, *rest) for b in (lo, opt, hi))


def detect_precision(onnx: bytes | str | os.PathLike) -> str:
    """"int8" when the ONNX has Q/DQ nodes, "fp16" when its weights are fp16 (AutoCast), else "fp32"."""
    import onnx as onnx_lib

    from trtlab.export import load_onnx

    model = load_onnx(onnx if isinstance(onnx, (bytes, bytearray)) else Path(onnx), load_external_data=False)
    ops = {n.op_type for n in model.graph.node}
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if any(init.data_type == onnx_lib.TensorProto.FLOAT16 for init in model.graph.initializer):
        return "fp16"
    return "fp32"


@dataclass
class EngineBuild:
    """The result of :func:`build`: where the plan is, what it is, and how long it took. Truthy when written."""

    path: Path
    metadata: EngineMetadata
    warnings: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.path.exists()

    def __repr__(self) -> str:
        m = self.metadata
        where = (f"RTX targets {','.join(m.rtx_targets)}" if m.rtx_targets
                 else f"{m.gpu_name} (CC {m.compute_capability})")
        return (f"EngineBuild({self.path.name}: {m.precision}, {m.label}, {where}, {m.plan_bytes / 2**20:.1f} MiB, "
                f"built in {m.build_seconds:.2f} s)")


def build_plan(onnx: bytes | str | os.PathLike, *, shapes: Shapes | None = None, batch: tuple[int, int, int] = (1, 8, 32),
               workspace_mib: int | None = 1024, optimization_level: int = 3, profiling_verbosity: str = "detailed",
               timing_cache: str | os.PathLike | None = None, rtx_targets: Sequence[str] | None = None,
               flavour: _compat.TensorRTFlavour | None = None, verbose: bool = False) -> tuple[bytes, dict[str, Any]]:
    """Parse and build; return (plan bytes, facts for the metadata). :func:`build` also saves it."""
    from trtlab.export import load_onnx

    load_onnx(onnx if isinstance(onnx, (bytes, bytearray)) else Path(onnx), load_external_data=False)  # clear errors
    verbosity = _VERBOSITY.get(str(profiling_verbosity).lower())
    if verbosity is None:
        old = (" ('verbose' is the old name of 'detailed': ProfilingVerbosity.kVERBOSE, deprecated in TensorRT 8.0, "
               "absent from TensorRT 10 and TensorRT-RTX)") if str(profiling_verbosity).lower() == "verbose" else ""
        raise InvalidArgument(f"profiling_verbosity={profiling_verbosity!r} is not a TensorRT profiling verbosity"
                              f"{old} | expected one of {sorted(_VERBOSITY)} | 'detailed' keeps layer details for "
                              "the engine inspector")
    if not 0 <= optimization_level <= 5:
        raise InvalidArgument(f"optimization_level must be 0..5 (TensorRT's default is 3); got {optimization_level}")
    flavour = flavour or _compat.builder_flavour()
    if TYPE_CHECKING:  # mypy checks every call below against the TensorRT stubs (tests/test_typing.py)
        import tensorrt as trt
    else:
        trt = flavour.module  # tensorrt or tensorrt_rtx: the same API for everything used here
    logger = CollectingLogger(trt, verbose)
    builder = trt.Builder(logger)
    network = builder.create_network(_compat.network_flags(trt))  # strongly typed: precision comes from the ONNX
    parser = trt.OnnxParser(network, logger)  # keep builder, network and parser alive together (the parser refers to both)
    parse_onnx(parser, onnx)
    config = builder.create_builder_config()
    if workspace_mib is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    config.builder_optimization_level = optimization_level
    config.profiling_verbosity = getattr(trt.ProfilingVerbosity, verbosity)
    notes: list[str] = []

    inputs = [network.get_input(i) for i in range(network.num_inputs)]
    outputs = [network.get_output(i) for i in range(network.num_outputs)]
    profiles: dict[str, list[list[int]]] = {}
    _check_shapes_name_inputs(shapes, inputs)
    dynamic = [t for t in inputs if any(d < 0 for d in _dims(t.shape))]
    if dynamic:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            declared = _dims(tensor.shape)
            if shapes and tensor.name in shapes:
                lo, opt, hi = (tuple(int(d) for d in s) for s in shapes[tensor.name])
            else:
                if any(d < 0 for d in declared[1:]):
                    raise BuildError(f"input {tensor.name!r} has dynamic dimensions besides the batch: "
                                     f"{declared} | pass shapes={{{tensor.name!r}: (min, opt, max)}}")
                lo, opt, hi = profile_shapes(declared, batch)
            _check_profile(tensor.name, declared, lo, opt, hi)
            profile.set_shape(tensor.name, lo, opt, hi)  # type: ignore[arg-type]  # tuples convert to Dims implicitly
            profiles[tensor.name] = [list(lo), list(opt), list(hi)]
        config.add_optimization_profile(profile)
    for tensor in inputs:
        profiles.setdefault(tensor.name, [list(_dims(tensor.shape))] * 3)

    targets: list[str] | None = None
    if flavour.is_rtx:
        gpu = _current_gpu()
        wanted = list(rtx_targets) if rtx_targets else (["CURRENT"] if gpu else list(_compat.RTX_DEFAULT_TARGETS))
        targets = _compat.set_rtx_targets(config, trt, wanted)
    elif rtx_targets:
        raise InvalidArgument("rtx_targets only applies to TensorRT-RTX builds; TensorRT builds for the GPU it runs on")

    cache = None
    if timing_cache is not None:
        if _compat.supports_timing_cache(flavour):
            raw = Path(timing_cache).read_bytes() if Path(timing_cache).exists() else b""
            cache = config.create_timing_cache(raw)
            config.set_timing_cache(cache, False)
        else:
            notes.append("timing cache skipped: TensorRT-RTX ignores it (it compiles kernels at load time and "
                         "keeps a runtime cache instead)")

    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        detail = "\n".join(f"  - {e}" for e in logger.errors[-5:]) or "  (no error was logged)"
        raise BuildError(f"{flavour.label} could not build the engine:\n{detail}\n| {_build_hint(logger.errors)}; "
                         "run with verbose=True for the full log")
    if cache is not None and timing_cache is not None:
        _atomic_write(Path(timing_cache), bytes(config.get_timing_cache().serialize()))

    def describe(t: Any) -> dict[str, Any]:
        return {"shape": list(_dims(t.shape)), "dtype": getattr(t.dtype, "name", str(t.dtype))}

    gpu = _current_gpu()
    facts = {
        "backend": flavour.module_name, "backend_version": str(flavour.version), "cuda_version": _compat.cuda_version(),
        "gpu_name": gpu[0] if gpu else None,
        "compute_capability": f"{gpu[1][0]}.{gpu[1][1]}" if gpu else None,
        "rtx_targets": targets, "profiles": profiles, "build_seconds": round(seconds, 3),
        "inputs": {t.name: describe(t) for t in inputs}, "outputs": {t.name: describe(t) for t in outputs},
        "builder_optimization_level": optimization_level,
        "workspace_bytes": None if workspace_mib is None else int(workspace_mib) << 20,
        "notes": notes, "warnings": logger.warnings,
    }
    return bytes(plan), facts


_VERBOSITY = {"detailed": "DETAILED", "layer_names_only": "LAYER_NAMES_ONLY", "none": "NONE"}


def _build_hint(errors: Sequence[str]) -> str:
    """What to do about a failed build: the cause when the log names it, else the likely causes, marked as such."""
    text = " ".join(errors)
    if "at least one output" in text:
        return "the network has no output: the ONNX graph computes nothing; export it again with its outputs"
    if "memory" in text.lower() or "workspace" in text.lower():
        return "out of memory: raise workspace_mib, or lower the profile's max shapes"
    if "profile" in text.lower():
        return "fix the optimization profile (shapes=/batch=) the log names"
    return "likely causes (not detected): profile shapes the network cannot take, too small a workspace limit"


def _check_shapes_name_inputs(shapes: Shapes | None, inputs: Sequence[Any]) -> None:
    """Every ``shapes`` entry must name an input; one for a static input must be that input's shape."""
    if not shapes:
        return
    declared = {t.name: _dims(t.shape) for t in inputs}
    unknown = [name for name in shapes if name not in declared]
    if unknown:
        raise InvalidArgument(f"shapes names {unknown}, which the network does not take | its inputs are "
                              f"{declared} (-1 = dynamic) | key shapes by these names")
    for name, triple in shapes.items():
        dims = declared[name]
        if all(d >= 0 for d in dims) and any(tuple(int(x) for x in s) != dims for s in triple):
            raise InvalidArgument(f"shapes[{name!r}] = {tuple(tuple(s) for s in triple)}, but input {name!r} is "
                                  f"static, {dims} | drop the entry, or export with a dynamic batch")


def _dims(shape: Any) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple of ints (-1 = dynamic)."""
    return tuple(int(shape[i]) for i in range(len(shape)))


def _check_profile(name: str, declared: tuple[int, ...], lo: Sequence[int], opt: Sequence[int], hi: Sequence[int]) -> None:
    for label, shape in (("min", lo), ("opt", opt), ("max", hi)):
        if len(shape) != len(declared):
            raise BuildError(f"profile for {name!r}: {label} shape {tuple(shape)} has {len(shape)} dims, the input has "
                             f"{len(declared)} {declared} | give one size per dimension")
        fixed = [(i, d, s) for i, (d, s) in enumerate(zip(declared, shape)) if d >= 0 and d != s]
        if fixed:
            i, d, s = fixed[0]
            raise BuildError(f"profile for {name!r}: {label} shape {tuple(shape)} sets dimension {i} to {s}, but the "
                             f"ONNX fixes it at {d} | only dynamic (-1) dimensions may vary")
    zero = [(label, tuple(shape)) for label, shape in (("min", lo), ("opt", opt), ("max", hi))
            if any(s < 1 for d, s in zip(declared, shape) if d < 0)]
    if zero:
        raise BuildError(f"profile for {name!r}: {zero[0][0]} shape {zero[0][1]} has a dynamic dimension of size < 1 "
                         "(a batch of 0 computes nothing) | expected sizes >= 1")
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise BuildError(f"profile for {name!r}: need min <= opt <= max in every dimension; got min {tuple(lo)}, "
                         f"opt {tuple(opt)}, max {tuple(hi)} | reorder them")


def build(onnx: str | os.PathLike, *, out: str | os.PathLike | None = None, precision: str | None = None,
          shapes: Shapes | None = None, batch: tuple[int, int, int] = (1, 8, 32), workspace_mib: int | None = 1024,
          optimization_level: int = 3, profiling_verbosity: str = "detailed",
          timing_cache: str | os.PathLike | None = None, rtx_targets: Sequence[str] | None = None,
          flavour: _compat.TensorRTFlavour | None = None, verbose: bool = False) -> EngineBuild:
    """Build an engine from an ONNX file and save ``<out>`` + ``<out>.json`` (Lab 03 does this by hand first).

    ``precision`` is a label checked against the ONNX ("fp32", "fp16", "int8"): in a strongly typed network the ONNX
    decides the precision, so an fp32 ONNX cannot become an fp16 engine by a flag (that is what TensorRT 11 removed).
    """
    onnx = Path(onnx)
    if not onnx.exists():
        raise ArtifactMissing(f"ONNX file {onnx} does not exist | export it first (Lab 02: tl.export.ensure_course_onnx())")
    found = detect_precision(onnx)
    if precision is not None and precision != found:
        raise BuildError(f"precision={precision!r} asked, but {onnx.name} is an {found} model | strongly typed "
                         "networks take their precision from the ONNX | make an fp16/int8 ONNX with "
                         "tl.precision.autocast_fp16(...) / tl.precision.quantize_int8(...) and build that")
    plan, facts = build_plan(onnx, shapes=shapes, batch=batch, workspace_mib=workspace_mib,
                             optimization_level=optimization_level, profiling_verbosity=profiling_verbosity,
                             timing_cache=timing_cache, rtx_targets=rtx_targets, flavour=flavour, verbose=verbose)
    warnings = facts.pop("warnings")
    out = Path(out) if out else onnx.with_name(f"{onnx.stem}.{'rtx' if facts['backend'] == 'tensorrt_rtx' else 'trt'}.plan")
    meta = EngineMetadata(precision=found, onnx_sha256=sha256(onnx), plan_sha256="", plan_bytes=0,
                          onnx_path=str(onnx), built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          **facts)
    write_plan(out, plan, meta)
    return EngineBuild(out, meta, warnings)
