"""The doctor reports every component with a status, gives a fix for anything not ✅, and never crashes."""

import subprocess
import sys

import trtlab as tl
from trtlab.doctor import FAIL, OK, WARN


def test_report_covers_every_component_and_gives_fixes():
    report = tl.doctor.report()
    components = {r.component for r in report.rows}
    assert {"OS", "Python", "CPU", "GPU", "NVIDIA driver", "PyTorch", "CuPy", "NVRTC", "TensorRT", "TensorRT-RTX",
            "ONNX", "ONNX Runtime", "ModelOpt", "Triton server", "Jupyter widgets"} <= components
    for row in report.rows:
        assert row.status in (OK, WARN, FAIL)
        assert row.status == OK or row.fix, f"{row.component} is {row.status} without a fix"
    html = report._repr_html_()
    assert "<table>" in html and "TensorRT-RTX" in html


def test_this_course_environment_is_complete():
    """The test environment is the course environment: nothing every lab needs may be missing."""
    report = tl.doctor.report()
    assert report.ok, str(report)
    assert report.row("NVRTC").status == OK  # kernels compile without a GPU
    assert report.row("TensorRT-RTX").status == OK  # engines build without a GPU


def test_capability_summary_names_every_lab_and_its_mode():
    caps = tl.env.capabilities()
    paths = caps.lab_paths()
    assert [p.lab.split()[0] for p in paths] == ["00", "01", "02", "03", "04", "05", "06"]
    assert all(p.mode in ("full", "CPU mode") and p.why for p in paths)
    if not caps.has_gpu:
        assert caps.engine_runtime is None
        assert dict((p.lab, p.mode) for p in paths)["03 engine"] == "CPU mode"


def test_command_line_doctor_runs():
    done = subprocess.run([sys.executable, "-m", "trtlab", "doctor"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TensorRT-RTX" in done.stdout and "Lab 03" in done.stdout


def test_unknown_command_prints_usage():
    done = subprocess.run([sys.executable, "-m", "trtlab", "nonsense"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


def test_tensorrt_row_flags_a_gpu_that_tensorrt_no_longer_supports():
    from packaging.version import Version

    from trtlab import doctor, env
    from trtlab._compat import TensorRTFlavour

    v100 = env.Gpu("Tesla V100", (7, 0), 16.0)
    caps = env.Capabilities(gpus=(v100,), torch_cuda=True, cupy_runs_kernels=True, nvrtc_compiles=True,
                            tensorrt=TensorRTFlavour("tensorrt", Version("11.4.0")), tensorrt_rtx=None,
                            onnxruntime_providers=(), triton_server=None)
    row = doctor._tensorrt_row(caps)
    assert row.status == WARN and "CC 7.0" in row.detail and "10.5 removed it" in row.detail, row
