"""FP16 and INT8 the TensorRT 11 way: precision is decided in the ONNX before the build (Lab 03).

TensorRT 11 networks are strongly typed: there is no ``BuilderFlag.FP16``/``INT8`` and no INT8 calibrator any more.
Instead:

- **FP16**: ModelOpt AutoCast rewrites the ONNX to mixed precision (:func:`autocast_fp16`), keeping fp32 inputs and
  outputs (``keep_io_types``) so the application does not change.
- **INT8**: explicit Quantize/DequantizeLinear (Q/DQ) pairs calibrated on real data (:func:`quantize_int8`), either
  with ModelOpt PTQ (entropy or max) or with ONNX Runtime's ``quantize_static`` configured the way TensorRT needs it
  (symmetric activations, zero point 0, per-channel weights on axis 0, fp32 bias).

Both run on a CPU, and the results are measured on ONNX Runtime everywhere (:func:`accuracy_table`), minding the
ONNX Runtime traps (:func:`ort_runner`). The calibration-coverage experiment (:func:`calibration_coverage`) shows why
the calibration set must cover the inputs the model will see.
"""

from __future__ import annotations

import contextlib
import html
import io
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from trtlab.errors import ArtifactMissing, ExportError, InputMismatch, InvalidArgument
from trtlab.i18n import _
from trtlab.runtime import ORT_DISABLED_OPTIMIZERS, predict

__all__ = [
    "AccuracyRow",
    "AccuracyTable",
    "CoverageResult",
    "LayerError",
    "ORT_DISABLED_OPTIMIZERS",
    "accuracy_table",
    "autocast_fp16",
    "calibration_coverage",
    "layerwise_error",
    "ort_runner",
    "predict_logits",
    "quantize_int8",
    "representative_indices",
]

