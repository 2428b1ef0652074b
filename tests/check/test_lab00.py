"""Lab 00 checkers judge what the answer does: other correct styles pass, typical mistakes fail with their name."""

import re

import pytest

import trtlab as tl
from trtlab.check import lab00
from trtlab.env import RTX_COMPUTE_CAPABILITIES

from conftest import assert_fails, assert_not_done, assert_passes


def stub(_):
    raise NotImplementedError("exercise not done yet: write your code here")


# ---------------------------------------------------------------- tensor_core_precisions


def reference_precisions(cc):
    """The solution's rule: each threshold passed adds its precisions."""
    found = set()
    for precision, threshold in lab00.THRESHOLD.items():
        if cc >= threshold:
            found.add(precision)
    return found


def as_numbers(cc):
    """Another style: the capability as a number (8.9, 10.0), a list of lower-case names."""
    version = cc[0] + cc[1] / 10
    steps = [(7.0, ["fp16"]), (7.2, ["int8"]), (8.0, ["bf16", "tf32"]), (8.9, ["fp8"]), (10.0, ["fp4"])]
    return [name for since, names in steps if version >= since for name in names]


def by_generation(cc):
    """Another style: generation by generation, newest first, each adding to the one before."""
    generations = [((10, 0), "FP4"), ((8, 9), "FP8"), ((8, 0), "BF16 TF32"), ((7, 2), "INT8"), ((7, 0), "FP16")]
    return frozenset(p for since, names in generations if tuple(cc) >= since for p in names.split())


@pytest.mark.parametrize("answer", [reference_precisions, as_numbers, by_generation],
                         ids=["thresholds", "numbers-lowercase-list", "generations-frozenset"])
def test_tensor_core_precisions_accepts_correct_answers(answer):
    result = assert_passes(lab00.tensor_core_precisions, answer)
    assert "not in the table" in result.message


def strict_comparison(cc):
    return {p for p, t in lab00.THRESHOLD.items() if cc > t}


def compared_as_text(cc):
    text = f"{cc[0]}.{cc[1]}"
    return {p for p, t in lab00.THRESHOLD.items() if text >= f"{t[0]}.{t[1]}"}


def major_minor_separately(cc):
    return {p for p, t in lab00.THRESHOLD.items() if cc[0] >= t[0] and cc[1] >= t[1]}


def table_lookup(cc):
    return set(lab00.TENSOR_CORES[cc][1])


@pytest.mark.parametrize("wrong, message", [
    (strict_comparison, r"7.0 \(V100.*left out \['FP16'\].*Likely cause: a strict comparison.*compare with >="),
    (compared_as_text, r"6.1 \(Tesla P4.*no \['FP4'\].*Likely cause: the capability compared as text "
                       r"\('6.1' >= '10.0'"),
    (major_minor_separately, r"8.0 \(A100.*left out \['INT8'\].*Likely cause: major and minor compared "
                             r"separately \(cc\[1\] >= 2 is false for 8.0\)"),
    (table_lookup, r"6.0 \(Tesla P100.*not in TENSOR_CORES.*raised KeyError.*not from a lookup"),
    (lambda cc: reference_precisions(cc) - {"FP8"}, r"8.9 .*left out \['FP8'\].*Ada \(8.9\) and Hopper"),
    (lambda cc: reference_precisions(cc) | ({"FP8"} if cc == (8, 6) else set()), r"8.6 .*no \['FP8'\]"),
    (lambda cc: {"FP16"} | reference_precisions(cc), "Pascal has no tensor cores"),
    (lambda cc: "FP16", "return a set"),
    (lambda cc: reference_precisions(cc) | {"INT4"}, "not one of"),
    # INT8 from Turing only: misses Jetson Xavier (7.2), which has INT8 tensor cores
    (lambda cc: reference_precisions(cc) - ({"INT8"} if cc < (7, 5) else set()),
     r"7.2 \(Jetson AGX Xavier.*left out \['INT8'\].*Xavier's Volta \(7.2\)"),
    (lambda cc: reference_precisions(cc) | ({"INT8"} if cc == (7, 0) else set()), r"7.0 \(V100.*no \['INT8'\]"),
], ids=["strict-comparison", "compared-as-text", "major-minor-separately", "table-lookup", "no-fp8-on-ada",
        "fp8-on-ampere", "fp16-on-pascal", "a-string", "unknown-name", "int8-from-turing", "int8-on-v100"])
