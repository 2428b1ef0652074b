"""trtlab.standin without a GPU: the CPU stand-in's contract, the runner's handling of TensorRT's return values and
CUDA-graph capture (on the CPU stand-in), and the GPU stand-in's logic that needs no CUDA. The GPU side is in
tests/gpu/test_runtime_gpu.py."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import trtlab
from trtlab import _compat
from trtlab import engine as engine_mod
from trtlab import env
from trtlab import runtime
from trtlab.errors import ArtifactMissing, EngineMismatch, ExecutionFailed, TrtlabError, UnsupportedFeature
from trtlab.standin import cpu, gpu
from trtlab.standin.cpu import SimDevice, SimEngine

ROOT = Path(__file__).resolve().parent.parent


def x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 8, 8), dtype=np.float32)


@pytest.fixture()
def sim():
    eng = SimEngine(batch=(1, 4, 16))
    return eng, SimDevice(eng.memory)


# ---------------------------------------------------------------- the package's face


def test_public_face_is_lazy_and_never_imported_by_production_code():
    assert trtlab.standin.SimEngine is SimEngine and trtlab.standin.GpuEngine is gpu.GpuEngine
    assert "never TensorRT" in trtlab.standin.__doc__
    code = "import sys, trtlab.standin; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
    production = [p for p in (ROOT / "trtlab").rglob("*.py")
                  if "standin" not in p.parts and p.name not in ("lab03.py", "lab05.py")]  # run learner code on a stand-in
    imports = re.compile(r"^\s*(from|import)\s+trtlab(\.standin|\._trtsim|\s+import\s+.*\bstandin\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in production if imports.search(p.read_text())]
    assert not offenders, f"production modules import a stand-in: {offenders}"


def test_every_engine_standin_announces_itself(sim):
    eng, _ = sim
    assert eng.announcement.startswith("CPU stand-in") and "not TensorRT" in eng.announcement


# ---------------------------------------------------------------- the CPU stand-in keeps TensorRT's contract


def test_standin_announcements_in_chinese_when_asked(sim):
    """The mode announcements follow the language in use when they are read, not when the stand-in was made."""
    from trtlab import i18n
    from trtlab.standin import trtp

    eng, _ = sim
    try:
        i18n.set_language("zh_CN")
        assert eng.announcement.startswith("CPU 替身：这里没有 GPU") and "它不是 TensorRT" in eng.announcement
        assert trtp.announcement.startswith("tensorrt.plugin 替身（trtlab.standin.trtp）") and "插件" in trtp.announcement
        i18n.set_language("en")
        assert eng.announcement.startswith("CPU stand-in") and trtp.announcement.startswith("tensorrt.plugin stand-in")
    finally:
        i18n.set_language(None)


def test_cpu_context_failure_modes(sim):
    eng, dev = sim
    ctx = eng.create_execution_context()
    assert ctx.get_tensor_shape("logits") == (-1, 4)
    assert not ctx.set_input_shape("images", (17, 3, 8, 8)), "outside the profile"
    assert not ctx.execute_async_v3(dev.stream) and "input shapes not set" in ctx.errors[-1]
    assert ctx.set_input_shape("images", (2, 3, 8, 8)) and ctx.get_tensor_shape("logits") == (2, 4)
    assert not ctx.set_tensor_address("nope", 1)
    buf = dev.upload(x(2))
    assert ctx.set_tensor_address("images", dev.ptr(buf))
    assert not ctx.execute_async_v3(dev.stream) and "no address set for ['logits']" in ctx.errors[-1]
    out = dev.empty((2, 4), np.float32)
    assert ctx.set_tensor_address("logits", dev.ptr(out)) and ctx.execute_async_v3(dev.stream)
    np.testing.assert_allclose(out.numpy(), eng.reference(x(2)), rtol=1e-6)


# ---------------------------------------------------------------- the runner and TensorRT's return values


def test_refused_address_is_a_course_error_naming_the_tensor(sim):
    eng, dev = sim
    r = runtime.TensorRTRunner(eng, device=dev)
    accept = r.context.set_tensor_address
    r.context.set_tensor_address = lambda name, ptr: name != "logits" and accept(name, ptr)
    with pytest.raises(ExecutionFailed, match="refused the address of tensor 'logits'.*set_tensor_address returned False"):
        r.infer({"images": x(2)})


def test_failed_execute_is_a_course_error(sim):
    eng, dev = sim
    r = runtime.TensorRTRunner(eng, device=dev)
    r.context.execute_async_v3 = lambda stream: False
    with pytest.raises(ExecutionFailed, match="execute_async_v3 returned False"):
        r.infer({"images": x(2)})


def test_failed_execute_during_capture_is_reported(sim):
    eng, dev = sim
    r = runtime.TensorRTRunner(eng, device=dev, cuda_graph=True)
    real, calls = r.context.execute_async_v3, []

    def second_fails(stream: int) -> bool:
        calls.append(stream)
        return len(calls) == 1 and real(stream)

    r.context.execute_async_v3 = second_fails
    with pytest.raises(ExecutionFailed, match="while a CUDA graph was being captured"):
        r.infer({"images": x(3)})
    assert len(calls) == 2, "one eager run, then the call recorded by the capture"


def test_graphs_captured_per_shape_replayed_on_later_calls(sim):
    eng, dev = sim
    r = runtime.TensorRTRunner(eng, device=dev, cuda_graph=True)
    for i, n in enumerate((3, 5, 3, 5, 3, 3)):
        np.testing.assert_allclose(r.infer({"images": x(n, i)})["logits"], eng.reference(x(n, i)), rtol=1e-6)
    assert dev.captures == 2
    assert r._graphs[(("images", (3, 3, 8, 8)),)].replays == 3
    assert r._graphs[(("images", (5, 3, 8, 8)),)].replays == 1


def test_first_call_enqueue_time_excludes_the_capture(sim):
    eng, _ = sim

    class SlowCapture(SimDevice):
        def capture(self, fn):
            time.sleep(0.3)
            return super().capture(fn)

    r = runtime.TensorRTRunner(eng, device=SlowCapture(eng.memory), cuda_graph=True)
    r.infer({"images": x(2)})
    assert r.last_times.enqueue_ms < 150, r.last_times
    assert len(r._graphs) == 1, "the capture happened, after the timed call"


# ---------------------------------------------------------------- which runtime: by the module, not hasattr


def _engine_made_by(module: str):
    class Engine(SimEngine):
        configs: list = []

        def create_runtime_config(self):
            config = type("RuntimeConfig", (), {"cuda_graph_strategy": None})()
            self.configs.append(config)
            return config

    Engine.__module__ = module
    return Engine(batch=(1, 4, 16))


def test_standard_tensorrt_with_runtime_config_is_not_taken_for_rtx():
    eng = _engine_made_by("tensorrt_bindings.tensorrt")  # TensorRT 10.x+/11.x also has create_runtime_config
    r = runtime.TensorRTRunner(eng, device=SimDevice(eng.memory), cuda_graph=True)
    assert not r.is_rtx and r.cuda_graph and eng.configs == []


def test_rtx_engine_gets_the_runtime_config_and_its_own_graph_capture():
    eng = _engine_made_by("tensorrt_rtx_bindings.tensorrt_rtx")
    r = runtime.TensorRTRunner(eng, device=SimDevice(eng.memory), cuda_graph=True)
    assert r.is_rtx and not r.cuda_graph, "TensorRT-RTX captures the graph itself"
    assert eng.configs[0].cuda_graph_strategy == eng.trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE


def test_loaded_engine_is_judged_by_the_module_that_loaded_it():
    import tensorrt_rtx

    eng = _engine_made_by("somewhere.else")
    meta = engine_mod.EngineMetadata(backend="tensorrt_rtx", backend_version=tensorrt_rtx.__version__,
                                     cuda_version=None, gpu_name=None, compute_capability=None, rtx_targets=["SM86"],
                                     precision="fp16", onnx_sha256="", plan_sha256="", plan_bytes=0, profiles={})
    r = runtime.TensorRTRunner(engine_mod.LoadedEngine(eng, None, meta, tensorrt_rtx), device=SimDevice(eng.memory))
    assert r.is_rtx and r.name == "tensorrt-rtx-fp16" and len(eng.configs) == 1


def test_engine_without_its_module_is_a_clear_error():
    class Bare:
        num_io_tensors = 0

    with pytest.raises(TrtlabError, match="without its TensorRT module.*trt=tensorrt"):
        runtime.TensorRTRunner(Bare(), device=SimDevice())


def test_explicit_trt_keyword_is_used(sim):
    eng, dev = sim
    trt = eng.trt
    eng.trt = None
    r = runtime.TensorRTRunner(eng, device=dev, trt=trt)
    assert r.trt is trt and list(r.inputs()) == ["images"]


# ---------------------------------------------------------------- the GPU stand-in, without CUDA


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from trtlab._toy import toy_classifier_onnx

    onnx = tmp_path_factory.mktemp("standin") / "toy.onnx"
    onnx.write_bytes(toy_classifier_onnx())
    return engine_mod.build(onnx, batch=(1, 4, 16), flavour=env.builder_flavour(has_gpu=False), rtx_targets=["SM86"])


def test_io_and_profile_from_a_real_plans_metadata(built):
    inputs, outputs, profiles = gpu.io_from_metadata(engine_mod.read_metadata(built.path))
    assert inputs == {"images": ((-1, 3, 8, 8), np.dtype(np.float32))}
    assert outputs == {"logits": ((-1, 4), np.dtype(np.float32))}
    assert profiles == {"images": ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))}
    table = gpu._tensor_table(inputs, outputs, profiles)
    assert [(t.name, t.is_input) for t in table] == [("images", True), ("logits", False)]


def test_gpu_engine_without_cuda_says_what_to_do(built, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnsupportedFeature, match="needs PyTorch with CUDA.*SimEngine"):
        gpu.gpu_engine(built.path, torch.nn.Identity())
    with pytest.raises(ArtifactMissing, match="does not exist"):
        gpu.gpu_engine(built.path.with_name("missing.plan"), torch.nn.Identity())


def test_metadata_without_io_is_refused():
    meta = engine_mod.EngineMetadata(backend="tensorrt_rtx", backend_version="1", cuda_version=None, gpu_name=None,
                                     compute_capability=None, rtx_targets=None, precision="fp32", onnx_sha256="",
                                     plan_sha256="", plan_bytes=0, profiles={})
    with pytest.raises(EngineMismatch, match="does not describe its inputs and outputs"):
        gpu.io_from_metadata(meta)


@pytest.mark.parametrize("inputs, outputs, profiles, message", [
    ({"images": ((-1, 3), np.float32)}, {"y": ((-1, 2), np.float32)}, None, "no profile"),
    ({"images": ((-1, 3), np.float32)}, {"y": ((2, -1), np.float32)}, {"images": ((1, 3), (2, 3), (4, 3))},
     "axis 1 is not dynamic"),
    ({"images": ((-1, 3), np.float32)}, {"y": ((-1, 2), np.float32)}, {"images": ((4, 3), (2, 3), (1, 3))},
     "min <= opt <= max"),
    ({"images": ((-1, 3), np.float32)}, {"y": ((-1, 2), np.complex64)}, {"images": ((1, 3), (2, 3), (4, 3))},
     "no TensorRT DataType"),
])
def test_io_description_is_validated(inputs, outputs, profiles, message):
    with pytest.raises(ValueError, match=message):
        gpu._tensor_table(inputs, outputs, profiles)


def test_device_pointer_is_a_cuda_array_interface():
    cai = gpu._DevicePointer(0x7F00, (2, 4), np.dtype(np.float16)).__cuda_array_interface__
    assert cai == {"data": (0x7F00, False), "shape": (2, 4), "typestr": "<f2", "version": 2}


# ---------------------------------------------------------------- the checker says which stand-in it used


def test_freed_buffer_detection_ignores_a_rebound_tensor():
    from trtlab.check.lab03 import _freed_before_execute

    assert _freed_before_execute([("set_tensor_address", ("images", 1)), ("free", 1),
                                  ("execute_async_v3", 5)]) == "images"
    assert _freed_before_execute([("set_tensor_address", ("images", 1)), ("set_tensor_address", ("images", 2)),
                                  ("free", 1), ("execute_async_v3", 5)]) is None


def test_run_engine_checker_names_the_cpu_standin(monkeypatch):
    from types import SimpleNamespace

    from trtlab import env
    from trtlab.check import lab03

    monkeypatch.setattr(env, "capabilities", lambda: SimpleNamespace(torch_cuda=False))

    def answer(trt, engine, context, feeds, device):
        keep = {}
        for name, array in feeds.items():
            context.set_input_shape(name, array.shape)
            keep[name] = device.upload(array)
            context.set_tensor_address(name, device.ptr(keep[name]))
        keep["logits"] = device.empty(context.get_tensor_shape("logits"), np.float32)
        context.set_tensor_address("logits", device.ptr(keep["logits"]))
        assert context.execute_async_v3(device.stream)
        return {"logits": device.download(keep["logits"])}

    result = lab03.run_engine.evaluate(answer)
    assert result and "CPU stand-in" in result.message, result.message
    assert cpu.ANNOUNCEMENT


def test_enums_are_copied_where_no_tensorrt_family_package_imports(monkeypatch):
    from trtlab import _compat, standin

    monkeypatch.setattr(_compat, "tensorrt", lambda: None)
    monkeypatch.setattr(_compat, "tensorrt_rtx", lambda: None)
    enums = standin.trt_enums()
    assert enums.__name__ == "trtlab.standin.copied_enums"
    assert enums.TensorIOMode.OUTPUT.value == 2 and enums.DataType.HALF.value == 1
    assert _compat.numpy_dtype(enums, enums.DataType.INT64) == np.dtype(np.int64)
