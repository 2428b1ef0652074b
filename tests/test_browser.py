"""What a learner sees: Lab 00 in a real JupyterLab, in headless Chromium.

nbval proves the notebooks run; this proves the learner's view works. A JupyterLab server is started from this
environment (isolated in a temp dir, random port and token), Chromium opens a copy of ``solutions/00_setup.ipynb``,
clears its outputs, runs all cells from the Run menu, and the tests assert what is on the page:

- every code cell ran and none shows an error (read from the page *and* from JupyterLab's notebook model; the
  Log Console, where exceptions in widget callbacks land, stays free of tracebacks);
- each check cell prints ✅ and renders its "Check again" and "Hint" buttons;
- clicking "Hint" reveals hint 1/3, then 2/3; clicking "Check again" re-runs the check and shows ✅;
- the tensor-core plot is a decoded image.

The Chinese edition gets the same session in tests/test_browser_zh.py (one browser at a time: Playwright's sync API
refuses a second one while a module's session is open). A screenshot lands in ``test-artifacts/browser/lab00.png``. Needs the system Chromium (``make system-deps``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import JupyterLab, chromium_path, launch_chromium, notebook_state, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

REPO = Path(__file__).resolve().parent.parent
# TRTLAB_BROWSER_NOTEBOOK: run the same checks on another copy (e.g. a deliberately broken one, to see the test fail)
NOTEBOOK = Path(os.environ.get("TRTLAB_BROWSER_NOTEBOOK") or REPO / "solutions" / "00_setup.ipynb")
ARTIFACTS = REPO / "test-artifacts" / "browser"
RUN_TIMEOUT = 150  # s for "Run All" (measured 3–10 s on 2 busy shared cores)

# Tracebacks render with the same element and MIME type as ordinary stderr (tqdm bars, warnings): judge by text.
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|Cell In\[\d*\]|^\s*[A-Z]\w*(Error|Exception|Failed): ",
                        re.MULTILINE)
CHECK_CALL = re.compile(r"^\s*tl\.check\.lab00\.\w+\(", re.MULTILINE)
STDOUT = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stdout"]'
CELL_STDOUT = f".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output{STDOUT}"  # not the widgets' own


@dataclass
class Session:
    page: Any
    server: JupyterLab
    state: dict  # the notebook model right after Run All
    run_s: float
    notes: list[str] = field(default_factory=list)

    def cell(self, index: int) -> Any:
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def button(self, index: int, label: str) -> Any:
        """The check widget's button in cell ``index``; fails within seconds (not Playwright's 30 s) if missing."""
        button = self.cell(index).locator(".jupyter-widgets button.widget-button", has_text=label)
        try:
            wait_until(lambda: button.count() == 1, timeout=10, what=f"one {label!r} button")
        except TimeoutError:
            pytest.fail(f"cell {index}: no rendered {label!r} button (did the check cell run? are ipywidgets and "
                        f"jupyterlab_widgets installed in this environment?)")
        return button

    def check_cells(self) -> list[int]:
        return [i for i, c in enumerate(self.state["cells"]) if c["type"] == "code" and CHECK_CALL.search(c["source"])]


def _kernel_idle(page: Any) -> bool:
    state = notebook_state(page)
    k = state and state["kernel"]
    return bool(k and k["status"] == "idle" and k["connection"] == "connected")


def _run_finished(page: Any) -> bool:
    """Kernel idle, no cell waiting (``[*]``), at least one numbered prompt. Not "every prompt numbered": after an
    error the remaining cells go back to ``[ ]`` and that wait would hang."""
    state = notebook_state(page)
    if not state or not state["kernel"] or state["kernel"]["status"] != "idle":
        return False
    prompts = [c.get("prompt") or "" for c in state["cells"] if c["type"] == "code"]
    return not any("*" in p for p in prompts) and any(re.search(r"\[\d+\]", p) for p in prompts)


def _menu(page: Any, menu: str, command: str) -> None:
    """Click a menubar item, then the entry for ``command``, as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(rf"^{menu}$")).click()
    page.locator(f'li.lm-Menu-item[data-command="{command}"]').click()


