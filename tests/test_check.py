"""The exercise machinery: never crashes on learner code, says what is wrong, and is strict in CI."""

import re
from pathlib import Path

import numpy as np
import pytest

from trtlab import check
from trtlab.check import Mismatch, assert_close
from trtlab.errors import CheckFailed
from trtlab.paths import course_root


@check.exercise("test.double", title="double a number", hints=("one", "two", "three"))
def _double(fn):
    got = fn(21)
    if got != 42:
        raise Mismatch(f"fn(21) returned {got!r}, expected 42")
    return "doubles correctly"


def _stub(x):
    raise NotImplementedError("exercise not done yet")


def test_correct_answer_passes_and_is_truthy():
    result = _double.evaluate(lambda x: 2 * x)
    assert result and result.status == "passed" and "doubles correctly" in str(result)


def test_untouched_stub_reports_not_done_yet():
    result = _double.evaluate(_stub)
    assert not result and result.status == "not done" and "not done yet" in result.message


def test_wrong_answer_names_the_mistake_and_points_to_hints():
    result = _double.evaluate(lambda x: x + 2)
    assert result.status == "failed" and "returned 23, expected 42" in result.message
    assert "tl.hint('test.double')" in result.message


def test_crashing_learner_code_is_reported_not_raised():
    def broken(x):
        return x / 0

    result = _double.evaluate(broken)
    assert result.status == "failed"
    assert "ZeroDivisionError" in result.message and "return x / 0" in result.message


def test_strict_mode_raises_check_failed(monkeypatch):
    monkeypatch.setenv("TRTLAB_STRICT_CHECKS", "1")
    with pytest.raises(CheckFailed, match="expected 42"):
        _double(lambda x: x)
    monkeypatch.setenv("TRTLAB_STRICT_CHECKS", "0")
    assert not _double(lambda x: x)  # learners get ❌, not an exception


def test_hints_are_graded_and_advance(capsys):
    assert "1/3" in _double.hint(1) and "three" in _double.hint(3)
    check.hint("test.double")
    assert "hint" in capsys.readouterr().out
    with pytest.raises(ValueError):
        _double.hint(4)


def test_unknown_exercise_lists_the_known_ones():
    with pytest.raises(KeyError, match="lab00.tensor_core_precisions"):
        check.run("lab00.no_such_thing", None)


def test_assert_close_reports_worst_element():
    expected = np.arange(6, dtype=np.float32).reshape(2, 3)
    got = expected.copy()
    got[1, 2] += 0.5
    with pytest.raises(Mismatch, match=r"1 of 6 values outside.*worst at index \(1, 2\): got 5\.5, expected 5"):
        assert_close(got, expected, rtol=0, atol=1e-3)
    with pytest.raises(Mismatch, match="shape"):
        assert_close(got.T, expected, rtol=0, atol=1)
    with pytest.raises(Mismatch, match="NaN"):
        assert_close(np.full((2, 3), np.nan), expected, rtol=0, atol=1)
    assert "max |Δ| = 0" in assert_close(expected, expected, rtol=0, atol=0)


def test_every_exercise_has_three_hints_and_is_used_by_its_solution_notebook():
    used = set()
    for path in (course_root() / "solutions").glob("[0-9][0-9]_*.ipynb"):
        used |= set(re.findall(r"tl\.check\.(lab\d\d)\.(\w+)\(", path.read_text()))
    registered = {tuple(k.split(".")) for k in check.exercises()}
    assert registered - {("test", "double")}, "no exercises registered"
    for key, ex in check.exercises().items():
        assert len(ex.hints) == 3 and all(h.strip() for h in ex.hints), key
    missing = used - registered
    unused = {k for k in registered if k[0].startswith("lab")} - used
    assert not missing, f"notebooks call unknown checkers: {missing}"
    assert not unused, f"checkers no notebook uses: {unused}"


def test_a_check_call_shows_its_result_once(capsys, monkeypatch):
    """The call prints the result; the returned value must not be displayed a second time by Jupyter."""
    monkeypatch.setenv("TRTLAB_STRICT_CHECKS", "0")
    shown = _double(lambda x: 2 * x)
    assert capsys.readouterr().out.count("✅") == 1
    displayed = []
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: displayed.append(a))
    shown._ipython_display_()
    _double.evaluate(lambda x: 2 * x)._ipython_display_()
    assert len(displayed) == 1  # only the result that was not shown yet


# ---------------------------------------------------------------- time limit


@check.exercise("test.limited", title="returns its argument", hints=("a", "b", "c"), time_limit_s=1.0)
def _limited(fn):
    return f"returned {fn(1)!r}"


def _loop_forever(x):
    while True:
        x += 1


