"""TensorRTRunner on a real GPU, behind the GPU engine stand-in (marker ``gpu``; ``make test-gpu``).

The stand-in keeps TensorRT's execution contract (only the addresses given with set_tensor_address, only on the
stream given to execute_async_v3), so a stream-ordering mistake in the runner gives wrong outputs here as it would
with TensorRT. The matrix lives in scripts/runner_race.py, which can also be pointed at an older runtime.py.

Run on a GPU machine:  PYTHONPATH=$PWD python3 -m pytest -p no:cacheprovider -o addopts="" -m gpu -ra \
    tests/gpu/test_runtime_gpu.py
"""

from __future__ import annotations

import functools
import importlib.util
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from trtlab import runtime
from trtlab.errors import ExecutionFailed

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def _checker_tests():
    """tests/check/test_lab03.py, whose ``from conftest import ...`` means tests/check/conftest.py (pytest puts that
    folder first on sys.path when it collects it; here the root conftest would answer instead)."""
    check = ROOT / "tests" / "check"
    root_conftest = sys.modules.get("conftest")
    sys.modules["conftest"] = _load("check_conftest", check / "conftest.py")
    try:
        return _load("lab03_checker_tests", check / "test_lab03.py")
    finally:
        if root_conftest is not None:
            sys.modules["conftest"] = root_conftest


def run_reference(*args, **kwargs):
    """The exercise's reference answer (and its wrong variants), from the CPU checker tests."""
    return _checker_tests().run_reference(*args, **kwargs)


@pytest.fixture(scope="module")
def race():
    from trtlab.env import capabilities

    caps = capabilities()
    assert caps.torch_cuda and caps.cupy_runs_kernels, "these tests need torch with CUDA and CuPy: " + caps.summary()
    return _load("runner_race", ROOT / "scripts" / "runner_race.py")


@pytest.fixture(scope="module")
def engine(race):
    return race.standin_engine()


def test_no_wrong_output_over_the_matrix(race, engine):
    lines: list[str] = []
    cells = race.race_matrix(runtime.TensorRTRunner, race.devices_of(runtime, ["torch", "cupy"]), calls=30,
                             runners=2, engine=engine, report=lines.append)
    print("\n".join(lines))
    assert len(cells) == 2 * 2 * 3
    assert sum(c.calls for c in cells) == 12 * 60
    bad = [c.line() for c in cells if c.wrong or c.errors]
    assert not bad, "cells with wrong outputs or errors:\n" + "\n".join(bad)


def test_stage_times_are_measured_on_the_runner_stream(race, engine):
    lines: list[str] = []
    rows = race.stage_checks(runtime.TensorRTRunner, race.devices_of(runtime, ["torch", "cupy"]), engine,
                             report=lines.append)
    print("\n".join(lines))
    assert all(r["compute_ms"] > 0 and r["h2d_ms"] > 0 and r["d2h_ms"] > 0 for r in rows), lines
    assert all(r["ok"] for r in rows), "GPU compute below half the model's own graph time:\n" + "\n".join(lines)


@pytest.mark.parametrize("device_name", ["torch", "cupy"])
def test_raw_context_captured_by_each_library(race, engine, device_name):
    """Lab 04's use: set_tensor_address + execute_async_v3 inside a graph captured by torch or by CuPy, replayed with
    new inputs copied into the same buffers. Tensors allocated on that stream after the capture must not share
    memory with the graph's intermediates (they would be overwritten at every replay)."""
    import cupy
    import torch

    ctx, batch, size = engine.create_execution_context(), 8, race.SIZE
    if device_name == "torch":
        stream = torch.cuda.Stream()
        x, y = torch.zeros((batch, 3, size, size), device="cuda"), torch.zeros((batch, race.CLASSES), device="cuda")
        handle, ptrs = stream.cuda_stream, (x.data_ptr(), y.data_ptr())
    else:
        stream = cupy.cuda.Stream(non_blocking=True)
        x, y = cupy.zeros((batch, 3, size, size), cupy.float32), cupy.zeros((batch, race.CLASSES), cupy.float32)
        handle, ptrs = stream.ptr, (x.data.ptr, y.data.ptr)
    assert ctx.set_input_shape("images", (batch, 3, size, size))
    assert ctx.set_tensor_address("images", ptrs[0]) and ctx.set_tensor_address("logits", ptrs[1])
    assert ctx.execute_async_v3(handle), ctx.errors  # an eager run first, as TensorRT advises
    stream.synchronize()
    if device_name == "torch":
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, stream=stream):
            ok = ctx.execute_async_v3(handle)
        launch = graph.replay  # called under torch.cuda.stream(stream) below
    else:
        stream.begin_capture()
        ok = ctx.execute_async_v3(handle)
        cgraph = stream.end_capture()
        launch = lambda: cgraph.launch(stream)  # noqa: E731
    assert ok, ctx.errors
    with torch.cuda.stream(torch.cuda.ExternalStream(handle)):  # live tensors on the graph's stream
        kept = [torch.full((n,), 7.0, device="cuda") for n in (1 << 12, 1 << 16, 1 << 18, 1 << 20)]
    rng = np.random.default_rng(0)
    for i in range(10):
        host = rng.standard_normal((batch, 3, size, size)).astype(np.float32)
        with torch.cuda.stream(torch.cuda.ExternalStream(handle)):
            if device_name == "torch":
                x.copy_(torch.from_numpy(host))
            else:
                x.set(host, stream=stream)
            launch()
        stream.synchronize()
        got = y.cpu().numpy() if device_name == "torch" else cupy.asnumpy(y)
        np.testing.assert_allclose(got, engine.reference(host), rtol=1e-3, atol=1e-3, err_msg=f"replay {i}")
    assert all(bool((t == 7.0).all()) for t in kept), "a replay wrote into memory torch had handed out again"


