"""Lab 02 exercises: the export call with a dynamic batch, and the parity metrics ONNX Runtime vs PyTorch."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, exercise
from trtlab.i18n import N_, _

__all__ = ["export_model", "parity_metrics"]


U32 = 2.0 ** -24  # float32 unit roundoff


def _tiny_classifier(classes: int = 10, width: int = 8, seed: int = 0):
    """A small CNN with BatchNorm whose running statistics are not the defaults, so BatchNorm matters in the export.
    Handed over in training mode, as a model straight out of a training loop would be."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                          nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return model.train()


# (classes, width, input_size): the second case changes the model and the image size, so neither can be hard-coded.
_EXPORT_CASES = ((10, 8, 16), (7, 6, 24))


def _export_tolerance(model: Any, x: Any, width: int, size: int) -> float:
    """float32 bound for ONNX Runtime vs PyTorch on the same weights and input. The longest chain of roundings is:
    two 3×3 convs (K = 9·width terms each), BatchNorm (folded into the conv by ONNX Runtime: ~4 roundings each), the
    average over size² pixels and the linear layer (width terms): k = 2·9·width + size² + width + 8. Each rounding is
    at most u relative to the value it rounds, which is at most M, the largest activation of the forward pass
    (measured here); the layers after a rounding can amplify it, by a gain we bound by 4 for these small weights
    (PyTorch's default init keeps conv and linear |w| < 0.4; BatchNorm scales are 1): |Δlogit| ≤ 4·k·u·M. A wrong
    export is off by O(M)."""
    import torch

    largest = [0.0]

    def record(module: Any, inputs: Any, output: Any) -> None:
        largest[0] = max(largest[0], float(output.detach().abs().max()))

    handles = [m.register_forward_hook(record) for m in model]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    k = 2 * 9 * width + size * size + width + 8
    return 4 * k * U32 * max(1.0, largest[0])


@exercise("lab02.export_model", title=N_("Export to ONNX: named I/O, a dynamic batch, opset 18, one file"), hints=(
    N_("One call to torch.onnx.export(model, (example,), path, ...): the example input fixes every dimension you do "
       "not declare dynamic."),
    N_("Name the tensors (input_names=['images'], output_names=['logits']), ask for opset_version=18 and "
       "external_data=False (one self-contained file). With the dynamo exporter, declare the batch dynamic with "
       "dynamic_shapes=({0: torch.export.Dim('batch')},); use an example batch of 2, not 1."),
    "x = torch.zeros(2, 3, input_size, input_size); torch.onnx.export(model.eval(), (x,), path, "
    "input_names=['images'], output_names=['logits'], opset_version=18, dynamo=True, external_data=False, verbose=False, "
    "dynamic_shapes=({0: torch.export.Dim('batch')},))",
), time_limit_s=240)  # measured 5–20 s on 2 busy cores: two exports (the dynamo exporter takes most of it)
def export_model(fn: Callable[..., Any]) -> str:
    """Two models (``_EXPORT_CASES``: other class counts, widths and input sizes), each exported by the learner's
    function and run in ONNX Runtime at batches 1 and 5 against PyTorch in eval mode."""
    notes = []
    for classes, width, size in _EXPORT_CASES:
        notes.append(_check_one_export(fn, classes, width, size))
    return "; ".join(notes) + _("; batches 1 and 5 match PyTorch")


