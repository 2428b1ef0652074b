"""trtexec-style measurements for anything callable: warm up by time, run for a minimum duration, report the
median and tail percentiles, warn when the run was too noisy to trust, and compare backends by ratios measured
in the same run.

    result = tl.bench.benchmark(lambda: runner.infer(feeds), name=runner.name, batch=32)
    print(result)            # median, p90/p95/p99, throughput, CoV warning

``timer`` adds device-side timing: a callable that runs the work once and returns its GPU milliseconds (CUDA
events: :func:`trtlab.device.cuda_timer`), as trtexec's "GPU Compute Time" next to the host wall-clock latency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["BenchResult", "PeerComparison", "PeerRun", "benchmark", "compare", "compare_outputs",
           "plot_latency_vs_batch", "plot_throughput", "ratio", "results_table", "stage_breakdown", "sweep",
           "torch_peers"]

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
    """A Markdown table of results; the last column is each row's throughput (items/s) over ``baseline``'s at the
    same batch size (default baseline: the first result's name). Ratios only compare rows of one run."""
    if not results:
        return "(no results)"
    base_name = baseline or results[0].name
    bases = {r.batch: r for r in results if r.name == base_name}
    lines = ["| backend | batch | median ms | p99 ms | items/s | CoV | vs " + base_name + " |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        base = bases.get(r.batch)
        ratio = f"{r.items_per_s / base.items_per_s:.2f}×" if base else "–"
        lines.append(f"| {r.name} | {r.batch} | {r.median:.3f} | {r.p99:.3f} | {r.items_per_s:,.0f} | {r.cov:.0%} "
                     f"| {ratio} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- sweeps, comparisons, plots (Lab 03)


def sweep(make: Callable[[int], Callable[[], Any]], batches: Sequence[int], *, name: str,
          progress: bool = False, **kwargs: Any) -> list[BenchResult]:
    """Benchmark ``make(batch)`` for each batch size (``make`` returns the zero-argument callable to time)."""
    items: Any = batches
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(batches, desc=name, leave=False)
    return [benchmark(make(b), name=name, batch=b, **kwargs) for b in items]


def compare(runners: Sequence[Any], batches: Sequence[int], *, make_feeds: Callable[[Any, int], dict] | None = None,
            progress: bool = True, **kwargs: Any) -> list[BenchResult]:
    """Every runner at every batch size, interleaved (runner order alternates per batch) so a load change on a
    shared machine hits all backends alike. Each runner is warmed up first (``Runner.warmup``)."""
    from tqdm.auto import tqdm

    make_feeds = make_feeds or (lambda runner, b: runner.sample_feeds(b))
    results = []
    jobs = [(b, r) for i, b in enumerate(batches) for r in (runners if i % 2 == 0 else list(reversed(runners)))]
    for b, runner in tqdm(jobs, desc="benchmark", disable=not progress):
        feeds = make_feeds(runner, b)
        runner.warmup(feeds, n=3)
        results.append(benchmark(lambda: runner.infer(feeds), name=runner.name, batch=b, **kwargs))
    order = {r.name: i for i, r in enumerate(runners)}
    return sorted(results, key=lambda r: (r.batch, order.get(r.name, 0)))


def ratio(results: Sequence[BenchResult], name: str, baseline: str, *, batch: int) -> float:
    """Throughput of ``name`` over ``baseline`` at ``batch`` (> 1: ``name`` is faster), from one run."""
    pick = {(r.name, r.batch): r for r in results}
    try:
        return pick[(name, batch)].items_per_s / pick[(baseline, batch)].items_per_s
    except KeyError as err:
        raise KeyError(f"no result {err.args[0]}; have {sorted(pick)}") from err


def plot_latency_vs_batch(results: Sequence[BenchResult], ax: Any = None) -> Any:
    """Median latency (with p99 whiskers) against batch size, one line per backend."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    for name in dict.fromkeys(r.name for r in results):
        rs = sorted((r for r in results if r.name == name), key=lambda r: r.batch)
        med = np.array([r.median for r in rs])
        ax.errorbar([r.batch for r in rs], med, yerr=[np.zeros_like(med), np.array([r.p99 for r in rs]) - med],
                    marker="o", capsize=3, label=name)
    ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="latency per call, ms (median, p99 bar)",
           title="Latency vs batch")
    ax.legend()
    return ax


def plot_throughput(results: Sequence[BenchResult], ax: Any = None) -> Any:
    """Images/s per backend, grouped by batch size."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(6, 4))[1]
    names = list(dict.fromkeys(r.name for r in results))
    batches = sorted({r.batch for r in results})
    width = 0.8 / max(len(names), 1)
    for i, name in enumerate(names):
        values = [next((r.items_per_s for r in results if r.name == name and r.batch == b), 0.0) for b in batches]
        ax.bar(np.arange(len(batches)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(batches)) + width * (len(names) - 1) / 2, [f"batch {b}" for b in batches])
    ax.set(ylabel="images / s", title="Throughput")
    ax.legend()
    return ax


def stage_breakdown(runner: Any, feeds: dict, *, n: int = 50) -> dict[str, float]:
    """trtexec's split of one inference, median over ``n`` runs (ms): H2D copy, enqueue (host), GPU compute, D2H
    copy, and latency = H2D + compute + D2H. Needs a runner that records ``last_times`` (TensorRTRunner)."""
    runner.infer(feeds)
    if getattr(runner, "last_times", None) is None:
        raise ValueError(f"{getattr(runner, 'name', runner)} does not record stage times; only TensorRTRunner (with "
                         "a device that has CUDA events) does")
    stages: dict[str, list[float]] = {"h2d_ms": [], "enqueue_ms": [], "compute_ms": [], "d2h_ms": [], "latency_ms": []}
    for _ in range(n):
        runner.infer(feeds)
        t = runner.last_times
        for key in stages:
            stages[key].append(getattr(t, key))
    return {key: float(np.median(v)) for key, v in stages.items()}


# ---------------------------------------------------------------- the peer without TensorRT: torch.compile (Lab 03)

#: Two correct fp16 runs of one model differ by rounding (other kernels, other summation order); a larger difference,
#: relative to the largest reference output, means the compiled model computes something else.
FP16_REL_TOL = 2e-2


def compare_outputs(reference: Any, candidate: Any, *, rel_tol: float = FP16_REL_TOL,
                    name: str = "candidate") -> tuple[float, float]:
    """``(max |candidate − reference| / max |reference|, argmax agreement)`` of two (batch, classes) outputs; raises
    :class:`~trtlab.errors.BuildError` when the relative error is above ``rel_tol`` or the shapes differ."""
    from trtlab.errors import BuildError

    ref, got = np.asarray(reference, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if ref.shape != got.shape:
        raise BuildError(f"{name}: output shape {got.shape}, expected {ref.shape} (the reference's) | the compiled "
                         "model must compute the same function; compare with the same input")
    scale = float(np.max(np.abs(ref))) or 1.0
    rel = float(np.max(np.abs(got - ref))) / scale
    agreement = float(np.mean(got.reshape(len(got), -1).argmax(1) == ref.reshape(len(ref), -1).argmax(1)))
    if not rel <= rel_tol:
        raise BuildError(f"{name}: outputs differ from eager PyTorch by {rel:.3g} of the largest output, more than "
                         f"fp16 rounding ({rel_tol:g}); argmax agreement {agreement:.1%} | do not trust its timings; "
                         "report the torch version and the model")
    return rel, agreement


@dataclass
class PeerRun:
    """The GPU peers of a TensorRT engine at one batch size, timed in one harness: eager fp32 and fp16, CUDA-graph
    replay fp16, and ``torch.compile`` fp16 channels-last (``compile_s``: its first call — tracing, code generation
    and autotuning — which the timings exclude)."""

    batch: int
    results: list[BenchResult]
    compile_s: float
    rel_error: float
    agreement: float


@dataclass
class PeerComparison:
    """:func:`torch_peers`' measurements on one GPU."""

    runs: list[PeerRun]
    gpu: str
    torch_version: str
    compile_mode: str

    @property
    def results(self) -> list[BenchResult]:
        return [r for run in self.runs for r in run.results]

    def ratio(self, name: str, baseline: str = "eager-fp32", *, batch: int) -> float:
        return ratio(self.results, name, baseline, batch=batch)

    def table(self) -> str:
        """One Markdown table per batch size (ratios against eager fp32 of the same run), compile time below."""
        parts = []
        for run in self.runs:
            parts.append(results_table(run.results, baseline="eager-fp32"))
            parts.append(f"\ntorch.compile (mode={self.compile_mode!r}), batch {run.batch}: {run.compile_s:.1f} s to "
                         f"compile and autotune before the first result; outputs vs eager fp16: max relative "
                         f"difference {run.rel_error:.2e}, argmax agreement {run.agreement:.1%}\n")
        return "\n".join(parts)

    def __str__(self) -> str:
        return f"{self.gpu}, torch {self.torch_version}\n" + self.table()


def _graph_replay(model: Any, x: Any) -> tuple[Callable[[], Any], Any]:
    """Capture one forward pass into a CUDA graph (warm-up on the capture stream first: cuDNN picks its algorithms
    there); returns the replay function and the graph's static output."""
    import torch

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model(x)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        out = model(x)
    return graph.replay, out


def torch_peers(model: Any, input_shape: Sequence[int], batches: Sequence[int] = (256,), *,
                compile_mode: str = "max-autotune", warmup_s: float = 0.3, min_duration_s: float = 1.0,
                min_iters: int = 20, progress: bool = True) -> PeerComparison:
    """What a GPU learner without TensorRT would use instead, timed like everything else in this module (host
    latency and CUDA-event GPU time, median of a timed run after a warm-up): ``model`` (a copy; yours is not
    changed) in eager fp32 and fp16, CUDA-graph replay of the fp16 model, and ``torch.compile(mode=compile_mode)``
    of the fp16 model in channels-last. The compile time is reported separately, and the compiled outputs must
    match eager fp16 within fp16 rounding (:func:`compare_outputs`) before anything is timed.
    ``input_shape`` excludes the batch, e.g. ``(3, 224, 224)``."""
    import copy

    import torch
    from tqdm.auto import tqdm

    from trtlab.device import cuda_timer
    from trtlab.errors import UnsupportedFeature

    if not torch.cuda.is_available():
        raise UnsupportedFeature("torch_peers times PyTorch on a GPU, and this torch sees none | run it on a GPU "
                                 "machine (PyTorch with CUDA)")
    torch.backends.cudnn.benchmark = True
    fp32 = copy.deepcopy(model).eval().float().cuda()
    fp16 = copy.deepcopy(fp32).half()
    fp16_cl = copy.deepcopy(fp16).to(memory_format=torch.channels_last)
    generator = torch.Generator(device="cuda").manual_seed(0)
    runs = []
    bar = tqdm(total=4 * len(batches), desc="eager, CUDA graph, torch.compile", disable=not progress)
    for b in batches:
        x32 = torch.rand((b, *input_shape), generator=generator, device="cuda")
        x16 = x32.half()
        x16_cl = x16.contiguous(memory_format=torch.channels_last)
        results: list[BenchResult] = []

        def timed(fn: Callable[[], Any], name: str, b: int = b, results: list = results) -> None:
            timer = cuda_timer(fn, stream=torch.cuda.current_stream())
            results.append(benchmark(fn, name=name, batch=b, timer=timer, warmup_s=warmup_s,
                                     min_duration_s=min_duration_s, min_iters=min_iters))
            bar.update()

        with torch.no_grad():
            timed(lambda: fp32(x32), "eager-fp32")
            timed(lambda: fp16(x16), "eager-fp16")
            reference = fp16(x16).float().cpu().numpy()
            replay, static_out = _graph_replay(fp16, x16)
            replay()
            compare_outputs(reference, static_out.float().cpu().numpy(), name="CUDA-graph replay")
            timed(replay, "cudagraph-fp16")
            compiled = torch.compile(fp16_cl, mode=compile_mode, dynamic=False)
            bar.set_postfix_str(f"compiling for batch {b} (minutes with max-autotune)")
            torch.cuda.synchronize()
            start = time.perf_counter()
            first = compiled(x16_cl)
            torch.cuda.synchronize()
            compile_s = time.perf_counter() - start
            rel, agreement = compare_outputs(reference, first.float().cpu().numpy(),
                                             name=f"torch.compile(mode={compile_mode!r})")
            timed(lambda: compiled(x16_cl), "compile-fp16-cl")
        runs.append(PeerRun(b, results, compile_s, rel, agreement))
    bar.close()
    return PeerComparison(runs, torch.cuda.get_device_name(0), torch.__version__, compile_mode)
