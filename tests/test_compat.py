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
    assert _compat.builder_flavour(has_gpu=False).is_rtx
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


def test_builder_flavour_without_any(monkeypatch):
    monkeypatch.setattr(_compat, "flavours", lambda: [])
    with pytest.raises(UnsupportedFeature, match="pip install tensorrt-rtx-cu13"):
        _compat.builder_flavour(has_gpu=False)
