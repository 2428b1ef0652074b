"""Helpers shared by the per-lab checker tests: a verdict with its reason, and a check under a short time limit."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

HANG_LIMIT_S = 1.5  # the limit the hanging-function tests run under, instead of the exercise's own (tens of seconds)


def assert_passes(ex: Any, answer: Any, **kwargs: Any):
    result = ex.evaluate(answer, **kwargs)
    assert result.status == "passed", result.message
    return result


def assert_fails(ex: Any, answer: Any, reason: str, **kwargs: Any):
    """The check fails and its message names ``reason`` (a regular expression)."""
    result = ex.evaluate(answer, **kwargs)
    assert result.status == "failed", f"expected a failure naming {reason!r}; got {result}"
    assert re.search(reason, result.message, re.S), result.message
    return result


def assert_not_done(ex: Any, answer: Any, **kwargs: Any) -> None:
    result = ex.evaluate(answer, **kwargs)
    assert result.status == "not done" and "not done yet" in result.message, result.message


def hang(*args: Any, **kwargs: Any) -> Any:
    """A learner function whose loop never ends."""
    n = 0
    while True:
        n += 1


@pytest.fixture
def fails_within_limit(monkeypatch):
    """``fails_within_limit(ex, answer)``: the check of a hanging ``answer`` fails as "took longer than" within the
    (shortened) limit plus the framework's grace period, and the process carries on."""
    from trtlab import check

    def run(ex: Any, answer: Any = hang, **kwargs: Any):
        monkeypatch.setattr(ex, "time_limit_s", HANG_LIMIT_S)
        start = time.perf_counter()
        result = ex.evaluate(answer, **kwargs)
        elapsed = time.perf_counter() - start
        assert result.status == "failed", result.message
        assert f"took longer than {HANG_LIMIT_S:g} s" in result.message, result.message
        assert elapsed < HANG_LIMIT_S + check._GRACE_S + 1.0, f"the check took {elapsed:.1f} s"
        return result

    return run
