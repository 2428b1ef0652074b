"""The review exercises: each notebook's own answers pass, other answer styles pass, typical mistakes fail naming
the question, and bad input is reported, never raised."""

import re
import time

import nbformat
import pytest

import trtlab as tl
from trtlab.check import review
from trtlab.errors import CheckFailed
from trtlab.paths import course_root
from trtlab.review import bank

from conftest import assert_fails, assert_not_done, assert_passes


def notebook_answers(lab):
    """The answers dict written in the solution notebook's rq-NN-answers cell, and the calls of its other rq cells."""
    notebook, _ = bank.load(lab)
    nb = nbformat.read(course_root() / "solutions" / notebook, as_version=4)
    cells = {c.get("id"): c for c in nb.cells}
    assert [c.get("id") for c in nb.cells[-4:]] == [f"rq-{lab}-{p}" for p in ("md", "show", "answers", "check")]
    scope = {}
    exec(cells[f"rq-{lab}-answers"].source, scope)
    return scope["answers"], cells


def solution(lab):
    return {q.number: q.answer for q in tl.review.questions(lab)}


@pytest.mark.parametrize("lab", bank.LABS)
def test_each_notebook_answers_pass_and_its_cells_call_the_front_door(lab):
    answers, cells = notebook_answers(lab)
    result = assert_passes(review.exercise_for(lab), answers)
    assert f"{len(answers)} of {len(answers)} correct" in result.message
    assert cells[f"rq-{lab}-show"].source == f'tl.review.show("{lab}")'
    assert cells[f"rq-{lab}-check"].source == f'tl.review.check("{lab}", answers)'
    assert "### BEGIN SOLUTION" in cells[f"rq-{lab}-answers"].source


def by_index_and_string_keys(lab):
    """Another style: string keys "Q3", choices as 1-based numbers, numbers as strings."""
    out = {}
    for q in tl.review.questions(lab):
        if q.kind == "choice":
            out[f"Q{q.number}"] = bank.LETTERS.index(q.answer) + 1
        else:
            out[f"q{q.number}"] = f"{q.answer}" if q.kind == "number" else q.answer
    return out


def upper_and_full_text(lab):
    """Another style: upper-case letters in a 1-tuple or the choice's own text; text answers in backticks."""
    out = {}
    for q in tl.review.questions(lab):
        if q.kind == "choice":
            i = bank.LETTERS.index(q.answer)
            out[str(q.number)] = (q.answer.upper(),) if q.number % 2 else q.choices[i]
        elif q.kind == "text":
            out[q.number] = f" `{q.accept[-1]}` "
        else:
            out[q.number] = q.answer + q.tolerance / 2
    return out


@pytest.mark.parametrize("style", [by_index_and_string_keys, upper_and_full_text])
@pytest.mark.parametrize("lab", bank.LABS)
def test_other_answer_styles_pass(lab, style):
    assert_passes(review.exercise_for(lab), style(lab))


def _first(lab, kind):
    return next(q for q in tl.review.questions(lab) if q.kind == kind)


def test_typical_mistakes_fail_naming_the_question():
    ex = review.exercise_for("03")
    # the weak-typing answer: precision flags (a distractor of question 1)
    q1 = tl.review.questions("03")[0]
    wrong = bank.LETTERS[[i for i, c in enumerate(q1.choices) if "BuilderFlag.FP16" in c][0]]
    assert_fails(ex, {**solution("03"), 1: wrong}, rf"Q1 ❌ you answered \({wrong}\)\..*see § 2\. Build an engine")
    # the profile's max taken for its opt
    assert_fails(ex, {**solution("03"), 6: 32}, r"Q6 ❌ you answered 32\..*times its kernels at opt")
    # fp32 bytes for an fp16 tensor
    assert_fails(ex, {**solution("03"), 9: 393216}, r"Q9 ❌ you answered 393216\..*2 bytes")
    # the batch dimension in dims (Lab 06)
    q1 = tl.review.questions("06")[0]
    with_batch = bank.LETTERS[q1.choices.index("[-1, 3, 32, 32]")]
    assert_fails(review.exercise_for("06"), {**solution("06"), 1: with_batch},
                 r"Q1 ❌.*Triton owns the first \(batch\) dimension")
    # execute_async_v2 for v3
    assert_fails(review.exercise_for("00"), {**solution("00"), 8: "execute_async_v2"}, r"Q8 ❌ you answered")


