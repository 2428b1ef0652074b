"""PyTorch → ONNX for Lab 02: export, validate, inspect, ask TensorRT, simplify.

- :func:`export_onnx` wraps ``torch.onnx.export``: the dynamo exporter (the default since torch 2.9) or the legacy
  TorchScript one (``dynamo=False``, deprecated), a dynamic batch axis, opset ≥ 18, one self-contained file
  (``external_data=False``), inputs/outputs named ``images``/``logits`` unless you name them; channels and
  output count read from the model.
- :func:`check_onnx` runs ``onnx.checker`` (full check) and strict shape inference, with readable errors for a
  missing, truncated or corrupt file.
- :func:`parity` compares ONNX Runtime with PyTorch on real batches: every output, a tolerance per precision with
  absolute and relative error (:data:`PARITY_TOLERANCES`), NaN/Inf reported, top-1 agreement.
- :func:`inspect_onnx`: I/O names, shapes, dtypes, dynamic dims, op histogram, parameter count, file size.
- :func:`tensorrt_accepts`: "will TensorRT accept this?" — Lab 03's build without saving
  (:func:`trtlab.engine.build_plan`) with every TensorRT-family builder installed (TensorRT-RTX builds ahead of time
  on a CPU), a strongly typed network and an optimization profile for the dynamic batch; parser errors are listed
  node by node with the likely fix (:func:`trtlab.engine.suggest_fix`).
- :func:`simplify`: onnxslim, node count before/after (check parity again afterwards).
- :func:`ensure_course_onnx`: ``data/artifacts/resnet18_shapes.onnx``, exported from the course model if absent.

Lab 03 (:mod:`trtlab.engine`) builds and saves the real engine; the acceptance check here is the same build, unsaved.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab import _compat, engine, env, paths
from trtlab._onnx import load_onnx
from trtlab._parity import PARITY_TOLERANCES, OutputParity, Parity, parity
from trtlab.engine import ParserIssue, suggest_fix
from trtlab.errors import ArtifactMissing, BuildError, ExportError, InvalidArgument
from trtlab.i18n import _
from trtlab.runtime import input_names_of, named_outputs

__all__ = [
    "Acceptance",
    "AcceptanceReport",
    "COURSE_ONNX",
    "IOSpec",
    "OnnxSummary",
    "OutputParity",
    "PARITY_TOLERANCES",
    "Parity",
    "Simplified",
    "check_onnx",
    "ensure_course_onnx",
    "export_onnx",
    "inspect_onnx",
    "load_onnx",
    "parity",
    "quiet_exporter",
    "simplify",
    "tensorrt_accepts",
]

COURSE_ONNX = "resnet18_shapes.onnx"
INPUT_NAME, OUTPUT_NAME = "images", "logits"
MIN_OPSET = 18


# ---------------------------------------------------------------- export


@contextlib.contextmanager
def quiet_exporter():
    """Hide exporter noise that is not about your model: torchvision ops it skips (torchvision is not installed
    next to the CPU torch), pytree deprecation notes, the legacy exporter's deprecation warning."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            yield
    finally:
        logger.setLevel(level)


def _first_layer_channels(model) -> int | None:
    """Input channels of the model's first conv layer (None when it starts with something else)."""
    import torch.nn as nn

    return next((int(m.in_channels) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d))),
                None)


def _sample_shape(model, input_size: int | Sequence[int]) -> tuple[int, ...]:
    """(C, H, W) of one sample: H, W from ``input_size``; C from it when given as (C, H, W), else from the model's
    first conv layer, and the two must agree (a (1, 64, 64) size on a 3-channel model is a mistake, said so)."""
    size = (int(input_size),) * 2 if isinstance(input_size, int) else tuple(int(s) for s in input_size)
    if len(size) not in (2, 3) or min(size) < 1:
        raise InvalidArgument(_("export_onnx: input_size {input_size!r} not understood | expected 32, (H, W) or "
                                "(C, H, W), e.g. input_size=(1, 48, 48) for 48×48 grayscale images").format(
                                  input_size=input_size))
    channels = _first_layer_channels(model)
    if len(size) == 3:
        if channels is not None and channels != size[0]:
            raise InvalidArgument(_("export_onnx: input_size {size} gives {given} channel(s), but the first conv "
                                    "of {type} takes {channels} | pass input_size=({channels}, {height}, {width}), "
                                    "or fix the model's first layer").format(
                                      size=tuple(size), given=size[0], type=type(model).__name__, channels=channels,
                                      height=size[1], width=size[2]))
        return size
    if channels is None:
        raise InvalidArgument(_("export_onnx: {type} does not start with a conv layer, so its channel count "
                                "cannot be read from it | pass input_size=(C, {height}, {width})").format(
                                  type=type(model).__name__, height=size[0], width=size[1]))
    return (channels, *size)


