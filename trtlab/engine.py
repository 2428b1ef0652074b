"""The one TensorRT front door: parse ONNX, build engines, save them with a metadata sidecar, and load them only
when they fit here.

- :func:`parse` (ONNX → network + :class:`ParseReport`, one :class:`ParserIssue` per parser error, each with the
  likely fix from :func:`suggest_fix`) is the only place trtlab runs TensorRT's ONNX parser. Lab 02's "will TensorRT
  accept this?" (:func:`trtlab.export.tensorrt_accepts`) and Lab 05's plugin build go through it and
  :func:`build_plan`.

Lab 03 builds an engine by hand with the raw API (network → parser → profile → config → plan) and then with
:func:`build`, which does the same with everything a real deployment needs:

- a **strongly typed** network (the only kind in TensorRT 11; precision comes from the ONNX: fp32, AutoCast fp16,
  or explicit Q/DQ int8, see :mod:`trtlab.precision`), with parser errors reported node by node;
- an optimization profile from (min, opt, max) shapes, a workspace limit, the builder optimization level, the
  profiling verbosity, a timing cache (a no-op on TensorRT-RTX, which says so), and TensorRT-RTX compute targets;
- an atomic write of the plan plus ``<plan>.json``: backend and version, CUDA version, GPU (or RTX targets), ONNX and
  plan sha256, precision, profile shapes, build time.

:func:`load_plan` checks that sidecar before TensorRT sees a byte (:mod:`trtlab._plan_file`): a plan is executable
code, so a plan whose hash does not match is refused, and one built by another TensorRT version or for another GPU is
refused with "rebuild with ..." instead of TensorRT's opaque deserialization failure.

Around a build, the field's tools (:mod:`trtlab.engine_tools`, re-exported here): :func:`trtexec_command` (the
trtexec 10.x/11.x command line of a build), :func:`engine_information` and :func:`layer_precisions` (the engine
inspector's layers, or a parsed network's, with their dtypes) and :func:`layer_times` (per-layer ``IProfiler`` times).

The same code runs on TensorRT 10.x, 11.x and TensorRT-RTX; the differences live in :mod:`trtlab._compat`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from trtlab import _compat, env
from trtlab._compat import numpy_dtype
from trtlab._onnx import load_onnx
from trtlab._plan_file import (FORMAT, EngineMetadata, LoadedEngine, atomic_write, check_compatible, current_gpu,
                               deserialize, load_plan, read_metadata, sha256, write_plan)
from trtlab.engine_tools import (BuildSettings, LayerPrecision, TrtexecCommand, engine_information, layer_precisions,
                                 layer_times, run_trtexec, trtexec_command, trtexec_version)
from trtlab.errors import ArtifactMissing, BuildError, InvalidArgument
from trtlab.i18n import N_, _

__all__ = [
    "BuildSettings",
    "CollectingLogger",
    "EngineBuild",
    "EngineMetadata",
    "FORMAT",
    "LayerPrecision",
    "LoadedEngine",
    "ParseReport",
    "ParserIssue",
    "Shapes",
    "TrtexecCommand",
    "build",
    "build_plan",
    "check_compatible",
    "deserialize",
    "detect_precision",
    "engine_information",
    "layer_precisions",
    "layer_times",
    "load_plan",
    "numpy_dtype",
    "parse",
    "profile_shapes",
    "read_metadata",
    "run_trtexec",
    "sha256",
    "suggest_fix",
    "trtexec_command",
    "trtexec_version",
    "write_plan",
]

#: {input name: (min shape, opt shape, max shape)}
Shapes = Mapping[str, tuple[Sequence[int], Sequence[int], Sequence[int]]]

# ---------------------------------------------------------------- parsing: the one ONNX → network path


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


#: What a parser or builder message means, and what to do (the table Lab 02 teaches; the first match wins).
_FIXES = [
    (re.compile(r"No importer registered for op|Plugin not found|unsupported operator|not supported", re.I),
     N_("TensorRT has no importer for op {op}: it needs a plugin (Lab 05), or a re-export that decomposes it into "
        "supported ops (another opset, or a model change)")),
    (re.compile(r"ParseFromCodedStream|MODEL_DESERIALIZE", re.I),
     N_("the file is not readable ONNX: export it again (Lab 02)")),
    (re.compile(r"INT64|int64", re.I),
     N_("an INT64 tensor TensorRT cannot use here: fold constants (`polygraphy surgeon sanitize --fold-constants` "
        "or tl.export.simplify) or cast to INT32 in the model")),
    (re.compile(r"opset|Unsupported ONNX (IR|opset)", re.I),
     N_("the opset/IR version is outside what this parser supports: re-export with opset=18")),
    (re.compile(r"no optimization profile|dynamic or shape inputs", re.I),
     N_("the network has a dynamic dimension but no optimization profile: add one (min/opt/max shapes per input)")),
    (re.compile(r"zero.?pt|zero point|symmetric", re.I),
     N_("TensorRT quantization is symmetric: Q/DQ zero points must be 0 (see Lab 03's INT8 path)")),
    (re.compile(r"external|\.data\b", re.I),
     N_("the weights live in an external file the parser cannot find: export with external_data=False")),
    (re.compile(r"at least one output", re.I),
     N_("the network has no output: the ONNX graph computes nothing; export it again with its outputs")),
    (re.compile(r"out of memory|workspace", re.I),
     N_("out of memory: raise workspace_mib, or lower the profile's max shapes")),
    (re.compile(r"profile", re.I), N_("fix the optimization profile (shapes=/batch=) the log names")),
]


def suggest_fix(message: str, op: str = "?") -> str:
    """The likely fix for a TensorRT parser or builder message (the table Lab 02 teaches), or the likely causes,
    marked as not detected."""
    for pattern, fix in _FIXES:
        if pattern.search(message):
            return _(fix).format(op=op)
    return _("likely causes (not detected): an op or attribute TensorRT does not handle, profile shapes the network "
             "cannot take, too small a workspace; `polygraphy surgeon sanitize --fold-constants` or "
             "tl.export.simplify often removes what TensorRT stumbles on, otherwise re-export (Lab 02)")


@dataclass(frozen=True)
class ParserIssue:
    """One error of a TensorRT-family ONNX parser: where (node index, name, op), what, its code, the likely fix."""

    node: int  # -1: the model as a whole
    node_name: str
    op: str
    message: str
    code: str = ""
    fix: str = ""

    @property
    def operator(self) -> str:
        """The op, by the name TensorRT's ``ParserError.node_operator()`` gives it."""
        return self.op

    @property
    def desc(self) -> str:
        """The message, by the name TensorRT's ``ParserError.desc()`` gives it."""
        return self.message

    def __str__(self) -> str:
        where = (_("node {node} ({op} '{name}')").format(node=self.node, op=self.op, name=self.node_name)
                 if self.node >= 0 else _("the model"))
        return f"{where}: {self.message}" + (f" [{self.code}]" if self.code else "")


