"""Review questions at the end of every lab: an interview-style self-check ("面试题"), auto-checked.

In a notebook::

    tl.review.show("03")              # the questions, numbered, with their choices
    answers = {1: "b", 2: 32, 3: "execute_async_v3"}
    tl.review.check("03", answers)    # ✅ / ❌ per question, with its explanation and the section that teaches it

Answers: a choice as its letter (``"b"``, ``"B"``, ``"(b)"``, ``["b"]``) or its 1-based number (``2`` = b); a number
as a number (or a numeric string, optionally with the question's unit), within the tolerance the question states;
a short text as a string, compared without case, quotes, backticks, repeated spaces or a trailing ``()``.
The check runs through the course's exercise framework (``tl.hint("review.lab03")``, strict mode in CI).
"""

from __future__ import annotations

from typing import Any

from trtlab.review import bank
from trtlab.review.bank import LABS, Question, ReviewSheet

__all__ = ["LABS", "Question", "ReviewSheet", "check", "questions", "show"]


def questions(lab: Any) -> tuple[Question, ...]:
    """The questions of one lab (``"00"`` … ``"06"``), numbered from 1."""
    return bank.load(lab)[1]


def show(lab: Any) -> ReviewSheet:
    """The lab's questions, displayed as Markdown when it is the last value of a cell."""
    return ReviewSheet(bank.lab_id(lab), questions(lab))


def check(lab: Any, answers: Any):
    """Check ``answers`` ({question number: answer}) like every other exercise: ✅/❌ per question with its
    explanation and section, graded hints, strict mode in CI."""
    from trtlab.check import review as exercises

    return exercises.exercise_for(lab)(answers)
