"""trtlab._compat: every TensorRT attribute trtlab uses exists in the installed TensorRT-RTX (same binding source),
the removed APIs are really gone, and the version branches pick the right thing."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np
import pytest

from trtlab import _compat
from trtlab.errors import UnsupportedFeature

import tensorrt_rtx as rtx  # noqa: E402  - a declared dependency: missing means a broken install, a failure


def _resolve(module, dotted: str):
    return functools.reduce(getattr, dotted.split("."), module)


@pytest.mark.parametrize("attribute", _compat.SHARED_API + _compat.RTX_ONLY_API)
def test_attribute_exists_in_tensorrt_rtx(attribute):
    try:
        _resolve(rtx, attribute)
    except AttributeError:
        pytest.fail(f"tensorrt_rtx {rtx.__version__} has no {attribute}: trtlab uses it; update engine.py/runtime.py "
                    "and the list in _compat.SHARED_API")


@pytest.mark.parametrize("attribute", _compat.REMOVED_IN_11)
def test_removed_api_is_gone_from_rtx(attribute):
    with pytest.raises(AttributeError):
        _resolve(rtx, attribute)


def test_shared_api_lists_what_the_code_uses():
    """Every `trt.X.Y` / `.method(` of the TensorRT API named in engine.py and runtime.py is in SHARED_API."""
    root = Path(_compat.__file__).parent
    source = (root / "engine.py").read_text() + (root / "runtime.py").read_text()
    used = set(re.findall(r"\btrt\.([A-Z][A-Za-z]+(?:\.[A-Z_]+)?)", source))
    listed = {a for a in _compat.SHARED_API + _compat.RTX_ONLY_API}
    missing = sorted(u for u in used if not u.startswith("ILogger") and not any(a == u or a.startswith(u + ".") for a in listed))
    assert not missing, f"engine.py/runtime.py use {missing}; add them to _compat.SHARED_API"


def test_network_flags_strongly_typed():
    assert _compat.network_flags(rtx) == 1 << int(rtx.NetworkDefinitionCreationFlag.STRONGLY_TYPED)

    class Old:  # a module without the flag (TensorRT 8.x): 0, the only thing it accepts
        class NetworkDefinitionCreationFlag:
            pass

    assert _compat.network_flags(Old) == 0


def test_precision_flags_absent_on_rtx():
    assert not _compat.has_precision_flags(rtx)


def test_rtx_flavour_and_timing_cache():
    flavour = next(f for f in _compat.flavours() if f.is_rtx)
    assert flavour.generation == "RTX" and not _compat.supports_timing_cache(flavour)
    assert _compat.flavour_of(rtx) == flavour
    assert _compat.TensorRTFlavour("tensorrt", _compat.Version("11.1.0")).generation == "11.x"
    assert _compat.supports_timing_cache(_compat.TensorRTFlavour("tensorrt", _compat.Version("10.13")))


def test_set_rtx_targets():
    config = rtx.Builder(rtx.Logger(rtx.Logger.ERROR)).create_builder_config()
    assert _compat.set_rtx_targets(config, rtx, ["SM86", "SM120"]) == ["SM86", "SM120"]
    assert config.num_compute_capabilities == 2
    with pytest.raises(UnsupportedFeature, match="Hopper"):
        _compat.set_rtx_targets(config, rtx, ["SM90"])


def test_numpy_dtype():
    assert _compat.numpy_dtype(rtx, rtx.DataType.HALF) == np.float16
    assert _compat.numpy_dtype(rtx, rtx.DataType.FLOAT) == np.float32
    with pytest.raises(UnsupportedFeature, match="keep_io_types"):
        _compat.numpy_dtype(rtx, rtx.DataType.FP8)


def test_device_memory_size_prefers_v2():
    class New:
        device_memory_size_v2 = 7

    class Old:
        device_memory_size = 5

    assert _compat.device_memory_size(New()) == 7 and _compat.device_memory_size(Old()) == 5


def test_cuda_version_known():
    assert re.fullmatch(r"\d+(\.\d+)?", _compat.cuda_version() or "")


def test_compat_asks_nothing_of_env():
    """The machine's answer ("what builds/runs here") is env's; _compat only knows the installed APIs (no cycle)."""
    import ast

    tree = ast.parse(Path(_compat.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in imported if m and m.startswith("trtlab") and m != "trtlab.errors"}, imported
    assert not hasattr(_compat, "builder_flavour") and not hasattr(_compat, "runtime_flavour")


# ---------------------------------------------------------------- plugins by version (Lab 05)


@pytest.mark.parametrize("module, version, quick, aot", [
    ("tensorrt", "10.5.0", False, False), ("tensorrt", "10.6.0", True, False), ("tensorrt", "10.9.0", True, True),
    ("tensorrt", "11.4.0", True, True), ("tensorrt_rtx", "1.7.1", False, False),
])
def test_python_plugins_by_version(module, version, quick, aot):
    """tensorrt.plugin: 10.6 (QDP); aot_impl: 10.9 (release notes); never on TensorRT-RTX (its shim does not import)."""
    flavour = _compat.TensorRTFlavour(module, _compat.Version(version))
    assert _compat.supports_quick_plugins(flavour) is quick
    assert _compat.supports_aot_plugins(flavour) is aot


def test_plugin_network_flags_pick_aot_or_jit():
    class Flags:
        PREFER_AOT_PYTHON_PLUGINS, PREFER_JIT_PYTHON_PLUGINS = 2, 3

    class New:  # TensorRT >= 10.9
        NetworkDefinitionCreationFlag = Flags

    class Old:  # before 10.9, and TensorRT-RTX 1.7: no such flags
        NetworkDefinitionCreationFlag = type("Flags", (), {})

    assert _compat.plugin_network_flags(New, prefer_aot=True) == 1 << 2
    assert _compat.plugin_network_flags(New, prefer_aot=False) == 1 << 3
    assert _compat.plugin_network_flags(Old, prefer_aot=True) == 0
    assert _compat.plugin_network_flags(rtx, prefer_aot=True) == 0  # what TensorRT-RTX 1.7 really has


# ---------------------------------------------------------------- execution contexts


class _Engine:
    """Records how its context was made (TensorRT: no argument; TensorRT-RTX: a runtime config)."""

    def __init__(self) -> None:
        self.config = None

    def create_runtime_config(self):
        self.config = type("RuntimeConfig", (), {"cuda_graph_strategy": None})()
        return self.config

    def create_execution_context(self, config=None):
        return ("context", config)


def test_execution_context_tensorrt_is_plain():
    engine = _Engine()
    context, by_runtime = _compat.create_execution_context(engine, rtx, rtx=False, cuda_graph=True)
    assert context == ("context", None) and not by_runtime and engine.config is None


@pytest.mark.parametrize("cuda_graph", [True, False])
def test_execution_context_rtx_uses_a_runtime_config(cuda_graph):
    engine = _Engine()
    context, by_runtime = _compat.create_execution_context(engine, rtx, rtx=True, cuda_graph=cuda_graph)
    assert context == ("context", engine.config) and by_runtime is cuda_graph
    expected = rtx.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE if cuda_graph else None
    assert engine.config.cuda_graph_strategy == expected


def test_made_by_rtx_reads_the_binding_module():
    engine = rtx.Builder(rtx.Logger(rtx.Logger.ERROR))
    assert _compat.made_by_rtx(engine) and not _compat.made_by_rtx(_Engine())
