"""Translated editions of the course, generated from the one English source.

Notebooks: one gettext catalog per notebook and language, ``i18n/<lang>/notebooks/NN_name.po``, one entry per
markdown cell: ``msgctxt`` is the cell's stable id, ``msgid`` the English markdown it translates (the fingerprint:
the exact text), ``msgstr`` the translation. ``i18n-update`` rewrites the catalogs from the English solutions: a new
cell comes in untranslated; a changed cell gets the new English as its msgid, keeps the old translation for the
translator and is flagged ``fuzzy`` (a comment above it quotes the English it translated), so it is STALE until a
translator updates it and drops the flag. A cell whose msgid no longer equals the English is stale too, even
before ``i18n-update`` runs. Only a notebook whose every markdown cell has a current translation is generated.

A generated notebook is the English one with each markdown cell replaced by its translation and one extra code
cell, id :data:`LANGUAGE_CELL_ID`, inserted before the first code cell: ``tl.set_language("<lang>")``, so that
checks and hints speak the notebook's language. Every other code cell is byte-for-byte the English one.

Package messages (checker verdicts, hints, the doctor, mode announcements) live in
``trtlab/locale/<lang>/LC_MESSAGES/trtlab.po``: extracted by Babel from the modules that mark their messages with
``_()``/``N_()`` (:data:`TRANSLATED_MODULES`), merged, and compiled to the ``.mo`` that :mod:`trtlab.i18n` loads.

    python -m trtlab.course i18n-update --lang zh_CN    # catalogs follow the English source (notebooks + package)
    python -m trtlab.course i18n-status --lang zh_CN    # per notebook: translated / stale / missing
    python -m trtlab.course build-labs --lang zh_CN --instructor   # solutions/zh_CN/ and labs/zh_CN/
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from dataclasses import dataclass
from pathlib import Path

import nbformat
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from trtlab.errors import TrtlabError
from trtlab.i18n import DOMAIN, LOCALE_DIR
from trtlab.paths import course_root

__all__ = [
    "CatalogStatus", "LANGUAGE_CELL_ID", "NotTranslated", "PREVIOUS_ENGLISH", "TRANSLATED_MODULES", "catalog_path",
    "compile_messages", "current_translation", "extract_messages", "markdown_cells", "notebook_status",
    "read_catalog", "update_catalog", "update_messages",
]

#: the one code cell a translated notebook adds (before its first code cell); every other code cell is English's
LANGUAGE_CELL_ID = "i18n-set-language"
#: package modules whose user-facing messages are marked for translation; extend as modules are converted
TRANSLATED_MODULES = ("trtlab/check/__init__.py", "trtlab/check/lab00.py", "trtlab/doctor.py", "trtlab/env.py",
                      "trtlab/i18n.py",
                      "trtlab/check/lab01.py", "trtlab/check/lab04.py", "trtlab/check/_c_eval.py",
                      "trtlab/check/lab05.py", "trtlab/check/_lab05_kernel.py", "trtlab/check/_gem_eval.py",
                      "trtlab/runtime.py", "trtlab/_plan_file.py", "trtlab/export.py", "trtlab/data.py",
                      "trtlab/train.py", "trtlab/serve/server.py", "trtlab/serve/process.py", "trtlab/serve/clients.py",
                      "trtlab/serve/runner.py", "trtlab/serve/tensorrt_plan.py", "trtlab/serve/http_baseline.py", "trtlab/serve/load.py",
                      "trtlab/check/review.py", "trtlab/review/__init__.py", "trtlab/review/bank.py",
                      "trtlab/review/lab00.py", "trtlab/review/lab01.py", "trtlab/review/lab02.py",
                      "trtlab/review/lab03.py", "trtlab/review/lab04.py", "trtlab/review/lab05.py",
                      "trtlab/review/lab06.py",
                      "trtlab/check/lab06.py", "trtlab/serve/pbtxt.py", "trtlab/serve/config.py",
                      "trtlab/serve/feeds.py", "trtlab/standin/cpu.py", "trtlab/standin/gpu.py",
                      "trtlab/standin/trtp.py",
                      "trtlab/check/lab02.py", "trtlab/check/lab03.py", "trtlab/engine.py", "trtlab/engine_tools.py",
                      "trtlab/polygraphy_cli.py", "trtlab/precision.py", "trtlab/kernels/compile.py",
                      "trtlab/kernels/cvcuda_ops.py", "trtlab/kernels/gpu.py", "trtlab/kernels/launch.py",
                      "trtlab/kernels/pipeline.py", "trtlab/kernels/plan.py", "trtlab/kernels/reference.py",
                      "trtlab/plugins/__init__.py", "trtlab/plugins/kernel.py", "trtlab/plugins/op.py",
                      "trtlab/plugins/ort.py", "trtlab/plugins/trt.py")
#: the comment above a stale entry, followed by the English its translation was made for (one "> " line each)
PREVIOUS_ENGLISH = "STALE: the English changed. The translation below was made for this English:"
#: catalog headers carry no wall-clock time, so regeneration stays byte-identical
_FIXED_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)


class NotTranslated(TrtlabError):
    """A notebook's catalog is missing translations or holds stale ones: that notebook is not generated."""


