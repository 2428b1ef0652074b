"""trtlab.env: which GPUs each TensorRT flavour supports, and which of Lab 03's three engine paths a machine takes."""

from __future__ import annotations

import pytest
from packaging.version import Version

import trtlab as tl
from trtlab import env
from trtlab._compat import TensorRTFlavour

H200 = env.Gpu("NVIDIA H200", (9, 0), 139.8)
RTX4090 = env.Gpu("NVIDIA GeForce RTX 4090", (8, 9), 24.0)


def fake_caps(gpus=(), tensorrt=None, rtx=None, torch_cuda=None) -> env.Capabilities:
    return env.Capabilities(
        gpus=tuple(gpus), torch_cuda=bool(gpus) if torch_cuda is None else torch_cuda, cupy_runs_kernels=bool(gpus),
        nvrtc_compiles=True, tensorrt=TensorRTFlavour("tensorrt", Version(tensorrt)) if tensorrt else None,
        tensorrt_rtx=TensorRTFlavour("tensorrt_rtx", Version(rtx)) if rtx else None,
        onnxruntime_providers=("CPUExecutionProvider",), triton_server=None)


@pytest.mark.parametrize("version, cc, supported", [
    ("10.3", (7, 0), True),    # Volta: deprecated in 10.0, still there until 10.4
    ("10.5", (7, 0), False),   # removed in 10.5
    ("11.4", (7, 5), True), ("11.4", (9, 0), True), ("10.3", (8, 7), True),
    ("10.0", (6, 1), False),   # Pascal: not in TensorRT 10
])
def test_tensorrt_supports_follows_the_release_notes(version, cc, supported):
    assert env.tensorrt_supports(version, cc) is supported


def test_rtx_supported_words_match_its_support_matrix():
    for cc in ("7.5", "8.6", "8.9", "12.0", "12.1"):
        assert cc in env.RTX_SUPPORTED
    assert "no Hopper 9.0" in env.RTX_SUPPORTED
    assert (9, 0) not in env.RTX_COMPUTE_CAPABILITIES


@pytest.mark.parametrize("caps, path, words", [
    (fake_caps((H200,), rtx="1.7.1"), "gpu-standin",
     ["STAND-IN", "TensorRT is not installed", "compute capability 9.0", "PyTorch's, not TensorRT's"]),
    (fake_caps((RTX4090,), rtx="1.7.1"), "tensorrt", ["TensorRT-RTX 1.7.1", "RTX 4090"]),
    (fake_caps((H200,), tensorrt="11.4.0", rtx="1.7.1"), "tensorrt", ["TensorRT 11.4.0"]),
    (fake_caps(), "cpu", ["ONNX Runtime and PyTorch on the CPU"]),
    (fake_caps((H200,), rtx="1.7.1", torch_cuda=False), "cpu", ["on the CPU"]),  # a CPU-only torch on a GPU box
])
def test_engine_execution_names_the_path_and_why(monkeypatch, caps, path, words):
    monkeypatch.setattr(env, "capabilities", lambda: caps)
    execution = env.engine_execution()
    assert execution.path == path, execution
    assert (execution.runtime is not None) == (path == "tensorrt")
    for word in words:
        assert word in execution.why, execution.why


def test_builder_and_runtime_here():
    """This (CPU) machine builds with TensorRT-RTX and runs no engine: the public names Lab 03 uses."""
    assert tl.env.builder_flavour().label.startswith(("TensorRT-RTX", "TensorRT"))
    if not tl.env.capabilities().has_gpu:
        assert tl.env.runtime_flavour() is None and tl.env.engine_execution().path == "cpu"


def test_builder_without_a_gpu_is_rtx_even_beside_tensorrt(monkeypatch):
    """The one rule ("TensorRT where a GPU builds with it, else TensorRT-RTX") answers both questions."""
    assert tl.env.builder_flavour(has_gpu=False).is_rtx
    both = fake_caps((H200,), tensorrt="11.4.0", rtx="1.7.1")
    assert [f.module_name for f in both.builders] == ["tensorrt", "tensorrt_rtx"]
    assert both.builder.label == both.engine_builder == "TensorRT 11.4.0"
    assert fake_caps(tensorrt="11.4.0", rtx="1.7.1").builder.is_rtx  # tensorrt needs a GPU to build
    assert fake_caps(tensorrt="11.4.0").builder is None and fake_caps(tensorrt="11.4.0").engine_builder is None
    monkeypatch.setattr(env, "capabilities", lambda: both)
    assert env.builder_flavour().label == "TensorRT 11.4.0" and env.runtime_flavour().label == "TensorRT 11.4.0"


@pytest.mark.parametrize("caps, runtime", [
    (fake_caps((RTX4090,), rtx="1.7.1"), "TensorRT-RTX 1.7.1"),
    (fake_caps((H200,), rtx="1.7.1"), None),  # Hopper is not in TensorRT-RTX's support matrix
    (fake_caps(tensorrt="11.4.0", rtx="1.7.1"), None),  # no GPU
])
def test_runtime_rule(caps, runtime):
    assert caps.engine_runtime == runtime and (caps.runtime.label if caps.runtime else None) == runtime


def test_builder_flavour_without_any(monkeypatch):
    from trtlab import _compat
    from trtlab.errors import UnsupportedFeature

    monkeypatch.setattr(_compat, "flavours", lambda: [])
    with pytest.raises(UnsupportedFeature, match="pip install tensorrt-rtx-cu13"):
        env.builder_flavour(has_gpu=False)
