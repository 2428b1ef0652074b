"""The Simplified Chinese edition (issue 16): catalogs, stale detection, the generated notebooks, the package's
messages in Chinese, and the glossary. Every notebook's markdown is translated and current; the package's messages
are those of the modules in trtlab.course_i18n.TRANSLATED_MODULES (every module whose text learners read)."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import nbformat
import pytest
from babel.messages.pofile import read_po

from trtlab import course, course_i18n, i18n
from trtlab.check import lab00
from trtlab.errors import SolutionLeak

ROOT = Path(__file__).resolve().parents[1]
LANG = "zh_CN"
#: the Chinese notebooks nbval executes in CI (solutions/zh_CN/conftest.py ignores the others)
CI_TRANSLATED_NOTEBOOKS = {"00_setup.ipynb"}
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
#: every notebook's zh_CN catalog is complete and current, so solutions/zh_CN/ and labs/zh_CN/ hold all of them
COMPLETE_NOTEBOOKS = {p.name for p in SOLUTIONS}
PLACEHOLDER = re.compile(r"\{[^{}]*\}")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def _english_unless_asked(language):
    """Every test here starts in English, whatever this machine's locale says (the root conftest's fixture)."""


def _package_po():
    with (i18n.LOCALE_DIR / LANG / "LC_MESSAGES" / "trtlab.po").open("rb") as handle:
        return read_po(handle, locale=LANG)


def _notebook_catalogs():
    return {p.name: course_i18n.read_catalog(p) for p in sorted((ROOT / "i18n" / LANG / "notebooks").glob("*.po"))}


# ---------------------------------------------------------------- catalogs


def test_every_notebook_has_a_catalog_that_parses_with_one_entry_per_cell_id():
    catalogs = _notebook_catalogs()
    assert sorted(catalogs) == sorted(f"{p.stem}.po" for p in SOLUTIONS)
    for name, catalog in catalogs.items():
        contexts = [m.context for m in catalog if m.id]
        assert all(contexts) and len(contexts) == len(set(contexts)), f"{name}: msgctxt must be unique cell ids"


def test_complete_notebooks_are_the_expected_ones_and_catalogs_follow_the_english():
    """i18n-update has run since the English last changed (no cell without an entry), and exactly the notebooks in
    COMPLETE_NOTEBOOKS are fully translated and current (0 stale, 0 missing)."""
    complete = set()
    for path in SOLUTIONS:
        english = course.read_notebook(path)
        status = course_i18n.notebook_status(english, path.name, LANG)
        catalog = course_i18n.read_catalog(course_i18n.catalog_path(LANG, path.name))
        ids = {m.context for m in catalog if m.id}
        missing_entries = [cid for cid, _ in course_i18n.markdown_cells(english) if cid not in ids]
        assert not missing_entries, f"{path.name}: run python -m trtlab.course i18n-update --lang {LANG}"
        if status.complete:
            complete.add(path.name)
    assert complete == COMPLETE_NOTEBOOKS, "update COMPLETE_NOTEBOOKS (and regenerate) when a translation lands"


def test_a_changed_english_cell_is_stale_keeps_its_translation_and_is_not_generated(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    shutil.copy(ROOT / "solutions" / "00_setup.ipynb", solutions)
    catalog = tmp_path / "i18n" / LANG / "notebooks" / "00_setup.po"
    catalog.parent.mkdir(parents=True)
    shutil.copy(course_i18n.catalog_path(LANG, "00_setup.ipynb"), catalog)
    assert course.translated_notebooks(LANG, solutions, tmp_path)[0].keys() == {"00_setup.ipynb"}

    nb = nbformat.read(solutions / "00_setup.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.id == "c07")
    old_english, cell.source = cell.source, cell.source + " A new English sentence."
    nbformat.write(nb, solutions / "00_setup.ipynb")

    status = course_i18n.notebook_status(nb, "00_setup.ipynb", LANG, tmp_path)
    assert (status.stale, status.missing, status.complete) == (1, 0, False)  # stale before i18n-update runs
    solutions_out, labs_out, not_yet = course.translated_notebooks(LANG, solutions, tmp_path)
    assert not solutions_out and not labs_out and [s.name for s in not_yet] == ["00_setup.ipynb"]
    with pytest.raises(course_i18n.NotTranslated, match="c07 stale"):
        course.translated_solution(nb, LANG, name="00_setup.ipynb", root=tmp_path)

    course_i18n.update_catalog(nb, "00_setup.ipynb", LANG, tmp_path)
    entry = next(m for m in course_i18n.read_catalog(catalog) if m.context == "c07")
    assert entry.fuzzy and entry.id == cell.source and CJK.search(entry.string)  # old translation kept, flagged
    assert entry.user_comments == [course_i18n.PREVIOUS_ENGLISH, *(f"> {line}" for line in old_english.split("\n"))]
    assert course_i18n.notebook_status(nb, "00_setup.ipynb", LANG, tmp_path).stale == 1

    nb.cells.append(nbformat.v4.new_markdown_cell("A cell added later.", id="c99"))
    course_i18n.update_catalog(nb, "00_setup.ipynb", LANG, tmp_path)
    assert course_i18n.notebook_status(nb, "00_setup.ipynb", LANG, tmp_path).missing == 1


# ---------------------------------------------------------------- the generated notebooks


def test_generated_chinese_notebooks_are_up_to_date_byte_for_byte():
    assert course.translation_out_of_date(LANG, ROOT) == [], (
        f"run python -m trtlab.course build-labs --lang {LANG} --instructor")
    assert {p.name for p in (ROOT / "solutions" / LANG).glob("*.ipynb")} == COMPLETE_NOTEBOOKS
    assert {p.name for p in (ROOT / "labs" / LANG).glob("*.ipynb")} == COMPLETE_NOTEBOOKS


@pytest.mark.parametrize("name", sorted(COMPLETE_NOTEBOOKS))
@pytest.mark.parametrize("folder", ["solutions", "labs"])
def test_chinese_code_cells_are_the_english_ones_plus_the_language_cell(folder, name):
    """The rule: the same code cells (ids and sources), in the same order, plus one cell, LANGUAGE_CELL_ID, right
    before the first code cell, calling tl.set_language; markdown cells keep their ids and are all translated."""
    english = nbformat.read(ROOT / "solutions" / name, as_version=4)
    if folder == "labs":  # what labs/ holds once regenerated (issue-14 cells may not be in labs/ yet)
        english = course.lab_from_solution(english)
    chinese = nbformat.read(ROOT / folder / LANG / name, as_version=4)
    code = [(c.id, c.source) for c in chinese.cells if c.cell_type == "code"]
    assert code[0] == (course_i18n.LANGUAGE_CELL_ID, f'import trtlab as tl\n\ntl.set_language("{LANG}")')
    assert code[1:] == [(c.id, c.source) for c in english.cells if c.cell_type == "code"]
    first_code = next(i for i, c in enumerate(english.cells) if c.cell_type == "code")
    assert chinese.cells[first_code].id == course_i18n.LANGUAGE_CELL_ID
    markdown = [(c.id, c.source) for c in english.cells if c.cell_type == "markdown"]
    translated = [(c.id, c.source) for c in chinese.cells if c.cell_type == "markdown"]
    assert [i for i, _ in translated] == [i for i, _ in markdown]
    assert all(CJK.search(text) for _, text in translated), "an untranslated markdown cell"


def test_only_the_chinese_lab00_runs_in_ci():
    conftest = (ROOT / "solutions" / LANG / "conftest.py").read_text()
    ignored = re.search(r"collect_ignore_glob = (\[.*\])", conftest)
    assert ignored, "solutions/zh_CN/conftest.py must list the Chinese notebooks CI skips"
    from fnmatch import fnmatch

    globs = eval(ignored.group(1))  # noqa: S307 - our own literal list
    run = {p.name for p in SOLUTIONS if not any(fnmatch(p.name, g) for g in globs)}
    assert run == CI_TRANSLATED_NOTEBOOKS


def _with_solution_markdown() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Why?\n### BEGIN SOLUTION\nBecause the cache is cold.\n"
                                              "### END SOLUTION", id="m1"),
                nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\nanswer = compute_the_answer()\n"
                                          "### END SOLUTION", id="k1")]
    return nb


@pytest.mark.parametrize("translation, problem", [
    ("为什么？\nBecause the cache is cold.\n### BEGIN SOLUTION\n因为缓存是冷的。\n### END SOLUTION", "solution line"),
    ("为什么？\nanswer = compute_the_answer()\n### BEGIN SOLUTION\n因为缓存是冷的。\n### END SOLUTION",
     "solution line"),
    ("为什么？因为缓存是冷的。", "solution markers"),
])
def test_a_translation_that_would_leak_a_solution_is_refused(tmp_path, translation, problem):
    nb = _with_solution_markdown()
    name = "99_demo.ipynb"
    _translate(nb, name, tmp_path, translation)
    assert course_i18n.notebook_status(nb, name, LANG, tmp_path).complete
    with pytest.raises(SolutionLeak, match=problem):
        course.translated_solution(nb, LANG, name=name, root=tmp_path)


def test_a_faithful_translation_of_a_solution_region_keeps_it_out_of_the_lab(tmp_path):
    nb = _with_solution_markdown()
    _translate(nb, "99_demo.ipynb", tmp_path, "为什么？\n### BEGIN SOLUTION\n因为缓存是冷的。\n### END SOLUTION")
    lab = course.lab_from_solution(course.translated_solution(nb, LANG, name="99_demo.ipynb", root=tmp_path))
    text = "\n".join(c.source for c in lab.cells)
    assert "缓存" not in text and "compute_the_answer" not in text and course.ANSWER_STUB in text


def _translate(nb, name: str, root: Path, translation: str) -> None:
    """What a translator does: fill the one entry of a one-markdown-cell notebook's catalog (through Babel)."""
    import io

    from babel.messages.pofile import write_po

    course_i18n.update_catalog(nb, name, LANG, root)
    path = course_i18n.catalog_path(LANG, name, root)
    catalog = course_i18n.read_catalog(path)
    next(m for m in catalog if m.id).string = translation
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100_000)
    path.write_bytes(buffer.getvalue())


