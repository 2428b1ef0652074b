"""Lab 04 exercises: the index math of the bilinear sample (CUDA C) and the launch configuration.

Both are checked on every machine. The CUDA C of ``bilinear_taps`` is compiled with NVRTC (errors come back with
the line numbers of your text) and, because it is only arithmetic, also evaluated on the CPU by a tiny
interpreter of that C subset, so wrong indexing is caught without a GPU. With a GPU, your function is also
compiled into the real pre-processing kernel and its output compared with the NumPy reference.
"""

from __future__ import annotations

import re
import tokenize
from io import StringIO
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, exercise

__all__ = ["bilinear_taps", "launch_config"]

SIGNATURE = "__device__ void bilinear_taps(int dst, float scale, int size, int* i0, int* i1, float* w1)"
#: (input size, output size) pairs: up- and downscales, identity, odd sizes, 1-pixel edges, 1080p → 224.
SIZE_CASES = ((4, 10), (10, 4), (7, 7), (3, 8), (8, 3), (5, 1), (1, 5), (1080, 224), (640, 480), (224, 1080),
              (1920, 960), (13, 6))

_HARNESS = """
extern "C" __global__ void check_bilinear_taps(const int* dst, float scale, int size, int* i0, int* i1, float* w1,
                                               int n) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t < n) bilinear_taps(dst[t], scale, size, i0 + t, i1 + t, w1 + t);
}
"""


# ---------------------------------------------------------------- a tiny interpreter of C arithmetic


class _Untranslatable(Exception):
    """The C text uses something the CPU check does not evaluate (if, ?:, loops, unknown functions)."""


_RANK = {"i": 0, "f": 1, "d": 2}
_DTYPE = {"i": np.int32, "f": np.float32, "d": np.float64}


class _C:
    """A C value (int, float or double) over a NumPy array, with C's promotion and integer division rules."""

    __array_priority__ = 1000

    def __init__(self, value: Any, kind: str) -> None:
        self.kind = kind
        self.v = np.asarray(value).astype(_DTYPE[kind])

    @staticmethod
    def wrap(x: Any) -> "_C":
        if isinstance(x, _C):
            return x
        if isinstance(x, (bool, int, np.integer)):
            return _C(x, "i")
        return _C(x, "d")

    def _binary(self, other: Any, op: Callable, reverse: bool = False) -> "_C":
        a, b = (_C.wrap(other), self) if reverse else (self, _C.wrap(other))
        kind = max(a.kind, b.kind, key=_RANK.__getitem__)
        with np.errstate(all="ignore"):
            return _C(op(a.v.astype(_DTYPE[kind]), b.v.astype(_DTYPE[kind])), kind)

    def __add__(self, o: Any) -> "_C": return self._binary(o, np.add)
    def __radd__(self, o: Any) -> "_C": return self._binary(o, np.add, True)
    def __sub__(self, o: Any) -> "_C": return self._binary(o, np.subtract)
    def __rsub__(self, o: Any) -> "_C": return self._binary(o, np.subtract, True)
    def __mul__(self, o: Any) -> "_C": return self._binary(o, np.multiply)
    def __rmul__(self, o: Any) -> "_C": return self._binary(o, np.multiply, True)
    def __truediv__(self, o: Any) -> "_C": return self._binary(o, _c_div)
    def __rtruediv__(self, o: Any) -> "_C": return self._binary(o, _c_div, True)
    def __mod__(self, o: Any) -> "_C": return self._binary(o, np.fmod)
    def __rmod__(self, o: Any) -> "_C": return self._binary(o, np.fmod, True)
    def __neg__(self) -> "_C": return _C(-self.v, self.kind)
    def __pos__(self) -> "_C": return self
    def __lt__(self, o: Any) -> "_C": return _C(self._binary(o, np.less).v, "i")
    def __le__(self, o: Any) -> "_C": return _C(self._binary(o, np.less_equal).v, "i")
    def __gt__(self, o: Any) -> "_C": return _C(self._binary(o, np.greater).v, "i")
    def __ge__(self, o: Any) -> "_C": return _C(self._binary(o, np.greater_equal).v, "i")


