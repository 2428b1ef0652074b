"""Labs are generated from solutions: one source, no drift, no leaked answer.

A solution notebook marks each exercise region nbgrader-style::

    def tensor_core_precisions(cc):
        ### BEGIN SOLUTION
        ...the answer...
        ### END SOLUTION

``build-labs`` replaces every region by a stub (``# YOUR CODE HERE`` + ``raise NotImplementedError``; in Markdown
cells ``YOUR ANSWER HERE``) and clears outputs. A marker is a line holding exactly ``### BEGIN SOLUTION`` or
``### END SOLUTION`` (indentation and trailing blanks allowed); any other line that looks like one is an error, and
every generated lab is scanned for the solution's lines before anything is written, so a typo can never ship an answer.

What counts as a lab's content is its cells' ids, types, sources, outputs and execution counts. Notebook and cell
metadata and the nbformat minor version are not content: JupyterLab rewrites them when it opens and saves a notebook
(kernelspec, language_info), so neither the sync check nor the edited-lab guard looks at them. ``build-labs`` records
the content hash of each lab it writes in ``.generated.json``; a lab whose content no longer matches was changed by
someone (a learner's code or outputs) and is never overwritten without ``--force``.

    python -m trtlab.course build-labs --instructor   # regenerate labs/ in the repository (course authors)
    python -m trtlab.course build-labs --out my-labs --keep-edited  # a learner's copy (what `make lab` serves)
    python -m trtlab.course build-labs --check          # exit 1 if labs/ is out of date
    python -m trtlab.course build-labs --lang zh_CN --instructor  # solutions/zh_CN/ + labs/zh_CN/ (trtlab.course_i18n)
    python -m trtlab.course i18n-update --lang zh_CN    # catalogs follow the English source; i18n-status counts
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from trtlab.errors import LabEdited, NotebookUnreadable, SolutionLeak, SolutionMarkerError
from trtlab.paths import course_root

__all__ = [
    "LabEdited", "LabPlan", "STUB", "SolutionLeak", "SolutionMarkerError", "build_labs", "clean_solutions",
    "content_sha", "lab_from_solution", "labs_out_of_date", "main", "normalise", "plan_labs", "read_notebook",
    "rendered_labs", "translated_notebooks", "translated_solution", "translation_out_of_date", "write_labs",
]

BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
# Anything a person may have meant as a marker: other case, other number of #, no/extra blanks, _ or -, trailing text.
MARKER_LIKE = re.compile(r"(BEGIN|END)[\W_]*SOLUTION", re.IGNORECASE)
CODE_STUB = "# YOUR CODE HERE"
STUB = 'raise NotImplementedError("exercise not done yet: write your code here")'
# A region inside a triple-quoted string holds C/CUDA source (Labs 04 and 05 compile it with NVRTC): its stub is C.
C_CODE_STUB = "// YOUR CODE HERE (CUDA C: this string is compiled by NVRTC)"
C_STUB = "// NotImplementedError: exercise not done yet: replace these two lines with your code"
CUDA_SOURCE = re.compile(r"__(device|global)__|#include")
ANSWER_STUB = "YOUR ANSWER HERE"
MANIFEST = ".generated.json"
NBFORMAT_MINOR = 5
MARKER_RULE = ("a marker is a line holding exactly `### BEGIN SOLUTION` or `### END SOLUTION` (indentation and "
               "trailing blanks allowed), BEGIN and END in pairs, never nested")


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """A notebook from disk, or :class:`NotebookUnreadable` naming the file and what is wrong with it."""
    try:
        return nbformat.read(path, as_version=4)
    except (nbformat.reader.NotJSONError, json.JSONDecodeError, nbformat.ValidationError, KeyError,
            UnicodeDecodeError) as err:
        raise NotebookUnreadable(
            f"{path}: not a readable notebook ({type(err).__name__}: {str(err).splitlines()[0][:200]}) | expected "
            "nbformat 4 JSON. Restore it from git (git checkout -- FILE) or fix it in JupyterLab, then run "
            "build-labs again; no lab was written.") from err


def _marker_error(where: str, number: int, line: str, problem: str) -> SolutionMarkerError:
    return SolutionMarkerError(
        f"{where} line {number}: {problem}: {line.strip()!r} | {MARKER_RULE}. Fix the line in the solution "
        "notebook and run build-labs again; no lab was written.")


def _regions(source: str, where: str) -> list[tuple[int, str, bool]]:
    """``(line number, line, inside a solution region)`` for every line that is not a marker; raises on any line
    that looks like a marker but is not exactly one, and on unpaired or nested markers."""
    lines: list[tuple[int, str, bool]] = []
    inside_since = 0
    for number, line in enumerate(source.split("\n"), 1):
        if BEGIN.match(line):
            if inside_since:
                raise _marker_error(where, number, line, f"BEGIN SOLUTION inside the region opened on line "
                                                         f"{inside_since}")
            inside_since = number
        elif END.match(line):
            if not inside_since:
                raise _marker_error(where, number, line, "END SOLUTION without BEGIN SOLUTION")
            inside_since = 0
        elif MARKER_LIKE.search(line):
            raise _marker_error(where, number, line, "this looks like a solution marker but is not exactly one")
        else:
            lines.append((number, line, bool(inside_since)))
    if inside_since:
        raise _marker_error(where, inside_since, "### BEGIN SOLUTION", "BEGIN SOLUTION without END SOLUTION")
    return lines


def _inside_cuda_string(before: str) -> bool:
    """Does a region that follows ``before`` sit inside a triple-quoted string of CUDA C (a kernel exercise)?"""
    parts = before.split('"""')
    return len(parts) % 2 == 0 and bool(CUDA_SOURCE.search(parts[-1]))


