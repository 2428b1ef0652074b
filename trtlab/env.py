"""What this machine can do, in the terms the labs care about: is there a GPU, can CuPy run kernels, which
TensorRT-family runtime is installed and can it *run* engines here or only build them.

``capabilities()`` is what every lab calls first to choose its path (GPU mode or CPU mode), and what the
doctor (:mod:`trtlab.doctor`) reports on.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from trtlab import _compat
from trtlab._compat import tensorrt_supports
from trtlab.errors import UnsupportedFeature
from trtlab.i18n import N_, _

__all__ = ["Capabilities", "EngineExecution", "Gpu", "LabPath", "MODES", "RTX_COMPUTE_CAPABILITIES", "RTX_SUPPORTED",
           "builder_flavour", "capabilities", "cupy_runs_kernels", "engine_execution", "nvrtc_compiles",
           "runtime_flavour", "tensorrt_supports", "triton_server_binary"]

#: GPUs TensorRT-RTX executes engines on (it builds for them anywhere, even without a GPU).
RTX_COMPUTE_CAPABILITIES = _compat.RTX_COMPUTE_CAPABILITIES

#: The same in words, as its documentation states it (TensorRT-RTX 1.5 support matrix; the 1.7 runtime's own refusal
#: lists "8.0 8.6 8.9 12.0 12.1", so A100's 8.0 runs although the matrix does not list it).
#: a lab's mode: values code compares, translated only where shown
MODES = (N_("full"), N_("CPU mode"))

RTX_SUPPORTED = N_("7.5, 8.6, 8.9, 12.0 and 12.1 (12.1 experimental; the runtime also accepts 8.0), no Hopper 9.0")


def _builders(tensorrt: _compat.TensorRTFlavour | None, tensorrt_rtx: _compat.TensorRTFlavour | None,
              has_gpu: bool) -> list[_compat.TensorRTFlavour]:
    """The one rule for building, preferred first: TensorRT where there is a GPU for it, and TensorRT-RTX (which
    builds ahead of time without a GPU)."""
    return [f for f in (tensorrt if has_gpu else None, tensorrt_rtx) if f is not None]


@dataclass(frozen=True)
class Gpu:
    name: str
    compute_capability: tuple[int, int]
    memory_gib: float

    @property
    def cc(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


@dataclass(frozen=True)
class LabPath:
    """How one lab runs on this machine: ``mode`` is "full" or "CPU mode", ``why`` says it in plain words."""

    lab: str
    mode: str
    why: str


@dataclass(frozen=True)
class Capabilities:
    gpus: tuple[Gpu, ...]
    torch_cuda: bool
    cupy_runs_kernels: bool
    nvrtc_compiles: bool
    tensorrt: _compat.TensorRTFlavour | None
    tensorrt_rtx: _compat.TensorRTFlavour | None
    onnxruntime_providers: tuple[str, ...]
    triton_server: Path | None
    notes: tuple[str, ...] = field(default=())

    @property
    def has_gpu(self) -> bool:
        return bool(self.gpus)

    @property
    def rtx_runs_here(self) -> bool:
        """TensorRT-RTX builds anywhere, but runs engines only on the GPUs of its support matrix."""
        return self.tensorrt_rtx is not None and any(
            g.compute_capability in RTX_COMPUTE_CAPABILITIES for g in self.gpus)

    @property
    def runtime(self) -> _compat.TensorRTFlavour | None:
        """The TensorRT-family runtime that executes engines here: TensorRT on a GPU, else TensorRT-RTX on a GPU of
        its support matrix, else None (then labs use ONNX Runtime)."""
        if self.tensorrt is not None and self.has_gpu:
            return self.tensorrt
        return self.tensorrt_rtx if self.rtx_runs_here else None

    @property
    def builders(self) -> list[_compat.TensorRTFlavour]:
        """Every TensorRT-family builder that works here, preferred first (TensorRT needs a GPU; TensorRT-RTX
        builds anywhere)."""
        return _builders(self.tensorrt, self.tensorrt_rtx, self.has_gpu)

    @property
    def builder(self) -> _compat.TensorRTFlavour | None:
        """The TensorRT-family builder to use here: the first of :attr:`builders`."""
        return next(iter(self.builders), None)

    @property
    def engine_runtime(self) -> str | None:
        """Which TensorRT-family runtime can execute engines here, in words (None: none)."""
        return self.runtime.label if self.runtime else None

    @property
    def engine_builder(self) -> str | None:
        """Which TensorRT-family builder works here, in words (None: none)."""
        return self.builder.label if self.builder else None

    def lab_paths(self) -> list[LabPath]:
        """Which labs run fully here and which run in CPU mode, and why (``mode`` stays "full"/"CPU mode", a value
        code compares; ``why`` is in the language in use, see :mod:`trtlab.i18n`)."""
        gpu = self.gpus[0].name if self.gpus else None
        runtime, builder = self.engine_runtime, self.engine_builder
        no_engine = (_("no TensorRT runtime can execute engines here")
                     + (_(" (TensorRT-RTX supports {supported})").format(supported=_(RTX_SUPPORTED))
                        if gpu and self.tensorrt_rtx else ""))
        paths = [LabPath("00 setup", "full", _("needs nothing but Python"))]
        paths.append(LabPath("01 train", "full", _("trains on the GPU ({gpu})").format(gpu=gpu)) if self.torch_cuda
                     else LabPath("01 train", "CPU mode",
                                  _("trains on the CPU (about 3 minutes): PyTorch sees no GPU")))
        paths.append(LabPath("02 export", "full", _("export, ONNX Runtime parity and the {builder} build all run")
                             .format(builder=builder))
                     if builder else LabPath("02 export", "CPU mode", _("export and parity run; no TensorRT-family "
                                                                        "builder is installed for the acceptance "
                                                                        "check")))
        build = (_("the {builder} build is real").format(builder=builder) if builder
                 else _("no TensorRT-family builder is installed (make setup installs TensorRT-RTX)"))
        paths.append(LabPath("03 engine", "full", _("builds and runs engines with {runtime}").format(runtime=runtime))
                     if runtime
                     else LabPath("03 engine", "CPU mode", _("{build}; {no_engine}, {consequence}").format(
                         build=build, no_engine=no_engine,
                         consequence=_("so engine runs use a GPU stand-in computed by PyTorch (announced), and "
                                       "benchmarks run PyTorch on the GPU and ONNX Runtime") if self.torch_cuda
                         else _("so inference and benchmarks run on ONNX Runtime and PyTorch"))))
        paths.append(LabPath("04 kernels", "full", _("CuPy runs the CUDA kernels on {gpu}").format(gpu=gpu))
                     if self.cupy_runs_kernels
                     else LabPath("04 kernels", "CPU mode", _("kernels are compiled with NVRTC and checked against the "
                                  "NumPy references; running them needs an NVIDIA GPU with CuPy")
                                  + ("" if self.nvrtc_compiles else _(" (and NVRTC is missing too)"))))
        plugin_ok = self.tensorrt is not None and self.has_gpu and _compat.supports_quick_plugins(self.tensorrt)
        paths.append(LabPath("05 plugin", "full", _("the tensorrt.plugin path runs on the GPU")) if plugin_ok
                     else LabPath("05 plugin", "CPU mode", _("the custom op runs in ONNX Runtime")
                                  + (_(" and the parser's rejection is real") if builder else
                                     _("; the parser demo needs a TensorRT-family builder (none installed)"))
                                  + _("; the TensorRT plugin needs TensorRT >= 10.6 and a GPU")))
        paths.append(LabPath("06 triton", "full" if self.triton_server else "CPU mode",
                             _("the bundled Triton server (Python backend, CPU) runs here") if self.triton_server
                             else _("no Triton server binary: install nvidia-pytriton or use the NGC container")))
        return paths

    def summary(self) -> str:
        """Plain words, one line per lab (in the language in use)."""
        where = (", ".join(_("{name} (CC {cc}, {memory:.0f} GiB)").format(name=g.name, cc=g.cc, memory=g.memory_gib)
                           for g in self.gpus) if self.gpus else _("no NVIDIA GPU"))
        lines = [_("This machine: {where}; engine builder: {builder}; engine runtime: {runtime}.").format(
            where=where, builder=self.engine_builder or _("none"), runtime=self.engine_runtime or _("none"))]
        lines += [f"  Lab {p.lab:<11} {_(p.mode):<9} {p.why}" for p in self.lab_paths()]
        return "\n".join(lines + [_("  note: {note}").format(note=n) for n in self.notes])

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(p.lab)}</td><td>{'✅' if p.mode == 'full' else '⚠️'} "
                       f"{html.escape(_(p.mode))}</td><td style='text-align:left'>{html.escape(p.why)}</td></tr>"
                       for p in self.lab_paths())
        head = html.escape(self.summary().splitlines()[0])
        lab, mode, why = _("lab"), _("mode"), _("why")
        return f"<p>{head}</p><table><tr><th>{lab}</th><th>{mode}</th><th>{why}</th></tr>{rows}</table>"


@dataclass(frozen=True)
class EngineExecution:
    """Who executes Lab 03's engines here. ``path``: "tensorrt" (a real TensorRT-family runtime), "gpu-standin" (a
    GPU, but no runtime that can run the plan: a stand-in keeps TensorRT's execution API and PyTorch computes the
    model) or "cpu" (no GPU for PyTorch: a simulated engine for the exercise, ONNX Runtime and PyTorch for the
    rest). ``why`` says it in plain words."""

    path: str
    runtime: _compat.TensorRTFlavour | None
    why: str

    def __str__(self) -> str:
        return self.why


def runtime_flavour() -> _compat.TensorRTFlavour | None:
    """The TensorRT-family runtime that can execute engines on this machine, or None (:attr:`Capabilities.runtime`)."""
    return capabilities().runtime


def builder_flavour(*, has_gpu: bool | None = None) -> _compat.TensorRTFlavour:
    """The TensorRT-family builder to use here (TensorRT on a GPU machine, else TensorRT-RTX, which needs no GPU);
    raises :class:`UnsupportedFeature` when neither is installed. ``has_gpu`` overrides the probe (``False``: the
    CPU builder even on a GPU machine; no GPU probe is made then)."""
    if has_gpu is None:
        found = capabilities().builder
    else:
        installed = _compat.flavours()
        tensorrt = next((f for f in installed if not f.is_rtx), None)
        found = next(iter(_builders(tensorrt, next((f for f in installed if f.is_rtx), None), has_gpu)), None)
    if found is None:
        labels = ", ".join(f.label for f in _compat.flavours()) or "nothing"
        raise UnsupportedFeature(f"building an engine needs a TensorRT-family builder; found {labels} usable here "
                                 "(tensorrt needs a GPU). Install the CPU-capable builder: pip install tensorrt-rtx-cu13")
    return found


def engine_execution() -> EngineExecution:
    """Which of Lab 03's three paths runs here, and why (the notebook announces it before running anything)."""
    caps = capabilities()
    runtime = runtime_flavour()
    if runtime is not None:
        return EngineExecution("tensorrt", runtime, _("Engines run here with {runtime} on {gpu}.").format(
            runtime=runtime.label, gpu=caps.gpus[0].name))
    if caps.torch_cuda:
        gpu = caps.gpus[0]
        if caps.tensorrt is not None:
            reason = _("{runtime} does not support compute capability {cc}").format(runtime=caps.tensorrt.label,
                                                                                    cc=gpu.cc)
        elif caps.tensorrt_rtx is not None:
            reason = _("TensorRT is not installed, and {runtime} cannot run plans on compute capability {cc} (it "
                       "supports {supported})").format(runtime=caps.tensorrt_rtx.label, cc=gpu.cc,
                                                       supported=_(RTX_SUPPORTED))
        else:
            reason = _("no TensorRT-family runtime is installed")
        return EngineExecution("gpu-standin", None, _(
            "GPU {gpu} (CC {cc}), but {reason}. The builds are real; the engine-run cells use a GPU "
            "STAND-IN for the engine: TensorRT's execution API (set_input_shape, set_tensor_address, "
            "execute_async_v3 on your stream) with PyTorch computing the model. It checks your inference loop on a "
            "real GPU; its timings are PyTorch's, not TensorRT's.").format(gpu=gpu.name, cc=gpu.cc, reason=reason))
    return EngineExecution("cpu", None, _(
        "No GPU that a TensorRT runtime can use: the builds below are real (TensorRT-RTX compiles ahead of time on "
        "the CPU), but inference and benchmarks run on ONNX Runtime and PyTorch on the CPU."))


