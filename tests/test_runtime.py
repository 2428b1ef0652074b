"""trtlab.runtime: the TensorRT runner's logic on the CPU simulation (no GPU here), and the CPU runners."""

from __future__ import annotations

import numpy as np
import pytest

from trtlab import runtime
from trtlab._toy import toy_classifier_onnx
from trtlab.standin.cpu import SimDevice, SimEngine
from trtlab.errors import InputMismatch, UnsupportedFeature


@pytest.fixture()
def sim():
    eng = SimEngine(batch=(1, 4, 16))
    dev = SimDevice(eng.memory)
    return eng, dev, runtime.TensorRTRunner(eng, device=dev, name="sim")


def x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 3, 8, 8), dtype=np.float32)


def test_io_discovered_by_name(sim):
    _, _, r = sim
    assert list(r.inputs()) == ["images"] and r.inputs()["images"].shape == (None, 3, 8, 8)
    assert list(r.outputs()) == ["logits"] and r.outputs()["logits"].dtype == np.float32
    assert r.profiles["images"] == ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))


def test_infer_matches_reference_across_batch_sizes(sim):
    eng, _, r = sim
    for n in (1, 5, 16, 5):
        out = r.infer({"images": x(n, n)})["logits"]
        np.testing.assert_allclose(out, eng.reference(x(n, n)), rtol=1e-6)
    calls = [c for c, _ in r.context.calls]
    assert calls.count("set_input_shape") == 4, "shapes are re-bound only when they change"
    assert all(arg != 0 for c, arg in r.context.calls if c == "execute_async_v3"), "never the default stream"


def test_stage_times_recorded(sim):
    _, _, r = sim
    r.infer({"images": x(2)})
    t = r.last_times
    assert t is not None and min(t.h2d_ms, t.compute_ms, t.d2h_ms, t.enqueue_ms) >= 0
    assert t.latency_ms == pytest.approx(t.h2d_ms + t.compute_ms + t.d2h_ms)


def test_shape_outside_profile_is_explained(sim):
    _, _, r = sim
    with pytest.raises(InputMismatch, match=r"outside the engine's optimization profile .*batch=\(1, 8, 17\)"):
        r.infer({"images": x(17)})


def test_wrong_dtype_and_name(sim):
    _, _, r = sim
    with pytest.raises(InputMismatch, match="expected float32"):
        r.infer({"images": x(2).astype(np.float64)})
    with pytest.raises(InputMismatch, match="missing"):
        r.infer({"input": x(2)})
    with pytest.raises(InputMismatch, match="got shape"):
        r.infer({"images": np.zeros((2, 3, 9, 9), np.float32)})


def test_cuda_graph_captured_once_per_shape_and_replayed(sim):
    eng, _, _ = sim
    dev = SimDevice(eng.memory)
    r = runtime.TensorRTRunner(eng, device=dev, cuda_graph=True)
    for seed in range(4):
        np.testing.assert_allclose(r.infer({"images": x(3, seed)})["logits"], eng.reference(x(3, seed)), rtol=1e-6)
    r.infer({"images": x(2)})
    assert dev.captures == 2
    graph = r._graphs[(("images", (3, 3, 8, 8)),)]
    assert graph.replays == 3, "first run is outside the capture (one-time init), the next three replay"


def test_gpu_timer_feeds_bench(sim):
    from trtlab.bench import benchmark

    _, _, r = sim
    res = benchmark(lambda: None, name="sim", timer=r.gpu_timer({"images": x(4)}), warmup_s=0, min_duration_s=0,
                    min_iters=5)
    assert res.gpu_ms is not None and len(res.gpu_ms) >= 5


def test_context_manager_closes(sim):
    eng, dev, _ = sim
    with runtime.TensorRTRunner(eng, device=dev) as r:
        r.infer({"images": x(1)})
    assert r.context is None


def test_no_gpu_means_clear_error(monkeypatch):
    from types import SimpleNamespace

    from trtlab import env

    monkeypatch.setattr(env, "capabilities", lambda: SimpleNamespace(torch_cuda=False, cupy_runs_kernels=False))
    with pytest.raises(UnsupportedFeature, match="needs device memory"):
        runtime.default_device()


