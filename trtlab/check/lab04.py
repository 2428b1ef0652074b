"""Lab 04 exercises: the index math of the bilinear sample (CUDA C) and the launch configuration.

Both are checked on every machine. The CUDA C of ``bilinear_taps`` is compiled with NVRTC (errors come back with
the line numbers of your text) and, because it is only arithmetic, also evaluated on the CPU by a tiny
interpreter of that C subset (:mod:`trtlab.check._c_eval`), so wrong indexing is caught without a GPU. With a GPU,
your function is also compiled into the real pre-processing kernel and its output compared with the NumPy reference.
"""

from __future__ import annotations

import numbers
import re
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, exercise
from trtlab.check._c_eval import SIGNATURE, Untranslatable, evaluate_taps
from trtlab.i18n import N_, _

__all__ = ["bilinear_taps", "kernel_tolerance", "launch_config", "taps_tolerance"]

#: (input size, output size) pairs: up- and downscales, identity, odd sizes, 1-pixel edges, 1080p/1920p both ways,
#: and scales that are not exact in float32 (1920 → 1081).
SIZE_CASES = ((4, 10), (10, 4), (7, 7), (3, 8), (8, 3), (5, 1), (1, 5), (1080, 224), (640, 480), (224, 1080),
              (1920, 960), (13, 6), (1080, 1920), (1920, 1081))

_HARNESS = """
extern "C" __global__ void check_bilinear_taps(const int* dst, float scale, int size, int* i0, int* i1, float* w1,
                                               int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) bilinear_taps(dst[t], scale, size, i0 + t, i1 + t, w1 + t);
}
"""

# ---------------------------------------------------------------- how close a correct float32 answer gets

#: One float32 operation on a value of magnitude |x| is off by at most |x|·2^-24 when rounded to nearest; 2^-23
#: also covers directed rounding (__fmul_rz and friends) and the float32 rounding of ``scale`` itself.
F32_STEP = 2.0 ** -23
#: Roundings a correct float32 ``src`` may take: (dst + 0.5f), * scale, - 0.5f, and one more for another grouping
#: such as dst * scale + (0.5f * scale - 0.5f). A fused multiply-add only removes roundings.
SRC_ROUNDINGS = 4


def taps_tolerance(size: int, out_size: int) -> float:
    """The largest weight error a correct float32 ``bilinear_taps`` can show against the float64 reference.

    Every intermediate of src = (dst + 0.5) * scale - 0.5 is at most M = max(size, out_size) in magnitude, so each
    of ``SRC_ROUNDINGS`` roundings moves src by at most M·2^-23. An entry of the weight matrix moves by at most as
    much as src: clamping is exact, w1 = src - i0 is exact in float32 (src and i0 share its leading bits), and when
    src crosses an integer the weight moves to the neighbouring pixel by that same amount. At 1920 pixels this is
    4·1920·2^-23 ≈ 9.2e-4, while float32 itself steps by 2^-13 ≈ 1.2e-4 there; every wrong convention the checker
    names is off by 1e-2 or more wherever it differs from the reference (tests/check/test_lab04.py checks this).
    """
    return SRC_ROUNDINGS * max(size, out_size) * F32_STEP


# ---------------------------------------------------------------- exercise 1: bilinear taps


def _weights(i0: np.ndarray, i1: np.ndarray, w1: np.ndarray, size: int) -> np.ndarray:
    """The interpolation as a matrix: row d holds the weight of each input pixel in output pixel d."""
    m = np.zeros((len(i0), size))
    rows = np.arange(len(i0))
    np.add.at(m, (rows, i0), 1.0 - w1)
    np.add.at(m, (rows, i1), w1)
    return m


def _conventions(out_size: int, size: int) -> dict[str, np.ndarray]:
    """Weight matrices of the usual wrong conventions, to name the learner's mistake."""
    from trtlab.kernels import bilinear_taps_ref

    d = np.arange(out_size, dtype=np.float64)
    scale = size / out_size

    def from_src(src: np.ndarray) -> np.ndarray:
        src = np.clip(src, 0, size - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, size - 1)
        return _weights(i0, i1, src - i0, size)

    i0, i1, w1 = bilinear_taps_ref(d, scale, size)
    return {
        "top-left": from_src(d * scale),
        "align_corners": from_src(d * (size - 1) / max(out_size - 1, 1)),
        "swapped": _weights(i0, i1, 1.0 - w1, size),
    }


