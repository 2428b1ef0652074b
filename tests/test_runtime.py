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
