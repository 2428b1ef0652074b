"""Lab 00 exercises: what a GPU's compute capability buys you, which runtime a lab will use, and which
TensorRT calls are current."""

from __future__ import annotations

import difflib
from typing import Any, Callable

from trtlab.check import Mismatch, exercise
from trtlab.env import Capabilities, Gpu
from trtlab.i18n import N_, _

__all__ = ["current_api", "engine_runtime", "tensor_core_precisions"]


PRECISIONS = ("FP16", "BF16", "TF32", "INT8", "FP8", "FP4")

#: compute capability → (example GPU, precisions its tensor cores accelerate)
TENSOR_CORES: dict[tuple[int, int], tuple[str, frozenset[str]]] = {
    (6, 1): ("Tesla P4 (Pascal)", frozenset()),
    (7, 0): ("V100 (Volta)", frozenset({"FP16"})),
    (7, 2): ("Jetson AGX Xavier / Xavier NX (Volta)", frozenset({"FP16", "INT8"})),
    (7, 5): ("T4 (Turing)", frozenset({"FP16", "INT8"})),
    (8, 0): ("A100 (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 6): ("RTX 3090 / A10 (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 7): ("Jetson AGX Orin (Ampere)", frozenset({"FP16", "BF16", "TF32", "INT8"})),
    (8, 9): ("L4 / RTX 4090 (Ada)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8"})),
    (9, 0): ("H100 / H200 (Hopper)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8"})),
    (10, 0): ("B200 (Blackwell)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8", "FP4"})),
    (12, 0): ("RTX 5090 / RTX PRO 6000 (Blackwell)", frozenset({"FP16", "BF16", "TF32", "INT8", "FP8", "FP4"})),
}

#: which generation introduced each precision on tensor cores, for the explanations (TensorRT support matrix, 8.x:
#: 7.2 Jetson AGX Xavier has INT8 tensor cores, 7.0 V100 has not; 6.1 P4 runs INT8 with DP4A, without tensor cores)
INTRODUCED = {"FP16": "Volta (7.0)", "INT8": N_("Jetson Xavier's Volta (7.2), then Turing (7.5) on discrete GPUs"),
              "BF16": "Ampere (8.0)", "TF32": "Ampere (8.0)",
              "FP8": N_("Ada (8.9) and Hopper (9.0)"), "FP4": "Blackwell (10.0 / 12.0)"}


#: where each precision's tensor cores begin (the thresholds the checker's explanations point at)
THRESHOLD = {"FP16": (7, 0), "INT8": (7, 2), "BF16": (8, 0), "TF32": (8, 0), "FP8": (8, 9), "FP4": (10, 0)}

#: GPUs not in the table above, so that an answer must follow the rule, not look the table up: a Pascal without
#: tensor cores (P100), Blackwell Ultra (B300) and the GB10 of DGX Spark (CUDA 12.9+ compute capabilities).
UNLISTED: dict[tuple[int, int], tuple[str, frozenset[str]]] = {
    (6, 0): ("Tesla P100 (Pascal)", frozenset()),
    (10, 3): ("B300 (Blackwell Ultra)", TENSOR_CORES[(10, 0)][1]),
    (12, 1): ("GB10 / DGX Spark (Blackwell)", TENSOR_CORES[(12, 0)][1]),
}


def _as_precisions(value: Any) -> set[str]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise Mismatch(_("return a set of precision names like {{'FP16', 'INT8'}}; got {value!r}").format(value=value))
    return {str(v).upper() for v in value}


@exercise("lab00.tensor_core_precisions", title=N_("Compute capability → tensor-core precisions"), hints=(
    N_("Each GPU generation kept what the previous one had and added something. Start from an empty set and add "
    "precisions as the compute capability passes each generation's threshold."),
    N_("Thresholds: Volta 7.0 added FP16, the Jetson Xavier Volta 7.2 INT8 (discrete GPUs got it with Turing 7.5), "
    "Ampere 8.0 BF16 and TF32, Ada 8.9 FP8, Blackwell 10.0 FP4. "
    "Tuples compare element by element in Python: (8, 6) >= (8, 0) is True."),
    N_("found = set(); if cc >= (7, 0): found.add('FP16'); if cc >= (7, 2): found.add('INT8'); "
    "if cc >= (8, 0): found |= {'BF16', 'TF32'}; ... then FP8 at (8, 9) and FP4 at (10, 0)."),
), time_limit_s=30.0)
def tensor_core_precisions(fn: Callable[[tuple[int, int]], Any]) -> str:
    answers = {cc: _as_precisions(fn(cc)) for cc in TENSOR_CORES}
    for cc, (gpu, _unused) in UNLISTED.items():
        try:
            answers[cc] = _as_precisions(fn(cc))
        except (LookupError, ValueError) as err:
            raise Mismatch(_("for compute capability {cc} ({gpu}), which is not in TENSOR_CORES, your function "
                             "raised {error}: {message}. It works only for the GPUs it was shown: derive the answer "
                             "from each precision's threshold, not from a lookup.").format(
                                 cc=_text(cc), gpu=gpu, error=type(err).__name__, message=err)) from None
    for cc, (gpu, expected) in {**TENSOR_CORES, **UNLISTED}.items():
        _compare_precisions(cc, gpu, expected, answers)
    return _("all {count} GPUs mapped correctly, from Pascal to Blackwell, including {unlisted} that are not in "
             "the table.").format(count=len(answers), unlisted=len(UNLISTED))