#: convention → what is wrong with it (translated where shown)
_DIAGNOSES = {
    "top-left": N_("you map output pixel d to input coordinate d * scale: that aligns pixel corners, not centres, "
                   "and shifts the image by half a pixel (the tensorrtx / OpenCV mismatch). Centres line up when "
                   "src = (d + 0.5) * scale - 0.5."),
    "align_corners": N_("you used torch's align_corners=True convention (first and last pixels aligned); OpenCV "
                        "INTER_LINEAR and torch's default align_corners=False align pixel centres: "
                        "src = (d + 0.5) * scale - 0.5."),
    "swapped": N_("the weights are swapped: *w1 is the weight of *i1, the pixel to the right, so it grows with "
                  "src - i0; yours shrinks."),
}

#: An integer literal divided by an integer literal (``1 / 2``), which C evaluates as integer division.
_INT_DIVISION = re.compile(r"(?<![\w.])\d+\s*/\s*\d+(?![\w.])")


def _int_division_note(source: str) -> str:
    found = _INT_DIVISION.search(source)
    if not found:
        return ""
    return _(" Your code has `{code}`: in C that is integer division (1 / 2 is 0), which is likely the cause; "
             "write a float literal such as 0.5f.").format(code=found.group(0))


def _compile_taps(source: str) -> None:
    from trtlab.kernels import compile_source

    result = compile_source(source + "\n" + _HARNESS, name="bilinear_taps.cu")
    if result:
        return
    n_lines = source.count("\n") + 1
    inside = [(line, msg) for line, msg in result.errors if line <= n_lines]
    if inside:
        listing = "\n".join(_("  line {line}: {message}").format(line=line, message=msg) for line, msg in inside)
        raise Mismatch(_("NVRTC does not compile your CUDA C:\n{listing}\n(line numbers count from the first line "
                         "of your string; a missing `;` is reported on the next line)").format(listing=listing))
    raise Mismatch(_("your function compiles, but a kernel cannot call it as `{signature}`: {error}. Keep the "
                     "signature.").format(signature=SIGNATURE, error=result.errors[0][1] if result.errors
                                          else result.log.strip()[:200]))


def _check_indices(i0: np.ndarray, i1: np.ndarray, size: int, out_size: int) -> None:
    for name, idx in (("*i0", i0), ("*i1", i1)):
        bad = np.flatnonzero((idx < 0) | (idx >= size))
        if bad.size:
            b = int(bad[0])
            raise Mismatch(_("reads outside the image: input size {size}, output size {out_size}, output index "
                             "{index}: {name} = {value}, but valid indices are 0..{last}. Clamp at the edges "
                             "(min(…, size - 1); fmaxf(src, 0.0f)), as OpenCV and torch do.").format(
                                 size=size, out_size=out_size, index=b, name=name, value=int(idx[b]),
                                 last=size - 1))


def _check_weight_range(got: dict[str, np.ndarray], mine: np.ndarray, scale: float, size: int, out_size: int,
                        tol: float) -> None:
    """Weights outside [0, 1]: say which of the two usual causes produced them, from where it happened."""
    outside = (mine < -tol) | (mine > 1 + tol)
    if not outside.any():
        return
    b = int(np.argwhere(outside)[0][0])
    i0, i1, w1 = int(got["i0"][b]), int(got["i1"][b]), float(got["w1"][b])
    where = _("input size {size}, output size {out_size}, output index {index}: i0={i0}, i1={i1}, "
              "w1={w1:.3f}").format(size=size, out_size=out_size, index=b, i0=i0, i1=i1, w1=w1)
    raw = (b + 0.5) * scale - 0.5
    if raw < 0:
        raise Mismatch(_("a weight outside [0, 1] ({where}): the source coordinate went below 0 at the edge (it is "
                         "{raw:.3f} there). Clamp it with fmaxf(src, 0.0f) before taking i0, as OpenCV "
                         "does.").format(where=where, raw=raw))
    if w1 < 0:
        raise Mismatch(_("a weight outside [0, 1] ({where}): i0 is above the source coordinate {raw:.3f}, so "
                         "w1 = src - i0 is negative. i0 must round src down (floorf, or (int) of a src that is "
                         "already >= 0), not to the nearest integer (roundf, rintf, __float2int_rn, "
                         "(int)(src + 0.5f)).").format(where=where, raw=raw))
    raise Mismatch(_("a weight outside [0, 1] ({where}): the source coordinate is {raw:.3f}, so i0 should be "
                     "{floor} and w1 = src - i0 in [0, 1). Take i0 from src itself, rounded down.").format(
                         where=where, raw=raw, floor=int(np.floor(raw))))


