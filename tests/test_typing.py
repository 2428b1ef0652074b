"""Static check of the TensorRT code paths: mypy against tensorrt-stubs (10.13), plus a test that it can fail.

TensorRT cannot be installed on the CI machine, so mypy is what checks that engine.py calls the TensorRT API with
the right names and types. The companion runtime check (every attribute trtlab uses exists in tensorrt_rtx) is in
tests/test_compat.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = Path(__file__).parent / "typing" / "mypy-tensorrt.ini"
CHECKED = ["trtlab/_compat.py", "trtlab/engine.py", "trtlab/runtime.py", "trtlab/precision.py", "trtlab/bench.py",
           "trtlab/standin/cpu.py", "trtlab/standin/gpu.py", "trtlab/check/lab03.py"]


STUBS_HELP = ("tensorrt-stubs are not installed where this test looks: pip install --no-deps --target build/tensorrt-stubs "
              "'tensorrt-stubs==10.13.0.35.1' (or set TRTLAB_TENSORRT_STUBS to such a folder). Not into the "
              "environment itself: its .pyi-only `tensorrt` folder would make `import tensorrt` succeed without TensorRT")


def _stub_dir(tmp: Path) -> Path:
    source = Path(os.environ.get("TRTLAB_TENSORRT_STUBS") or ROOT / "build" / "tensorrt-stubs")
    if not (source / "tensorrt_bindings" / "tensorrt.pyi").exists():
        pytest.fail(STUBS_HELP)
    out = tmp / "stubs"
    for pyi in [*source.glob("tensorrt/*.pyi"), *source.glob("tensorrt_bindings/*.pyi")]:
        dst = out / pyi.relative_to(source)
        dst.parent.mkdir(parents=True, exist_ok=True)
        text = re.sub(r"([(, ])in: ", r"\1in_: ", pyi.read_text())  # a parameter named `in` is a syntax error
        text = text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = ...)")
        dst.write_text(text)
    return out


def _mypy(tmp: Path, files: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "MYPYPATH": os.pathsep.join([str(_stub_dir(tmp)), str(ROOT)])}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--no-incremental",
                           "--cache-dir", str(tmp / "cache"), *files], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)


pytestmark = pytest.mark.slow


def test_trtlab_tensorrt_paths_type_check(tmp_path):
    done = _mypy(tmp_path, CHECKED)
    ours = [line for line in done.stdout.splitlines() if line.startswith("trtlab/") and ": error:" in line]
    assert not ours, "mypy found errors in trtlab's TensorRT code paths:\n" + "\n".join(ours)


def test_mypy_catches_a_removed_tensorrt_api(tmp_path):
    """Guard against a silently vacuous check (stubs not found → every TensorRT name is Any)."""
    bad = tmp_path / "typing_probe.py"
    src = (ROOT / "trtlab" / "engine.py").read_text()
    src = src.replace("config.builder_optimization_level = optimization_level",
                      "config.max_workspace_size = 1 << 30  # removed in TensorRT 10")
    try:
        bad.write_text(src)
        done = _mypy(tmp_path, [str(bad)])
    finally:
        bad.unlink(missing_ok=True)
    assert re.search(r'"IBuilderConfig" has no attribute "max_workspace_size"', done.stdout), done.stdout[-2000:]