def _compare_precisions(cc: tuple[int, int], gpu: str, expected: frozenset[str],
                        answers: dict[tuple[int, int], set[str]]) -> None:
    got = answers[cc]
    unknown = got - set(PRECISIONS)
    if unknown:
        raise Mismatch(_("for {cc} you returned {unknown}, which is not one of {known}").format(
            cc=cc, unknown=sorted(unknown), known=list(PRECISIONS)))
    missing, extra = expected - got, got - expected
    name = _("compute capability {cc} ({gpu})").format(cc=_text(cc), gpu=gpu)
    if missing:
        first = sorted(missing, key=PRECISIONS.index)[0]
        raise Mismatch(_("{name}: you left out {missing}. {first} tensor cores arrived with {since}.").format(
            name=name, missing=sorted(missing), first=first, since=_(INTRODUCED[first]))
            + _likely_cause(cc, missing, answers))
    if extra:
        first = sorted(extra, key=PRECISIONS.index)[0]
        raise Mismatch(_("{name}: it has no {extra} tensor cores. {first} arrived with {since}").format(
            name=name, extra=sorted(extra), first=first, since=_(INTRODUCED[first]))
                       + (_(" — Pascal has no tensor cores at all.") if cc < (7, 0) else _("."))
                       + _as_text_cause(cc, {THRESHOLD[p] for p in extra}))


def _strict_everywhere(answers: dict[tuple[int, int], set[str]]) -> bool:
    """Every precision is missing at exactly its threshold and present just above it: `>` where `>=` belongs."""
    for precision, threshold in THRESHOLD.items():
        above = [cc for cc in sorted(answers) if cc > threshold]
        if precision in answers.get(threshold, {precision}) or not above or precision not in answers[above[0]]:
            return False
    return True