def test_tensor_core_precisions_rejects(wrong, message):
    assert_fails(lab00.tensor_core_precisions, wrong, message)


def test_unlisted_gpus_follow_the_thresholds():
    for cc, (_, expected) in lab00.UNLISTED.items():
        assert cc not in lab00.TENSOR_CORES and reference_precisions(cc) == expected


# ---------------------------------------------------------------- engine_runtime


def reference_runtime(caps):
    if not caps.gpus:
        return "cpu"
    if caps.tensorrt:
        return "tensorrt"
    ok = any(g.compute_capability in RTX_COMPUTE_CAPABILITIES for g in caps.gpus)
    return "tensorrt-rtx" if caps.tensorrt_rtx and ok else "cpu"


def from_properties(caps):
    """Another style: the Capabilities properties instead of the raw fields."""
    if caps.has_gpu and caps.tensorrt is not None:
        return caps.tensorrt.module_name
    return caps.tensorrt_rtx.module_name.replace("_", "-") if caps.rtx_runs_here else "cpu"


def from_a_table(caps):
    """Another style: every candidate in order of preference, the first usable one wins."""
    candidates = [("tensorrt", caps.tensorrt is not None and len(caps.gpus) > 0),
                  ("tensorrt-rtx", caps.tensorrt_rtx is not None and any(
                      tuple(g.compute_capability) in set(tl.env.RTX_COMPUTE_CAPABILITIES) for g in caps.gpus)),
                  ("cpu", True)]
    return next(name for name, usable in candidates if usable)


@pytest.mark.parametrize("answer", [reference_runtime, from_properties, from_a_table],
                         ids=["reference", "properties", "table"])
def test_engine_runtime_accepts_correct_answers(answer):
    assert_passes(lab00.engine_runtime, answer)


def test_engine_runtime_reference_matches_this_machine():
    assert reference_runtime(tl.env.capabilities()) in ("tensorrt", "tensorrt-rtx", "cpu")


def installed_means_usable(caps):
    return "tensorrt" if caps.tensorrt else "tensorrt-rtx" if caps.tensorrt_rtx else "cpu"


def rtx_first(caps):
    if caps.rtx_runs_here:
        return "tensorrt-rtx"
    return reference_runtime(caps)


def no_return_for_cpu(caps):
    if caps.gpus and caps.tensorrt:
        return "tensorrt"
    if caps.rtx_runs_here:
        return "tensorrt-rtx"


@pytest.mark.parametrize("wrong, message", [
    (lambda caps: "tensorrt-rtx" if caps.tensorrt_rtx and caps.gpus and not caps.tensorrt else reference_runtime(caps),
     "H100 with only TensorRT-RTX.*refuses compute capability 9.0"),
    (installed_means_usable, "laptop without a GPU.*you said 'tensorrt-rtx'.*without a GPU nothing executes"),
    (lambda caps: "tensorrt" if caps.tensorrt else reference_runtime(caps), "no GPU.*needs a GPU"),
    (rtx_first, "L4 with TensorRT 10.13 and TensorRT-RTX you said 'tensorrt-rtx'.*test caps.tensorrt first"),
    (lambda caps: "tensorrt" if caps.gpus else "cpu",
     "H100 with only TensorRT-RTX you said 'tensorrt'.*'tensorrt' is not even installed there"),
    (lambda caps: "cpu", "H100 with TensorRT 11.4 you said 'cpu'"),
    (no_return_for_cpu, "returned None: a path through it has no `return`"),
    (lambda caps: caps.tensorrt, "returned None"),
    (lambda caps: caps.tensorrt or "cpu", r"you returned TensorRTFlavour.*\(an object, not its name\)"),
    (lambda caps: "gpu", "return 'tensorrt', 'tensorrt-rtx' or 'cpu'"),
], ids=["ignores-rtx-support-matrix", "installed-means-usable", "ignores-no-gpu", "rtx-first", "any-gpu-runs",
        "hard-coded-cpu", "missing-return", "returns-the-flavour-or-none", "returns-the-flavour", "unknown-name"])