def _names(value: str | Sequence[str] | None, count: int, what: str, default: str) -> list[str]:
    if value is None:
        if count == 1:
            return [default]
        raise InvalidArgument(_("export_onnx: the model has {count} {what}s; name each one | pass "
                                "{what}_name=({names}) with your names").format(
                                  count=count, what=what, names=', '.join(repr(f'{what}{i}') for i in range(count))))
    names = [value] if isinstance(value, str) else list(value)
    if len(names) != count:
        raise InvalidArgument(_("export_onnx: {n_names} {what} name(s) {names} for a model with {count} {what}(s) "
                                "| pass one name per {what}, in order").format(
                                  n_names=len(names), what=what, names=names, count=count))
    return names


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _exporter_message(err: BaseException, limit: int = 30) -> str:
    """The exporter's own message without terminal colour codes, kept whole up to ``limit`` lines."""
    lines = [ln.rstrip() for ln in _ANSI.sub("", str(err)).strip().splitlines() if ln.strip()]
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more lines in the chained exception above)"]
    return "\n".join(f"    {ln}" for ln in lines) or "    (no message)"


def export_onnx(model, path: str | Path, *, input_size: int | Sequence[int], dynamic_batch: bool = True,
                opset: int = MIN_OPSET, dynamo: bool = True, input_name: str | Sequence[str] | None = None,
                output_name: str | Sequence[str] | None = None, metadata: Mapping[str, Any] | None = None,
                check: bool = True, example_inputs: Sequence[Any] | None = None) -> Path:
    """Export ``model`` to one self-contained ONNX file with a dynamic batch (dimension 0 of every input and output).

    The example input is N×C×H×W float32: H, W from ``input_size`` (32, (H, W) or (C, H, W)), C from the model's first
    conv layer. ``example_inputs`` (one tensor per input, any shapes, batch first) replaces it for models that take
    several or non-image inputs. Names follow the model: inputs as ``forward`` names its parameters (a placeholder
    such as ``x`` becomes ``images``; :func:`trtlab.runtime.input_names_of`), outputs as the model's return names them
    (a dict's keys, ``logits`` for one tensor); ``input_name``/``output_name`` override them, and a model returning a
    plain tuple of several outputs needs ``output_name`` (one name each).
    ``dynamo=True`` (default, torch ≥ 2.9) traces with ``torch.export`` and declares the batch dimension with
    ``dynamic_shapes``; ``dynamo=False`` is the legacy TorchScript exporter with ``dynamic_axes`` (deprecated, still
    what most blog posts show). ``metadata`` is stored in the file's ``metadata_props`` (JSON-encoded values).
    Returns the path; with ``check`` the file is validated by :func:`check_onnx`. The model's train/eval mode is
    restored afterwards.
    """
    import onnx
    import torch

    if opset < MIN_OPSET:
        raise ExportError(_("export_onnx: opset {opset} requested; the course needs opset >= {MIN_OPSET} (the "
                            "dynamo exporter's minimum, and what TensorRT 10/11 parse best); use "
                            "opset={MIN_OPSET}").format(opset=opset, MIN_OPSET=MIN_OPSET))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor = next(iter(model.parameters()), None)
    tensor = tensor if tensor is not None else next(iter(model.buffers()), None)
    device = tensor.device if tensor is not None else torch.device("cpu")  # a model without weights runs anywhere
    if example_inputs is None:
        # batch 2, not 1: torch.export specialises a dimension of size 1, which would pin the batch to 1
        samples: tuple[Any, ...] = (torch.zeros(2, *_sample_shape(model, input_size), device=device),)
    else:
        samples = tuple(torch.as_tensor(t).to(device) for t in example_inputs)
    inputs = _names(input_name, len(samples), "input", INPUT_NAME) if input_name is not None else \
        input_names_of(model, len(samples))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(*samples)
        own_names, values = named_outputs(out)
        outputs = _names(output_name if output_name is not None else own_names, len(values), "output", OUTPUT_NAME)
        kwargs: dict[str, Any] = dict(input_names=inputs, output_names=outputs, opset_version=opset)
        if dynamo:
            kwargs.update(dynamo=True, external_data=False, verbose=False)
            if dynamic_batch:
                batch = torch.export.Dim("batch", min=1, max=4096)
                kwargs["dynamic_shapes"] = tuple({0: batch} for _sample in samples)
        else:
            kwargs["dynamo"] = False
            if dynamic_batch:
                kwargs["dynamic_axes"] = {name: {0: "batch"} for name in (*inputs, *outputs)}
        with quiet_exporter(), torch.no_grad():
            torch.onnx.export(model, samples, str(path), **kwargs)
    except InvalidArgument:
        raise
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; say which model and how
        shapes = ", ".join(str(tuple(t.shape)) for t in samples)
        raise ExportError(_("export of {type} with input {shapes} failed ({exporter} exporter, opset {opset}): "
                            "{error_type}:\n{exporter_message}\n| expected a model that runs on that input in eval "
                            "mode | check the input size and channels; try the other exporter (dynamo=...) to "
                            "compare").format(
                              type=type(model).__name__, shapes=shapes, exporter='dynamo' if dynamo else _('legacy'),
                              opset=opset, error_type=type(err).__name__,
                              exporter_message=_exporter_message(err))) from err
    finally:
        model.train(was_training)
    if metadata:
        proto = onnx.load(str(path))
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = str(key), json.dumps(value)
        onnx.save(proto, str(path))
    if check:
        check_onnx(path)
    return path


