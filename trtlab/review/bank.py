"""The question bank behind ``tl.review``: load a lab's questions, render them, and grade a learner's answers.

Questions are plain data (``trtlab/review/labNN.py``: strings and numbers only, the text marked ``N_()`` so it can be
translated), and grading never raises on what a learner typed: every problem becomes a verdict that names the
question. Text is translated where it is shown; a pointer's heading is the one the reader's notebook shows, taken from
that notebook's translation catalog (``i18n/<lang>/notebooks/NN_*.po``), so it follows the notebook when it changes.
"""

from __future__ import annotations

import importlib
import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from trtlab.errors import InvalidArgument
from trtlab.i18n import N_, _, language

__all__ = ["KINDS", "LABS", "Question", "Report", "ReviewSheet", "Verdict", "grade", "lab_id", "load", "normalise_text",
           "shown_heading"]

LABS = ("00", "01", "02", "03", "04", "05", "06")
KINDS = ("choice", "number", "text")
LETTERS = "abcdefgh"
_KEY = re.compile(r"^\s*(?:q(?:uestion)?\s*)?(\d+)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*([+-]?(?:\d[\d_,]*)?\.?\d+(?:[eE][+-]?\d+)?)\s*(.*?)\s*$")
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
#: the units questions use, marked so that the number they ask for reads naturally (the English unit stays accepted)
UNITS = {"pixels": N_("pixels"), "images": N_("images"), "bytes": N_("bytes"), "blocks": N_("blocks")}


def normalise_text(text: str) -> str:
    """What a short-text answer is compared as: case, quotes, backticks, spaces and a trailing ``.``/``()`` dropped."""
    text = re.sub(r"[`'\"]", "", text).casefold()
    text = re.sub(r"\s+", " ", text).strip()
    text = text.removesuffix(".").removesuffix("。").strip()
    return text.removesuffix("()").strip()


def _headings(markdown: str) -> list[str]:
    """The headings of one markdown cell, in order (lines in code fences and solution markers are not headings)."""
    found, fenced = [], False
    for line in markdown.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := _HEADING.match(line)) and not re.match(r"^#{3}\s+(BEGIN|END) SOLUTION", line):
            found.append(match.group(1))
    return found


@lru_cache(maxsize=64)
def _heading_translations(catalog: Path, stamp: int) -> dict[str, str]:
    """English heading → translated heading, from every current (non-fuzzy, translated) cell of one notebook catalog
    whose translation keeps the cell's headings one for one (``stamp``: the file's mtime, so an edit is seen)."""
    from trtlab.course_i18n import read_catalog

    pairs: dict[str, str] = {}
    for message in read_catalog(catalog):
        if message.id and message.string and not message.fuzzy:
            english, translated = _headings(str(message.id)), _headings(str(message.string))
            if len(english) == len(translated):
                pairs.update(zip(english, translated))
    return pairs


def shown_heading(notebook: str, heading: str, lang: str | None = None, root: Path | None = None) -> str:
    """``heading`` (of the English ``notebook``) as the reader's edition of that notebook shows it: the English in
    English, else its current translation from the notebook's catalog (the English when that cell's translation is
    missing or stale)."""
    lang = lang or language()
    if lang == "en":
        return heading
    from trtlab.course_i18n import catalog_path

    path = catalog_path(lang, notebook, root)
    if not path.exists():
        return heading
    return _heading_translations(path, path.stat().st_mtime_ns).get(heading, heading)