def _diagnose(source: str, got: dict[str, np.ndarray], mine: np.ndarray, expected: np.ndarray, size: int,
              out_size: int, tol: float) -> Mismatch:
    """The wrong weight matrix ``mine``: name the convention it follows, or describe the first wrong pixel."""
    case = _("input size {size} → output size {out_size}").format(size=size, out_size=out_size)
    for name, wrong in _conventions(out_size, size).items():
        if np.abs(mine - wrong).max() <= tol:
            return Mismatch(_("{case}: {diagnosis}").format(case=case, diagnosis=_(_DIAGNOSES[name]))
                            + _int_division_note(source))
    fractional = np.abs(expected - np.round(expected)).max() > tol
    if fractional and not np.any(got["w1"]):
        return Mismatch(_("{case}: *w1 is 0 for every output pixel, so this is nearest-neighbour sampling, not "
                          "bilinear: the fraction src - i0 was lost. Likely causes: src (or w1) declared `int`, or "
                          "the fraction computed from two ints.").format(case=case) + _int_division_note(source))
    err = np.abs(mine - expected).max(axis=1)
    b = int(np.argmax(err))
    i0, i1, w1 = int(got["i0"][b]), int(got["i1"][b]), float(got["w1"][b])
    return Mismatch(_("{case}, output index {index}: you blend input pixels {i0} and {i1} with w1={w1:.4f}; "
                      "expected {blend} (off by {error:.2g}, more than float32 rounding allows here, {tol:.1e}). "
                      "Compare with src = (dst + 0.5) * scale - 0.5. Likely causes (not detected for sure): a "
                      "constant where `scale` or `size` belongs, or another formula for src.").format(
                          case=case, index=b, i0=i0, i1=i1, w1=w1, blend=_describe(expected[b]), error=err[b],
                          tol=tol)
                    + _int_division_note(source))


@exercise("lab04.bilinear_taps", title=N_("The index math of the bilinear sample (CUDA C)"), hints=(
    N_("Output pixel d covers the interval [d, d + 1) of the output; its centre is d + 0.5. Map that centre into "
       "input units, then measure from the centre of input pixel 0."),
    N_("src = (dst + 0.5f) * scale - 0.5f. OpenCV and torch clamp a negative src to 0 (fmaxf), take i0 = (int)src "
       "(no larger than size - 1), i1 = i0 + 1 clamped to size - 1, and w1 = src - i0."),
    N_("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f); int lo = min((int)src, size - 1); then *i0 = lo; "
       "*i1 = min(lo + 1, size - 1); *w1 = src - lo;"),
))
def bilinear_taps(source: str) -> str:
    """Check the learner's CUDA C ``bilinear_taps``: NVRTC compile, CPU evaluation, GPU run when possible."""
    from trtlab.env import capabilities
    from trtlab.check._c_eval import exercise_source
    from trtlab.kernels import bilinear_taps_ref

    source = exercise_source(source, "bilinear_taps")
    _compile_taps(source)
    worst = 0.0  # largest weight error, as a fraction of its size pair's tolerance
    for size, out_size in SIZE_CASES:
        d = np.arange(out_size)
        scale = float(np.float32(size / out_size))  # what the kernel receives
        tol = taps_tolerance(size, out_size)
        try:
            got = evaluate_taps(source, d, scale, size)
        except Untranslatable as what:
            raise Mismatch(_("it compiles, but the CPU check cannot evaluate {what}. Keep to plain assignments and "
                             "arithmetic, as the hints do.").format(what=what)) from None
        _check_indices(got["i0"], got["i1"], size, out_size)
        if not np.all(np.isfinite(got["w1"])):
            raise Mismatch(_("*w1 is NaN or inf (input size {size}, output size {out_size}): look for a division by "
                             "zero").format(size=size, out_size=out_size))
        mine = _weights(got["i0"].astype(int), got["i1"].astype(int), got["w1"].astype(np.float64), size)
        _check_weight_range(got, mine, scale, size, out_size, tol)
        expected = _weights(*bilinear_taps_ref(d, scale, size), size)
        err = float(np.abs(mine - expected).max())
        if err > tol:
            raise _diagnose(source, got, mine, expected, size, out_size, tol)
        worst = max(worst, err / tol)
    note = _("matches OpenCV INTER_LINEAR index math on {count} size pairs (largest weight error {worst:.0%} of "
             "the float32 bound {roundings}·max(size, out)·2^-23)").format(count=len(SIZE_CASES), worst=worst,
                                                                          roundings=SRC_ROUNDINGS)
    if capabilities().cupy_runs_kernels:
        note += "; " + _gpu_taps(source)
    else:
        note += _("; compiled with NVRTC (no GPU here: the kernel itself was not run)")
    return note