def _all_output_text(page: Any) -> str:
    return page.evaluate("""() => Array.from(document.querySelectorAll('.jp-Notebook .jp-OutputArea-output'))
                                .map(e => e.textContent).join('\\n----\\n')""")


@pytest.fixture(scope="module")
def lab00(tmp_path_factory: pytest.TempPathFactory):
    yield from _session(tmp_path_factory, NOTEBOOK, "lab00")


def _session(tmp_path_factory: pytest.TempPathFactory, notebook: Path, tag: str):
    chromium_path()  # clear messages before anything starts
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as err:
        raise RuntimeError("browser test: Playwright for Python is missing | install the test extras: "
                           "pip install -e '.[test]' (never `playwright install`: the system Chromium is used)") from err
    root = tmp_path_factory.mktemp("jupyterlab")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    server = JupyterLab(root, env={"TRTLAB_STRICT_CHECKS": "1"})
    try:
        yield from _open_and_run_all(server, notebook, tag)
    finally:  # the server's and the kernel's own messages, for a failed run
        if server.log_path.exists():
            shutil.copy(server.log_path, ARTIFACTS / f"jupyterlab-{tag}.log")
        if server.shutdown_notes:
            warnings.warn("JupyterLab did not shut down cleanly: " + "; ".join(server.shutdown_notes), stacklevel=1)


def _open_and_run_all(server: JupyterLab, notebook: Path, tag: str):
    from playwright.sync_api import sync_playwright

    with server:
        shutil.copy(notebook, server.notebooks / notebook.name)  # outputs are saved there, never into the repo
        with sync_playwright() as pw:
            context = launch_chromium(pw, server.root / "chromium", viewport=(1400, 1300))
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(30_000)
            page_errors: list[str] = []
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            try:
                page.goto(server.url(notebook.name), wait_until="domcontentloaded", timeout=60_000)
                wait_until(lambda: _kernel_idle(page), timeout=90, what="the notebook open with an idle kernel",
                           times=2)
                server.remember_processes()
                _menu(page, "Edit", "editmenu:clear-all")
                wait_until(lambda: not page.locator(".jp-Notebook .jp-OutputArea-output").count(), timeout=10,
                           what="outputs cleared")
                started = time.monotonic()
                _menu(page, "Run", "runmenu:run-all")
                wait_until(lambda: _run_finished(page), timeout=RUN_TIMEOUT, what="Run All to finish", times=2,
                           interval=0.5)
                run_s = time.monotonic() - started
                server.remember_processes()
                state = notebook_state(page)
                assert state is not None, "the notebook panel disappeared after Run All"
                session = Session(page, server, state, run_s)
                session.notes = page_errors
                (ARTIFACTS / f"{tag}-state.json").write_text(json.dumps({"run_all_s": round(run_s, 1), **session.state},
                                                                       indent=1))
                yield session
            finally:
                try:
                    if "session" in locals() and session.check_cells():  # the first check, its buttons and the plot
                        session.cell(session.check_cells()[0]).evaluate("e => e.scrollIntoView({block: 'start'})")
                    page.screenshot(path=str(ARTIFACTS / f"{tag}.png"))
                finally:
                    context.close()


def test_every_cell_ran_without_errors(lab00: Session) -> None:
    code = [c for c in lab00.state["cells"] if c["type"] == "code"]
    not_run = [i for i, c in enumerate(lab00.state["cells"]) if c["type"] == "code" and not c["execution_count"]]
    errors = [(i, o.get("ename"), o.get("evalue")) for i, c in enumerate(lab00.state["cells"]) if c["type"] == "code"
              for o in c["outputs"] if o.get("output_type") == "error"]
    assert not errors, f"error outputs in the notebook model (cell index, exception, message): {errors}"
    assert code and not not_run, f"cells that did not run (index): {not_run}"
    shown = _all_output_text(lab00.page)
    found = ERROR_TEXT.search(shown)
    assert not found, f"an error is shown on the page: ...{shown[max(0, found.start() - 300):found.end() + 300]}..."
    print(f"Run All: {len(code)} code cells in {lab00.run_s:.1f} s")


