"""The question bank: every lab has 6–10 well-formed questions whose pointers name real headings of its notebook,
the sheet renders them, and grading reads every accepted answer style and refuses the rest by question."""

import re

import nbformat
import pytest

import trtlab as tl
from trtlab.errors import InvalidArgument
from trtlab.paths import course_root
from trtlab.review import bank

HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
MARKER = re.compile(r"^#{3}\s+(BEGIN|END) SOLUTION$")


def headings(notebook: str) -> set[str]:
    nb = nbformat.read(course_root() / "solutions" / notebook, as_version=4)
    return {HEADING.match(line).group(1) for c in nb.cells if c.cell_type == "markdown"
            for line in c.source.split("\n") if HEADING.match(line) and not MARKER.match(line)}


@pytest.mark.parametrize("lab", bank.LABS)
def test_every_lab_has_6_to_10_complete_questions(lab):
    notebook, questions = bank.load(lab)
    assert 6 <= len(questions) <= 10, f"lab {lab}: {len(questions)} questions"
    assert [q.number for q in questions] == list(range(1, len(questions) + 1))
    for q in questions:
        assert q.kind in bank.KINDS and q.text.strip() and len(q.explanation) > 80, (lab, q.number)
        if q.kind == "choice":
            assert len(set(q.choices)) == len(q.choices) >= 3, (lab, q.number)
            assert q.answer in bank.LETTERS[: len(q.choices)]
        assert notebook.startswith(lab)


@pytest.mark.parametrize("lab", bank.LABS)
def test_every_pointer_names_a_heading_of_its_notebook(lab):
    notebook, questions = bank.load(lab)
    found = headings(notebook)
    missing = {q.number: q.see for q in questions if q.see not in found}
    assert not missing, f"{notebook}: pointers to headings that do not exist: {missing}"


def test_the_right_answers_are_spread_over_the_choices():
    letters = [q.answer for lab in bank.LABS for q in bank.load(lab)[1] if q.kind == "choice"]
    assert max(letters.count(x) for x in set(letters)) < 0.5 * len(letters), letters


def test_data_files_hold_plain_data_only():
    """Translatable: the data modules assign literals (text marked N_("...") for extraction), never compute text."""
    import ast

    class Unmark(ast.NodeTransformer):
        def visit_Call(self, node):
            assert isinstance(node.func, ast.Name) and node.func.id == "N_" and len(node.args) == 1
            assert isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
            return node.args[0]

    for lab in bank.LABS:
        tree = ast.parse((course_root() / "trtlab" / "review" / f"lab{lab}.py").read_text())
        assert ast.unparse(tree.body[1]) == "from trtlab.i18n import N_", f"lab{lab}.py: imports N_ only"
        for node in tree.body[2:]:
            assert isinstance(node, ast.Assign), f"lab{lab}.py: only assignments of literals"
            ast.literal_eval(Unmark().visit(node.value))


def test_show_renders_numbered_questions_and_choices():
    sheet = tl.review.show("03")
    md, text = sheet._repr_markdown_(), str(sheet)
    for q in tl.review.questions("03"):
        assert f"**{q.number}.** {q.text}" in md and f"{q.number}. {q.text}" in text
        for letter, choice in zip(bank.LETTERS, q.choices):
            assert f"- ({letter}) {choice}" in md
    assert "within ±" in str(tl.review.show("04"))


@pytest.mark.parametrize("lab", [3, "3", "03", "lab03", "03_build_engine", " Lab03 "])
def test_lab_ids(lab):
    assert bank.lab_id(lab) == "03"


@pytest.mark.parametrize("lab", ["07", 7, "", None, True, "lab", "3.0"])
def test_unknown_lab_is_a_course_error(lab):
    with pytest.raises(InvalidArgument, match="expected one of 00, 01"):
        tl.review.show(lab)


def _question(kind):
    return next(q for lab in bank.LABS for q in bank.load(lab)[1] if q.kind == kind)


@pytest.mark.parametrize("given", ["{a}", "{A}", " ({a}) ", "{a})", ("{a}",), ["{A}"], "{n}", "{choice}"])
def test_choice_accepts_letter_index_and_text(given):
    q = _question("choice")
    n = bank.LETTERS.index(q.answer) + 1
    if isinstance(given, str):
        given = given.format(a=q.answer, A=q.answer.upper(), n=n, choice=q.choices[n - 1])
    else:
        given = type(given)(g.format(a=q.answer, A=q.answer.upper()) for g in given)
    assert q.grade(given).status == "correct"
    assert q.grade(n).status == "correct"


