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
from trtlab.i18n import N_, _

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
                lines.append(f"   {'':<{width}}  → {r.fix}")  # detail and fix are already in the language in use
        return "\n".join(lines) + "\n\n" + self.caps.summary()

    def _repr_html_(self) -> str:
        cells = "".join(
            f"<tr><td>{r.status}</td><td style='text-align:left'><b>{html.escape(r.component)}</b></td>"
            f"<td style='text-align:left'>{html.escape(r.detail)}</td>"
            f"<td style='text-align:left'>{html.escape(r.fix)}</td></tr>" for r in self.rows)
        component, found, fix = _("component"), _("found"), _("fix")
        return (f"<table><tr><th></th><th>{component}</th><th>{found}</th><th>{fix}</th></tr>{cells}</table>"
                + self.caps._repr_html_())


def _version_row(component: str, distribution: str, fix: str, *, needed: bool = True) -> Row:
    version = _compat.package_version(distribution)
    if version:
        return Row(component, OK, version)
    return Row(component, FAIL if needed else WARN, _("not installed"), _(fix))


def _os_row() -> Row:
    return Row("OS", OK, f"{platform.system()} {platform.release()} ({platform.machine()})")


def _python_row() -> Row:
    ok = sys.version_info >= (3, 10)
    return Row("Python", OK if ok else FAIL,
               _("{version} at {path}").format(version=platform.python_version(), path=sys.executable),
               "" if ok else _("the course needs Python >= 3.10: make setup creates a fresh environment"))


def _cpu_row() -> Row:
    name = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            name = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return Row("CPU", OK, _("{name}, {cores} logical cores").format(name=name, cores=os.cpu_count()))


def _gpu_row(caps: Capabilities) -> Row:
    if not caps.gpus:
        return Row("GPU", WARN, _("no NVIDIA GPU visible"), _("fine for CPU mode; for GPU mode use a machine with an "
                                                               "NVIDIA GPU and its driver (check with nvidia-smi)"))
    return Row("GPU", OK, "; ".join(_("{name}, compute capability {cc}, {memory:.0f} GiB").format(
        name=g.name, cc=g.cc, memory=g.memory_gib) for g in caps.gpus))


def _driver_row(caps: Capabilities) -> Row:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
        return Row("NVIDIA driver", OK, out.splitlines()[0])
    except (OSError, subprocess.SubprocessError, IndexError):
        return Row("NVIDIA driver", WARN if not caps.gpus else FAIL, _("nvidia-smi not found"),
                   _("install the NVIDIA driver (needed only for GPU mode)"))


def _torch_row(caps: Capabilities) -> Row:
    version = _compat.package_version("torch")
    if version is None:
        return Row("PyTorch", FAIL, _("not installed"), _("make setup (installs the pinned torch)"))
    try:
        import torch
    except Exception as err:  # noqa: BLE001
        return Row("PyTorch", FAIL, _("{version} does not import: {error}").format(version=version, error=err),
                   _("reinstall: make setup"))
    cuda = torch.version.cuda
    if caps.torch_cuda:
        return Row("PyTorch", OK, _("{version}, CUDA runtime {cuda}, sees {count} GPU(s)").format(
            version=version, cuda=cuda, count=torch.cuda.device_count()))
    if caps.gpus:
        return Row("PyTorch", WARN, _("{version} without CUDA (build: {build})").format(version=version,
                                                                                        build=cuda or "CPU"),
                   _("install a CUDA build of torch to train on the GPU: pip install torch==<pinned> (Linux x86 "
                     "wheels on PyPI are CUDA builds)"))
    return Row("PyTorch", OK, _("{version} ({build}; no GPU here)").format(
        version=version, build="CUDA " + cuda if cuda else _("CPU build")))


def _torchvision_row() -> Row:
    version = _compat.package_version("torchvision")
    if version is None:
        return Row("torchvision", OK, _("not installed (optional: trtlab has its own ResNet18)"))
    try:
        import torchvision  # noqa: F401
    except Exception as err:  # noqa: BLE001
        return Row("torchvision", WARN, _("{version} installed but does not import ({error})").format(
            version=version, error=type(err).__name__),
                   _("a CUDA torchvision beside a CPU torch; trtlab works without it. Remove it "
                     "(pip uninstall torchvision) or install the matching pair"))
    return Row("torchvision", OK, _("{version} (used to cross-check trtlab's ResNet18)").format(version=version))


def _cupy_row(caps: Capabilities) -> Row:
    version = _compat.package_version("cupy-cuda13x") or _compat.package_version("cupy-cuda12x")
    if version is None:
        return Row("CuPy", WARN, _("not installed"), _(
            "GPU mode of Lab 04/05: pip install -e '.[cu13]' (CUDA 13 driver, R580+; '.[cu12]' installs CuPy for a "
            "CUDA 12 driver, where Lab 05's plugin PTX cannot load)"))
    if not caps.cupy_runs_kernels:
        return Row("CuPy", WARN, _("{version} imports but cannot run kernels (no usable GPU/driver)").format(
            version=version), _("fine for CPU mode: kernels are compiled with NVRTC instead"))
    import cupy

    runtime = cupy.cuda.runtime.runtimeGetVersion()
    return Row("CuPy", OK, _("{version}, CUDA runtime {cuda}, runs kernels").format(
        version=version, cuda=f"{runtime // 1000}.{runtime % 1000 // 10}"))


