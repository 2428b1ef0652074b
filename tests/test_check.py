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
