"""Lab 00 exercises: what a GPU's compute capability buys you, which runtime a lab will use, and which
TensorRT calls are current."""

from __future__ import annotations

from typing import Any, Callable

from trtlab.check import Mismatch, exercise
from trtlab.env import Capabilities, Gpu

PRECISIONS = ("FP16", "BF16", "TF32", "INT8", "FP8", "FP4")

#: compute capability → (example GPU, precisions its tensor cores accelerate)
TENSOR_CORES: dict[tuple[int, int], tuple[str, frozenset[str]]] = {
    (6, 1): ("Tesla P4 (Pascal)", frozenset()),
    (7, 0): ("V100 (Volta)", frozenset({"FP16"})),
    (7, 5): ("T4 (Turing)", frozenset({"FP16", "INT8"})),
    (8, 0): ("A100 (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 6): ("RTX 3090 / A10 (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 7): ("Jetson AGX Orin (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 9): ("L4 / RTX 4090 (Ada)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8"})),
    (9, 0): ("H100 / H200 (Hopper)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8"})),
    (10, 0): ("B200 (Blackwell)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8", "FP4"})),
    (12, 0): ("RTX 5090 / RTX PRO 6000 (Blackwell)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8", "FP4"})),
}

#: which generation introduced each precision on tensor cores, for the explanations
INTRODUCED = {"FP16": "Volta (7.0)", "INT8": "Turing (7.5)", "BF16": "Ampere (8.0)", "TF32": "Ampere (8.0)",
              "FP8": "Ada (8.9) and Hopper (9.0)", "FP4": "Blackwell (10.0 / 12.0)"}


