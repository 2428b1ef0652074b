"""A stand-in for ``tensorrt.plugin`` (quickly deployable plugins) on machines without TensorRT >= 10.6. Never TensorRT.

It keeps the descriptor API a plugin's functions are written against, as TensorRT's own Python sources define it
(``python/packaging/bindings_wheel/tensorrt/plugin/_tensor.py``, ``_top_level.py``, ``_validate.py`` in
NVIDIA/TensorRT, release 10.6 onwards; ``aot_impl`` and ``KernelLaunchParams`` from 10.9):

- ``ShapeExpr``: one symbolic dimension; ``+ - * //`` with ints or other ``ShapeExpr`` build a new expression
  (TensorRT: ``IExprBuilder.operation``); ``is_constant`` / ``constant_value()``; no ``int()`` (a symbolic dimension
  has no value when the shape function runs; TensorRT's ``ShapeExpr`` defines no ``__int__`` either).
- ``ShapeExprs``: indexable, iterable, ``len``, ``numel()``, ``from_tuple`` (ints become constant expressions).
- ``TensorDesc``: ``shape_expr``, ``dtype``, ``ndim``, ``like()``; ``from_shape_expr(shape_expr, dtype)`` converts a
  *tuple* with ``ShapeExprs.from_tuple`` and keeps anything else as given (a list then fails when TensorRT reads it).
- ``Tensor``: ``shape`` (concrete), ``dtype``, ``data_ptr``, ``ndim``, ``numel()``; ``stream`` is an ``int``.
- ``register`` / ``impl`` check the signature rules of ``_validate.py``: annotations are mandatory in ``register``,
  TensorDescs first, no default values, attributes of serializable types, a ``TensorDesc`` return; the ``impl``
  argument names must be ``(inputs..., attributes..., outputs, stream)``, ``outputs`` a ``Tuple[Tensor]``.

Data types are TensorRT's ``DataType`` enum when a TensorRT-family module is installed (the real members), else a
copy with TensorRT's names and values (:func:`trtlab.standin.trt_enums`). What it does not do: build, time, or run
anything on TensorRT.
"""

from __future__ import annotations

import inspect
import itertools
import typing
from typing import Any, Callable, Sequence

from trtlab.i18n import N_, _
from trtlab.standin import trt_enums

__all__ = ["DataType", "Shape", "ShapeExpr", "ShapeExprs", "Tensor", "TensorDesc", "announcement", "from_shape_expr",
           "impl", "register", "registered"]

ANNOUNCEMENT = N_("tensorrt.plugin stand-in (trtlab.standin.trtp): TensorRT's descriptor API (TensorDesc, "
                  "ShapeExpr, Tensor) and its registration rules, checked in Python; not TensorRT — nothing is built "
                  "or run on it")

DataType = trt_enums().DataType
SERIALIZABLE_BUILTIN_TYPES = (int, float, bytes, bool, str)
DISALLOWED_ATTR_NAMES = {"outputs", "stream", "tactic"}
_names = itertools.count()


