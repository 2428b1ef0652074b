"""The review questions of every lab as exercises ``review.labNN``: one check per lab, graded by
:mod:`trtlab.review.bank`, so they show ✅/❌, hints and strict-mode failures like every other exercise."""

from __future__ import annotations

from typing import Any

from trtlab.check import Exercise, Mismatch, NotDone, exercise
from trtlab.i18n import N_
from trtlab.review import bank

__all__ = ["EXERCISES", "HINTS", "TITLES", "exercise_for"]

HINTS = (
    N_("Each ❌ names the section of this notebook that teaches it (\"see § …\"): re-read that section, then answer "
       "that question again."),
    N_("Formats: keys are question numbers ({1: \"b\", 2: 32}); a choice is its letter (\"b\") or its number (2 = b); "
       "a number is a number, within the tolerance the question states; a short text is a string (case, spaces, "
       "quotes and backticks do not matter)."),
    N_("Under each ❌ the check prints the explanation of that question: it says what is true and why. Correct that "
       "entry of `answers`, run the answers cell, then this check again."),
)
#: one title per lab, spelled out so that each is a message of its own (the framework translates titles as shown)
TITLES = {"00": N_("Lab 00: review questions"), "01": N_("Lab 01: review questions"),
          "02": N_("Lab 02: review questions"), "03": N_("Lab 03: review questions"),
          "04": N_("Lab 04: review questions"), "05": N_("Lab 05: review questions"),
          "06": N_("Lab 06: review questions")}


def _review_exercise(lab: str) -> Exercise:
    @exercise(f"review.lab{lab}", title=TITLES[lab], hints=HINTS, time_limit_s=10.0)
    def review(answers: Any) -> str:
        report = bank.grade(lab, answers)
        if not report.problems and report.answered == 0:
            raise NotDone("no answers yet")
        if not report:
            raise Mismatch(report.text())
        return report.text()

    return review


EXERCISES: dict[str, Exercise] = {lab: _review_exercise(lab) for lab in bank.LABS}


def exercise_for(lab: Any) -> Exercise:
    """The review exercise of ``lab`` (``3``, ``"03"`` or ``"lab03"``)."""
    return EXERCISES[bank.lab_id(lab)]