def _check_one_export(fn: Callable[..., Any], classes: int, width: int, size: int) -> str:
    import onnx
    import torch

    from trtlab.export import quiet_exporter
    from trtlab.runtime import ort_session

    model = _tiny_classifier(classes, width)
    with tempfile.TemporaryDirectory(prefix="trtlab-lab02-") as tmp:
        path = Path(tmp) / "tiny.onnx"
        with quiet_exporter(), contextlib.redirect_stdout(io.StringIO()):
            fn(model, str(path), input_size=size)
        if not path.exists():
            raise Mismatch(_("no file at the path you were given ({name}): pass `path` to torch.onnx.export").format(
                name=path.name))
        extra = [p.name for p in Path(tmp).iterdir() if p.name != path.name]
        if extra:
            raise Mismatch(_("the export also wrote {extra}: the weights went to a separate external-data file. "
                             "Pass external_data=False so the .onnx is self-contained (TensorRT and Triton get one "
                             "file)").format(extra=extra))
        proto = onnx.load(str(path))
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 18:
            raise Mismatch(_("opset {opset}, expected 18 or newer: pass opset_version=18").format(opset=opset))
        inits = {i.name for i in proto.graph.initializer}
        inputs = [i for i in proto.graph.input if i.name not in inits]
        names_in, names_out = [i.name for i in inputs], [o.name for o in proto.graph.output]
        if names_in != ["images"]:
            raise Mismatch(_("the input is named {names}, expected ['images']: pass input_names=['images'] "
                             "(later labs, Triton configs and runners look tensors up by name)").format(names=names_in))
        if names_out != ["logits"]:
            raise Mismatch(_("the output is named {names}, expected ['logits']: pass output_names=['logits']").format(
                names=names_out))
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_param or d.dim_value for d in dims]
        if len(shape) != 4 or shape[1:] != [3, size, size]:
            raise Mismatch(_("called with input_size={size}, the input shape is {shape}, expected [batch, 3, {size}, "
                             "{size}]: build the example input from the input_size argument, "
                             "torch.zeros(2, 3, input_size, input_size), do not hard-code the size").format(
                                 size=size, shape=shape))
        if isinstance(shape[0], int) and shape[0] > 0:
            raise Mismatch(_("the batch dimension is fixed at {batch}: declare it dynamic "
                             "(dynamic_shapes=({{0: torch.export.Dim('batch')}},) with dynamo, dynamic_axes with the "
                             "legacy exporter), or the engine will only accept that one batch size").format(
                                 batch=shape[0]))
        session = ort_session(path)
        model.eval()
        for batch in (1, 5):
            x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
            got = session.run(None, {"images": x.numpy()})[0]
            with torch.no_grad():
                want = model(x).numpy()
            allowed = _export_tolerance(model, x, width, size)
            if got.shape != want.shape:
                raise Mismatch(_("at batch {batch} ONNX Runtime returns shape {got}, PyTorch {want}: "
                                 "export the model you were given, unchanged").format(
                                     batch=batch, got=got.shape, want=want.shape))
            diff = float(np.abs(got.astype(np.float64) - want).max())
            if diff > allowed:
                raise Mismatch(_("at batch {batch} ONNX Runtime's logits differ from PyTorch's by {diff:.3g} "
                                 "(allowed {allowed:.2g}, the float32 bound). Likely causes: a model other than "
                                 "the one you were given was exported, or its weights were changed before the "
                                 "export").format(batch=batch, diff=diff, allowed=allowed))
    return _("{classes} classes at {size}×{size}: opset {opset}, images[{batch}, 3, {size}, {size}] → logits, "
             "one file").format(classes=classes, size=size, opset=opset, batch=shape[0])