@dataclass(frozen=True)
class CatalogStatus:
    """How far one notebook's translation is: ``translated`` current cells, ``stale`` ones (the English changed
    since), ``missing`` ones (never translated)."""

    name: str
    translated: int
    stale: int
    missing: int

    @property
    def total(self) -> int:
        return self.translated + self.stale + self.missing

    @property
    def complete(self) -> bool:
        return self.stale == 0 and self.missing == 0

    def __str__(self) -> str:
        state = "complete" if self.complete else "not translated yet"
        return (f"{self.name:<26} {self.translated:>3} translated  {self.stale:>3} stale  {self.missing:>3} missing  "
                f"({state})")


def catalog_path(lang: str, notebook: str, root: Path | None = None) -> Path:
    """``i18n/<lang>/notebooks/NN_name.po`` for notebook file ``NN_name.ipynb``."""
    return (root or course_root()) / "i18n" / lang / "notebooks" / f"{Path(notebook).stem}.po"


def read_catalog(path: Path) -> Catalog:
    """A PO catalog from disk (an empty one when the file does not exist yet)."""
    if not path.exists():
        return Catalog(locale=path.parts[-3], project="trtlab", fuzzy=False, creation_date=_FIXED_DATE,
                       revision_date=_FIXED_DATE)
    with path.open("rb") as handle:
        return read_po(handle, locale=path.parts[-3])


