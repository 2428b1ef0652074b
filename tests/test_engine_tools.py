"""trtlab.engine_tools: the trtexec command of a real build (TensorRT 10.x and 11.x flags), refusals, and the
layer precisions of a parsed network and of the engine inspector's JSON layout."""

from __future__ import annotations

import shlex

import pytest

from trtlab import _compat, engine
from trtlab.check.lab03 import _ENGINE_LAYOUT_JSON, _mixed_precision_onnx
from trtlab.engine_tools import BuildSettings, trtexec_command
from trtlab.errors import InvalidArgument, UnsupportedFeature

RTX = next(f for f in _compat.flavours() if f.is_rtx)


@pytest.fixture(scope="module")
def built(toy_onnx, tmp_path_factory) -> engine.EngineBuild:
    out = tmp_path_factory.mktemp("plan") / "toy.plan"
    return engine.build(toy_onnx, out=out, batch=(2, 4, 16), flavour=RTX, workspace_mib=256, optimization_level=4,
                        timing_cache=out.with_suffix(".cache"))


def flags(command) -> dict[str, str]:
    return dict(a.split("=", 1) if "=" in a else (a, "") for a in command.argv[1:])


def test_build_settings_become_flags(built):
    for version in ("10", "11"):
        got = flags(engine.trtexec_command(built, version))
        assert got["--onnx"] == str(built.settings.onnx)
        assert got["--saveEngine"] == str(built.path.with_suffix(".trtexec.plan"))  # never over the course's plan
        assert (got["--minShapes"], got["--optShapes"], got["--maxShapes"]) == (
            "images:2x3x8x8", "images:4x3x8x8", "images:16x3x8x8")
        assert got["--shapes"] == "images:4x3x8x8"  # the opt shape by default
        assert got["--memPoolSize"] == "workspace:256M"
        assert got["--builderOptimizationLevel"] == "4"
        assert got["--profilingVerbosity"] == "detailed"
        assert got["--timingCacheFile"] == str(built.path.with_suffix(".cache"))


def test_strong_typing_per_version(built):
    assert "--stronglyTyped" in engine.trtexec_command(built, "10").argv
    assert "--stronglyTyped" not in engine.trtexec_command(built, "11").argv  # a deprecated no-op in 11
    for version in ("10", "11"):
        assert not {"--fp16", "--int8", "--best"} & set(engine.trtexec_command(built, version).argv)


def test_weak_fp16_is_10x_only():
    weak = BuildSettings("m.onnx", "m.plan", weak_precision=("fp16",))
    argv = trtexec_command(weak, "10").argv
    assert "--fp16" in argv and "--stronglyTyped" not in argv
    with pytest.raises(UnsupportedFeature, match=r"11\.0 removed.*--fp16"):
        trtexec_command(weak, "11")


def test_timing_defaults_and_alignment(built):
    default10, default11 = (engine.trtexec_command(built, v).argv for v in ("10", "11"))
    assert not {"--useCudaGraph", "--noCudaGraph", "--noDataTransfers", "--includeDataTransfers"} & set(
        default10 + default11)
    aligned10 = engine.trtexec_command(built, "10", cuda_graph=True, data_transfers=False).argv
    assert {"--useCudaGraph", "--noDataTransfers"} <= set(aligned10)
    aligned11 = engine.trtexec_command(built, "11", cuda_graph=False, data_transfers=True).argv
    assert {"--noCudaGraph", "--includeDataTransfers"} <= set(aligned11)
    assert "--useCudaGraph" not in engine.trtexec_command(built, "11", cuda_graph=True).argv  # already the default


def test_layer_info_and_profile(built):
    plan = built.path.with_suffix(".trtexec.plan")
    ten = flags(engine.trtexec_command(built, "10", layer_info=True, profile=True))
    assert ten["--exportLayerInfo"] == f"{plan}.layers.json" and ten["--exportProfile"] == f"{plan}.profile.json"
    assert {"--dumpLayerInfo", "--dumpProfile", "--separateProfileRun"} <= set(ten)
    assert "--separateProfileRun" not in engine.trtexec_command(built, "11", profile=True).argv  # always on in 11