def test_onnxruntime_runner_on_toy():
    r = runtime.OnnxRuntimeRunner(toy_classifier_onnx())
    out = r.infer({"images": x(3)})["logits"]
    assert out.shape == (3, 4)
    with pytest.raises(InputMismatch):
        r.infer({"images": x(3).astype(np.float16)})


# ---------------------------------------------------------------- one way to open ONNX Runtime sessions

_TINY_VIT = '''
import sys, numpy as np, torch, torch.nn as nn
import trtlab as tl

class ViT(nn.Module):  # the smallest vision transformer that still crashes ONNX Runtime 1.31 in fp16
    def __init__(self, d=64, p=16, img=32):
        super().__init__()
        self.patch = nn.Conv2d(3, d, p, p)
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.pos = nn.Parameter(torch.randn(1, (img // p) ** 2 + 1, d) * 0.02)
        layer = nn.TransformerEncoderLayer(d, 2, 4 * d, activation="gelu", batch_first=True, norm_first=True)
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d, 10)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.enc(x)[:, 0])

torch.manual_seed(0)
model = ViT().eval()
path = tl.export.export_onnx(model, sys.argv[1] + "/vit.onnx", input_size=32)
x = np.random.default_rng(0).random((8, 3, 32, 32), dtype=np.float32)
fp16 = tl.precision.autocast_fp16(path, calibration_data=x)
print(tl.runtime.OnnxRuntimeRunner(fp16).infer({"images": x})["logits"].shape)
print(tl.export.parity(model, fp16, x))
print(tl.precision.accuracy_table({"fp32": path, "fp16": fp16}, x, np.zeros(8, np.int64)))
'''