def _swallow_everything(x):
    while True:
        try:
            x += 1
        except Exception:  # a learner's catch-all must not swallow the time limit
            pass


@pytest.mark.parametrize("hanging", [_loop_forever, _swallow_everything])
def test_a_hanging_answer_fails_within_the_limit_and_is_stopped(hanging):
    import threading
    import time

    before = threading.active_count()
    start = time.perf_counter()
    result = _limited.evaluate(hanging)
    elapsed = time.perf_counter() - start
    assert result.status == "failed" and "took longer than 1 s" in result.message, result.message
    assert "background" not in result.message  # a Python loop is interrupted, not left running
    assert elapsed < 1.0 + check._GRACE_S + 0.5
    deadline = time.perf_counter() + 2
    while threading.active_count() > before and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before, "the worker thread was not stopped"
    assert _limited.evaluate(lambda x: x)  # the process carries on: the next check works


def test_an_answer_stuck_in_a_c_call_is_reported_as_still_running():
    import time

    result = _limited.evaluate(lambda x: time.sleep(1.0 + check._GRACE_S + 1.5))
    assert result.status == "failed" and "took longer than 1 s" in result.message
    assert "keeps running in the background" in result.message, result.message


def test_time_limit_must_be_positive():
    with pytest.raises(ValueError, match="time_limit_s"):
        check.exercise("test.bad_limit", title="t", hints=("a", "b", "c"), time_limit_s=0)


# ---------------------------------------------------------------- traceback trimmed to the learner's frames


def test_a_crash_inside_a_library_names_the_learners_line():
    def reshapes(x):
        values = np.arange(6)
        return np.reshape(values, (4,))  # numpy raises, deep inside its own files

    result = _double.evaluate(reshapes)
    assert result.status == "failed"
    assert "inside numpy (numpy/" in result.message, result.message
    assert "called from your line" in result.message and "np.reshape(values, (4,))" in result.message
    assert "fromnumeric.py" not in result.message.split("inside numpy")[0]  # no library line is shown as theirs
    assert re.search(r"Your frames: .*reshapes line \d+\.", result.message)


def test_a_wrapped_library_error_shows_its_root_cause():
    def wraps(x):
        try:
            int("seven")
        except ValueError as err:
            raise RuntimeError("step 1 of 3 failed\nboilerplate\nmore boilerplate\neven more") from err

    result = _double.evaluate(wraps)
    assert "Caused by ValueError: invalid literal" in result.message, result.message
    assert "boilerplate […]" in result.message and "\neven more" not in result.message  # cut to its first lines


def test_not_implemented_inside_a_library_is_a_crash_not_a_todo():
    import logging

    def emits(x):
        logging.Handler().emit(None)  # the stdlib's abstract method raises NotImplementedError: not the TODO

    result = _double.evaluate(emits)
    assert result.status == "failed", result.message
    assert "NotImplementedError inside logging" in result.message and "called from your line" in result.message


def test_a_checker_that_marks_a_placeholder_as_not_done():
    @check.exercise("test.text", title="text answer", hints=("a", "b", "c"))
    def text_answer(source):
        if "NotImplementedError" in source:
            raise check.NotDone("placeholder")
        return "ok"

    assert text_answer.evaluate("raise NotImplementedError").status == "not done"
    assert text_answer.evaluate("x = 1")


def _typed_in_a_notebook(source: str, name: str):
    """A learner function as IPython compiles a cell: a file name that is no path, the source in linecache."""
    import linecache

    filename = f"<ipython-input-7-{abs(hash(source)):x}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace[name]


def test_a_crash_with_no_learner_frame_is_blamed_on_the_checker_with_likely_causes(monkeypatch):
    @check.exercise("test.fragile", title="fragile checker", hints=("a", "b", "c"))
    def fragile(fn):
        return len(fn(1))  # the checker trusts the return type

    here = str(Path(__file__).resolve().parent) + "/"
    monkeypatch.setattr(check, "_LIBRARY_ROOTS", check._LIBRARY_ROOTS + (here,))  # this file plays trtlab's part
    result = fragile.evaluate(_typed_in_a_notebook("def answer(x):\n    return 3\n", "answer"))
    assert result.status == "failed"
    assert result.message.startswith("checking your answer raised TypeError (test_check.py, line")
    assert "Likely causes: your function returned something of another type" in result.message

    result = _double.evaluate(_typed_in_a_notebook("def answer(x):\n    y = 2\n    return x / (y - 2)\n", "answer"))
    assert result.message.startswith("your code raised ZeroDivisionError at line 3: `return x / (y - 2)`"), \
        result.message
    assert "Your frames: answer line 3." in result.message  # the checker's own frames are not shown
