"""Test-suite wide settings. At the repository root so they also apply to the solution notebooks nbval runs:
strict exercise checks: a failing check in a solution notebook raises CheckFailed and fails CI."""

import os

import pytest

os.environ["TRTLAB_STRICT_CHECKS"] = "1"


def pytest_ignore_collect(collection_path, config):
    """tests/gpu needs CuPy and a GPU: collect it only when the run selects the gpu or tensorrt marker
    (make test-gpu, which runs it on a GPU machine). CPU runs leave the folder out instead of skipping its tests."""
    markexpr = config.getoption("markexpr") or ""
    if "gpu" in collection_path.parts and ("not gpu" in markexpr or "gpu" not in markexpr and "tensorrt" not in markexpr):
        return True
    return None


_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Add up the time of every cell of each notebook (kernel start included): the instructor's time-per-lab."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _NOTEBOOK_SECONDS[path] = _NOTEBOOK_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("wall time per notebook")
        for path, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{path:<45} {seconds:7.1f} s")


@pytest.fixture(scope="module")
def toy_onnx(tmp_path_factory):
    """The course's toy classifier (``trtlab._toy``: input "images" N×3×8×8, output "logits" N×4, dynamic batch) as
    an ONNX file, one per test module: the model the Triton and repository tests serve."""
    from trtlab._toy import toy_classifier_onnx

    path = tmp_path_factory.mktemp("onnx") / "toy.onnx"
    path.write_bytes(toy_classifier_onnx())
    return path


@pytest.fixture
def language(monkeypatch):
    """trtlab's language for one test: English unless the test calls ``language("zh_CN")``, whatever the machine's
    locale says; English again afterwards."""
    from trtlab import i18n

    for variable in ("TRTLAB_LANG", *i18n.LOCALE_VARIABLES):
        monkeypatch.delenv(variable, raising=False)
    i18n.set_language(None)
    yield i18n.set_language
    i18n.set_language(None)
