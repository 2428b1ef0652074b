"""trtlab.export: export, validation, parity, inspection, the real TensorRT-RTX acceptance check, simplify."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trtlab import _compat, data, export, models
from trtlab.errors import ArtifactMissing, ExportError, InputMismatch



def test_a_tensorrt_family_builder_is_installed():
    """CI installs tensorrt-rtx (it builds without a GPU): the acceptance tests below must run, never skip."""
    assert _compat.tensorrt_rtx() is not None or _compat.tensorrt() is not None, (
        "no TensorRT-family builder: pip install tensorrt-rtx-cu13 (see requirements/)")


@pytest.fixture(scope="module")
def images():
    return data.load_shapes("test", n=64, cache=False).images


@pytest.fixture(scope="module")
def resnet_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = models.resnet18(10).eval()
    path = export.export_onnx(model, tmp_path_factory.mktemp("onnx") / "r18.onnx", input_size=32,
                              metadata={"classes": data.SHAPE_CLASSES})
    return model, path


def test_export_is_self_contained_named_and_dynamic(resnet_onnx):
    _, path = resnet_onnx
    assert not list(path.parent.glob("*.data")), "weights must be inside the .onnx (external_data=False)"
    s = export.inspect_onnx(path)
    assert [i.name for i in s.inputs] == ["images"] and [o.name for o in s.outputs] == ["logits"]
    assert s.inputs[0].dynamic_axes == [0] and s.inputs[0].shape[1:] == (3, 32, 32)
    assert s.outputs[0].shape[1] == 10 and s.opset >= 18 and s.inputs[0].dtype == "float32"
    assert s.ops["Conv"] == 20 and s.parameters > 11e6 and "BatchNormalization" not in s.ops
    assert "classes" in s.metadata and "images" in str(s)
    assert "valid ONNX" in export.check_onnx(path)


def test_parity_with_pytorch(resnet_onnx, images):
    model, path = resnet_onnx
    p = export.parity(model, path, images)
    assert p and p.max_abs <= 1e-4 and p.top1_agreement == 1.0 and p.n == 64
    other = models.resnet18(10).eval()  # a different model must fail the parity check
    assert not export.parity(other, path, images)


def test_tensorrt_rtx_parses_and_builds(resnet_onnx):
    _, path = resnet_onnx
    report = export.tensorrt_accepts(path)
    assert report, str(report)
    rtx = report.results[0]
    assert rtx.plan_bytes > 1e6 and rtx.profile["images"][2] == (32, 3, 32, 32)


def test_missing_profile_is_explained(resnet_onnx):
    _, path = resnet_onnx
    report = export.tensorrt_accepts(path, add_profile=False)
    assert not report
    assert "optimization profile" in str(report) and "add one" in str(report)


def test_unsupported_op_is_reported_per_node(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("FancyActivation", ["images"], ["logits"], name="fancy_1", domain="trtlab")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("trtlab", 1)])
    report = export.tensorrt_accepts(proto.SerializeToString())
    assert not report
    issue = report.results[0].issues[0]
    assert issue.op == "FancyActivation" and issue.node == 0 and "Lab 05" in issue.fix


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet34", "mobilenet_v2", "vgg11_bn"])
def test_other_architectures_export_validate_and_build(arch, tmp_path, images):
    torch.manual_seed(0)
    model = models.build(arch).eval()
    path = export.export_onnx(model, tmp_path / f"{arch}.onnx", input_size=32)
    p = export.parity(model, path, images[:32])
    assert p.max_abs <= 1e-4 and p.top1_agreement == 1.0, repr(p)
    report = export.tensorrt_accepts(path, batch=(1, 4, 16))
    assert report, str(report)


@pytest.mark.slow
def test_legacy_exporter_and_simplify(tmp_path, images):
    torch.manual_seed(0)
    model = models.resnet18(10).eval()
    legacy = export.export_onnx(model, tmp_path / "legacy.onnx", input_size=32, dynamo=False)
    s = export.inspect_onnx(legacy)
    assert s.inputs[0].dynamic_axes == [0] and s.ops["GlobalAveragePool"] == 1
    slim = export.simplify(legacy)
    assert slim.nodes_after < slim.nodes_before and slim.ops_after["Identity"] == 0
    assert export.parity(model, slim.path, images[:16])


def test_static_batch_export(tmp_path):
    path = export.export_onnx(models.vgg11_bn().eval(), tmp_path / "static.onnx", input_size=(32, 32),
                              dynamic_batch=False)
    assert export.inspect_onnx(path).inputs[0].dynamic_axes == []


def test_bad_files_are_clear_errors(tmp_path, resnet_onnx):
    _, good = resnet_onnx
    with pytest.raises(ArtifactMissing, match="does not exist"):
        export.check_onnx(tmp_path / "missing.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ExportError, match="empty"):
        export.check_onnx(empty)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ExportError, match="not a valid ONNX|truncated|validation failed"):
        export.check_onnx(garbage)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ExportError, match="export it again"):
        export.check_onnx(truncated)
    with pytest.raises(ExportError):
        export.tensorrt_accepts(truncated)


def test_wrong_inputs_are_clear_errors(resnet_onnx, images):
    from trtlab.runtime import OnnxRuntimeRunner

    model, path = resnet_onnx
    with OnnxRuntimeRunner(path) as runner:
        with pytest.raises(InputMismatch, match="shape"):
            runner.infer({"images": np.zeros((1, 3, 28, 28), np.float32)})
        with pytest.raises(InputMismatch, match="dtype"):
            runner.infer({"images": np.zeros((1, 3, 32, 32), np.float64)})
    with pytest.raises(InputMismatch, match="expected uint8"):
        export.parity(model, path, images.astype(np.float32))
    with pytest.raises(ExportError, match="opset"):
        export.export_onnx(model, path.parent / "old.onnx", input_size=32, opset=13)