def _strip_regions(source: str, *, markdown: bool, where: str) -> str:
    _regions(source, where)  # validates every marker-like line first
    out: list[str] = []
    inside = False
    for line in source.split("\n"):
        begin = BEGIN.match(line)
        if begin:
            inside = True
            indent = begin["indent"]
            stub = (C_CODE_STUB, C_STUB) if _inside_cuda_string("\n".join(out)) else (CODE_STUB, STUB)
            out += [f"{indent}{ANSWER_STUB}"] if markdown else [f"{indent}{stub[0]}", f"{indent}{stub[1]}"]
        elif END.match(line):
            inside = False
        elif not inside:
            out.append(line)
    return "\n".join(out)


def _check_no_solution_text(solution_source: str, lab_source: str, where: str) -> None:
    """Raise SolutionLeak if the lab cell holds a solution region's line more often than the lines outside the
    regions and the stubs account for. Counted per stripped line, so a solution line that equals a stub line or
    a line outside the region (``)``, ``return x``) neither hides a leak nor raises a false one."""
    stray = [line for line in lab_source.split("\n") if MARKER_LIKE.search(line)]
    if stray:
        raise SolutionLeak(f"{where}: a solution marker survived into the lab: {stray[0].strip()!r} | a bug in "
                           "trtlab.course; nothing was written.")
    lines = _regions(solution_source, where)
    secret = [(n, line.strip()) for n, line, inside in lines if inside and line.strip()]
    if not secret:
        return
    regions = sum(1 for line in solution_source.split("\n") if BEGIN.match(line))
    allowed = Counter(line.strip() for _, line, inside in lines if not inside)
    allowed.update({CODE_STUB: regions, STUB: regions, C_CODE_STUB: regions, C_STUB: regions, ANSWER_STUB: regions})
    found = Counter(line.strip() for line in lab_source.split("\n"))
    for number, text in secret:
        if found[text] > allowed[text]:
            raise SolutionLeak(
                f"{where} line {number}: the generated lab still holds this solution line: {text!r} | the lab "
                "generator failed to remove a solution region; nothing was written. Report this as a bug in "
                "trtlab.course, with the solution notebook.")


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


def lab_from_solution(solution: nbformat.NotebookNode, *, name: str = "notebook") -> nbformat.NotebookNode:
    """The learner's version of a solution notebook; ``name`` is used in error messages."""
    lab = normalise(nbformat.from_dict(json.loads(json.dumps(solution))))
    for index, cell in enumerate(lab.cells):
        where = f"{name} cell {index} (id {cell.get('id')})"
        original = cell.source
        cell.source = _strip_regions(original, markdown=cell.cell_type == "markdown", where=where)
        _check_no_solution_text(original, cell.source, where)
    return lab