@dataclass(frozen=True)
class Question:
    """One review question: what is asked, the right answer, why, and the notebook section that teaches it."""

    lab: str
    number: int
    kind: str  # "choice" | "number" | "text"
    text: str
    explanation: str
    see: str  # a heading of the lab's notebook, as written there (without the leading #s)
    choices: tuple[str, ...] = ()
    answer: Any = None  # choice: a letter; number: the value; text: the canonical form
    tolerance: float = 0.0  # number: absolute tolerance
    unit: str = ""
    accept: tuple[str, ...] = ()  # text: every accepted form (the canonical one included)
    notebook: str = ""  # the lab's notebook file, where ``see`` is a heading

    @property
    def pointer(self) -> str:
        return _("see § {heading}").format(heading=shown_heading(self.notebook, self.see) if self.notebook
                                           else self.see)

    @property
    def shown_text(self) -> str:
        return _(self.text)

    @property
    def shown_choices(self) -> tuple[str, ...]:
        return tuple(_(c) for c in self.choices)

    @property
    def shown_explanation(self) -> str:
        return _(self.explanation)

    @property
    def shown_unit(self) -> str:
        return _(UNITS.get(self.unit, self.unit)) if self.unit else ""

    def form(self) -> str:
        """How to answer, in a few words (shown with the question)."""
        if self.kind == "choice":
            return _("choose one: a letter {first}–{last}").format(first=LETTERS[0],
                                                                   last=LETTERS[len(self.choices) - 1])
        if self.kind == "number":
            form = _("a number in {unit}").format(unit=self.shown_unit) if self.unit else _("a number")
            return form + (_(", within ±{tolerance}").format(tolerance=f"{self.tolerance:g}") if self.tolerance
                           else "")
        return _("a short text")

    def grade(self, given: Any) -> "Verdict":
        """Judge one answer; never raises."""
        if _blank(given):
            return Verdict(self, "missing", _("no answer yet."))
        reader = {"choice": self._read_choice, "number": self._read_number, "text": self._read_text}[self.kind]
        value, problem = reader(given)
        if problem:
            return Verdict(self, "invalid", problem)
        if self.kind == "choice":
            right = value == self.answer
            shown = f"({value})"
        elif self.kind == "number":
            right = abs(value - float(self.answer)) <= self.tolerance + 1e-9 * max(1.0, abs(float(self.answer)))
            shown = f"{value:g}"
        else:
            right = value in {normalise_text(a) for a in self.accept}
            shown = repr(given.strip())
        return Verdict(self, "correct" if right else "wrong", _("you answered {answer}.").format(answer=shown))

    def _read_choice(self, given: Any) -> tuple[str | None, str]:
        if isinstance(given, (tuple, list)) and len(given) == 1:
            given = given[0]
        letters = LETTERS[: len(self.choices)]
        expected = _("answer with one letter {first}–{last} (e.g. \"{example}\"), or its number 1–{count}").format(
            first=letters[0], last=letters[-1], example=letters[1], count=len(letters))
        if isinstance(given, bool) or not isinstance(given, (str, numbers.Integral)):
            return None, _got(expected, _show(given))
        if isinstance(given, numbers.Integral):
            if 1 <= int(given) <= len(letters):
                return letters[int(given) - 1], ""
            return None, _("there is no choice number {number}: {expected}.").format(number=int(given),
                                                                                    expected=expected)
        text = given.strip().strip("()[].: ").casefold()
        if text.isdigit():
            return self._read_choice(int(text))
        if len(text) == 1 and text in letters:
            return text, ""
        by_text = [letters[i] for i, c in enumerate(self.choices)
                   if normalise_text(given) in {normalise_text(c), normalise_text(_(c))}]
        if by_text:
            return by_text[0], ""
        if len(text) == 1 and text.isalpha():
            return None, _("there is no choice ({letter}): {expected}.").format(letter=text, expected=expected)
        return None, _got(expected, repr(given))

    def _read_number(self, given: Any) -> tuple[float | None, str]:
        expected = (_("answer with a number (in {unit})").format(unit=self.shown_unit) if self.unit
                    else _("answer with a number"))
        if isinstance(given, bool):
            return None, _got(expected, _("{value!r} (a bool)").format(value=given))
        if isinstance(given, numbers.Real):
            value = float(given)
        elif isinstance(given, str):
            match = _NUMBER.match(given)
            rest = match.group(2).casefold() if match else None
            units = {"", self.unit.casefold(), self.unit.casefold().rstrip("s"), self.shown_unit.casefold()}
            if not match or rest not in units:
                return None, _got(expected, repr(given))
            value = float(match.group(1).replace("_", "").replace(",", ""))
        else:
            return None, _got(expected, _show(given))
        if not math.isfinite(value):
            return None, _got(expected, repr(value))
        return value, ""

    def _read_text(self, given: Any) -> tuple[str | None, str]:
        if not isinstance(given, str):
            return None, _got(_("answer with a short text (a str, e.g. \"{example}\" style)").format(
                example=self.accept[0]), _show(given))
        return normalise_text(given), ""