@dataclass
class ParseReport:
    """What a TensorRT-family ONNX parser said about a model; truthy when it parsed. It keeps the builder, network,
    parser and logger alive together (the parser refers to them) so :func:`build_plan` can build what was parsed."""

    flavour: _compat.TensorRTFlavour
    ok: bool
    errors: list[ParserIssue] = field(default_factory=list)
    layers: int = 0
    seconds: float = 0.0
    trt: Any = field(default=None, repr=False, compare=False)
    builder: Any = field(default=None, repr=False, compare=False)
    network: Any = field(default=None, repr=False, compare=False)
    parser: Any = field(default=None, repr=False, compare=False)
    logger: Any = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        if self.ok:
            return f"ParseReport({self.flavour.label}: parsed, {self.layers} layers in {self.seconds:.2f} s)"
        return f"ParseReport({self.flavour.label}: REJECTED, " + "; ".join(map(str, self.errors)) + ")"

    def raise_for_errors(self, where: str | None = None) -> None:
        """:class:`BuildError` listing every parser error on its own line, with the likely fix, unless it parsed."""
        if self.ok:
            return
        lines = "\n".join(f"  - {issue}" for issue in self.errors) or _("  (the parser gave no error)")
        fixes = list(dict.fromkeys(issue.fix for issue in self.errors)) or [suggest_fix("")]
        raise BuildError(_("the ONNX parser of {flavour} rejected {where} with {count} error(s):\n{lines}\n| expected a "
                           "graph of TensorRT-supported ops | ").format(
                               flavour=self.flavour.label, where=_("the model") if where is None else where,
                               count=len(self.errors), lines=lines) + "; ".join(fixes))