# ---------------------------------------------------------------- load and validate


def check_onnx(source: str | Path | bytes) -> str:
    """``onnx.checker`` (full check) + strict shape inference. Returns a one-line summary; raises ExportError."""
    import onnx

    proto = load_onnx(source)
    try:
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True, data_prop=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        unknown = _UNKNOWN_OP.search(str(err))
        if unknown:
            op = unknown.group("op") or unknown.group("node") or "?"
            domain = unknown.group("domain")
            what = (_("op {op!r} is not an ONNX operator (opset {version})").format(
                op=op, version=unknown.group("version")) if not domain else
                    _("op {op!r} is in domain {domain!r}, which the file does not import (opset_import)").format(
                        op=op, domain=domain))
            raise ExportError(_("ONNX validation: {what}. The file is intact; the op is custom or misspelt | "
                                "expected standard ONNX ops, or custom ops in a domain of their own listed in "
                                "opset_import | a custom op needs a TensorRT plugin and an ONNX Runtime kernel "
                                "(Lab 05); a misspelt one, a fix in the model and a re-export").format(
                                  what=what)) from err
        raise ExportError(_("ONNX validation failed: {first}. The file is damaged or the graph is inconsistent (a "
                            "missing initializer, a wrong shape); export it again from the model").format(
                              first=first)) from err
    opset = _default_opset(proto)
    return f"valid ONNX: opset {opset}, {len(proto.graph.node)} nodes, checker and shape inference passed"


_UNKNOWN_OP = re.compile(r"No Op registered for (?P<op>\S+) with domain_version of (?P<version>\d+)"
                         r"|No opset import for domain '(?P<domain>[^']*)'(?:[\s\S]*?OpType: (?P<node>\S+))?")


def _default_opset(proto) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


# ---------------------------------------------------------------- inspect


_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 9: "bool", 10: "float16", 11: "float64",
                16: "bfloat16"}


@dataclass
class IOSpec:
    name: str
    shape: tuple[int | str, ...]
    dtype: str

    @property
    def dynamic_axes(self) -> list[int]:
        return [i for i, d in enumerate(self.shape) if not isinstance(d, int) or d <= 0]

    def __str__(self) -> str:
        return f"{self.name}: {self.dtype}[{', '.join(str(d) for d in self.shape)}]"


@dataclass
class OnnxSummary:
    """What is in an ONNX file, at a glance."""

    path: str
    file_bytes: int
    opset: int
    ir_version: int
    producer: str
    inputs: list[IOSpec]
    outputs: list[IOSpec]
    ops: Counter
    parameters: int
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return sum(self.ops.values())

    @property
    def file_mb(self) -> float:
        return self.file_bytes / 1e6

    def __str__(self) -> str:
        ops = ", ".join(f"{k}×{v}" for k, v in self.ops.most_common())
        return (f"{Path(self.path).name}: {self.file_mb:.1f} MB, opset {self.opset}, producer {self.producer}\n"
                f"  inputs : {'; '.join(map(str, self.inputs))}\n  outputs: {'; '.join(map(str, self.outputs))}\n"
                f"  {self.nodes} nodes: {ops}\n  {self.parameters / 1e6:.2f} M parameters")

    __repr__ = __str__

    def _repr_html_(self) -> str:
        import html

        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in self.ops.most_common())
        io = "<br>".join(html.escape(f"in  {s}") for s in self.inputs) + "<br>" + "<br>".join(
            html.escape(f"out {s}") for s in self.outputs)
        return (f"<p><b>{html.escape(Path(self.path).name)}</b>: {self.file_mb:.1f} MB, opset {self.opset}, "
                f"{self.nodes} nodes, {self.parameters / 1e6:.2f} M parameters<br><code>{io}</code></p>"
                f"<table><tr><th>op</th><th>count</th></tr>{rows}</table>")


