"""Every version branch of the course lives here: which TensorRT flavour is installed (TensorRT 10.x, 11.x or
TensorRT-RTX), and how its API differs. Nothing else in trtlab reads ``__version__`` of TensorRT.

Each difference is a named function (network flags, execution-context creation, RTX targets, plugin support by
version, ...), so callers never test ``hasattr`` or versions of TensorRT objects themselves. Which flavour builds or
runs *here* is :mod:`trtlab.env`'s answer (``builder_flavour``, ``runtime_flavour``): this module imports nothing of
trtlab but its errors, which keeps the import graph free of cycles.

Imports are lazy: importing trtlab never imports TensorRT, torch or CuPy.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from packaging.version import Version

from trtlab.errors import UnsupportedFeature

__all__ = [
    "AOT_PLUGIN_MINIMUM",
    "QUICK_PLUGIN_MINIMUM",
    "TensorRTFlavour",
    "create_execution_context",
    "cuda_version",
    "device_memory_size",
    "flavour_of",
    "flavours",
    "has_precision_flags",
    "made_by_rtx",
    "network_flags",
    "numpy_dtype",
    "package_version",
    "plugin_network_flags",
    "require",
    "set_rtx_targets",
    "supports_aot_plugins",
    "supports_quick_plugins",
    "supports_timing_cache",
    "tensorrt",
    "tensorrt_rtx",
    "tensorrt_supports",
]

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
        module = importlib.import_module(name)
    except Exception:  # a broken install (missing libs, wrong CUDA) counts as absent; the doctor says why
        return None
    if getattr(module, "__version__", None) is None:  # e.g. only tensorrt-stubs' .pyi files: a namespace package
        return None
    return module


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


def flavour_of(module: ModuleType) -> TensorRTFlavour:
    """The flavour of an imported ``tensorrt`` / ``tensorrt_rtx`` module (or one of its submodules)."""
    return TensorRTFlavour(module.__name__.split(".")[0], Version(module.__version__))


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


# ---------------------------------------------------------------- build and runtime API differences (Lab 03)

#: Every TensorRT attribute trtlab touches, as dotted paths from the module. tests/test_compat.py checks each one
#: against the installed ``tensorrt_rtx`` (whose bindings come from the same source as ``tensorrt``), so a renamed
#: or removed API fails a CPU test instead of a learner's GPU run. Keep it in sync with engine.py and runtime.py.
SHARED_API: tuple[str, ...] = (
    "Logger", "Logger.WARNING", "Logger.ERROR", "ILogger", "ILogger.log", "Builder", "Builder.create_network", "Builder.create_builder_config",
    "Builder.create_optimization_profile", "Builder.build_serialized_network",
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
    "INetworkDefinition.num_inputs", "INetworkDefinition.num_outputs", "INetworkDefinition.get_input",
    "INetworkDefinition.get_output", "ITensor.name", "ITensor.shape", "ITensor.dtype",
    "OnnxParser", "OnnxParser.parse", "OnnxParser.num_errors", "OnnxParser.get_error",
    "ParserError.desc", "ParserError.node", "ParserError.node_name", "ParserError.node_operator", "ParserError.code",
    "IBuilderConfig.set_memory_pool_limit", "MemoryPoolType.WORKSPACE", "IBuilderConfig.builder_optimization_level",
    "IBuilderConfig.profiling_verbosity", "ProfilingVerbosity.DETAILED", "ProfilingVerbosity.LAYER_NAMES_ONLY",
    "ProfilingVerbosity.NONE", "IBuilderConfig.add_optimization_profile", "IOptimizationProfile.set_shape",
    "IBuilderConfig.create_timing_cache", "IBuilderConfig.set_timing_cache", "ITimingCache.serialize",
    "IHostMemory", "Runtime", "Runtime.deserialize_cuda_engine",
    "ICudaEngine.num_io_tensors", "ICudaEngine.get_tensor_name", "ICudaEngine.get_tensor_mode",
    "ICudaEngine.get_tensor_dtype", "ICudaEngine.get_tensor_shape", "ICudaEngine.get_tensor_profile_shape",
    "ICudaEngine.num_optimization_profiles", "ICudaEngine.create_execution_context", "ICudaEngine.device_memory_size_v2",
    "ICudaEngine.create_engine_inspector", "EngineInspector.get_engine_information", "LayerInformationFormat.JSON",
    "INetworkDefinition.num_layers", "INetworkDefinition.get_layer", "ILayer.name", "ILayer.type", "ILayer.num_inputs",
    "ILayer.get_input", "ILayer.num_outputs", "ILayer.get_output", "IProfiler", "IProfiler.report_layer_time",
    "IExecutionContext.profiler",
    "TensorIOMode.INPUT", "TensorIOMode.OUTPUT",
    "IExecutionContext.set_input_shape", "IExecutionContext.set_tensor_address", "IExecutionContext.get_tensor_shape",
    "IExecutionContext.execute_async_v3", "IExecutionContext.infer_shapes", "IExecutionContext.all_binding_shapes_specified",
    "DataType.FLOAT", "DataType.HALF", "DataType.INT8", "DataType.INT32", "DataType.INT64", "DataType.BOOL",
    "DataType.UINT8", "DataType.BF16",
)

#: Only in TensorRT-RTX (ahead-of-time targets, runtime config and cache).
RTX_ONLY_API: tuple[str, ...] = (
    "IBuilderConfig.num_compute_capabilities", "IBuilderConfig.set_compute_capability", "ComputeCapability.CURRENT",
    "ComputeCapability.SM75", "ComputeCapability.SM86", "ComputeCapability.SM89", "ComputeCapability.SM120",
    "ICudaEngine.create_runtime_config", "IRuntimeConfig.create_runtime_cache", "IRuntimeConfig.set_runtime_cache",
    "IRuntimeConfig.cuda_graph_strategy", "CudaGraphStrategy.WHOLE_GRAPH_CAPTURE", "Runtime.get_engine_validity",
)

#: What the old blog posts use; gone in TensorRT 11 and TensorRT-RTX (Lab 03 shows them as history only).
REMOVED_IN_11: tuple[str, ...] = (
    "BuilderFlag.FP16", "BuilderFlag.INT8", "BuilderFlag.OBEY_PRECISION_CONSTRAINTS", "IBuilderConfig.int8_calibrator",
    "Builder.platform_has_fast_fp16", "ICudaEngine.device_memory_size", "NetworkDefinitionCreationFlag.EXPLICIT_BATCH",
)

#: The default ahead-of-time targets of a TensorRT-RTX build made without a GPU (its documented portable set).
RTX_DEFAULT_TARGETS = ("SM86", "SM89", "SM120")


#: Oldest compute capability each TensorRT release line supports: 10.0 deprecated Volta (7.0), 10.5 removed it
#: (TensorRT 10.0.1 and 10.5.0 release notes); 11.x keeps 7.5 and newer. Pascal (6.x) is out since 10.0.
_TENSORRT_MIN_CC = (("10.5", (7, 5)), ("10.0", (7, 0)))


def tensorrt_supports(version: str | Version, compute_capability: tuple[int, int]) -> bool:
    """Whether TensorRT ``version`` (10.0 or later) supports a GPU of ``compute_capability``."""
    v = Version(str(version))
    for first, minimum in _TENSORRT_MIN_CC:
        if v >= Version(first):
            return tuple(compute_capability) >= minimum
    return tuple(compute_capability) >= (5, 0)  # 9.x and older: not taught here


def network_flags(trt: ModuleType) -> int:
    """Creation flags for a strongly typed network: required on 10.x, a harmless no-op on 11.x, same on RTX."""
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    return 0 if flag is None else 1 << int(flag)


def has_precision_flags(trt: ModuleType) -> bool:
    """True on TensorRT 10.x, which still has the deprecated weak-typing flags (BuilderFlag.FP16/INT8)."""
    return hasattr(trt.BuilderFlag, "FP16")


def supports_timing_cache(flavour: TensorRTFlavour) -> bool:
    """TensorRT-RTX accepts a timing cache but ignores it (deprecated in RTX 1.2: it uses a runtime cache instead)."""
    return not flavour.is_rtx


def set_rtx_targets(config: object, trt: ModuleType, targets: tuple[str, ...] | list[str]) -> list[str]:
    """Ask TensorRT-RTX to compile ahead of time for these compute capabilities ("SM86", "CURRENT", ...).

    Returns the targets set. Raises :class:`UnsupportedFeature` for a name this TensorRT-RTX does not know (for
    example SM90: Hopper is not in the RTX support matrix)."""
    known = [n for n in dir(trt.ComputeCapability) if n.isupper()]
    unknown = [t for t in targets if t not in known]
    if unknown:
        raise UnsupportedFeature(f"TensorRT-RTX {trt.__version__} cannot target {', '.join(unknown)}; "
                                 f"it knows {', '.join(k for k in known if k != 'NONE')}. Pick from those "
                                 "(Hopper/SM90 is not supported by TensorRT-RTX: use TensorRT there)")
    config.num_compute_capabilities = len(targets)  # type: ignore[attr-defined]
    for index, name in enumerate(targets):
        config.set_compute_capability(getattr(trt.ComputeCapability, name), index)  # type: ignore[attr-defined]
    return list(targets)


def device_memory_size(engine: object) -> int:
    """Scratch memory an engine needs: ``device_memory_size_v2`` (10.1+, the only one in 11 and RTX)."""
    size = getattr(engine, "device_memory_size_v2", None)
    if size is None:
        size = engine.device_memory_size  # type: ignore[attr-defined]  # TensorRT < 10.1
    return int(size)


def made_by_rtx(obj: object) -> bool:
    """Whether a TensorRT object (an engine, a context) comes from TensorRT-RTX's bindings (its class lives in
    ``tensorrt_rtx*``). Not ``hasattr(engine, "create_runtime_config")``: standard TensorRT has it too
    (``IRuntimeConfig`` is in the API references of TensorRT 10.14 and 11.4), and a stand-in keeps standard
    TensorRT's contract whatever enums it borrows."""
    return type(obj).__module__.split(".")[0].startswith("tensorrt_rtx")