def _blank(given: Any) -> bool:
    return any(given is u for u in (None, Ellipsis)) or (isinstance(given, str) and not given.strip())


def _got(expected: str, got: str) -> str:
    """What an unreadable answer is told: what was expected, then what was given."""
    return _("{expected}; got {got}.").format(expected=expected, got=got)


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text[:60]}… ({type(value).__name__})" if len(text) > 60 else f"{text} ({type(value).__name__})"


@dataclass(frozen=True)
class Verdict:
    """The judgement of one answer: status "correct" | "wrong" | "missing" | "invalid", and what was seen."""

    question: Question
    status: str
    note: str

    @property
    def icon(self) -> str:
        return {"correct": "✅", "wrong": "❌", "missing": "⏳", "invalid": "❌"}[self.status]

    def line(self) -> str:
        q = self.question
        if self.status in ("correct", "wrong"):
            return _("Q{number} {icon} {note} {explanation} ({pointer})").format(
                number=q.number, icon=self.icon, note=self.note, explanation=q.shown_explanation, pointer=q.pointer)
        return _("Q{number} {icon} {note} ({pointer})").format(number=q.number, icon=self.icon, note=self.note,
                                                               pointer=q.pointer)


@dataclass
class Report:
    """Every verdict of one check, plus problems with the answers dict itself (unknown or duplicate keys)."""

    lab: str
    verdicts: list[Verdict]
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems and all(v.status == "correct" for v in self.verdicts)

    @property
    def answered(self) -> int:
        return sum(v.status != "missing" for v in self.verdicts)

    def count(self, status: str) -> int:
        return sum(v.status == status for v in self.verdicts)

    def text(self) -> str:
        wrong, missing = self.count("wrong") + self.count("invalid"), self.count("missing")
        details = ((_(", {count} wrong or unreadable").format(count=wrong) if wrong else "")
                   + (_(", {count} not answered").format(count=missing) if missing else ""))
        head = _("Lab {lab} review: {correct} of {total} correct{details}.").format(
            lab=self.lab, correct=self.count("correct"), total=len(self.verdicts), details=details)
        lines = [] if self.answered == 0 else [v.line() for v in self.verdicts]  # nothing read: the problems say why
        return "\n".join([head, *self.problems, *lines])


def lab_id(lab: Any) -> str:
    """``3``, ``"3"``, ``"03"``, ``"lab03"`` or ``"03_build_engine"`` → ``"03"``; anything else is refused."""
    text = str(lab).strip().casefold().removeprefix("lab").removeprefix(" ")
    match = re.match(r"^(\d{1,2})(?:_\w*)?$", text) if not isinstance(lab, bool) else None
    if match and match.group(1).zfill(2) in LABS:
        return match.group(1).zfill(2)
    raise InvalidArgument(_("no review questions for lab {lab!r} | expected one of {labs} (e.g. tl.review.show(\"03\"))"
                            " | pass the lab's two-digit number").format(lab=lab, labs=", ".join(LABS)))


def load(lab: Any) -> tuple[str, tuple[Question, ...]]:
    """The lab's notebook file name and its questions, numbered from 1, each checked to be well formed."""
    lab = lab_id(lab)
    data = importlib.import_module(f"{__package__}.lab{lab}")
    questions = tuple(_question(lab, i, entry, data.NOTEBOOK) for i, entry in enumerate(data.QUESTIONS, start=1))
    return data.NOTEBOOK, questions