def _nvrtc_row(caps: Capabilities) -> Row:
    if caps.nvrtc_compiles:
        from cuda.bindings import nvrtc

        _status, major, minor = nvrtc.nvrtcVersion()
        return Row("NVRTC", OK, _("{version} compiles CUDA C (no GPU needed)").format(version=f"{major}.{minor}"))
    return Row("NVRTC", FAIL, _("cannot compile CUDA C"), _("make setup installs cuda-bindings and nvidia-cuda-nvrtc"))


def _tensorrt_row(caps: Capabilities) -> Row:
    trt = caps.tensorrt
    if trt is None:
        fix = (_("pip install -e '.[tensorrt]' (TensorRT 11 from NVIDIA's index)") if caps.gpus
               else _("needs an NVIDIA GPU; CPU mode builds with TensorRT-RTX instead"))
        return Row("TensorRT", WARN, _("not installed"), fix)
    api = (_("11.x API: strongly typed only, no FP16/INT8 builder flags or calibrators") if trt.generation == "11.x"
           else _("{generation} API (Jetson / older servers): strongly typed networks recommended").format(
               generation=trt.generation))
    if not caps.gpus:
        return Row("TensorRT", WARN, _("{version} ({api}) but no GPU to run engines on").format(
            version=trt.version, api=api), _("use a GPU machine"))
    old = [g for g in caps.gpus if not tensorrt_supports(trt.version, g.compute_capability)]
    if old:
        return Row("TensorRT", WARN, _("{version} does not support {gpu} (CC {cc}): TensorRT 10.5 and later need "
                                       "compute capability 7.5+ (10.0 deprecated Volta, 10.5 removed it)").format(
                                           version=trt.version, gpu=old[0].name, cc=old[0].cc),
                   _("use TensorRT 10.4 or older on Volta, or a Turing-or-newer GPU"))
    return Row("TensorRT", OK, f"{trt.version} — {api}")


def _rtx_row(caps: Capabilities) -> Row:
    rtx = caps.tensorrt_rtx
    if rtx is None and caps.tensorrt is not None and caps.gpus:
        return Row("TensorRT-RTX", OK, _("not installed (not needed: TensorRT builds the engines here)"))
    if rtx is None:
        return Row("TensorRT-RTX", FAIL, _("not installed: nothing here can build engines (Labs 02, 03, 05)"),
                   _("make setup (tensorrt-rtx-cu13 builds engines on a CPU)"))
    if caps.rtx_runs_here:
        return Row("TensorRT-RTX", OK, _("{version}: builds and runs engines on this GPU").format(version=rtx.version))
    why = (_("this GPU is not supported (supported: {supported})").format(supported=_(RTX_SUPPORTED)) if caps.gpus
           else _("no GPU"))
    return Row("TensorRT-RTX", OK, _("{version}: builds engines ahead of time on the CPU; cannot run them ({why})")
               .format(version=rtx.version, why=why))


def _onnxruntime_row(caps: Capabilities) -> Row:
    version = _compat.package_version("onnxruntime") or _compat.package_version("onnxruntime-gpu")
    if version is None:
        return Row("ONNX Runtime", FAIL, _("not installed"), "make setup")
    return Row("ONNX Runtime", OK, _("{version}, providers: {providers}").format(
        version=version, providers=", ".join(caps.onnxruntime_providers)))


def _triton_row(caps: Capabilities) -> Row:
    if caps.triton_server:
        return Row("Triton server", OK, _("{path} (CPU build, Python backend)").format(path=caps.triton_server))
    return Row("Triton server", WARN, _("no tritonserver binary"), _("make setup installs nvidia-pytriton (bundles "
               "Triton 2.51); on GPU servers use the NGC tritonserver container"))


def _widgets_row() -> Row:
    widgets, lab = _compat.package_version("ipywidgets"), _compat.package_version("jupyterlab_widgets")
    if widgets and lab:
        return Row("Jupyter widgets", OK, f"ipywidgets {widgets}, jupyterlab_widgets {lab}")
    return Row("Jupyter widgets", WARN, _("ipywidgets or jupyterlab_widgets missing"),
               _("make setup; without them check and hint buttons fall back to plain text"))


def report() -> Report:
    """Probe the machine and return the report (display it in a notebook, or print it)."""
    caps = capabilities()
    probes: list[Callable[[], Row]] = [
        _os_row, _python_row, _cpu_row,
        lambda: _gpu_row(caps), lambda: _driver_row(caps), lambda: _torch_row(caps), _torchvision_row,
        lambda: _cupy_row(caps), lambda: _nvrtc_row(caps),
        lambda: _tensorrt_row(caps), lambda: _rtx_row(caps),
        lambda: _version_row("ONNX", "onnx", "make setup"), lambda: _onnxruntime_row(caps),
        lambda: _version_row("ModelOpt", "nvidia-modelopt", N_("make setup (nvidia-modelopt, without extras)")),
        lambda: _version_row("Polygraphy", "polygraphy", "make setup"),
        lambda: _triton_row(caps), _widgets_row,
    ]
    rows = []
    for probe in probes:
        try:
            rows.append(probe())
        except Exception as err:  # noqa: BLE001 - the doctor reports; it never crashes
            rows.append(Row(getattr(probe, "__name__", "probe"), FAIL, _("probe failed: {error}").format(error=err),
                            _("report this")))
    return Report(tuple(rows), caps)


def main() -> int:
    result = report()
    print(result)
    return 0 if result.ok else 1