def _c_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "i":
        if np.any(b == 0):
            raise Mismatch("your code divides an int by zero for some input (C would crash or give garbage)")
        return np.trunc(a / b).astype(a.dtype)  # C: integer division truncates toward zero
    return a / b


class _Cast:
    """``(int)x`` is translated to ``_INT ** x``: ** binds tighter than * / + -, like a C cast."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __pow__(self, x: Any) -> _C:
        return _convert(_C.wrap(x), self.kind)


def _convert(x: _C, kind: str) -> _C:
    if kind == "i" and x.kind != "i":
        with np.errstate(all="ignore"):
            return _C(np.trunc(x.v), "i")  # C: float -> int truncates toward zero
    return _C(x.v, kind)


def _fn(kind: str | None, op: Callable) -> Callable[..., _C]:
    def call(*args: Any) -> _C:
        values = [_C.wrap(a) for a in args]
        k = kind or max((v.kind for v in values), key=_RANK.__getitem__)
        return _C(op(*(v.v.astype(np.float64) for v in values)), k)
    return call


def _to_int(op: Callable) -> Callable[[Any], _C]:
    return lambda x: _C(op(_C.wrap(x).v.astype(np.float64)), "i")


_FUNCTIONS: dict[str, Any] = {
    "floorf": _fn("f", np.floor), "floor": _fn("d", np.floor), "ceilf": _fn("f", np.ceil), "ceil": _fn("d", np.ceil),
    "truncf": _fn("f", np.trunc), "roundf": _fn("f", lambda x: np.sign(x) * np.floor(np.abs(x) + 0.5)),
    "rintf": _fn("f", np.rint), "fabsf": _fn("f", np.abs), "fminf": _fn("f", np.fmin), "fmaxf": _fn("f", np.fmax),
    "fmin": _fn("d", np.fmin), "fmax": _fn("d", np.fmax), "min": _fn(None, np.minimum), "max": _fn(None, np.maximum),
    "abs": _fn(None, np.abs), "__float2int_rd": _to_int(np.floor), "__float2int_rz": _to_int(np.trunc),
    "__float2int_rn": _to_int(np.rint), "__float2int_ru": _to_int(np.ceil),
    "__int2float_rn": _fn("f", lambda x: x),
}
_TYPES = {"int": "i", "float": "f", "double": "d"}
_PARAMS = {"dst": "i", "scale": "f", "size": "i"}
_OUTPUTS = {"i0": "i", "i1": "i", "w1": "f"}


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _body(source: str) -> str:
    text = _strip_comments(source)
    head = re.search(r"bilinear_taps\s*\(([^)]*)\)\s*\{", text)
    if not head:
        raise Mismatch(f"no function bilinear_taps found; keep the signature `{SIGNATURE}` and write the body")
    params = [" ".join(p.replace("*", " * ").split()) for p in head.group(1).split(",") if p.strip()]
    expected = ["int dst", "float scale", "int size", "int * i0", "int * i1", "float * w1"]
    if params != expected:
        raise Mismatch(f"bilinear_taps is declared with ({', '.join(params)}); keep the signature `{SIGNATURE}` "
                       "(the kernel calls it with exactly these types)")
    body = text[head.end():]
    return body[: body.rfind("}")]


def _expression(expr: str, known: dict[str, str]) -> str:
    """C arithmetic → Python over _C values (casts become ``_INT **``, literals keep their C type)."""
    if re.search(r"\?|&&|\|\||[^<>=!]=[^=]|\+\+|--|\[", expr):
        raise _Untranslatable(f"`{expr.strip()}` (the CPU check understands + - * / %, casts, comparisons and "
                              "floorf/fminf/fmaxf/min/max...; no ?:, &&, ||, ++, arrays)")
    expr = re.sub(r"static_cast\s*<\s*(int|float|double)\s*>", r"(\1)", expr)
    original = expr.strip()
    expr = _dereference_outputs(expr)
    expr = re.sub(r"\(\s*(int|float|double)\s*\)", lambda m: f" _{m.group(1).upper()}**", expr).strip()
    tokens = []
    try:
        for tok in tokenize.generate_tokens(StringIO(expr).readline):
            tokens.append(tok)
    except (tokenize.TokenError, SyntaxError) as err:
        raise _Untranslatable(f"`{original}` ({err})") from None
    out = []
    for tok in tokens:
        if tok.type == tokenize.NUMBER:
            out.append(f"_C.wrap({tok.string})" if re.fullmatch(r"\d+", tok.string) else f"_C({tok.string}, 'd')")
        elif tok.type == tokenize.NAME:
            name = tok.string
            if out and out[-1].startswith("_C(") and name == "f":  # 0.5f (see _fix_float_suffix): a float literal
                out[-1] = out[-1].replace("'d'", "'f'")
                continue
            if name not in known and name not in _FUNCTIONS and name not in ("_INT", "_FLOAT", "_DOUBLE"):
                raise _Untranslatable(f"`{name}` in `{original}` (not a parameter, a local variable or a "
                                      f"function the CPU check knows: {', '.join(sorted(_FUNCTIONS))})")
            out.append(name)
        elif tok.type == tokenize.OP:
            out.append(tok.string)
        elif tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        else:
            raise _Untranslatable(f"`{original}`")
    return " ".join(out)


def _dereference_outputs(expr: str) -> str:
    """``*i0`` read back inside an expression (a unary *, not a product) → the variable ``out_i0``."""
    parts, last = [], 0
    for m in re.finditer(r"\*\s*(i0|i1|w1)\b", expr):
        before = expr[:m.start()].rstrip()
        if not before or not (before[-1].isalnum() or before[-1] in "_)]."):
            parts += [expr[last:m.start()], f" out_{m.group(1)}"]
            last = m.end()
    return "".join(parts) + expr[last:]


def _fix_float_suffix(c_expr: str) -> str:
    """``0.5f`` / ``1.f`` / ``2e-3f`` → ``0.5 f`` so Python's tokenizer sees a number, then a marker name."""
    return re.sub(r"((?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)[fF]\b", r"\1 f", c_expr)