def _describe(row: np.ndarray) -> str:
    nz = np.flatnonzero(row > 1e-9)
    return " + ".join(_("{weight:.4f}·pixel {index}").format(weight=row[i], index=i) for i in nz)


def _gpu_taps(source: str) -> str:
    import skimage.data

    from trtlab import kernels
    from trtlab.check import assert_close

    image = np.ascontiguousarray(skimage.data.chelsea()[:, :, ::-1])
    for out_hw in ((224, 224), (480, 640)):
        got = kernels.preprocess(image, out_hw, bilinear_taps=source).get()
        assert_close(got, kernels.preprocess_ref(image, out_hw), rtol=0, atol=kernel_tolerance(image, out_hw),
                     name=_("pre-processed chelsea at {size} (GPU, your bilinear_taps)").format(size=out_hw))
    return _("the real kernel with your function matches the NumPy reference on the GPU (within float32 rounding)")


def kernel_tolerance(image: np.ndarray, out_hw: tuple[int, int]) -> float:
    """How far the float32 kernel's output (mean 0, std 1: values p/255 in [0, 1]) may be from the float64 reference.

    An output value is Σ wy·wx·p / 255 with p in 0..255, so a weight error δ on each axis moves it by at most 2δ.
    The kernel's taps are float32 from a float32 scale while the reference uses float64 and h/oh: one rounding more
    than :func:`taps_tolerance` counts. The blend and the x·(1/255) scaling add a few float32 roundings of values
    <= 1 (8·2^-23). For a 300×451 image to 480×640: 2·5·640·2^-23 ≈ 7.6e-4.
    """
    m = max(*image.shape[:2], *out_hw)
    return 2 * (SRC_ROUNDINGS + 1) * m * F32_STEP + 8 * F32_STEP


# ---------------------------------------------------------------- exercise 2: launch configuration


#: (batch, (out_h, out_w), block, pixels_per_thread): sizes that do and do not divide by the tile (224 = 7·32,
#: 640 = 5·128), every parameter varied, and a 1080p batch.
LAUNCH_CASES = [(1, (224, 224), (32, 8), 2), (32, (224, 224), (32, 8), 1), (3, (225, 223), (32, 8), 2),
                (2, (1080, 1920), (32, 8), 4), (5, (7, 5), (16, 16), 1), (1, (640, 640), (64, 4), 2),
                (4, (33, 65), (32, 4), 2), (7, (96, 200), (128, 2), 3)]


def _as_dims(value: Any, what: str, where: str) -> tuple[int, int, int]:
    """A grid or block as three ints (the launcher reads x, y and z); floats are refused, with the likely reason."""
    try:
        items = tuple(value)
    except TypeError:
        raise Mismatch(_("{where}: {what} {value!r} is not a tuple of up to three ints").format(
            where=where, what=what, value=value)) from None
    if len(items) != 3:
        raise Mismatch(_("{where}: {what} {value!r} has {count} entries; give all three, (x, y, z), as the launcher "
                         "reads them (e.g. block = (bx, by, 1))").format(where=where, what=what, value=value,
                                                                         count=len(items)))
    for v in items:
        if isinstance(v, numbers.Integral):
            continue
        if isinstance(v, numbers.Real) and float(v).is_integer():
            raise Mismatch(_("{where}: {what} {value!r} holds floats; grid and block sizes are integers (a CUDA dim3 "
                             "holds unsigned ints). Likely cause: np.ceil and np.floor return floats (math.ceil "
                             "returns an int); use int(...) or (a + b - 1) // b.").format(
                                 where=where, what=what, value=value))
        if isinstance(v, numbers.Real):
            raise Mismatch(_("{where}: {what} {value!r} holds {item!r}, not a whole number: `/` is true division in "
                             "Python; round up with (a + b - 1) // b or math.ceil(a / b).").format(
                                 where=where, what=what, value=value, item=v))
        raise Mismatch(_("{where}: {what} {value!r} holds {item!r}, which is not a number").format(
            where=where, what=what, value=value, item=v))
    return tuple(int(v) for v in items)  # type: ignore[return-value]