def _require(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(_("ONNX file {path} does not exist | export it first (Lab 02: "
                                "tl.export.ensure_course_onnx())").format(path=path))
    return path


def _model_input(src: Path, input_name: str | None, data: np.ndarray | None, what: str) -> str:
    """The ONNX file's input that ``data`` feeds: ``input_name``, or the file's only input; ``data`` must fit its
    rank, fixed dimensions and float32 dtype (so ModelOpt and ONNX Runtime never fail with an empty cause)."""
    from trtlab.export import inspect_onnx

    specs = {i.name: i for i in inspect_onnx(src).inputs}
    listed = "; ".join(map(str, specs.values()))
    if input_name is None:
        if len(specs) != 1:
            raise InputMismatch(_("{what}: {name} has {count} inputs ({listed}) | pass input_name=... "
                                  "naming the one the data feeds").format(what=what, name=src.name, count=len(specs),
                                                                          listed=listed))
        input_name = next(iter(specs))
    if input_name not in specs:
        raise InputMismatch(_("{what}: input_name={input_name!r}, but {name} takes {listed} | pass one of "
                              "{names} (or leave input_name out for a one-input model)").format(
                                  what=what, input_name=input_name, name=src.name, listed=listed, names=sorted(specs)))
    if data is not None:
        shape = specs[input_name].shape
        fixed = [(i, d) for i, d in enumerate(shape) if isinstance(d, int) and d > 0]
        if np.ndim(data) != len(shape) or any(np.shape(data)[i] != d for i, d in fixed):
            raise InputMismatch(_("{what}: data of shape {shape} for input {spec} | expected "
                                  "the model's input shape with any batch, normalised like the model input").format(
                                      what=what, shape=np.shape(data), spec=specs[input_name]))
    return input_name


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """ModelOpt logs a lot at INFO level; keep the notebook readable (errors still raise)."""
    buffer = io.StringIO()
    names = ["modelopt", "onnxruntime", "polygraphy"] + [n for n in logging.root.manager.loggerDict
                                                         if n.startswith(("modelopt", "polygraphy"))]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


# ---------------------------------------------------------------- making fp16 and int8 ONNX files


def autocast_fp16(onnx_path: str | os.PathLike, out: str | os.PathLike | None = None, *, keep_io_types: bool = True,
                  calibration_data: np.ndarray | None = None, input_name: str | None = None,
                  keep_fp32_ops: Sequence[str] = ()) -> Path:
    """FP16 ONNX with ModelOpt AutoCast (what replaces ``BuilderFlag.FP16``); fp32 I/O kept by default.

    AutoCast keeps nodes whose values would overflow fp16 in fp32; ``calibration_data`` (real inputs) lets it
    measure that instead of guessing from random inputs. ``input_name`` defaults to the file's only input.
    ``keep_fp32_ops``: ONNX op types to leave in fp32 (AutoCast's ``op_types_to_exclude``), e.g. ("ReduceMean",).
    """
    import onnx
    from modelopt.onnx.autocast import convert_to_mixed_precision

    src = _require(onnx_path)
    out = Path(out) if out else src.with_name(f"{src.stem}.fp16.onnx")
    if calibration_data is not None:
        input_name = _model_input(src, input_name, calibration_data, "autocast_fp16 calibration_data")
    with tempfile.TemporaryDirectory() as tmp:
        calib = None
        if calibration_data is not None:
            calib = str(Path(tmp) / "calib.npz")  # AutoCast wants an .npz keyed by input name (.npy is rejected)
            arrays: dict[str, Any] = {str(input_name): np.asarray(calibration_data, np.float32)}
            np.savez(calib, **arrays)
        try:
            with _quiet():
                model = convert_to_mixed_precision(onnx_path=str(src), low_precision_type="fp16",
                                                   keep_io_types=keep_io_types, calibration_data=calib,
                                                   op_types_to_exclude=list(keep_fp32_ops) or None,
                                                   providers=["cpu"])
        except Exception as err:
            raise ExportError(_("ModelOpt AutoCast failed on {name}: {kind}: {err} | check that the ONNX loads in "
                                "ONNX Runtime (Lab 02) and that calibration_data matches the input shape").format(
                                    name=src.name, kind=type(err).__name__, err=err)) from err
    onnx.save(model, str(out))
    return out


def quantize_int8(onnx_path: str | os.PathLike, calibration_data: np.ndarray, out: str | os.PathLike | None = None, *,
                  tool: str = "modelopt", method: str | None = None, high_precision: str = "fp32",
                  input_name: str | None = None) -> Path:
    """INT8 ONNX with explicit Q/DQ, calibrated on ``calibration_data`` (the model's input, float32, already
    normalised; ``input_name`` defaults to the file's only input).

    ``tool="modelopt"``: ModelOpt PTQ, ``method`` "entropy" (default) or "max"; ``high_precision`` "fp32" keeps the
    non-quantized ops in fp32 (validates cleanly on ONNX Runtime), "fp16" is ModelOpt's default for TensorRT.
    ``tool="ort"``: ONNX Runtime ``quantize_static``, ``method`` "minmax" (default) or "percentile", configured
    the way TensorRT needs (symmetric, zero point 0, per-channel weights on axis 0, bias left in fp32).
    """
    src = _require(onnx_path)
    data = np.asarray(calibration_data)
    if data.dtype != np.float32:
        raise InputMismatch(_("calibration_data: got {dtype} of shape {shape}, expected float32 "
                              "normalised like the model input | use tl.data.to_numpy_input(dataset.images[idx], "
                              "meta)").format(dtype=data.dtype, shape=data.shape))
    input_name = _model_input(src, input_name, data, "quantize_int8 calibration_data")
    if len(data) < 32:
        raise InputMismatch(_("calibration_data: got {count} images; use at least 32 (a few hundred is typical) "
                              "so the activation ranges are measured, not guessed").format(count=len(data)))
    out = Path(out) if out else src.with_name(f"{src.stem}.int8-{tool}.onnx")
    if tool == "modelopt":
        method = method or "entropy"
        if method not in ("entropy", "max"):
            raise InvalidArgument(_("ModelOpt INT8 calibration method must be 'entropy' or 'max'; got "
                                    "{method!r}").format(method=method))
        _modelopt_quantize(src, data, out, method, high_precision, input_name)
    elif tool == "ort":
        _ort_quantize_static(src, data, out, method or "minmax", input_name)
    else:
        raise InvalidArgument(_("tool must be 'modelopt' or 'ort'; got {tool!r}").format(tool=tool))
    return out


def _modelopt_quantize(src: Path, data: np.ndarray, out: Path, method: str, high_precision: str,
                       input_name: str) -> None:
    """ModelOpt's documented CLI, in a child process: ModelOpt patches onnxruntime.quantization in place when it runs,
    which breaks a later ``quantize_static`` in the same process ("Quantization parameters are not specified")."""
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as tmp:  # ModelOpt writes *_opset19.onnx beside its input: use a copy
        work = Path(tmp) / src.name
        work.write_bytes(src.read_bytes())
        calib = Path(tmp) / "calib.npz"
        arrays: dict[str, Any] = {input_name: data}
        np.savez(calib, **arrays)
        cmd = [sys.executable, "-m", "modelopt.onnx.quantization", "--onnx_path", str(work), "--quantize_mode", "int8",
               "--calibration_data_path", str(calib), "--calibration_method", method, "--calibration_eps", "cpu",
               "--high_precision_dtype", high_precision, "--output_path", str(out.resolve())]
        done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0 or not out.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise ExportError(_("ModelOpt INT8 quantization of {name} failed (exit {code}):\n{tail}\n"
                            "| the command was: {command}").format(name=src.name, code=done.returncode, tail=tail,
                                                                  command=" ".join(cmd)))


def _ort_quantize_static(src: Path, data: np.ndarray, out: Path, method: str, input_name: str) -> None:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise InvalidArgument(_("ORT calibration method must be 'minmax' or 'percentile'; got {method!r}").format(
            method=method))

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(np.array_split(data, max(1, len(data) // 32)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory() as tmp:
        prepped = Path(tmp) / "prepped.onnx"
        with _quiet():
            quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
            quantize_static(
                str(prepped), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, calibrate_method=methods[method],
                extra_options={
                    "ActivationSymmetric": True,  # ORT's default (False) gives zero points TensorRT rejects
                    "WeightSymmetric": True,
                    "QuantizeBias": False,  # an INT32 bias DQ fails TensorRT's parser
                    "AddQDQPairToWeight": True,
                    "DedicatedQDQPair": False,
                    "QDQOpTypePerChannelSupportToAxis": {"Conv": 0},
                    "CalibPercentile": 99.99,
                    "CalibTensorRangeSymmetric": True,
                },
            )


# ---------------------------------------------------------------- measuring


def ort_runner(model: str | os.PathLike | bytes, *, threads: int | None = None) -> Any:
    """A quiet ONNX Runtime CPU runner (``threads`` intra-op threads); like every course session it executes fp16
    and Q/DQ models faithfully (:func:`trtlab.runtime.ort_session`)."""
    import onnxruntime as ort

    from trtlab.runtime import OnnxRuntimeRunner

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    source = model if isinstance(model, bytes) else str(_require(model))
    return OnnxRuntimeRunner(source, session_options=options)


def _io_names(runner: Any, input_name: str | None, output_name: str | None) -> tuple[str, str]:
    """The runner's only input and first output unless named; the course's names for a runner that does not
    describe its I/O (a duck-typed object with ``infer`` only)."""
    ins = list(runner.inputs()) if hasattr(runner, "inputs") else ["images"]
    outs = list(runner.outputs()) if hasattr(runner, "outputs") else ["logits"]
    if input_name is None:
        if len(ins) != 1:
            raise InputMismatch(_("{runner} takes inputs {ins} | pass input_name=... naming the one x feeds").format(
                runner=getattr(runner, "name", "runner"), ins=ins))
        input_name = ins[0]
    return input_name, output_name or outs[0]


def predict_logits(runner: Any, x: np.ndarray, *, batch_size: int = 250, input_name: str | None = None,
                   output_name: str | None = None) -> np.ndarray:
    """Outputs for all of ``x`` (the model's input, float32), in batches. ``input_name`` defaults to the runner's
    only input, ``output_name`` to its first output (the class scores of a classifier)."""
    input_name, output_name = _io_names(runner, input_name, output_name)
    result = predict(runner, x, batch_size=batch_size, input_name=input_name)
    if output_name not in result:
        raise InputMismatch(_("{runner} has no output {name!r}; it returns {outputs} | pass output_name= one of "
                              "those").format(runner=getattr(runner, "name", "runner"), name=output_name,
                                              outputs=sorted(result)))
    return result[output_name].astype(np.float32)


@dataclass
class AccuracyRow:
    """One model variant measured against the reference (fp32)."""

    name: str
    top1: float  # percent
    agreement: float  # percent of images whose argmax equals the reference's
    max_abs_dlogit: float
    per_bin_top1: list[float] = field(default_factory=list)
    per_bin_agreement: list[float] = field(default_factory=list)
    backend: str = "onnxruntime-cpu"


@dataclass(repr=False)
class AccuracyTable:
    """fp32/fp16/int8 side by side. Truthy when every variant is within ``tolerance`` points of the reference."""

    rows: list[AccuracyRow]
    reference: str
    tolerance: float = 1.0
    bins: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> AccuracyRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"no row {name!r}; rows are {[r.name for r in self.rows]}")

    def drop(self, name: str) -> float:
        """Top-1 points lost against the reference."""
        return self[self.reference].top1 - self[name].top1

    def delta(self, name: str) -> float:
        """Top-1 points gained (+) or lost (−) against the reference."""
        return self[name].top1 - self[self.reference].top1 + 0.0  # + 0.0: no "-0.00"

    def __bool__(self) -> bool:
        return all(self.drop(r.name) <= self.tolerance for r in self.rows)

    def to_markdown(self) -> str:
        head = ["variant", "backend", "top-1 %", f"Δ vs {self.reference}", "argmax agreement %", "max |Δlogit|"]
        head += [f"top-1 {b}" for b in self.bins]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            cells = [r.name, r.backend, f"{r.top1:.2f}", f"{self.delta(r.name):+.2f}", f"{r.agreement:.2f}",
                     f"{r.max_abs_dlogit:.3g}"] + [f"{v:.1f}" for v in r.per_bin_top1]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    __str__ = __repr__ = to_markdown

    def _repr_html_(self) -> str:
        md = self.to_markdown().splitlines()
        head = "".join(f"<th>{html.escape(c.strip())}</th>" for c in md[0].strip("|").split("|"))
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in line.strip("|").split("|"))
                       + "</tr>" for line in md[2:])
        return f"<table><tr>{head}</tr>{body}</table>"


def accuracy_table(models: Mapping[str, Any], x: np.ndarray, labels: np.ndarray, *, reference: str | None = None,
                   bins: np.ndarray | None = None, bin_names: Sequence[str] | None = None,
                   tolerance: float = 1.0, input_name: str | None = None,
                   output_name: str | None = None) -> AccuracyTable:
    """Top-1, argmax agreement with the reference and max |Δlogit| for each model (a path, bytes or a Runner).

    ``bins`` (an int per image, e.g. ``tl.data.brightness_bins``) adds per-bin top-1 columns. Input and output
    names default to each model's only input and first output (:func:`predict_logits`).
    """
    if len(x) != len(labels):
        raise InputMismatch(_("accuracy_table: {images} images but {labels} labels | pass matching arrays").format(
            images=len(x), labels=len(labels)))
    reference = reference or next(iter(models))
    logits: dict[str, np.ndarray] = {}
    backends: dict[str, str] = {}
    for name, model in models.items():
        runner = model if hasattr(model, "infer") else ort_runner(model)
        logits[name] = predict_logits(runner, x, input_name=input_name, output_name=output_name)
        backends[name] = getattr(runner, "name", "?")
    ref = logits[reference]
    n_bins = int(bins.max()) + 1 if bins is not None else 0
    rows = []
    for name, out in logits.items():
        pred, ref_pred = out.argmax(1), ref.argmax(1)
        per_bin = [100 * float((pred[bins == b] == labels[bins == b]).mean()) if (bins == b).any() else float("nan")
                   for b in range(n_bins)] if bins is not None else []
        per_agree = [100 * float((pred[bins == b] == ref_pred[bins == b]).mean()) if (bins == b).any()
                     else float("nan") for b in range(n_bins)] if bins is not None else []
        rows.append(AccuracyRow(name, 100 * float((pred == labels).mean()), 100 * float((pred == ref_pred).mean()),
                                float(np.abs(out - ref).max()), per_bin, per_agree, backends[name]))
    names = list(bin_names) if bin_names else [f"bin {b}" for b in range(n_bins)]
    return AccuracyTable(rows, reference, tolerance, names)


# ---------------------------------------------------------------- choosing calibration data


def representative_indices(brightness: np.ndarray, labels: np.ndarray, n: int, *, seed: int = 0,
                           strata: int = 4) -> np.ndarray:
    """``n`` indices stratified by class × brightness quantile: a calibration set that covers the inputs the model
    will see (Lab 03's exercise asks you to write this)."""
    brightness, labels = np.asarray(brightness), np.asarray(labels)
    if n > len(labels):
        raise InvalidArgument(_("asked for {n} calibration images from a set of {size}").format(n=n, size=len(labels)))
    rng = np.random.default_rng(seed)
    edges = np.quantile(brightness, np.linspace(0, 1, strata + 1)[1:-1])
    level = np.digitize(brightness, edges)
    groups = [np.flatnonzero((labels == c) & (level == s)) for c in np.unique(labels) for s in range(strata)]
    groups = [g for g in groups if len(g)]
    picked: list[int] = []
    per_group = max(1, n // len(groups))
    for g in groups:
        picked.extend(rng.choice(g, size=min(per_group, len(g)), replace=False).tolist())
    rest = np.setdiff1d(np.arange(len(labels)), picked)
    if len(picked) < n:
        picked.extend(rng.choice(rest, size=n - len(picked), replace=False).tolist())
    return np.sort(rng.permutation(np.array(picked))[:n])


@dataclass
class CoverageResult:
    """The calibration-coverage experiment: INT8 calibrated on a representative set vs on dark images only."""

    table: AccuracyTable
    bright_bin: int
    seeds: int

    @property
    def bright_top1_drop(self) -> float:
        """Top-1 points the dark-only calibration loses on the brightest bin, relative to representative."""
        return (self.table["int8 representative"].per_bin_top1[self.bright_bin]
                - self.table["int8 dark-only"].per_bin_top1[self.bright_bin])

    @property
    def bright_agreement_drop(self) -> float:
        return (self.table["int8 representative"].per_bin_agreement[self.bright_bin]
                - self.table["int8 dark-only"].per_bin_agreement[self.bright_bin])

    def __bool__(self) -> bool:
        return self.bright_top1_drop >= 5 and self.bright_agreement_drop >= 5

    def __repr__(self) -> str:
        return (f"CoverageResult(dark-only calibration loses {self.bright_top1_drop:.1f} top-1 points and "
                f"{self.bright_agreement_drop:.1f} agreement points on the brightest images)")


def calibration_coverage(onnx_path: str | os.PathLike, calib_x: np.ndarray, calib_bins: np.ndarray,
                         test_x: np.ndarray, test_labels: np.ndarray, test_bins: np.ndarray, *, n: int = 256,
                         seed: int = 0, out_dir: str | os.PathLike | None = None,
                         progress: Callable[[Iterator[Any]], Iterator[Any]] | None = None) -> CoverageResult:
    """Quantize twice with the same recipe (ORT MinMax, TensorRT-compatible Q/DQ): once on ``n`` images drawn from
    every brightness bin, once on ``n`` images from the darkest bin only; measure both per brightness bin."""
    src = _require(onnx_path)
    out_dir = Path(out_dir) if out_dir else src.parent
    rng = np.random.default_rng(seed)
    rep = rng.choice(len(calib_x), size=min(n, len(calib_x)), replace=False)
    dark_pool = np.flatnonzero(calib_bins == 0)
    dark = rng.choice(dark_pool, size=min(n, len(dark_pool)), replace=False)
    plans = {"int8 representative": rep, "int8 dark-only": dark}
    items = progress(iter(plans.items())) if progress else iter(plans.items())
    models: dict[str, Any] = {"fp32": src}
    for name, idx in items:
        path = out_dir / f"{src.stem}.{name.split()[1]}-calib.int8.onnx"
        models[name] = quantize_int8(src, calib_x[idx], path, tool="ort", method="minmax")
    bright = int(test_bins.max())
    table = accuracy_table(models, test_x, test_labels, reference="fp32", bins=test_bins,
                           bin_names=[f"bin {b}" for b in range(bright + 1)], tolerance=100.0)
    return CoverageResult(table, bright, 1)


# ---------------------------------------------------------------- localising an accuracy problem (Polygraphy)


@dataclass
class LayerError:
    tensor: str
    op: str
    rel_error: float  # max |Δ| / max |reference| over the batch


def layerwise_error(reference: str | os.PathLike, candidate: str | os.PathLike, x: np.ndarray, *,
                    input_name: str | None = None) -> list[LayerError]:
    """Where does ``candidate`` (e.g. an INT8 model) start to differ from ``reference`` (fp32)?

    Polygraphy marks every intermediate tensor of both models as an output (what ``polygraphy run --onnxrt
    --onnx-outputs mark all`` does); both run on ONNX Runtime and every tensor present in both graphs is compared,
    in the reference's execution order. The first large jump names the layer to look at.
    """
    import onnxruntime as ort
    from polygraphy import constants
    from polygraphy.backend.onnx import modify_outputs, onnx_from_path

    from trtlab.runtime import ort_session

    input_name = _model_input(_require(reference), input_name, x, "layerwise_error x")
    models = {}
    for key, path in (("ref", reference), ("cand", candidate)):
        with _quiet():
            models[key] = modify_outputs(onnx_from_path(str(_require(path))), outputs=constants.MARK_ALL)
    order = [(out, node.op_type) for node in models["ref"].graph.node for out in node.output]
    results = {}
    for key, model in models.items():
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort_session(model, session_options=options)
        names = [o.name for o in session.get_outputs()]
        results[key] = dict(zip(names, session.run(names, {input_name: x})))
    errors = []
    for tensor, op in order:
        if tensor in results["ref"] and tensor in results["cand"]:
            a, b = np.asarray(results["ref"][tensor], np.float64), np.asarray(results["cand"][tensor], np.float64)
            if a.shape != b.shape or a.size == 0 or a.dtype.kind != "f":
                continue
            scale = float(np.abs(a).max()) or 1.0
            errors.append(LayerError(tensor, op, float(np.abs(a - b).max()) / scale))
    return errors
