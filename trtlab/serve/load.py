"""Load on a Triton server and what it shows: closed-loop load tests, Prometheus metrics, batch sizes, plots (Lab 06).

:func:`load_test` works like perf_analyzer (N concurrent clients, each sending its next request when the previous
answer arrives): throughput, p50/p99, the average batch from the metrics endpoint and the server's CPU time per
inference. :func:`plot_sweep` and :func:`results_table` show a sweep.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from trtlab.serve.clients import _address, _ask_config, _inputs, _local_config, _module, _outputs, _translate, client
from trtlab.serve.feeds import check_feeds
from trtlab.i18n import _
from trtlab.serve.server import TritonServer, _reason

__all__ = ["LoadResult", "average_batch_size", "batch_size_counts", "load_test", "parse_metrics", "plot_sweep",
           "results_table"]


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text → ``{(metric, model): value}`` summed over versions (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # the parser names counter samples "<family>_total"; Triton's counters have no suffix
            name = family.name if sample.name == f"{family.name}_total" else sample.name
            key = (name, sample.labels.get("model", ""))
            values[key] = values.get(key, 0.0) + float(sample.value)
    return values


def average_batch_size(before: str, after: str, model: str) -> float:
    """Requests per execution between two metric snapshots: ``Δnv_inference_count / Δnv_inference_exec_count``."""
    b, a = parse_metrics(before), parse_metrics(after)
    count = a.get(("nv_inference_count", model), 0.0) - b.get(("nv_inference_count", model), 0.0)
    execs = a.get(("nv_inference_exec_count", model), 0.0) - b.get(("nv_inference_exec_count", model), 0.0)
    return count / execs if execs else float("nan")


def batch_size_counts(server: TritonServer, model: str) -> dict[int, int]:
    """Executions per batch size from the model's statistics (``/v2/models/<m>/stats``)."""
    stats = server.statistics(model)["model_stats"]
    counts: dict[int, int] = {}
    for version in stats:
        for entry in version.get("batch_stats", []):
            counts[int(entry["batch_size"])] = counts.get(int(entry["batch_size"]), 0) + int(
                entry["compute_infer"]["count"])
    return dict(sorted(counts.items()))


@dataclass
class LoadResult:
    """One load-test point. Truthy when no request failed."""

    label: str
    model: str
    protocol: str
    concurrency: int
    requests: int
    failures: int
    duration_s: float
    latencies_ms: np.ndarray = field(repr=False)
    avg_batch: float = float("nan")
    errors: list[str] = field(default_factory=list, repr=False)
    server_cpu_s: float = float("nan")
    note: str = ""  # what went wrong with the run itself (the server died during it)

    def __bool__(self) -> bool:
        return self.failures == 0

    @property
    def throughput(self) -> float:
        """Successful inferences per second (each request is one image here)."""
        return (self.requests - self.failures) / self.duration_s if self.duration_s else 0.0

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if len(self.latencies_ms) else float("nan")

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if len(self.latencies_ms) else float("nan")

    @property
    def server_cpu_ms(self) -> float:
        """Server CPU time (server + stubs) per successful inference, in ms."""
        done = self.requests - self.failures
        return 1e3 * self.server_cpu_s / done if done else float("nan")

    def to_row(self) -> dict[str, Any]:
        return {"config": self.label, "concurrency": self.concurrency, "requests": self.requests,
                "failures": self.failures, "infer/s": round(self.throughput, 1), "p50 ms": round(self.p50_ms, 2),
                "p99 ms": round(self.p99_ms, 2), "avg batch": round(self.avg_batch, 2),
                "server CPU ms/inf": round(self.server_cpu_ms, 3)}

    def __str__(self) -> str:
        return (f"{self.label:<22} c={self.concurrency:<3} {self.throughput:8.1f} infer/s  p50 {self.p50_ms:7.2f} ms  "
                f"p99 {self.p99_ms:7.2f} ms  avg batch {self.avg_batch:5.2f}  server CPU {self.server_cpu_ms:.2f} "
                f"ms/inf  failures {self.failures}/{self.requests}" + (f"\n  {self.note}" if self.note else ""))