def parse(onnx: Any, *, flavour: _compat.TensorRTFlavour | ModuleType | None = None, network_flags: int = 0,
          verbose: bool = False) -> ParseReport:
    """Parse an ONNX model (path, bytes or ``ModelProto``) into a strongly typed network and report every parser
    error node by node, without raising for them (:meth:`ParseReport.raise_for_errors` does).

    ``flavour``: a :class:`~trtlab._compat.TensorRTFlavour` or a TensorRT module (default: this machine's builder,
    :func:`trtlab.env.builder_flavour`). ``network_flags`` adds creation flags to the strongly typed one (Lab 05's
    plugin AOT/JIT choice). A missing, empty or corrupt file raises the course's ExportError/ArtifactMissing first.
    """
    if hasattr(onnx, "SerializeToString"):  # an onnx.ModelProto
        onnx = onnx.SerializeToString()
    source = bytes(onnx) if isinstance(onnx, (bytes, bytearray)) else Path(onnx)
    load_onnx(source, load_external_data=False)
    if isinstance(flavour, ModuleType):
        flavour = _compat.flavour_of(flavour)
    flavour = flavour or env.builder_flavour()
    if TYPE_CHECKING:  # mypy checks every call below against the TensorRT stubs (tests/test_typing.py)
        import tensorrt as trt
    else:
        trt = flavour.module  # tensorrt or tensorrt_rtx: the same API for everything used here
    logger = CollectingLogger(trt, verbose)
    builder = trt.Builder(logger)
    network = builder.create_network(_compat.network_flags(trt) | network_flags)  # precision comes from the ONNX
    parser = trt.OnnxParser(network, logger)
    start = time.perf_counter()  # a path lets the parser find external weights next to the file
    ok = (parser.parse(source) if isinstance(source, bytes)
          else parser.parse(source.read_bytes(), str(source.resolve())))
    seconds = time.perf_counter() - start
    errors = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        op, message = err.node_operator() or "?", err.desc()
        errors.append(ParserIssue(err.node(), err.node_name() or "?", op, message, str(err.code()).split(".")[-1],
                                  suggest_fix(message, op)))
    return ParseReport(flavour, bool(ok), errors, network.num_layers, seconds, trt, builder, network, parser, logger)


def profile_shapes(input_shape: Sequence[int | None | str], batch: tuple[int, int, int] = (1, 8, 32)) -> tuple:
    """(min, opt, max) for an N×... input whose batch dimension is dynamic: ``(1,3,32,32), (8,...), (32,...)``."""
    rest = [int(d) for d in input_shape[1:]]  # type: ignore[arg-type]
    lo, opt, hi = batch
    if not lo <= opt <= hi:
        raise InvalidArgument(_("profile batch sizes must satisfy min <= opt <= max; got {batch} | reorder "
                                "them").format(batch=batch))
    if lo < 1:
        raise InvalidArgument(_("profile batch sizes {batch}: a batch of {lo} images computes nothing | expected "
                                "sizes >= 1, e.g. batch=(1, 8, 32)").format(batch=batch, lo=lo))
    return tuple((b, *rest) for b in (lo, opt, hi))


def detect_precision(onnx: bytes | str | os.PathLike) -> str:
    """"int8" when the ONNX has Q/DQ nodes, "fp16" when its weights are fp16 (AutoCast), else "fp32"."""
    import onnx as onnx_lib

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
    settings: BuildSettings | None = None  # what was asked, for :func:`trtexec_command`

    def __bool__(self) -> bool:
        return self.path.exists()

    def __repr__(self) -> str:
        m = self.metadata
        where = (f"RTX targets {','.join(m.rtx_targets)}" if m.rtx_targets
                 else f"{m.gpu_name} (CC {m.compute_capability})")
        return (f"EngineBuild({self.path.name}: {m.precision}, {m.label}, {where}, {m.plan_bytes / 2**20:.1f} MiB, "
                f"built in {m.build_seconds:.2f} s)")