def _check_launch(result: Any, batch: int, h: int, w: int, block: tuple[int, int], ppt: int) -> None:
    where = (_("batch {batch}, output {h}×{w}, block {block}, {ppt} pixels per thread") if ppt > 1 else
             _("batch {batch}, output {h}×{w}, block {block}, {ppt} pixel per thread")).format(
                 batch=batch, h=h, w=w, block=block, ppt=ppt)
    try:
        grid_value, block_value = result
    except (TypeError, ValueError):
        raise Mismatch(_("{where}: expected (grid, block) as two tuples, got {result!r}").format(
            where=where, result=result)) from None
    grid, blk = _as_dims(grid_value, "grid", where), _as_dims(block_value, "block", where)
    if blk != (*block, 1):
        raise Mismatch(_("{where}: block {got}, expected {expected}: use the block you were given (its x runs along "
                         "the row, so neighbouring threads write neighbouring pixels)").format(
                             where=where, got=blk, expected=(*block, 1)))
    gx, gy, gz = grid
    tile_w = block[0] * ppt
    expected = (-(-w // tile_w), -(-h // block[1]))
    if (gx, gy) != expected and (gx, gy) == (-(-h // tile_w), -(-w // block[1])):
        raise Mismatch(_("{where}: grid {grid} seems to have x and y swapped: grid x must cover the width ({w}), "
                         "grid y the height ({h}); out_hw is (height, width)").format(where=where, grid=grid, w=w,
                                                                                      h=h))
    if gx * tile_w < w or gy * block[1] < h:
        cols = max(w - gx * tile_w, 0)
        rows = max(h - gy * block[1], 0)
        cause = (_("round the division up") if (gx, gy) == (w // tile_w, h // block[1])
                 else _("each block covers {bx}·{ppt} = {tile_w} columns and {by} rows").format(
                     bx=block[0], ppt=ppt, tile_w=tile_w, by=block[1]))
        raise Mismatch(_("{where}: grid {grid} leaves {cols} column(s) and {rows} row(s) of the output unwritten: "
                         "{cause}.").format(where=where, grid=grid, cols=cols, rows=rows, cause=cause))
    if gz != batch:
        raise Mismatch(_("{where}: grid z is {gz}, expected the batch size {batch} (blockIdx.z is the image index; "
                         "more would write past the output, fewer would leave images unwritten)").format(
                             where=where, gz=gz, batch=batch))
    if (gx, gy) != expected:
        plus_one = (gx, gy) == (w // tile_w + 1, h // block[1] + 1)
        cause = (_(" (`n // t + 1` adds a block even when t divides n exactly; (n + t - 1) // t does not)")
                 if plus_one else
                 _(" (did you forget that each thread writes {ppt} pixels?)").format(ppt=ppt)
                 if ppt > 1 and gx == -(-w // block[0]) else "")
        raise Mismatch(_("{where}: grid {grid}, expected {expected}: it launches whole blocks that have no pixel to "
                         "write{cause}; use the smallest grid that covers the output").format(
                             where=where, grid=grid, expected=(*expected, batch), cause=cause))


@exercise("lab04.launch_config", title=N_("The launch configuration of the pre-processing kernel"), hints=(
    N_("One thread per output pixel... almost: each thread writes `pixels_per_thread` pixels of a row, "
       "blockDim.x apart. x runs along the width (coalesced stores), y along the height, z over the batch."),
    N_("Round up, or the last partial tile is never written: ceil(a / b) = (a + b - 1) // b. Along x one block "
       "covers block[0] * pixels_per_thread pixels; z must be exactly the batch (the kernel does not check n)."),
    N_("grid = (ceil(out_w / (bx * pixels_per_thread)), ceil(out_h / by), batch); block = (bx, by, 1)"),
), time_limit_s=60.0)
def launch_config(fn: Callable[..., Any]) -> str:
    from trtlab.env import capabilities

    for batch, (h, w), block, ppt in LAUNCH_CASES:
        _check_launch(fn(batch, (h, w), block=block, pixels_per_thread=ppt), batch, h, w, block, ppt)
    note = _("the smallest grid that covers the output, in {count} cases").format(count=len(LAUNCH_CASES))
    if capabilities().cupy_runs_kernels:
        note += "; " + _gpu_launch(fn)
    return note


def _gpu_launch(fn: Callable[..., Any]) -> str:
    import cupy
    import skimage.data

    from trtlab import kernels
    from trtlab.check import assert_close

    image = np.ascontiguousarray(skimage.data.coffee()[:, :, ::-1])
    out_hw = (225, 223)
    out = cupy.full((1, 3, *out_hw), np.nan, np.float32)  # poisoned: an unwritten pixel stays NaN
    kernels.preprocess(image, out_hw, out=out, launch=fn)
    assert_close(out, kernels.preprocess_ref(image, out_hw), rtol=0, atol=kernel_tolerance(image, out_hw),
                 name=_("pre-processed coffee, launched with your configuration (GPU)"))
    return _("the kernel launched with it writes every pixel correctly on the GPU")