async def _closed_loop(address: str, model: str, feeds: Mapping[str, Any], outputs: Sequence[str], protocol: str,
                       concurrency: int, requests: int, timeout_s: float, progress: Any,
                       server: TritonServer | None = None) -> tuple[list, list, float, int]:
    """Latencies (ms), errors, duration and the requests not sent because the server died (``server.running``)."""
    module, sync = _module(protocol, aio=True), _module(protocol)
    if protocol == "http":
        c = module.InferenceServerClient(address, conn_limit=concurrency, conn_timeout=timeout_s)
    else:
        c = module.InferenceServerClient(address)
    inputs, outs = _inputs(sync, feeds), _outputs(sync, outputs)
    latencies: list[float] = []
    errors: list[str] = []
    remaining = [requests]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(c.infer(model, inputs, outputs=outs), timeout_s)
                latencies.append((time.perf_counter() - t0) * 1e3)
            except Exception as err:  # noqa: BLE001 - counted and reported, the load goes on
                errors.append(f"{type(err).__name__}: {_reason(err)}")
                if server is not None and not server.running:
                    remaining[0] = -abs(remaining[0])  # stop sending: the rest would fail the same way
            if progress is not None:
                progress.update(1)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        duration = time.perf_counter() - t0
        await c.close()
    return latencies, errors, duration, max(-remaining[0], 0)


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine from plain Python or from inside Jupyter (whose loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load_test(server: TritonServer | str, model: str, feeds: Mapping[str, Any], *, concurrency: int = 32,
              requests: int = 1000, protocol: str = "grpc", outputs: Sequence[str] = ("logits",),
              label: str | None = None, warmup: int = 50, timeout_s: float = 60.0,
              progress: bool = False, validate: bool = True) -> LoadResult:
    """Closed loop: ``concurrency`` clients each send the next request as soon as the previous answer arrives.

    gRPC by default: its client costs about half the CPU of the HTTP one per request, which matters when the
    clients share two cores with the server. ``warmup`` requests run first and are not counted. With a
    :class:`TritonServer`, the average batch size comes from the metrics endpoint (counts before and after). If the server dies during the run, the result keeps
    what was measured: answered and failed counts, and a ``note`` saying so (``bool(result)`` is False).
    ``validate`` checks the feeds once against the model's config, before any load (as :func:`infer`).
    """
    address = _address(server, protocol)
    if validate:
        c = client(server, protocol=protocol, timeout_s=timeout_s)
        try:
            config = _local_config(server, model) or _ask_config(c, model, protocol, timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        except Exception as err:
            raise _translate(err, address, model, timeout_s) from err
        finally:
            c.close()
    ours = server if isinstance(server, TritonServer) else None
    if warmup:
        _run_coroutine(_closed_loop(address, model, feeds, outputs, protocol, min(concurrency, warmup), warmup,
                                    timeout_s, None))
    before = server.metrics() if isinstance(server, TritonServer) else None
    cpu_before = server.cpu_seconds() if isinstance(server, TritonServer) else float("nan")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=requests, desc=f"{label or model} c={concurrency}", leave=False)
    try:
        latencies, errors, duration, unsent = _run_coroutine(
            _closed_loop(address, model, feeds, outputs, protocol, concurrency, requests, timeout_s, bar, ours))
    finally:
        if bar is not None:
            bar.close()
    avg = cpu = float("nan")
    note = ""
    if ours is not None and not ours.running:
        note = _("the server died during the run (exit code {code}): {answered} requests answered, {failed} "
                 "failed, {unsent} not sent. Its last words: server.log_tail()").format(
                     code=ours.process.returncode, answered=len(latencies), failed=len(errors), unsent=unsent)
    elif ours is not None:
        cpu = ours.cpu_seconds() - cpu_before
        time.sleep(0.6)  # metrics are refreshed every 500 ms (--metrics-interval-ms)
        avg = average_batch_size(before or "", ours.metrics(), model)
    return LoadResult(label or model, model, protocol, concurrency, requests, len(errors) + unsent, duration,
                      np.asarray(latencies), avg, errors[:10], cpu, note)


def results_table(results: Iterable[LoadResult]) -> str:
    """A plain-text table of load-test results."""
    rows = [r.to_row() for r in results]
    if not rows:
        return "(no results)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = "  ".join(k.rjust(widths[k]) for k in keys)
    return "\n".join([line, "-" * len(line)] + ["  ".join(str(r[k]).rjust(widths[k]) for k in keys) for r in rows])


def plot_sweep(results: Sequence[LoadResult], *, ax: Any = None) -> Any:
    """Throughput and p99 latency against concurrency, one line per configuration."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    labels = list(dict.fromkeys(r.label for r in results))
    for label in labels:
        points = sorted((r for r in results if r.label == label), key=lambda r: r.concurrency)
        c = [r.concurrency for r in points]
        ax[0].plot(c, [r.throughput for r in points], marker="o", label=label)
        ax[1].plot(c, [r.p99_ms for r in points], marker="o", label=label)
    ax[0].set(xlabel="concurrent clients", ylabel="inferences / s", title="throughput", xscale="log")
    ax[1].set(xlabel="concurrent clients", ylabel="ms", title="p99 latency", xscale="log", yscale="log")
    ax[0].legend()
    ax[0].figure.tight_layout()
    return ax