def _dumps(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def content_sha(text: str) -> str:
    """Hash of what a learner changes in a notebook — cell ids, types, sources, outputs, execution counts — and not
    of the metadata JupyterLab rewrites on open and save. Text that is not a notebook hashes as itself."""
    try:
        nb = nbformat.reads(text, as_version=4)
        cells = [{"id": c.get("id"), "type": c.cell_type, "source": c.source, "attachments": c.get("attachments"),
                  "outputs": c.get("outputs"), "execution_count": c.get("execution_count")} for c in nb.cells]
    except Exception:  # noqa: BLE001 - any unreadable file is simply "not the generated lab"
        return _sha(text)
    return _sha(json.dumps(cells, sort_keys=True))


def rendered_labs(solutions_dir: Path) -> dict[str, str]:
    """File name → lab notebook text, for every solution notebook (each scanned for solution text)."""
    return {
        path.name: _dumps(lab_from_solution(read_notebook(path), name=str(path)))
        for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb"))
    }


@dataclass
class LabPlan:
    """What ``write_labs`` will do: every lab rendered and checked, nothing written yet."""

    out_dir: Path
    labs: dict[str, str]
    kept: list[str] = field(default_factory=list)  # changed labs left alone (keep_edited)
    newer: list[str] = field(default_factory=list)  # of those, the ones whose course version changed since
    recorded: dict[str, str] = field(default_factory=dict)


def plan_labs(out_dir: Path, *, solutions_dir: Path | None = None, force: bool = False,
              keep_edited: bool = False, labs: dict[str, str] | None = None) -> LabPlan:
    """Render every lab (or take ``labs``, already rendered: a translated edition) and decide what to write. Raises
    (before anything is written) on a bad marker, a leak, or — unless ``force`` or ``keep_edited`` — a lab someone
    changed."""
    labs = dict(labs) if labs is not None else rendered_labs(solutions_dir or course_root() / "solutions")
    manifest_path = out_dir / MANIFEST
    recorded = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    edited = []
    for name, text in labs.items():
        target = out_dir / name
        if target.exists():
            current = target.read_text()
            # manifests written before content hashes hold the hash of the file's text: accept either
            untouched = recorded.get(name) in (content_sha(current), _sha(current))
            if not untouched and content_sha(current) != content_sha(text):
                edited.append(name)
    plan = LabPlan(out_dir, labs, recorded=recorded)
    if edited and not force:
        if not keep_edited:
            raise LabEdited(
                f"not overwriting {', '.join(edited)} in {out_dir}: edited since it was generated (your work?). "
                "Write elsewhere with --out DIR, or pass --force to replace it.")
        plan.kept = edited
        plan.newer = [name for name in edited if recorded.get(name) not in (content_sha(labs[name]), _sha(labs[name]))]
        for name in edited:
            del plan.labs[name]
    return plan


def write_labs(plan: LabPlan) -> list[str]:
    """Write a plan's labs and the manifest; return the names written."""
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in plan.labs.items():
        target = plan.out_dir / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
            written.append(name)
    manifest = {**plan.recorded, **{name: content_sha(text) for name, text in plan.labs.items()}}
    (plan.out_dir / MANIFEST).write_text(json.dumps(dict(sorted(manifest.items())), indent=1) + "\n")
    return written


def build_labs(out_dir: Path, *, solutions_dir: Path | None = None, force: bool = False,
               keep_edited: bool = False) -> list[str]:
    """Write labs into ``out_dir``; return the names written. Refuses to overwrite a lab someone changed."""
    return write_labs(plan_labs(out_dir, solutions_dir=solutions_dir, force=force, keep_edited=keep_edited))


def clean_solutions(solutions_dir: Path) -> list[str]:
    """Normalise solution notebooks in place (outputs cleared); return the names that changed."""
    changed = []
    for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        text = _dumps(normalise(read_notebook(path)))
        if path.read_text() != text:
            path.write_text(text)
            changed.append(path.name)
    return changed


def labs_out_of_date(labs_dir: Path, solutions_dir: Path) -> list[str]:
    """Names of labs missing from ``labs_dir`` or whose content differs from what the solutions generate
    (metadata JupyterLab rewrites does not count)."""
    return [
        name for name, text in rendered_labs(solutions_dir).items()
        if not (labs_dir / name).exists() or content_sha((labs_dir / name).read_text()) != content_sha(text)
    ]


# ---------------------------------------------------------------- translated editions (trtlab.course_i18n)


def _secret_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Stripped lines inside the solution regions of any cell, minus lines that also occur outside a region."""
    inside, outside = set(), set()
    for cell in nb.cells:
        region = False
        for line in cell.source.split("\n"):
            if BEGIN.match(line) or END.match(line):
                region = bool(BEGIN.match(line))
                continue
            (inside if region else outside).add(line.strip())
    return {line for line in inside - outside if any(ch.isalnum() for ch in line)}


def _check_translation(english: str, translation: str, secrets: set[str], where: str) -> None:
    """Raise SolutionLeak if a translation lost or added a solution marker, or holds a solution line (of any cell
    of the English notebook) outside a region: the lab would show the answer."""
    markers = [line.strip() for line in english.split("\n") if MARKER_LIKE.search(line)]
    kept = [line.strip() for line in translation.split("\n") if MARKER_LIKE.search(line)]
    if markers != kept:
        raise SolutionLeak(f"{where}: the translation has solution markers {kept}, the English {markers} | a "
                           "translation keeps every ### BEGIN SOLUTION / ### END SOLUTION line as it is, so the lab "
                           "generator can remove the answer; nothing was written.")
    outside, region = [], False
    for line in translation.split("\n"):
        if BEGIN.match(line) or END.match(line):
            region = bool(BEGIN.match(line))
        elif not region:
            outside.append(line.strip())
    leaked = [line for line in outside if line in secrets]
    if leaked:
        raise SolutionLeak(f"{where}: the translation holds a solution line outside the solution region: "
                           f"{leaked[0]!r} | the lab would show the answer. Move it inside the region markers or "
                           "drop it from the translation; nothing was written.")


def translated_solution(solution: nbformat.NotebookNode, lang: str, *, name: str,
                        root: Path | None = None) -> nbformat.NotebookNode:
    """The ``lang`` edition of an English solution notebook: each markdown cell replaced by its current translation,
    one ``tl.set_language`` cell (id ``LANGUAGE_CELL_ID``) inserted before the first code cell, every other code cell
    as it is. Raises NotTranslated (a cell missing or stale) or SolutionLeak (a translation that would leak)."""
    from trtlab.course_i18n import LANGUAGE_CELL_ID, NotTranslated, catalog_path, current_translation, read_catalog

    catalog = read_catalog(catalog_path(lang, name, root))
    secrets = _secret_lines(solution)
    out = normalise(nbformat.from_dict(json.loads(json.dumps(solution))))
    problems = []
    for cell in out.cells:
        if cell.cell_type != "markdown" or not cell.source.strip():
            continue
        state, text = current_translation(catalog, cell["id"], cell.source)
        if text is None:
            problems.append(f"cell {cell['id']} {state}")
            continue
        _check_translation(cell.source, text, secrets, f"{lang}/{name} cell {cell['id']}")
        cell.source = text
    if problems:
        raise NotTranslated(
            f"{name}: {len(problems)} markdown cell(s) without a current {lang} translation ({'; '.join(problems[:5])}"
            f"{' …' if len(problems) > 5 else ''}) | expected every markdown cell translated and current. Run "
            f"python -m trtlab.course i18n-update --lang {lang}, translate the empty and fuzzy entries of "
            f"{catalog_path(lang, name, root)}, drop their fuzzy flag, then build again.")
    first_code = next((i for i, c in enumerate(out.cells) if c.cell_type == "code"), len(out.cells))
    cell = nbformat.v4.new_code_cell(f'import trtlab as tl\n\ntl.set_language("{lang}")')
    cell["id"] = LANGUAGE_CELL_ID
    out.cells.insert(first_code, cell)
    return normalise(out)


def translated_notebooks(lang: str, solutions_dir: Path, root: Path | None = None
                         ) -> tuple[dict[str, str], dict[str, str], list]:
    """``(solutions, labs, not_yet)``: file name → notebook text for every notebook whose ``lang`` catalog is
    complete (each lab scanned for solution text like the English ones), and the CatalogStatus of the others."""
    from trtlab.course_i18n import notebook_status

    solutions, labs, not_yet = {}, {}, []
    for path in sorted(solutions_dir.glob("[0-9][0-9]_*.ipynb")):
        english = read_notebook(path)
        status = notebook_status(english, path.name, lang, root)
        if not status.complete:
            not_yet.append(status)
            continue
        edition = translated_solution(english, lang, name=path.name, root=root)
        solutions[path.name] = _dumps(edition)
        labs[path.name] = _dumps(lab_from_solution(edition, name=f"{lang}/{path.name}"))
    return solutions, labs, not_yet


def translation_out_of_date(lang: str, root: Path) -> list[str]:
    """``solutions/<lang>/`` and ``labs/<lang>/`` files that differ from what the catalogs generate, are missing,
    or exist although their catalog is no longer complete."""
    solutions, labs, not_yet = translated_notebooks(lang, root / "solutions", root)
    wrong = []
    for folder, expected in (("solutions", solutions), ("labs", labs)):
        for name, text in expected.items():
            path = root / folder / lang / name
            if not path.exists() or path.read_text() != text:
                wrong.append(f"{folder}/{lang}/{name}")
        wrong += [f"{folder}/{lang}/{s.name} (catalog incomplete)" for s in not_yet
                  if (root / folder / lang / s.name).exists()]
    return wrong


def _build_translated(args: argparse.Namespace, root: Path) -> int:
    """build-labs --lang: the translated solutions and labs of every notebook whose catalog is complete."""
    from trtlab.course_i18n import NotTranslated

    try:
        if args.check:
            wrong = translation_out_of_date(args.lang, root)
            print(f"{args.lang} edition is up to date" if not wrong else f"out of date: {', '.join(wrong)} (run: "
                  f"python -m trtlab.course build-labs --lang {args.lang} --instructor)")
            return 1 if wrong else 0
        solutions, labs, not_yet = translated_notebooks(args.lang, root / "solutions", root)
        out = root / "labs" / args.lang if args.instructor else args.out
        plan = plan_labs(out, force=args.force, keep_edited=args.keep_edited, labs=labs)
    except (SolutionMarkerError, SolutionLeak, LabEdited, NotebookUnreadable, NotTranslated) as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 2
    if args.instructor:
        folder = root / "solutions" / args.lang
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in solutions.items():
            if not (folder / name).exists() or (folder / name).read_text() != text:
                (folder / name).write_text(text)
    written = write_labs(plan)
    print(f"{len(written)} {args.lang} lab(s) written to {out}: {', '.join(written) or 'all already up to date'}"
          + (f"; solutions/{args.lang}/ holds {', '.join(solutions) or 'none'}" if args.instructor else ""))
    for status in not_yet:
        print(f"not translated yet: {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trtlab.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-labs", help="generate lab notebooks from solutions/")
    where = build.add_mutually_exclusive_group()
    where.add_argument("--instructor", action="store_true", help="write labs/ in the repository")
    where.add_argument("--out", type=Path, help="write the labs into this folder")
    where.add_argument("--check", action="store_true", help="only report whether labs/ is up to date")
    build.add_argument("--force", action="store_true", help="overwrite labs that were changed")
    build.add_argument("--keep-edited", action="store_true",
                       help="write the labs nobody changed and leave changed ones as they are (make lab)")
    build.add_argument("--lang", help="a translated edition (zh_CN): with --instructor writes solutions/LANG/ and "
                                      "labs/LANG/ from the English solutions and i18n/LANG/ catalogs")
    for command, text in (("i18n-update", "update the LANG catalogs (notebooks and package messages) from the "
                                          "English source"),
                          ("i18n-status", "per notebook: translated / stale / missing markdown cells")):
        sub.add_parser(command, help=text).add_argument("--lang", required=True, help="e.g. zh_CN")
    args = parser.parse_args(argv)

    root = course_root()
    if args.command in ("i18n-update", "i18n-status"):
        return _i18n_command(args.command, args.lang, root)
    if args.lang and not (args.instructor or args.out or args.check):
        parser.error("say where: --instructor (solutions/LANG/ and labs/LANG/ in the repository) or --out DIR")
    if args.lang:
        return _build_translated(args, root)
    try:
        if args.check:
            stale = labs_out_of_date(root / "labs", root / "solutions")
            print("labs/ is up to date" if not stale else f"out of date: {', '.join(stale)} "
                  "(run: python -m trtlab.course build-labs --instructor)")
            return 1 if stale else 0
        if not args.instructor and args.out is None:
            parser.error("say where: --instructor (labs/ in the repository) or --out DIR")
        out = root / "labs" if args.instructor else args.out
        plan = plan_labs(out, solutions_dir=root / "solutions", force=args.force, keep_edited=args.keep_edited)
    except (SolutionMarkerError, SolutionLeak, LabEdited, NotebookUnreadable) as refused:
        print(f"refused: {refused}", file=sys.stderr)
        return 2
    if args.instructor:  # only once every lab rendered and nothing was refused
        cleaned = clean_solutions(root / "solutions")
        if cleaned:
            print(f"cleared outputs of {', '.join(cleaned)} in solutions/")
    written = write_labs(plan)
    print(f"{len(written)} lab(s) written to {out}: {', '.join(written) or 'all already up to date'}")
    if plan.kept:
        print(f"kept your changed lab(s) {', '.join(plan.kept)} in {out} as they are"
              + (f"; the course's version of {', '.join(plan.newer)} changed since: get it with "
                 "python -m trtlab.course build-labs --out ANOTHER_DIR" if plan.newer else ""))
    return 0


def _i18n_command(command: str, lang: str, root: Path) -> int:
    from trtlab.course_i18n import notebook_status, update_catalog, update_messages

    notebooks = sorted((root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    if command == "i18n-update":
        for path in notebooks:
            update_catalog(read_notebook(path), path.name, lang, root)
        messages = update_messages(lang, root)
        print(f"updated i18n/{lang}/notebooks/ ({len(notebooks)} catalogs) and trtlab/locale/{lang} "
              f"({sum(1 for m in messages if m.id)} messages)")
    for path in notebooks:
        print(notebook_status(read_notebook(path), path.name, lang, root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
