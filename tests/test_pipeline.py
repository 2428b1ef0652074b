"""Lab 04's launch plans and frame pipeline on the CPU: the launch decisions against the kernels' PTX signatures,
the bytes a call must move, CV-CUDA's scalar fold, and the pipeline's wiring (which address goes where, in which
order, on which stream, what a refusal raises) with a recording stand-in for CuPy and a fake engine context.
The same code runs for real on a GPU in tests/gpu/test_pipeline_gpu.py."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import numpy as np
import pytest

from trtlab import kernels
from trtlab.errors import InputMismatch, UnsupportedFeature
from trtlab.kernels import cvcuda_ops, launch, pipeline, plan

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def _ptx_params(ptx: str, entry: str) -> list[str]:
    import re

    block = re.search(rf"\.entry {entry}\((.*?)\)", ptx, re.S).group(1)
    return re.findall(r"\.param \.(\w+)", block)


def _arg_type(arg) -> str:
    return {np.dtype(np.int32): "u32", np.dtype(np.int64): "u64", np.dtype(np.uint64): "u64",
            np.dtype(np.float32): "f32"}[np.asarray(arg).dtype]


@pytest.fixture(scope="module")
def ptx():
    return {name: result.ptx for name, result in kernels.compile_all().items()}


@pytest.mark.parametrize("src_hw,out_hw,method,kernel", [
    ((1080, 1920), (224, 224), "auto", "preprocess_f16"),
    ((1080, 1920), (540, 960), "auto", "preprocess_half_f16"),
    ((64, 64), (64, 64), "exact", "preprocess_same_f16"),
    ((100, 120), (80, 90), "tiled", "preprocess_tiled_f16"),
])
def test_preprocess_launch_matches_the_kernel_signature(ptx, src_hw, out_hw, method, kernel):
    """Raw addresses (as an engine's input buffer is given) become 8-byte pointer arguments; every argument has the
    type the kernel declares, in its order."""
    how = launch.preprocess_launch(4, src_hw, out_hw, src=0x7F0000000000, dst=0x7F1000000000, dtype=np.float16,
                                   mean=MEAN, std=STD, method=method)
    assert how.kernel == kernel, how.reason
    assert [_arg_type(a) for a in how.args] == _ptx_params(ptx["preprocess.cu"], kernel)
    assert how.args[0] == np.uint64(0x7F0000000000) and np.uint64(0x7F1000000000) in how.args
    assert all(g >= 1 for g in how.grid) and int(np.prod(how.block)) <= 1024


def test_misaligned_engine_buffer_falls_back_to_the_general_kernel():
    how = launch.preprocess_launch(1, (1080, 1920), (540, 960), src=0x1000, dst=0x1008, dtype=np.float16)
    assert how.kernel == "preprocess_f16" and "not 16-byte aligned" in how.reason
    with pytest.raises(InputMismatch, match="does not apply"):
        launch.preprocess_launch(1, (1080, 1920), (540, 960), src=0x1000, dst=0x1008, dtype=np.float16,
                                 method="exact")


def test_softmax_topk_launch(ptx):
    how = launch.softmax_topk_launch(32, 1000, 5, logits=0x2000, top_p=0x3000, top_i=0x4000)
    assert how.kernel == "softmax_topk_f32" and how.grid == (32, 1, 1) and how.shared_mem == 4000
    assert [_arg_type(a) for a in how.args] == _ptx_params(ptx["postprocess.cu"], how.kernel)
    with pytest.raises(InputMismatch, match="1 <= k <= classes"):
        launch.softmax_topk_launch(2, 3, 4, logits=0, top_p=0, top_i=0)
    with pytest.raises(InputMismatch, match="float32 or float16"):
        launch.softmax_topk_launch(2, 3, 1, logits=0, top_p=0, top_i=0, dtype=np.float64)


def test_bytes_a_call_must_move():
    """An exact 2× downscale needs every input byte; 1080p → 224 only the rows that hold a tap (448 of 1080), and
    in them nearly every 32-byte sector."""
    half = launch.preprocess_bytes(2, (1080, 1920), (540, 960), dtype=np.float16)
    assert half["input_needed"] == half["input_all"] == 2 * 1080 * 1920 * 3
    assert half["output"] == 2 * 3 * 540 * 960 * 2
    small = launch.preprocess_bytes(32, (1080, 1920), (224, 224), dtype=np.float16)
    rows = np.unique(np.concatenate(kernels.bilinear_taps_ref(np.arange(224), 1080 / 224, 1080)[:2])).size
    assert rows == 448
    assert 0.9 * 32 * rows * 1920 * 3 <= small["input_needed"] <= 32 * rows * 1920 * 3 < small["input_all"]


def test_cvcuda_scalar_fold():
    """The fused op's scalar scale/offset equal the per-channel normalisation only when it is the same on every
    channel; otherwise it writes x/255 and the per-channel affine, applied after it, gives the reference."""
    scale, offset, exact = cvcuda_ops.scalar_fold((0.5,) * 3, (0.25,) * 3)
    assert exact and scale == pytest.approx(1 / (255 * 0.25)) and offset == pytest.approx(-2.0)
    scale, offset, exact = cvcuda_ops.scalar_fold(MEAN, STD)
    assert not exact and (scale, offset) == (1 / 255, 0.0)
    image = kernels.sample_frames(1, (48, 64))[0]
    unit = kernels.preprocess_ref(image, (24, 32)) * 255 * scale + offset  # what the fused op writes: x/255
    mean, std = (np.asarray(v).reshape(1, 3, 1, 1) for v in (MEAN, STD))
    assert np.allclose((unit - mean) / std, kernels.preprocess_ref(image, (24, 32), mean=MEAN, std=STD))


# ---------------------------------------------------------------- the pipeline's wiring, with a recording CuPy


class FakeStream:
    """A CUDA stream that logs synchronisation and capture."""

    ptr = 0x5EED

    def __init__(self, rec):
        self.rec = rec

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def synchronize(self):
        self.rec.log.append("sync")

    def begin_capture(self):
        self.rec.log.append("begin_capture")

    def end_capture(self):
        return self.rec._end_capture()


class Recorder:
    """The part of CuPy the plans use, backed by NumPy memory; launches and copies are logged (copies are done)."""

    def __init__(self):
        self.log: list = []
        self.stream = FakeStream(self)
        self.uint8, self.float16, self.float32, self.int32 = np.uint8, np.float16, np.float32, np.int32
        self.empty = np.empty
        self.cuda = SimpleNamespace(Stream=lambda non_blocking=True: self.stream,
                                    alloc_pinned_memory=lambda n: bytearray(n),
                                    runtime=SimpleNamespace(memcpyAsync=self._memcpy))

    def _memcpy(self, dst, src, nbytes, kind, stream):
        self.log.append(("memcpy", {1: "H2D", 2: "D2H"}[kind], stream))
        ctypes.memmove(dst, src, nbytes)

    def _end_capture(self):
        self.log.append("end_capture")
        return SimpleNamespace(upload=lambda s: self.log.append("graph.upload"),
                               launch=lambda s: self.log.append(("graph.launch", s.ptr)))

    def get_function(self, name):
        return lambda grid, block, args, **kw: self.log.append(("kernel", name, args))


class FakeContext:
    """An execution context that records what it is told and refuses what it is told to refuse."""

    def __init__(self, log, *, refuse=()):
        self.log, self.refuse, self.addresses = log, set(refuse), {}

    def set_input_shape(self, name, shape):
        return "shape" not in self.refuse and name == "images"

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return name in ("images", "logits")

    def execute_async_v3(self, stream):
        self.log.append(("execute", stream))
        return "execute" not in self.refuse


@pytest.fixture
def fake_gpu(monkeypatch):
    rec = Recorder()
    for module in (plan, pipeline):
        monkeypatch.setattr(module, "require_gpu", lambda what="": rec)
        monkeypatch.setattr(module, "as_stream", lambda stream=None: stream)
    monkeypatch.setattr(plan, "load_module", lambda *a, **k: rec)
    return rec


def make(rec, **kw):
    return pipeline.FramePipeline(FakeContext(rec.log, **kw), batch=2, frame_hw=(50, 64), input_hw=(24, 32),
                                  classes=10, k=3, mean=MEAN, std=STD)


def test_pipeline_writes_into_the_engine_buffers_in_stream_order(fake_gpu):
    rec = fake_gpu
    pipe = make(rec)
    ctx = pipe.context
    assert ctx.addresses == {"images": launch.address(pipe.images), "logits": launch.address(pipe.logits)}
    rec.log.clear()
    frames = kernels.sample_frames(2, (50, 64))
    pipe(frames, graph=False)
    steps = [e if isinstance(e, str) else e[:2] for e in rec.log]
    assert steps == [("memcpy", "H2D"), ("kernel", "preprocess_f32"), ("execute", 0x5EED),
                     ("kernel", "softmax_topk_f32"), ("memcpy", "D2H"), ("memcpy", "D2H"), ("memcpy", "D2H"),
                     "sync"]
    assert all(e[2] == 0x5EED for e in rec.log if e[0] == "memcpy"), "a copy ran on another stream"
    pre_args, post_args = rec.log[1][2], rec.log[3][2]
    assert int(pre_args[5]) == ctx.addresses["images"], "pre-processing does not write the engine's input buffer"
    assert int(post_args[0]) == ctx.addresses["logits"], "softmax/top-k does not read the engine's output buffer"
    assert np.array_equal(pipe.frames, frames), "the frames were not uploaded"


def test_pipeline_captures_once_and_replays(fake_gpu):
    rec = fake_gpu
    pipe = make(rec)
    with pytest.raises(InputMismatch, match="capture"):
        pipe.submit(graph=True)
    rec.log.clear()
    pipe.capture()
    names = [e if isinstance(e, str) else e[0] for e in rec.log]
    assert names.count("execute") == 2 and names.index("sync") < names.index("begin_capture")
    assert names[names.index("begin_capture"):] == ["begin_capture", "memcpy", "kernel", "execute", "kernel",
                                                    "memcpy", "memcpy", "memcpy", "end_capture", "graph.upload"]
    rec.log.clear()
    pipe()
    assert rec.log == [("graph.launch", 0x5EED), "sync"]


def test_pipeline_refusals_are_course_errors(fake_gpu):
    with pytest.raises(InputMismatch, match="optimization profile"):
        make(fake_gpu, refuse={"shape"})
    pipe = make(fake_gpu, refuse={"execute"})
    with pytest.raises(pipeline.PipelineError, match="execute_async_v3 returned False"):
        pipe(graph=False)
    with pytest.raises(InputMismatch, match="expected \\(2, 50, 64, 3\\) uint8"):
        pipe(np.zeros((1, 50, 64, 3), np.uint8))


def test_a_failed_capture_is_closed_and_explained():
    log = []
    stream = SimpleNamespace(begin_capture=lambda: log.append("begin"), end_capture=lambda: log.append("end"))

    def allocates():
        raise RuntimeError("operation not permitted when stream is capturing")

    import trtlab.kernels.plan as p

    original = p.as_stream
    p.as_stream = lambda s=None: s
    try:
        with pytest.raises(UnsupportedFeature, match="cannot be captured.*not permitted"):
            plan.capture(allocates, stream)
    finally:
        p.as_stream = original
    assert log == ["begin", "end"]


def test_timings_say_what_they_measure():
    text = str(plan.GraphTimes(per_call=0.05, gpu=0.028, host=0.04))
    assert "per call 50.0 µs (queue kept full)" in text and "GPU only 28.0 µs (CUDA graph replay)" in text
    assert "n/a (no capture)" in str(plan.GraphTimes(0.05, None, 0.04, "no capture"))


def test_lazy_names_resolve_without_a_gpu():
    assert kernels.PreprocessPlan is plan.PreprocessPlan and kernels.FramePipeline is pipeline.FramePipeline
    assert kernels.cvcuda_ops is cvcuda_ops
    with pytest.raises(AttributeError):
        kernels.no_such_thing  # noqa: B018
