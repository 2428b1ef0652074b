"""Labs are generated from solutions, never drift, and never overwrite a learner's work."""

import ast
import json
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

from trtlab import course
from trtlab.paths import course_root

ROOT = course_root()
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
LABS = sorted((ROOT / "labs").glob("[0-9][0-9]_*.ipynb"))


def _nb(source: str, kind: str = "code") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    cell.outputs = [nbformat.v4.new_output("stream", text="old output")] if kind == "code" else []
    nb.cells = [cell]
    return nb


def test_solution_region_becomes_an_indented_stub():
    lab = course.lab_from_solution(_nb("def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"))
    cell = lab.cells[0]
    assert cell.source == f"def f(x):\n    # YOUR CODE HERE\n    {course.STUB}\n"
    assert cell.outputs == [] and cell.execution_count is None
    namespace: dict = {}
    exec(cell.source, namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](1)


def test_a_region_inside_a_cuda_source_string_gets_a_c_stub():
    source = 'K = r"""\n__device__ float f(float x) {\n    ### BEGIN SOLUTION\n    return x;\n    ### END SOLUTION\n}\n"""\n'
    lab = course.lab_from_solution(_nb(source)).cells[0].source
    assert lab == f'K = r"""\n__device__ float f(float x) {{\n    {course.C_CODE_STUB}\n    {course.C_STUB}\n}}\n"""\n'
    assert "NotImplementedError" in course.C_STUB  # what the kernel checkers look for to say "not done yet"
    text = 'def config():\n    return """\nname: "m"\n### BEGIN SOLUTION\nmax_batch_size: 8\n### END SOLUTION\n"""\n'
    assert course.STUB in course.lab_from_solution(_nb(text)).cells[0].source  # other text in a string: Python stub


def test_markdown_answer_region_is_blanked():
    lab = course.lab_from_solution(_nb("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", kind="markdown"))
    assert lab.cells[0].source == "Why?\nYOUR ANSWER HERE"


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "without END"),
    ("x = 1\n### END SOLUTION\n", "without BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside the region opened on line 1"),
])
def test_unbalanced_markers_are_reported_with_the_cell(source, problem):
    with pytest.raises(course.SolutionMarkerError, match=problem):
        course.lab_from_solution(_nb(source))