def evaluate_taps(source: str, dst: np.ndarray, scale: float, size: int) -> dict[str, np.ndarray]:
    """Run the learner's ``bilinear_taps`` body on the CPU for every ``dst`` at once."""
    known = dict(_PARAMS)
    env: dict[str, Any] = {"_C": _C, "_INT": _Cast("i"), "_FLOAT": _Cast("f"), "_DOUBLE": _Cast("d"), **_FUNCTIONS,
                           "dst": _C(dst, "i"), "scale": _C(np.float32(scale), "f"), "size": _C(size, "i")}
    outputs: dict[str, np.ndarray] = {}
    for statement in _body(source).split(";"):
        statement = statement.strip()
        if not statement:
            continue
        if re.match(r"^(if|for|while|do|switch|return)\b", statement) or "{" in statement or "}" in statement:
            raise _Untranslatable(f"`{statement}` (write the body as plain assignments: `float src = ...;`, "
                                  "`*i0 = ...;`; use fminf/fmaxf/min/max instead of if)")
        m = re.match(r"^(?:const\s+)?(int|float|double|auto)\s+(\w+)\s*=\s*(.+)$", statement, re.S)
        if m:
            kind_name, name, expr = m.groups()
            value = _C.wrap(eval(_expression(_fix_float_suffix(expr), known), {"__builtins__": {}}, env))
            kind = value.kind if kind_name == "auto" else _TYPES[kind_name]
            known[name] = kind
            env[name] = _convert(value, kind)
            continue
        m = re.match(r"^(\*?)\s*(\w+)\s*([-+*/]?)=\s*(.+)$", statement, re.S)
        if not m:
            raise _Untranslatable(f"`{statement}`")
        star, name, op, expr = m.groups()
        code = _expression(_fix_float_suffix(expr), known)
        if star:
            if name not in _OUTPUTS:
                raise _Untranslatable(f"`{statement}` (only *i0, *i1 and *w1 are outputs)")
            current = outputs.get(name)
            value = _C.wrap(eval(code, {"__builtins__": {}}, env))
            if op:
                if current is None:
                    raise Mismatch(f"`{statement}` reads *{name} before writing it (uninitialised memory)")
                value = eval(f"a {op} b", {}, {"a": _C(current, _OUTPUTS[name]), "b": value})
            outputs[name] = _convert(value, _OUTPUTS[name]).v
            env[f"out_{name}"] = _C(outputs[name], _OUTPUTS[name])
            known[f"out_{name}"] = _OUTPUTS[name]
        else:
            if name not in known:
                raise _Untranslatable(f"`{statement}` assigns to `{name}`, which was not declared")
            value = _C.wrap(eval(code, {"__builtins__": {}}, env))
            if op:
                value = eval(f"a {op} b", {}, {"a": env[name], "b": value})
            env[name] = _convert(value, known[name])
    missing = [n for n in _OUTPUTS if n not in outputs]
    if missing:
        raise Mismatch(f"bilinear_taps never writes {', '.join('*' + n for n in missing)}: the kernel would read "
                       "uninitialised values. Assign all three outputs.")
    return {n: np.broadcast_to(outputs[n], dst.shape).copy() for n in _OUTPUTS}


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


