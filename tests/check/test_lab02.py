"""Lab 02 checkers accept the right answers and reject wrong ones with a message naming the mistake."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from trtlab.check import lab02


def export_with(**overrides):
    """An export function in the learner's shape; ``overrides`` introduce one mistake each."""
    def fn(model, path, input_size=32):
        x = torch.zeros(2, 3, input_size, input_size)
        kwargs = dict(input_names=["images"], output_names=["logits"], opset_version=18)
        legacy = overrides.get("legacy", False)
        if legacy:
            kwargs.update(dynamo=False, dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
        else:
            kwargs.update(dynamo=True, external_data=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
        kwargs.update({k: v for k, v in overrides.items() if k != "legacy"})
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        torch.onnx.export(model.eval(), (x,), path, **kwargs)
    return fn


def test_export_model_accepts_dynamo_and_legacy():
    assert lab02.export_model.evaluate(export_with())
    assert lab02.export_model.evaluate(export_with(legacy=True))


@pytest.mark.parametrize("wrong, message", [
    (export_with(legacy=True, dynamic_axes=None), "batch dimension is fixed at 2"),
    (export_with(legacy=True, input_names=["input"]), r"named \['input'\], expected \['images'\]"),
    (export_with(legacy=True, output_names=["output"]), r"output is named \['output'\]"),
    (export_with(external_data=True), "external-data file.*external_data=False"),
])
def test_export_model_rejects(wrong, message):
    result = lab02.export_model.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_export_model_rejects_no_file():
    result = lab02.export_model.evaluate(lambda model, path, input_size=32: None)
    assert result.status == "failed" and "no file" in result.message


def test_export_model_stub_is_not_done():
    def stub(model, path, input_size=32):
        raise NotImplementedError("exercise not done yet: write your code here")
    assert lab02.export_model.evaluate(stub).status == "not done"


def good_metrics(reference, candidate):
    diff = np.abs(candidate.astype(np.float64) - reference)
    return {"max_abs": float(diff.max()), "top1_agreement": float((candidate.argmax(1) == reference.argmax(1)).mean())}


def test_parity_metrics_accepts_reference():
    assert lab02.parity_metrics.evaluate(good_metrics)


@pytest.mark.parametrize("wrong, message", [
    (lambda r, c: {**good_metrics(r, c), "max_abs": float((c - r).max())}, "signed difference"),
    (lambda r, c: {**good_metrics(r, c), "max_abs": float(np.abs(c - r).mean())}, "mean absolute difference"),
    (lambda r, c: {**good_metrics(r, c), "top1_agreement": float((c.argmax(0) == r.argmax(0)).mean())},
     "axis 0"),
    (lambda r, c: {**good_metrics(r, c), "top1_agreement": int((c.argmax(1) == r.argmax(1)).sum())}, "a fraction"),
    (lambda r, c: (1.0, 1.0), "expected a dict"),
])
def test_parity_metrics_rejects(wrong, message):
    result = lab02.parity_metrics.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_parity_metrics_stub_is_not_done():
    def stub(reference, candidate):
        raise NotImplementedError("exercise not done yet: write your code here")
    assert lab02.parity_metrics.evaluate(stub).status == "not done"
