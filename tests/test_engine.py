"""trtlab.engine: real TensorRT-RTX builds on the CPU, the metadata sidecar, and refusal of foreign/tampered plans."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trtlab import _compat, engine, env
from trtlab._toy import toy_classifier_onnx
from trtlab.errors import ArtifactMissing, BuildError, EngineMismatch, UnsupportedFeature

import tensorrt_rtx as rtx  # noqa: E402  - the CPU build path; a declared dependency, so missing is a failure
RTX = next(f for f in _compat.flavours() if f.is_rtx)


@pytest.fixture(scope="module")
def built(toy_onnx, tmp_path_factory) -> engine.EngineBuild:
    out = tmp_path_factory.mktemp("plan") / "toy.plan"
    return engine.build(toy_onnx, out=out, batch=(1, 4, 16), flavour=RTX, timing_cache=out.with_suffix(".cache"))


def test_build_writes_plan_and_sidecar(built, toy_onnx):
    assert built and built.path.stat().st_size > 10_000
    meta = json.loads(Path(str(built.path) + ".json").read_text())
    assert meta["backend"] == "tensorrt_rtx" and meta["backend_version"] == str(RTX.version)
    assert meta["precision"] == "fp32"
    assert meta["profiles"]["images"] == [[1, 3, 8, 8], [4, 3, 8, 8], [16, 3, 8, 8]]
    assert meta["plan_sha256"] == engine.sha256(built.path)
    assert meta["onnx_sha256"] == engine.sha256(toy_onnx)
    assert meta["rtx_targets"] == list(_compat.RTX_DEFAULT_TARGETS)
    assert meta["inputs"]["images"] == {"shape": [-1, 3, 8, 8], "dtype": "FLOAT"}
    assert meta["cuda_version"]
    assert any("timing cache" in n for n in meta["notes"]), "RTX must say the timing cache is a no-op"
    assert "RTX targets" in repr(built)


def test_no_temporary_files_left(built):
    assert not [p for p in built.path.parent.iterdir() if p.name.startswith(".")]


def test_parser_errors_name_the_node(tmp_path):
    import onnx

    model = onnx.load_from_string(toy_classifier_onnx())
    model.graph.node[1].op_type = "MysteryRelu"
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    with pytest.raises(BuildError, match=r"node 1 \(MysteryRelu 'relu'\).*Plugin not found"):
        engine.build(path, flavour=RTX)


def test_bad_profile_is_explained(toy_onnx):
    with pytest.raises(BuildError, match="min <= opt <= max"):
        engine.build_plan(toy_onnx, shapes={"images": ((8, 3, 8, 8), (1, 3, 8, 8), (16, 3, 8, 8))}, flavour=RTX)
    with pytest.raises(BuildError, match="ONNX fixes it at 8"):
        engine.build_plan(toy_onnx, shapes={"images": ((1, 3, 8, 8), (1, 3, 9, 9), (16, 3, 8, 8))}, flavour=RTX)
    with pytest.raises(ValueError, match="min <= opt <= max"):
        engine.profile_shapes((-1, 3, 8, 8), (4, 1, 8))


def test_precision_label_must_match_the_onnx(toy_onnx):
    with pytest.raises(BuildError, match="strongly typed"):
        engine.build(toy_onnx, precision="fp16", flavour=RTX)


def test_missing_onnx(tmp_path):
    with pytest.raises(ArtifactMissing, match="export it first"):
        engine.build(tmp_path / "nope.onnx", flavour=RTX)


def test_static_model_needs_no_profile(tmp_path):
    path = tmp_path / "static.onnx"
    path.write_bytes(toy_classifier_onnx(dynamic_batch=False))
    result = engine.build(path, flavour=RTX)
    assert result.metadata.profiles["images"] == [[1, 3, 8, 8]] * 3


def test_rtx_rejects_unknown_target(toy_onnx):
    with pytest.raises(UnsupportedFeature, match="SM90"):
        engine.build_plan(toy_onnx, rtx_targets=["SM90"], flavour=RTX)


# ---------------------------------------------------------------- refusing plans


def test_tampered_plan_is_refused(built, tmp_path):
    copy = tmp_path / "toy.plan"
    data = bytearray(built.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    Path(str(copy) + ".json").write_text(Path(str(built.path) + ".json").read_text())
    with pytest.raises(EngineMismatch, match="modified or replaced"):
        engine.load_plan(copy, verify_runtime=False)


def test_plan_without_sidecar_is_refused(built, tmp_path):
    copy = tmp_path / "orphan.plan"
    copy.write_bytes(built.path.read_bytes())
    with pytest.raises(EngineMismatch, match="no metadata"):
        engine.load_plan(copy, verify_runtime=False)


def test_untouched_plan_verifies(built):
    plan, meta = engine.load_plan(built.path, verify_runtime=False)
    assert len(plan) == meta.plan_bytes


def test_no_runtime_here_says_so(built, monkeypatch):
    monkeypatch.setattr(env, "runtime_flavour", lambda: None)
    with pytest.raises(UnsupportedFeature, match="OnnxRuntimeRunner"):
        engine.load_plan(built.path)


def _meta(**overrides) -> engine.EngineMetadata:
    base = dict(backend="tensorrt", backend_version="11.1.0", cuda_version="13.0", gpu_name="NVIDIA H100",
                compute_capability="9.0", rtx_targets=None, precision="fp16", onnx_sha256="a", plan_sha256="b",
                plan_bytes=1, profiles={}, onnx_path="m.onnx")
    base.update(overrides)
    return engine.EngineMetadata(**base)


def test_other_tensorrt_version_is_refused():
    with pytest.raises(EngineMismatch, match=r"built by TensorRT 11\.1\.0; the runtime here is TensorRT 10\.13.*rebuild"):
        engine.check_compatible(_meta(), backend="tensorrt", backend_version="10.13.3", compute_capability=(9, 0))


def test_other_gpu_is_refused():
    with pytest.raises(EngineMismatch, match=r"compute capability 9\.0 .*is 8\.9.*rebuild"):
        engine.check_compatible(_meta(), backend="tensorrt", backend_version="11.1.0", compute_capability=(8, 9),
                                gpu_name="NVIDIA L4")


def test_tensorrt_plan_on_rtx_is_refused():
    with pytest.raises(EngineMismatch, match="not interchangeable"):
        engine.check_compatible(_meta(), backend="tensorrt_rtx", backend_version="1.7.1.116", compute_capability=(8, 9))


def test_rtx_targets_decide():
    meta = _meta(backend="tensorrt_rtx", backend_version="1.7", compute_capability=None, gpu_name=None,
                 rtx_targets=["SM86", "SM89", "SM120"])
    engine.check_compatible(meta, backend="tensorrt_rtx", backend_version="1.7", compute_capability=(8, 9))
    with pytest.raises(EngineMismatch, match=r"compiled for SM86, SM89, SM120.*7\.5.*CURRENT"):
        engine.check_compatible(meta, backend="tensorrt_rtx", backend_version="1.7", compute_capability=(7, 5))


def test_matching_plan_passes():
    engine.check_compatible(_meta(), backend="tensorrt", backend_version="11.1.0", compute_capability=(9, 0))


def test_tensorrt_runner_refuses_cleanly_without_a_runtime(built, monkeypatch):
    from trtlab import runtime

    monkeypatch.setattr(env, "runtime_flavour", lambda: None)
    with pytest.raises(UnsupportedFeature, match="no TensorRT-family runtime can execute engines"):
        runtime.TensorRTRunner(built.path)


# ---------------------------------------------------------------- the one parse path


def test_parse_reports_without_raising(toy_onnx):
    import onnx

    report = engine.parse(toy_onnx, flavour=RTX)
    assert report and report.errors == [] and report.layers > 0 and "parsed" in repr(report)
    model = onnx.load_from_string(toy_classifier_onnx())
    model.graph.node[1].op_type = "MysteryRelu"
    rejected = engine.parse(model, flavour=rtx)  # a ModelProto, and a module instead of a flavour
    assert not rejected and rejected.flavour == RTX and "REJECTED" in repr(rejected)
    issue = rejected.errors[0]
    assert (issue.node, issue.op, issue.node_name) == (1, "MysteryRelu", "relu")
    assert issue.operator == issue.op and issue.desc == issue.message and "Plugin not found" in issue.message
    assert "Lab 05" in issue.fix and str(issue).startswith("node 1 (MysteryRelu 'relu'): ")
    with pytest.raises(BuildError, match=r"(?s)node 1 \(MysteryRelu 'relu'\).*needs a plugin \(Lab 05\)"):
        rejected.raise_for_errors()


def test_build_plan_builds_what_parse_parsed(toy_onnx):
    report = engine.parse(toy_onnx, flavour=RTX)
    plan, facts = engine.build_plan(report, batch=(1, 2, 4))
    assert len(plan) > 10_000 and facts["profiles"]["images"][2] == [4, 3, 8, 8]
    with pytest.raises(BuildError, match="no optimization profile") as err:
        engine.build_plan(engine.parse(toy_onnx, flavour=RTX), add_profile=False)
    assert "add one" in str(err.value)


@pytest.mark.parametrize("message, words", [
    ("No importer registered for op: Foo", "plugin (Lab 05)"),
    ("Network has dynamic or shape inputs, but no optimization profile has been defined", "add one"),
    ("Network must have at least one output", "no output"),
    ("something nobody has seen", "not detected"),
])
def test_suggest_fix_table(message, words):
    assert words in engine.suggest_fix(message, "Foo")


def test_numpy_dtype_is_public():
    import numpy as np

    assert engine.numpy_dtype(rtx, rtx.DataType.HALF) == np.float16
    assert engine.numpy_dtype is _compat.numpy_dtype
