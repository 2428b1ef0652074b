"""A warp interpreter for Lab 05's ``gem_plane`` device function, so the checker can run a learner's CUDA C on the CPU.

It runs the function body for many (n, c) planes × 32 lanes at once, as a GPU warp does (SIMT): every value is a
NumPy array over (plane, lane), ``if``/``for``/``while``/``return`` work with per-lane masks, ``x[i]`` is a bounds-checked
load, and ``__shfl_down_sync`` / ``__shfl_xor_sync`` / ``__shfl_sync`` exchange values between the lanes of a warp,
refusing to run when lanes have diverged (undefined on a GPU). Arithmetic follows C (float32, integer division,
casts) through :mod:`trtlab.check._c_eval`'s value type. Checker-private: only :mod:`trtlab.check.lab05` uses it.
"""

from __future__ import annotations

import re
import tokenize
from io import StringIO
from typing import Any

import numpy as np

from trtlab.check import Mismatch
from trtlab.check._c_eval import (_FUNCTIONS, _TYPES, Untranslatable, _C, _Cast, _convert, _fix_float_suffix, _fn,
                                  _strip_comments)
from trtlab.i18n import _

__all__ = ["GEM_SIGNATURE", "evaluate_gem_plane"]

GEM_SIGNATURE = "__device__ float gem_plane(const float* __restrict__ x, int hw, float p, float eps, int lane)"
WARP = 32
MAX_STEPS = 5_000  # loop iterations in one call: the checker's largest plane needs 17 + 5


def _powf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.power(a, b)


_MATH = {**_FUNCTIONS, "powf": _fn("f", _powf), "__powf": _fn("f", _powf), "pow": _fn("d", _powf),
         "expf": _fn("f", np.exp), "__expf": _fn("f", np.exp), "logf": _fn("f", np.log), "__logf": _fn("f", np.log),
         "exp2f": _fn("f", np.exp2), "log2f": _fn("f", np.log2), "__log2f": _fn("f", np.log2),
         "sqrtf": _fn("f", np.sqrt), "__fdividef": _fn("f", lambda a, b: a / b)}
_FULL_MASK = 0xFFFFFFFF


class _Warp:
    """Execution state: variables over (plane, lane), the active-lane mask, and what each lane returned."""

    def __init__(self, x: np.ndarray, p: float, eps: float) -> None:
        planes, self.hw = x.shape
        self.x = x.astype(np.float32)
        shape = (planes, WARP)
        self.vars: dict[str, _C] = {
            "hw": _C(np.full(shape, self.hw), "i"), "p": _C(np.full(shape, np.float32(p)), "f"),
            "eps": _C(np.full(shape, np.float32(eps)), "f"), "lane": _C(np.broadcast_to(np.arange(WARP), shape), "i"),
            "WARP": _C(np.full(shape, WARP), "i"), "warpSize": _C(np.full(shape, WARP), "i")}
        self.kinds = {name: value.kind for name, value in self.vars.items()}
        self.mask = np.ones(shape, bool)
        self.done = np.zeros(shape, bool)
        self.result = np.full(shape, np.nan, np.float32)
        self.steps = 0

    @property
    def active(self) -> np.ndarray:
        return self.mask & ~self.done

    # -- functions the body may call
    def load(self, index: Any) -> _C:
        idx = np.broadcast_to(_C.wrap(index).v, self.active.shape).astype(np.int64)
        act = self.active
        bad = act & ((idx < 0) | (idx >= self.hw))
        if bad.any():
            plane, lane = (int(v) for v in np.argwhere(bad)[0])
            raise Mismatch(_("lane {lane} reads x[{index}], outside the plane (valid: x[0] .. x[{last}] for hw = "
                             "{hw}): on a GPU that reads another plane's values or faults. Stop the loop at i < "
                             "hw").format(lane=lane, index=int(idx[plane, lane]), last=self.hw - 1, hw=self.hw))
        safe = np.where(act, idx, 0)
        return _C(np.take_along_axis(self.x, safe, axis=1), "f")

    def shuffle(self, kind: str, mask: Any, value: Any, arg: Any, width: Any = WARP) -> _C:
        name = f"__shfl_{kind}sync"
        if int(np.asarray(_C.wrap(mask).v).ravel()[0]) & _FULL_MASK != _FULL_MASK:
            raise Untranslatable(_("{name} with a mask other than 0xffffffff").format(name=name))
        if int(np.asarray(_C.wrap(width).v).ravel()[0]) != WARP:
            raise Untranslatable(_("{name} with a width other than 32").format(name=name))
        live = self.active
        if not (live.all(axis=1) | ~live.any(axis=1)).all():
            raise Mismatch(_("{name}(0xffffffff, ...) is called while some lanes of the warp are not active (inside "
                             "the strided loop, an if, or after some lanes returned). With the full mask all 32 lanes "
                             "must reach it together, or the GPU hangs or returns garbage: do the shuffle reduction "
                             "after the loop, in code every lane runs").format(name=name))
        v = _C.wrap(value)
        vals = np.broadcast_to(v.v, live.shape)
        amount = np.broadcast_to(_C.wrap(arg).v, live.shape)
        rows = live.any(axis=1)
        if rows.any() and not (amount[rows] == amount[rows][:, :1]).all():
            raise Untranslatable(_("{name} with an offset that differs between lanes").format(name=name))
        k = int(amount[rows][0, 0]) if rows.any() else 0
        lanes = np.arange(WARP)
        if kind == "down_":
            src = np.where(lanes + k < WARP, lanes + k, lanes)
        elif kind == "xor_":
            src = lanes ^ k
        elif kind == "up_":
            src = np.where(lanes - k >= 0, lanes - k, lanes)
        else:
            src = np.full(WARP, k % WARP)
        return _C(vals[:, src], v.kind)