def _question(lab: str, number: int, entry: Mapping[str, Any], notebook: str = "") -> Question:
    q = Question(lab=lab, number=number, notebook=notebook,
                 **{k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()})
    where = f"lab {lab} question {number}"
    if q.kind not in KINDS:
        raise ValueError(f"{where}: kind {q.kind!r} is not one of {KINDS}")
    if not (q.text.strip() and q.explanation.strip() and q.see.strip()):
        raise ValueError(f"{where}: text, explanation and see must all be non-empty")
    if q.kind == "choice" and not (2 <= len(q.choices) <= len(LETTERS) and q.answer in LETTERS[: len(q.choices)]):
        raise ValueError(f"{where}: needs 2–{len(LETTERS)} choices and an answer letter among them")
    if q.kind == "number" and (isinstance(q.answer, bool) or not isinstance(q.answer, numbers.Real)
                               or q.tolerance < 0):
        raise ValueError(f"{where}: a number question needs a numeric answer and a tolerance ≥ 0")
    if q.kind == "text" and not (q.accept and q.answer in q.accept):
        raise ValueError(f"{where}: a text question lists its accepted forms, the answer first among them")
    return q


def grade(lab: Any, answers: Any) -> Report:
    """Grade ``answers`` ({question number: answer}) for one lab; never raises on what the learner wrote."""
    lab = lab_id(lab)
    _notebook, questions = load(lab)
    if not isinstance(answers, Mapping):
        return Report(lab, [Verdict(q, "missing", _("no answer yet.")) for q in questions],
                      [_("answers must be a dict {{question number: answer}}, e.g. {{1: \"b\", 2: 32}}; got "
                         "{got}.").format(got=_show(answers))])
    by_number: dict[int, Any] = {}
    problems = []
    for key, value in answers.items():
        match = _KEY.match(str(key)) if isinstance(key, (str, numbers.Integral)) and not isinstance(key, bool) else None
        number = int(match.group(1)) if match else None
        if number is None:
            problems.append(_("key {key!r}: keys are question numbers 1–{count} (e.g. 3 or \"3\").").format(
                key=key, count=len(questions)))
        elif not 1 <= number <= len(questions):
            problems.append(_("key {key!r}: there is no question {number}; this lab has questions 1–{count}.").format(
                key=key, number=number, count=len(questions)))
        elif number in by_number:
            problems.append(_("key {key!r}: question {number} is answered twice; keep one entry.").format(
                key=key, number=number))
        else:
            by_number[number] = value
    return Report(lab, [q.grade(by_number.get(q.number)) for q in questions], problems)


@dataclass(frozen=True)
class ReviewSheet:
    """A lab's questions as the notebook shows them (Markdown in Jupyter, plain text elsewhere)."""

    lab: str
    questions: tuple[Question, ...]

    def _blocks(self, markdown: bool) -> list[str]:
        blocks = []
        for q in self.questions:
            text, form = q.shown_text, q.form()
            head = (_("**{number}.** {text} *({form})*") if markdown else _("{number}. {text} ({form})")).format(
                number=q.number, text=text, form=form)
            bullet = "-" if markdown else "  "
            options = [f"{bullet} ({LETTERS[i]}) {c}" for i, c in enumerate(q.shown_choices)]
            blocks.append("\n".join([head, *options]))
        return blocks

    def _intro(self) -> str:
        return _("Lab {lab}: {count} review questions. Answer in the next cell as "
                 "`answers = {{1: \"b\", 2: 32, ...}}`: a choice as its letter (any case; or its number, 1 = a), a "
                 "number as a number, a short text as a string (case, spaces and backticks do not matter).").format(
                     lab=self.lab, count=len(self.questions))

    def _repr_markdown_(self) -> str:
        return "\n\n".join([self._intro(), *self._blocks(markdown=True)])

    def __str__(self) -> str:
        return "\n\n".join([self._intro().replace("`", ""), *self._blocks(markdown=False)])