def _text(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def _as_text_cause(cc: tuple[int, int], thresholds: set[tuple[int, int]]) -> str:
    """The verdict of every differing threshold flips when the capabilities are compared as strings."""
    if thresholds and all((_text(cc) >= _text(t)) != (cc >= t) for t in thresholds):
        t = min(thresholds)
        as_text = f"'{_text(cc)}' {'>=' if _text(cc) >= _text(t) else '<'} '{_text(t)}'"
        return _(" Likely cause: the capability compared as text ({as_text}, character by character); compare "
                 "tuples, e.g. cc >= {threshold}.").format(as_text=as_text, threshold=t)
    return ""


def _likely_cause(cc: tuple[int, int], missing: frozenset[str], answers: dict[tuple[int, int], set[str]]) -> str:
    """Name the comparison mistake that leaves these precisions out at this compute capability, if one fits."""
    thresholds = {THRESHOLD[p] for p in missing}
    if cc in thresholds and _strict_everywhere(answers):
        return _(" Likely cause: a strict comparison at every threshold (`cc > {cc}`): each precision is missing "
                 "at exactly the capability that introduced it; compare with >=.").format(cc=cc)
    if _as_text_cause(cc, thresholds):
        return _as_text_cause(cc, thresholds)
    if any(cc[0] > t[0] and cc[1] < t[1] for t in thresholds):
        t = next(t for t in sorted(thresholds) if cc[0] > t[0] and cc[1] < t[1])
        return _(" Likely cause: major and minor compared separately (cc[1] >= {minor} is false for {cc}); compare "
                 "the tuple: cc >= {threshold}.").format(minor=t[1], cc=_text(cc), threshold=t)
    return ""


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
L4 = Gpu("NVIDIA L4", (8, 9), 22.0)
RTX3060_LAPTOP = Gpu("NVIDIA GeForce RTX 3060 Laptop GPU", (8, 6), 6.0)

#: what the course does when both runtimes could execute engines (tl.env.runtime_flavour checks tensorrt first)
_BOTH = N_("both could execute engines here; the course takes the `tensorrt` package first when there is a GPU "
           "(tl.env.runtime_flavour checks caps.tensorrt before TensorRT-RTX), so test caps.tensorrt first")

#: (situation, capabilities, runtime that executes Lab 03's engines, why); the texts are translated where shown
SCENARIOS = [
    (N_("a laptop without a GPU, TensorRT-RTX installed"), _caps((), None, "1.7.1"), "cpu",
     N_("without a GPU nothing executes engines: TensorRT-RTX only builds them ahead of time")),
    (N_("an H100 with TensorRT 11.4"), _caps((H100,), "11.4.0", "1.7.1"), "tensorrt",
     N_("TensorRT 10.5 and later (11.x too) run on compute capability 7.5 and newer, Hopper 9.0 included "
        "(10.0 deprecated Volta 7.0 and 10.5 removed it; Pascal is not supported by TensorRT 10)")),
    (N_("an H100 with only TensorRT-RTX"), _caps((H100,), None, "1.7.1"), "cpu",
     N_("TensorRT-RTX refuses compute capability 9.0: its support matrix lists 7.5, 8.6, 8.9, 12.0 and 12.1 "
        "(12.1 experimental; its runtime also accepts 8.0), and no Hopper")),
    (N_("an RTX 4090 with only TensorRT-RTX"), _caps((RTX4090,), None, "1.7.1"), "tensorrt-rtx",
     N_("TensorRT-RTX supports Ada (8.9)")),
    (N_("a Jetson Orin with TensorRT 10.3 (JetPack 6)"), _caps((ORIN,), "10.3.0", None), "tensorrt",
     N_("JetPack 6 ships TensorRT 10.x, which executes engines on Orin (8.7); the course's TensorRT calls exist in "
        "10.x, though trtlab itself needs Python >= 3.11 and JetPack 6's TensorRT bindings are for Python 3.10")),
    (N_("a CPU server with the tensorrt wheel but no GPU"), _caps((), "11.4.0", None), "cpu",
     N_("the tensorrt package installs, but executing an engine needs a GPU")),
    (N_("an L4 with TensorRT 10.13 and TensorRT-RTX"), _caps((L4,), "10.13.0", "1.7.1"), "tensorrt", _BOTH),
    (N_("an RTX 3060 laptop with only TensorRT-RTX"), _caps((RTX3060_LAPTOP,), None, "1.7.1"), "tensorrt-rtx",
     N_("TensorRT-RTX supports Ampere's 8.6 (it is in tl.env.RTX_COMPUTE_CAPABILITIES)")),
    (N_("an RTX 4090 with neither TensorRT nor TensorRT-RTX"), _caps((RTX4090,), None, None), "cpu",
     N_("a GPU alone executes no engine: neither runtime is installed (caps.tensorrt and caps.tensorrt_rtx are "
        "None)")),
]


@exercise("lab00.engine_runtime", title=N_("Read the capability summary: which runtime executes Lab 03?"), hints=(
    N_("Two questions: is there a GPU at all, and does the installed runtime support that GPU?"),
    N_("TensorRT (the `tensorrt` package) 10.5+ and 11 run on every GPU of compute capability 7.5 and newer — all "
    "the GPUs here. TensorRT-RTX runs only on the compute capabilities in tl.env.RTX_COMPUTE_CAPABILITIES — "
    "Hopper (9.0) is not among them."),
    N_("if not caps.gpus: return 'cpu'; if caps.tensorrt: return 'tensorrt'; then check whether any "
    "gpu.compute_capability is in RTX_COMPUTE_CAPABILITIES and caps.tensorrt_rtx is set → 'tensorrt-rtx'; else 'cpu'."),
), time_limit_s=30.0)
def engine_runtime(fn: Callable[[Capabilities], str]) -> str:
    for situation_en, caps, expected, why_en in SCENARIOS:
        situation, why = _(situation_en), _(why_en)
        got = fn(caps)
        if got is None:
            raise Mismatch(_("for {situation} your function returned None: a path through it has no `return` "
                             "(or returns caps.tensorrt / caps.tensorrt_rtx, which are None when not installed). "
                             "Return 'tensorrt', 'tensorrt-rtx' or 'cpu' on every path.").format(situation=situation))
        if got not in ("tensorrt", "tensorrt-rtx", "cpu"):
            raise Mismatch(_("return 'tensorrt', 'tensorrt-rtx' or 'cpu'; for {situation} you returned {got!r}").format(
                situation=situation, got=got) + (_(" (an object, not its name)") if not isinstance(got, str) else ""))
        if got != expected:
            installed = {"tensorrt": caps.tensorrt, "tensorrt-rtx": caps.tensorrt_rtx}
            if got in installed and installed[got] is None:
                why = _("{got!r} is not even installed there (caps.{field} is None); {why}").format(
                    got=got, field=got.replace('-', '_'), why=why)
            raise Mismatch(_("for {situation} you said {got!r}, but it is {expected!r}: {why}.").format(
                situation=situation, got=got, expected=expected, why=why))
    return _("all {count} machines right — including the H100 that TensorRT-RTX cannot run on and the L4 where "
             "both runtimes could.").format(count=len(SCENARIOS))


#: API call → (still works in TensorRT 11?, why — with the version that deprecated or removed it)
API_CALLS = {
    "builder.build_serialized_network(network, config)": (True, N_("the build call since 8.x")),
    "context.execute_async_v3(stream)": (True, N_("the asynchronous inference call of TensorRT 10 and 11")),
    "config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)": (True, N_("the workspace limit since 8.4")),
    "context.set_input_shape(name, shape)": (True, N_("dynamic shapes are set by tensor name")),
    "context.execute_v2(bindings)": (True, N_("it is in 10.x and 11.x and not deprecated: a synchronous call taking "
                                           "device pointers in I/O-tensor order (get_tensor_name(i)); the course "
                                           "uses execute_async_v3, which does not block the host")),
    "builder.build_engine(network, config)": (False, N_("removed in TensorRT 10.0: use build_serialized_network")),
    "config.max_workspace_size = 1 << 30": (False, N_("deprecated in 8.4, removed in 10.0: use set_memory_pool_limit")),
    "context.execute_async_v2(bindings, stream_handle)": (False, N_("removed in 10.0, with execute, execute_async and "
                                                                 "the binding-index queries (get_binding_*): use "
                                                                 "set_tensor_address and execute_async_v3")),
    "config.set_flag(BuilderFlag.FP16)": (False, N_("deprecated in 10.12 (it still works on 10.x, e.g. Jetson), "
                                                 "removed in 11.0: networks are strongly typed; make the ONNX fp16 "
                                                 "with ModelOpt AutoCast")),
    "config.int8_calibrator = MyCalibrator()": (False, N_("deprecated in 10.1, removed in 11.0: quantize the ONNX "
                                                       "with explicit Q/DQ")),
}


@exercise("lab00.current_api", title=N_("Which TensorRT calls are current?"), hints=(
    N_("Five of the ten calls still work. TensorRT 10.0 removed build_engine, max_workspace_size, implicit batch "
    "and the binding-index calls (execute, execute_async, execute_async_v2, get_binding_*) — but not "
    "execute_v2. TensorRT 11.0 removed the precision flags and calibrators (deprecated during 10.x)."),
    N_("Anything about precision in the builder config (FP16 flag, INT8 calibrator) is gone in 11: precision now "
    "comes from the ONNX model's types (strong typing)."),
    N_("Current: build_serialized_network, execute_async_v3, set_memory_pool_limit, set_input_shape, and the "
    "synchronous execute_v2(bindings)."),
))
def current_api(answer: Any) -> str:
    if isinstance(answer, str) or not hasattr(answer, "__iter__"):
        raise Mismatch(_("`current` should be a set of the call strings, like {{'context.execute_async_v3(stream)', "
                         "...}}; got {kind} {answer}").format(kind=type(answer).__name__, answer=f"{answer!r:.80}"))
    chosen = {" ".join(str(a).split()) for a in answer}
    unknown = sorted(chosen - set(API_CALLS))
    if unknown:
        near = {u: difflib.get_close_matches(u, API_CALLS, n=1, cutoff=0.6) for u in unknown}
        listing = "; ".join(f"{u!r}" + (_(" (did you mean {match!r}?)").format(match=m[0]) if m else "")
                            for u, m in near.items())
        raise Mismatch(_("not one of the options: {listing}. Copy the strings from tl.check.lab00.API_CALLS.").format(
            listing=listing))
    wrong = [_("`{call}` is current ({why}); include it.").format(call=call, why=_(why))
             for call, (current, why) in API_CALLS.items() if current and call not in chosen]
    wrong += [_("`{call}` is obsolete: {why}.").format(call=call, why=_(why))
              for call, (current, why) in API_CALLS.items() if not current and call in chosen]
    if wrong:
        raise Mismatch(_("{wrong} of the {count} calls misjudged:").format(wrong=len(wrong), count=len(API_CALLS))
                       + "\n  " + "\n  ".join(wrong))
    return _("right: the build-and-run path of TensorRT 11 (and 10), plus execute_v2, the synchronous call that "
             "10.0 kept when it removed the rest of the bindings API.")