_DIAGNOSES = {
    "top-left": ("you map output pixel d to input coordinate d * scale: that aligns pixel corners, not centres, and "
                 "shifts the image by half a pixel (the tensorrtx / OpenCV mismatch). Centres line up when "
                 "src = (d + 0.5) * scale - 0.5."),
    "align_corners": ("you used torch's align_corners=True convention (first and last pixels aligned); OpenCV "
                      "INTER_LINEAR and torch's default align_corners=False align pixel centres: "
                      "src = (d + 0.5) * scale - 0.5."),
    "swapped": "the weights are swapped: *w1 is the weight of *i1, the pixel to the right, so it grows with "
               "src - i0; yours shrinks.",
}


def _compile_taps(source: str) -> None:
    from trtlab.kernels import compile_source

    result = compile_source(source + "\n" + _HARNESS, name="bilinear_taps.cu")
    if result:
        return
    n_lines = source.count("\n") + 1
    inside = [(line, msg) for line, msg in result.errors if line <= n_lines]
    if inside:
        listing = "\n".join(f"  line {line}: {msg}" for line, msg in inside)
        raise Mismatch(f"NVRTC does not compile your CUDA C:\n{listing}\n(line numbers count from the first line "
                       "of your string; a missing `;` is reported on the next line)")
    raise Mismatch(f"your function compiles, but a kernel cannot call it as `{SIGNATURE}`: "
                   f"{result.errors[0][1] if result.errors else result.log.strip()[:200]}. Keep the signature.")


