"""Issue 13, "Bad input and faults" (items 3, 4, 6, 7, 10, the non-Triton parts): each observed fault, reproduced,
now gets the course's error type saying what was wrong, what was expected and what to do — or an explicit result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from onnx import TensorProto, helper

from trtlab import _compat, engine, env, export
from trtlab._toy import toy_classifier_onnx
from trtlab.errors import (BuildError, EngineMismatch, ExportError, InputMismatch, InvalidArgument, TrtlabError,
                           UnsupportedFeature)

RTX = next(f for f in _compat.flavours() if f.is_rtx)


@pytest.fixture(scope="module")
def built(toy_onnx, tmp_path_factory) -> engine.EngineBuild:
    return engine.build(toy_onnx, out=tmp_path_factory.mktemp("plan") / "toy.plan", batch=(1, 2, 4), flavour=RTX)


def _sidecar(plan: Path) -> Path:
    return plan.with_name(plan.name + ".json")


def _copy_plan(built: engine.EngineBuild, folder: Path, **edits) -> Path:
    copy = folder / "copy.plan"
    copy.write_bytes(built.path.read_bytes())
    meta = json.loads(_sidecar(built.path).read_text())
    meta.update(edits)
    _sidecar(copy).write_text(json.dumps(meta))
    return copy


# ---------------------------------------------------------------- 3. parity hid a NaN


class _TwoOutputs(nn.Module):
    """logits = the first three features; extra = sqrt(x3 - 0.5) (NaN below 0.5), or of |x3 - 0.5| when ``safe``."""

    def __init__(self, safe: bool) -> None:
        super().__init__()
        self.safe = safe

    def forward(self, x):
        d = x[:, 3:] - 0.5
        return x[:, :3] * 2.0, torch.sqrt(d.abs() if self.safe else d)


def test_3_nan_in_an_output_fails_parity_and_is_reported(tmp_path):
    path = export.export_onnx(_TwoOutputs(safe=False), tmp_path / "nan.onnx", input_size=1,
                              example_inputs=(torch.rand(2, 4),), output_name=("logits", "extra"))
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    result = export.parity(_TwoOutputs(safe=True), path, x)
    assert result.top1_agreement == 1.0, "the class scores agree: only the NaN can fail this"
    assert not result, repr(result)
    extra = result.outputs[1]
    assert extra.nonfinite_onnx == int((x[:, 3] < 0.5).sum()) > 0 and extra.nonfinite_torch == 0
    assert "NaN/Inf" in repr(result)


def test_3_nan_in_the_input_is_refused(tmp_path):
    path = export.export_onnx(_TwoOutputs(safe=True), tmp_path / "ok.onnx", input_size=1,
                              example_inputs=(torch.rand(2, 4),), output_name=("logits", "extra"))
    x = np.random.default_rng(0).random((16, 4), dtype=np.float32)
    x[3, 1] = np.nan
    with pytest.raises(InputMismatch, match=r"1 NaN/Inf values .*expected finite inputs"):
        export.parity(_TwoOutputs(safe=True), path, x)


# ---------------------------------------------------------------- 4. profile entries that name no input


def test_4_profile_entry_naming_no_input_is_refused(toy_onnx):
    with pytest.raises(InvalidArgument, match=r"shapes names \['image'\].*its inputs are \{'images'"):
        engine.build(toy_onnx, shapes={"image": ((1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}, flavour=RTX)


def test_4_profile_for_a_static_input_must_match_it(tmp_path):
    path = tmp_path / "static.onnx"
    path.write_bytes(toy_classifier_onnx(dynamic_batch=False))
    with pytest.raises(InvalidArgument, match="is static"):
        engine.build_plan(path, shapes={"images": ((1, 3, 8, 8), (4, 3, 8, 8), (8, 3, 8, 8))}, flavour=RTX)


# ---------------------------------------------------------------- 6. raw exceptions → course errors


def test_6_corrupt_onnx_into_build(tmp_path):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07\x12\xff\xff\xff" + bytes(range(200)))
    with pytest.raises(ExportError, match=r"not a valid ONNX file .*export it again"):
        engine.build(corrupt, flavour=RTX)
    with pytest.raises(ExportError, match="not a valid ONNX file"):
        engine.detect_precision(corrupt)


def test_6_sidecar_holding_a_list(built, tmp_path):
    copy = _copy_plan(built, tmp_path)
    _sidecar(copy).write_text("[]")
    with pytest.raises(EngineMismatch, match=r"not a trtlab sidecar: it holds a JSON list.*rebuild"):
        engine.load_plan(copy, verify_runtime=False)


def test_6_sidecar_with_a_null_hash(built, tmp_path):
    copy = _copy_plan(built, tmp_path, plan_sha256=None)
    with pytest.raises(EngineMismatch, match=r"field 'plan_sha256' is None .*expected str"):
        engine.load_plan(copy, verify_runtime=False)


def test_6_profiling_verbosity_verbose(toy_onnx):
    with pytest.raises(InvalidArgument, match=r"'verbose' is the old name of 'detailed'.*expected one of"):
        engine.build_plan(toy_onnx, profiling_verbosity="verbose", flavour=RTX)
    plan, _ = engine.build_plan(toy_onnx, profiling_verbosity="DETAILED", batch=(1, 1, 2), flavour=RTX)
    assert plan


def test_6_export_of_a_model_without_parameters(tmp_path):
    path = export.export_onnx(nn.ReLU(), tmp_path / "relu.onnx", input_size=(2, 8, 8))
    assert export.inspect_onnx(path).inputs[0].shape[1:] == (2, 8, 8)
    with pytest.raises(InvalidArgument, match=r"does not start with a conv layer.*input_size=\(C, 8, 8\)"):
        export.export_onnx(nn.ReLU(), tmp_path / "relu.onnx", input_size=8)


# ---------------------------------------------------------------- 7. misleading messages


def test_7_empty_onnx(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(helper.make_model(helper.make_graph([], "g", [], []),
                                        opset_imports=[helper.make_opsetid("", 18)]).SerializeToString())
    with pytest.raises(ExportError, match="no nodes and no outputs") as err:
        engine.build(empty, flavour=RTX)
    assert "workspace" not in str(err.value)
    no_output = helper.make_model(helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        []), opset_imports=[helper.make_opsetid("", 18)])
    with pytest.raises(ExportError, match="no graph output"):
        export.tensorrt_accepts(no_output.SerializeToString())


def test_7_raw_bytes_are_not_parsed():
    with pytest.raises(ExportError, match="not a valid ONNX file"):
        export.tensorrt_accepts(b"hello, this is not an onnx file at all" * 10)


def test_7_unknown_op_is_not_a_damaged_file(tmp_path):
    model = onnx.load_from_string(toy_classifier_onnx())
    model.graph.node[1].op_type = "MysteryRelu"
    path = tmp_path / "unknown.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ExportError, match=r"'MysteryRelu' is not an ONNX operator.*intact.*Lab 05") as err:
        export.check_onnx(path)
    assert "damaged" not in str(err.value)
    with pytest.raises(BuildError, match=r"(?s)MysteryRelu.*needs a plugin \(Lab 05\)") as err:
        engine.build(path, flavour=RTX)
    assert "malformed" not in str(err.value)


def test_7_rtx_plan_on_a_gpu_rtx_does_not_support():
    meta = engine.EngineMetadata(backend="tensorrt_rtx", backend_version="1.7", cuda_version="13.0", gpu_name=None,
                                 compute_capability=None, rtx_targets=["SM86", "SM89", "SM120"], precision="fp16",
                                 onnx_sha256="a", plan_sha256="b", plan_bytes=1, profiles={}, onnx_path="m.onnx")
    with pytest.raises(EngineMismatch, match=r"9\.0, which TensorRT-RTX does not support.*TensorRT engine") as err:
        engine.check_compatible(meta, backend="tensorrt_rtx", backend_version="1.7", compute_capability=(9, 0),
                                gpu_name="NVIDIA H200")
    assert "CURRENT" not in str(err.value)


def test_7_other_version_is_not_called_verified_without_a_runtime(built, tmp_path, monkeypatch):
    monkeypatch.setattr(env, "runtime_flavour", lambda: None)
    copy = _copy_plan(built, tmp_path, backend_version="1.0.0")
    with pytest.raises(EngineMismatch, match=r"built by TensorRT-RTX 1\.0\.0; TensorRT-RTX .* is installed here"):
        engine.load_plan(copy)
    with pytest.raises(UnsupportedFeature, match="was not checked") as err:
        engine.load_plan(built.path)
    assert "verified" not in str(err.value)


# ---------------------------------------------------------------- 10. a batch of (0, 0, 0); tl._compat


def test_10_batch_of_zero_is_refused(toy_onnx):
    with pytest.raises(InvalidArgument, match=r"batch of 0 .*expected sizes >= 1"):
        engine.build(toy_onnx, batch=(0, 0, 0), flavour=RTX)
    with pytest.raises(BuildError, match="size < 1"):
        engine.build_plan(toy_onnx, shapes={"images": ((0, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))}, flavour=RTX)


def test_10_compat_is_reachable_through_tl():
    import subprocess
    import sys

    code = "import trtlab as tl; print(tl._compat.RTX_DEFAULT_TARGETS)"  # a fresh process: nothing imported it yet
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and "SM86" in done.stdout, done.stderr


def test_every_new_error_is_a_course_error():
    assert issubclass(InvalidArgument, TrtlabError) and issubclass(InvalidArgument, ValueError)


def test_an_rtx_plan_built_on_compute_capability_9_0_is_still_refused_there():
    """A TensorRT-RTX build on a Hopper GPU records CURRENT = 9.0; TensorRT-RTX still cannot run it there."""
    meta = engine.EngineMetadata(backend="tensorrt_rtx", backend_version="1.7.1.116", cuda_version="13.0",
                                 gpu_name="NVIDIA H200", compute_capability="9.0", rtx_targets=["CURRENT"],
                                 precision="fp32", onnx_sha256="a", plan_sha256="b", plan_bytes=1, profiles={})
    with pytest.raises(EngineMismatch, match="does not support at all"):
        engine.check_compatible(meta, backend="tensorrt_rtx", backend_version="1.7.1.116", compute_capability=(9, 0))


def test_engine_refusals_speak_chinese_when_asked_and_keep_versions_and_names(built, tmp_path, monkeypatch):
    from trtlab import i18n

    monkeypatch.setattr(env, "runtime_flavour", lambda: None)
    copy = _copy_plan(built, tmp_path, backend_version="1.0.0")
    meta = engine.EngineMetadata(backend="tensorrt", backend_version="10.8.0.43", cuda_version="12.8",
                                 gpu_name="NVIDIA A100", compute_capability="8.0", rtx_targets=None, precision="fp16",
                                 onnx_sha256="a", plan_sha256="b", plan_bytes=1, profiles={}, onnx_path="m.onnx")
    try:
        i18n.set_language("zh_CN")
        with pytest.raises(EngineMismatch, match=r"^引擎 copy\.plan 由 TensorRT-RTX 1\.0\.0 构建；本机安装的是 "
                                                 r"TensorRT-RTX .*plan 只能在构建它的那个 TensorRT 版本中加载"):
            engine.load_plan(copy)
        with pytest.raises(EngineMismatch) as err:  # a plan from another GPU
            engine.check_compatible(meta, backend="tensorrt", backend_version="10.8.0.43", compute_capability=(9, 0),
                                    gpu_name="NVIDIA H200")
        assert str(err.value) == ("该引擎是为计算能力 8.0 的 GPU（NVIDIA A100）构建的；这块 GPU（NVIDIA H200）的计算能力为 "
                                  "9.0 | 引擎与 GPU 架构绑定 | 在本机重新构建：tl.engine.build('m.onnx', precision='fp16')")
        with pytest.raises(EngineMismatch, match=r"^该引擎由 TensorRT 10\.8\.0\.43 构建；本机的运行时是 TensorRT-RTX 1\.7 "
                                                 r"\| TensorRT 与 TensorRT-RTX 的 plan 不能互换"):
            engine.check_compatible(meta, backend="tensorrt_rtx", backend_version="1.7", compute_capability=(8, 9))
        i18n.set_language("en")
        with pytest.raises(EngineMismatch) as err:
            engine.check_compatible(meta, backend="tensorrt", backend_version="10.8.0.43", compute_capability=(9, 0),
                                    gpu_name="NVIDIA H200")
        assert str(err.value) == ("this engine was built for a GPU of compute capability 8.0 (NVIDIA A100); this GPU "
                                  "(NVIDIA H200) is 9.0 | engines are specific to the GPU architecture | rebuild it "
                                  "here: tl.engine.build('m.onnx', precision='fp16')")
    finally:
        i18n.set_language(None)
