"""The Lab 04 kernel sources and their compilers: NVRTC (no GPU needed: syntax and type errors with line numbers in
CPU-only CI) and CuPy's ``RawModule`` (cached per source text and options) for the launches.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from trtlab.device import require_gpu
from trtlab.errors import KernelCompileError, UnsupportedFeature
from trtlab.i18n import _
from trtlab.kernels.launch import PIXELS_PER_THREAD

__all__ = ["CompileResult", "KERNEL_DIR", "KernelCompileError", "SOURCES", "TAPS_INCLUDE", "clean_exercise_source",
           "compile_all", "compile_source", "kernel_source", "load_module"]

KERNEL_DIR = Path(__file__).resolve().parent
#: The kernel sources of the package; ``bilinear_taps.cuh`` is pasted into ``preprocess.cu`` where it is included.
SOURCES = ("preprocess.cu", "postprocess.cu")
TAPS_INCLUDE = '#include "bilinear_taps.cuh"'


# ---------------------------------------------------------------- sources and NVRTC


_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*$", re.M)


def clean_exercise_source(text: str) -> str:
    """A learner's CUDA C from a notebook string: the ``### BEGIN/END SOLUTION`` lines of a solution notebook are
    blanked (the C preprocessor would reject them), keeping every other line where it was."""
    return _MARKER.sub("", text)


def kernel_source(name: str = "preprocess.cu", *, bilinear_taps: str | None = None) -> str:
    """The CUDA C text of a packaged kernel, with ``bilinear_taps.cuh`` (or a learner's version) pasted in."""
    text = _read_source(name)
    if bilinear_taps is not None and "NotImplementedError" in bilinear_taps:
        raise NotImplementedError(_("bilinear_taps: exercise 1 of Lab 04 is not done yet (the string still holds "
                                    "the `NotImplementedError` placeholder); write the CUDA C body first"))
    if TAPS_INCLUDE in text:
        taps = clean_exercise_source(bilinear_taps) if bilinear_taps is not None else _read_source("bilinear_taps.cuh")
        text = text.replace(TAPS_INCLUDE, taps.rstrip() + "\n")
    return text


@functools.cache
def _read_source(name: str) -> str:
    path = KERNEL_DIR / name
    if not path.is_file():
        raise FileNotFoundError(_("no kernel source {name!r} in {folder}; known: {known}").format(
            name=name, folder=KERNEL_DIR, known=", ".join(SOURCES)))
    return path.read_text()


@dataclass
class CompileResult:
    """What NVRTC said about one source: truthy when it compiled; ``errors`` as (line, message) pairs."""

    name: str
    ok: bool
    log: str
    ptx: str = ""
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def __bool__(self) -> bool:
        return self.ok

    @property
    def kernels(self) -> list[str]:
        """The ``extern "C"`` entry points found in the PTX."""
        return re.findall(r"\.entry\s+(\w+)", self.ptx)

    def __repr__(self) -> str:
        if self.ok:
            return (f"CompileResult({self.name}: compiled in {self.seconds * 1e3:.0f} ms, "
                    f"{len(self.kernels)} kernels: {', '.join(self.kernels)})")
        first = "; ".join(f"line {line}: {msg}" for line, msg in self.errors[:3]) or self.log.strip()[:300]
        return f"CompileResult({self.name}: FAILED, {len(self.errors)} error(s): {first})"

    def raise_for_errors(self) -> "CompileResult":
        if not self.ok:
            listing = "\n".join(f"  line {line}: {msg}" for line, msg in self.errors) or self.log
            raise KernelCompileError(_("{name} does not compile (NVRTC):\n{listing}\n"
                                       "Fix the lines named above; the line numbers count from the first line of "
                                       "the source you passed.").format(name=self.name, listing=listing))
        return self


_ERROR_LINE = re.compile(r"^(?P<file>[^\s(]+)\((?P<line>\d+)\): (?:catastrophic )?error: (?P<msg>.*)$")


def compile_source(source: str, *, name: str = "kernel.cu", arch: str = "compute_90",
                   options: Sequence[str] = ()) -> CompileResult:
    """Compile CUDA C to PTX with NVRTC (no GPU needed) and report errors with their line numbers."""
    import time

    try:
        from cuda.bindings import nvrtc
    except ImportError as err:
        raise UnsupportedFeature(_("NVRTC is not available: cuda-bindings does not import "
                                   "({err}); pip install cuda-bindings nvidia-cuda-nvrtc").format(err=err)) from err

    def ok(result: Any) -> None:
        if result != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise UnsupportedFeature(_("NVRTC call failed with {result}; is libnvrtc installed "
                                       "(pip install nvidia-cuda-nvrtc)?").format(result=result))

    start = time.perf_counter()
    status, prog = nvrtc.nvrtcCreateProgram(source.encode(), name.encode(), 0, [], [])
    ok(status)
    try:
        opts = [f"--gpu-architecture={arch}".encode(), b"--std=c++17", *(o.encode() for o in options)]
        (result,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        status, size = nvrtc.nvrtcGetProgramLogSize(prog)
        ok(status)
        # NVRTC writes into the buffer it is given: always a fresh bytearray. An empty log has size 1, and
        # `b" " * 1` is CPython's shared one-byte object — writing its NUL there corrupted every b" " in the process.
        log = bytearray(size)
        ok(nvrtc.nvrtcGetProgramLog(prog, log)[0])
        log_text = bytes(log).rstrip(b"\x00 ").decode(errors="replace")
        ptx = ""
        if result == nvrtc.nvrtcResult.NVRTC_SUCCESS:
            status, size = nvrtc.nvrtcGetPTXSize(prog)
            ok(status)
            buf = bytearray(size)
            ok(nvrtc.nvrtcGetPTX(prog, buf)[0])
            ptx = bytes(buf).rstrip(b"\x00").decode()
    finally:
        nvrtc.nvrtcDestroyProgram(prog)
    errors = [(int(m["line"]), m["msg"].strip()) for m in map(_ERROR_LINE.match, log_text.splitlines()) if m]
    return CompileResult(name, result == nvrtc.nvrtcResult.NVRTC_SUCCESS, log_text, ptx, errors,
                         time.perf_counter() - start)


def compile_all(*, arch: str = "compute_90") -> dict[str, CompileResult]:
    """NVRTC-compile every packaged kernel source (what CPU-only CI does to keep the kernels honest)."""
    return {name: compile_source(kernel_source(name), name=name, arch=arch) for name in SOURCES}



@functools.cache
def _module(source_hash: str, source: str, options: tuple[str, ...]) -> Any:
    import cupy

    try:
        module = cupy.RawModule(code=source, options=("--std=c++17", *options))
        module.compile()
    except cupy.cuda.compiler.CompileException as err:
        raise KernelCompileError(_("CuPy could not compile the kernel: {err}").format(err=err)) from err
    return module


def load_module(name: str = "preprocess.cu", *, bilinear_taps: str | None = None,
                pixels_per_thread: int = PIXELS_PER_THREAD, defines: dict[str, int] | None = None) -> Any:
    """The compiled ``cupy.RawModule`` of a packaged source (cached per source text and options); ``defines`` adds
    ``-D`` macros (the benchmark's variants, e.g. ``{"U8_MAGIC": 1}``)."""
    key = (name, bilinear_taps, int(pixels_per_thread), tuple(sorted((defines or {}).items())))
    if key in _LOADED:
        return _LOADED[key]
    require_gpu(f"loading {name}")
    source = kernel_source(name, bilinear_taps=bilinear_taps)
    options: tuple[str, ...] = (f"-DPIXELS_PER_THREAD={int(pixels_per_thread)}",) if name == "preprocess.cu" else ()
    options += tuple(f"-D{macro}={int(value)}" for macro, value in sorted((defines or {}).items()))
    _LOADED[key] = _module(hashlib.sha256(source.encode()).hexdigest(), source, options)
    return _LOADED[key]


_LOADED: dict[tuple, Any] = {}
