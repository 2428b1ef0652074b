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


def test_markdown_answer_region_is_blanked():
    lab = course.lab_from_solution(_nb("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION", kind="markdown"))
    assert lab.cells[0].source == "Why?\nYOUR ANSWER HERE"


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "without END"),
    ("x = 1\n### END SOLUTION\n", "without BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_unbalanced_markers_are_reported_with_the_cell(source, problem):
    with pytest.raises(ValueError, match=problem):
        course.lab_from_solution(_nb(source))


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
        if "# YOUR CODE HERE" in cell.source:
            stubs += 1
            raises = [n for n in ast.walk(tree) if isinstance(n, ast.Raise)
                      and isinstance(n.exc, ast.Call) and getattr(n.exc.func, "id", "") == "NotImplementedError"]
            # CUDA C exercises keep the stub inside a source string; the kernel loader raises NotImplementedError on it
            in_source_string = any(isinstance(n, ast.Constant) and isinstance(n.value, str) and course.STUB in n.value
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
    assert texts.count("not done yet") == 2, "both function exercises should report 'not done yet'"


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


def test_cli_check_and_refusal(tmp_path, capsys):
    assert course.main(["build-labs", "--check"]) == 0
    assert course.main(["build-labs", "--out", str(tmp_path)]) == 0
    (tmp_path / SOLUTIONS[0].name).write_text("{}")
    assert course.main(["build-labs", "--out", str(tmp_path)]) == 2
    assert "--force" in capsys.readouterr().err
