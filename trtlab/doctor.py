"""The environment doctor: one row per thing the course relies on, each ✅ / ⚠️ / ❌ with a one-line fix.

    python -m trtlab doctor          # in a terminal
    tl.doctor.report()               # in a notebook: an HTML table (Lab 00)

A ⚠️ means "the course still runs, in CPU mode for the labs concerned"; a ❌ means something labs need is missing
or broken (for example no TensorRT-family builder at all: Labs 02, 03 and 05 build engines).
"""

from __future__ import annotations

import html
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from trtlab import _compat
from trtlab.env import RTX_SUPPORTED, Capabilities, capabilities, tensorrt_supports

__all__ = ["Report", "Row", "main", "report"]

OK, WARN, FAIL = "✅", "⚠️", "❌"


@dataclass(frozen=True)
class Row:
    component: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Report:
    rows: tuple[Row, ...]
    caps: Capabilities

    @property
    def ok(self) -> bool:
        """No ❌: everything the course needs everywhere is there."""
        return all(r.status != FAIL for r in self.rows)

    def row(self, component: str) -> Row:
        return next(r for r in self.rows if r.component == component)

    def __str__(self) -> str:
        width = max(len(r.component) for r in self.rows)
        lines = []
        for r in self.rows:
            lines.append(f"{r.status} {r.component:<{width}}  {r.detail}")
            if r.fix:
                lines.append(f"   {'':<{width}}  → {r.fix}")
        return "\n".join(lines) + "\n\n" + self.caps.summary()

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{r.status}</td><td style='text-align:left'><b>{html.escape(r.component)}</b></td>"
            f"<td style='text-align:left'>{html.escape(r.detail)}</td>"
            f"<td style='text-align:left'>{html.escape(r.fix)}</td></tr>" for r in self.rows)
        return (f"<table><tr><th></th><th>component</th><th>found</th><th>fix</th></tr>{cells}</table>"
                + self.caps._repr_html_())


def _version_row(component: str, distribution: str, fix: str, *, needed: bool = True) -> Row:
    version = _compat.package_version(distribution)
    if version:
        return Row(component, OK, version)
    return Row(component, FAIL if needed else WARN, "not installed", fix)


def _os_row() -> Row:
    return Row("OS", OK, f"{platform.system()} {platform.release()} ({platform.machine()})")


def _python_row() -> Row:
    ok = sys.version_info >= (3, 10)
    return Row("Python", OK if ok else FAIL, f"{platform.python_version()} at {sys.executable}",
               "" if ok else "the course needs Python >= 3.10: make setup creates a fresh environment")


def _cpu_row() -> Row:
    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return Row("CPU", OK, f"{name}, {os.cpu_count()} logical cores")


def _gpu_row(caps: Capabilities) -> Row:
    if not caps.gpus:
        return Row("GPU", WARN, "no NVIDIA GPU visible", "fine for CPU mode; for GPU mode use a machine with an "
                   "NVIDIA GPU and its driver (check with nvidia-smi)")
    return Row("GPU", OK, "; ".join(f"{g.name}, compute capability {g.cc}, {g.memory_gib:.0f} GiB" for g in caps.gpus))


def _driver_row(caps: Capabilities) -> Row:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        return Row("NVIDIA driver", OK, out.splitlines()[0])
    except (OSError, subprocess.SubprocessError, IndexError):
        return Row("NVIDIA driver", WARN if not caps.gpus else FAIL, "nvidia-smi not found",
                   "install the NVIDIA driver (needed only for GPU mode)")


def _torch_row(caps: Capabilities) -> Row:
    version = _compat.package_version("torch")
    if version is None:
        return Row("PyTorch", FAIL, "not installed", "make setup (installs the pinned torch)")
    try:
        import torch
    except Exception as err:  # noqa: BLE001
        return Row("PyTorch", FAIL, f"{version} does not import: {err}", "reinstall: make setup")
    cuda = torch.version.cuda
    if caps.torch_cuda:
        return Row("PyTorch", OK, f"{version}, CUDA runtime {cuda}, sees {torch.cuda.device_count()} GPU(s)")
    if caps.gpus:
        return Row("PyTorch", WARN, f"{version} without CUDA (build: {cuda or 'CPU'})",
                   "install a CUDA build of torch to train on the GPU: pip install torch==<pinned> (Linux x86 "
                   "wheels on PyPI are CUDA builds)")
    return Row("PyTorch", OK, f"{version} ({'CUDA ' + cuda if cuda else 'CPU build'}; no GPU here)")


def _torchvision_row() -> Row:
    version = _compat.package_version("torchvision")
    if version is None:
        return Row("torchvision", OK, "not installed (optional: trtlab has its own ResNet18)")
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return Row("torchvision", WARN, f"{version} installed but does not import ({type(err).__name__})",
                   "a CUDA torchvision beside a CPU torch; trtlab works without it. Remove it "
                   "(pip uninstall torchvision) or install the matching pair")
    return Row("torchvision", OK, f"{version} (used to cross-check trtlab's ResNet18)")


def _cupy_row(caps: Capabilities) -> Row:
    version = _compat.package_version("cupy-cuda13x") or _compat.package_version("cupy-cuda12x")
    if version is None:
        return Row("CuPy", WARN, "not installed", "GPU mode of Lab 04/05: pip install -e '.[cu13]' (CUDA 13 driver, "
                   "R580+; '.[cu12]' installs CuPy for a CUDA 12 driver, where Lab 05's plugin PTX cannot load)")
    if not caps.cupy_runs_kernels:
        return Row("CuPy", WARN, f"{version} imports but cannot run kernels (no usable GPU/driver)",
                   "fine for CPU mode: kernels are compiled with NVRTC instead")
    import cupy

    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return Row("CuPy", OK, f"{version}, CUDA runtime {runtime // 1000}.{runtime % 1000 // 10}, runs kernels")