@exercise("lab04.bilinear_taps", title="The index math of the bilinear sample (CUDA C)", hints=(
    "Output pixel d covers the interval [d, d + 1) of the output; its centre is d + 0.5. Map that centre into "
    "input units, then measure from the centre of input pixel 0.",
    "src = (dst + 0.5f) * scale - 0.5f. OpenCV and torch clamp a negative src to 0 (fmaxf), take i0 = (int)src "
    "(no larger than size - 1), i1 = i0 + 1 clamped to size - 1, and w1 = src - i0.",
    "float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f); int lo = min((int)src, size - 1); then *i0 = lo; "
    "*i1 = min(lo + 1, size - 1); *w1 = src - lo;",
))
def bilinear_taps(source: str) -> str:
    """Check the learner's CUDA C ``bilinear_taps``: NVRTC compile, CPU evaluation, GPU run when possible."""
    from trtlab.env import capabilities

    if not isinstance(source, str):
        raise Mismatch(f"expected the CUDA C source of bilinear_taps as a string, got {type(source).__name__}")
    if "NotImplementedError" in source:
        raise NotImplementedError
    from trtlab.kernels import clean_exercise_source

    source = clean_exercise_source(source)
    _compile_taps(source)
    worst = 0.0
    for size, out_size in SIZE_CASES:
        d = np.arange(out_size)
        scale = float(np.float32(size / out_size))
        try:
            got = evaluate_taps(source, d, scale, size)
        except _Untranslatable as what:
            raise Mismatch(f"it compiles, but the CPU check cannot evaluate {what}. Keep to plain assignments "
                           "and arithmetic, as the hints do.") from None
        i0, i1, w1 = got["i0"], got["i1"], got["w1"]
        for name, idx in (("*i0", i0), ("*i1", i1)):
            bad = np.flatnonzero((idx < 0) | (idx >= size))
            if bad.size:
                b = int(bad[0])
                raise Mismatch(f"reads outside the image: input size {size}, output size {out_size}, output index "
                               f"{b}: {name} = {int(idx[b])}, but valid indices are 0..{size - 1}. Clamp at the "
                               "edges (min(…, size - 1); fmaxf(src, 0.0f)), as OpenCV and torch do.")
        if not np.all(np.isfinite(w1)):
            raise Mismatch(f"*w1 is NaN or inf (input size {size}, output size {out_size})")
        mine = _weights(i0.astype(int), i1.astype(int), w1.astype(np.float64), size)
        from trtlab.kernels import bilinear_taps_ref

        expected = _weights(*bilinear_taps_ref(d, scale, size), size)
        if np.any(mine < -1e-6) or np.any(mine > 1 + 1e-6):
            b = int(np.argwhere((mine < -1e-6) | (mine > 1 + 1e-6))[0][0])
            raise Mismatch(f"a weight outside [0, 1] (input size {size}, output size {out_size}, output index {b}: "
                           f"i0={int(i0[b])}, i1={int(i1[b])}, w1={float(w1[b]):.3f}): the source coordinate went "
                           "below 0 at the edge. Clamp it with fmaxf(src, 0.0f) before taking i0, as OpenCV does.")
        err = np.abs(mine - expected).max(axis=1)
        worst = max(worst, float(err.max()))
        if err.max() > 1e-4:
            for name, wrong in _conventions(out_size, size).items():
                if np.abs(mine - wrong).max() < 1e-4:
                    raise Mismatch(f"input size {size} → output size {out_size}: {_DIAGNOSES[name]}")
            b = int(np.argmax(err))
            raise Mismatch(f"input size {size} → output size {out_size}, output index {b}: you blend input pixels "
                           f"{int(i0[b])} and {int(i1[b])} with w1={float(w1[b]):.4f}; expected "
                           f"{_describe(expected[b])}. Compare with src = (dst + 0.5) * scale - 0.5.")
    note = f"matches OpenCV INTER_LINEAR index math on {len(SIZE_CASES)} size pairs (max weight error {worst:.1e})"
    if capabilities().cupy_runs_kernels:
        note += "; " + _gpu_taps(source)
    else:
        note += "; compiled with NVRTC (no GPU here: the kernel itself was not run)"
    return note


def _describe(row: np.ndarray) -> str:
    nz = np.flatnonzero(row > 1e-9)
    return " + ".join(f"{row[i]:.4f}·pixel {i}" for i in nz)


def _gpu_taps(source: str) -> str:
    import skimage.data

    from trtlab import kernels
    from trtlab.check import assert_close

    image = np.ascontiguousarray(skimage.data.chelsea()[:, :, ::-1])
    for out_hw in ((224, 224), (480, 640)):
        got = kernels.preprocess(image, out_hw, bilinear_taps=source).get()
        assert_close(got, kernels.preprocess_ref(image, out_hw), rtol=0, atol=1e-4,
                     name=f"pre-processed chelsea at {out_hw} (GPU, your bilinear_taps)")
    return "the real kernel with your function matches the NumPy reference on the GPU (atol 1e-4)"


