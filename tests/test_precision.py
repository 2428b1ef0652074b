"""trtlab.precision: FP16 (AutoCast) and INT8 (explicit Q/DQ, ModelOpt and ORT) ONNX files that ONNX Runtime runs
faithfully and that the TensorRT-RTX builder turns into strongly typed fp16/int8 engines — for real, on the CPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from trtlab import _compat, engine, precision
from trtlab._toy import toy_classifier_onnx
from trtlab.errors import ArtifactMissing, InputMismatch

import tensorrt_rtx  # noqa: E402,F401  - a declared dependency: missing means a broken install, a failure
RTX = next(f for f in _compat.flavours() if f.is_rtx)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    path = folder / "toy.onnx"
    path.write_bytes(toy_classifier_onnx(size=16, channels=8))
    x = np.random.default_rng(0).random((128, 3, 16, 16), dtype=np.float32)
    return path, x


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def test_fp16_autocast_keeps_fp32_io_and_builds(toy):
    path, x = toy
    fp16 = precision.autocast_fp16(path, calibration_data=x[:32])
    model = onnx.load(str(fp16))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT, "keep_io_types: fp32 input"
    assert engine.detect_precision(fp16) == "fp16"
    built = engine.build(fp16, flavour=RTX, batch=(1, 8, 32))
    assert built.metadata.precision == "fp16"
    assert built.metadata.inputs["images"]["dtype"] == "FLOAT" and built.metadata.outputs["logits"]["dtype"] == "FLOAT"
    table = precision.accuracy_table({"fp32": path, "fp16": fp16}, x, np.zeros(len(x), np.int64))
    assert table["fp16"].agreement >= 99 and table["fp16"].max_abs_dlogit < 0.05


@pytest.mark.parametrize("tool, method", [("modelopt", "entropy"), ("modelopt", "max"), ("ort", "minmax"),
                                          ("ort", "percentile")])
def test_int8_qdq_is_tensorrt_compatible_and_builds(toy, tmp_path, tool, method):
    path, x = toy
    q = precision.quantize_int8(path, x, tmp_path / f"toy.{tool}.{method}.onnx", tool=tool, method=method)
    model = onnx.load(str(q))
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(q)
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "QuantizeLinear" and len(node.input) > 2 and node.input[2] in inits:
            zp = onnx.numpy_helper.to_array(inits[node.input[2]])
            assert not zp.any(), f"{node.name}: TensorRT needs zero point 0 (symmetric), got {zp}"
    built = engine.build(q, flavour=RTX, batch=(1, 8, 32))
    assert built.metadata.precision == "int8" and built.metadata.plan_bytes > 10_000
    table = precision.accuracy_table({"fp32": path, "int8": q}, x, np.zeros(len(x), np.int64))
    assert table["int8"].agreement >= 95, table


def test_modelopt_then_ort_in_one_process(toy, tmp_path):
    """ModelOpt patches onnxruntime.quantization when it runs in-process; trtlab runs it in a child process."""
    path, x = toy
    precision.quantize_int8(path, x, tmp_path / "a.onnx", tool="modelopt")
    precision.quantize_int8(path, x, tmp_path / "b.onnx", tool="ort")


def test_bad_calibration_data_is_explained(toy):
    path, x = toy
    with pytest.raises(InputMismatch, match="at least 32"):
        precision.quantize_int8(path, x[:4])
    with pytest.raises(InputMismatch, match="float32"):
        precision.quantize_int8(path, (x * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="entropy' or 'max"):
        precision.quantize_int8(path, x, tool="modelopt", method="percentile")
    with pytest.raises(ArtifactMissing):
        precision.autocast_fp16(path.with_name("missing.onnx"))


def test_accuracy_table_columns_and_bins():
    class Fixed:
        name = "fixed"

        def __init__(self, logits):
            self.logits = logits

        def infer(self, feeds):
            n = len(feeds["images"])
            return {"logits": self.logits[:n]}

    ref = np.eye(4, dtype=np.float32)[[0, 1, 2, 3]]
    off = ref.copy()
    off[3] = [0, 0, 1, 0.5]  # last image now predicted as class 2
    x = np.zeros((4, 3, 2, 2), np.float32)
    table = precision.accuracy_table({"fp32": Fixed(ref), "int8": Fixed(off)}, x, np.arange(4),
                                     bins=np.array([0, 0, 1, 1]), tolerance=1.0)
    assert table["fp32"].top1 == 100 and table["int8"].top1 == 75 and table["int8"].agreement == 75
    assert table["int8"].per_bin_top1 == [100.0, 50.0]
    assert table.drop("int8") == 25 and not table
    assert "| int8 |" in table.to_markdown() and "<table>" in table._repr_html_()


def test_representative_indices_cover_everything():
    rng = np.random.default_rng(1)
    brightness, labels = np.sort(rng.uniform(0.2, 1.5, 1000)), rng.integers(0, 10, 1000)
    idx = precision.representative_indices(brightness, labels, 200)
    assert len(np.unique(idx)) == 200
    q = np.digitize(brightness[idx], np.quantile(brightness, [0.25, 0.5, 0.75]))
    assert np.bincount(q, minlength=4).min() >= 40 and len(np.unique(labels[idx])) == 10
