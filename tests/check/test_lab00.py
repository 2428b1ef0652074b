"""Lab 00 checkers accept the right answers and reject wrong ones with a message naming the mistake."""

import re

import pytest

import trtlab as tl
from trtlab.check import lab00
from trtlab.env import RTX_COMPUTE_CAPABILITIES


def reference_precisions(cc):
    return set(lab00.TENSOR_CORES[cc][1])


def test_tensor_core_precisions_accepts_reference():
    assert lab00.tensor_core_precisions.evaluate(reference_precisions)


@pytest.mark.parametrize("wrong, message", [
    (lambda cc: reference_precisions(cc) - {"FP8"}, "8.9 .*left out \\['FP8'\\].*Ada \\(8.9\\) and Hopper"),
    (lambda cc: reference_precisions(cc) | ({"FP8"} if cc == (8, 6) else set()), "8.6 .*no \\['FP8'\\]"),
    (lambda cc: {"FP16"} | reference_precisions(cc), "Pascal has no tensor cores"),
    (lambda cc: "FP16", "return a set"),
    (lambda cc: reference_precisions(cc) | {"INT4"}, "not one of"),
    # INT8 from Turing only: misses Jetson Xavier (7.2), which has INT8 tensor cores
    (lambda cc: reference_precisions(cc) - ({"INT8"} if cc < (7, 5) else set()),
     "7.2 \\(Jetson AGX Xavier.*left out \\['INT8'\\].*Xavier's Volta \\(7.2\\)"),
    # INT8 on V100: Volta 7.0 has FP16 tensor cores only
    (lambda cc: reference_precisions(cc) | ({"INT8"} if cc == (7, 0) else set()), "7.0 \\(V100.*no \\['INT8'\\]"),
])
def test_tensor_core_precisions_rejects(wrong, message):
    result = lab00.tensor_core_precisions.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def reference_runtime(caps):
    if not caps.gpus:
        return "cpu"
    if caps.tensorrt:
        return "tensorrt"
    ok = any(g.compute_capability in RTX_COMPUTE_CAPABILITIES for g in caps.gpus)
    return "tensorrt-rtx" if caps.tensorrt_rtx and ok else "cpu"


def test_engine_runtime_accepts_reference_and_matches_this_machine():
    assert lab00.engine_runtime.evaluate(reference_runtime)
    assert reference_runtime(tl.env.capabilities()) in ("tensorrt", "tensorrt-rtx", "cpu")


@pytest.mark.parametrize("wrong, message", [
    (lambda caps: "tensorrt-rtx" if caps.tensorrt_rtx and caps.gpus and not caps.tensorrt else reference_runtime(caps),
     "H100 with only TensorRT-RTX.*refuses compute capability 9.0"),
    (lambda caps: "tensorrt" if caps.tensorrt else reference_runtime(caps), "no GPU.*needs a GPU"),
    (lambda caps: "gpu", "return 'tensorrt', 'tensorrt-rtx' or 'cpu'"),
])
def test_engine_runtime_rejects(wrong, message):
    result = lab00.engine_runtime.evaluate(wrong)
    assert result.status == "failed" and re.search(message, result.message), result.message


CURRENT = {call for call, (ok, _) in lab00.API_CALLS.items() if ok}


def test_current_api_accepts_the_calls_that_still_work():
    assert lab00.current_api.evaluate(CURRENT)


def test_current_api_accepts_execute_v2():
    """execute_v2(bindings) is in TensorRT 10.x and 11.x, not deprecated: a learner who says so is right."""
    answer = {"builder.build_serialized_network(network, config)", "context.execute_async_v3(stream)",
              "config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)", "context.set_input_shape(name, shape)",
              "context.execute_v2(bindings)"}
    result = lab00.current_api.evaluate(answer)
    assert result.status == "passed", result.message


def test_every_obsolete_call_names_the_version_that_removed_it():
    for call, (ok, why) in lab00.API_CALLS.items():
        if not ok:
            assert re.search(r"removed in (TensorRT )?1[01]\.0", why), (call, why)


@pytest.mark.parametrize("wrong, message", [
    (CURRENT | {"config.set_flag(BuilderFlag.FP16)"},
     "obsolete: deprecated in 10.12 \\(it still works on 10.x.*removed in 11.0.*AutoCast"),
    (CURRENT - {"context.execute_async_v3(stream)"}, "execute_async_v3.*is current"),
    (CURRENT | {"builder.build_engine(network, config)"}, "removed in TensorRT 10.0"),
    (CURRENT - {"context.execute_v2(bindings)"}, "execute_v2.*is current.*not deprecated"),
    (CURRENT | {"context.execute_async_v2(bindings, stream_handle)"}, "removed in 10.0.*execute_async_v3"),
    (CURRENT | {"config.int8_calibrator = MyCalibrator()"}, "deprecated in 10.1, removed in 11.0.*Q/DQ"),
    ({"engine.run()"}, "not one of the options"),
])
def test_current_api_rejects(wrong, message):
    result = lab00.current_api.evaluate(wrong)
    assert result.status == "failed" and re.search(message, result.message), result.message


@pytest.mark.parametrize("exercise", [lab00.tensor_core_precisions, lab00.engine_runtime])
def test_untouched_stub_is_not_done(exercise):
    def stub(_):
        raise NotImplementedError

    assert exercise.evaluate(stub).status == "not done"