def __getattr__(name: str) -> Any:
    """``trtp.announcement``: the announcement in the language in use when it is read (not when imported)."""
    if name == "announcement":
        return _(ANNOUNCEMENT)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class ShapeExpr:
    """One symbolic dimension: a name (``batch``), a constant, or an expression of others."""

    def __init__(self, value: int | str | "ShapeExpr" | None = None, *, _text: str | None = None,
                 _value: int | None = None) -> None:
        if isinstance(value, ShapeExpr):
            _text, _value = value._text, value._value
        elif isinstance(value, bool) or (value is not None and not isinstance(value, (int, str))):
            raise TypeError(f"ShapeExpr of {value!r}: expected an int or another ShapeExpr")
        elif isinstance(value, int):
            _text, _value = str(value), value
        elif isinstance(value, str):
            _text = value
        self._text = _text if _text is not None else f"d{next(_names)}"
        self._value = _value  # known only for constants

    def _op(self, symbol: str, other: int | "ShapeExpr", fn: Callable[[int, int], int]) -> "ShapeExpr":
        if not isinstance(other, (int, ShapeExpr)) or isinstance(other, bool):
            raise TypeError(f"unsupported operand for ShapeExpr {symbol}: {type(other).__name__} (TensorRT's shape "
                            "expressions combine with ints and other ShapeExprs only; no floats: use //)")
        other = other if isinstance(other, ShapeExpr) else ShapeExpr(other)
        value = fn(self._value, other._value) if self._value is not None and other._value is not None else None
        return ShapeExpr(_text=f"({self._text} {symbol} {other._text})", _value=value)

    def __add__(self, other: Any) -> "ShapeExpr":
        return self._op("+", other, lambda a, b: a + b)

    def __sub__(self, other: Any) -> "ShapeExpr":
        return self._op("-", other, lambda a, b: a - b)

    def __mul__(self, other: Any) -> "ShapeExpr":
        return self._op("*", other, lambda a, b: a * b)

    def __floordiv__(self, other: Any) -> "ShapeExpr":
        return self._op("//", other, lambda a, b: a // b)

    def __truediv__(self, other: Any) -> "ShapeExpr":
        raise TypeError("ShapeExpr supports //, not / (TensorRT's DimensionOperation has FLOOR_DIV and CEIL_DIV only)")

    @property
    def is_constant(self) -> bool:
        return self._value is not None

    def constant_value(self) -> int:
        if self._value is None:
            raise RuntimeError("Not accessible for non-constant shape expressions. Check is_constant to determine "
                               "accessibility.")
        return self._value

    def same_as(self, other: Any) -> bool:
        """Stand-in only (for checkers): the same expression, by its text."""
        return isinstance(other, ShapeExpr) and other._text == self._text

    def __repr__(self) -> str:
        return f"ShapeExpr[{self._text}]"


class ShapeExprs:
    """The symbolic shape of a tensor: a sequence of ``ShapeExpr``."""

    def __init__(self, length: int) -> None:
        self._shapes: list[Any] = [None] * length

    @classmethod
    def from_tuple(cls, shape_exprs: tuple) -> "ShapeExprs":
        inst = cls(len(shape_exprs))
        inst._shapes = [e if isinstance(e, ShapeExpr) else ShapeExpr(e) for e in shape_exprs]
        return inst

    def numel(self) -> ShapeExpr:
        total = ShapeExpr(1)
        for s in self._shapes:
            total = total * s
        return total

    def __iter__(self) -> Any:
        return iter(self._shapes)

    def __getitem__(self, index: Any) -> Any:
        return self._shapes[index]

    def __len__(self) -> int:
        return len(self._shapes)

    def __repr__(self) -> str:
        return f"ShapeExprs[{', '.join(map(repr, self._shapes))}]"


class TensorDesc:
    """A tensor's symbolic shape and data type; no data."""

    def __init__(self, shape_expr: Any = None, dtype: Any = None) -> None:
        self.shape_expr = shape_expr
        self.dtype = dtype

    @property
    def ndim(self) -> int:
        return len(self.shape_expr)

    def like(self) -> "TensorDesc":
        return TensorDesc(self.shape_expr, self.dtype)

    def __repr__(self) -> str:
        return f"TensorDesc({self.shape_expr!r}, {self.dtype})"


def from_shape_expr(shape_expr: Any, dtype: Any) -> TensorDesc:
    """As TensorRT's: a tuple goes through ``ShapeExprs.from_tuple``; anything else is kept as given."""
    return TensorDesc(ShapeExprs.from_tuple(shape_expr) if isinstance(shape_expr, tuple) else shape_expr, dtype)


class Shape(tuple):
    """A concrete shape (TensorRT's ``Shape``: indexable, iterable, ``numel()``)."""

    def numel(self) -> int:
        total = 1
        for d in self:
            total *= int(d)
        return total


class Tensor:
    """A tensor with data at ``data_ptr`` (what ``impl`` receives)."""

    def __init__(self, shape: Sequence[int], dtype: Any, data_ptr: int) -> None:
        self.shape, self.dtype, self.data_ptr = Shape(int(d) for d in shape), dtype, int(data_ptr)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return self.shape.numel()

    def __repr__(self) -> str:
        return f"Tensor(shape={tuple(self.shape)}, dtype={self.dtype}, data_ptr=0x{self.data_ptr:x})"


#: plugin id → {"register": fn, "impl": fn, "tensors": [...], "attrs": {...}} (this process only)
registered: dict[str, dict[str, Any]] = {}


def _annotation(fn: Callable, param: inspect.Parameter) -> Any:
    hints = typing.get_type_hints(fn) if isinstance(param.annotation, str) else {}
    return hints.get(param.name, param.annotation)


def register(plugin_id: str, lazy_register: bool = False) -> Callable[[Callable], Callable]:
    """``_validate._parse_register_inputs`` / ``_parse_register_return``'s rules; raises ValueError as TensorRT does."""
    def decorate(fn: Callable) -> Callable:
        tensors, attrs, saw_attr = [], {}, False
        for idx, (name, param) in enumerate(inspect.signature(fn).parameters.items()):
            ann = _annotation(fn, param)
            if ann is inspect.Parameter.empty:
                raise ValueError(f"Argument {name} does not have a type annotation. Please mark as TensorDesc or one "
                                 "of the serializable attribute types.")
            if param.default is not inspect.Parameter.empty:
                raise ValueError(f"Argument {name} has a default value. Default values are not supported yet.")
            if inspect.isclass(ann) and issubclass(ann, TensorDesc):
                if saw_attr:
                    raise ValueError("TensorDescs args and attribute args cannot be interspersed.")
                tensors.append(name)
                continue
            if idx == 0:
                raise ValueError("TensorDescs args should come first, followed by attributes.")
            if name in DISALLOWED_ATTR_NAMES:
                raise ValueError(f"'{name}' is not allowed as a plugin attribute name.")
            if ann not in SERIALIZABLE_BUILTIN_TYPES:
                raise ValueError(f"Attribute '{name}' of type {ann} is not a supported serializable type. Supported "
                                 f"types are {SERIALIZABLE_BUILTIN_TYPES} (or numpy arrays).")
            attrs[name], saw_attr = ann, True
        ret = typing.get_type_hints(fn).get("return", inspect.Parameter.empty) \
            if isinstance(inspect.signature(fn).return_annotation, str) else inspect.signature(fn).return_annotation
        if ret is inspect.Parameter.empty:
            raise ValueError("No return annotation found for register function.")
        if typing.get_origin(ret) is not tuple and not (inspect.isclass(ret) and issubclass(ret, TensorDesc)):
            raise ValueError(f"Return argument is of type {ret}. Return types can only be TensorDesc or "
                             "Tuple[TensorDesc].")
        registered[plugin_id] = {"register": fn, "tensors": tensors, "attrs": attrs}
        return fn
    return decorate


def impl(plugin_id: str) -> Callable[[Callable], Callable]:
    """``_validate._validate_impl``'s rules: argument names ``(inputs, attributes, outputs, stream[, tactic])``."""
    def decorate(fn: Callable) -> Callable:
        if plugin_id not in registered:
            raise ValueError(f"Plugin {plugin_id} is not registered (call tensorrt.plugin.register first)")
        plugin = registered[plugin_id]
        sig = inspect.signature(fn)
        for name, param in sig.parameters.items():
            ann = _annotation(fn, param)
            if ann is inspect.Parameter.empty:
                continue
            if name == "outputs":
                if typing.get_origin(ann) is not tuple or not all(
                        inspect.isclass(a) and issubclass(a, Tensor) for a in typing.get_args(ann)):
                    raise ValueError(f"'outputs' should be of type Tuple[Tensor]. Received {ann}.")
            elif name in ("stream", "tactic"):
                if not (inspect.isclass(ann) and issubclass(ann, int)):
                    raise ValueError(f"'{name}' input argument should be an int")
            elif name in plugin["attrs"] and ann != plugin["attrs"][name]:
                raise ValueError(f"Attribute '{name}' has a type annotation different from the one specified at "
                                 f"registration. Expected '{plugin['attrs'][name]}'.")
        names = [n for n in sig.parameters if n != "tactic"]
        attrs = [n for n in plugin["attrs"] if n in names]
        expected = plugin["tensors"] + attrs + ["outputs", "stream"]
        if names != expected:
            raise ValueError(f"Signature of the impl function '{sig}' does not match the expected input arg schema: "
                             f"({', '.join(expected)})")
        if sig.return_annotation not in (inspect.Parameter.empty, None, "None"):
            raise ValueError("Return annotation should be None.")
        plugin["impl"] = fn
        return fn
    return decorate
