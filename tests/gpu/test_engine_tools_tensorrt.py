"""Lab 03's engine tools where TensorRT runs (marker ``tensorrt``: needs a GPU *and* the ``tensorrt`` package; no
machine of the project has both, so these have not run yet):

    pytest -m tensorrt tests/gpu/test_engine_tools_tensorrt.py -s

- the engine inspector's JSON of a real plan maps onto ``tl.engine.LayerPrecision`` records, and the fp32 layers of
  an AutoCast build with ReduceMean and Gemm kept in fp32 are found in it (the rule of Lab 03's exercise);
- ``tl.engine.layer_times`` gets one time per layer from ``IProfiler.report_layer_time``;
- where ``trtexec`` is on PATH, the printed command for this trtexec version builds and benchmarks the same model and
  prints a performance summary.
"""

from __future__ import annotations

import numpy as np
import pytest

from trtlab import _compat, engine, precision, runtime
from trtlab._toy import toy_classifier_onnx
from trtlab.check.lab03 import _stayed_fp32

pytestmark = pytest.mark.tensorrt


@pytest.fixture(scope="module")
def mixed_plan(tmp_path_factory):
    assert _compat.tensorrt() is not None, "marker tensorrt: these tests need the tensorrt package"
    tmp = tmp_path_factory.mktemp("tools")
    onnx = tmp / "toy.onnx"
    onnx.write_bytes(toy_classifier_onnx(size=16))
    mixed = precision.autocast_fp16(onnx, tmp / "toy.mixed.onnx", keep_fp32_ops=("Gemm",))
    flavour = next(f for f in _compat.flavours() if not f.is_rtx)
    return engine.build(mixed, out=tmp / "toy.mixed.plan", batch=(1, 4, 8), flavour=flavour)


def test_inspector_json_maps_to_layer_precisions(mixed_plan):
    loaded = engine.deserialize(mixed_plan.path)
    info = engine.engine_information(loaded)
    print("inspector keys:", sorted(info), "first layer:", info["Layers"][0])
    layers = engine.layer_precisions(loaded)
    assert layers and all(l.outputs for l in layers)
    known = [d for l in layers for d in l.inputs + l.outputs if d != "unknown"]
    assert "float16" in known and "float32" in known, [(l.name, l.inputs, l.outputs) for l in layers]
    stayed = [l.name for l in layers if _stayed_fp32(l)]
    print("stayed in fp32:", stayed)
    assert stayed, "the Gemm kept in fp32 should run in fp32 in the engine"


def test_layer_times_from_iprofiler(mixed_plan):
    runner = runtime.TensorRTRunner(mixed_plan.path)
    rows = engine.layer_times(runner, {"images": np.random.rand(4, 3, 16, 16).astype(np.float32)}, runs=10)
    print(rows)
    assert rows and all(ms >= 0 for _, ms, _ in rows)
    assert abs(sum(share for *_, share in rows) - 1) < 1e-6


def test_trtexec_runs_the_printed_command(mixed_plan):
    version = engine.trtexec_version()
    assert version is not None, "no trtexec on PATH: install TensorRT's tar package or use the NGC container"
    done = engine.run_trtexec(engine.trtexec_command(mixed_plan, version, layer_info=True), timeout_s=600)
    print(done.stdout[-4000:])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "=== Performance summary ===" in done.stdout and "GPU Compute Time" in done.stdout
