"""Auto-checked exercises: run the learner's answer against a reference, say ✅ or ❌ and why, give graded hints.

An exercise is a function decorated with :func:`exercise` in ``trtlab/check/labNN.py``. It receives the learner's
answer (often a function), compares it with the reference and either returns a short success note or raises
:class:`Mismatch` naming the mistake. The wrapper around it guarantees what a learner needs:

- an untouched TODO (``raise NotImplementedError``) reports "not done yet", not a traceback;
- learner code that crashes is reported (exception, message, the learner's own line, even when the crash happened
  inside a library the learner called) and never kills the kernel;
- every check runs under a time limit (per exercise, ``time_limit_s``): a learner function that never returns is
  reported as "took longer than N s" and the kernel stays usable (the check runs in a worker thread, which is
  interrupted when the limit passes);
- in Jupyter with ipywidgets the result comes with "Check again" and "Hint" buttons; elsewhere it is plain text;
- with ``TRTLAB_STRICT_CHECKS=1`` (set by the test suite) a failed check raises :class:`~trtlab.errors.CheckFailed`,
  so CI goes red when a solution notebook stops passing its own checks.

In a notebook::

    tl.check.lab00.tensor_core_precisions(my_function)   # ✅ / ❌ with the reason
    tl.hint("lab00.tensor_core_precisions")               # next hint, levels 1 → 3
"""

from __future__ import annotations

import ctypes
import html
import importlib
import os
import re
import site
import sysconfig
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from trtlab.errors import CheckFailed
from trtlab.i18n import _

__all__ = [
    "CheckResult",
    "Exercise",
    "Mismatch",
    "NotDone",
    "assert_close",
    "exercise",
    "exercises",
    "hint",
    "run",
]

LAB_MODULES = ("lab00", "lab01", "lab02", "lab03", "lab04", "lab05", "lab06")
DEFAULT_TIME_LIMIT_S = 120.0  # an exercise that states no limit of its own; generous for a busy 2-core laptop
_REGISTRY: dict[str, "Exercise"] = {}


class Mismatch(Exception):
    """Raised by a checker: the answer is wrong, and the message says how (what differed, by how much, likely cause)."""


class NotDone(Exception):
    """Raised by a checker whose answer is not a function (source text, a value) when it is still the placeholder:
    reported as "not done yet", like a function that still raises NotImplementedError."""


class _TimeLimitReached(BaseException):
    """Injected into a check's worker thread when its time is up. A BaseException, so that a learner's
    ``except Exception`` does not swallow it."""


@dataclass
class CheckResult:
    """The outcome of one check. Truthy when it passed, so ``assert result`` works in solution notebooks."""

    key: str
    status: str  # "passed" | "failed" | "not done"
    message: str
    shown: bool = field(default=False, repr=False)  # already displayed by the check call: don't display twice

    def __bool__(self) -> bool:
        return self.status == "passed"

    @property
    def icon(self) -> str:
        return {"passed": "✅", "failed": "❌", "not done": "⏳"}[self.status]

    def __str__(self) -> str:
        return f"{self.icon} {self.key}: {self.message}"

    def _repr_html_(self) -> str:
        colour = {"passed": "#1a7f37", "failed": "#cf222e", "not done": "#9a6700"}[self.status]
        body = html.escape(self.message).replace("\n", "<br>")
        return f'<div style="color:{colour}"><b>{self.icon} {html.escape(self.key)}</b>: {body}</div>'

    def _ipython_display_(self) -> None:
        if not self.shown:
            from IPython.display import HTML, display

            display(HTML(self._repr_html_()))