# ---------------------------------------------------------------- the package speaks Chinese


def _wrong_runtime(caps):
    return "cpu"


def test_set_language_switches_a_real_verdict_and_hint_to_chinese_and_back():
    assert "for an H100 with TensorRT 11.4 you said 'cpu'" in lab00.engine_runtime.evaluate(_wrong_runtime).message
    assert i18n.set_language("zh_CN") == "zh_CN"
    verdict = lab00.engine_runtime.evaluate(_wrong_runtime).message
    assert "对于一块装有 TensorRT 11.4 的 H100，你回答 'cpu'，但应为 'tensorrt'" in verdict, verdict
    assert "tl.hint('lab00.engine_runtime')" in verdict and "卡住了" in verdict
    assert lab00.engine_runtime.hint(1).startswith("💡 提示 1/3（lab00.engine_runtime）：两个问题")
    assert lab00.engine_runtime.shown_title == "读懂能力摘要：哪个运行时执行 Lab 03 的引擎？"
    i18n.set_language("en")
    assert lab00.engine_runtime.hint(1).startswith("💡 hint 1/3 for lab00.engine_runtime: Two questions")


def test_framework_verdicts_in_chinese():
    i18n.set_language("zh_CN")

    def todo(cc):
        raise NotImplementedError

    assert lab00.tensor_core_precisions.evaluate(todo).message.startswith("尚未完成")
    crash = lab00.tensor_core_precisions.evaluate(lambda cc: 1 / 0).message
    assert crash.startswith("你的代码抛出了 ZeroDivisionError") and "你的调用帧" in crash