def _gpus_from_torch() -> tuple[tuple[Gpu, ...], bool, list[str]]:
    notes: list[str] = []
    try:
        import torch
    except Exception as err:  # noqa: BLE001 - an unusable torch is reported, not raised
        return (), False, [f"PyTorch does not import: {err}"]
    if not torch.cuda.is_available():
        return (), False, notes
    gpus = []
    for index in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(index)
        gpus.append(Gpu(p.name, (p.major, p.minor), p.total_memory / 2**30))
    return tuple(gpus), True, notes


def _gpus_from_nvidia_smi() -> tuple[Gpu, ...]:
    if not shutil.which("nvidia-smi"):
        return ()
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,compute_cap,memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return ()
    gpus = []
    for line in out.strip().splitlines():
        name, cc, mem = (part.strip() for part in line.split(","))
        major, minor = cc.split(".")
        gpus.append(Gpu(name, (int(major), int(minor)), float(mem) / 1024))
    return tuple(gpus)


def cupy_runs_kernels() -> bool:
    """True when CuPy is installed and can launch a kernel on a GPU (not merely import)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy

        return int((cupy.arange(3) + 1).sum()) == 6
    except Exception:  # noqa: BLE001 - cudaErrorInsufficientDriver and friends mean "no"
        return False


def nvrtc_compiles() -> bool:
    """True when NVRTC (through cuda-bindings) compiles a trivial kernel; it needs no GPU."""
    try:
        from cuda.bindings import nvrtc

        err, prog = nvrtc.nvrtcCreateProgram(b"extern \"C\" __global__ void k(float* x){x[0]=1.f;}", b"k.cu", 0, [], [])
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            return False
        (result,) = nvrtc.nvrtcCompileProgram(prog, 0, [])
        nvrtc.nvrtcDestroyProgram(prog)
        return result == nvrtc.nvrtcResult.NVRTC_SUCCESS
    except Exception:  # noqa: BLE001 - missing libnvrtc or bindings mean "no"
        return False


def triton_server_binary() -> Path | None:
    """The ``tritonserver`` binary bundled in the nvidia-pytriton wheel, or one on PATH."""
    spec = importlib.util.find_spec("pytriton")
    if spec and spec.submodule_search_locations:
        binary = Path(list(spec.submodule_search_locations)[0]) / "tritonserver" / "bin" / "tritonserver"
        if binary.exists():
            return binary
    found = shutil.which("tritonserver")
    return Path(found) if found else None


def _onnxruntime_providers() -> tuple[str, ...]:
    try:
        import onnxruntime

        return tuple(onnxruntime.get_available_providers())
    except Exception:  # noqa: BLE001
        return ()


@functools.cache
def capabilities() -> Capabilities:
    """Probe this machine once per process (a few seconds: it imports torch and tries CuPy and NVRTC)."""
    gpus, torch_cuda, notes = _gpus_from_torch()
    if not gpus:
        gpus = _gpus_from_nvidia_smi()
        if gpus:
            notes.append("nvidia-smi sees a GPU but PyTorch does not: a CPU-only torch build is installed")
    trt, rtx = _compat.tensorrt(), _compat.tensorrt_rtx()
    return Capabilities(
        gpus=gpus,
        torch_cuda=torch_cuda,
        cupy_runs_kernels=cupy_runs_kernels() if gpus else False,
        nvrtc_compiles=nvrtc_compiles(),
        tensorrt=next((f for f in _compat.flavours() if not f.is_rtx), None) if trt else None,
        tensorrt_rtx=next((f for f in _compat.flavours() if f.is_rtx), None) if rtx else None,
        onnxruntime_providers=_onnxruntime_providers(),
        triton_server=triton_server_binary(),
        notes=tuple(notes),
    )