@pytest.mark.parametrize("given, status, message", [
    ("z", "invalid", r"there is no choice \(z\)"),
    (9, "invalid", "no choice number 9"),
    (True, "invalid", "one letter"),
    (["a", "b"], "invalid", "one letter"),
    (1.5, "invalid", "one letter"),
    ("maybe b", "invalid", "one letter"),
    (None, "missing", "no answer"),
    (..., "missing", "no answer"),
    ("  ", "missing", "no answer"),
])
def test_choice_refuses_unreadable_answers(given, status, message):
    verdict = _question("choice").grade(given)
    assert verdict.status == status and re.search(message, verdict.note), verdict


def test_number_tolerance_and_forms():
    q = next(q for q in bank.load("04")[1] if q.answer == 41.5)  # tolerance 0.001
    assert all(q.grade(g).status == "correct" for g in (41.5, "41.5", 41.5004, "4.15e1"))
    assert q.grade(41.6).status == "wrong"
    b = next(q for q in bank.load("03")[1] if q.unit == "bytes")
    assert all(b.grade(g).status == "correct" for g in (196608, 196608.0, "196,608", "196_608", "196608 bytes"))
    import numpy as np

    assert b.grade(np.int64(196608)).status == "correct" and b.grade(98304).status == "wrong"
    for bad in (True, "lots", float("nan"), [196608], "196608 MB"):
        assert b.grade(bad).status == "invalid", bad


def test_text_is_normalised():
    q = next(q for q in bank.load("00")[1] if q.kind == "text")
    for good in ("execute_async_v3", "`execute_async_v3`", "  Execute_Async_V3()  ", "context.execute_async_v3(stream)",
                 "'execute_async_v3'."):
        assert q.grade(good).status == "correct", good
    assert q.grade("execute_async_v2").status == "wrong"
    assert q.grade(3).status == "invalid" and "short text" in q.grade(3).note


def test_grade_reports_key_problems_by_name():
    report = bank.grade("00", {"q1": "c", "Q2": "c", 1: "c", 99: "a", "x": "b", 2.0: "c"})
    text = report.text()
    assert not report
    assert "question 1 is answered twice" in text and "no question 99" in text and "key 'x'" in text
    assert "key 2.0" in text


def test_normalise_text():
    assert bank.normalise_text("  `Foo`   Bar().  ") == "foo bar"


# ---------------------------------------------------------------- in Chinese (tl.set_language("zh_CN"))

