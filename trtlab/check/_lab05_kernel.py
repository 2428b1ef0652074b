"""Lab 05's kernel and ONNX Runtime exercises (re-exported by :mod:`trtlab.check.lab05`): the learner's ``gem_plane``
CUDA C, compiled by NVRTC, run on the CPU by a warp interpreter and on a GPU for real; and the learner's NumPy
compute function, run by ONNX Runtime through onnxruntime-extensions."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, exercise
from trtlab.i18n import N_, _
from trtlab.plugins import PLUGIN_NAME, ort

__all__ = ["gem_kernel", "ort_compute"]

U = 2.0 ** -24  # float32 unit roundoff
#: (input shape, p, eps): H·W of 49, 1, 65, 64 and 527 (odd, a single value, more than one and many warp strides),
#: p of 3, 1 (average pooling), 2.5 and 4, an eps that clamps many values (0.3).
KERNEL_CASES = [((2, 3, 7, 7), 3.0, 1e-6), ((1, 4, 1, 1), 3.0, 1e-6), ((3, 2, 5, 13), 1.0, 1e-6),
                ((2, 2, 8, 8), 2.5, 0.3), ((1, 3, 17, 31), 4.0, 1e-6)]
#: powf's error in ulps: CPU interpreter (float64 pow rounded once: 1) and the GPU's powf (a few ulps; 4 allowed).
POW_ULPS = {"cpu": 1, "gpu": 4}


def _gem64(x: np.ndarray, p: float, eps: float, *, clamp: bool = True, root: bool = True, power: bool = True,
           divisor: Any = None, lanes: slice = slice(None)) -> np.ndarray:
    planes = x.reshape(x.shape[0] * x.shape[1], -1).astype(np.float64)
    v = np.maximum(planes, eps) if clamp else planes
    with np.errstate(all="ignore"):
        terms = v ** p if power else v
        total = terms[:, lanes].sum(axis=1)
        mean = total / (planes.shape[1] if divisor is None else divisor)
        return mean ** (1.0 / p) if root else mean


def gem_tolerance(x: np.ndarray, p: float, eps: float, where: str) -> np.ndarray:
    """Relative error a float32 ``gem_plane`` may have, per plane, derived from its arithmetic.

    Each term max(x, eps)^p: ``k`` ulps of powf plus p·u from eps rounded to float32. The sum of positive terms along
    one lane (ceil(hw/32) adds) and the 5 shuffle adds: (hw/32 + 5)·u. The mean: one rounding. The root scales a
    relative error by 1/p and adds its own k ulps, plus |ln mean|·u/p from 1/p rounded to float32. Doubled for safety.
    """
    hw = x.shape[2] * x.shape[3]
    k = POW_ULPS[where] * 2  # ulps to unit roundoffs
    mean = np.maximum(_gem64(x, p, eps, root=False), np.finfo(np.float64).tiny)
    rel = ((k + p + np.ceil(hw / 32) + 6) / p + np.abs(np.log(mean)) / p + k) * U
    return 2 * rel


#: (how the wrong GeM differs from the right one, what the learner reads: translated where shown)
_DIAGNOSES = [
    (dict(root=False), N_("the root is missing: the mean of max(x, eps)^p must be raised to 1/p "
                          "(powf(acc / hw, 1.0f / p))")),
    (dict(power=False, root=False), N_("p is not applied at all: that is average pooling. Raise each clamped value "
                                       "to p, average, then take the 1/p root")),
    (dict(power=False), N_("p is not applied to each value: accumulate max(x, eps)^p (powf / **), not the values")),
    (dict(divisor=32), N_("the sum is divided by 32 (the warp size) instead of hw, the number of values")),
    (dict(divisor=1), N_("the sum is never divided by hw: GeM is a generalized MEAN")),
    (dict(lanes=slice(0, None, 32)), N_("only lane 0's partial sum reaches the result: the 32 lanes' sums must be "
                                        "added with a shuffle reduction (__shfl_down_sync) before lane 0 returns")),
    (dict(clamp=False), N_("values below eps are not clamped: take max(x, eps) (fmaxf / np.maximum) before the "
                           "power")),
]


KERNEL_TAIL = N_("Check the loop's start and stride (i = lane; i < hw; i += 32) and the shuffle offsets (16, 8, 4, "
                 "2, 1)")
ORT_TAIL = N_("Compare with (mean over H, W of max(x, eps)^p)^(1/p)")


def _diagnose(got: np.ndarray, x: np.ndarray, p: float, eps: float, tol: np.ndarray, case: str,
              tail: str = KERNEL_TAIL) -> Mismatch:
    if not np.all(np.isfinite(got)):
        clampless = _gem64(x, p, eps, clamp=False)
        why = (_(" powf of a negative value with a non-integer p is NaN: clamp with max(x, eps) first (fmaxf / "
                 "np.maximum)")
               if not np.all(np.isfinite(clampless)) else _(" look for a division by zero or an uninitialised sum"))
        return Mismatch(_("{case}: the result holds NaN or inf.{why}").format(case=case, why=why))
    for changes, text in _DIAGNOSES:
        wrong = _gem64(x, p, eps, **changes)
        if np.all(np.isfinite(wrong)) and np.all(np.abs(got - wrong) <= 4 * tol * np.abs(wrong) + 1e-30) \
                and not np.allclose(wrong, _gem64(x, p, eps), rtol=1e-6):
            return Mismatch(_("{case}: {diagnosis}").format(case=case, diagnosis=_(text)))
    ref = _gem64(x, p, eps)
    rel = np.abs(got / ref - 1)
    i = int(np.argmax(rel / tol))
    return Mismatch(_("{case}: plane {plane} is {got:.6g}, expected {expected:.6g} (relative error {error:.1e}, "
                      "allowed {allowed:.1e} from float32 arithmetic). {tail}").format(
                          case=case, plane=i, got=got[i], expected=ref[i], error=rel[i], allowed=tol[i],
                          tail=_(tail)))


def _compile(source: str) -> None:
    from trtlab.plugins import kernel

    result = kernel.compile_kernel(gem_plane=source)
    if result:
        return
    text = kernel.SOURCE_FILE.read_text()
    first = text[: text.index(kernel.GEM_PLANE_INCLUDE)].count("\n")  # lines of gem_pool.cu before the paste
    n_lines = source.count("\n") + 1
    inside = [(line - first, msg) for line, msg in result.errors if 0 < line - first <= n_lines]
    if inside:
        listing = "\n".join(_("  line {line}: {message}").format(line=line, message=msg) for line, msg in inside)
        raise Mismatch(_("NVRTC does not compile your CUDA C:\n{listing}\n(line numbers count from the first line "
                         "of your string; a missing `;` is reported on the next line)").format(listing=listing))
    raise Mismatch(_("your gem_plane compiles, but the kernel cannot call it as gem_plane(x, hw, p, eps, lane) "
                     "returning a float: {error}").format(error=result.errors[0][1] if result.errors
                                                          else result.log.strip()[:200]))


_GEM_KERNEL_TITLE = N_("The GeM kernel's device function (CUDA C): one warp reduces one plane")


@exercise("lab05.gem_kernel", title=_GEM_KERNEL_TITLE, hints=(
    N_("Each of the 32 lanes sums max(x, eps)^p over its share of the plane (every 32nd value, starting at its "
       "lane); then the 32 partial sums must be combined, and the mean raised to 1/p."),
    N_("for (int i = lane; i < hw; i += WARP) acc += powf(fmaxf(x[i], eps), p); then a shuffle tree: for offsets 16, "
       "8, 4, 2, 1: acc += __shfl_down_sync(0xffffffff, acc, offset) (every lane runs it, after the loop). Lane 0 "
       "then holds the sum."),
    N_("float acc = 0.0f; for (int i = lane; i < hw; i += WARP) { acc += powf(fmaxf(x[i], eps), p); } "
       "for (int offset = WARP / 2; offset > 0; offset /= 2) { acc += __shfl_down_sync(0xffffffffu, acc, offset); } "
       "return powf(acc / (float)hw, 1.0f / p);"),
), time_limit_s=120)  # measured ~1 s on the CPU (NVRTC + five warp interpretations)
def gem_kernel(source: str) -> str:
    """NVRTC compile, the warp interpreter on ``KERNEL_CASES`` within :func:`gem_tolerance`, and on a GPU the real
    kernel compiled with the learner's function on the same cases."""
    from trtlab.check._c_eval import Untranslatable
    from trtlab.check._gem_eval import evaluate_gem_plane
    from trtlab.env import capabilities

    from trtlab.check._c_eval import exercise_source

    source = exercise_source(source, "gem_plane")
    _compile(source)
    rng = np.random.default_rng(14)
    worst = 0.0
    for shape, p, eps in KERNEL_CASES:
        x = (rng.normal(size=shape) * 2).astype(np.float32)  # half negative: the clamp matters
        case = _("input {shape} (H·W = {hw}), p={p:g}, eps={eps:g}").format(shape=shape, hw=shape[2] * shape[3],
                                                                           p=p, eps=eps)
        try:
            got = evaluate_gem_plane(source, x.reshape(shape[0] * shape[1], -1), p, eps).astype(np.float64)
        except Untranslatable as what:
            raise Mismatch(_("it compiles, but the CPU check cannot evaluate {what}. Keep to declarations, "
                             "assignments, for/while/if and return, as the hints do").format(what=what)) from None
        tol = gem_tolerance(x, p, eps, "cpu")
        ref = _gem64(x, p, eps)
        if not np.all(np.isfinite(got)) or np.any(np.abs(got - ref) > tol * np.abs(ref)):
            raise _diagnose(got, x, p, eps, tol, case)
        worst = max(worst, float(np.max(np.abs(got - ref) / (tol * np.abs(ref)))))
    note = _("matches the float64 reference on {count} shapes and p values, evaluated warp by warp on the CPU "
             "(largest error {worst:.0%} of the float32 bound)").format(count=len(KERNEL_CASES), worst=worst)
    if capabilities().cupy_runs_kernels:
        return note + "; " + _gpu_run(source)
    return note + _("; compiled with NVRTC (no GPU here: the kernel itself was not run)")