def test_check_widgets_render_and_report_success(lab00: Session) -> None:
    checks = lab00.check_cells()
    assert len(checks) >= 3, f"expected the three Lab 00 check cells, found code cells {checks}"
    for i in checks:
        cell = lab00.cell(i)
        printed = " ".join(cell.locator(CELL_STDOUT).all_text_contents())
        assert "✅ lab00." in printed and "❌" not in printed, f"cell {i}: the check did not print ✅: {printed!r}"
        for label in ("Check again", "Hint"):
            button = lab00.button(i, label)
            button.scroll_into_view_if_needed()
            assert button.is_visible(), f"cell {i}: the {label!r} button is not visible"


def _click_and_read(lab00: Session, index: int, label: str, expected: str) -> str:
    """Click a check widget's button; return the widget's stdout once it shows ``expected``. A traceback there
    (an exception inside the callback's ``with out:``) fails at once, with the traceback in the message."""
    widget_out = lab00.cell(index).locator(".widget-output")
    before = " ".join(widget_out.all_text_contents())  # an older traceback there is not this click's
    lab00.button(index, label).click()

    def seen() -> str | None:
        everything = " ".join(widget_out.all_text_contents())
        if everything != before and ERROR_TEXT.search(everything):
            pytest.fail(f"cell {index}: clicking {label!r} raised in the callback:\n{everything[:2000]}")
        stdout = " ".join(widget_out.locator(STDOUT).all_text_contents())
        return stdout if expected in stdout else None

    return wait_until(seen, timeout=20, what=f"{expected!r} in cell {index}'s widget after clicking {label!r}")


def test_hint_button_reveals_graded_hints(lab00: Session) -> None:
    first = lab00.check_cells()[0]
    _click_and_read(lab00, first, "Hint", "hint 1/3")
    _click_and_read(lab00, first, "Hint", "hint 2/3")


def test_check_again_reruns_the_check(lab00: Session) -> None:
    for i in lab00.check_cells():
        text = _click_and_read(lab00, i, "Check again", "✅")
        assert "❌" not in text and "💡" not in text, f"cell {i}: Check again should replace the output: {text!r}"


def test_plot_is_a_decoded_image(lab00: Session) -> None:
    images = lab00.page.locator('.jp-Notebook .jp-OutputArea-output img')
    assert images.count() >= 1, "no image in any output: the matplotlib figure did not render"
    first = images.first
    first.scroll_into_view_if_needed()
    size = first.evaluate("img => img.decode().then(() => [img.naturalWidth, img.naturalHeight])")
    assert size[0] > 100 and size[1] > 100, f"the plot image did not decode to a real picture: {size}"


def test_no_errors_after_the_clicks(lab00: Session) -> None:
    """Widget callbacks run after the cells: their errors land in the widget's output or, outside ``with out:``,
    only in the Log Console."""
    shown = _all_output_text(lab00.page)
    found = ERROR_TEXT.search(shown)
    assert not found, f"an error is shown on the page: ...{shown[max(0, found.start() - 300):found.end() + 300]}..."
    lab00.page.evaluate("() => window.jupyterapp.commands.execute('logconsole:open')")
    console = lab00.page.locator(".jp-LogConsole")
    console.first.wait_for(state="attached", timeout=10_000)
    text = " ".join(console.all_text_contents())
    assert not ERROR_TEXT.search(text), f"the Log Console shows an error: {text[:2000]}"
    assert not lab00.notes, f"JavaScript errors on the page: {lab00.notes}"
    lab00.page.evaluate("() => window.jupyterapp.commands.execute('logconsole:open')")  # toggle it closed again