def _io(value_info) -> IOSpec:
    t = value_info.type.tensor_type
    dims = tuple(d.dim_param or (d.dim_value if d.HasField("dim_value") else "?") for d in t.shape.dim)
    return IOSpec(value_info.name, dims, _ONNX_DTYPES.get(t.elem_type, f"onnx-type-{t.elem_type}"))


def inspect_onnx(source: str | Path | bytes) -> OnnxSummary:
    """I/O names, shapes (symbolic dims as names), dtypes, op histogram, parameters, file size, metadata."""
    proto = load_onnx(source)
    size = len(source) if isinstance(source, (bytes, bytearray)) else Path(source).stat().st_size
    init_names = {t.name for t in proto.graph.initializer}
    params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
    return OnnxSummary(
        path="<bytes>" if isinstance(source, (bytes, bytearray)) else str(source), file_bytes=size,
        opset=_default_opset(proto), ir_version=proto.ir_version,
        producer=f"{proto.producer_name} {proto.producer_version}".strip(),
        inputs=[_io(i) for i in proto.graph.input if i.name not in init_names],
        outputs=[_io(o) for o in proto.graph.output], ops=Counter(n.op_type for n in proto.graph.node),
        parameters=params, metadata={p.key: p.value for p in proto.metadata_props})


# ---------------------------------------------------------------- parity with PyTorch: trtlab._parity


# ---------------------------------------------------------------- will TensorRT accept it? (Lab 03's build, unsaved)


@dataclass
class Acceptance:
    """One builder's answer: parsed? built? why not, node by node (each issue with its likely fix)."""

    backend: str
    parsed: bool
    built: bool
    issues: list[ParserIssue] = field(default_factory=list)
    build_errors: list[str] = field(default_factory=list)
    profile: dict[str, tuple] = field(default_factory=dict)
    parse_s: float = 0.0
    build_s: float = 0.0
    plan_bytes: int = 0
    note: str = ""

    def __bool__(self) -> bool:
        return self.parsed and self.built

    def __str__(self) -> str:
        if self:
            prof = "; ".join(f"{k}: min {v[0]} opt {v[1]} max {v[2]}" for k, v in self.profile.items())
            return (f"✅ {self.backend}: parsed in {self.parse_s:.2f} s, built in {self.build_s:.1f} s "
                    f"({self.plan_bytes / 1e6:.1f} MB plan){' — ' + self.note if self.note else ''}"
                    + (f"\n    profile {prof}" if prof else ""))
        lines = [f"❌ {self.backend}: {'parsed' if self.parsed else 'parse FAILED'}"
                 + ("" if not self.parsed else ", build FAILED" if not self.built else "")]
        lines += [f"  {issue}\n    fix: {issue.fix}" for issue in self.issues]
        lines += [f"  build: {e}\n    fix: {suggest_fix(e)}" for e in self.build_errors]
        return "\n".join(lines)


@dataclass
class AcceptanceReport:
    """Every installed TensorRT-family builder's answer. Truthy when all of them parse and build."""

    results: list[Acceptance]

    def __bool__(self) -> bool:
        return bool(self.results) and all(self.results)

    def __str__(self) -> str:
        return "\n".join(map(str, self.results)) or "no TensorRT-family builder installed"

    __repr__ = __str__


def _accepts(data: bytes, flavour: _compat.TensorRTFlavour, batch: tuple[int, int, int], build: bool,
             add_profile: bool) -> Acceptance:
    """One builder's answer, from :func:`trtlab.engine.parse` and :func:`trtlab.engine.build_plan` (not saved)."""
    report = engine.parse(data, flavour=flavour)
    result = Acceptance(flavour.label, report.ok, False, issues=list(report.errors), parse_s=report.seconds)
    if not report:
        return result
    if not build:
        result.built, result.note = True, "parse only"
        return result
    try:
        plan, facts = engine.build_plan(report, batch=batch, add_profile=add_profile)
    except BuildError as err:
        result.build_errors = list(report.logger.errors) or [str(err).split("\n| ")[0]]
        return result
    result.built, result.plan_bytes, result.build_s = True, len(plan), facts["build_seconds"]
    result.profile = {name: tuple(tuple(s) for s in shapes) for name, shapes in facts["profiles"].items()
                      if shapes[0] != shapes[2]}
    if flavour.is_rtx:
        result.note = "ahead-of-time build, GPU-free (runs on RTX-class GPUs)"
    return result