def _gpu_run(source: str) -> str:
    from trtlab.plugins import kernel

    rng = np.random.default_rng(15)
    for shape, p, eps in KERNEL_CASES + [((64, 512, 7, 7), 3.0, 1e-6)]:
        x = (rng.normal(size=shape) * 2).astype(np.float32)
        got = kernel.gem_pool_gpu(x, p, eps, gem_plane=source).get().ravel().astype(np.float64)
        tol = gem_tolerance(x, p, eps, "gpu")
        ref = _gem64(x, p, eps)
        if not np.all(np.isfinite(got)) or np.any(np.abs(got - ref) > tol * np.abs(ref)):
            raise _diagnose(got, x, p, eps, tol, _("on the GPU, input {shape}, p={p:g}, eps={eps:g}").format(
                shape=shape, p=p, eps=eps))
    return _("the real kernel with your gem_plane matches it on the GPU ({count} shapes)").format(
        count=len(KERNEL_CASES) + 1)


# ---------------------------------------------------------------- the ONNX Runtime compute function


#: (shape, p, eps): odd H·W, p = 1 and 2.5, a clamping eps; the inputs hold negatives and zeros.
ORT_CASES = [((2, 3, 5, 7), 3.0, 1e-6), ((1, 8, 1, 1), 1.0, 1e-6), ((3, 4, 4, 4), 2.5, 0.25)]