# Each form a marker may be mistyped in; the answer line after it must never reach a lab.
SECRET = "answer = 6 * 7  # the secret"
MALFORMED = {
    "trailing text": ("code", f"### BEGIN SOLUTION (exercise 1)\n{SECRET}\n### END SOLUTION", 1),
    "wrong case": ("code", f"### begin solution\n{SECRET}\n### END SOLUTION", 1),
    "two #": ("code", f"## BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "four #": ("code", f"#### BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "no space after #": ("code", f"###BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "two spaces after #": ("code", f"###  BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "two spaces inside": ("code", f"### BEGIN  SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "underscore": ("code", f"### BEGIN_SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "END with trailing text": ("code", f"x = 1\n### BEGIN SOLUTION\n{SECRET}\n### END SOLUTION here", 4),
    "END without BEGIN": ("code", f"{SECRET}\n### END SOLUTION", 2),
    "nested BEGIN": ("code", f"### BEGIN SOLUTION\n### BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 2),
    "BEGIN without END": ("code", f"def f():\n    ### BEGIN SOLUTION\n    {SECRET}", 2),
    "marker after code": ("code", f"x = 1  ### BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", 1),
    "marker in a string": ("code", f'print("### BEGIN SOLUTION")\n{SECRET}', 1),
    "markdown, bold": ("markdown", f"Why?\n**BEGIN SOLUTION**\n{SECRET}\n### END SOLUTION", 2),
    "markdown, trailing colon": ("markdown", f"Why?\n### BEGIN SOLUTION:\n{SECRET}\n### END SOLUTION", 2),
}


def _solutions_dir(tmp_path: Path, source: str, kind: str) -> Path:
    """A solutions/ folder holding one notebook whose second cell (id ``ex1``) is ``source``."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    nb.cells = [nbformat.v4.new_markdown_cell("# Lab 99"), cell]
    for index, c in enumerate(nb.cells):
        c.id = ["intro", "ex1"][index]
    folder = tmp_path / "solutions"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "99_demo.ipynb")
    return folder


@pytest.mark.parametrize("form", MALFORMED, ids=str)
def test_a_malformed_marker_is_an_error_naming_file_cell_and_line_and_no_lab_is_written(tmp_path, form):
    kind, source, line = MALFORMED[form]
    solutions = _solutions_dir(tmp_path, source, kind)
    out = tmp_path / "labs"
    with pytest.raises(course.SolutionMarkerError) as raised:
        course.build_labs(out, solutions_dir=solutions)
    message = str(raised.value)
    assert "99_demo.ipynb cell 1 (id ex1)" in message and f"line {line}:" in message, message
    assert "### BEGIN SOLUTION" in message and "no lab was written" in message, message
    assert not out.exists() or not list(out.iterdir()), "a lab was written despite the error"


def test_well_formed_markers_still_pass_with_indentation_and_trailing_blanks(tmp_path):
    solutions = _solutions_dir(tmp_path, f"def f():\n    ### BEGIN SOLUTION  \n    {SECRET}\n    ### END SOLUTION\t",
                               "code")
    course.build_labs(tmp_path / "labs", solutions_dir=solutions)
    lab = (tmp_path / "labs" / "99_demo.ipynb").read_text()
    assert "the secret" not in lab and course.STUB.replace('"', '\\"') in lab


def test_the_leak_scan_stops_a_broken_stripper_before_anything_is_written(tmp_path, monkeypatch):
    """If stripping ever fails (a bug, not a typo), the scan refuses: here the stripper only drops the markers."""
    solutions = _solutions_dir(tmp_path, f"def f():\n    ### BEGIN SOLUTION\n    {SECRET}\n    ### END SOLUTION", "code")
    monkeypatch.setattr(course, "_strip_regions", lambda source, markdown, where: "\n".join(
        line for line in source.split("\n") if "SOLUTION" not in line))
    out = tmp_path / "labs"
    with pytest.raises(course.SolutionLeak, match=r"99_demo.ipynb cell 1 \(id ex1\) line 3: .*the secret"):
        course.build_labs(out, solutions_dir=solutions)
    assert not out.exists()


@pytest.mark.parametrize("solution, lab, leaks", [
    # the solution *is* the stub text: the stub in the lab is not a leak
    (f"### BEGIN SOLUTION\n# YOUR CODE HERE\n{course.STUB}\n### END SOLUTION", f"# YOUR CODE HERE\n{course.STUB}", False),
    # a line that also stands outside the region is allowed as often as it stands there, no more
    ("f(\n### BEGIN SOLUTION\n    1,\n)\n### END SOLUTION\n)", f"f(\n# YOUR CODE HERE\n{course.STUB}\n)", False),
    ("f(\n### BEGIN SOLUTION\n    1,\n)\n### END SOLUTION\n)", f"f(\n# YOUR CODE HERE\n{course.STUB}\n)\n)", True),
    # indentation changed does not hide a leaked line; a marker left in the lab is caught too
    (f"### BEGIN SOLUTION\n{SECRET}\n### END SOLUTION", f"# YOUR CODE HERE\n        {SECRET}", True),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", f"### BEGIN SOLUTION\n# YOUR CODE HERE\n{course.STUB}", True),
])
def test_leak_scan_counts_lines_and_is_not_fooled_by_stub_text(solution, lab, leaks):
    if leaks:
        with pytest.raises(course.SolutionLeak, match="demo"):
            course._check_no_solution_text(solution, lab, "demo")
    else:
        course._check_no_solution_text(solution, lab, "demo")


def test_what_jupyterlab_rewrites_on_open_and_save_is_not_an_edit(tmp_path):
    out = tmp_path / "labs"
    course.build_labs(out, solutions_dir=ROOT / "solutions")
    lab = out / LABS[0].name
    nb = json.loads(lab.read_text())
    nb["metadata"] = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
                      "language_info": {"name": "python", "version": "3.11.2", "mimetype": "text/x-python"}}
    nb["cells"][0]["metadata"] = {"trusted": True}
    lab.write_text(json.dumps(nb, indent=2))
    assert course.labs_out_of_date(out, ROOT / "solutions") == []
    assert lab.name in course.build_labs(out, solutions_dir=ROOT / "solutions")  # rewritten to the canonical text
    nb["cells"][-1]["source"] += "\n# mine"
    lab.write_text(json.dumps(nb, indent=2))
    assert course.labs_out_of_date(out, ROOT / "solutions") == [lab.name]


def test_outputs_a_learner_produced_are_their_work_and_keep_edited_keeps_them(tmp_path):
    out = tmp_path / "labs"
    course.build_labs(out, solutions_dir=ROOT / "solutions")
    lab = out / LABS[0].name
    nb = nbformat.read(lab, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs, code.execution_count = [nbformat.v4.new_output("stream", text="my run")], 1
    nbformat.write(nb, lab)
    with pytest.raises(course.LabEdited):
        course.build_labs(out, solutions_dir=ROOT / "solutions")
    solutions = tmp_path / "solutions"  # the course changes this lab and another one meanwhile
    solutions.mkdir()
    for path in SOLUTIONS:
        changed = nbformat.read(path, as_version=4)
        if path.name in (LABS[0].name, LABS[1].name):
            changed.cells[0].source += "\n\nA new paragraph from the instructor."
        nbformat.write(changed, solutions / path.name)
    plan = course.plan_labs(out, solutions_dir=solutions, keep_edited=True)
    assert plan.kept == plan.newer == [lab.name]
    assert course.write_labs(plan) == [LABS[1].name]
    assert "my run" in lab.read_text()
    assert course.plan_labs(out, solutions_dir=solutions, keep_edited=True).kept == [lab.name]  # still theirs


def test_instructor_build_leaves_solution_outputs_alone_when_it_refuses(tmp_path, monkeypatch, capsys):
    root = tmp_path / "course"
    _solutions_dir(root, "### BEGIN SOLUTION (exercise 1)\nx = 1\n### END SOLUTION", "code")
    solution = root / "solutions" / "99_demo.ipynb"
    nb = nbformat.read(solution, as_version=4)
    nb.cells[1].outputs, nb.cells[1].execution_count = [nbformat.v4.new_output("stream", text="ran")], 3
    nbformat.write(nb, solution)
    before = solution.read_text()
    monkeypatch.setattr(course, "course_root", lambda: root)
    assert course.main(["build-labs", "--instructor"]) == 2
    assert "looks like a solution marker" in capsys.readouterr().err
    assert solution.read_text() == before and not (root / "labs").exists()
    # a refusal for an edited lab leaves the solutions alone too
    nb.cells[1].source = "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    nbformat.write(nb, solution)
    (root / "labs").mkdir()
    (root / "labs" / "99_demo.ipynb").write_text("{}")
    before = solution.read_text()
    assert course.main(["build-labs", "--instructor"]) == 2
    assert solution.read_text() == before
    assert course.main(["build-labs", "--instructor", "--force"]) == 0
    assert "cleared outputs of 99_demo.ipynb" in capsys.readouterr().out


def test_committed_labs_are_exactly_what_the_solutions_generate():
    stale = course.labs_out_of_date(ROOT / "labs", ROOT / "solutions")
    assert not stale, f"labs out of date: {stale}; run: python -m trtlab.course build-labs --instructor"
    assert [p.name for p in LABS] == [p.name for p in SOLUTIONS]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_are_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; run build-labs --instructor (it cleans solutions)"


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_every_lab_cell_is_valid_python_and_every_stub_raises_not_implemented(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    stubs = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        python = TransformerManager().transform_cell(cell.source)
        tree = ast.parse(python, filename=f"{path.name} cell {index}")  # a stub must not break the syntax
        if course.CODE_STUB in cell.source or course.C_CODE_STUB in cell.source:
            stubs += 1
            raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)
                      and isinstance(n.exc, ast.Call) and getattr(n.exc.func, "id", "") == "NotImplementedError"]
            # CUDA C exercises keep a C stub inside the source string; their checkers report it as "not done"
            in_source_string = any(isinstance(n, ast.Constant) and isinstance(n.value, str)
                                   and course.C_STUB in n.value and course.STUB not in n.value
                                   for n in ast.walk(tree))
            assert raises or in_source_string, f"{path.name} cell {index}: stub without raise NotImplementedError"
    assert stubs >= 2, f"{path.name}: a lab needs at least two exercises; found {stubs}"


def test_lab00_stubs_fail_only_with_not_implemented_error(tmp_path):
    """Run the untouched Lab 00 like a learner would: every error must be the stub's NotImplementedError."""
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "labs" / "00_setup.ipynb", as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    errors = [o.ename for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    texts = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert errors and set(errors) <= {"NotImplementedError", "CheckFailed"}, errors
    assert texts.count("not done yet") == 3, "both function exercises and the review questions report 'not done yet'"


def test_build_labs_refuses_to_overwrite_an_edited_lab(tmp_path):
    out = tmp_path / "labs"
    written = course.build_labs(out, solutions_dir=ROOT / "solutions")
    assert written and (out / course.MANIFEST).exists()
    assert course.build_labs(out, solutions_dir=ROOT / "solutions") == []  # idempotent
    lab = out / written[0]
    nb = json.loads(lab.read_text())
    nb["cells"][0]["source"] = "my notes"
    lab.write_text(json.dumps(nb))
    with pytest.raises(FileExistsError, match="edited since it was generated"):
        course.build_labs(out, solutions_dir=ROOT / "solutions")
    assert "my notes" in lab.read_text()
    assert written[0] in course.build_labs(out, solutions_dir=ROOT / "solutions", force=True)


def test_stale_but_untouched_lab_is_regenerated(tmp_path):
    out = tmp_path / "labs"
    course.build_labs(out, solutions_dir=ROOT / "solutions")
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    source = SOLUTIONS[0]
    nb = nbformat.read(source, as_version=4)
    nb.cells[0].source += "\n\nA new paragraph from the instructor."
    nbformat.write(nb, solutions / source.name)
    assert course.build_labs(out, solutions_dir=solutions) == [source.name]


def test_a_manifest_of_text_hashes_still_marks_untouched_labs(tmp_path):
    """Manifests written before content hashes (labs/.generated.json until regenerated) hold the text's hash."""
    out = tmp_path / "labs"
    course.build_labs(out, solutions_dir=ROOT / "solutions")
    legacy = {p.name: course._sha(p.read_text()) for p in out.glob("*.ipynb")}
    (out / course.MANIFEST).write_text(json.dumps(legacy))
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    for path in SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        nb.cells[0].source += "\n\nA new paragraph from the instructor."
        nbformat.write(nb, solutions / path.name)
    assert course.build_labs(out, solutions_dir=solutions) == [p.name for p in SOLUTIONS]


def test_cli_check_and_refusal(tmp_path, capsys):
    assert course.main(["build-labs", "--check"]) == 0
    assert course.main(["build-labs", "--out", str(tmp_path)]) == 0
    (tmp_path / SOLUTIONS[0].name).write_text("{}")
    assert course.main(["build-labs", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err


def test_an_unreadable_solution_notebook_is_named_and_nothing_is_written(tmp_path, capsys):
    from trtlab import course

    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "02_export_onnx.ipynb").write_text("<<<<<<< HEAD\n{ half a merge")
    with pytest.raises(course.NotebookUnreadable, match=r"02_export_onnx\.ipynb: not a readable notebook"):
        course.plan_labs(tmp_path / "labs", solutions_dir=solutions)
    assert not (tmp_path / "labs").exists()


# ---------------------------------------------------------------- the translated edition (issue 16; tests/test_i18n.py)


def test_cli_builds_the_chinese_labs_of_complete_catalogs_only(tmp_path, capsys):
    """Every catalog is complete today, so all seven labs are built (an incomplete one is not: tests/test_i18n.py)."""
    assert course.main(["build-labs", "--lang", "zh_CN", "--check"]) == 0
    assert course.main(["build-labs", "--lang", "zh_CN", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    expected = sorted(p.name for p in (ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
    assert sorted(p.name for p in tmp_path.glob("*.ipynb")) == expected and "not translated yet" not in out
    for name in expected:
        assert (tmp_path / name).read_text() == (ROOT / "labs" / "zh_CN" / name).read_text()
    assert course.main(["build-labs", "--lang", "zh_CN", "--out", str(tmp_path)]) == 0  # idempotent
    assert "all already up to date" in capsys.readouterr().out


def test_cli_i18n_status_counts_each_notebook(capsys):
    assert course.main(["i18n-status", "--lang", "zh_CN"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SOLUTIONS) and lines[0].startswith("00_setup.ipynb") and "(complete)" in lines[0]
