"""Lab 04 benchmarks on a GPU machine: the fused pre-processing kernel against the copy-bandwidth roofline, torch on
the GPU, torchvision.transforms.v2 and the CPU (OpenCV); letterbox and softmax+top-k; host-to-device upload.

    python scripts/bench_kernels.py --out results/    # writes bench_kernels.json and prints a table
    python scripts/bench_kernels.py --pipeline --out results/   # issue 15: plans, graphs, CV-CUDA, frame pipeline

Every kernel time is the median of CUDA-event timings (trtlab.bench.benchmark with a CUDA-event timer), measured
after warm-up; the copy bandwidth is measured in the same run, counting bytes read plus bytes written.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trtlab import bench, kernels  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def frames(n: int, h: int = 1080, w: int = 1920, seed: int = 0) -> np.ndarray:
    import cv2
    import skimage.data

    rng = np.random.default_rng(seed)
    base = cv2.resize(np.ascontiguousarray(skimage.data.astronaut()[:, :, ::-1]), (w, h)).astype(np.int16)
    noise = rng.integers(-20, 21, (n, h, w, 3), dtype=np.int16)
    return np.clip(base[None] + noise, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--seconds", type=float, default=0.4, help="minimum timed duration per benchmark")
    parser.add_argument("--roofline-only", action="store_true", help="only the copy bandwidth and roofline cases")
    parser.add_argument("--pipeline", action="store_true", help="only the plans/CUDA graph/CV-CUDA/frame pipeline "
                        "comparison (about 2 minutes), summary table last")
    args = parser.parse_args()
    if args.pipeline:
        pipeline_bench(args)
        return
    import cupy as cp
    import cv2
    import torch
    import torch.nn.functional as F

    dev = cp.cuda.runtime.getDeviceProperties(0)
    info = {"gpu": dev["name"].decode(), "sms": dev["multiProcessorCount"], "l2_mb": dev["l2CacheSize"] / 2**20,
            "cupy": cp.__version__, "torch": torch.__version__, "opencv": cv2.__version__,
            "cpu_threads": cv2.getNumThreads(), "python": platform.python_version()}
    print(info)
    rows: list[dict] = []

    def gpu(name: str, fn, *, batch: int, nbytes: int | None = None, reps: int = 10, **extra) -> dict:
        """GPU ms per call: ``reps`` back-to-back calls between two CUDA events (so Python's launch overhead
        overlaps the previous kernel instead of being counted), medianed by trtlab.bench."""
        fn()
        cp.cuda.Device().synchronize()
        r = bench.benchmark(fn, name=name, batch=batch, min_duration_s=args.seconds, min_iters=30,
                            timer=kernels.cuda_timer(fn, reps=reps))
        one = kernels.cuda_timer(fn)  # the same call timed alone: kernel + whatever launch gap the GPU waits
        single = float(np.median([one() for _ in range(30)]))
        gpu_ms = float(r.gpu_median or 0.0)  # always set: the benchmark ran with a timer
        row = {"name": name, "batch": batch, "gpu_ms": gpu_ms, "gpu_ms_single_call": single,
               "host_ms_per_timer_call": r.median, "cov": r.cov, "reps": reps, **extra}
        if nbytes:
            row["bytes"] = nbytes
            row["GBps"] = nbytes / (gpu_ms / 1e3) / 1e9
        rows.append(row)
        print(f"{name:<66} {gpu_ms:9.4f} ms (alone {single:7.4f})"
              + (f"  {row['GBps']:7.0f} GB/s" if nbytes else ""))
        return row

    # 1. the roofline's ceiling: a large device-to-device copy, bytes read + written
    n = 1 << 30
    a = cp.empty(n, cp.uint8)
    a.fill(7)
    b = cp.empty_like(a)
    copy = gpu("copy D2D 1 GiB (cudaMemcpyAsync)", lambda: cp.cuda.runtime.memcpyAsync(
        b.data.ptr, a.data.ptr, n, 3, cp.cuda.get_current_stream().ptr), batch=1, nbytes=2 * n, reps=2)
    copy_bw = copy["GBps"]
    del a, b

    # 2. roofline cases: every input byte touched. Batches large enough (~300 MB moved, ~0.1 ms) that Python's
    #    per-call launch cost stays below the kernel time; the launch cost and a CUDA-graph timing (no Python at
    #    all between kernels) are printed next to each as a cross-check.
    def graph_ms(fn, reps: int = 10) -> float | None:
        try:
            s = cp.cuda.Stream(non_blocking=True)
            with s:
                s.begin_capture()
                for _ in range(reps):
                    fn()
                g = s.end_capture()
            timer = kernels.cuda_timer(lambda: g.launch(stream=s), stream=s)
            for _ in range(3):
                timer()
            return float(np.median([timer() for _ in range(20)])) / reps
        except Exception as err:  # noqa: BLE001 - a cross-check only
            print(f"    CUDA graph timing skipped: {type(err).__name__}: {err}")
            return None

    def host_launch_ms(fn, calls: int = 200) -> float:
        cp.cuda.Device().synchronize()
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        host = (time.perf_counter() - t0) / calls * 1e3
        cp.cuda.Device().synchronize()
        return host

    def distinct_frames(n: int) -> "cp.ndarray":  # n different 1080p frames without n × CPU noise generation
        base = cp.asarray(frames(8))
        return cp.concatenate([base ^ cp.uint8(k) for k in range((n + 7) // 8)])[:n]

    every = (("exact", 2, 0), ("direct", 2, 0), ("tiled", 4, 0))
    for label, batch, out_hw, variants in (
            ("2x downscale 1080p->540x960", 32, (540, 960), every), ("same size 1080p", 16, (1080, 1920), every),
            ("2x downscale 1080p->540x960", 16, (540, 960), every[:1]),  # smaller batches: launch gaps show?
            ("same size 1080p", 8, (1080, 1920), every[:1])):
        x = distinct_frames(batch)
        for method, ppt, magic in variants:
            out = cp.empty((batch, 3, *out_hw), cp.float16)
            defines = {"U8_MAGIC": magic}
            variant = {"exact": "exact-scale kernel", "tiled": "tiled"}.get(method, f"direct, {ppt} px/thread")
            fn = lambda: kernels.preprocess(x, out_hw, mean=MEAN, std=STD, dtype=np.float16, out=out,  # noqa: E731
                                            method=method, pixels_per_thread=ppt, defines=defines)
            row = gpu(f"fused fp16 {label} x{batch} ({variant})", fn,
                      batch=batch, nbytes=x.nbytes + out.nbytes, case=label, method=method, ppt=ppt,
                      u8_magic=magic)
            row["roofline"] = row["GBps"] / copy_bw
            row["host_launch_ms"] = host_launch_ms(fn)
            row["graph_ms"] = graph_ms(fn)
            name = {"exact": f"preprocess_{'same' if out_hw[0] == 1080 else 'half'}_f16",
                    "tiled": "preprocess_tiled_f16"}.get(method, "preprocess_f16")
            fk = kernels.load_module("preprocess.cu", pixels_per_thread=ppt, defines=defines).get_function(name)
            row["registers"] = getattr(fk, "num_regs", None)
            row["local_bytes"] = getattr(fk, "local_size_bytes", None)
            err = np.abs(out[:1].get().astype(np.float64)
                         - kernels.preprocess_ref(x[:1].get(), out_hw, mean=MEAN, std=STD)).max()
            row["max_abs_err_image0"] = float(err)
            graph = f"{row['graph_ms'] * 1e3:.1f} us" if row["graph_ms"] else "n/a"
            print(f"    {row['roofline']:.0%} of copy bandwidth; CUDA graph {graph} per call; host launch "
                  f"{row['host_launch_ms'] * 1e3:.0f} us per call; max |err| image 0 = {err:.2e}; "
                  f"{row['registers']} registers, {row['local_bytes']} B local")
            del out
        del x
    if args.roofline_only:
        best = max((r for r in rows if "roofline" in r), key=lambda r: r["roofline"])
        print(f"\nroofline best: {best['name']} {best['roofline']:.0%} of {copy_bw:.0f} GB/s")
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "bench_roofline.json").write_text(json.dumps({"info": info, "rows": rows}, indent=1))
        return

    # 3. 1080p -> 224x224, batch 32: fused vs torch GPU vs torchvision v2 vs CPU (OpenCV)
    host = frames(32, seed=3)
    x = cp.asarray(host)
    out16 = cp.empty((32, 3, 224, 224), cp.float16)
    out32 = cp.empty((32, 3, 224, 224), cp.float32)
    fused = {}
    for ppt in (1, 2, 4):
        fused[ppt] = gpu(f"fused fp16 1080p->224 x32 ({ppt} px/thread)",
                         lambda: kernels.preprocess(x, (224, 224), mean=MEAN, std=STD, dtype=np.float16, out=out16,
                                                    pixels_per_thread=ppt), batch=32, ppt=ppt, case="224")
    gpu("fused fp32 1080p->224 x32", lambda: kernels.preprocess(x, (224, 224), mean=MEAN, std=STD, out=out32),
        batch=32, case="224")
    t = torch.from_numpy(host).cuda()
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
    std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)

    def torch_chain():
        y = t.permute(0, 3, 1, 2).float()
        y = F.interpolate(y, size=(224, 224), mode="bilinear", align_corners=False, antialias=False)
        return ((y.flip(1) / 255.0 - mean) / std).half()

    torch_row = gpu("torch GPU chain (permute, float, interpolate, flip, norm, half)", torch_chain, batch=32,
                    case="224")
    try:
        from torchvision.transforms.v2 import functional as TF

        def tv_chain():
            y = TF.resize(t.permute(0, 3, 1, 2).flip(1), [224, 224], antialias=False)
            return TF.normalize(TF.to_dtype(y, torch.float32, scale=True), MEAN, STD).half()

        gpu("torchvision.transforms.v2 on GPU (uint8 resize, normalize)", tv_chain, batch=32, case="224")
        tv_err = float((tv_chain()[:1].float().cpu().numpy()
                        - kernels.preprocess_ref(host[:1], (224, 224), mean=MEAN, std=STD)).__abs__().max())
        print(f"    torchvision v2 max |err| vs reference (uint8 resize rounds): {tv_err:.3g}")
    except Exception as err:  # noqa: BLE001 - report, do not fail the whole run
        print(f"    torchvision.transforms.v2 skipped: {err}")
    try:
        import cvcuda  # noqa: F401
        print("    CV-CUDA is installed but not benchmarked here")
    except ImportError:
        print("    CV-CUDA not installed: not compared")

    def cpu_path():
        batch = np.empty((32, 3, 224, 224), np.float32)
        for i, frame in enumerate(host):
            rgb = cv2.cvtColor(cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
            batch[i] = ((rgb.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)
        return batch

    cpu = bench.benchmark(cpu_path, name="CPU OpenCV", batch=32, min_duration_s=1.0, min_iters=5)
    rows.append({"name": "CPU OpenCV (resize, cvtColor, normalize, HWC->CHW) x32", "batch": 32,
                 "host_ms": cpu.median, "case": "224"})
    kernels.cpu_preprocess(host[:2], (224, 224))  # the same CPU path the notebook times
    print(f"{'CPU OpenCV 1080p->224 x32':<58} {cpu.median:9.3f} ms (host)")

    pinned = cp.cuda.alloc_pinned_memory(host.nbytes)
    pinned_view = np.frombuffer(pinned, np.uint8, host.nbytes).reshape(host.shape)
    pinned_view[...] = host
    up_pinned = gpu("H2D upload 32x1080p (pinned)", lambda: x.set(pinned_view), batch=32, nbytes=host.nbytes, reps=1)
    up_page = gpu("H2D upload 32x1080p (pageable)", lambda: x.set(host), batch=32, nbytes=host.nbytes, reps=1)
    best_fused = fused[kernels.PIXELS_PER_THREAD]["gpu_ms"]  # the default configuration, not a best-of
    summary = {
        "copy_GBps": copy_bw,
        "fused_224_ms": best_fused, "torch_224_ms": torch_row["gpu_ms"], "cpu_224_ms": cpu.median,
        "fused_vs_torch": torch_row["gpu_ms"] / best_fused, "cpu_vs_kernel": cpu.median / best_fused,
        "cpu_vs_upload_pinned_plus_kernel": cpu.median / (up_pinned["gpu_ms"] + best_fused),
        "cpu_vs_upload_pageable_plus_kernel": cpu.median / (up_page["gpu_ms"] + best_fused),
    }

    # 4. letterbox and post-processing
    img = cp.asarray(frames(8, 720, 1280))
    gpu("letterbox fp16 720p->640x640 x8", lambda: kernels.letterbox(img, (640, 640), dtype=np.float16), batch=8)
    for shape, k in (((32, 1000), 5), ((256, 10), 1), ((1024, 1000), 5)):
        logits = cp.asarray(np.random.default_rng(0).normal(0, 3, shape).astype(np.float32))
        gpu(f"softmax+top{k} {shape}", lambda: kernels.softmax_topk(logits, k), batch=shape[0])
        tl = torch.from_dlpack(logits)
        gpu(f"torch softmax+topk {shape}", lambda: torch.topk(torch.softmax(tl, 1), k, 1), batch=shape[0])

    print("\nsummary:", json.dumps(summary, indent=1))
    for r in rows:
        if "roofline" in r:
            print(f"  roofline {r['name']}: {r['GBps']:.0f} GB/s = {r['roofline']:.0%} of {copy_bw:.0f} GB/s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_kernels.json").write_text(json.dumps({"info": info, "rows": rows, "summary": summary},
                                                            indent=1))


def pipeline_bench(args: argparse.Namespace) -> None:
    """Issue 15 on one GPU, one run: (1) 32×1080p → 224 fp16 per call, course plans in a CUDA graph vs the one-call
    API vs CV-CUDA (fused op and 5-op chain), with GPU-only times and the kernel's bandwidth; (2) the frame pipeline
    (stand-in engine where TensorRT is absent) at batch 1/8/32: CPU pre-processing vs step by step vs one graph."""
    import cupy as cp

    import trtlab as tl
    from trtlab.kernels import cvcuda_ops, pipeline, plan

    summary: list[tuple[str, str]] = []
    stream = cp.cuda.Stream(non_blocking=True)
    base = cp.asarray(frames(8))
    x = cp.ascontiguousarray(cp.concatenate([base ^ cp.uint8(k) for k in range(4)]))
    pre = kernels.PreprocessPlan(32, (1080, 1920), (224, 224), mean=MEAN, std=STD, dtype=np.float16, src=x,
                                 stream=stream)
    logits = cp.asarray(np.random.default_rng(0).normal(0, 3, (32, 1000)).astype(np.float32))
    post = kernels.SoftmaxTopkPlan(32, 1000, 5, logits=logits, stream=stream, to_host=False)
    out = cp.empty((32, 3, 224, 224), cp.float16)
    print(pre)
    cases = {"course pre+post, CUDA graph (plans)": lambda: (pre(), post()),
             "course pre (plan)": pre,
             "course kernels.preprocess (one-call API, out=)": lambda: kernels.preprocess(
                 x, (224, 224), mean=MEAN, std=STD, dtype=np.float16, out=out, stream=stream),
             "course softmax+top5 32x1000 (plan)": post}
    version = cvcuda_ops.version()
    print(f"CV-CUDA: {version or 'not installed (pip install ' + cvcuda_ops.PACKAGE + ')'}")
    if version:
        for fused in (True, False):
            op = cvcuda_ops.CvcudaPreprocess(x, (224, 224), mean=MEAN, std=STD, stream=stream, fused=fused)
            cases[op.name] = op
    times = {}
    for name, fn in cases.items():
        try:
            times[name] = plan.graph_times(fn, stream)
        except Exception as err:  # noqa: BLE001 - report and go on: one failing baseline must not hide the rest
            print(f"{name}: FAILED {type(err).__name__}: {err}")
            continue
        print(f"{name:<72} {times[name]}")
    moved = pre.bytes_moved()
    need = moved["input_needed"] + moved["output"]
    copy_bw = kernels.copy_bandwidth(1 << 29)
    t_pre = times["course pre (plan)"]
    print(f"kernel moves {need / 1e6:.1f} MB per call (input sectors holding a tap {moved['input_needed'] / 1e6:.1f}"
          f" MB of {moved['input_all'] / 1e6:.0f} MB, output {moved['output'] / 1e6:.1f} MB); copy {copy_bw / 1e9:.0f} GB/s")
    ours = times["course pre+post, CUDA graph (plans)"].gpu
    summary += [("course pre+post per call, graph replay (32×1080p→224 fp16)", f"{ours * 1e3:.1f} µs"),
                ("course pre kernel-only (graph replay) / per call (queue full)",
                 f"{t_pre.gpu * 1e3:.1f} µs / {t_pre.per_call * 1e3:.1f} µs"),
                ("course pre bandwidth (bytes it must move, GPU-only)",
                 f"{need / (t_pre.gpu / 1e3) / 1e9:.0f} GB/s = {need / (t_pre.gpu / 1e3) / copy_bw:.0%} of copy"),
                ("kernels.preprocess one-call API, per call",
                 f"{times['course kernels.preprocess (one-call API, out=)'].per_call * 1e3:.1f} µs")]
    for name, t in times.items():
        if name.startswith("CV-CUDA"):
            summary.append((f"{name}, per call (queue full)", f"{t.per_call * 1e3:.1f} µs"
                            + (f"; graph {t.gpu * 1e3:.1f} µs" if t.gpu else f"; graph n/a ({t.graph_error[:60]})")))
    fused_name = next((n for n in times if "fused" in n), None)
    if fused_name:
        ratio = times[fused_name].per_call / t_pre.gpu  # the same work: pre-processing (no softmax/top-k)
        summary.append(("TARGET course pre-processing graph <= CV-CUDA fused per call (same work)",
                        f"{'MET' if ratio >= 1 else 'NOT met'}: CV-CUDA / course = {ratio:.2f}×"))
        for fused in (True, False):  # accuracy against the stated reference, same frames
            op = cvcuda_ops.CvcudaPreprocess(x[:2], (224, 224), mean=MEAN, std=STD, stream=stream, fused=fused)
            op()
            ref = kernels.preprocess_ref(x[:2].get(), (224, 224), mean=MEAN, std=STD)
            err = np.abs(op.normalised() - ref).max() * 255 * min(STD)
            summary.append((f"{op.name} max |error| vs reference", f"{err:.3f} grey levels"))
    pre()
    stream.synchronize()
    err = np.abs(pre.dst[:2].get().astype(np.float64)
                 - kernels.preprocess_ref(x[:2].get(), (224, 224), mean=MEAN, std=STD)).max() * 255 * min(STD)
    summary.append(("course kernel max |error| vs reference (fp16)", f"{err:.3f} grey levels"))

    # 2. the frame pipeline, with the engine stand-in (TensorRT is not installed on the lead's GPU machine)
    try:
        from trtlab.standin import GpuEngine

        if (tl.paths.artifacts() / tl.train.COURSE_CHECKPOINT).exists():
            model, meta = tl.train.ensure_course_model(progress=False)
            classes, mean, std = len(meta["classes"]), meta["mean"], meta["std"]
        else:  # no time to train it inside this 5-minute run: the GPU tests' small seeded CNN, said so
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "gpu"))
            from test_pipeline_gpu import small_model

            model, classes, mean, std = small_model(), 10, MEAN, STD
            print("no course checkpoint here: the frame pipeline runs a small seeded CNN at 224×224 instead")
        engine = GpuEngine(model, inputs={"images": ((-1, 3, 224, 224), np.float32)},
                           outputs={"logits": ((-1, classes), np.float32)},
                           profiles={"images": ((1, 3, 224, 224), (8, 3, 224, 224), (32, 3, 224, 224))})
        print(engine.announcement)
        print_summary(summary, "so far")
        rows = pipeline.latency_table(engine, classes=classes, mean=mean, std=std, seconds=0.5)
        for r in rows:
            print(r)
            summary.append((f"batch {r.batch:>2} {r.name}", f"p50 {r.median:.2f} ms, p99 {r.p99:.2f} ms, "
                            f"{r.items_per_s:,.0f} frames/s"))
    except Exception as err:  # noqa: BLE001
        print(f"frame pipeline FAILED: {type(err).__name__}: {err}")
        summary.append(("frame pipeline", f"FAILED: {type(err).__name__}: {err}"[:160]))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bench_pipeline.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary)


def print_summary(summary: list[tuple[str, str]], when: str = "measured in this run") -> None:
    print(f"\n| issue 15 ({when}) | value |\n|---|---|")
    for key, value in summary:
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    t0 = time.time()
    main()
    print(f"done in {time.time() - t0:.0f} s")