def _ort_session(p: float, eps: float) -> Any:
    """A one-node model of the candidate op (it runs the function given to ``ort.use_candidate``)."""
    from onnx import TensorProto, helper

    from trtlab.plugins import ONNX_DOMAIN

    node = helper.make_node(ort.CANDIDATE_OP, ["x"], ["y"], domain=ONNX_DOMAIN, p=float(p), eps=float(eps))
    graph = helper.make_graph([node], "gem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "C", "H", "W"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "C", 1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(ONNX_DOMAIN, 1)])
    model.ir_version = 10  # the onnx package's newest IR can be newer than the installed ONNX Runtime reads
    return ort.session(model)


def _check_direct(fn: Callable[..., Any], x: np.ndarray, p: float, eps: float) -> None:
    """Call the function directly first: ONNX Runtime converts whatever comes back, hiding dtype mistakes."""
    got = fn(x, p=p, eps=eps)
    expected_shape = (x.shape[0], x.shape[1], 1, 1)
    if not isinstance(got, np.ndarray):
        raise Mismatch(_("your function returned a {kind}; return a NumPy array").format(kind=type(got).__name__))
    if got.dtype != np.float32:
        raise Mismatch(_("for a float32 input your function returns {dtype}: the custom op declares a float output "
                         "(dt_float), so return float32 (.astype(np.float32) after computing in float64)").format(
                             dtype=got.dtype))
    if got.shape == (x.shape[0], x.shape[1]):
        raise Mismatch(_("for input {shape} your output is {got}: keepdims is missing. The node's output is N×C×1×1 "
                         "like GlobalAveragePool: mean(..., axis=(2, 3), keepdims=True)").format(shape=x.shape,
                                                                                                got=got.shape))
    if got.shape != expected_shape:
        raise Mismatch(_("for input {shape} your output is {got}, expected {expected}: reduce over H and W, the axes "
                         "(2, 3), and keep them (keepdims=True)").format(shape=x.shape, got=got.shape,
                                                                         expected=expected_shape))


@exercise("lab05.ort_compute", title=N_("The ONNX Runtime custom op's compute function"), hints=(
    N_("onnxruntime-extensions calls your function with the node's input as a NumPy array and its attributes p and "
       "eps as keyword arguments; what it returns becomes the node's output."),
    N_("Clamp with np.maximum(x, eps), raise to p, average over H and W (axis=(2, 3)) keeping them, take the 1/p "
       "root; compute in float64 and return float32."),
    N_("v = np.maximum(x.astype(np.float64), eps) ** p; return (v.mean(axis=(2, 3), keepdims=True) ** (1.0 / p))"
       ".astype(np.float32)"),
), time_limit_s=60)  # measured ~0.3 s: three one-node ONNX Runtime sessions
def ort_compute(fn: Callable[..., Any]) -> str:
    """The function directly (dtype, shape), then as the kernel of a one-node model in ONNX Runtime on ``ORT_CASES``,
    against the float64 reference rounded once to float32 (2 float32 ulps)."""
    rng = np.random.default_rng(16)
    for shape, p, eps in ORT_CASES:
        x = (rng.normal(size=shape) * 2).astype(np.float32)
        x.flat[::5] = 0.0  # ReLU zeros: clamped to eps
        _check_direct(fn, x, p, eps)
        ort.use_candidate(fn)
        try:
            got = _ort_session(p, eps).run(None, {"x": x})[0].astype(np.float64)
        finally:
            ort.use_candidate(None)
        ref = _gem64(x, float(np.float32(p)), float(np.float32(eps))).reshape(shape[0], shape[1], 1, 1)
        case = _("input {shape}, p={p:g}, eps={eps:g}").format(shape=shape, p=p, eps=eps)
        if got.shape != ref.shape:
            raise Mismatch(_("{case}: ONNX Runtime returned {got}, expected {expected}").format(
                case=case, got=got.shape, expected=ref.shape))
        if np.any(np.abs(got - ref) > 4 * U * np.abs(ref)):
            tol = np.full(ref.size, 4 * U)
            raise _diagnose(got.ravel(), x, p, eps, tol, _("{case} (through ONNX Runtime)").format(case=case),
                            ORT_TAIL)
    return _("ONNX Runtime ran your function as the {op} custom op ({plugin}'s twin) on {count} inputs: N×C×1×1, "
             "float32, within 2 float32 ulps of the float64 reference").format(op=ort.CANDIDATE_OP, plugin=PLUGIN_NAME,
                                                                               count=len(ORT_CASES))
