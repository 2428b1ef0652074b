"""The one-call GPU API of the Lab 04 kernels: launch them through CuPy on a given CUDA stream (CuPy's, torch's
or TensorRT's) and return CuPy arrays that hand over to torch or an engine without a host copy. Convenient, and
they decide everything on every call; :mod:`trtlab.kernels.plan` decides once.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from trtlab.device import as_device_array, as_stream, require_gpu
from trtlab.errors import InputMismatch
from trtlab.i18n import _
from trtlab.kernels.compile import load_module
from trtlab.kernels.launch import (BLOCK, PIXELS_PER_THREAD, channel_swap, folded_norm, preprocess_launch,
                                   softmax_topk_launch)
from trtlab.kernels.reference import invert_affine, letterbox_matrix

__all__ = ["letterbox", "preprocess", "softmax_topk"]


def _images_on_device(images: Any, stream: Any) -> Any:
    x = as_device_array(images, stream=stream)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[3] != 3 or x.dtype != np.uint8:
        raise InputMismatch(_("images: got shape {shape} dtype {dtype}, expected (N, H, W, 3) or "
                              "(H, W, 3) uint8 (HWC); for images of different sizes call once per image with "
                              "out=").format(shape=tuple(x.shape), dtype=x.dtype))
    if x.strides[3] != 1 or x.strides[2] != 3:
        raise InputMismatch(_("images: got strides {strides}; pixels must be packed (W, 3) uint8 rows; "
                              "make them so with cupy.ascontiguousarray(images)").format(strides=x.strides))
    return x


def _output(out: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    import cupy

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise InputMismatch(_("dtype: got {dtype}, expected float32 or float16").format(dtype=dtype))
    if out is None:
        return cupy.empty(shape, dtype)
    out = as_device_array(out)
    if tuple(out.shape) != shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise InputMismatch(_("out: got shape {got} {got_dtype}, expected a C-contiguous {shape} {dtype}").format(
            got=tuple(out.shape), got_dtype=out.dtype, shape=shape, dtype=dtype))
    return out


def preprocess(images: Any, out_hw: tuple[int, int], *, mean: Sequence[float] = (0.0, 0.0, 0.0),
               std: Sequence[float] = (1.0, 1.0, 1.0), input_order: str = "BGR", output_order: str = "RGB",
               dtype: Any = np.float32, out: Any = None, stream: Any = None,
               method: str = "auto", pixels_per_thread: int = PIXELS_PER_THREAD, bilinear_taps: str | None = None,
               launch: Callable[..., Any] | None = None, defines: dict[str, int] | None = None) -> Any:
    """Fused pre-processing on the GPU: uint8 N×H×W×3 → bilinear resize to ``out_hw`` → channel order →
    (x/255 - mean)/std → N×3×h×w ``dtype`` (float32 or float16), one kernel launch on ``stream``.

    ``images`` may be CuPy, a torch CUDA tensor (no copy) or NumPy (uploaded). ``out`` may be any GPU array of the
    right shape, e.g. a slice of a batch or an engine's input buffer. Matches :func:`preprocess_ref`.
    ``method``:

    - "auto" (default): the **exact-scale fast kernel** when :func:`exact_scale` allows it, i.e. when the output
      has the input's size (the resize is the identity) or exactly half of it on both axes (each output pixel is
      the mean of a 2×2 block, OpenCV's convention at scale 2), with 16-byte aligned rows; otherwise "direct".
      A learner's ``bilinear_taps`` or ``launch`` always selects "direct", so their code is what runs.
    - "exact": the exact-scale kernel, or :class:`InputMismatch` saying why it does not apply.
    - "direct": the general kernel, any scale (each thread loads its 4 taps × 3 channels from global memory).
    - "tiled": the general kernel staging its input footprint in shared memory (scales <= 2 only; measured
      slower than "direct" on an H200, kept as a measured alternative).

    All methods compute the same values (the exact-scale blends, with weights 0 or ½ of integers, are exact in
    float32). ``pixels_per_thread`` picks the direct kernel's compiled variant; ``bilinear_taps`` (CUDA C) and
    ``launch`` (a function like :func:`launch_config`) swap in a learner's versions (direct kernel).
    """
    require_gpu("trtlab.kernels.preprocess")
    cs = as_stream(stream)
    with cs:
        x = _images_on_device(images, cs)
        n, h, w, _channels = x.shape
        y = _output(out, (n, 3, int(out_hw[0]), int(out_hw[1])), dtype)
        how = preprocess_launch(n, (h, w), out_hw, src=x, dst=y, src_strides=x.strides, dtype=y.dtype, mean=mean,
                                std=std, input_order=input_order, output_order=output_order, method=method,
                                pixels_per_thread=pixels_per_thread, launch=launch,
                                learner_code=bilinear_taps is not None)
        module = load_module("preprocess.cu", bilinear_taps=bilinear_taps, pixels_per_thread=pixels_per_thread,
                             defines=defines)
        module.get_function(how.kernel)(how.grid, how.block, how.args)
    return y


def letterbox(images: Any, out_hw: tuple[int, int], *, border: float = 114.0,
              mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0),
              input_order: str = "BGR", output_order: str = "RGB", dtype: Any = np.float32, out: Any = None,
              stream: Any = None) -> tuple[Any, np.ndarray]:
    """Letterbox on the GPU: aspect-preserving resize into ``out_hw``, padded with ``border`` (detector input),
    plus the normalisation and layout of :func:`preprocess`. Returns (N×3×h×w array, 2×3 input→output matrix)."""
    require_gpu("trtlab.kernels.letterbox")
    cs = as_stream(stream)
    with cs:
        x = _images_on_device(images, cs)
        n, h, w, _channels = x.shape
        oh, ow = int(out_hw[0]), int(out_hw[1])
        y = _output(out, (n, 3, oh, ow), dtype)
        forward = letterbox_matrix((h, w), (oh, ow))
        inv = invert_affine(forward)
        kernel = load_module("preprocess.cu").get_function("letterbox_f16" if y.dtype == np.float16
                                                           else "letterbox_f32")
        grid = ((ow + BLOCK[0] - 1) // BLOCK[0], (oh + BLOCK[1] - 1) // BLOCK[1], n)
        args = (x, np.int32(h), np.int32(w), np.int64(x.strides[1]), np.int64(x.strides[0]), y, np.int32(oh),
                np.int32(ow), *(np.float32(v) for v in inv.ravel()), np.float32(border),
                np.int32(channel_swap(input_order, output_order)), *folded_norm(mean, std))
        kernel(grid, (*BLOCK, 1), args)
    return y, forward


def softmax_topk(logits: Any, k: int = 5, *, return_probs: bool = False, stream: Any = None) -> tuple[Any, ...]:
    """Softmax + top-k per row on the GPU: (top-k probabilities float32, top-k indices int32[, all
    probabilities]) as CuPy arrays; ``logits`` N×C float32 or float16 (CuPy, torch CUDA or NumPy)."""
    cupy = require_gpu("trtlab.kernels.softmax_topk")
    cs = as_stream(stream)
    with cs:
        x = as_device_array(logits, stream=cs)
        if x.ndim != 2 or x.dtype not in (np.float32, np.float16) or not x.flags.c_contiguous:
            raise InputMismatch(_("logits: got shape {shape} dtype {dtype}, expected a C-contiguous "
                                  "(N, classes) float32 or float16 array").format(shape=tuple(x.shape), dtype=x.dtype))
        n, c = x.shape
        top_p = cupy.empty((n, k), cupy.float32)
        top_i = cupy.empty((n, k), cupy.int32)
        probs = cupy.empty((n, c), cupy.float32) if return_probs else None
        how = softmax_topk_launch(n, c, k, logits=x, top_p=top_p, top_i=top_i, dtype=x.dtype,
                                  probs=probs if probs is not None else 0)
        load_module(how.source).get_function(how.kernel)(how.grid, how.block, how.args, shared_mem=how.shared_mem)
    return (top_p, top_i, probs) if return_probs else (top_p, top_i)
