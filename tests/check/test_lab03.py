"""Lab 03 checkers accept the reference answers and reject wrong ones with a message naming the mistake."""

from __future__ import annotations

import re

import numpy as np
import pytest

from trtlab import _compat
from trtlab.check import lab03

import tensorrt_rtx  # noqa: E402,F401  - the build exercise runs the real TensorRT-RTX builder


# ---------------------------------------------------------------- build_plan


def build_reference(trt, onnx_bytes, shapes, *, flags=None, profile=True, check_parse=True, swap=False,
                    check_none=True):
    logger = trt.Logger(trt.Logger.ERROR)
    builder = trt.Builder(logger)
    strongly = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(strongly if flags is None else flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes) and check_parse:
        raise RuntimeError("; ".join(parser.get_error(i).desc() for i in range(parser.num_errors)))
    config = builder.create_builder_config()
    if profile:
        p = builder.create_optimization_profile()
        for name, (lo, opt, hi) in shapes.items():
            p.set_shape(name, hi, opt, lo) if swap else p.set_shape(name, lo, opt, hi)
        config.add_optimization_profile(p)
    plan = builder.build_serialized_network(network, config)
    if plan is None and check_none:
        raise RuntimeError("build failed")
    return plan


def test_build_plan_accepts_reference():
    result = lab03.build_plan.evaluate(build_reference)
    assert result, result.message
    assert "parser errors are caught" in result.message


def hard_coded(trt, onnx_bytes, shapes):
    return build_reference(trt, onnx_bytes, {"images": ((1, 3, 8, 8), (8, 3, 8, 8), (16, 3, 8, 8))})


@pytest.mark.parametrize("wrong, message", [
    (lambda trt, o, s: build_reference(trt, o, s, flags=0), "not created strongly typed"),
    (lambda trt, o, s: build_reference(trt, o, s, profile=False, check_none=False), "no optimization profile"),
    (lambda trt, o, s: build_reference(trt, o, s, check_parse=False, check_none=False),
     "returned normally.*parser.parse returns False"),
    (hard_coded, r"min/opt/max = .*\(8, 3, 8, 8\).*use the shapes you are given"),
    (lambda trt, o, s: (build_reference(trt, o, s), None)[1], "returned None"),
    (lambda trt, o, s: "plan.engine", "only 11 bytes|return the serialized plan|build_serialized_network was never"),
])
def test_build_plan_rejects(wrong, message):
    result = lab03.build_plan.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_build_plan_swapped_profile_is_reported():
    result = lab03.build_plan.evaluate(lambda trt, o, s: build_reference(trt, o, s, swap=True, check_none=False))
    assert result.status == "failed"
    assert re.search("min/opt/max|raised", result.message), result.message


def test_build_plan_stub_is_not_done():
    def stub(trt, onnx_bytes, shapes):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert lab03.build_plan.evaluate(stub).status == "not done"


# ---------------------------------------------------------------- run_engine


def run_reference(trt, engine, context, feeds, device, *, default_stream=False, engine_shape=False,
                  skip_shape=False, check=True, keep_inputs=True):
    inputs = {}
    for name, array in feeds.items():
        if not skip_shape:
            context.set_input_shape(name, array.shape)
        buf = device.upload(array)
        if keep_inputs:
            inputs[name] = buf
        context.set_tensor_address(name, device.ptr(buf))
        del buf
    outputs = {}
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            shape = (engine if engine_shape else context).get_tensor_shape(name)
            dtype = _compat.numpy_dtype(trt, engine.get_tensor_dtype(name))
            outputs[name] = device.empty(tuple(max(d, 1) if skip_shape else d for d in shape), dtype)
            context.set_tensor_address(name, device.ptr(outputs[name]))
    ok = context.execute_async_v3(0 if default_stream else device.stream)
    if check and not ok:
        raise RuntimeError("execute_async_v3 failed")
    device.synchronize()
    return {name: device.download(buf) for name, buf in outputs.items()}


def test_run_engine_accepts_reference():
    result = lab03.run_engine.evaluate(run_reference)
    assert result, result.message


def _upload_f64(trt, engine, context, feeds, device):
    return run_reference(trt, engine, context, {k: v.astype(np.float64) for k, v in feeds.items()}, device)


@pytest.mark.parametrize("wrong, message", [
    (lambda *a: run_reference(*a, default_stream=True), "default stream"),
    (lambda *a: run_reference(*a, engine_shape=True), "-1 marks a dynamic dimension"),
    (lambda *a: run_reference(*a, skip_shape=True, check=False), "TensorRT reported: execute_async_v3: input shapes not set.*check the return values"),
    (_upload_f64, "outside tolerance.*float32"),
    (lambda *a: run_reference(*a)["logits"], "return a dict"),
    (lambda *a: run_reference(*a, keep_inputs=False), "freed before the engine used it.*keep a reference"),
])
def test_run_engine_rejects(wrong, message):
    result = lab03.run_engine.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message


def test_run_engine_stub_is_not_done():
    def stub(*args):
        raise NotImplementedError

    assert lab03.run_engine.evaluate(stub).status == "not done"


# ---------------------------------------------------------------- choose_calibration


def choose_reference(brightness, labels, n, seed=0):
    from trtlab.precision import representative_indices

    return representative_indices(brightness, labels, n, seed=seed)


def test_choose_calibration_accepts_reference_and_random():
    assert lab03.choose_calibration.evaluate(choose_reference)
    random = lambda b, l, n, seed=0: np.random.default_rng(seed).choice(len(l), n, replace=False)  # noqa: E731
    assert lab03.choose_calibration.evaluate(random)


@pytest.mark.parametrize("wrong, message", [
    (lambda b, l, n, seed=0: np.arange(n), "brightest quarter.*sorted by brightness.*first n"),
    (lambda b, l, n, seed=0: np.argsort(b)[-n:], "darkest quarter"),
    (lambda b, l, n, seed=0: np.r_[np.arange(n // 2), np.arange(len(l) - n // 2, len(l))], "gap in the brightness"),
    (lambda b, l, n, seed=0: np.random.default_rng(seed).choice(len(l), n, replace=True), "duplicate"),
    (lambda b, l, n, seed=0: np.arange(n // 2), "asked for 256 images, got 128"),
    (lambda b, l, n, seed=0: np.flatnonzero(l != 3)[::7][:n], "class 3 is missing"),
    (lambda b, l, n, seed=0: np.linspace(0, 1, n), "integer indices"),
])
def test_choose_calibration_rejects(wrong, message):
    result = lab03.choose_calibration.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message


def test_choose_calibration_stub_is_not_done():
    def stub(b, l, n, seed=0):
        raise NotImplementedError

    assert lab03.choose_calibration.evaluate(stub).status == "not done"


def test_every_exercise_has_three_hints():
    for ex in (lab03.build_plan, lab03.run_engine, lab03.choose_calibration):
        assert len(ex.hints) == 3 and all(len(h) > 40 for h in ex.hints)