@dataclass
class Exercise:
    """One exercise: its checker and three graded hints (1 = a nudge, 3 = nearly the answer)."""

    key: str
    title: str
    hints: tuple[str, str, str]
    checker: Callable[..., str | None]
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    _hints_shown: int = field(default=0, repr=False)

    def evaluate(self, *answer: Any, **kwargs: Any) -> CheckResult:
        """Run the checker on the answer within the time limit; never raises, whatever the learner's code does."""
        try:
            note = _run_with_time_limit(self.checker, answer, kwargs, self.time_limit_s)
        except _Overtime as slow:
            return CheckResult(self.key, "failed", str(slow))
        except (NotImplementedError, NotDone) as todo:
            if isinstance(todo, NotDone) or _raised_by_learner(todo):
                return CheckResult(self.key, "not done", _("not done yet: replace the `raise NotImplementedError` "
                                   "under `# YOUR CODE HERE` with your code, run that cell, then this one."))
            return CheckResult(self.key, "failed", _describe_crash(todo))  # raised inside a library: a crash
        except Mismatch as wrong:
            stuck = _("Stuck? tl.hint({key!r}) or the Hint button.").format(key=self.key)
            return CheckResult(self.key, "failed", f"{wrong}\n{stuck}")
        except Exception as crash:  # learner code may raise anything; report it, never crash the kernel
            return CheckResult(self.key, "failed", _describe_crash(crash))
        return CheckResult(self.key, "passed", note or _("correct."))

    def __call__(self, *answer: Any, **kwargs: Any) -> CheckResult:
        """Check, show the result (with buttons in Jupyter), and raise in strict mode if it failed."""
        result = self.evaluate(*answer, **kwargs)
        print(result)
        _show_widgets(self, answer, kwargs)
        result.shown = True
        if not result and os.environ.get("TRTLAB_STRICT_CHECKS") == "1":
            raise CheckFailed(str(result))
        return result

    def hint(self, level: int | None = None) -> str:
        """Hint ``level`` (1–3); without a level, the next one not yet shown."""
        if level is None:
            level = min(self._hints_shown + 1, len(self.hints))
        if not 1 <= level <= len(self.hints):
            raise ValueError(_("hint level must be 1..{count}; got {level}").format(count=len(self.hints), level=level))
        self._hints_shown = max(self._hints_shown, level)
        return _("💡 hint {level}/{count} for {key}: {hint}").format(level=level, count=len(self.hints), key=self.key,
                                                                   hint=_(self.hints[level - 1]))

    @property
    def shown_title(self) -> str:
        """The title in the language in use (``title`` stays the English source text)."""
        return _(self.title)


