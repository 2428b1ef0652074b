"""Launch decisions for the Lab 04 kernels, in plain NumPy (no GPU needed): which kernel, which grid and block, and
which argument values one pre- or post-processing call needs.

Deciding is separate from launching so that it can happen **once**: the one-call API (:func:`trtlab.kernels.preprocess`)
decides on every call, a plan (:mod:`trtlab.kernels.plan`) decides when it is built and then only launches, which is
what lets a whole frame-to-result step be captured into one CUDA graph. Both launch exactly what is decided here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from trtlab.device import address
from trtlab.errors import InputMismatch
from trtlab.i18n import _

__all__ = ["BLOCK", "EXACT_BLOCK", "EXACT_PIXELS", "Launch", "MAX_CLASSES", "METHODS", "PIXELS_PER_THREAD",
           "POST_BLOCK", "TILE", "TILE_BLOCK", "bilinear_taps_ref", "channel_swap", "exact_scale", "folded_norm",
           "launch_config", "preprocess_bytes", "preprocess_launch", "softmax_topk_launch"]

#: Block shape of the pre-processing kernels (x along the output row: coalesced stores) and pixels per thread.
BLOCK = (32, 8)
PIXELS_PER_THREAD = 2  # fastest of 1/2/4/8 on an H200 (40 registers); tests check every variant
#: The tiled kernel (scales <= 2): output tile (width, height) per block, and its block of threads.
TILE = (64, 16)
TILE_BLOCK = (64, 4, 1)
#: The exact-scale kernels (same size, exact 2× downscale): threads per block, and pixels per thread along a row
#: (same size: 16 input = output pixels; 2× down: 8 output pixels from 16 input pixels of two rows).
EXACT_BLOCK = 256
EXACT_PIXELS = {"same": 16, "half": 8}
POST_BLOCK = 256
#: softmax_topk keeps a row in shared memory: 48 KiB minus the kernel's 256 bytes of reduction scratch.
MAX_CLASSES = (48 * 1024 - 256) // 4
METHODS = ("auto", "exact", "direct", "tiled")


@dataclass(frozen=True)
class Launch:
    """One kernel launch, fully decided: the source and entry point, grid, block, the argument values in the
    kernel's parameter order, dynamic shared memory, and why this kernel was chosen."""

    source: str
    kernel: str
    grid: tuple[int, int, int]
    block: tuple[int, int, int]
    args: tuple
    shared_mem: int = 0
    reason: str = ""