def _body(source: str) -> str:
    text = _strip_comments(source)
    head = re.search(r"\bgem_plane\s*\(([^)]*)\)\s*\{", text)
    if not head:
        raise Mismatch(_("no function gem_plane found; keep the signature `{signature}` and write its body").format(
            signature=GEM_SIGNATURE))
    params = [" ".join(p.replace("*", " * ").split()) for p in head.group(1).split(",") if p.strip()]
    names = [p.split()[-1] for p in params]
    if names != ["x", "hw", "p", "eps", "lane"]:
        raise Mismatch(_("gem_plane is declared with ({params}); keep the signature `{signature}` (the kernel calls "
                         "it with exactly these arguments)").format(params=", ".join(params), signature=GEM_SIGNATURE))
    body = text[head.end():]
    return body[: body.rfind("}")]


def _matching(text: str, start: int, open_: str, close: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        depth += (text[i] == open_) - (text[i] == close)
        if depth == 0:
            return i
    raise Untranslatable(_("unbalanced {pair} in `{code}…`").format(pair=open_ + close,
                                                                     code=text[start:start + 60].strip()))


def _parse(text: str) -> list[tuple]:
    """Statements as nested tuples: ('simple', s), ('block', [...]), ('if', c, then, else), ('for', i, c, s, body),
    ('while', c, body), ('return', e)."""
    out, i = [], 0
    while True:
        while i < len(text) and text[i] in " \t\r\n;":
            i += 1
        if i >= len(text):
            return out
        stmt, i = _statement(text, i)
        out.append(stmt)


def _statement(text: str, i: int) -> tuple[tuple, int]:
    while text[i] in " \t\r\n":
        i += 1
    if text[i] == "{":
        end = _matching(text, i, "{", "}")
        return ("block", _parse(text[i + 1:end])), end + 1
    m = re.match(r"(for|while|if)\s*\(", text[i:])
    if m:
        open_at = i + m.end() - 1
        close = _matching(text, open_at, "(", ")")
        head = text[open_at + 1:close]
        body, j = _statement(text, close + 1)
        if m.group(1) == "for":
            parts = head.split(";")
            if len(parts) != 3:
                raise Untranslatable(f"`for ({head})`")
            return ("for", parts[0].strip(), parts[1].strip(), parts[2].strip(), body), j
        if m.group(1) == "while":
            return ("while", head, body), j
        k = j
        while k < len(text) and text[k] in " \t\r\n":
            k += 1
        if re.match(r"else\b", text[k:]):
            other, j = _statement(text, k + 4)
            return ("if", head, body, other), j
        return ("if", head, body, None), j
    end = text.find(";", i)
    if end < 0:
        raise Untranslatable(_("`{statement}` (no `;` at its end)").format(statement=text[i:].strip()))
    stmt = text[i:end].strip()
    if re.match(r"return\b", stmt):
        return ("return", stmt[6:].strip()), end + 1
    if re.match(r"(break|continue|goto|do|switch)\b", stmt):
        raise Untranslatable(_("`{statement}` (the CPU check runs for/while/if/return; no break or continue)").format(
            statement=stmt))
    return ("simple", stmt), end + 1


_CALLS = {"__shfl_down_sync": "down_", "__shfl_xor_sync": "xor_", "__shfl_sync": "", "__shfl_up_sync": "up_"}


def _expression(expr: str, warp: _Warp) -> Any:
    """Evaluate C arithmetic over the warp's variables."""
    original = expr.strip()
    if re.search(r"\?|&&|\|\||\+\+|--|(?<![<>=!])=(?!=)|->", original):
        raise Untranslatable(_("`{expression}` (the CPU check understands + - * / %, comparisons, casts, x[i] and "
                               "math functions; no ?:, &&, ||, ++ inside expressions)").format(expression=original))
    expr = re.sub(r"\b0[xX]([0-9a-fA-F]+)[uU]?\b", lambda m: str(int(m.group(1), 16)), original)
    expr = re.sub(r"\b(\d+)[uU][lL]*\b", r"\1", expr)
    expr = re.sub(r"static_cast\s*<\s*(int|float|double)\s*>", r"(\1)", expr)
    expr = re.sub(r"\(\s*(int|float|double)\s*\)", lambda m: f" _{m.group(1).upper()}**", expr)
    expr = re.sub(r"\bx\s*\[", "_load[", expr)
    expr = _literals(_fix_float_suffix(expr), original)
    for name in re.findall(r"[A-Za-z_]\w*", expr):
        if name not in warp.vars and name not in _MATH and name not in _CALLS and name not in (
                "_INT", "_FLOAT", "_DOUBLE", "_load", "_F", "_D", "_I"):
            raise Untranslatable(_("`{name}` in `{expression}` (not a parameter, a local variable or a function the "
                                   "CPU check knows: powf, fmaxf, expf, logf, __shfl_down_sync, …)").format(
                                       name=name, expression=original))
    env: dict[str, Any] = {**_MATH, **warp.vars, "_INT": _Cast("i"), "_FLOAT": _Cast("f"), "_DOUBLE": _Cast("d"),
                           "_load": _Loader(warp), "_F": lambda v: _C(np.float32(v), "f"),
                           "_D": lambda v: _C(v, "d"), "_I": lambda v: _C.wrap(int(v))}
    for call, kind in _CALLS.items():
        env[call] = lambda *a, _k=kind: warp.shuffle(_k, *a)
    try:
        return eval(expr, {"__builtins__": {}}, env)  # noqa: S307 - a translated C expression over _C values only
    except (SyntaxError, TypeError) as err:
        raise Untranslatable(f"`{original}` ({err})") from None


def _literals(expr: str, original: str) -> str:
    """Number tokens → C-typed values: ``1`` an int, ``1.0`` a double, ``1.0f`` (tokenized as ``1.0 f``) a float."""
    tokens = []
    try:
        tokens = list(tokenize.generate_tokens(StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError) as err:
        raise Untranslatable(f"`{original}` ({err})") from None
    out: list[str] = []
    for tok in tokens:
        if tok.type == tokenize.NAME and tok.string == "f" and out and out[-1].startswith("_D("):
            out[-1] = "_F(" + out[-1][3:]
        elif tok.type == tokenize.NUMBER:
            out.append(f"_I({tok.string})" if re.fullmatch(r"\d+", tok.string) else f"_D({tok.string})")
        elif tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT):
            continue
        else:
            out.append(tok.string)
    return " ".join(out)


class _Loader:
    def __init__(self, warp: _Warp) -> None:
        self.warp = warp

    def __getitem__(self, index: Any) -> _C:
        return self.warp.load(index)


def _assign(warp: _Warp, name: str, value: Any, kind: str) -> None:
    new = _convert(_C.wrap(value), kind)
    old = warp.vars.get(name)
    base = old.v if old is not None else np.zeros(warp.active.shape, new.v.dtype)
    warp.vars[name] = _C(np.where(warp.active, np.broadcast_to(new.v, warp.active.shape), base), kind)


def _simple(warp: _Warp, stmt: str) -> None:
    m = re.match(r"^(?:const\s+)?(int|float|double|auto|unsigned)\s+(\w+)\s*=\s*(.+)$", stmt, re.S)
    if m:
        kind_name, name, expr = m.groups()
        value = _C.wrap(_expression(expr, warp))
        kind = value.kind if kind_name == "auto" else _TYPES.get(kind_name, "i")
        warp.kinds[name] = kind
        _assign(warp, name, value, kind)
        return
    m = re.match(r"^(?:(?:const\s+)?(?:int|float|double)\s+)(\w+)$", stmt)
    if m:
        raise Untranslatable(_("`{statement}` (declare with a value: `float acc = 0.0f;`)").format(statement=stmt))
    m = re.match(r"^(\+\+|--)\s*(\w+)$|^(\w+)\s*(\+\+|--)$", stmt)
    if m:
        name = m.group(2) or m.group(3)
        stmt = f"{name} {'+' if '+' in (m.group(1) or m.group(4)) else '-'}= 1"
    m = re.match(r"^(\w+)\s*([-+*/%])?=\s*(.+)$", stmt, re.S)
    if not m:
        raise Untranslatable(f"`{stmt}`")
    name, op, expr = m.groups()
    if name not in warp.kinds or name in ("hw", "p", "eps", "lane", "WARP", "warpSize"):
        raise Untranslatable(_("`{statement}` assigns to `{name}`, which is not a local variable declared "
                               "before").format(statement=stmt, name=name))
    value = _C.wrap(_expression(expr, warp))
    if op:
        value = eval(f"a {op} b", {}, {"a": warp.vars[name], "b": value})  # noqa: S307 - two _C values
    _assign(warp, name, value, warp.kinds[name])


def _condition(warp: _Warp, expr: str) -> np.ndarray:
    value = _C.wrap(_expression(expr, warp))
    return np.broadcast_to(value.v != 0, warp.active.shape)


def _run(warp: _Warp, stmts: list[tuple]) -> None:
    for stmt in stmts:
        if not warp.active.any():
            return
        kind = stmt[0]
        if kind == "simple":
            _simple(warp, stmt[1])
        elif kind == "block":
            _run(warp, stmt[1])
        elif kind == "return":
            value = _convert(_C.wrap(_expression(stmt[1], warp)), "f").v
            act = warp.active
            warp.result = np.where(act, np.broadcast_to(value, act.shape), warp.result).astype(np.float32)
            warp.done |= act
        elif kind == "if":
            _branch(warp, _condition(warp, stmt[1]), stmt[2], stmt[3])
        elif kind in ("for", "while"):
            _loop(warp, stmt)


def _branch(warp: _Warp, cond: np.ndarray, then: tuple, other: tuple | None) -> None:
    saved = warp.mask
    warp.mask = saved & cond
    _run(warp, [then])
    if other is not None:
        warp.mask = saved & ~cond
        _run(warp, [other])
    warp.mask = saved


def _loop(warp: _Warp, stmt: tuple) -> None:
    if stmt[0] == "for":
        init, cond, step, body = stmt[1:]
    else:
        cond, body = stmt[1:]
        init = step = ""
    if init:
        _simple(warp, init)
    saved = warp.mask
    while True:
        warp.mask = saved & (_condition(warp, cond) if cond else True)
        if not warp.active.any():
            break
        _run(warp, [body])
        if step:
            _simple(warp, step)
        warp.steps += 1
        if warp.steps > MAX_STEPS:
            raise Mismatch(_("a loop ran more than {limit:,} times for a plane of {hw} values: its condition never "
                             "becomes false (check the step: i += WARP, offset /= 2)").format(limit=MAX_STEPS,
                                                                                              hw=warp.hw))
    warp.mask = saved


def evaluate_gem_plane(source: str, x: np.ndarray, p: float, eps: float) -> np.ndarray:
    """Run the learner's ``gem_plane`` on the CPU for every plane of ``x`` (planes × hw, float32) and return lane 0's
    result per plane (what the kernel writes)."""
    warp = _Warp(x, p, eps)
    _run(warp, _parse(_body(source)))
    if not warp.done[:, 0].all():
        raise Mismatch(_("gem_plane ends without `return` in lane 0: the kernel would write an undefined value. "
                         "Return the pooled value (lane 0's is the one written)"))
    return warp.result[:, 0]