def test_inference_shape_and_skip(built):
    got = engine.trtexec_command(built, "11", shapes={"images": (8, 3, 8, 8)}, skip_inference=True)
    assert flags(got)["--shapes"] == "images:8x3x8x8" and "--skipInference" in got.argv
    with pytest.raises(InvalidArgument, match="not dynamic inputs"):
        engine.trtexec_command(built, "11", shapes={"pixels": (1, 3, 8, 8)})


def test_static_inputs_get_no_shape_flags():
    static = BuildSettings("m.onnx", "m.plan", inputs={"x": [1, 3, 8, 8]}, profiles={"x": [[1, 3, 8, 8]] * 3})
    assert not any(a.startswith(("--minShapes", "--shapes")) for a in trtexec_command(static, "11").argv)


def test_names_with_colons_are_quoted():
    odd = BuildSettings("m.onnx", "m.plan", inputs={"input:0": [-1, 3]}, profiles={"input:0": [[1, 3], [2, 3], [4, 3]]})
    assert "--minShapes='input:0':1x3" in trtexec_command(odd, "10").argv


def test_shell_string_round_trips(built):
    command = engine.trtexec_command(built, "11")
    assert shlex.split(command.shell) == list(command.argv)


def test_bad_requests():
    with pytest.raises(InvalidArgument, match="'10' or '11'"):
        trtexec_command(BuildSettings("m.onnx", "m.plan"), "9")
    with pytest.raises(InvalidArgument, match="tl.engine.build"):
        trtexec_command("m.onnx", "11")
    with pytest.raises(InvalidArgument, match="layer_names_only"):
        trtexec_command(BuildSettings("m.onnx", "m.plan", profiling_verbosity="verbose"), "11")


def test_run_trtexec_refuses_cleanly_when_absent(built, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(UnsupportedFeature, match="not installed here"):
        engine.run_trtexec(engine.trtexec_command(built, "11"))
    assert engine.trtexec_version() is None


def test_layer_precisions_of_a_parsed_network():
    layers = {l.name: l for l in engine.layer_precisions(engine.parse(_mixed_precision_onnx(), flavour=RTX))}
    assert layers["images_to_fp16"].inputs == ("float32",) and layers["images_to_fp16"].outputs == ("float16",)
    assert layers["conv"].kind == "convolution" and layers["conv"].outputs == ("float16",)
    assert layers["pool"].inputs == layers["pool"].outputs == ("float32",)
    assert layers["fc.weight"].kind == "constant" and layers["fc.weight"].inputs == ()


def test_layer_precisions_of_the_inspector_layouts():
    layers = {l.name: l for l in engine.layer_precisions(_ENGINE_LAYOUT_JSON)}
    first = layers["Reformatting CopyNode for Input Tensor 0 to stem + relu"]
    assert (first.kind, first.inputs, first.outputs) == ("reformat", ("float32",), ("float16",))  # 10.x strings
    assert layers["head_pool"].inputs == ("float32",)  # 11.x "DataType": "Float"
    assert layers["logits_shape"].outputs == ("int64",)


def test_layer_names_only_is_explained():
    with pytest.raises(InvalidArgument, match="LAYER_NAMES_ONLY"):
        engine.layer_precisions({"Layers": ["conv", "relu"]})
    with pytest.raises(InvalidArgument, match="'Layers'"):
        engine.layer_precisions({"Bindings": []})


def test_trtexec_refusal_in_chinese_keeps_versions_and_flags():
    """The 11.0 removal of weak typing, in Chinese: version numbers and trtexec flags unchanged; then English again."""
    from trtlab import i18n

    weak = BuildSettings("m.onnx", "m.plan", weak_precision=("fp16",))
    i18n.set_language("zh_CN")
    try:
        with pytest.raises(UnsupportedFeature) as refused:
            trtexec_command(weak, "11")
        message = str(refused.value)
        assert "弱类型的 fp16 构建在 TensorRT 11 中没有对应做法：11.0 移除了 trtexec 的 --fp16/--int8/--best" in message
        assert "强类型" in message and "trt_version='10'" in message and "tl.precision.autocast_fp16" in message
        assert trtexec_command(weak, "10").notes == ("弱类型：10.12 中弃用，11.0 中移除",)
    finally:
        i18n.set_language("en")
    with pytest.raises(UnsupportedFeature, match=r"11\.0 removed.*--fp16"):
        trtexec_command(weak, "11")
