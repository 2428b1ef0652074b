"""The Chinese edition in a real JupyterLab: ``solutions/zh_CN/00_setup.ipynb`` opened in headless Chromium, Run
All, the checks pass, and the "提示" (Hint) button reveals hint 1/3 in Chinese. The session is test_browser.py's; a
screenshot lands in ``test-artifacts/browser/lab00-zh_CN.png``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from test_browser import CELL_STDOUT, Session, _click_and_read, _session
from test_browser import test_every_cell_ran_without_errors as every_cell_ran_without_errors

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

NOTEBOOK_ZH = Path(__file__).resolve().parent.parent / "solutions" / "zh_CN" / "00_setup.ipynb"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def lab00_zh(tmp_path_factory: pytest.TempPathFactory):
    yield from _session(tmp_path_factory, NOTEBOOK_ZH, "lab00-zh_CN")


def test_chinese_lab00_runs_and_shows_a_chinese_hint(lab00_zh: Session) -> None:
    every_cell_ran_without_errors(lab00_zh)
    first = lab00_zh.check_cells()[0]
    printed = " ".join(lab00_zh.cell(first).locator(CELL_STDOUT).all_text_contents())
    assert "✅ lab00." in printed and CJK.search(printed), f"the check's verdict is not in Chinese: {printed!r}"
    hint = _click_and_read(lab00_zh, first, "提示", "提示 1/3")
    body = hint.split("提示 1/3", 1)[1]
    assert len(CJK.findall(body)) >= 5, f"hint 1/3 is not Chinese: {hint!r}"