CJK = re.compile(r"[\u4e00-\u9fff]")
CODE = re.compile(r"`[^`]*`")
ZH_SOLUTIONS = sorted((course_root() / "solutions" / "zh_CN").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def zh(language):
    language("zh_CN")


def _all_questions():
    return [q for lab in bank.LABS for q in bank.load(lab)[1]]


def test_every_question_is_translated_with_its_code_spans_intact(zh):
    """Each text, choice and explanation marked for translation reads Chinese and keeps every `code span` as is."""
    pairs = []
    for q in _all_questions():
        pairs += [(q.text, q.shown_text), (q.explanation, q.shown_explanation)]
        pairs += [(c, z) for c, z in zip(q.choices, q.shown_choices) if c != z]  # unmarked choices: code names
    assert len(pairs) > 250
    for english, chinese in pairs:
        assert CJK.search(chinese), f"not translated: {english!r}"
        assert sorted(CODE.findall(english)) == sorted(CODE.findall(chinese)), (english, chinese)
    untranslated = {c for q in _all_questions() for c, z in zip(q.choices, q.shown_choices) if c == z}
    assert all(not re.search(r"\b[a-z]{2,}\b", CODE.sub("", c)) or c.startswith("(int(") for c in untranslated), (
        untranslated)  # what stays English is a name, a version or a shape


def test_show_renders_chinese_questions_with_code_names_intact(zh):
    sheet = tl.review.show("03")
    md, text = sheet._repr_markdown_(), str(sheet)
    assert md.startswith("Lab 03：10 道复习题。") and "`answers = {1: \"b\", 2: 32, ...}`" in md
    assert "（单选：填一个字母 a–d）" in text and "*（一个数，单位：字节）*" in md
    q1 = tl.review.questions("03")[0]
    assert f"**1.** {q1.shown_text}" in md and "强类型" in q1.shown_text
    assert "- (a) 设置 `BuilderFlag.FP16` / `INT8`，由 TensorRT 逐层选择精度" in md
    assert "*（一个数，误差不超过 ±0.001）*" in tl.review.show("04")._repr_markdown_()
    assert "- (a) [3, 32, 32]" in tl.review.show("06")._repr_markdown_()  # a shape stays a shape


def test_chinese_verdicts_explanations_and_problems(zh):
    q = tl.review.questions("03")[5]  # the profile's opt
    report = bank.grade("03", {6: 32, 9: "196608 字节", "x": 1, 1: "maybe"})
    text = report.text()
    assert text.startswith("Lab 03 复习题：共 10 题，答对 1 题，2 题答错或无法识别，7 题未作答。"), text
    assert "key 'x'：键应是题号 1–10（例如 3 或 \"3\"）。" in text
    assert f"Q6 ❌ 你的答案是 32。{q.shown_explanation}（参见 § " in text and "TensorRT 在 opt（8）上为核函数计时" in text
    assert "Q9 ✅ 你的答案是 196608。" in text  # the Chinese unit is accepted, like the English one
    assert "Q1 ❌ 请用一个字母 a–d 作答（例如 \"b\"），或用它的序号 1–4；收到的是 'maybe'。" in text
    assert "Q2 ⏳ 尚未作答。（参见 § " in text
    assert bank.grade("03", [1]).problems == ["answers 必须是形如 {question number: answer} 的 dict（键是题号，值是答案），"
                                              "例如 {1: \"b\", 2: 32}；收到的是 [1] (list)。"]
    with pytest.raises(InvalidArgument, match="没有 lab '07' 的复习题 | 应为以下之一：00, 01"):
        tl.review.show("07")


def test_chinese_answers_to_concept_words_and_choices_are_accepted(zh):
    version = next(q for q in bank.load("05")[1] if q.kind == "text")
    assert version.grade("版本 1").status == "correct" and version.grade("version 1").status == "correct"
    q = tl.review.questions("03")[0]
    assert q.grade(q.shown_choices[3]).status == "correct"  # the choice's Chinese text
    assert q.grade(q.choices[3]).status == "correct"  # and its English text


@pytest.mark.parametrize("notebook", [p.name for p in ZH_SOLUTIONS])
def test_chinese_pointers_name_headings_of_the_chinese_notebook(zh, notebook):
    """Every pointer of a lab whose Chinese notebook is generated names a heading the reader sees there."""
    lab = notebook[:2]
    nb = nbformat.read(course_root() / "solutions" / "zh_CN" / notebook, as_version=4)
    found = {HEADING.match(line).group(1) for c in nb.cells if c.cell_type == "markdown"
             for line in c.source.split("\n") if HEADING.match(line) and not MARKER.match(line)}
    for q in tl.review.questions(lab):
        heading = q.pointer.removeprefix("参见 § ")
        assert heading in found and CJK.search(heading), (q.number, q.pointer)


def test_a_pointer_follows_the_notebook_catalog_current_stale_and_missing(tmp_path):
    """The pointer's heading comes from the notebook catalog: a current translation is used, a stale one (fuzzy:
    the English changed) falls back to the English heading, and an edited translation is seen at once."""
    import io

    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    from trtlab import course_i18n

    path = course_i18n.catalog_path("zh_CN", "99_demo.ipynb", tmp_path)
    path.parent.mkdir(parents=True)

    def write(entries):
        catalog = Catalog(locale="zh_CN")
        for cell, english, chinese, flags in entries:
            catalog.add(english, chinese, context=cell, flags=flags)
        buffer = io.BytesIO()
        write_po(buffer, catalog)
        path.write_bytes(buffer.getvalue())

    write([("a", "## 1. Build\n\ntext\n\n```python\n# not a heading\n```\n### Exercise 1 — build it", "## 1. 构建\n\n正文\n\n"
            "```python\n# not a heading\n```\n### 练习 1 — 构建它", set()),
           ("b", "## 2. Run", "## 2. 运行（旧）", {"fuzzy"})])
    shown = lambda heading: bank.shown_heading("99_demo.ipynb", heading, "zh_CN", tmp_path)  # noqa: E731
    assert shown("1. Build") == "1. 构建" and shown("Exercise 1 — build it") == "练习 1 — 构建它"
    assert shown("2. Run") == "2. Run"  # stale: the English heading, never an outdated translation
    assert shown("3. Not in the catalog") == "3. Not in the catalog"
    assert bank.shown_heading("99_demo.ipynb", "1. Build", "en", tmp_path) == "1. Build"
    import os
    import time

    write([("a", "## 1. Build", "## 1. 构建引擎", set())])
    later = time.time_ns() + 10**9
    os.utime(path, ns=(later, later))
    assert shown("1. Build") == "1. 构建引擎"
    assert bank.shown_heading("98_none.ipynb", "1. Build", "zh_CN", tmp_path) == "1. Build"


def test_english_is_unchanged_after_chinese():
    before = (str(tl.review.show("02")), tl.review.show("05")._repr_markdown_(),
              bank.grade("03", {1: "a", 6: 32, "x": 2}).text())
    tl.set_language("zh_CN")
    try:
        assert CJK.search(str(tl.review.show("02")))
    finally:
        tl.set_language("en")
    after = (str(tl.review.show("02")), tl.review.show("05")._repr_markdown_(),
             bank.grade("03", {1: "a", 6: 32, "x": 2}).text())
    tl.set_language(None)
    assert after == before and not CJK.search("".join(before))