def exercise(key: str, *, title: str, hints: tuple[str, str, str] | list[str],
             time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> Callable[[Callable], Exercise]:
    """Register a checker as exercise ``key`` ("labNN.name"); the whole check (the learner's calls included) must
    finish within ``time_limit_s`` seconds."""
    if len(hints) != 3:
        raise ValueError(f"exercise {key!r} needs exactly 3 graded hints; got {len(hints)}")
    if not time_limit_s > 0:
        raise ValueError(f"exercise {key!r}: time_limit_s must be > 0; got {time_limit_s}")

    def register(checker: Callable[..., str | None]) -> Exercise:
        ex = Exercise(key=key, title=title, hints=tuple(hints), checker=checker,  # type: ignore[arg-type]
                      time_limit_s=float(time_limit_s))
        _REGISTRY[key] = ex
        return ex

    return register


def exercises() -> dict[str, Exercise]:
    """Every exercise of the course, by key (loads all lab modules)."""
    for name in LAB_MODULES:
        try:
            importlib.import_module(f"trtlab.check.{name}")
        except ModuleNotFoundError as missing:
            if missing.name != f"trtlab.check.{name}":
                raise
    return dict(sorted(_REGISTRY.items()))


def _lookup(key: str) -> Exercise:
    lab = key.split(".", 1)[0]
    if lab in LAB_MODULES:
        importlib.import_module(f"trtlab.check.{lab}")
    if key not in _REGISTRY:
        known = ", ".join(exercises()) or _("none")
        raise KeyError(_("no exercise {key!r}; known exercises: {known}").format(key=key, known=known))
    return _REGISTRY[key]


def run(key: str, *answer: Any, **kwargs: Any) -> CheckResult:
    """Check an answer for the exercise named ``key``."""
    return _lookup(key)(*answer, **kwargs)


def hint(key: str, level: int | None = None) -> None:
    """Print the next hint (or hint ``level``, 1–3) for exercise ``key``."""
    print(_lookup(key).hint(level))


def __getattr__(name: str) -> Any:
    """``tl.check.lab03`` imports that lab's exercises on first use."""
    if name in LAB_MODULES:
        return importlib.import_module(f"trtlab.check.{name}")
    raise AttributeError(f"module 'trtlab.check' has no attribute {name!r}")


# ---------------------------------------------------------------- comparing numbers


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch
        x = x.detach().cpu().numpy()
    elif hasattr(x, "get") and type(x).__module__.startswith("cupy"):
        x = x.get()
    return np.asarray(x)


def assert_close(got: Any, expected: Any, *, rtol: float, atol: float, name: str = "output") -> str:
    """Compare arrays the way a reviewer would; raise :class:`Mismatch` saying where and by how much they differ.

    Returns a one-line summary (max |Δ|) when they agree within ``atol + rtol * |expected|``.
    """
    g, e = _as_numpy(got), _as_numpy(expected)
    if g.shape != e.shape:
        raise Mismatch(_("{name}: shape {got}, expected {expected}. Check the layout (NCHW vs NHWC), "
                         "the batch dimension and any squeeze/reshape.").format(name=name, got=g.shape,
                                                                                 expected=e.shape))
    if g.dtype.kind not in "fiub" or e.dtype.kind not in "fiub":
        raise Mismatch(_("{name}: dtype {got}, expected a numeric array like {expected}").format(
            name=name, got=g.dtype, expected=e.dtype))
    g64, e64 = g.astype(np.float64), e.astype(np.float64)
    if not np.isfinite(g64).all():
        bad = np.argwhere(~np.isfinite(g64))[0]
        raise Mismatch(_("{name}: contains NaN/inf (first at index {index}); look for a division by zero, an "
                         "overflow in fp16, or memory that was never written.").format(
                             name=name, index=tuple(int(i) for i in bad)))
    diff = np.abs(g64 - e64)
    allowed = atol + rtol * np.abs(e64)
    if diff.size == 0:
        return _("{name}: empty, as expected").format(name=name)
    worst = np.unravel_index(int(np.argmax(diff - allowed)), diff.shape)
    summary = f"max |Δ| = {diff.max():.3g}"
    outside = int((diff > allowed).sum())
    if outside:
        idx = tuple(int(i) for i in worst)
        raise Mismatch(_("{name}: {outside} of {size} values outside tolerance (atol={atol:g}, rtol={rtol:g}); "
                         "{summary}; worst at index {index}: got {got:.6g}, expected {expected:.6g}.").format(
                             name=name, outside=outside, size=diff.size, atol=atol, rtol=rtol, summary=summary,
                             index=idx, got=g64[worst], expected=e64[worst]))
    return f"{name}: {summary} (atol={atol:g}, rtol={rtol:g})"


# ---------------------------------------------------------------- running learner code


_GRACE_S = 2.0  # after the limit: how long the interrupted worker gets to unwind before we stop waiting


class _Overtime(Exception):
    """The check did not finish within its time limit (the message is what the learner reads)."""


def _run_with_time_limit(checker: Callable[..., Any], answer: tuple, kwargs: dict, limit_s: float) -> Any:
    """Run ``checker`` in a worker thread and wait at most ``limit_s``.

    A thread, not a signal: it works off the main thread (widget callbacks) and on every OS, and a kernel waiting
    on it stays interruptible. When time is up the worker gets an exception injected at its next Python bytecode
    (``PyThreadState_SetAsyncExc``), which stops a loop in Python; code stuck inside a C call keeps running in the
    background, and the message says so.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = checker(*answer, **kwargs)
        except _TimeLimitReached:
            pass  # stopped at the time limit: the caller reports it
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread as is
            box["error"] = err

    worker = threading.Thread(target=work, name="trtlab-check", daemon=True)
    worker.start()
    try:
        worker.join(limit_s)
    except KeyboardInterrupt:  # the learner pressed "interrupt": stop the worker too
        _interrupt(worker)
        raise
    if worker.is_alive():
        waited = 0.0
        while worker.is_alive() and waited < _GRACE_S:
            _interrupt(worker)  # again: a bare `except:` in the learner's loop may have caught the first one
            worker.join(0.2)
            waited += 0.2
        background = ("" if not worker.is_alive() else _(" It is stuck inside a library call and keeps running in "
                                                         "the background; if the notebook becomes slow, restart the "
                                                         "kernel."))
        raise _Overtime(_("your code took longer than {limit:g} s (this check's time limit) and was stopped."
                          "{background} Likely causes: a loop whose condition never becomes false, a `while True` "
                          "without a `break`, or waiting on something that never arrives. Run your function on its "
                          "own with a small input to see where it hangs.").format(limit=limit_s, background=background))
    if "error" in box:
        raise box["error"]
    return box.get("value")


def _interrupt(worker: threading.Thread) -> None:
    if worker.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_TimeLimitReached))


# ---------------------------------------------------------------- presentation


def _library_roots() -> tuple[str, ...]:
    """Folders whose code is not the learner's: the standard library, installed packages, and trtlab itself."""
    roots = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= set(getattr(site, "getsitepackages", lambda: [])())
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # .../trtlab
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots if r)