@pytest.mark.parametrize("variable, value, expected", [
    ("TRTLAB_LANG", "zh_CN", "zh_CN"), ("LANG", "zh_CN.UTF-8", "zh_CN"), ("LC_ALL", "zh_TW.UTF-8", "zh_CN"),
    ("LANGUAGE", "zh_CN:en", "zh_CN"), ("LANG", "en_US.UTF-8", "en"), ("LANG", "de_DE.UTF-8", "en"),
])
def test_language_from_the_environment(monkeypatch, variable, value, expected):
    monkeypatch.setenv(variable, value)
    assert i18n.language() == expected
    assert (lab00.current_api.evaluate(set()).message.startswith("5 of the 10")) == (expected == "en")


def test_set_language_overrides_the_environment_and_refuses_unknown_languages(monkeypatch):
    monkeypatch.setenv("TRTLAB_LANG", "zh_CN")
    assert i18n.set_language("en") == "en" and i18n.gettext("correct.") == "correct."
    assert i18n.set_language(None) == "zh_CN" and i18n.gettext("correct.") == "正确。"
    from trtlab.errors import UnsupportedFeature

    with pytest.raises(UnsupportedFeature, match="tl.set_language"):
        i18n.set_language("klingon")


def test_mode_announcement_in_chinese_keeps_mode_values():
    caps = lab00._caps((), None, "1.7.1")
    i18n.set_language("zh_CN")
    summary = caps.summary()
    assert summary.startswith("本机：没有 NVIDIA GPU；引擎构建器：") and "CPU 模式" in summary
    assert {p.mode for p in caps.lab_paths()} <= {"full", "CPU mode"}  # values code compares stay English


