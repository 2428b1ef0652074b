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


def _tiny_classifier():
    import torch
    import torch.nn as nn

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10)).eval()


@exercise("lab02.export_model", title="Export to ONNX: named I/O, a dynamic batch, opset 18, one file", hints=(
    "One call to torch.onnx.export(model, (example,), path, ...): the example input fixes every dimension you do "
    "not declare dynamic.",
    "Name the tensors (input_names=['images'], output_names=['logits']), ask for opset_version=18 and "
    "external_data=False (one self-contained file). With the dynamo exporter, declare the batch dynamic with "
    "dynamic_shapes=({0: torch.export.Dim('batch')},); use an example batch of 2, not 1.",
    "x = torch.zeros(2, 3, input_size, input_size); torch.onnx.export(model.eval(), (x,), path, "
    "input_names=['images'], output_names=['logits'], opset_version=18, dynamo=True, external_data=False, verbose=False, "
    "dynamic_shapes=({0: torch.export.Dim('batch')},))",
))
def export_model(fn: Callable[..., Any]) -> str:
    import onnx
    import onnxruntime as ort
    import torch

    from trtlab.export import quiet_exporter

    model = _tiny_classifier()
    with tempfile.TemporaryDirectory(prefix="trtlab-lab02-") as tmp:
        path = Path(tmp) / "tiny.onnx"
        with quiet_exporter(), contextlib.redirect_stdout(io.StringIO()):
            fn(model, str(path), input_size=16)
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
        if len(shape) != 4 or shape[1:] != [3, 16, 16]:
            raise Mismatch(f"input shape {shape}, expected [batch, 3, 16, 16]: build the example input as "
                           "torch.zeros(2, 3, input_size, input_size)")
        if isinstance(shape[0], int) and shape[0] > 0:
            raise Mismatch(f"the batch dimension is fixed at {shape[0]}: declare it dynamic "
                           "(dynamic_shapes=({0: torch.export.Dim('batch')},) with dynamo, dynamic_axes with the "
                           "legacy exporter), or the engine will only accept that one batch size")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for batch in (1, 5):
            x = torch.randn(batch, 3, 16, 16, generator=torch.Generator().manual_seed(batch))
            got = session.run(None, {"images": x.numpy()})[0]
            with torch.no_grad():
                want = model(x).numpy()
            if got.shape != want.shape or np.abs(got - want).max() > 1e-4:
                raise Mismatch(f"at batch {batch} ONNX Runtime gives {got.shape} values that differ from PyTorch "
                               f"(max |Δ| {np.abs(got - want).max() if got.shape == want.shape else 'n/a'}): export "
                               "the model in eval mode")
    return f"opset {opset}, images[{shape[0]}, 3, 16, 16] → logits, one file; batches 1 and 5 match PyTorch"


def _parity_case():
    rng = np.random.default_rng(2)
    ref = rng.normal(0, 3, (40, 10)).astype(np.float32)
    cand = ref + rng.normal(0, 1e-3, ref.shape).astype(np.float32)
    cand[7, 3] = ref[7, 3] - 40.0  # the largest difference is negative (and dwarfs the flips below)
    for row in (2, 11, 30):  # three rows where the top-1 class flips
        top = int(ref[row].argmax())
        cand[row, (top + 1) % 10] = ref[row, top] + 0.5
    max_abs = float(np.abs(cand.astype(np.float64) - ref).max())
    agree = float((cand.argmax(1) == ref.argmax(1)).mean())
    return ref, cand, max_abs, agree


@exercise("lab02.parity_metrics", title="Parity metrics: max |Δ| and top-1 agreement", hints=(
    "Two numbers: the largest absolute difference between the two logit arrays, and the fraction of rows whose "
    "top-1 class is the same.",
    "Take the absolute value *before* the max (a large negative difference counts too). The predicted class of "
    "a row is the argmax over the class axis (axis=1), compared between the two arrays, not with labels.",
    "diff = np.abs(candidate.astype(np.float64) - reference); return {'max_abs': float(diff.max()), "
    "'top1_agreement': float((candidate.argmax(1) == reference.argmax(1)).mean())}",
))
def parity_metrics(fn: Callable[[np.ndarray, np.ndarray], Any]) -> str:
    ref, cand, max_abs, agree = _parity_case()
    got = fn(ref.copy(), cand.copy())
    if not isinstance(got, dict) or not {"max_abs", "top1_agreement"} <= set(got):
        raise Mismatch(f"your function returned {type(got).__name__}"
                       f"{' with keys ' + str(sorted(got)) if isinstance(got, dict) else ''}; expected a dict with "
                       "keys 'max_abs' and 'top1_agreement'")
    g_abs, g_agree = float(got["max_abs"]), float(got["top1_agreement"])
    diff = cand.astype(np.float64) - ref
    if not np.isclose(g_abs, max_abs, rtol=1e-4):
        if np.isclose(g_abs, diff.max(), rtol=1e-4):
            raise Mismatch(f"max_abs = {g_abs:.4g}, expected {max_abs:.4g}: you took the max of the signed "
                           "difference, so the largest *negative* difference was missed. Use np.abs first")
        if np.isclose(g_abs, np.abs(diff).mean(), rtol=1e-3):
            raise Mismatch(f"max_abs = {g_abs:.4g}, expected {max_abs:.4g}: that is the mean absolute difference; "
                           "parity is about the worst element, take the max")
        raise Mismatch(f"max_abs = {g_abs:.4g}, expected {max_abs:.4g} (the largest |candidate − reference|)")
    if np.isclose(g_agree, agree * len(ref)):
        raise Mismatch(f"top1_agreement = {g_agree:g}, expected a fraction ({agree:.3f}): divide the count of "
                       "matching rows by the number of rows (or use .mean())")
    if not np.isclose(g_agree, agree, atol=1e-6):
        wrong_axis = float((cand.argmax(0) == ref.argmax(0)).mean())
        if np.isclose(g_agree, wrong_axis):
            raise Mismatch(f"top1_agreement = {g_agree:.3f}, expected {agree:.3f}: the argmax went over axis 0 "
                           "(images); the class axis of N×classes logits is axis 1")
        raise Mismatch(f"top1_agreement = {g_agree:.3f}, expected {agree:.3f}: compare argmax(axis=1) of the two "
                       "arrays row by row")
    # a case that must give exactly 1.0 and 0.0
    same = fn(ref.copy(), ref.copy())
    if float(same["max_abs"]) != 0.0 or float(same["top1_agreement"]) != 1.0:
        raise Mismatch(f"identical arrays gave {same}, expected max_abs 0.0 and top1_agreement 1.0")
    return f"max |Δ| {max_abs:.3g} and agreement {agree:.1%} on a crafted case (3 flipped rows) are right"
