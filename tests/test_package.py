"""The package's public surface: every stage named in trtlab.STAGES exists, and importing trtlab is cheap."""

import importlib
import subprocess
import sys

import trtlab


def test_every_stage_module_imports():
    for stage in trtlab.STAGES:
        module = importlib.import_module(f"trtlab.{stage}")
        assert module.__doc__, f"trtlab.{stage} needs a docstring saying what the stage is for"


def test_exported_names_resolve():
    for name in trtlab.__all__:
        assert getattr(trtlab, name) is not None


def test_importing_trtlab_imports_no_heavy_dependency():
    code = ("import sys, trtlab, trtlab.check, trtlab.env, trtlab.errors; "
            "print(sorted(m for m in ('torch', 'tensorrt', 'tensorrt_rtx', 'cupy', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