def test_contract_failure_modes(engine):
    import torch

    ctx = engine.create_execution_context()
    stream = torch.cuda.Stream()
    assert ctx.get_tensor_shape("logits") == (-1, 10)
    assert not ctx.execute_async_v3(stream.cuda_stream) and "input shapes not set" in ctx.errors[-1]
    assert not ctx.set_input_shape("images", (64, 3, 32, 32)), "outside the profile"
    assert ctx.set_input_shape("images", (4, 3, 32, 32)) and ctx.get_tensor_shape("logits") == (4, 10)
    assert ctx.all_binding_shapes_specified and ctx.infer_shapes() == []
    assert not ctx.set_tensor_address("nope", 1234)
    x = torch.zeros((4, 3, 32, 32), device="cuda")
    assert ctx.set_tensor_address("images", x.data_ptr())
    assert not ctx.execute_async_v3(stream.cuda_stream) and "no address set for ['logits']" in ctx.errors[-1]
    assert engine.get_tensor_mode("nope") == engine.trt.TensorIOMode.NONE


def test_runner_raises_course_error_when_an_address_is_refused(engine):
    r = runtime.TensorRTRunner(engine, device=runtime.TorchDevice())
    r.infer({"images": np.zeros((2, 3, 32, 32), np.float32)})
    refuse = r.context.set_tensor_address
    r.context.set_tensor_address = lambda name, ptr: name != "logits" and refuse(name, ptr)
    with pytest.raises(ExecutionFailed, match="refused the address of tensor 'logits'"):
        r.infer({"images": np.zeros((3, 3, 32, 32), np.float32)})  # a new shape: addresses are set again


def test_run_engine_checker_runs_on_the_gpu_standin():
    from trtlab.check import lab03

    result = lab03.run_engine.evaluate(run_reference)
    assert result, result.message
    assert "GPU stand-in" in result.message


@pytest.mark.parametrize("wrong, message", [
    ({"default_stream": True}, "default stream"),
    ({"engine_shape": True}, "-1 marks a dynamic dimension"),
    ({"skip_shape": True, "check": False}, "input shapes not set.*check the return values"),
    ({"keep_inputs": False}, "freed before the engine used it.*[Kk]eep a reference"),
])
def test_run_engine_checker_rejects_on_the_gpu_standin(wrong, message):
    from trtlab.check import lab03

    result = lab03.run_engine.evaluate(lambda *a: run_reference(*a, **wrong))
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message


def test_gpu_engine_from_a_real_plan(tmp_path, race):
    """gpu_engine() reads names, dtypes and the profile from a TensorRT-RTX plan built here (on the CPU builder)."""
    import torch

    from trtlab import engine as engine_mod
    from trtlab import env
    from trtlab._toy import toy_classifier_onnx
    from trtlab.standin import gpu_engine

    onnx = tmp_path / "toy.onnx"
    onnx.write_bytes(toy_classifier_onnx())
    built = engine_mod.build(onnx, batch=(1, 4, 16), rtx_targets=["SM86"],
                             flavour=env.builder_flavour(has_gpu=False))  # TensorRT-RTX, even beside tensorrt
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(6, 4))
    eng = gpu_engine(built.path, model)
    assert "GPU stand-in" in eng.announcement and "TensorRT" in eng.announcement
    with runtime.TensorRTRunner(eng, device=runtime.CupyDevice(), cuda_graph=True, name="toy") as r:
        assert r.profiles["images"] == ((1, 3, 8, 8), (4, 3, 8, 8), (16, 3, 8, 8))
        for n in (3, 3, 7, 3):
            x = np.random.default_rng(n).standard_normal((n, 3, 8, 8)).astype(np.float32)
            np.testing.assert_allclose(r.infer({"images": x})["logits"], eng.reference(x), rtol=1e-3, atol=1e-4)
