"""Does TensorRTRunner return the right outputs on a real GPU? A matrix of cases, one line per cell.

An engine stand-in that keeps TensorRT's execution contract (trtlab.standin.GpuEngine: it reads and writes only the
addresses given with set_tensor_address, only on the stream given to execute_async_v3) runs a small conv model
behind the runner. Every call gets a new input and its output is compared with the model's own answer, over
CUDA graphs off/on × torch/CuPy device memory × batch sizes (fixed, and alternating) × two runners on two streams
at once (threads). A stage-time check follows: the GPU compute a runner reports must cover the model's work
(a graph replayed on another stream than the copies reports almost none).

    PYTHONPATH=$PWD python3 scripts/runner_race.py                               # trtlab.runtime as it is
    git show HEAD:trtlab/runtime.py > /tmp/old_runtime.py
    PYTHONPATH=$PWD python3 scripts/runner_race.py --runtime-file /tmp/old_runtime.py  # another runner, same matrix

Exit status 0 only when every cell has 0 wrong outputs and 0 errors and every stage check holds.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Sequence

import numpy as np

SIZE, CLASSES = 32, 10
PROFILE = ((1, 3, SIZE, SIZE), (8, 3, SIZE, SIZE), (32, 3, SIZE, SIZE))
BATCHES: tuple[Any, ...] = (16, 5, "16/5")  # "16/5": the batch alternates every call (re-binding, two graphs)


def small_model(seed: int = 0) -> Any:
    """A few conv/bn/relu layers, pooling and a linear layer: ~10 kernels, fast to run and to capture."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, CLASSES))
    with torch.no_grad():  # non-trivial batch-norm statistics, so every layer matters
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


def standin_engine(model: Any = None) -> Any:
    import torch

    from trtlab.standin import GpuEngine

    torch.backends.cudnn.allow_tf32 = False  # exact comparisons: the reference and the runner use the same kernels
    torch.backends.cuda.matmul.allow_tf32 = False
    return GpuEngine(model if model is not None else small_model(),
                     inputs={"images": ((-1, 3, SIZE, SIZE), np.float32)},
                     outputs={"logits": ((-1, CLASSES), np.float32)}, profiles={"images": PROFILE},
                     name="a small conv net")


@dataclass
class Cell:
    device: str
    cuda_graph: bool
    batch: Any
    runners: int
    calls: int
    wrong: int
    errors: int
    first_error: str = ""

    def line(self) -> str:
        text = (f"device={self.device:<5} graphs={'on ' if self.cuda_graph else 'off'} batch={self.batch!s:<5} "
                f"runners={self.runners} calls={self.calls:<4} wrong={self.wrong:<4} errors={self.errors}")
        return text + (f"  first error: {self.first_error}" if self.first_error else "")


def _batch(spec: Any, i: int) -> int:
    return (16, 5)[i % 2] if spec == "16/5" else int(spec)