@pytest.mark.slow
def test_fp16_vit_does_not_crash_onnxruntime(tmp_path):
    """ONNX Runtime 1.31's NchwcTransformer segfaults on an fp16 ViT; every course session turns it off for fp16.
    The raw session is run too: when a fixed ONNX Runtime is pinned it stops crashing, and this test says so."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _TINY_VIT, str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-3000:]}"
    assert "(8, 10)" in done.stdout and "Parity(PASS" in done.stdout, done.stdout
    raw = ("import numpy as np, onnxruntime as ort, sys; s = ort.InferenceSession(sys.argv[1], "
           "providers=['CPUExecutionProvider']); s.run(None, {'images': np.zeros((2, 3, 32, 32), np.float32)})")
    crash = subprocess.run([sys.executable, "-c", raw, str(tmp_path / "vit.fp16.onnx")], capture_output=True)
    assert crash.returncode == -11, ("ONNX Runtime no longer crashes on the fp16 ViT: the NchwcTransformer "
                                     "workaround in trtlab.runtime.ort_session can go (keep this test's first part)")


def test_only_ort_session_opens_sessions():
    """One function opens ONNX Runtime sessions, so no call site can forget the optimizers the course turns off."""
    from pathlib import Path

    package = Path(runtime.__file__).parent
    callers = [str(p.relative_to(package)) for p in package.rglob("*.py")
               if "InferenceSession(" in p.read_text() and p.name != "_ort.py"]
    assert callers == [], f"open sessions with trtlab.runtime.ort_session, not onnxruntime.InferenceSession: {callers}"


def test_ort_session_turns_off_what_the_model_needs(monkeypatch):
    import onnxruntime as ort

    seen = []
    real = ort.InferenceSession

    def spy(*args, **kwargs):
        seen.append(kwargs.get("disabled_optimizers"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", spy)
    runtime.OnnxRuntimeRunner(toy_classifier_onnx())
    assert seen[-1] == ["WeightBiasQuantization"], "fp32 models keep NchwcTransformer (a 5x CPU speed-up)"
    import onnx
    from onnx import TensorProto, helper

    fp16 = helper.make_model(helper.make_graph(
        [helper.make_node("Cast", ["x"], ["h"], to=TensorProto.FLOAT16), helper.make_node("Cast", ["h"], ["y"], to=1)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])]), opset_imports=[helper.make_opsetid("", 18)])
    runtime.ort_session(onnx.load_from_string(fp16.SerializeToString()), disabled_optimizers=["ConstantFolding"])
    assert seen[-1] == ["WeightBiasQuantization", "NchwcTransformer", "ConstantFolding"]


def test_torch_runner_reads_its_input_from_the_model():
    import torch.nn as nn

    r = runtime.TorchRunner(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()), device="cpu")
    assert r.inputs()["images"].shape == (None, 1, None, None)
    assert r.infer({"images": np.zeros((2, 1, 5, 5), np.float32)})["logits"].shape == (2, 18)
    with pytest.raises(InputMismatch, match="sizes only the data can fix"):
        r.sample_feeds(2)
    with pytest.raises(InputMismatch, match="no conv or linear layer"):
        runtime.TorchRunner(nn.ReLU(), device="cpu")


def test_predict_batches_and_concatenates_every_output():
    """Runner.predict feeds slices of batch_size (the last one shorter) and joins each output in order."""
    sizes = []

    class Echo(runtime.Runner):
        name = "echo"

        def inputs(self):
            return {"images": runtime.TensorSpec("images", (None, 2), np.dtype(np.float32))}

        def outputs(self):
            return {"same": runtime.TensorSpec("same", (None, 2), np.dtype(np.float32)),
                    "sum": runtime.TensorSpec("sum", (None,), np.dtype(np.float32))}

        def _infer(self, feeds):
            sizes.append(len(feeds["images"]))
            return {"same": feeds["images"], "sum": feeds["images"].sum(1)}

    x = np.arange(14, dtype=np.float32).reshape(7, 2)
    out = Echo().predict(x, batch_size=3)
    assert sizes == [3, 3, 1]
    np.testing.assert_array_equal(out["same"], x)
    np.testing.assert_array_equal(out["sum"], x.sum(1))
    with pytest.raises(InputMismatch, match="batch_size=0"):
        Echo().predict(x, batch_size=0)
    with pytest.raises(InputMismatch, match="empty x"):
        Echo().predict(x[:0])


def test_every_runner_takes_a_name(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    assert runtime.TorchRunner(model, device="cpu", name="eager").name == "eager"
    assert runtime.TorchRunner(model, device="cpu").name == "pytorch-cpu"
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 8, 8), str(path), input_names=["images"], output_names=["logits"],
                      dynamo=False)
    assert runtime.OnnxRuntimeRunner(path, name="ort").name == "ort"
    assert runtime.OnnxRuntimeRunner(path).name == "onnxruntime-cpu"
    assert runtime.TensorRTRunner(SimEngine(), device=SimDevice(), name="trt").name == "trt"


def test_input_mismatches_speak_chinese_when_asked_and_keep_names_and_numbers(sim):
    from trtlab import i18n

    _, _, r = sim
    try:
        i18n.set_language("zh_CN")
        with pytest.raises(InputMismatch) as err:
            r.infer({"images": np.zeros((2, 3, 9, 9), np.float32)})
        assert str(err.value) == "sim: 输入 'images'：收到形状 (2, 3, 9, 9)，应为 'images' (N, 3, 8, 8) float32"
        with pytest.raises(InputMismatch) as err:
            r.infer({"images": x(17)})
        assert "超出了引擎的优化配置文件（min (1, 3, 8, 8)，max (16, 3, 8, 8)）" in str(err.value)
        assert "tl.engine.build(onnx, batch=(1, 8, 17))" in str(err.value)
        with pytest.raises(InputMismatch, match=r"^sim：收到的输入为 \['input'\]，应为 \['images'\]；缺少 \['images'\]；"
                                                r"未知 \['input'\]$"):
            r.infer({"input": x(2)})
        with pytest.raises(InputMismatch, match=r"dtype 为 float64，应为 float32（用 \.astype\(np\.float32\) 转换）"):
            r.infer({"images": x(2).astype(np.float64)})
        i18n.set_language("en")
        with pytest.raises(InputMismatch) as err:
            r.infer({"images": np.zeros((2, 3, 9, 9), np.float32)})
        assert str(err.value) == "sim: input 'images': got shape (2, 3, 9, 9), expected 'images' (N, 3, 8, 8) float32"
    finally:
        i18n.set_language(None)
