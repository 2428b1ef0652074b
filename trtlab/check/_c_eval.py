"""A tiny interpreter of the C arithmetic in Lab 04's ``bilinear_taps``, so the checker can run a learner's CUDA C
on the CPU: it evaluates the function body (declarations and assignments of int/float/double with + - * / %, casts
and a few math functions) over NumPy arrays, following C's promotion, integer division and float-to-int truncation.

Checker-private: only :mod:`trtlab.check.lab04` uses it. Anything outside that subset raises :class:`Untranslatable`
with what was not understood; a body that is wrong in C terms (division by zero, an output never written, an output
read before it is written) raises :class:`~trtlab.check.Mismatch`.
"""

from __future__ import annotations

import re
import tokenize
from io import StringIO
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, NotDone
from trtlab.i18n import _

__all__ = ["SIGNATURE", "Untranslatable", "evaluate_taps"]

SIGNATURE = "__device__ void bilinear_taps(int dst, float scale, int size, int* i0, int* i1, float* w1)"



class Untranslatable(Exception):
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
            raise Mismatch(_("your code divides an int by zero for some input (C would crash or give garbage)"))
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
    # a*b of two floats is exact in float64, so these round (almost exactly) once, as a fused multiply-add does
    "fmaf": _fn("f", lambda a, b, c: a * b + c), "fma": _fn("d", lambda a, b, c: a * b + c),
}
_TYPES = {"int": "i", "float": "f", "double": "d"}
_PARAMS = {"dst": "i", "scale": "f", "size": "i"}
_OUTPUTS = {"i0": "i", "i1": "i", "w1": "f"}


def exercise_source(source: Any, function: str) -> str:
    """A CUDA C exercise answer as the checkers need it: a string, no lab placeholder left, markers blanked."""
    from trtlab.kernels import clean_exercise_source

    if not isinstance(source, str):
        raise Mismatch(_("expected the CUDA C source of {function} as a string, got {kind}").format(
            function=function, kind=type(source).__name__))
    if "NotImplementedError" in source:
        raise NotDone(_("the string still holds the `NotImplementedError` placeholder of the lab"))
    return clean_exercise_source(source)


def _strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def _body(source: str) -> str:
    text = _strip_comments(source)
    head = re.search(r"bilinear_taps\s*\(([^)]*)\)\s*\{", text)
    if not head:
        raise Mismatch(_("no function bilinear_taps found; keep the signature `{signature}` and write the "
                         "body").format(signature=SIGNATURE))
    params = [" ".join(p.replace("*", " * ").split()) for p in head.group(1).split(",") if p.strip()]
    expected = ["int dst", "float scale", "int size", "int * i0", "int * i1", "float * w1"]
    if params != expected:
        raise Mismatch(_("bilinear_taps is declared with ({params}); keep the signature `{signature}` (the kernel "
                         "calls it with exactly these types)").format(params=", ".join(params), signature=SIGNATURE))
    body = text[head.end():]
    return body[: body.rfind("}")]


def _expression(expr: str, known: dict[str, str]) -> str:
    """C arithmetic → Python over _C values (casts become ``_INT **``, literals keep their C type)."""
    if re.search(r"\?|&&|\|\||[^<>=!]=[^=]|\+\+|--|\[", expr):
        raise Untranslatable(_("`{expression}` (the CPU check understands + - * / %, casts, comparisons and "
                               "floorf/fminf/fmaxf/min/max...; no ?:, &&, ||, ++, arrays)").format(
                                   expression=expr.strip()))
    expr = re.sub(r"static_cast\s*<\s*(int|float|double)\s*>", r"(\1)", expr)
    original = expr.strip()
    expr = _dereference_outputs(expr)
    expr = re.sub(r"\(\s*(int|float|double)\s*\)", lambda m: f" _{m.group(1).upper()}**", expr).strip()
    tokens = []
    try:
        for tok in tokenize.generate_tokens(StringIO(expr).readline):
            tokens.append(tok)
    except (tokenize.TokenError, SyntaxError) as err:
        raise Untranslatable(f"`{original}` ({err})") from None
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
                raise Untranslatable(_("`{name}` in `{expression}` (not a parameter, a local variable or a "
                                       "function the CPU check knows: {known})").format(
                                           name=name, expression=original, known=", ".join(sorted(_FUNCTIONS))))
            out.append(name)
        elif tok.type == tokenize.OP:
            out.append(tok.string)
        elif tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        else:
            raise Untranslatable(f"`{original}`")
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
            raise Untranslatable(_("`{statement}` (write the body as plain assignments: `float src = ...;`, "
                                   "`*i0 = ...;`; use fminf/fmaxf/min/max instead of if)").format(
                                       statement=statement))
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
            raise Untranslatable(f"`{statement}`")
        star, name, op, expr = m.groups()
        code = _expression(_fix_float_suffix(expr), known)
        if star:
            if name not in _OUTPUTS:
                raise Untranslatable(_("`{statement}` (only *i0, *i1 and *w1 are outputs)").format(
                    statement=statement))
            current = outputs.get(name)
            value = _C.wrap(eval(code, {"__builtins__": {}}, env))
            if op:
                if current is None:
                    raise Mismatch(_("`{statement}` reads *{name} before writing it (uninitialised memory)").format(
                        statement=statement, name=name))
                value = eval(f"a {op} b", {}, {"a": _C(current, _OUTPUTS[name]), "b": value})
            outputs[name] = _convert(value, _OUTPUTS[name]).v
            env[f"out_{name}"] = _C(outputs[name], _OUTPUTS[name])
            known[f"out_{name}"] = _OUTPUTS[name]
        else:
            if name not in known:
                raise Untranslatable(_("`{statement}` assigns to `{name}`, which was not declared").format(
                    statement=statement, name=name))
            value = _C.wrap(eval(code, {"__builtins__": {}}, env))
            if op:
                value = eval(f"a {op} b", {}, {"a": env[name], "b": value})
            env[name] = _convert(value, known[name])
    missing = [n for n in _OUTPUTS if n not in outputs]
    if missing:
        raise Mismatch(_("bilinear_taps never writes {missing}: the kernel would read uninitialised values. Assign "
                         "all three outputs.").format(missing=", ".join("*" + n for n in missing)))
    return {n: np.broadcast_to(outputs[n], dst.shape).copy() for n in _OUTPUTS}