def build_plan(onnx: bytes | str | os.PathLike | ParseReport, *, shapes: Shapes | None = None,
               batch: tuple[int, int, int] = (1, 8, 32), workspace_mib: int | None = 1024, optimization_level: int = 3,
               profiling_verbosity: str = "detailed", timing_cache: str | os.PathLike | None = None,
               rtx_targets: Sequence[str] | None = None, flavour: _compat.TensorRTFlavour | None = None,
               verbose: bool = False, add_profile: bool = True,
               network_flags: int = 0) -> tuple[bytes, dict[str, Any]]:
    """Parse (:func:`parse`) and build without saving; return (plan bytes, facts for the metadata). :func:`build`
    also saves it; Lab 02's acceptance check stops here.

    ``onnx`` may be a :class:`ParseReport` from :func:`parse` (then its network is built as parsed).
    ``add_profile=False`` builds a dynamic network without an optimization profile, to show TensorRT's own error.
    ``network_flags`` adds creation flags to the strongly typed one (Lab 05's plugin AOT/JIT choice).
    """
    verbosity = _VERBOSITY.get(str(profiling_verbosity).lower())
    if verbosity is None:
        old = _(" ('verbose' is the old name of 'detailed': ProfilingVerbosity.kVERBOSE, deprecated in TensorRT 8.0, "
                "absent from TensorRT 10 and TensorRT-RTX)") if str(profiling_verbosity).lower() == "verbose" else ""
        raise InvalidArgument(_("profiling_verbosity={value!r} is not a TensorRT profiling verbosity{old} | expected "
                                "one of {known} | 'detailed' keeps layer details for the engine inspector").format(
                                    value=profiling_verbosity, old=old, known=sorted(_VERBOSITY)))
    if not 0 <= optimization_level <= 5:
        raise InvalidArgument(_("optimization_level must be 0..5 (TensorRT's default is 3); got {level}").format(
            level=optimization_level))
    report = onnx if isinstance(onnx, ParseReport) else parse(onnx, flavour=flavour, network_flags=network_flags,
                                                               verbose=verbose)
    report.raise_for_errors()
    flavour = report.flavour
    if TYPE_CHECKING:  # mypy checks every call below against the TensorRT stubs (tests/test_typing.py)
        import tensorrt as trt
    else:
        trt = report.trt  # tensorrt or tensorrt_rtx: the same API for everything used here
    builder: trt.Builder = report.builder  # typed, so mypy checks the build calls below
    network: trt.INetworkDefinition = report.network
    logger = report.logger
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
    if dynamic and add_profile:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            declared = _dims(tensor.shape)
            if shapes and tensor.name in shapes:
                lo, opt, hi = (tuple(int(d) for d in s) for s in shapes[tensor.name])
            else:
                if any(d < 0 for d in declared[1:]):
                    raise BuildError(_("input {name!r} has dynamic dimensions besides the batch: "
                                       "{declared} | pass shapes={{{name!r}: (min, opt, max)}}").format(
                                           name=tensor.name, declared=declared))
                lo, opt, hi = profile_shapes(declared, batch)
            _check_profile(tensor.name, declared, lo, opt, hi)
            profile.set_shape(tensor.name, lo, opt, hi)  # type: ignore[arg-type]  # tuples convert to Dims implicitly
            profiles[tensor.name] = [list(lo), list(opt), list(hi)]
        config.add_optimization_profile(profile)
    for tensor in inputs:
        profiles.setdefault(tensor.name, [list(_dims(tensor.shape))] * 3)

    targets: list[str] | None = None
    if flavour.is_rtx:
        gpu = current_gpu()
        wanted = list(rtx_targets) if rtx_targets else (["CURRENT"] if gpu else list(_compat.RTX_DEFAULT_TARGETS))
        targets = _compat.set_rtx_targets(config, trt, wanted)
    elif rtx_targets:
        raise InvalidArgument(_("rtx_targets only applies to TensorRT-RTX builds; TensorRT builds for the GPU it "
                                "runs on"))

    cache = None
    if timing_cache is not None:
        if _compat.supports_timing_cache(flavour):
            raw = Path(timing_cache).read_bytes() if Path(timing_cache).exists() else b""
            cache = config.create_timing_cache(raw)
            config.set_timing_cache(cache, False)
        else:
            notes.append(_("timing cache skipped: TensorRT-RTX ignores it (it compiles kernels at load time and "
                           "keeps a runtime cache instead)"))

    start = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if plan is None:
        detail = "\n".join(f"  - {e}" for e in logger.errors[-5:]) or _("  (no error was logged)")
        hint = suggest_fix(" ".join(logger.errors))
        raise BuildError(_("{flavour} could not build the engine:\n{detail}\n| {hint}; run with verbose=True for "
                           "the full log").format(flavour=flavour.label, detail=detail, hint=hint))
    if cache is not None and timing_cache is not None:
        atomic_write(Path(timing_cache), bytes(config.get_timing_cache().serialize()))

    def describe(t: Any) -> dict[str, Any]:
        return {"shape": list(_dims(t.shape)), "dtype": getattr(t.dtype, "name", str(t.dtype))}

    gpu = current_gpu()
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


