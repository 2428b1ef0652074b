"""CV-CUDA, the library a practitioner would call instead of writing a kernel (Lab 04's baseline): the course's
1080p → 224 pre-processing (bilinear resize, BGR → RGB, (x/255 - mean)/std, NCHW, fp16) done with CV-CUDA, on
preallocated tensors and on the caller's stream, so both sides are timed doing the same work in the same run.

Two ways, as a practitioner would write them (``pip install cvcuda-cu13``, the ``cvcuda`` extra; GPU only):

- the **5-op chain**: ``resize`` → ``cvtcolor`` → ``convertto`` (x/255, fp16) → ``normalize`` (per-channel mean/std)
  → ``reformat`` (NHWC → NCHW);
- the **fused op** ``resize_crop_convert_reformat``: one kernel, but its ``scale``/``offset`` are scalars; a
  per-channel (x/255 - mean_c)/std_c fits only when mean and std are the same for all channels
  (scale = 1/(255·std), offset = -mean/std). Otherwise the op writes x/255 and the per-channel affine has to move
  into the engine as its first layer (:func:`scalar_fold` says which case applies). Folding it into the first
  convolution's weights instead is exact only away from the borders: that convolution zero-pads *normalised*
  inputs, i.e. pads with the mean, and after folding it would pad with black.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from trtlab.errors import UnsupportedFeature
from trtlab.i18n import _
from trtlab.device import as_stream, require_gpu

__all__ = ["CvcudaPreprocess", "PACKAGE", "scalar_fold", "version"]

PACKAGE = "cvcuda-cu13==0.19.0"


def version() -> str | None:
    """CV-CUDA's version if it imports here, else None."""
    try:
        import cvcuda
    except Exception:  # noqa: BLE001 - absent, or present without a usable GPU driver
        return None
    return str(getattr(cvcuda, "__version__", "?"))


def _cvcuda() -> Any:
    try:
        import cvcuda
    except Exception as err:  # noqa: BLE001
        raise UnsupportedFeature(_("CV-CUDA does not import here ({kind}: {err}) | on a GPU machine: "
                                   "pip install {package} (or pip install -e '.[cvcuda]')").format(
                                       kind=type(err).__name__, err=err, package=PACKAGE)) from err
    return cvcuda


def scalar_fold(mean: Sequence[float], std: Sequence[float]) -> tuple[float, float, bool]:
    """(scale, offset, exact) for the fused op: exact when one scalar affine equals (x/255 - mean_c)/std_c on every
    channel; otherwise (1/255, 0, False) and the per-channel affine belongs to the engine's first layer."""
    m, s = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    if np.all(m == m[0]) and np.all(s == s[0]):
        return float(1 / (255 * s[0])), float(-m[0] / s[0]), True
    return 1 / 255, 0.0, False


class CvcudaPreprocess:
    """CV-CUDA's version of ``kernels.preprocess(frames, out_hw, mean=, std=, dtype=float16)``, set up once:
    ``op()`` enqueues it on ``stream`` into :attr:`out` (N×3×h×w fp16, a CuPy array). ``fused=False`` is the 5-op
    chain, ``fused=True`` the one fused op (then :attr:`exact` says whether its output is already normalised or
    still x/255, waiting for the per-channel affine of :attr:`residual`)."""

    def __init__(self, frames: Any, out_hw: tuple[int, int], *, mean: Sequence[float], std: Sequence[float],
                 stream: Any = None, fused: bool = True, src_cast: bool = False) -> None:
        cupy = require_gpu("CV-CUDA pre-processing")
        cv = _cvcuda()
        n = int(frames.shape[0])
        oh, ow = int(out_hw[0]), int(out_hw[1])
        self.stream = as_stream(stream)
        self._cv_stream = cv.as_stream(int(self.stream.ptr))
        self.frames, self.out = frames, cupy.empty((n, 3, oh, ow), cupy.float16)
        self._src = cv.as_tensor(frames, "NHWC")
        self._dst = cv.as_tensor(self.out, "NCHW")
        self.fused = fused
        if fused:
            self.scale, self.offset, self.exact = scalar_fold(mean, std)
            self.residual = (tuple(float(v) for v in mean), tuple(float(v) for v in std)) if not self.exact else None
            self.name = "CV-CUDA resize_crop_convert_reformat (1 fused op)"
            self._ops = [lambda s: cv.resize_crop_convert_reformat_into(
                self._dst, self._src, (ow, oh), cv.Interp.LINEAR, (0, 0), manip=cv.ChannelManip.REVERSE,
                scale=self.scale, offset=self.offset, srcCast=src_cast, stream=s)]
        else:
            self.exact, self.residual = True, None
            self.name = "CV-CUDA resize → cvtcolor → convertto → normalize → reformat (5 ops)"
            resized = cv.Tensor((n, oh, ow, 3), cv.Type.U8, "NHWC")
            rgb = cv.Tensor((n, oh, ow, 3), cv.Type.U8, "NHWC")
            unit = cv.Tensor((n, oh, ow, 3), cv.Type.F16, "NHWC")
            normed = cv.Tensor((n, oh, ow, 3), cv.Type.F16, "NHWC")
            base, scale = [float(v) for v in mean], [float(v) for v in std]
            self._buffers = (resized, rgb, unit, normed)
            self._ops = [
                lambda s: cv.resize_into(resized, self._src, cv.Interp.LINEAR, stream=s),
                lambda s: cv.cvtcolor_into(rgb, resized, cv.ColorConversion.BGR2RGB, stream=s),
                lambda s: cv.convertto_into(unit, rgb, 1 / 255, 0.0, stream=s),
                lambda s: cv.normalize_into(normed, unit, base, scale, cv.NormalizeFlags.SCALE_IS_STDDEV, stream=s),
                lambda s: cv.reformat_into(self._dst, normed, stream=s),
            ]

    def __call__(self) -> Any:
        for op in self._ops:
            op(self._cv_stream)
        return self.out

    def normalised(self) -> np.ndarray:
        """The last output on the host, float64, with the per-channel affine applied where the fused op could not
        (what the engine's first layer would do): comparable with ``kernels.preprocess_ref``. Synchronises."""
        self.stream.synchronize()
        out = self.out.get().astype(np.float64)
        if self.residual is not None:
            mean, std = (np.asarray(v, np.float64).reshape(1, 3, 1, 1) for v in self.residual)
            out = (out - mean) / std
        return out