def _po_bytes(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    # a width no line reaches: msgids break only at their own newlines, comments are never re-wrapped
    write_po(buffer, catalog, width=100_000, include_lineno=False)
    return buffer.getvalue()


def markdown_cells(nb: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """``(cell id, English source)`` of every non-empty markdown cell: what a catalog translates."""
    return [(cell["id"], cell.source) for cell in nb.cells if cell.cell_type == "markdown" and cell.source.strip()]


def _by_context(catalog: Catalog) -> dict[str, Message]:
    return {m.context: m for m in catalog if m.id and m.context}


def update_catalog(solution: nbformat.NotebookNode, name: str, lang: str, root: Path | None = None) -> Catalog:
    """Bring the catalog of notebook ``name`` (the English ``solution``) up to date with its markdown cells and
    write it (only if it changed). New cells: untranslated. Changed cells: new msgid, old translation kept,
    flagged fuzzy (stale)."""
    path = catalog_path(lang, name, root)
    old = read_catalog(path)
    known = _by_context(old)
    new = Catalog(locale=lang, project="trtlab", fuzzy=False, creation_date=_FIXED_DATE, revision_date=_FIXED_DATE,
                  header_comment=f"# {lang} translation of {name}: one entry per markdown cell (msgctxt = "
                                 "cell id, msgid = the English it translates).\n# Regenerate entries with: python -m "
                                 f"trtlab.course i18n-update --lang {lang}\n#")
    cells = markdown_cells(solution)
    for cell_id, english in cells:
        before = known.get(cell_id)
        if before is None or not before.string:
            new.add(english, "", context=cell_id)
        elif before.id == english:  # the translator's comments stay while it is fuzzy, go once it is current
            new.add(english, before.string, context=cell_id, flags=before.flags - {"python-format"},
                    user_comments=before.user_comments if before.fuzzy else ())
        else:  # the English changed: keep the translation for the translator, visibly stale
            previous = (before.user_comments if before.fuzzy and before.user_comments else
                        [PREVIOUS_ENGLISH, *(f"> {line}" for line in before.id.split("\n"))])
            new.add(english, before.string, context=cell_id, flags={"fuzzy"}, user_comments=previous)
    current = {cell_id for cell_id, _ in cells}
    for cell_id, message in known.items():  # a removed cell's translation stays, commented out, for reference
        if cell_id not in current and message.string:
            new.obsolete[(message.id, cell_id)] = message
    for message in new:
        message.flags.discard("python-format")  # Markdown, not a format string (Babel guesses from a '%')
    data = _po_bytes(new)
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return new


def current_translation(catalog: Catalog, cell_id: str, english: str) -> tuple[str, str | None]:
    """``("translated", text)``, ``("stale", None)`` (fuzzy, or the English changed since) or ``("missing", None)``
    for the markdown cell ``cell_id`` whose English source is ``english``."""
    message = _by_context(catalog).get(cell_id)
    if message is None or not message.string:
        return "missing", None
    if message.fuzzy or message.id != english:
        return "stale", None
    return "translated", str(message.string)


def notebook_status(solution: nbformat.NotebookNode, name: str, lang: str, root: Path | None = None
                    ) -> CatalogStatus:
    """Count translated, stale and missing markdown cells of the English ``solution`` against its catalog."""
    catalog = read_catalog(catalog_path(lang, name, root))
    counts = {"translated": 0, "stale": 0, "missing": 0}
    for cell_id, english in markdown_cells(solution):
        counts[current_translation(catalog, cell_id, english)[0]] += 1
    return CatalogStatus(name, **counts)


# ---------------------------------------------------------------- package messages (trtlab/locale)


def extract_messages(root: Path | None = None) -> Catalog:
    """Every message marked with ``_()``/``N_()`` in :data:`TRANSLATED_MODULES` (Babel's Python extractor)."""
    root = root or course_root()
    template = Catalog(project="trtlab", fuzzy=False, creation_date=_FIXED_DATE)
    for module in TRANSLATED_MODULES:
        for lineno, message, comments, context in extract_from_file("python", root / module):
            template.add(message, locations=[(module, lineno)], auto_comments=comments, context=context)
    for message in template:
        message.flags.discard("python-format")  # the course formats with str.format, never with %
    return template


def _messages_po(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def update_messages(lang: str, root: Path | None = None) -> Catalog:
    """Merge the extracted messages into the package catalog (new: untranslated; changed: fuzzy), write it,
    compile it."""
    path = _messages_po(lang)
    catalog = read_catalog(path) if path.exists() else Catalog(locale=lang, project="trtlab", fuzzy=False,
                                                               creation_date=_FIXED_DATE)
    catalog.update(extract_messages(root), update_creation_date=False)
    catalog.revision_date = _FIXED_DATE
    for message in catalog:
        message.flags.discard("python-format")
    data = _po_bytes(catalog)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)
    compile_messages(lang)
    return catalog


def compile_messages(lang: str, *, write: bool = True) -> bytes:
    """The ``.mo`` for the package catalog (fuzzy entries left out, so English shows until they are fixed)."""
    with _messages_po(lang).open("rb") as handle:
        catalog = read_po(handle, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    data = buffer.getvalue()
    mo = _messages_po(lang).with_suffix(".mo")
    if write and (not mo.exists() or mo.read_bytes() != data):
        mo.write_bytes(data)
    return data