def _nvrtc_row(caps: Capabilities) -> Row:
    if caps.nvrtc_compiles:
        from cuda.bindings import nvrtc

        _, major, minor = nvrtc.nvrtcVersion()
        return Row("NVRTC", OK, f"{major}.{minor} compiles CUDA C (no GPU needed)")
    return Row("NVRTC", FAIL, "cannot compile CUDA C", "make setup installs cuda-bindings and nvidia-cuda-nvrtc")


def _tensorrt_row(caps: Capabilities) -> Row:
    trt = caps.tensorrt
    if trt is None:
        fix = ("pip install -e '.[tensorrt]' (TensorRT 11 from NVIDIA's index)" if caps.gpus
               else "needs an NVIDIA GPU; CPU mode builds with TensorRT-RTX instead")
        return Row("TensorRT", WARN, "not installed", fix)
    api = ("11.x API: strongly typed only, no FP16/INT8 builder flags or calibrators" if trt.generation == "11.x"
           else f"{trt.generation} API (Jetson / older servers): strongly typed networks recommended")
    if not caps.gpus:
        return Row("TensorRT", WARN, f"{trt.version} ({api}) but no GPU to run engines on", "use a GPU machine")
    old = [g for g in caps.gpus if not tensorrt_supports(trt.version, g.compute_capability)]
    if old:
        return Row("TensorRT", WARN, f"{trt.version} does not support {old[0].name} (CC {old[0].cc}): TensorRT 10.5 "
                   "and later need compute capability 7.5+ (10.0 deprecated Volta, 10.5 removed it)",
                   "use TensorRT 10.4 or older on Volta, or a Turing-or-newer GPU")
    return Row("TensorRT", OK, f"{trt.version} — {api}")


def _rtx_row(caps: Capabilities) -> Row:
    rtx = caps.tensorrt_rtx
    if rtx is None and caps.tensorrt is not None and caps.gpus:
        return Row("TensorRT-RTX", OK, "not installed (not needed: TensorRT builds the engines here)")
    if rtx is None:
        return Row("TensorRT-RTX", FAIL, "not installed: nothing here can build engines (Labs 02, 03, 05)",
                   "make setup (tensorrt-rtx-cu13 builds engines on a CPU)")
    if caps.rtx_runs_here:
        return Row("TensorRT-RTX", OK, f"{rtx.version}: builds and runs engines on this GPU")
    why = f"this GPU is not supported (supported: {RTX_SUPPORTED})" if caps.gpus else "no GPU"
    return Row("TensorRT-RTX", OK, f"{rtx.version}: builds engines ahead of time on the CPU; cannot run them ({why})")


def _onnxruntime_row(caps: Capabilities) -> Row:
    version = _compat.package_version("onnxruntime") or _compat.package_version("onnxruntime-gpu")
    if version is None:
        return Row("ONNX Runtime", FAIL, "not installed", "make setup")
    return Row("ONNX Runtime", OK, f"{version}, providers: {', '.join(caps.onnxruntime_providers)}")


def _triton_row(caps: Capabilities) -> Row:
    if caps.triton_server:
        return Row("Triton server", OK, f"{caps.triton_server} (CPU build, Python backend)")
    return Row("Triton server", WARN, "no tritonserver binary", "make setup installs nvidia-pytriton (bundles "
               "Triton 2.51); on GPU servers use the NGC tritonserver container")


def _widgets_row() -> Row:
    widgets, lab = _compat.package_version("ipywidgets"), _compat.package_version("jupyterlab_widgets")
    if widgets and lab:
        return Row("Jupyter widgets", OK, f"ipywidgets {widgets}, jupyterlab_widgets {lab}")
    return Row("Jupyter widgets", WARN, "ipywidgets or jupyterlab_widgets missing",
               "make setup; without them check and hint buttons fall back to plain text")


def report() -> Report:
    """Probe the machine and return the report (display it in a notebook, or print it)."""
    caps = capabilities()
    probes: list[Callable[[], Row]] = [
        _os_row, _python_row, _cpu_row,
        lambda: _gpu_row(caps), lambda: _driver_row(caps), lambda: _torch_row(caps), _torchvision_row,
        lambda: _cupy_row(caps), lambda: _nvrtc_row(caps),
        lambda: _tensorrt_row(caps), lambda: _rtx_row(caps),
        lambda: _version_row("ONNX", "onnx", "make setup"), lambda: _onnxruntime_row(caps),
        lambda: _version_row("ModelOpt", "nvidia-modelopt", "make setup (nvidia-modelopt, without extras)"),
        lambda: _version_row("Polygraphy", "polygraphy", "make setup"),
        lambda: _triton_row(caps), _widgets_row,
    ]
    rows = []
    for probe in probes:
        try:
            rows.append(probe())
        except Exception as err:  # noqa: BLE001 - the doctor reports; it never crashes
            rows.append(Row(getattr(probe, "__name__", "probe"), FAIL, f"probe failed: {err}", "report this"))
    return Report(tuple(rows), caps)


def main() -> int:
    result = report()
    print(result)
    return 0 if result.ok else 1