def _parity_case(rows: int, classes: int, flips: tuple[int, ...], seed: int, candidate_dtype: Any,
                 negative: bool):
    """Reference logits and a candidate that differs by small noise, one large difference (negative or positive)
    and a top-1 flip in each row of ``flips``."""
    rng = np.random.default_rng(seed)
    ref = rng.normal(0, 3, (rows, classes)).astype(np.float32)
    cand = ref + rng.normal(0, 1e-3, ref.shape).astype(np.float32)
    cand[rows // 5, 3] = ref[rows // 5, 3] + (-40.0 if negative else 25.0)  # dwarfs the flips below
    for row in flips:
        top = int(ref[row].argmax())
        cand[row, (top + 1) % classes] = ref[row, top] + 0.5
    return ref, cand.astype(candidate_dtype)


# (rows, classes, flipped rows, seed, candidate dtype, largest difference negative): the expected agreements are
# 37/40 = 0.925 and 31/37 = 0.8378… (the large difference flips one more row), neither a whole number; the second
# candidate is float16, as an fp16 engine's output would be, with 1000 classes.
_PARITY_CASES = (
    (40, 10, (2, 11, 30), 2, np.float32, True),
    (37, 1000, (0, 5, 9, 20, 36), 5, np.float16, False),
)
# max_abs: the exact value is computed in float64. A learner computing |candidate − reference| in float32 rounds
# the difference once (the float16 → float32 conversion is exact; abs and max do not round): relative error ≤ u,
# so 2·u is allowed. top1_agreement = k/N: in float64 exact to within u; a float32 mean of N ≤ 2^24 booleans sums
# exactly and rounds once in the division: ≤ u. An absolute 2·u is allowed (a wrong answer is ≥ 1/N away).
_MAX_ABS_RTOL = 2 * U32
_AGREEMENT_ATOL = 2 * U32


def _scalar(got: dict, key: str) -> float:
    value = got[key]
    if np.ndim(value) != 0:
        raise Mismatch((_("{key} is an array of shape {shape}, expected one number: reduce over all elements "
                          "(no axis argument)") if key == "max_abs" else
                        _("{key} is an array of shape {shape}, expected one number: take the mean over "
                          "rows")).format(key=key, shape=np.shape(value)))
    return float(value)


def _check_max_abs(g_abs: float, ref: np.ndarray, cand: np.ndarray) -> None:
    diff = cand.astype(np.float64) - ref.astype(np.float64)
    max_abs = float(np.abs(diff).max())
    if abs(g_abs - max_abs) <= _MAX_ABS_RTOL * max_abs:
        return
    shown = _("max_abs = {got:.6g}, expected {want:.6g} ({rows}×{classes} logits)").format(
        got=g_abs, want=max_abs, rows=len(ref), classes=ref.shape[1])
    # a wrong formula computed in float32 is off by at most ~k·u (k ≤ 1000 terms): recognise it to 1e-5 relative
    close = lambda value: abs(g_abs - value) <= 1e-5 * abs(value)  # noqa: E731
    if close(diff.max()) or close(-diff.min()):
        raise Mismatch(_("{shown}: you took the max of the signed difference, so the largest difference of the "
                         "other sign was missed. Take np.abs first").format(shown=shown))
    if close(np.abs(diff).mean()):
        raise Mismatch(_("{shown}: that is the mean absolute difference; parity is about the worst element, take "
                         "the max").format(shown=shown))
    if close(np.abs(diff).sum(axis=1).max()):
        raise Mismatch(_("{shown}: that is the largest row sum of |Δ| (np.linalg.norm(..., ord=np.inf) on a 2-D "
                         "array is a matrix norm); take np.abs(...).max() over all elements").format(shown=shown))
    if close((np.abs(diff) / np.abs(ref.astype(np.float64))).max()):
        raise Mismatch(_("{shown}: that is the largest *relative* difference; the absolute one is asked "
                         "for").format(shown=shown))
    raise Mismatch(_("{shown}: the largest |candidate − reference| over all elements").format(shown=shown))


def _check_agreement(g_agree: float, ref: np.ndarray, cand: np.ndarray) -> None:
    rows = len(ref)
    same = cand.argmax(1) == ref.argmax(1)
    agree = float(same.mean())
    if abs(g_agree - agree) <= _AGREEMENT_ATOL:
        return
    shown = _("top1_agreement = {got:.6g}, expected {want:.6g} ({count} of {rows} rows agree)").format(
        got=g_agree, want=agree, count=int(same.sum()), rows=rows)
    if np.isclose(g_agree, 100 * agree):
        raise Mismatch(_("{shown}: that is a percentage; a fraction between 0 and 1 is asked for (drop the × "
                         "100)").format(shown=shown))
    if np.isclose(g_agree, same.sum()):
        raise Mismatch(_("{shown}: that is the count of matching rows; divide by the number of rows (or use "
                         ".mean())").format(shown=shown))
    if g_agree == 0 and 0 < agree < 1:
        raise Mismatch(_("{shown}: 0 is what integer division (//) gives for a count below the number of rows; "
                         "use / or .mean()").format(shown=shown))
    if np.isclose(g_agree, 1 - agree):
        raise Mismatch(_("{shown}: that is the fraction of rows that *disagree*; count the rows whose top-1 "
                         "classes are equal").format(shown=shown))
    if np.isclose(g_agree, float((cand.argmax(0) == ref.argmax(0)).mean())):
        raise Mismatch(_("{shown}: the argmax went over axis 0 (images); the class axis of N×classes logits is "
                         "axis 1").format(shown=shown))
    raise Mismatch(_("{shown}. Likely cause: the rows compared are not argmax(axis=1) of the two arrays, row by "
                     "row").format(shown=shown))


@exercise("lab02.parity_metrics", title=N_("Parity metrics: max |Δ| and top-1 agreement"), hints=(
    N_("Two numbers: the largest absolute difference between the two logit arrays, and the fraction of rows whose "
       "top-1 class is the same."),
    N_("Take the absolute value *before* the max (a large negative difference counts too). The predicted class of "
       "a row is the argmax over the class axis (axis=1), compared between the two arrays, not with labels."),
    "diff = np.abs(candidate.astype(np.float64) - reference); return {'max_abs': float(diff.max()), "
    "'top1_agreement': float((candidate.argmax(1) == reference.argmax(1)).mean())}",
), time_limit_s=20)  # measured < 0.1 s: three calls on arrays of at most 37×1000
def parity_metrics(fn: Callable[[np.ndarray, np.ndarray], Any]) -> str:
    """The two cases of ``_PARITY_CASES`` and identical arrays (exactly 0.0 and 1.0), tolerances derived above."""
    notes = []
    for case in _PARITY_CASES:
        ref, cand = _parity_case(*case)
        got = fn(ref.copy(), cand.copy())
        if not isinstance(got, dict) or not {"max_abs", "top1_agreement"} <= set(got):
            keys = _(" with keys {keys}").format(keys=sorted(got)) if isinstance(got, dict) else ""
            raise Mismatch(_("your function returned {kind}{keys}; expected a dict with keys 'max_abs' and "
                             "'top1_agreement'").format(kind=type(got).__name__, keys=keys))
        _check_max_abs(_scalar(got, "max_abs"), ref, cand)
        _check_agreement(_scalar(got, "top1_agreement"), ref, cand)
        notes.append(_("{rows}×{classes} {dtype}: agreement {agree:.4f}").format(
            rows=len(ref), classes=ref.shape[1], dtype=cand.dtype, agree=float((cand.argmax(1) == ref.argmax(1)).mean())))
    ref, _candidate = _parity_case(*_PARITY_CASES[0])
    same = fn(ref.copy(), ref.copy())
    if float(same["max_abs"]) != 0.0 or float(same["top1_agreement"]) != 1.0:
        raise Mismatch(_("identical arrays gave {same}, expected max_abs 0.0 and top1_agreement 1.0").format(same=same))
    return _("max |Δ| and top-1 agreement are right for {notes}, and for identical arrays").format(
        notes=", ".join(notes))