def launch_config(batch: int, out_hw: tuple[int, int], *, block: tuple[int, int] = BLOCK,
                  pixels_per_thread: int = PIXELS_PER_THREAD) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(grid, block) for the pre-processing kernels: x covers the output width (each thread
    ``pixels_per_thread`` pixels), y the height, z the batch. Lab 04 has you derive this."""
    oh, ow = out_hw
    bx, by = block
    return ((ow + bx * pixels_per_thread - 1) // (bx * pixels_per_thread), (oh + by - 1) // by, batch), (bx, by, 1)


def channel_swap(input_order: str, output_order: str) -> bool:
    """Whether R and B trade places between the input and the output channel order."""
    orders = {input_order.upper(), output_order.upper()}
    if not orders <= {"RGB", "BGR"}:
        raise InputMismatch(_("channel order: got input_order={input_order!r}, output_order={output_order!r}; "
                              "expected 'RGB' or 'BGR' (OpenCV's imread gives BGR, PIL and scikit-image give "
                              "RGB)").format(input_order=input_order, output_order=output_order))
    return input_order.upper() != output_order.upper()


def folded_norm(mean: Sequence[float], std: Sequence[float]) -> tuple[np.float32, ...]:
    """(x/255 - mean)/std folded into x·mul + add per output channel: (mul0, mul1, mul2, add0, add1, add2)."""
    return _folded_norm(tuple(float(v) for v in mean), tuple(float(v) for v in std))


@functools.cache
def _folded_norm(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.float32, ...]:
    m, s = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if m.shape != (3,) or s.shape != (3,) or np.any(s == 0):
        raise InputMismatch(_("mean/std: got {mean} / {std}, expected 3 values each (0..1 "
                              "units, output channel order) and std != 0").format(mean=m.tolist(), std=s.tolist()))
    return tuple(np.float32(v) for v in (*(1 / (255 * s)), *(-m / s)))


def exact_scale(src_hw: tuple[int, int], dst_hw: tuple[int, int], *, dtype: Any = np.float32,
                src_ptr: int = 0, src_strides: Sequence[int] | None = None, dst_ptr: int = 0) -> tuple[str | None, str]:
    """Whether :func:`trtlab.kernels.preprocess` can use an exact-scale fast kernel: ``(kind, reason)``, kind "same"
    (the resize is the identity), "half" (an exact 2× downscale on both axes: the mean of each 2×2 block) or None.

    With the stated pixel-centre convention these two scales need no index math and no weights beyond 0 and ½, so
    the fast kernels read 16 bytes per load and write 16 bytes per store. They need: the exact sizes
    (src = dst, or src = 2·dst on both axes), whole groups of pixels per row (width % 16 == 0 for "same", output
    width % 8 == 0 for "half"), and 16-byte aligned input rows and images (``src_ptr``, ``src_strides`` in bytes:
    image, row, pixel) and output rows (``dst_ptr``; fp32 rows of a multiple of 4, fp16 of 8 values)."""
    (h, w), (oh, ow) = (int(v) for v in src_hw), (int(v) for v in dst_hw)
    if (h, w) == (oh, ow):
        kind, group, width = "same", EXACT_PIXELS["same"], w
    elif (h, w) == (2 * oh, 2 * ow):
        kind, group, width = "half", EXACT_PIXELS["half"], ow
    else:
        return None, f"{h}×{w} → {oh}×{ow} is neither the same size nor an exact 2× downscale"
    if width % group:
        return None, f"{kind}: the {'' if kind == 'same' else 'output '}width {width} is not a multiple of {group}"
    strides = tuple(int(v) for v in (src_strides if src_strides is not None else (h * w * 3, w * 3, 3)))
    if src_ptr % 16 or strides[0] % 16 or strides[1] % 16:
        return None, (f"{kind}: input not 16-byte aligned (address % 16 = {src_ptr % 16}, image stride "
                      f"{strides[0]}, row stride {strides[1]} bytes); e.g. a crop that starts mid-row")
    if dst_ptr % 16 or (ow * np.dtype(dtype).itemsize) % 16:
        return None, f"{kind}: output rows not 16-byte aligned (address % 16 = {dst_ptr % 16}, width {ow})"
    return kind, f"{kind}: exact {'1×' if kind == 'same' else '2× downscale'} fast kernel"


def bilinear_taps_ref(dst: Any, scale: float, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which two input indices output index ``dst`` blends, and the weight of the second (bilinear_taps.cuh).

    Centres aligned (OpenCV INTER_LINEAR, torch align_corners=False): src = (dst + 0.5) * scale - 0.5, clamped at
    0 on the left; the right neighbour is clamped to size - 1.
    """
    d = np.asarray(dst, dtype=np.float64)
    src = np.maximum((d + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size - 1)
    i1 = np.minimum(i0 + 1, size - 1)
    return i0, i1, src - i0


def _pointer(x: Any) -> Any:
    """A kernel argument for a pointer parameter: raw addresses as 8-byte integers, arrays as they are."""
    return np.uint64(x) if isinstance(x, (int, np.integer)) else x


def preprocess_launch(batch: int, src_hw: tuple[int, int], out_hw: tuple[int, int], *, src: Any, dst: Any,
                      src_strides: Sequence[int] | None = None, dtype: Any = np.float32,
                      mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                      input_order: str = "BGR", output_order: str = "RGB", method: str = "auto",
                      pixels_per_thread: int = PIXELS_PER_THREAD, launch: Callable[..., Any] | None = None,
                      learner_code: bool = False) -> Launch:
    """The launch of the fused pre-processing kernel for ``batch`` uint8 HWC images of ``src_hw`` into
    N×3×``out_hw`` ``dtype`` at ``dst`` (see :func:`trtlab.kernels.preprocess` for ``method``).

    ``src``/``dst`` are device addresses (int) or arrays; ``src_strides`` are the input's strides in bytes (image,
    row, pixel; default packed). ``launch`` (a function like :func:`launch_config`) and ``learner_code`` (a
    learner's ``bilinear_taps``) select the general kernel, so that a learner's code is what runs."""
    (h, w), (oh, ow) = (int(v) for v in src_hw), (int(v) for v in out_hw)
    n = int(batch)
    small = w / ow <= 2 and h / oh <= 2
    if method not in METHODS or (method == "tiled" and not small):
        raise InputMismatch(_("method: got {method!r} for a {h}×{w} → {oh}×{ow} resize; expected 'auto', "
                              "'exact', 'direct' or 'tiled' (tiled only for scales <= 2)").format(
                                  method=method, h=h, w=w, oh=oh, ow=ow))
    kind = "f16" if np.dtype(dtype) == np.float16 else "f32"
    strides = tuple(int(v) for v in (src_strides if src_strides is not None else (h * w * 3, w * 3, 3)))
    swap, norm = np.int32(channel_swap(input_order, output_order)), folded_norm(mean, std)
    custom = learner_code or launch is not None
    reason = f"method={method!r}"
    if method in ("auto", "exact"):
        exact, reason = exact_scale((h, w), (oh, ow), dtype=dtype, src_ptr=address(src), src_strides=strides,
                                    dst_ptr=address(dst))
        if method == "exact" and exact is not None and custom:
            exact, reason = None, "bilinear_taps/launch (a learner's code) run in the direct kernel only"
        if method == "exact" and exact is None:
            raise InputMismatch(_("method='exact' does not apply: {reason}; use method='auto' (it falls back "
                                  "to the general kernel) or 'direct'").format(reason=reason))
        if exact is not None and not custom:
            groups = ow // EXACT_PIXELS[exact]  # thread groups per output row
            grid = ((oh * groups + EXACT_BLOCK - 1) // EXACT_BLOCK, n, 1)
            args = (_pointer(src), np.int64(strides[1]), np.int64(strides[0]), _pointer(dst), np.int32(oh),
                    np.int32(ow), swap, *norm)
            return Launch("preprocess.cu", f"preprocess_{exact}_{kind}", grid, (EXACT_BLOCK, 1, 1), args,
                          reason=reason)
    head = (_pointer(src), np.int32(h), np.int32(w), np.int64(strides[1]), np.int64(strides[0]))
    tail = (_pointer(dst), np.int32(oh), np.int32(ow), np.float32(w / ow), np.float32(h / oh), swap, *norm)
    if method == "tiled":
        image_bytes = np.int64((h - 1) * strides[1] + 3 * w)
        grid = ((ow + TILE[0] - 1) // TILE[0], (oh + TILE[1] - 1) // TILE[1], n)
        return Launch("preprocess.cu", f"preprocess_tiled_{kind}", grid, TILE_BLOCK, (*head, image_bytes, *tail),
                      reason=reason)
    grid, block = (launch or launch_config)(n, (oh, ow), block=BLOCK, pixels_per_thread=pixels_per_thread)
    return Launch("preprocess.cu", f"preprocess_{kind}", (int(grid[0]), int(grid[1]), int(grid[2])),
                  (int(block[0]), int(block[1]), int(block[2])), (*head, *tail), reason=f"general kernel ({reason})")


def softmax_topk_launch(rows: int, classes: int, k: int, *, logits: Any, top_p: Any, top_i: Any,
                        dtype: Any = np.float32, probs: Any = 0) -> Launch:
    """The launch of softmax + top-k over ``rows`` × ``classes`` logits (float32 or float16) at ``logits``, writing
    ``k`` probabilities (float32) and indices (int32) per row, and all probabilities when ``probs`` is not 0."""
    rows, classes, k = int(rows), int(classes), int(k)
    if not 1 <= k <= classes:
        raise InputMismatch(_("k: got {k}, expected 1 <= k <= classes ({classes})").format(k=k, classes=classes))
    if classes > MAX_CLASSES:
        raise InputMismatch(_("logits: {classes} classes do not fit the kernel's 48 KiB of shared memory (at most "
                              "{most} classes); use torch.topk(torch.softmax(...)) for larger rows").format(
                                  classes=classes, most=MAX_CLASSES))
    if np.dtype(dtype) not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise InputMismatch(_("logits: got dtype {dtype}, expected float32 or float16").format(dtype=np.dtype(dtype)))
    kernel = "softmax_topk_f16" if np.dtype(dtype) == np.float16 else "softmax_topk_f32"
    args = (_pointer(logits), np.int32(classes), np.int32(k), _pointer(probs), _pointer(top_p), _pointer(top_i))
    return Launch("postprocess.cu", kernel, (rows, 1, 1), (POST_BLOCK, 1, 1), args, shared_mem=classes * 4,
                  reason=f"one block of {POST_BLOCK} threads per row")


def preprocess_bytes(batch: int, src_hw: tuple[int, int], out_hw: tuple[int, int], *, dtype: Any = np.float16,
                     sector: int = 32) -> dict[str, int]:
    """Bytes a pre-processing call must move, for its achieved bandwidth: ``output`` (written), ``input_all``
    (every input byte) and ``input_needed``: the ``sector``-byte pieces of DRAM that hold at least one bilinear tap
    (memory moves whole sectors). At 1080p → 224 only the rows with a tap are read, so ``input_needed`` is the
    honest denominator, ``input_all`` would flatter the kernel."""
    (h, w), (oh, ow) = (int(v) for v in src_hw), (int(v) for v in out_hw)
    y0, y1, _wy = bilinear_taps_ref(np.arange(oh), h / oh, h)
    x0, x1, _wx = bilinear_taps_ref(np.arange(ow), w / ow, w)
    rows = np.unique(np.concatenate([y0, y1]))
    columns = np.unique(np.concatenate([x0, x1]))
    pixel_bytes = (3 * columns[:, None] + np.arange(3)).ravel()
    offsets = rows[:, None] * (3 * w) + pixel_bytes[None, :]
    sectors = np.unique(offsets // sector).size
    return {"output": int(batch) * 3 * oh * ow * np.dtype(dtype).itemsize, "input_all": int(batch) * h * w * 3,
            "input_needed": int(batch) * sectors * sector}