# ---------------------------------------------------------------- message coverage and the glossary


def test_every_message_of_the_converted_modules_has_a_current_translation():
    """Scoped to course_i18n.TRANSLATED_MODULES (the framework, Lab 00's checker, the doctor, the mode
    announcements): later sessions add the other checkers and error messages to that list."""
    po = _package_po()
    extracted = course_i18n.extract_messages()
    assert len([m for m in extracted if m.id]) > 150
    for message in extracted:
        if not message.id:
            continue
        entry = po.get(message.id, context=message.context)
        assert entry is not None and entry.string and not entry.fuzzy, (
            f"untranslated ({message.locations[0]}): {message.id!r} — run i18n-update and translate it")
        assert sorted(PLACEHOLDER.findall(entry.id)) == sorted(PLACEHOLDER.findall(entry.string)), entry.id


def test_the_compiled_catalog_matches_its_po():
    mo = i18n.LOCALE_DIR / LANG / "LC_MESSAGES" / "trtlab.mo"
    assert mo.read_bytes() == course_i18n.compile_messages(LANG, write=False), (
        f"run python -m trtlab.course i18n-update --lang {LANG}")


def _translated_pairs():
    pairs = [(f"trtlab.po: {m.id[:40]!r}", m.id, m.string) for m in _package_po() if m.id and m.string]
    for name, catalog in _notebook_catalogs().items():
        pairs += [(f"{name} {m.context}", m.id, m.string) for m in catalog if m.id and m.string]
    return pairs


def _without_code(text: str, names: list[str]) -> str:
    text = re.sub(r"`[^`]*`", " ", text)
    text = PLACEHOLDER.sub(" ", text)
    text = re.sub(r"[\w.]*[._][\w.()*]*\w", " ", text)  # identifiers: tl.hint(...), tensorrt.plugin, build_engine
    for name in names:
        text = text.replace(name, " ")
    return text


