"""trtlab.bench: the statistics, sweeps, comparisons and plots (deterministic fake workloads where possible)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from trtlab import bench


def test_percentiles_are_nearest_rank():
    r = bench.BenchResult("x", 1, np.arange(1, 101, dtype=float), wall_s=1.0)
    assert (r.median, r.p90, r.p95, r.p99, r.min) == (50.5, 90.0, 95.0, 99.0, 1.0)
    assert r.qps == 100 and r.items_per_s == 100


def test_cov_warning():
    steady = bench.BenchResult("s", 1, np.full(50, 2.0), wall_s=0.1)
    noisy = bench.BenchResult("n", 1, np.r_[np.full(45, 1.0), np.full(5, 10.0)], wall_s=0.1)
    assert not steady.noisy and "CoV" not in str(steady)
    assert noisy.noisy and "unstable" in str(noisy)


def test_benchmark_meets_minimums():
    r = bench.benchmark(lambda: time.sleep(0.001), name="sleep", warmup_s=0, min_duration_s=0.05, min_iters=30)
    assert r.iterations >= 30 and r.wall_s >= 0.05
    capped = bench.benchmark(lambda: None, name="noop", warmup_s=0, min_duration_s=10, max_iters=500)
    assert capped.iterations == 500  # max_iters bounds a run of a very fast callable


def test_timer_records_gpu_ms():
    r = bench.benchmark(lambda: None, name="t", timer=lambda: 1.5, warmup_s=0, min_duration_s=0, min_iters=5)
    assert r.gpu_median == 1.5 and r.to_row()["GPU median ms"] == 1.5


def test_sleep_ratio_is_measured():
    fast = bench.benchmark(lambda: time.sleep(0.002), name="fast", warmup_s=0, min_duration_s=0, min_iters=10)
    slow = bench.benchmark(lambda: time.sleep(0.02), name="slow", warmup_s=0, min_duration_s=0, min_iters=10)
    assert bench.ratio([fast, slow], "fast", "slow", batch=1) > 2  # 10x in theory; a loaded machine narrows it


class _Fake:
    def __init__(self, name: str, ms_per_item: float) -> None:
        self.name, self.ms = name, ms_per_item

    def sample_feeds(self, b: int) -> dict:
        return {"images": np.zeros((b, 1), np.float32)}

    def warmup(self, feeds: dict, n: int) -> None:
        pass

    def infer(self, feeds: dict) -> dict:
        time.sleep(self.ms * len(feeds["images"]) / 1e3)
        return {}


def test_compare_sweep_and_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    runners = [_Fake("a", 0.2), _Fake("b", 0.6)]
    results = bench.compare(runners, [1, 4], progress=False, warmup_s=0, min_duration_s=0, min_iters=5)
    assert [(r.name, r.batch) for r in results] == [("a", 1), ("b", 1), ("a", 4), ("b", 4)]
    assert bench.ratio(results, "a", "b", batch=4) > 1.3
    table = bench.results_table(results, baseline="b")
    assert "vs b" in table and table.count("\n") == 5
    assert all(line.endswith("| 1.00× |") for line in table.splitlines() if line.startswith("| b |")), table
    bench.plot_latency_vs_batch(results).figure.savefig(tmp_path / "lat.png")
    bench.plot_throughput(results).figure.savefig(tmp_path / "thr.png")
    swept = bench.sweep(lambda b: (lambda: None), [1, 2], name="noop", warmup_s=0, min_duration_s=0, min_iters=3)
    assert [r.batch for r in swept] == [1, 2]
    with pytest.raises(KeyError, match="no result"):
        bench.ratio(results, "a", "zzz", batch=1)


def test_stage_breakdown_on_simulated_engine():
    from trtlab import runtime
    from trtlab.standin.cpu import SimDevice, SimEngine

    eng = SimEngine()
    r = runtime.TensorRTRunner(eng, device=SimDevice(eng.memory))
    stages = bench.stage_breakdown(r, {"images": np.zeros((2, 3, 8, 8), np.float32)}, n=5)
    assert set(stages) == {"h2d_ms", "enqueue_ms", "compute_ms", "d2h_ms", "latency_ms"}
    with pytest.raises(ValueError, match="does not record stage times"):
        bench.stage_breakdown(_Fake("x", 0), {"images": np.zeros((1, 1), np.float32)}, n=1)


# ---------------------------------------------------------------- torch.compile peer (its timing runs in tests/gpu)


def test_compare_outputs_accepts_fp16_rounding():
    ref = np.random.default_rng(0).normal(size=(16, 10)).astype(np.float32)
    rel, agreement = bench.compare_outputs(ref, ref.astype(np.float16).astype(np.float32))
    assert 0 < rel < 1e-3 and agreement == 1.0


@pytest.mark.parametrize("candidate, message", [
    (lambda ref: ref + 0.1 * np.abs(ref).max(), "differ from eager PyTorch by 0.1 .*fp16 rounding"),
    (lambda ref: ref[:, :5], r"output shape \(16, 5\), expected \(16, 10\)"),
    (lambda ref: np.full_like(ref, np.nan), "differ from eager PyTorch by nan"),
])
def test_compare_outputs_rejects_another_function(candidate, message):
    from trtlab.errors import BuildError

    ref = np.random.default_rng(0).normal(size=(16, 10)).astype(np.float32)
    with pytest.raises(BuildError, match=message):
        bench.compare_outputs(ref, candidate(ref), name="compiled")


def test_torch_peers_refuses_without_a_gpu(monkeypatch):
    import torch

    from trtlab.errors import UnsupportedFeature

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnsupportedFeature, match="times PyTorch on a GPU"):
        bench.torch_peers(torch.nn.Linear(4, 2), (4,), batches=(2,))


def test_peer_table_reports_compile_time_and_ratios_to_eager_fp32():
    def result(name, ms):
        return bench.BenchResult(name, 8, np.full(10, ms), wall_s=ms * 10 / 1e3)

    run = bench.PeerRun(8, [result("eager-fp32", 4.0), result("eager-fp16", 2.0), result("cudagraph-fp16", 1.6),
                            result("compile-fp16-cl", 1.0)], compile_s=123.4, rel_error=1e-3, agreement=1.0)
    peers = bench.PeerComparison([run], "a GPU", "2.x", "max-autotune")
    text = str(peers)
    assert "123.4 s to compile" in text and "mode='max-autotune'" in text
    assert "| compile-fp16-cl | 8 | 1.000 |" in text and text.count("| 4.00× |") == 1, text
    assert peers.ratio("compile-fp16-cl", batch=8) == pytest.approx(4.0)