# ---------------------------------------------------------------- exercise 2: launch configuration


@exercise("lab04.launch_config", title="The launch configuration of the pre-processing kernel", hints=(
    "One thread per output pixel... almost: each thread writes `pixels_per_thread` pixels of a row, "
    "blockDim.x apart. x runs along the width (coalesced stores), y along the height, z over the batch.",
    "Round up, or the last partial tile is never written: ceil(a / b) = (a + b - 1) // b. Along x one block "
    "covers block[0] * pixels_per_thread pixels; z must be exactly the batch (the kernel does not check n).",
    "grid = (ceil(out_w / (bx * pixels_per_thread)), ceil(out_h / by), batch); block = (bx, by, 1)",
))
def launch_config(fn: Callable[..., Any]) -> str:
    from trtlab.env import capabilities

    cases = [(1, (224, 224), (32, 8), 2), (32, (224, 224), (32, 8), 1), (3, (225, 223), (32, 8), 2),
             (2, (1080, 1920), (32, 8), 4), (5, (7, 5), (16, 16), 1), (1, (640, 640), (64, 4), 2),
             (4, (33, 65), (32, 4), 2)]
    for batch, (h, w), block, ppt in cases:
        result = fn(batch, (h, w), block=block, pixels_per_thread=ppt)
        try:
            grid, blk = result
            grid, blk = tuple(int(g) for g in grid), tuple(int(b) for b in blk)
        except (TypeError, ValueError):
            raise Mismatch(f"expected (grid, block) as two tuples, got {result!r}") from None
        grid = grid + (1,) * (3 - len(grid))
        blk = blk + (1,) * (3 - len(blk))
        where = f"batch {batch}, output {h}×{w}, block {block}, {ppt} pixels per thread"
        if blk != (*block, 1):
            raise Mismatch(f"{where}: block {blk}, expected {(*block, 1)}: use the block you were given (its x "
                           "runs along the row, so neighbouring threads write neighbouring pixels)")
        gx, gy, gz = grid
        expected = (-(-w // (block[0] * ppt)), -(-h // block[1]))
        if (gx, gy) != expected and (gx, gy) == (-(-h // (block[0] * ppt)), -(-w // block[1])):
            raise Mismatch(f"{where}: grid {grid} seems to have x and y swapped: grid x must cover the width "
                           f"({w}), grid y the height ({h})")
        if gx * block[0] * ppt < w or gy * block[1] < h:
            cols = max(w - gx * block[0] * ppt, 0)
            rows = max(h - gy * block[1], 0)
            raise Mismatch(f"{where}: grid {grid} leaves {cols} column(s) and {rows} row(s) of the output "
                           "unwritten: round the division up, and remember each thread covers "
                           f"{ppt} pixel(s) along x")
        if gz != batch:
            raise Mismatch(f"{where}: grid z is {gz}, expected the batch size {batch} (blockIdx.z is the image "
                           "index; more would write past the output, fewer would leave images unwritten)")
        if gx * block[0] * ppt >= w + block[0] * ppt or gy * block[1] >= h + block[1]:
            raise Mismatch(f"{where}: grid {grid} launches whole blocks that have no pixel to write"
                           + (f" (did you forget that each thread writes {ppt} pixels?)" if ppt > 1 else "")
                           + "; use the smallest grid that covers the output")
    note = f"covers the output exactly in {len(cases)} cases"
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
    assert_close(out, kernels.preprocess_ref(image, out_hw), rtol=0, atol=1e-4,
                 name="pre-processed coffee, launched with your configuration (GPU)")
    return "the kernel launched with it writes every pixel correctly on the GPU"