_LIBRARY_ROOTS = _library_roots()


def _is_learner_frame(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    if name.startswith("<"):
        return not name.startswith("<frozen")  # <ipython-input-…>, <stdin>, <string> are typed code; <frozen …> not
    return not os.path.realpath(name).startswith(_LIBRARY_ROOTS)


def _raised_by_learner(err: BaseException) -> bool:
    frames = traceback.extract_tb(err.__traceback__)
    return bool(frames) and _is_learner_frame(frames[-1])


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _short_message(err: BaseException, lines: int = 6) -> str:
    text = _ANSI.sub("", str(err)).strip()
    kept = text.splitlines()[:lines]
    return "\n".join(kept) + (" […]" if len(text.splitlines()) > lines else "")


def _describe_crash(crash: BaseException) -> str:
    """The crash as the learner should see it: their own frames only, the line they wrote, and the library the
    error came from when it came from one."""
    frames = traceback.extract_tb(crash.__traceback__)
    mine = [f for f in frames if _is_learner_frame(f)]
    message = _short_message(crash)
    cause = _root_cause(crash)
    if cause is not None:  # a library that wraps the real error: its first lines are boilerplate
        message = _("{message}\nCaused by {error}: {cause}").format(
            message=_short_message(crash, 2), error=type(cause).__name__, cause=_short_message(cause, 4))
    if not mine:
        origin = frames[-1] if frames else None
        where = (_(" ({file}, line {line})").format(file=os.path.basename(origin.filename), line=origin.lineno)
                 if origin else "")
        return _("checking your answer raised {error}{where}: {message}\n"
                 "Likely causes: your function returned something of another type or shape than the exercise asks "
                 "for (read its docstring), or it was never called with the checker's arguments. If your answer "
                 "follows the docstring, this is a bug in the checker: please report it.").format(
                     error=type(crash).__name__, where=where, message=message)
    last = mine[-1]
    line = f": `{last.line.strip()}`" if last.line else ""
    chain = " → ".join(_("{function} line {line}").format(function=f.name, line=f.lineno) for f in mine[-3:])
    if frames[-1] is last:
        where = _("at line {line}{source}").format(line=last.lineno, source=line)
    else:
        where = _("inside {library}, called from your line {line}{source}").format(
            library=_library_name(frames[-1].filename), line=last.lineno, source=line)
    return _("your code raised {error} {where}: {message}\n"
             "Your frames: {chain}. Fix the error above (run the exercise cell on its own to see the full "
             "traceback), then check again.").format(error=type(crash).__name__, where=where, message=message,
                                                     chain=chain)


def _root_cause(err: BaseException) -> BaseException | None:
    cause, seen = err.__cause__, 0
    while cause is not None and cause.__cause__ is not None and seen < 10:
        cause, seen = cause.__cause__, seen + 1
    return cause


def _library_name(filename: str) -> str:
    """``.../site-packages/torch/nn/modules/conv.py`` → ``torch (torch/nn/modules/conv.py)``."""
    path = os.path.realpath(filename)
    for root in sorted(_LIBRARY_ROOTS, key=len, reverse=True):  # site-packages before the stdlib folder above it
        if path.startswith(root):
            rel = os.path.relpath(path, root)
            return f"{rel.split(os.sep)[0].removesuffix('.py')} ({rel})"
    return os.path.basename(filename)


def _in_jupyter_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _show_widgets(ex: Exercise, answer: tuple, kwargs: dict) -> None:
    """In Jupyter: a "Check again" button and a "Hint" button that reveals hints one level at a time."""
    if not _in_jupyter_kernel():
        return
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError:
        return
    out = widgets.Output()
    again = widgets.Button(description=_("Check again"), icon="check",
                           tooltip=_("re-run the check for {key}").format(key=ex.key))
    more = widgets.Button(description=_("Hint"), icon="lightbulb-o", tooltip=_("reveal the next hint (3 levels)"))

    def on_again(_: Any) -> None:
        with out:
            out.clear_output()
            print(ex.evaluate(*answer, **kwargs))

    def on_hint(_: Any) -> None:
        with out:
            print(ex.hint())

    again.on_click(on_again)
    more.on_click(on_hint)
    display(widgets.VBox([widgets.HBox([again, more]), out], layout=widgets.Layout(margin="0 0 0 1em")))
