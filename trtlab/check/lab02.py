"""Lab 02 exercises: the export call with a dynamic batch, and the parity metrics ONNX Runtime vs PyTorch."""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, exercise

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


@exercise("lab02.export_model", title="Export to ONNX: named I/O, a dynamic batch, opset 18, one file", hints=(
    "One call to torch.onnx.export(model, (example,), path, ...): the example input fixes every dimension you do "
    "not declare dynamic.",
    "Name the tensors (input_names=['images'], output_names=['logits']), ask for opset_version=18 and "
    "external_data=False (one self-contained file). With the dynamo exporter, declare the batch dynamic with "
    "dynamic_shapes=({0: torch.export.Dim('batch')},); use an example batch of 2, not 1.",
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
    return "; ".join(notes) + "; batches 1 and 5 match PyTorch"


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
            raise Mismatch(f"no file at the path you were given ({path.name}): pass `path` to torch.onnx.export")
        extra = [p.name for p in Path(tmp).iterdir() if p.name != path.name]
        if extra:
            raise Mismatch(f"the export also wrote {extra}: the weights went to a separate external-data file. "
                           "Pass external_data=False so the .onnx is self-contained (TensorRT and Triton get one file)")
        proto = onnx.load(str(path))
        opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 18:
            raise Mismatch(f"opset {opset}, expected 18 or newer: pass opset_version=18")
        inits = {i.name for i in proto.graph.initializer}
        inputs = [i for i in proto.graph.input if i.name not in inits]
        names_in, names_out = [i.name for i in inputs], [o.name for o in proto.graph.output]
        if names_in != ["images"]:
            raise Mismatch(f"the input is named {names_in}, expected ['images']: pass input_names=['images'] "
                           "(later labs, Triton configs and runners look tensors up by name)")
        if names_out != ["logits"]:
            raise Mismatch(f"the output is named {names_out}, expected ['logits']: pass output_names=['logits']")
        dims = inputs[0].type.tensor_type.shape.dim
        shape = [d.dim_param or d.dim_value for d in dims]
        if len(shape) != 4 or shape[1:] != [3, size, size]:
            raise Mismatch(f"called with input_size={size}, the input shape is {shape}, expected [batch, 3, {size}, "
                           f"{size}]: build the example input from the input_size argument, "
                           "torch.zeros(2, 3, input_size, input_size), do not hard-code the size")
        if isinstance(shape[0], int) and shape[0] > 0:
            raise Mismatch(f"the batch dimension is fixed at {shape[0]}: declare it dynamic "
                           "(dynamic_shapes=({0: torch.export.Dim('batch')},) with dynamo, dynamic_axes with the "
                           "legacy exporter), or the engine will only accept that one batch size")
        session = ort_session(path)
        model.eval()
        for batch in (1, 5):
            x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(batch))
            got = session.run(None, {"images": x.numpy()})[0]
            with torch.no_grad():
                want = model(x).numpy()
            allowed = _export_tolerance(model, x, width, size)
            if got.shape != want.shape:
                raise Mismatch(f"at batch {batch} ONNX Runtime returns shape {got.shape}, PyTorch {want.shape}: "
                               "export the model you were given, unchanged")
            diff = float(np.abs(got.astype(np.float64) - want).max())
            if diff > allowed:
                raise Mismatch(f"at batch {batch} ONNX Runtime's logits differ from PyTorch's by {diff:.3g} "
                               f"(allowed {allowed:.2g}, the float32 bound). Likely causes: a model other than "
                               "the one you were given was exported, or its weights were changed before the export")
    return (f"{classes} classes at {size}×{size}: opset {opset}, images[{shape[0]}, 3, {size}, {size}] → logits, "
            "one file")


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
        raise Mismatch(f"{key} is an array of shape {np.shape(value)}, expected one number: reduce over all elements "
                       "(no axis argument)" if key == "max_abs" else
                       f"{key} is an array of shape {np.shape(value)}, expected one number: take the mean over rows")
    return float(value)


def _check_max_abs(g_abs: float, ref: np.ndarray, cand: np.ndarray) -> None:
    diff = cand.astype(np.float64) - ref.astype(np.float64)
    max_abs = float(np.abs(diff).max())
    if abs(g_abs - max_abs) <= _MAX_ABS_RTOL * max_abs:
        return
    shown = f"max_abs = {g_abs:.6g}, expected {max_abs:.6g} ({len(ref)}×{ref.shape[1]} logits)"
    # a wrong formula computed in float32 is off by at most ~k·u (k ≤ 1000 terms): recognise it to 1e-5 relative
    close = lambda value: abs(g_abs - value) <= 1e-5 * abs(value)  # noqa: E731
    if close(diff.max()) or close(-diff.min()):
        raise Mismatch(f"{shown}: you took the max of the signed difference, so the largest difference of the other "
                       "sign was missed. Take np.abs first")
    if close(np.abs(diff).mean()):
        raise Mismatch(f"{shown}: that is the mean absolute difference; parity is about the worst element, take "
                       "the max")
    if close(np.abs(diff).sum(axis=1).max()):
        raise Mismatch(f"{shown}: that is the largest row sum of |Δ| (np.linalg.norm(..., ord=np.inf) on a 2-D array "
                       "is a matrix norm); take np.abs(...).max() over all elements")
    if close((np.abs(diff) / np.abs(ref.astype(np.float64))).max()):
        raise Mismatch(f"{shown}: that is the largest *relative* difference; the absolute one is asked for")
    raise Mismatch(f"{shown}: the largest |candidate − reference| over all elements")


def _check_agreement(g_agree: float, ref: np.ndarray, cand: np.ndarray) -> None:
    rows = len(ref)
    same = cand.argmax(1) == ref.argmax(1)
    agree = float(same.mean())
    if abs(g_agree - agree) <= _AGREEMENT_ATOL:
        return
    shown = f"top1_agreement = {g_agree:.6g}, expected {agree:.6g} ({int(same.sum())} of {rows} rows agree)"
    if np.isclose(g_agree, 100 * agree):
        raise Mismatch(f"{shown}: that is a percentage; a fraction between 0 and 1 is asked for (drop the × 100)")
    if np.isclose(g_agree, same.sum()):
        raise Mismatch(f"{shown}: that is the count of matching rows; divide by the number of rows (or use .mean())")
    if g_agree == 0 and 0 < agree < 1:
        raise Mismatch(f"{shown}: 0 is what integer division (//) gives for a count below the number of rows; "
                       "use / or .mean()")
    if np.isclose(g_agree, 1 - agree):
        raise Mismatch(f"{shown}: that is the fraction of rows that *disagree*; count the rows whose top-1 classes "
                       "are equal")
    if np.isclose(g_agree, float((cand.argmax(0) == ref.argmax(0)).mean())):
        raise Mismatch(f"{shown}: the argmax went over axis 0 (images); the class axis of N×classes logits is axis 1")
    raise Mismatch(f"{shown}. Likely cause: the rows compared are not argmax(axis=1) of the two arrays, row by row")


@exercise("lab02.parity_metrics", title="Parity metrics: max |Δ| and top-1 agreement", hints=(
    "Two numbers: the largest absolute difference between the two logit arrays, and the fraction of rows whose "
    "top-1 class is the same.",
    "Take the absolute value *before* the max (a large negative difference counts too). The predicted class of "
    "a row is the argmax over the class axis (axis=1), compared between the two arrays, not with labels.",
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
            raise Mismatch(f"your function returned {type(got).__name__}"
                           f"{' with keys ' + str(sorted(got)) if isinstance(got, dict) else ''}; expected a dict "
                           "with keys 'max_abs' and 'top1_agreement'")
        _check_max_abs(_scalar(got, "max_abs"), ref, cand)
        _check_agreement(_scalar(got, "top1_agreement"), ref, cand)
        notes.append(f"{len(ref)}×{ref.shape[1]} {cand.dtype}: agreement "
                     f"{float((cand.argmax(1) == ref.argmax(1)).mean()):.4f}")
    ref, _ = _parity_case(*_PARITY_CASES[0])
    same = fn(ref.copy(), ref.copy())
    if float(same["max_abs"]) != 0.0 or float(same["top1_agreement"]) != 1.0:
        raise Mismatch(f"identical arrays gave {same}, expected max_abs 0.0 and top1_agreement 1.0")
    return "max |Δ| and top-1 agreement are right for " + ", ".join(notes) + ", and for identical arrays"