@pytest.mark.parametrize("answers, message", [
    ([("1", "b")], r"answers must be a dict .* got \[\('1', 'b'\)\] \(list\)"),
    ("b, c, a", r"answers must be a dict"),
    ({**{i: "a" for i in range(1, 11)}, 11: "a"}, r"key 11: there is no question 11; this lab has questions 1–10"),
    ({"first": "a"}, r"key 'first': keys are question numbers"),
    ({1: 7}, r"Q1 ❌ there is no choice number 7.*Q2 ⏳ no answer yet"),
    ({6: "eight"}, r"Q6 ❌ answer with a number; got 'eight'"),
    ({6: [8]}, r"Q6 ❌ answer with a number; got \[8\] \(list\)"),
])
def test_bad_input_is_reported_by_question_never_raised(answers, message):
    assert_fails(review.exercise_for("03"), answers, message)


def test_text_answer_of_the_wrong_type():
    q = _first("05", "text")
    assert_fails(review.exercise_for("05"), {**solution("05"), q.number: 1.0},
                 rf"Q{q.number} ❌ answer with a short text")


def test_missing_answers_are_named_and_fail():
    partial = {k: v for k, v in solution("02").items() if k != 4}
    result = assert_fails(review.exercise_for("02"), partial, r"1 not answered.*Q4 ⏳ no answer yet\. \(see § ")
    assert "Q5 ✅" in result.message


@pytest.mark.parametrize("empty", [{}, {1: None, 2: ...}])
def test_no_answers_is_not_done(empty):
    assert_not_done(review.exercise_for("01"), empty)


def test_front_door_checks_fast_and_raises_in_strict_mode(monkeypatch, capsys):
    monkeypatch.setenv("TRTLAB_STRICT_CHECKS", "1")
    start = time.perf_counter()
    assert tl.review.check("lab04", solution("04"))
    assert time.perf_counter() - start < 1.0
    assert "✅ review.lab04" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="Q2 ❌"):
        tl.review.check(4, {**solution("04"), 2: 1.0})


def test_three_hints_and_hint_by_key(capsys):
    ex = review.exercise_for("00")
    assert len(ex.hints) == 3 and ex.key == "review.lab00"
    tl.hint("review.lab00")
    assert re.search(r"hint 1/3 for review\.lab00", capsys.readouterr().out)


@pytest.fixture
def zh(language):
    language("zh_CN")


def test_check_speaks_chinese_verdicts_explanations_title_and_hints(zh, capsys, monkeypatch):
    monkeypatch.setenv("TRTLAB_STRICT_CHECKS", "1")
    ex = review.exercise_for("00")
    q1 = tl.review.questions("00")[0]
    result = assert_fails(ex, {**solution("00"), 1: "a"}, r"^Lab 00 复习题：共 8 题，答对 7 题，1 题答错或无法识别。")
    assert f"Q1 ❌ 你的答案是 (a)。{q1.shown_explanation}（参见 § 练习 1 — " in result.message
    assert "FP8 Tensor Core 随 Ada（8.9）和 Hopper（9.0）出现" in result.message
    assert "卡住了" in result.message and "tl.hint('review.lab00')" in result.message
    passed = assert_passes(ex, solution("00"))
    assert "答对 8 题" in passed.message and "Q8 ✅ 你的答案是 'execute_async_v3'。" in passed.message
    assert ex.shown_title == "Lab 00：复习题"
    assert ex.hint(2).startswith("💡 提示 2/3（review.lab00）：格式：键是题号（{1: \"b\", 2: 32}）")
    with pytest.raises(CheckFailed, match="Q8 ❌ 你的答案是 'execute_async_v2'。"):  # strict mode, as in CI
        tl.review.check("00", {**solution("00"), 8: "execute_async_v2"})
    assert "❌ review.lab00: Lab 00 复习题" in capsys.readouterr().out


def test_check_back_in_english_is_unchanged(zh):
    tl.set_language("en")
    result = assert_fails(review.exercise_for("00"), {**solution("00"), 1: "a"}, r"^Lab 00 review: 7 of 8 correct")
    assert "Q1 ❌ you answered (a). FP8 tensor cores arrived" in result.message
    assert "(see § Exercise 1 — what does a compute capability buy you?)" in result.message
    assert review.exercise_for("00").shown_title == "Lab 00: review questions"
