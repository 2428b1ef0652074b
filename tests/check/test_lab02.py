"""Lab 02 checkers judge what the answer computes: other correct styles pass, typical mistakes fail with their name."""

from __future__ import annotations

import re

import numpy as np
import torch

from conftest import assert_fails, assert_not_done, assert_passes
from trtlab.check import lab02

# ---------------------------------------------------------------- export_model


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


def export_legacy_keywords(model, path, input_size=32):
    """The TorchScript exporter, written with a random example and a dict of dynamic axes by position."""
    model.eval()
    example = torch.rand(4, 3, input_size, input_size)
    torch.onnx.export(model, example, path, dynamo=False, opset_version=18, input_names=["images"],
                      output_names=["logits"], dynamic_axes={"images": [0], "logits": [0]}, do_constant_folding=True)


def export_program_first(model, path, input_size=32):
    """torch.export first, then the ExportedProgram to ONNX and save() (the dynamo path in two calls)."""
    batch = torch.export.Dim("n", min=1, max=64)
    program = torch.export.export(model.eval(), (torch.randn(3, 3, input_size, input_size),),
                                  dynamic_shapes={"input": {0: batch}})
    onnx_program = torch.onnx.export(program, input_names=["images"], output_names=["logits"], opset_version=18,
                                     dynamo=True)
    onnx_program.save(path, external_data=False)


def hard_coded_size(model, path, input_size=32):
    export_with()(model, path, input_size=32)


def test_export_model_accepts_other_correct_styles():
    assert_passes(lab02.export_model, export_with())
    assert_passes(lab02.export_model, export_legacy_keywords)
    assert_passes(lab02.export_model, export_program_first)


def test_export_model_names_each_mistake():
    ex = lab02.export_model
    assert_fails(ex, export_with(legacy=True, dynamic_axes=None), "batch dimension is fixed at 2")
    assert_fails(ex, export_with(legacy=True, input_names=["input"]), r"named \['input'\], expected \['images'\]")
    assert_fails(ex, export_with(legacy=True, output_names=["output"]), r"output is named \['output'\]")
    assert_fails(ex, export_with(external_data=True), "external-data file.*external_data=False")
    assert_fails(ex, hard_coded_size, "called with input_size=16.*do not hard-code the size")
    assert_fails(ex, lambda model, path, input_size=32: None, "no file")


def test_export_model_names_the_learners_line_when_torch_fails():
    def wrong_argument_name(model, path, input_size=32):
        x = torch.zeros(2, 3, input_size, input_size)
        torch.onnx.export(model.eval(), (x,), path, dynamo=True, dynamic_shapes={"x": {0: torch.export.Dim("b")}})

    result = lab02.export_model.evaluate(wrong_argument_name)
    assert result.status == "failed"
    assert "inside torch (" in result.message and "called from your line" in result.message, result.message
    assert "torch.onnx.export(model.eval()" in result.message, result.message


def test_export_model_stub_and_hang(fails_within_limit):
    def stub(model, path, input_size=32):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab02.export_model, stub)
    fails_within_limit(lab02.export_model)


# ---------------------------------------------------------------- parity_metrics


def solution_metrics(reference, candidate):
    diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64))
    agree = candidate.argmax(axis=1) == reference.argmax(axis=1)
    return {"max_abs": float(diff.max()), "top1_agreement": float(agree.mean())}


def float32_metrics(reference, candidate):
    """All in float32 and with a count divided by the rows: differs from float64 only by rounding."""
    delta = np.max(np.absolute(np.subtract(candidate, reference, dtype=np.float32)))
    hits = np.count_nonzero(np.equal(np.argmax(candidate, -1), np.argmax(reference, -1)))
    return dict(top1_agreement=np.float32(hits) / np.float32(len(reference)), max_abs=delta)


def torch_metrics(reference, candidate):
    r, c = torch.from_numpy(reference).float(), torch.from_numpy(candidate).float()
    return {"max_abs": (c - r).abs().amax().item(),
            "top1_agreement": (c.argmax(1) == r.argmax(1)).float().mean().item()}


def _with(**changes):
    return lambda r, c: {**solution_metrics(r, c), **{k: f(r, c) for k, f in changes.items()}}


def test_parity_metrics_accepts_other_correct_styles():
    assert_passes(lab02.parity_metrics, solution_metrics)
    assert_passes(lab02.parity_metrics, float32_metrics)
    assert_passes(lab02.parity_metrics, torch_metrics)


def test_parity_metrics_names_each_mistake():
    ex = lab02.parity_metrics
    agree = lambda r, c: c.argmax(1) == r.argmax(1)  # noqa: E731
    assert_fails(ex, _with(max_abs=lambda r, c: float((c - r).max())), "signed difference")
    assert_fails(ex, _with(max_abs=lambda r, c: float(np.abs(c - r).mean())), "mean absolute difference")
    assert_fails(ex, _with(max_abs=lambda r, c: float(np.linalg.norm(c - r, ord=np.inf))), "largest row sum")
    assert_fails(ex, _with(max_abs=lambda r, c: np.abs(c - r).max(axis=1)), "array of shape.*no axis")
    assert_fails(ex, _with(top1_agreement=lambda r, c: 100 * agree(r, c).mean()), "that is a percentage")
    assert_fails(ex, _with(top1_agreement=lambda r, c: int(agree(r, c).sum())), "count of matching rows")
    assert_fails(ex, _with(top1_agreement=lambda r, c: int(agree(r, c).sum()) // len(r)), "integer division")
    assert_fails(ex, _with(top1_agreement=lambda r, c: 1 - agree(r, c).mean()), "disagree")
    assert_fails(ex, _with(top1_agreement=lambda r, c: (c.argmax(0) == r.argmax(0)).mean()), "axis 0")
    assert_fails(ex, _with(top1_agreement=lambda r, c: 0.925), "31 of 37 rows agree")  # hard-coded
    assert_fails(ex, lambda r, c: (1.0, 1.0), "expected a dict")


def test_parity_metrics_stub_and_hang(fails_within_limit):
    def stub(reference, candidate):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab02.parity_metrics, stub)
    fails_within_limit(lab02.parity_metrics)


def test_parity_metrics_verdict_and_hint_in_chinese():
    """A real wrong answer (the max of the signed difference) judged in Chinese, numbers kept; then English again."""
    from trtlab import i18n

    i18n.set_language("zh_CN")
    try:
        result = assert_fails(lab02.parity_metrics, _with(max_abs=lambda r, c: float((c - r).max())),
                              r"你对带符号的差取了最大值.*请先取 np\.abs")
        assert re.search(r"max_abs = [\d.]+，应为 [\d.]+（40×10 个 logits）", result.message), result.message
        assert lab02.parity_metrics.hint(2).startswith("💡 提示 2/3（lab02.parity_metrics）：在取最大值*之前*先取绝对值")
        assert lab02.parity_metrics.shown_title == "一致性指标：最大 |Δ| 与 top-1 一致率"
    finally:
        i18n.set_language("en")
    assert "you took the max of the signed difference" in lab02.parity_metrics.evaluate(
        _with(max_abs=lambda r, c: float((c - r).max()))).message