def _as_precisions(value: Any) -> set[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise Mismatch(f"return a set of precision names like {{'FP16', 'INT8'}}; got {value!r}")
    return {str(v).upper() for v in value}


@exercise("lab00.tensor_core_precisions", title="Compute capability → tensor-core precisions", hints=(
    "Each GPU generation kept what the previous one had and added something. Start from an empty set and add "
    "precisions as the compute capability passes each generation's threshold.",
    "Thresholds: Volta 7.0 added FP16, Turing 7.5 INT8, Ampere 8.0 BF16 and TF32, Ada 8.9 FP8, Blackwell 10.0 FP4. "
    "Tuples compare element by element in Python: (8, 6) >= (8, 0) is True.",
    "found = set(); if cc >= (7, 0): found.add('FP16'); if cc >= (7, 5): found.add('INT8'); "
    "if cc >= (8, 0): found |= {'BF16', 'TF32'}; ... then FP8 at (8, 9) and FP4 at (10, 0).",
))
def tensor_core_precisions(fn: Callable[[tuple[int, int]], Any]) -> str:
    for cc, (gpu, expected) in TENSOR_CORES.items():
        got = _as_precisions(fn(cc))
        unknown = got - set(PRECISIONS)
        if unknown:
            raise Mismatch(f"for {cc} you returned {sorted(unknown)}, which is not one of {list(PRECISIONS)}")
        missing, extra = expected - got, got - expected
        if missing:
            first = sorted(missing, key=PRECISIONS.index)[0]
            raise Mismatch(f"compute capability {cc[0]}.{cc[1]} ({gpu}): you left out {sorted(missing)}. "
                           f"{first} tensor cores arrived with {INTRODUCED[first]}.")
        if extra:
            first = sorted(extra, key=PRECISIONS.index)[0]
            raise Mismatch(f"compute capability {cc[0]}.{cc[1]} ({gpu}): it has no {sorted(extra)} tensor cores. "
                           f"{first} arrived with {INTRODUCED[first]}"
                           + (" — Pascal has no tensor cores at all." if cc < (7, 0) else "."))
    return f"all {len(TENSOR_CORES)} GPUs mapped correctly, from Pascal to Blackwell."


def _caps(gpus: tuple[Gpu, ...], tensorrt: str | None, rtx: str | None) -> Capabilities:
    from packaging.version import Version

    from trtlab._compat import TensorRTFlavour

    return Capabilities(
        gpus=gpus, torch_cuda=bool(gpus), cupy_runs_kernels=bool(gpus), nvrtc_compiles=True,
        tensorrt=TensorRTFlavour("tensorrt", Version(tensorrt)) if tensorrt else None,
        tensorrt_rtx=TensorRTFlavour("tensorrt_rtx", Version(rtx)) if rtx else None,
        onnxruntime_providers=("CPUExecutionProvider",), triton_server=None)


H100 = Gpu("NVIDIA H100 80GB HBM3", (9, 0), 79.2)
RTX4090 = Gpu("NVIDIA GeForce RTX 4090", (8, 9), 24.0)
ORIN = Gpu("Orin (nvgpu)", (8, 7), 61.4)

#: (situation, capabilities, runtime that executes Lab 03's engines, why)
SCENARIOS = [
    ("a laptop without a GPU, TensorRT-RTX installed", _caps((), None, "1.7.1"), "cpu",
     "without a GPU nothing executes engines: TensorRT-RTX only builds them ahead of time"),
    ("an H100 with TensorRT 11.4", _caps((H100,), "11.4.0", "1.7.1"), "tensorrt",
     "TensorRT runs on every data-centre GPU"),
    ("an H100 with only TensorRT-RTX", _caps((H100,), None, "1.7.1"), "cpu",
     "TensorRT-RTX refuses compute capability 9.0 (it supports 7.5, 8.0, 8.6, 8.9, 12.0, 12.1)"),
    ("an RTX 4090 with only TensorRT-RTX", _caps((RTX4090,), None, "1.7.1"), "tensorrt-rtx",
     "TensorRT-RTX supports Ada (8.9)"),
    ("a Jetson Orin with TensorRT 10.3 (JetPack 6)", _caps((ORIN,), "10.3.0", None), "tensorrt",
     "Jetson runs TensorRT 10.x; the course code is compatible with it"),
    ("a CPU server with the tensorrt wheel but no GPU", _caps((), "11.4.0", None), "cpu",
     "the tensorrt package installs, but executing an engine needs a GPU"),
]


@exercise("lab00.engine_runtime", title="Read the capability summary: which runtime executes Lab 03?", hints=(
    "Two questions: is there a GPU at all, and does the installed runtime support that GPU?",
    "TensorRT (the `tensorrt` package) runs on any NVIDIA GPU it was installed for. TensorRT-RTX runs only on the "
    "compute capabilities in tl.env.RTX_COMPUTE_CAPABILITIES — Hopper (9.0) is not among them.",
    "if not caps.gpus: return 'cpu'; if caps.tensorrt: return 'tensorrt'; then check whether any "
    "gpu.compute_capability is in RTX_COMPUTE_CAPABILITIES and caps.tensorrt_rtx is set → 'tensorrt-rtx'; else 'cpu'.",
))
def engine_runtime(fn: Callable[[Capabilities], str]) -> str:
    for situation, caps, expected, why in SCENARIOS:
        got = fn(caps)
        if got not in ("tensorrt", "tensorrt-rtx", "cpu"):
            raise Mismatch(f"return 'tensorrt', 'tensorrt-rtx' or 'cpu'; for {situation} you returned {got!r}")
        if got != expected:
            raise Mismatch(f"for {situation} you said {got!r}, but it is {expected!r}: {why}.")
    return f"all {len(SCENARIOS)} machines right — including the H100 that TensorRT-RTX cannot run on."


#: API call → (current in TensorRT 11?, why)
API_CALLS = {
    "builder.build_serialized_network(network, config)": (True, "the build call since 8.x"),
    "context.execute_async_v3(stream)": (True, "the inference call of TensorRT 10 and 11"),
    "config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)": (True, "the workspace limit since 8.4"),
    "context.set_input_shape(name, shape)": (True, "dynamic shapes are set by tensor name"),
    "builder.build_engine(network, config)": (False, "removed in TensorRT 10.0: use build_serialized_network"),
    "config.max_workspace_size = 1 << 30": (False, "removed in 10.0: use set_memory_pool_limit"),
    "config.set_flag(BuilderFlag.FP16)": (False, "removed in 11: networks are strongly typed; make the ONNX "
                                                 "fp16 with ModelOpt AutoCast"),
    "config.int8_calibrator = MyCalibrator()": (False, "removed in 11: quantize the ONNX with explicit Q/DQ"),
    "context.execute_v2(bindings)": (False, "the bindings API was removed in 10.0: use tensor names and "
                                            "execute_async_v3"),
}


@exercise("lab00.current_api", title="Which TensorRT calls are current?", hints=(
    "Four of the nine calls are current. TensorRT 10 removed the old bindings/implicit-batch API; TensorRT 11 "
    "removed the precision flags and calibrators.",
    "Anything about precision in the builder config (FP16 flag, INT8 calibrator) is gone in 11: precision now "
    "comes from the ONNX model's types (strong typing).",
    "Current: build_serialized_network, execute_async_v3, set_memory_pool_limit, set_input_shape.",
))
def current_api(answer: Any) -> str:
    chosen = {str(a).strip() for a in answer} if not isinstance(answer, str) else {answer}
    unknown = chosen - set(API_CALLS)
    if unknown:
        raise Mismatch(f"{sorted(unknown)} is not one of the options; copy the strings from API_CALLS")
    for call, (current, why) in API_CALLS.items():
        if current and call not in chosen:
            raise Mismatch(f"`{call}` is current ({why}); include it.")
        if not current and call in chosen:
            raise Mismatch(f"`{call}` is obsolete: {why}.")
    return "right: those four calls are the whole build-and-run path of TensorRT 11 (and 10)."