def test_engine_runtime_rejects(wrong, message):
    assert_fails(lab00.engine_runtime, wrong, message)


# ---------------------------------------------------------------- both function exercises: stubs and hangs


@pytest.mark.parametrize("exercise", [lab00.tensor_core_precisions, lab00.engine_runtime],
                         ids=["tensor_core_precisions", "engine_runtime"])
def test_untouched_stub_is_not_done(exercise):
    assert_not_done(exercise, stub)


@pytest.mark.parametrize("exercise", [lab00.tensor_core_precisions, lab00.engine_runtime],
                         ids=["tensor_core_precisions", "engine_runtime"])
def test_hanging_function_fails_within_the_time_limit(exercise, fails_within_limit):
    fails_within_limit(exercise)


# ---------------------------------------------------------------- current_api


CURRENT = {call for call, (ok, _) in lab00.API_CALLS.items() if ok}


@pytest.mark.parametrize("answer", [
    CURRENT,
    sorted(CURRENT),  # a list works as well as a set
    tuple("  " + call.replace(", ", ",  ") + "\n" for call in CURRENT),  # stray spaces and newlines
], ids=["set", "list", "spacing"])
def test_current_api_accepts_the_calls_that_still_work(answer):
    assert_passes(lab00.current_api, answer)


def test_current_api_accepts_execute_v2():
    """execute_v2(bindings) is in TensorRT 10.x and 11.x, not deprecated: a learner who says so is right."""
    answer = {"builder.build_serialized_network(network, config)", "context.execute_async_v3(stream)",
              "config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)", "context.set_input_shape(name, shape)",
              "context.execute_v2(bindings)"}
    assert_passes(lab00.current_api, answer)


def test_every_obsolete_call_names_the_version_that_removed_it():
    for call, (ok, why) in lab00.API_CALLS.items():
        if not ok:
            assert re.search(r"removed in (TensorRT )?1[01]\.0", why), (call, why)


@pytest.mark.parametrize("wrong, message", [
    (CURRENT | {"config.set_flag(BuilderFlag.FP16)"},
     "1 of the 10 calls misjudged.*obsolete: deprecated in 10.12 \\(it still works on 10.x.*removed in 11.0.*AutoCast"),
    (CURRENT - {"context.execute_async_v3(stream)"}, "execute_async_v3.*is current"),
    (CURRENT | {"builder.build_engine(network, config)"}, "removed in TensorRT 10.0"),
    (CURRENT - {"context.execute_v2(bindings)"}, "execute_v2.*is current.*not deprecated"),
    (CURRENT | {"context.execute_async_v2(bindings, stream_handle)"}, "removed in 10.0.*execute_async_v3"),
    (CURRENT | {"config.int8_calibrator = MyCalibrator()"}, "deprecated in 10.1, removed in 11.0.*Q/DQ"),
    # everything a TensorRT 8 tutorial would pick: every mistake is listed, not only the first
    ({"builder.build_engine(network, config)", "config.max_workspace_size = 1 << 30",
      "context.execute_async_v2(bindings, stream_handle)"},
     r"8 of the 10 calls misjudged.*build_serialized_network.*is current.*max_workspace_size.*obsolete"),
    ({"engine.run()"}, "not one of the options: 'engine.run\\(\\)'"),
    (CURRENT - {"context.execute_v2(bindings)"} | {"context.execute_v2(binding)"},
     r"'context.execute_v2\(binding\)' \(did you mean 'context.execute_v2\(bindings\)'\?\)"),
    ("context.execute_async_v3(stream)", "should be a set of the call strings.*got str"),
    (None, "should be a set of the call strings.*got NoneType"),
], ids=["fp16-flag", "no-execute-async-v3", "build-engine", "no-execute-v2", "execute-async-v2", "calibrator",
        "tensorrt-8-tutorial", "not-an-option", "typo", "one-string", "none"])
def test_current_api_rejects(wrong, message):
    assert_fails(lab00.current_api, wrong, message)
