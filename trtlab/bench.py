"""trtexec-style measurements for anything callable: warm up by time, run for a minimum duration, report the
median and tail percentiles, warn when the run was too noisy to trust, and compare backends by ratios measured
in the same run.

    result = tl.bench.benchmark(lambda: runner.infer(feeds), name=runner.name, batch=32)
    print(result)            # median, p90/p95/p99, throughput, CoV warning

``timer`` adds device-side timing: a callable that runs the work once and returns its GPU milliseconds (CUDA
events), as trtexec's "GPU Compute Time" next to the host wall-clock latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["BenchResult", "benchmark", "results_table"]

#: trtexec warns above this coefficient of variation of the timings.
COV_WARNING = 0.025


def _percentile(values: np.ndarray, q: float) -> float:
    """Nearest-rank percentile over sorted timings, as trtexec reports them."""
    ordered = np.sort(values)
    rank = max(int(np.ceil(q / 100 * len(ordered))) - 1, 0)
    return float(ordered[rank])


@dataclass
class BenchResult:
    """Timings of one benchmarked callable (milliseconds per call; ``batch`` items per call)."""

    name: str
    batch: int
    latencies_ms: np.ndarray
    wall_s: float
    gpu_ms: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.latencies_ms)

    @property
    def median(self) -> float:
        return float(np.median(self.latencies_ms))

    @property
    def mean(self) -> float:
        return float(np.mean(self.latencies_ms))

    @property
    def min(self) -> float:
        return float(np.min(self.latencies_ms))

    @property
    def p90(self) -> float:
        return _percentile(self.latencies_ms, 90)

    @property
    def p95(self) -> float:
        return _percentile(self.latencies_ms, 95)

    @property
    def p99(self) -> float:
        return _percentile(self.latencies_ms, 99)

    @property
    def cov(self) -> float:
        """Coefficient of variation of the timed quantity (GPU time when measured, else host latency)."""
        values = self.gpu_ms if self.gpu_ms is not None else self.latencies_ms
        return float(np.std(values) / np.mean(values)) if np.mean(values) > 0 else 0.0

    @property
    def gpu_median(self) -> float | None:
        return float(np.median(self.gpu_ms)) if self.gpu_ms is not None else None

    @property
    def qps(self) -> float:
        """Calls per second over the whole timed run (trtexec: queries / total host walltime)."""
        return self.iterations / self.wall_s

    @property
    def items_per_s(self) -> float:
        return self.qps * self.batch

    @property
    def noisy(self) -> bool:
        return self.cov > COV_WARNING

    def to_row(self) -> dict[str, Any]:
        row = {"name": self.name, "batch": self.batch, "iters": self.iterations, "median ms": self.median,
               "p90 ms": self.p90, "p95 ms": self.p95, "p99 ms": self.p99, "min ms": self.min,
               "items/s": self.items_per_s, "CoV": self.cov}
        if self.gpu_ms is not None:
            row["GPU median ms"] = self.gpu_median
        return row

    def __str__(self) -> str:
        gpu = f", GPU compute median {self.gpu_median:.3f} ms" if self.gpu_ms is not None else ""
        text = (f"{self.name} (batch {self.batch}, {self.iterations} runs): median {self.median:.3f} ms, "
                f"p90 {self.p90:.3f}, p99 {self.p99:.3f}, min {self.min:.3f}{gpu}; "
                f"{self.items_per_s:,.0f} items/s")
        warnings = list(self.notes)
        if self.noisy:
            warnings.append(f"CoV {self.cov:.1%} > {COV_WARNING:.1%}: timings are unstable (busy machine?); "
                            "compare ratios from one run, or repeat")
        return text + "".join(f"\n  ⚠️ {w}" for w in warnings)


def benchmark(fn: Callable[[], Any], *, name: str, batch: int = 1, warmup_s: float = 0.2,
              min_duration_s: float = 1.0, min_iters: int = 20, max_iters: int = 100_000,
              timer: Callable[[], float] | None = None) -> BenchResult:
    """Time ``fn`` like trtexec: warm up for ``warmup_s``, then run until both ``min_duration_s`` and
    ``min_iters`` are reached. With ``timer`` (runs the work once, returns GPU ms), the work is run through
    ``timer`` and both host latency and GPU time are recorded."""
    call = timer if timer is not None else fn
    deadline = time.perf_counter() + warmup_s
    call()
    while time.perf_counter() < deadline:
        call()
    host: list[float] = []
    gpu: list[float] = []
    start = time.perf_counter()
    while (len(host) < min_iters or time.perf_counter() - start < min_duration_s) and len(host) < max_iters:
        t0 = time.perf_counter()
        value = call()
        host.append((time.perf_counter() - t0) * 1e3)
        if timer is not None:
            gpu.append(float(value))
    wall = time.perf_counter() - start
    return BenchResult(name=name, batch=batch, latencies_ms=np.array(host), wall_s=wall,
                       gpu_ms=np.array(gpu) if timer is not None else None)


def results_table(results: Sequence[BenchResult], *, baseline: str | None = None) -> str:
    """A Markdown table of results; the last column is each row's throughput (items/s) over ``baseline``'s
    (default: the first result)."""
    if not results:
        return "(no results)"
    base = next((r for r in results if r.name == baseline), results[0])
    lines = ["| backend | batch | median ms | p99 ms | items/s | vs " + base.name + " |",
             "|---|---|---|---|---|---|"]
    for r in results:
        ratio = r.items_per_s / base.items_per_s
        lines.append(f"| {r.name} | {r.batch} | {r.median:.3f} | {r.p99:.3f} | {r.items_per_s:,.0f} | {ratio:.2f}× |")
    return "\n".join(lines)