def run_cell(runner_cls: Callable[..., Any], device_factory: Callable[[], Any], engine: Any, *, device: str,
             cuda_graph: bool, batch: Any, calls: int = 30, runners: int = 2, seed: int = 0) -> Cell:
    """``runners`` runners (one device = one stream each) in as many threads, ``calls`` calls each."""
    rng = np.random.default_rng(seed)
    feeds = [[rng.standard_normal((_batch(batch, i), 3, SIZE, SIZE)).astype(np.float32) for i in range(calls)]
             for _ in range(runners)]
    expected = [[engine.reference(x) for x in per_runner] for per_runner in feeds]  # before any thread starts
    made = [runner_cls(engine, device=device_factory(), cuda_graph=cuda_graph, name=f"runner{t}")
            for t in range(runners)]
    wrong, errors, first_error = [0] * runners, [0] * runners, [""] * runners
    start = threading.Barrier(runners)

    def work(t: int) -> None:
        start.wait()
        for x, ref in zip(feeds[t], expected[t]):
            try:
                out = made[t].infer({"images": x})["logits"]
            except Exception as err:  # noqa: BLE001 - a runner that raises is a failing cell, not a crash
                errors[t] += 1
                first_error[t] = first_error[t] or f"{type(err).__name__}: {str(err)[:160]}"
                continue
            if out.shape != ref.shape or not np.allclose(out, ref, rtol=1e-3, atol=1e-3):
                wrong[t] += 1

    threads = [threading.Thread(target=work, args=(t,)) for t in range(runners)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for r in made:
        r.close()
    return Cell(device, cuda_graph, batch, runners, calls * runners, sum(wrong), sum(errors),
                next((e for e in first_error if e), ""))


def race_matrix(runner_cls: Callable[..., Any], devices: dict[str, Callable[[], Any]], *, calls: int = 30,
                runners: int = 2, batches: Sequence[Any] = BATCHES, graphs: Sequence[bool] = (False, True),
                engine: Any = None, report: Callable[[str], Any] = print) -> list[Cell]:
    """Every cell of devices × graphs × batches with ``runners`` concurrent runners; one line reported per cell."""
    engine = engine if engine is not None else standin_engine()
    cells = []
    for name, factory in devices.items():
        for graph in graphs:
            for batch in batches:
                cell = run_cell(runner_cls, factory, engine, device=name, cuda_graph=graph, batch=batch,
                                calls=calls, runners=runners)
                report(cell.line())
                cells.append(cell)
    return cells


def graph_gpu_ms(engine: Any, batch: int, repeats: int = 20) -> float:
    """Median GPU time of the model replayed as a CUDA graph on its own stream: the work a runner must report."""
    import torch

    x = torch.randn(batch, 3, SIZE, SIZE, device=engine.device)
    stream = torch.cuda.Stream(engine.device)
    with torch.cuda.stream(stream), torch.inference_mode():
        engine.forward([x])  # warm-up outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            engine.forward([x])
        times = []
        for _ in range(repeats):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(stream)
            graph.replay()
            b.record(stream)
            b.synchronize()
            times.append(a.elapsed_time(b))
    return float(np.median(times))


def stage_checks(runner_cls: Callable[..., Any], devices: dict[str, Callable[[], Any]], engine: Any, *,
                 batch: int = 32, calls: int = 15, report: Callable[[str], Any] = print) -> list[dict]:
    """Per device × graphs: median stage times of a runner next to the model's own graph time."""
    floor = graph_gpu_ms(engine, batch)
    rows = []
    for name, factory in devices.items():
        for graph in (False, True):
            runner = runner_cls(engine, device=factory(), cuda_graph=graph, name="stages")
            x = np.random.default_rng(1).standard_normal((batch, 3, SIZE, SIZE)).astype(np.float32)
            times = []
            for _ in range(calls):
                runner.infer({"images": x})
                times.append(runner.last_times)
            runner.close()
            med = {k: float(np.median([getattr(t, k) for t in times[2:]]))
                   for k in ("h2d_ms", "enqueue_ms", "compute_ms", "d2h_ms")}
            ok = med["compute_ms"] >= 0.5 * floor and med["h2d_ms"] > 0 and med["d2h_ms"] > 0
            row = {"device": name, "cuda_graph": graph, **med, "model_graph_ms": floor, "ok": ok}
            report(f"stages device={name:<5} graphs={'on ' if graph else 'off'} batch={batch} "
                   + " ".join(f"{k}={v:.4f}" for k, v in med.items())
                   + f" model_graph_ms={floor:.4f} ok={ok}")
            rows.append(row)
    return rows


def devices_of(runtime: ModuleType, names: Sequence[str]) -> dict[str, Callable[[], Any]]:
    table = {"torch": runtime.TorchDevice, "cupy": runtime.CupyDevice}
    return {name: table[name] for name in names}


def load_runtime(module: str | None, path: str | None) -> ModuleType:
    if path:
        spec = importlib.util.spec_from_file_location("runtime_under_test", path)
        if spec is None or spec.loader is None:
            raise SystemExit(f"cannot load {path} as a module")
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = loaded  # dataclasses look their module up there while the file executes
        spec.loader.exec_module(loaded)
        return loaded
    return importlib.import_module(module or "trtlab.runtime")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", default="trtlab.runtime", help="module with TensorRTRunner, TorchDevice, "
                        "CupyDevice (default: trtlab.runtime)")
    parser.add_argument("--runtime-file", help="a runtime.py file to test instead (e.g. an older version)")
    parser.add_argument("--devices", default="torch,cupy")
    parser.add_argument("--calls", type=int, default=30, help="calls per runner per cell")
    parser.add_argument("--runners", type=int, default=2, help="concurrent runners (threads, one stream each)")
    args = parser.parse_args(argv)
    runtime = load_runtime(args.runtime, args.runtime_file)
    print(f"runner under test: {runtime.__name__} ({getattr(runtime, '__file__', '?')})")
    engine = standin_engine()
    print(engine.announcement)
    devices = devices_of(runtime, [d for d in args.devices.split(",") if d])
    cells = race_matrix(runtime.TensorRTRunner, devices, calls=args.calls, runners=args.runners, engine=engine)
    rows = stage_checks(runtime.TensorRTRunner, devices, engine)
    wrong, errors = sum(c.wrong for c in cells), sum(c.errors for c in cells)
    total = sum(c.calls for c in cells)
    bad_stages = sum(not r["ok"] for r in rows)
    print(f"TOTAL wrong={wrong} errors={errors} of {total} calls in {len(cells)} cells; "
          f"stage checks failed={bad_stages} of {len(rows)}")
    return 0 if wrong == errors == bad_stages == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