def create_execution_context(engine: object, trt: ModuleType, *, rtx: bool, cuda_graph: bool) -> tuple[object, bool]:
    """``(context, graphs_by_runtime)``: an execution context for ``engine``.

    TensorRT-RTX JIT-compiles at context creation from an ``IRuntimeConfig`` (``create_runtime_config``), and with
    ``cuda_graph`` it captures CUDA graphs itself (``CudaGraphStrategy.WHOLE_GRAPH_CAPTURE``, where the module has it):
    ``graphs_by_runtime`` is then True and the caller must not capture again. TensorRT: a plain context."""
    if not rtx:
        return engine.create_execution_context(), False  # type: ignore[attr-defined]
    config = engine.create_runtime_config()  # type: ignore[attr-defined]
    by_runtime = cuda_graph and hasattr(trt, "CudaGraphStrategy")
    if by_runtime:
        config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
    return engine.create_execution_context(config), by_runtime  # type: ignore[attr-defined]


# ---------------------------------------------------------------- plugins (Lab 05)

#: ``tensorrt.plugin``, the quickly deployable Python plugins (QDP): new in TensorRT 10.6 (its release notes).
QUICK_PLUGIN_MINIMUM = "10.6"
#: ``tensorrt.plugin.aot_impl`` (a kernel embedded in the engine) and the network flags choosing AOT or JIT
#: (``PREFER_AOT_PYTHON_PLUGINS`` / ``PREFER_JIT_PYTHON_PLUGINS``): new in TensorRT 10.9 (its release notes).
AOT_PLUGIN_MINIMUM = "10.9"