def _check_shapes_name_inputs(shapes: Shapes | None, inputs: Sequence[Any]) -> None:
    """Every ``shapes`` entry must name an input; one for a static input must be that input's shape."""
    if not shapes:
        return
    declared = {t.name: _dims(t.shape) for t in inputs}
    unknown = [name for name in shapes if name not in declared]
    if unknown:
        raise InvalidArgument(_("shapes names {unknown}, which the network does not take | its inputs are "
                                "{declared} (-1 = dynamic) | key shapes by these names").format(
                                    unknown=unknown, declared=declared))
    for name, triple in shapes.items():
        dims = declared[name]
        if all(d >= 0 for d in dims) and any(tuple(int(x) for x in s) != dims for s in triple):
            raise InvalidArgument(_("shapes[{name!r}] = {triple}, but input {name!r} is static, {dims} | drop the "
                                    "entry, or export with a dynamic batch").format(
                                        name=name, triple=tuple(tuple(s) for s in triple), dims=dims))


def _dims(shape: Any) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple of ints (-1 = dynamic)."""
    return tuple(int(shape[i]) for i in range(len(shape)))


def _check_profile(name: str, declared: tuple[int, ...], lo: Sequence[int], opt: Sequence[int], hi: Sequence[int]) -> None:
    for label, shape in (("min", lo), ("opt", opt), ("max", hi)):
        if len(shape) != len(declared):
            raise BuildError(_("profile for {name!r}: {label} shape {shape} has {count} dims, the input has "
                               "{declared_count} {declared} | give one size per dimension").format(
                                   name=name, label=label, shape=tuple(shape), count=len(shape),
                                   declared_count=len(declared), declared=declared))
        fixed = [(i, d, s) for i, (d, s) in enumerate(zip(declared, shape)) if d >= 0 and d != s]
        if fixed:
            i, d, s = fixed[0]
            raise BuildError(_("profile for {name!r}: {label} shape {shape} sets dimension {i} to {size}, but the "
                               "ONNX fixes it at {fixed} | only dynamic (-1) dimensions may vary").format(
                                   name=name, label=label, shape=tuple(shape), i=i, size=s, fixed=d))
    zero = [(label, tuple(shape)) for label, shape in (("min", lo), ("opt", opt), ("max", hi))
            if any(s < 1 for d, s in zip(declared, shape) if d < 0)]
    if zero:
        raise BuildError(_("profile for {name!r}: {label} shape {shape} has a dynamic dimension of size < 1 "
                           "(a batch of 0 computes nothing) | expected sizes >= 1").format(
                               name=name, label=zero[0][0], shape=zero[0][1]))
    if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
        raise BuildError(_("profile for {name!r}: need min <= opt <= max in every dimension; got min {lo}, "
                           "opt {opt}, max {hi} | reorder them").format(name=name, lo=tuple(lo), opt=tuple(opt),
                                                                       hi=tuple(hi)))


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
        raise ArtifactMissing(_("ONNX file {path} does not exist | export it first (Lab 02: "
                                "tl.export.ensure_course_onnx())").format(path=onnx))
    found = detect_precision(onnx)
    if precision is not None and precision != found:
        raise BuildError(_("precision={precision!r} asked, but {name} is an {found} model | strongly typed "
                           "networks take their precision from the ONNX | make an fp16/int8 ONNX with "
                           "tl.precision.autocast_fp16(...) / tl.precision.quantize_int8(...) and build that").format(
                               precision=precision, name=onnx.name, found=found))
    plan, facts = build_plan(onnx, shapes=shapes, batch=batch, workspace_mib=workspace_mib,
                             optimization_level=optimization_level, profiling_verbosity=profiling_verbosity,
                             timing_cache=timing_cache, rtx_targets=rtx_targets, flavour=flavour, verbose=verbose)
    warnings = facts.pop("warnings")
    out = Path(out) if out else onnx.with_name(f"{onnx.stem}.{'rtx' if facts['backend'] == 'tensorrt_rtx' else 'trt'}.plan")
    meta = EngineMetadata(precision=found, onnx_sha256=sha256(onnx), plan_sha256="", plan_bytes=0,
                          onnx_path=str(onnx), built_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                          **facts)
    write_plan(out, plan, meta)
    settings = BuildSettings(str(onnx), str(out), found, {n: t["shape"] for n, t in facts["inputs"].items()},
                             facts["profiles"], workspace_mib, optimization_level, str(profiling_verbosity).lower(),
                             None if timing_cache is None else str(timing_cache))
    return EngineBuild(out, meta, warnings, settings)
