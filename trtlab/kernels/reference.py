"""NumPy references of the Lab 04 kernels: the ground truth on any machine, float64, written for clarity (tested
against OpenCV and torch on real photos), and :func:`cpu_preprocess`, the usual OpenCV path the fused kernel replaces.

The pixel-centre convention is the one stated in ``bilinear_taps.cuh``: OpenCV ``INTER_LINEAR`` / torch
``align_corners=False, antialias=False`` (centres aligned, edges clamped).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trtlab.data import normalise
from trtlab.errors import InputMismatch
from trtlab.i18n import _
from trtlab.kernels.launch import bilinear_taps_ref, channel_swap

__all__ = ["check_hwc3", "cpu_preprocess", "invert_affine", "letterbox_matrix", "letterbox_ref", "preprocess_ref",
           "resize_bilinear_ref", "softmax_topk_ref", "warp_affine_ref"]


def resize_bilinear_ref(image: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of one H×W×C image to ``out_hw`` in float64 (no rounding, no antialiasing)."""
    img = np.asarray(image, dtype=np.float64)
    h, w = img.shape[:2]
    oh, ow = out_hw
    y0, y1, wy = bilinear_taps_ref(np.arange(oh), h / oh, h)
    x0, x1, wx = bilinear_taps_ref(np.arange(ow), w / ow, w)
    wx, wy = wx[None, :, None], wy[:, None, None]
    top = img[y0][:, x0] * (1 - wx) + img[y0][:, x1] * wx
    bottom = img[y1][:, x0] * (1 - wx) + img[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def _normalise_chw(resized: np.ndarray, mean: Sequence[float], std: Sequence[float], swap_rb: bool) -> np.ndarray:
    x = normalise(resized[..., ::-1] if swap_rb else resized, mean, std, dtype=np.float64)
    return np.ascontiguousarray(np.moveaxis(x, -1, 0))


def preprocess_ref(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *,
                   mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                   input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float64) -> np.ndarray:
    """What :func:`preprocess` computes, in NumPy: uint8 HWC images → N×3×H×W, (x/255 - mean)/std."""
    swap = channel_swap(input_order, output_order)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = np.stack([_normalise_chw(resize_bilinear_ref(check_hwc3(im), out_hw), mean, std, swap) for im in batch])
    return out.astype(dtype)


def letterbox_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """The 2×3 affine matrix (input pixel centre → output pixel centre) of an aspect-preserving, centred resize.

    Same scale on both axes, padding split evenly; centres aligned as in :func:`resize_bilinear_ref`:
    (x_dst + 0.5) = s * (x_src + 0.5) + pad_x. Invert it (``cv2.invertAffineTransform``) to map output to input,
    e.g. to bring a detector's boxes back to the original image.
    """
    (h, w), (oh, ow) = src_hw, dst_hw
    s = min(oh / h, ow / w)
    pad_x, pad_y = (ow - s * w) / 2, (oh - s * h) / 2
    return np.array([[s, 0.0, pad_x + 0.5 * s - 0.5], [0.0, s, pad_y + 0.5 * s - 0.5]])


def invert_affine(m: np.ndarray) -> np.ndarray:
    """The inverse of a 2×3 affine matrix (output → input for :func:`letterbox_matrix`'s input → output)."""
    full = np.vstack([np.asarray(m, np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_affine_ref(image: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int], *,
                    border: float = 114.0) -> np.ndarray:
    """Bilinear affine warp with a constant border in float64, as ``cv2.warpAffine(INTER_LINEAR,
    BORDER_CONSTANT)`` defines it (``matrix``: input → output, pixel i's centre at coordinate i)."""
    img = np.asarray(image, dtype=np.float64)
    h, w, c = img.shape
    oh, ow = out_hw
    inv = invert_affine(matrix)
    ys, xs = np.mgrid[0:oh, 0:ow].astype(np.float64)
    sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    x0, y0 = np.floor(sx).astype(np.int64), np.floor(sy).astype(np.int64)
    wx, wy = (sx - x0)[..., None], (sy - y0)[..., None]

    def tap(xi: np.ndarray, yi: np.ndarray) -> np.ndarray:
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        values = img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        return np.where(inside[..., None], values, border)

    top = tap(x0, y0) * (1 - wx) + tap(x0 + 1, y0) * wx
    bottom = tap(x0, y0 + 1) * (1 - wx) + tap(x0 + 1, y0 + 1) * wx
    return top * (1 - wy) + bottom * wy


def letterbox_ref(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *, border: float = 114.0,
                  mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                  input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float64) -> np.ndarray:
    """What :func:`letterbox` computes, in NumPy: N×3×H×W."""
    swap = channel_swap(input_order, output_order)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = []
    for im in batch:
        im = check_hwc3(im)
        warped = warp_affine_ref(im, letterbox_matrix(im.shape[:2], out_hw), out_hw, border=border)
        out.append(_normalise_chw(warped, mean, std, swap))
    return np.stack(out).astype(dtype)


def softmax_topk_ref(logits: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(top-k probabilities, top-k class indices, all probabilities) per row; ties go to the smaller index."""
    x = np.asarray(logits, dtype=np.float64)
    if x.ndim != 2:
        raise InputMismatch(_("logits: got shape {shape}, expected (N, classes)").format(shape=x.shape))
    e = np.exp(x - x.max(axis=1, keepdims=True))
    probs = e / e.sum(axis=1, keepdims=True)
    idx = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(probs, idx, axis=1), idx, probs


def check_hwc3(image: Any) -> np.ndarray:
    """``image`` if it is one H×W×3 uint8 image, else :class:`InputMismatch` saying how to make it one."""
    shape, dtype = tuple(image.shape), str(image.dtype)
    if len(shape) != 3 or shape[2] != 3 or dtype != "uint8":
        raise InputMismatch(_("image: got shape {shape} dtype {dtype}, expected (H, W, 3) uint8 (HWC, as "
                              "cv2.imread or PIL give); convert grey images with cv2.cvtColor(img, "
                              "cv2.COLOR_GRAY2BGR)").format(shape=shape, dtype=dtype))
    return image



def cpu_preprocess(images: np.ndarray | Sequence[np.ndarray], out_hw: tuple[int, int], *,
                   mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
                   input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float32) -> np.ndarray:
    """The usual CPU pre-processing, with OpenCV: per image resize (INTER_LINEAR, uint8), channel swap, normalise,
    HWC → CHW. What the fused kernel replaces; rounds the resized pixels to uint8 (≤ 1 grey level from the
    reference)."""
    import cv2

    swap = channel_swap(input_order, output_order)
    batch = [images] if isinstance(images, np.ndarray) and images.ndim == 3 else list(images)
    out = np.empty((len(batch), 3, *out_hw), dtype)
    for i, image in enumerate(batch):
        resized = cv2.resize(check_hwc3(image), (out_hw[1], out_hw[0]), interpolation=cv2.INTER_LINEAR)
        if swap:
            resized = cv2.cvtColor(resized, cv2.COLOR_BGR2RGB)
        out[i] = normalise(resized, mean, std).transpose(2, 0, 1)
    return out

