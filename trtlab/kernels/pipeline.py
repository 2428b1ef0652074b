"""One GPU pipeline from uint8 frames to top-k on the host, on one stream, replayable as one CUDA graph.

    pinned host frames → H2D copy → fused pre-processing written straight into the engine's input buffer
    → engine (``execute_async_v3``) → softmax/top-k kernel on the engine's output buffer → D2H copies to pinned host

The engine is anything with TensorRT's execution-context contract: ``set_input_shape(name, shape) -> bool``,
``set_tensor_address(name, ptr) -> bool`` and ``execute_async_v3(stream_handle) -> bool``, reading and writing only
the addresses it was given, only on the stream it was given. That is a real TensorRT context, or a stand-in that
keeps the contract; the pipeline does not know which, and never imports one.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trtlab.errors import InputMismatch, PipelineError
from trtlab.i18n import _
from trtlab.device import address, as_stream, require_gpu
from trtlab.kernels.plan import H2D, PreprocessPlan, SoftmaxTopkPlan, capture, pinned_empty

__all__ = ["FramePipeline", "PipelineError", "input_error", "latency_table", "logit_tolerance", "top_k_margin"]


class FramePipeline:
    """Frames → top-k for a fixed batch, one stream, every buffer allocated once.

    Fill :attr:`host_frames` (pinned memory, N×H×W×3 uint8 BGR: the place a decoder should write to), then
    ``top_p, top_i = pipe()`` (one CUDA-graph launch once :meth:`capture` ran, else every step launched from Python:
    ``pipe(graph=False)``). :attr:`images` is the engine's input buffer, :attr:`logits` its output buffer."""

    def __init__(self, context: Any, *, batch: int, frame_hw: tuple[int, int], input_hw: tuple[int, int],
                 classes: int, k: int = 5, mean: Sequence[float] = (0.0, 0.0, 0.0),
                 std: Sequence[float] = (1.0, 1.0, 1.0), input_order: str = "BGR", output_order: str = "RGB",
                 input_name: str = "images", output_name: str = "logits", input_dtype: Any = np.float32,
                 output_dtype: Any = np.float32, stream: Any = None, upload: bool = True) -> None:
        cupy = require_gpu("the frame pipeline")
        (h, w), (ih, iw) = (int(v) for v in frame_hw), (int(v) for v in input_hw)
        self.context, self.batch, self.upload = context, int(batch), upload
        self.stream = cupy.cuda.Stream(non_blocking=True) if stream is None else as_stream(stream)
        self.host_frames = pinned_empty((batch, h, w, 3), np.uint8)
        self.frames = cupy.empty((batch, h, w, 3), cupy.uint8)
        self.images = cupy.empty((batch, 3, ih, iw), input_dtype)  # the engine's input buffer
        self.logits = cupy.empty((batch, classes), output_dtype)  # the engine's output buffer
        self._bind(input_name, output_name, (batch, 3, ih, iw))
        self.pre = PreprocessPlan(batch, (h, w), (ih, iw), mean=mean, std=std, input_order=input_order,
                                  output_order=output_order, dtype=input_dtype, src=self.frames, dst=self.images,
                                  stream=self.stream)
        self.post = SoftmaxTopkPlan(batch, classes, k, logits=self.logits, dtype=output_dtype, stream=self.stream,
                                    copy_logits=True)
        self._memcpy = cupy.cuda.runtime.memcpyAsync
        self._upload_args = (address(self.frames), address(self.host_frames), self.host_frames.nbytes, H2D)
        self.graph: Any = None

    def _bind(self, input_name: str, output_name: str, shape: tuple[int, ...]) -> None:
        if not self.context.set_input_shape(input_name, shape):
            raise InputMismatch(_("the engine refused input {name!r} of shape {shape}: outside its optimization "
                                  "profile, or no such input | build the engine with a profile that covers this "
                                  "batch").format(name=input_name, shape=shape))
        for name, buffer in ((input_name, self.images), (output_name, self.logits)):
            if not self.context.set_tensor_address(name, address(buffer)):
                raise InputMismatch(_("the engine refused the address of tensor {name!r} | check the tensor names "
                                      "(input {input_name!r}, output {output_name!r})").format(
                                          name=name, input_name=input_name, output_name=output_name))

    def enqueue(self) -> None:
        """Every step of one batch, launched from Python on :attr:`stream`; nothing waits."""
        if self.upload:
            self._memcpy(*self._upload_args, self.stream.ptr)
        self.pre()
        if not self.context.execute_async_v3(self.stream.ptr):
            raise PipelineError(_("execute_async_v3 returned False | see the engine's log above (shapes and "
                                  "addresses are set once, in the constructor)"))
        self.post()

    def capture(self) -> Any:
        """Run one batch eagerly (engines do one-time work on their first enqueue), then capture the whole step into
        one CUDA graph; later calls replay it."""
        self.enqueue()
        self.stream.synchronize()
        self.graph = capture(self.enqueue, self.stream)
        self.graph.upload(self.stream)
        return self.graph

    def submit(self, *, graph: bool = True) -> None:
        """Launch one batch: the captured graph (``graph=True``) or every step from Python."""
        if graph:
            if self.graph is None:
                raise InputMismatch(_("no CUDA graph yet | call pipe.capture() once (or pass graph=False)"))
            self.graph.launch(self.stream)
        else:
            self.enqueue()

    def wait(self) -> tuple[np.ndarray, np.ndarray]:
        """Block until the batch is done; (top-k probabilities, top-k class indices) on the host."""
        self.stream.synchronize()
        return self.post.result()

    def __call__(self, frames: np.ndarray | None = None, *, graph: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """One batch end to end; ``frames`` (if given) is copied into :attr:`host_frames` first."""
        if frames is not None:
            if tuple(frames.shape) != self.host_frames.shape or frames.dtype != np.uint8:
                raise InputMismatch(_("frames: got {shape} {dtype}, expected {expected} uint8 (the batch this "
                                      "pipeline was built for)").format(shape=tuple(frames.shape), dtype=frames.dtype,
                                                                        expected=self.host_frames.shape))
            np.copyto(self.host_frames, frames)
        self.submit(graph=graph)
        return self.wait()

    def from_host_images(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The CPU pre-processing path through the same engine and post-processing: a batch already pre-processed
        on the host (e.g. ``kernels.cpu_preprocess``, OpenCV) is uploaded into the engine's input buffer."""
        self.images.set(np.ascontiguousarray(images, self.images.dtype), stream=self.stream)
        if not self.context.execute_async_v3(self.stream.ptr):
            raise PipelineError(_("execute_async_v3 returned False | see the engine's log above"))
        self.post()
        return self.wait()

    def host_logits(self) -> np.ndarray:
        """The logits of the last batch, as copied to the host with the top-k (synchronise first)."""
        logits = self.post.host_logits
        assert logits is not None  # the pipeline's SoftmaxTopkPlan always copies the logits
        return logits.copy()

    def __repr__(self) -> str:
        return (f"FramePipeline(batch {self.batch}: H2D {self.host_frames.nbytes / 1e6:.1f} MB → "
                f"{self.pre.launch.kernel} → engine → {self.post.launch.kernel} → host; "
                f"graph {'captured' if self.graph else 'not captured'})")


# ---------------------------------------------------------------- parity with the CPU reference


def input_error(std: Sequence[float], *, grey_levels: float, dtype: Any = np.float32) -> np.ndarray:
    """The largest difference, per channel in the model's input units, between a pre-processing path and the float64
    reference: ``grey_levels`` of the 0..255 input (the kernel: 0.05, OpenCV's uint8 path: 1.0) through
    (x/255 - mean)/std, plus half an fp16 ulp of the largest normalised value when the engine input is fp16."""
    s = np.asarray(std, np.float64)
    bound = grey_levels / 255 / s
    if np.dtype(dtype) == np.float16:
        bound = bound + 2.0 ** -11 * (1 / s)  # |(x/255 - mean)/std| <= 1/std for mean in [0, 1]
    return bound


def logit_tolerance(model_fn: Any, x: np.ndarray, *, error: np.ndarray, engine_error: float = 0.0,
                    trials: int = 4, seed: int = 0) -> float:
    """How far a pipeline's logits may be from the reference's, derived in two parts: the engine's own arithmetic
    (``engine_error``: its deviation from ``model_fn`` on identical input, measured; counted twice, since the
    pipeline's run rounds differently from that measurement) and the pre-processing's error (twice the largest
    logit change seen when every value of ``x``, the N×3×H×W reference input, moves by its channel's ``error``
    with random signs; ``model_fn``: the model on the CPU, NumPy in and out)."""
    rng = np.random.default_rng(seed)
    base = model_fn(x)
    bound = np.asarray(error, np.float64).reshape(1, -1, 1, 1)
    moved = max(float(np.abs(model_fn((x + rng.choice([-1.0, 1.0], x.shape) * bound).astype(x.dtype)) - base).max())
                for _rep in range(trials))
    return 2 * float(engine_error) + 2 * moved


def top_k_margin(logits: np.ndarray, k: int = 5, *, per_row: bool = False) -> Any:
    """The smallest gap between neighbouring logits among each row's top k + 1 (``per_row``: one per row, else the
    smallest of all): a row's top-k comparison means something only when its gap exceeds the logit tolerance (else
    rounding alone could swap two near-tied classes)."""
    top = -np.sort(-np.asarray(logits, np.float64), axis=1)[:, :k + 1]
    gaps = np.diff(-top, axis=1).min(axis=1)
    return gaps if per_row else float(gaps.min())


def latency_table(engine: Any, *, classes: int, batches: Sequence[int] = (1, 8, 32),
                  frame_hw: tuple[int, int] = (1080, 1920), input_hw: tuple[int, int] = (224, 224),
                  mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                  seconds: float = 1.0) -> list[Any]:
    """Latency per call (p50/p99) and frames/s at each batch for three paths through the same engine and the same
    post-processing: CPU (OpenCV) pre-processing + upload, the GPU pipeline launched step by step, and the GPU
    pipeline replayed from one CUDA graph. Frames start in pinned host memory; results end on the host."""
    from trtlab import bench
    from trtlab.data import sample_frames
    from trtlab.kernels.reference import cpu_preprocess

    rows = []
    for batch in batches:
        pipe = FramePipeline(engine.create_execution_context(), batch=batch, frame_hw=frame_hw, input_hw=input_hw,
                             classes=classes, mean=mean, std=std)
        pipe.capture()
        frames = sample_frames(batch, frame_hw, seed=batch)
        np.copyto(pipe.host_frames, frames)
        paths = {"CPU OpenCV pre-processing + upload": lambda: pipe.from_host_images(
                     cpu_preprocess(frames, input_hw, mean=mean, std=std)),
                 "GPU pipeline, step by step": lambda: pipe(graph=False),
                 "GPU pipeline, one CUDA graph": lambda: pipe(graph=True)}
        for name, fn in paths.items():
            rows.append(bench.benchmark(fn, name=name, batch=batch, min_duration_s=seconds, min_iters=20))
    return rows