def tensorrt_accepts(source: str | Path | bytes, *, batch: tuple[int, int, int] = (1, 8, 32), build: bool = True,
                     add_profile: bool = True, backends: Sequence[str] | None = None) -> AcceptanceReport:
    """Will TensorRT accept this ONNX? Lab 03's build without saving (:func:`trtlab.engine.build_plan`), with every
    installed TensorRT-family builder, for real.

    A strongly typed network (TensorRT 11's only kind; the flag is required on 10.x), an optimization profile
    ``batch = (min, opt, max)`` for a dynamic batch dimension (``add_profile=False`` shows what happens without
    one). ``backends`` restricts to ``"tensorrt"`` and/or ``"tensorrt_rtx"``. TensorRT-RTX builds on a CPU;
    ``tensorrt`` builds need a GPU and are skipped (and said so) without one.
    """
    load_onnx(source, load_external_data=False)  # a clear error for missing, corrupt, non-ONNX or empty input
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    results, skipped = [], []
    here = env.capabilities().builders
    for flavour in _compat.flavours():
        if backends is not None and flavour.module_name not in backends:
            continue
        if flavour not in here:
            skipped.append(Acceptance(flavour.label, False, False, note="needs a GPU to build; skipped here"))
            continue
        results.append(_accepts(data, flavour, batch, build, add_profile))
    if not results and not skipped:
        raise ArtifactMissing(_("tensorrt_accepts: no TensorRT-family builder is installed; pip install "
                                "tensorrt-rtx-cu13 (builds on a CPU) or TensorRT on a GPU machine"))
    return AcceptanceReport(results or skipped)


# ---------------------------------------------------------------- simplify


@dataclass
class Simplified:
    path: Path
    nodes_before: int
    nodes_after: int
    ops_before: Counter
    ops_after: Counter

    def __repr__(self) -> str:
        removed = self.ops_before - self.ops_after
        gone = ", ".join(f"{k}×{v}" for k, v in removed.most_common()) or "nothing"
        return f"Simplified({self.path.name}: {self.nodes_before} → {self.nodes_after} nodes; removed {gone})"


def simplify(source: str | Path, out: str | Path | None = None) -> Simplified:
    """onnxslim: constant folding, dead-node and Identity removal, fusions. Writes ``out`` (default ``*.slim.onnx``)."""
    import onnx
    import onnxslim

    src = Path(source)
    proto = load_onnx(src)
    before = Counter(n.op_type for n in proto.graph.node)
    target = Path(out) if out else src.with_suffix(".slim.onnx")
    with contextlib.redirect_stdout(None):
        slim = onnxslim.slim(proto)
    onnx.save(slim, str(target))
    after = Counter(n.op_type for n in slim.graph.node)
    return Simplified(target, sum(before.values()), sum(after.values()), before, after)


# ---------------------------------------------------------------- the course ONNX file


def ensure_course_onnx(*, progress: bool = True) -> Path:
    """``data/artifacts/resnet18_shapes.onnx``: the course model exported (dynamo, opset 18, dynamic batch).

    Exported from :func:`trtlab.train.ensure_course_model` (which trains it if needed) when the file is missing or
    was exported from another checkpoint (the checkpoint's sha256 is stored in the file's metadata).
    """
    from trtlab.train import ensure_course_model

    model, meta = ensure_course_model(progress=progress)
    path = paths.artifacts() / COURSE_ONNX
    if path.exists():
        try:
            summary = inspect_onnx(path)
            if json.loads(summary.metadata.get("checkpoint_sha256", "null")) == meta.get("sha256"):
                return path
        except (ExportError, ArtifactMissing, ValueError):
            pass  # damaged or stale: export again
    tmp = path.with_suffix(".tmp.onnx")
    onnx_meta = {"checkpoint_sha256": meta.get("sha256"), "classes": meta["classes"],
                 "input_size": meta["input_size"], "mean": meta["mean"], "std": meta["std"], "arch": meta["arch"]}
    export_onnx(model, tmp, input_size=tuple(meta["input_size"]), metadata=onnx_meta)
    tmp.replace(path)
    return path