def supports_quick_plugins(flavour: TensorRTFlavour) -> bool:
    """``tensorrt.plugin`` works: TensorRT >= 10.6. Not TensorRT-RTX: ``tensorrt_rtx.plugin`` is a shim over a
    module its wheel does not ship (checked on 1.7.1)."""
    return not flavour.is_rtx and flavour.version >= Version(QUICK_PLUGIN_MINIMUM)


def supports_aot_plugins(flavour: TensorRTFlavour) -> bool:
    """``tensorrt.plugin.aot_impl`` works: TensorRT >= 10.9."""
    return not flavour.is_rtx and flavour.version >= Version(AOT_PLUGIN_MINIMUM)


def plugin_network_flags(trt: ModuleType, *, prefer_aot: bool) -> int:
    """The network creation flag that picks a Python plugin's AOT or JIT implementation when it has both
    (10.9+); 0 where the flag does not exist (a plugin has only one implementation there)."""
    name = "PREFER_AOT_PYTHON_PLUGINS" if prefer_aot else "PREFER_JIT_PYTHON_PLUGINS"
    flag = getattr(trt.NetworkDefinitionCreationFlag, name, None)
    return 0 if flag is None else 1 << int(flag)


def numpy_dtype(trt: ModuleType, dtype: object) -> "np.dtype":
    """The NumPy dtype of a TensorRT ``DataType`` (``trt.nptype`` exists in both, but not for every type)."""
    import numpy as np

    table = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
             "BOOL": np.bool_, "UINT8": np.uint8}
    name = getattr(dtype, "name", str(dtype)).split(".")[-1]
    if name not in table:
        raise UnsupportedFeature(f"tensor type {name} has no NumPy equivalent trtlab handles; "
                                 "keep engine I/O in FP32/FP16/INT types (AutoCast keep_io_types=True)")
    return np.dtype(table[name])


def cuda_version() -> str | None:
    """The CUDA runtime version the TensorRT wheels are built against, e.g. "13.0" (None if unknown)."""
    try:
        from cuda.bindings import runtime as cudart

        err, version = cudart.cudaRuntimeGetVersion()
        if int(err) == 0:
            return f"{version // 1000}.{(version % 1000) // 10}"
    except Exception:  # noqa: BLE001 - absent cuda-bindings: fall back on the wheel name
        pass
    for dist in ("tensorrt-cu13", "tensorrt-rtx-cu13", "tensorrt-cu12", "tensorrt-rtx-cu12"):
        if package_version(dist):
            return dist.rsplit("cu", 1)[1]
    return None