def test_glossary_terms_are_used_and_banned_alternatives_never_are():
    glossary = tomllib.loads((ROOT / "i18n" / LANG / "glossary.toml").read_text())
    pairs = _translated_pairs()
    assert len(pairs) > 150
    problems = []
    for where, english, chinese in pairs:
        plain = _without_code(english, glossary["names"])
        for term in glossary["term"]:
            if re.search(term["en"], plain, flags=re.IGNORECASE) and term["zh"] not in chinese:
                problems.append(f"{where}: English has /{term['en']}/, the translation lacks {term['zh']!r}")
            problems += [f"{where}: banned {bad!r} (use {term['zh']!r})" for bad in term["banned"] if bad in chinese]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- the instructor guide's Chinese page

INSTRUCTOR_GUIDE = ROOT / "docs" / "instructor.md"
INSTRUCTOR_GUIDE_ZH = ROOT / "docs" / "instructor.zh-CN.md"
#: the English sections whose tables docs/instructor.zh-CN.md translates, in page order
TRANSLATED_TABLE_SECTIONS = ("## Measured time per lab", "## Troubleshooting: errors learners really hit")
SETUP_SECTION = "## Setting up a workshop"


def _guide_section(text: str, heading: str) -> str:
    """From `heading` (a level-2 heading line) to the next level-2 heading."""
    start = text.index(f"\n{heading}\n")
    end = text.find("\n## ", start + len(heading) + 2)
    return text[start:] if end < 0 else text[start:end]


def _table_rows(text: str) -> list[list[str]]:
    """The body rows (header and separator dropped) of every Markdown table in `text`, in order."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            tables.append(rows[2:])
            rows = []
    return tables


def _command_lines(text: str) -> list[str]:
    """The command lines of the ```bash blocks in `text`: comment-only lines dropped, trailing `# comments` cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            command = re.split(r"\s+#\s", line, maxsplit=1)[0].rstrip()
            if command and not command.lstrip().startswith("#"):
                commands.append(command)
    return commands


def test_the_chinese_instructor_page_keeps_the_english_tables_and_commands():
    english, chinese = INSTRUCTOR_GUIDE.read_text(), INSTRUCTOR_GUIDE_ZH.read_text()
    english_tables = [t for h in TRANSLATED_TABLE_SECTIONS for t in _table_rows(_guide_section(english, h))]
    chinese_tables = _table_rows(chinese)
    assert [len(t) for t in chinese_tables] == [len(t) for t in english_tables], "rows per table differ"
    assert sum(len(t) for t in english_tables) >= 35
    glossary = tomllib.loads((ROOT / "i18n" / LANG / "glossary.toml").read_text())
    problems = []
    for en_table, zh_table in zip(english_tables, chinese_tables):
        for row, (en_row, zh_row) in enumerate(zip(en_table, zh_table), start=1):
            problems += [f"row {row}: `{span}` missing" for span in re.findall(r"`([^`]+)`", en_row)
                         if f"`{span}`" not in zh_row]
            plain = _without_code(en_row, glossary["names"])
            problems += [f"row {row}: English has /{term['en']}/, the Chinese lacks {term['zh']!r}"
                         for term in glossary["term"]
                         if re.search(term["en"], plain, flags=re.IGNORECASE) and term["zh"] not in zh_row]
    commands = _command_lines(_guide_section(english, SETUP_SECTION))
    assert len(commands) >= 20
    translated = set(_command_lines(chinese))
    problems += [f"set-up command missing: {c}" for c in commands if c not in translated]
    problems += [f"banned {bad!r} (use {term['zh']!r})" for term in glossary["term"] for bad in term["banned"]
                 if bad in chinese]
    assert not problems, "\n".join(problems)


def test_the_chinese_instructor_page_is_linked_and_opens_the_chinese_labs():
    assert "(instructor.zh-CN.md)" in INSTRUCTOR_GUIDE.read_text().split("\n## ")[0]
    assert "(docs/instructor.zh-CN.md)" in (ROOT / "README.zh-CN.md").read_text()
    assert re.search(r"^LAB_LANG \?=", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert "make lab LAB_LANG=zh_CN" in _command_lines(INSTRUCTOR_GUIDE_ZH.read_text())
