"""Labs are generated from solutions: one source, no drift.

A solution notebook marks each exercise region nbgrader-style::

    def tensor_core_precisions(cc):
        ### BEGIN SOLUTION
        ...the answer...
        ### END SOLUTION

``build-labs`` replaces every region by a stub (``# YOUR CODE HERE`` + ``raise NotImplementedError``; in Markdown
cells ``YOUR ANSWER HERE``) and clears outputs. It records the hash of each lab it writes in
``labs/.generated.json``; a lab whose hash no longer matches was edited by someone and is never overwritten
without ``--force``.

    python -m trtlab.course build-labs --instructor   # regenerate labs/ in the repository (course authors)
    python -m trtlab.course build-labs --out ~/my-labs  # a fresh copy elsewhere (learners, workshops)
    python -m trtlab.course build-labs --check          # exit 1 if labs/ is out of date
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

import nbformat

from trtlab.paths import course_root

__all__ = ["STUB", "build_labs", "clean_solutions", "lab_from_solution", "labs_out_of_date", "normalise"]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
STUB = 'raise NotImplementedError("exercise not done yet: write your code here")'
MANIFEST = ".generated.json"
NBFORMAT_MINOR = 5


def _strip_regions(source: str, *, markdown: bool) -> str:
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.split("\n"), 1):
        begin = BEGIN.match(line)
        if begin:
            if inside:
                raise ValueError(f"line {number}: BEGIN SOLUTION inside another solution region")
            inside = True
            indent = begin["indent"]
            out += [f"{indent}YOUR ANSWER HERE"] if markdown else [f"{indent}# YOUR CODE HERE", f"{indent}{STUB}"]
        elif END.match(line):
            if not inside:
                raise ValueError(f"line {number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError("BEGIN SOLUTION without END SOLUTION")
    return "\n".join(out)


def normalise(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Clear outputs, counts and volatile metadata so the file only changes when its content does."""
    nb.nbformat, nb.nbformat_minor = 4, NBFORMAT_MINOR
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    for index, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{index}")
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = nbformat.from_dict({"tags": tags} if tags else {})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def lab_from_solution(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The learner's version of a solution notebook."""
    lab = normalise(nbformat.from_dict(json.loads(json.dumps(solution))))
    for index, cell in enumerate(lab.cells):
        try:
            cell.source = _strip_regions(cell.source, markdown=cell.cell_type == "markdown")
        except ValueError as bad:
            raise ValueError(f"cell {index} ({cell.get('id')}): {bad}") from None
    return lab


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rendered_labs(solutions_dir: Path) -> dict[str, str]:
    """File name → lab notebook text, for every solution notebook."""
    return {
        path.name: _dumps(lab_from_solution(nbformat.read(path, as_version=4)))
        for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))
    }


def build_labs(out_dir: Path, *, solutions_dir: Path | None = None, force: bool = False) -> list[str]:
    """Write labs into ``out_dir``; return the names written. Refuses to overwrite a lab someone edited."""
    solutions_dir = solutions_dir or course_root() / "solutions"
    labs = rendered_labs(solutions_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST
    recorded = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    edited = [
        name for name in labs
        if (out_dir / name).exists()
        and _sha((out_dir / name).read_text()) != recorded.get(name)
        and (out_dir / name).read_text() != labs[name]
    ]
    if edited and not force:
        raise FileExistsError(
            f"not overwriting {', '.join(edited)} in {out_dir}: edited since it was generated (your work?). "
            "Write elsewhere with --out DIR, or pass --force to replace it.")
    written = []
    for name, text in labs.items():
        target = out_dir / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written.append(name)
    manifest_path.write_text(json.dumps({name: _sha(text) for name, text in labs.items()}, indent=1) + "\n")
    return written


def clean_solutions(solutions_dir: Path) -> list[str]:
    """Normalise solution notebooks in place (outputs cleared); return the names that changed."""
    changed = []
    for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        text = _dumps(normalise(nbformat.read(path, as_version=4)))
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path.name)
    return changed


def labs_out_of_date(labs_dir: Path, solutions_dir: Path) -> list[str]:
    """Names of labs missing from ``labs_dir`` or different from what the solutions generate."""
    return [
        name for name, text in rendered_labs(solutions_dir).items()
        if not (labs_dir / name).exists() or (labs_dir / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtlab.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-labs", help="generate lab notebooks from solutions/")
    where = build.add_mutually_exclusive_group()
    where.add_argument("--instructor", action="store_true", help="write labs/ in the repository")
    where.add_argument("--out", type=Path, help="write the labs into this folder")
    where.add_argument("--check", action="store_true", help="only report whether labs/ is up to date")
    build.add_argument("--force", action="store_true", help="overwrite labs that were edited")
    args = parser.parse_args(argv)

    root = course_root()
    if args.check:
        stale = labs_out_of_date(root / "labs", root / "solutions")
        print("labs/ is up to date" if not stale else f"out of date: {', '.join(stale)} "
              "(run: python -m trtlab.course build-labs --instructor)")
        return 1 if stale else 0
    if not args.instructor and args.out is None:
        parser.error("say where: --instructor (labs/ in the repository) or --out DIR")
    out = root / "labs" if args.instructor else args.out
    if args.instructor:
        cleaned = clean_solutions(root / "solutions")
        if cleaned:
            print(f"cleared outputs of {', '.join(cleaned)} in solutions/")
    try:
        written = build_labs(out, solutions_dir=root / "solutions", force=args.force)
    except FileExistsError as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 2
    print(f"{len(written)} lab(s) written to {out}: {', '.join(written) or 'all already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
