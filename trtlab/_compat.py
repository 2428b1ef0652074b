"""Every version branch of the course lives here: which TensorRT flavour is installed (TensorRT 10.x, 11.x or
TensorRT-RTX), and how its API differs. Nothing else in trtlab reads ``__version__`` of TensorRT.

Imports are lazy: importing trtlab never imports TensorRT, torch or CuPy.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType

from packaging.version import Version

from trtlab.errors import UnsupportedFeature

__all__ = ["TensorRTFlavour", "flavours", "package_version", "require", "tensorrt", "tensorrt_rtx"]

#: GPUs TensorRT-RTX runs on (support matrix 1.5; 8.0 is in the default AOT set but not listed as supported).
RTX_COMPUTE_CAPABILITIES = ((7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1))


@dataclass(frozen=True)
class TensorRTFlavour:
    """One installed TensorRT-family runtime and what its API generation is."""

    module_name: str  # "tensorrt" or "tensorrt_rtx"
    version: Version

    @property
    def is_rtx(self) -> bool:
        return self.module_name == "tensorrt_rtx"

    @property
    def generation(self) -> str:
        """"11.x" (strongly typed only, no precision flags), "10.x" (weak typing deprecated), or "RTX"."""
        if self.is_rtx:
            return "RTX"
        return "11.x" if self.version.major >= 11 else f"{self.version.major}.x"

    @property
    def label(self) -> str:
        return f"TensorRT-RTX {self.version}" if self.is_rtx else f"TensorRT {self.version}"

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)


@functools.cache
def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except Exception:  # a broken install (missing libs, wrong CUDA) counts as absent; the doctor says why
        return None


def tensorrt() -> ModuleType | None:
    """The ``tensorrt`` module (10.x or 11.x), or None when it is not installed."""
    return _import("tensorrt")


def tensorrt_rtx() -> ModuleType | None:
    """The ``tensorrt_rtx`` module, or None when it is not installed."""
    return _import("tensorrt_rtx")


def flavours() -> list[TensorRTFlavour]:
    """The TensorRT-family runtimes that import here, TensorRT first."""
    found = []
    for name, loader in (("tensorrt", tensorrt), ("tensorrt_rtx", tensorrt_rtx)):
        module = loader()
        if module is not None:
            found.append(TensorRTFlavour(name, Version(module.__version__)))
    return found


def package_version(distribution: str) -> str | None:
    """Installed version of a distribution, without importing it (None if absent)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require(feature: str, *, minimum: str, flavour: TensorRTFlavour | None = None) -> TensorRTFlavour:
    """Raise :class:`UnsupportedFeature` unless TensorRT ≥ ``minimum`` is installed."""
    candidates = [flavour] if flavour else [f for f in flavours() if not f.is_rtx]
    for candidate in candidates:
        if not candidate.is_rtx and candidate.version >= Version(minimum):
            return candidate
    found = ", ".join(f.label for f in flavours()) or "no TensorRT"
    raise UnsupportedFeature(f"{feature} needs TensorRT >= {minimum}; found {found}. "
                             "Install it on a machine with an NVIDIA GPU: pip install -e '.[tensorrt]'")
