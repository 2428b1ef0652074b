"""Lab 06 exercises: write a Triton ``config.pbtxt`` for an engine's real I/O, send an HTTP inference request,
and read the average batch size out of Triton's Prometheus metrics.

Each check calls the learner's function on several inputs (other names, dtypes, batch sizes, models whose names
are prefixes of one another) and, where it can, names the mistake it detected from what the answer computed."""

from __future__ import annotations

import socket
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, assert_close, exercise

# ---------------------------------------------------------------- 1. config.pbtxt for a TensorRT plan


__all__ = ["batch_metrics", "engine_config", "http_request"]


def _io_cases() -> list[tuple[str, dict, dict, int]]:
    """(model name, inputs, outputs, max_batch_size): FP32, FP16, dynamic sequence length with integer inputs,
    several outputs of mixed dtypes; names that are prefixes of one another; max_batch_size varied."""
    from trtlab.runtime import TensorSpec

    def specs(*items: tuple[str, tuple, Any]) -> dict:
        return {name: TensorSpec(name, shape, np.dtype(dtype)) for name, shape, dtype in items}

    return [
        ("classifier", specs(("images", (None, 3, 32, 32), np.float32)), specs(("logits", (None, 10), np.float32)), 64),
        ("classifier_fp16", specs(("images", (None, 3, 224, 224), np.float16)),
         specs(("logits", (None, 1000), np.float16)), 8),
        ("bert_base_uncased_squad2_int8_question_answering_with_dynamic_sequence_length",
         specs(("input_ids", (None, None), np.int64), ("input_ids_mask", (None, None), np.int64),
               ("token_type_ids", (None, None), np.int32)),
         specs(("start_logits", (None, None), np.float32), ("end_logits", (None, None), np.float32)), 16),
        ("detector", specs(("pixels", (None, 3, 640, 640), np.uint8)),
         specs(("boxes", (None, 100, 4), np.float32), ("scores", (None, 100), np.float16),
               ("labels", (None, 100), np.int32), ("valid", (None, 100), np.bool_)), 3),
    ]


def _tensor_list(tensors: Any) -> list[tuple[str, int, list[int]]]:
    return [(t.name, t.data_type, list(t.dims)) for t in tensors]


def _dims_problem(got: list[int], want: list[int]) -> str | None:
    """What is wrong with ``got`` dims (``want``: the spec's shape without batch, -1 for dynamic), or None."""
    if got == want:
        return None
    if len(got) == len(want) + 1 and got[1:] == want:
        return (f"dims {got} include the batch dimension. With max_batch_size > 0 Triton adds it itself: "
                f"write dims {want}")
    if -1 in want and got == [d for d in want if d != -1]:
        return (f"dims {got}: the dynamic dimensions (None in the spec) were dropped. Drop only the first (batch) "
                f"dimension and write -1 for the other dynamic ones: dims {want}")
    if len(got) == len(want) and all(g == w or w == -1 for g, w in zip(got, want)):
        at = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
        return (f"dims {got}: position {at[0]} is dynamic (None in the spec) and must be -1, not {got[at[0]]}: "
                f"dims {want}")
    return f"dims {got}, expected {want} (the spec's shape without its first, batch, dimension; None → -1)"


def _check_tensors(where: str, kind: str, got: list, want: list, other_names: set[str], mc: Any) -> None:
    names = [name for name, _, _ in got]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Mismatch(f"{where}: {kind} {twice} listed more than once; one {kind} entry per tensor")
    wanted = {name: (dtype, dims) for name, dtype, dims in want}
    if set(names) != set(wanted):
        if set(names) == other_names:
            raise Mismatch(f"{where}: your {kind}s are the engine's {'outputs' if kind == 'input' else 'inputs'} "
                           f"{sorted(names)}: inputs and outputs are swapped")
        raise Mismatch(f"{where}: {kind} names {sorted(names)}, the engine's are {sorted(wanted)}. Take the names "
                       "from the specs you are given, never type them by hand")
    for name, dtype, dims in got:
        want_dtype, want_dims = wanted[name]
        problem = _dims_problem(dims, want_dims)
        if problem:
            raise Mismatch(f"{where}: {kind} '{name}' {problem}")
        if dtype != want_dtype:
            typed = " (likely cause: TYPE_FP32 typed by hand)" if mc.DataType.Name(dtype) == "TYPE_FP32" else ""
            raise Mismatch(f"{where}: {kind} '{name}' is {mc.DataType.Name(dtype)}, the spec's dtype is "
                           f"{mc.DataType.Name(want_dtype)}{typed}. Take data_type from spec.dtype "
                           "(tl.serve.triton_dtype(spec.dtype) gives the name)")


@exercise("lab06.engine_config", title="config.pbtxt for a TensorRT plan, from the engine's real I/O", hints=(
    "Build a ModelConfig message (tritonclient.grpc.model_config_pb2) and turn it into text with "
    "google.protobuf.text_format.MessageToString. Names, dtypes and shapes come from the TensorSpecs you are given, "
    "never typed by hand.",
    "Three fields matter: platform 'tensorrt_plan', max_batch_size, and one input/output entry per tensor. With "
    "max_batch_size > 0 Triton owns the batch dimension: `dims` are the shape *without* the first (batch) dimension, "
    "and any other dynamic dimension (None) is written -1.",
    "for spec in inputs.values(): t = config.input.add(); t.name = spec.name; "
    "t.data_type = mc.DataType.Value(tl.serve.triton_dtype(spec.dtype)); "
    "t.dims.extend(-1 if d is None else d for d in spec.shape[1:]); the same for outputs; a plan runs on the GPU: "
    "config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=1)."),
    time_limit_s=20)  # measured < 0.1 s: four small protobuf messages built and parsed
def engine_config(fn: Callable[[str, dict, dict, int], str]) -> str:
    from trtlab import serve

    mc = serve.config_schema()
    cases = _io_cases()
    for name, inputs, outputs, max_batch in cases:
        want = serve.model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch,
                                  platform="tensorrt_plan", kind="KIND_GPU")
        text = fn(name, dict(inputs), dict(outputs), max_batch)  # copies: a learner's pop() cannot change the cases
        if not isinstance(text, str):
            raise Mismatch(f"return the config.pbtxt text (a str, e.g. text_format.MessageToString(config)); "
                           f"got {type(text).__name__}")
        try:
            got = serve.config_from_text(text)
        except serve.TritonError as err:
            raise Mismatch(f"model '{name}': {err}") from None
        where = f"model '{name}'"
        if got.name not in ("", name):
            raise Mismatch(f"{where}: name '{got.name}', expected '{name}' (the `name` argument: the folder name in "
                           "the repository; don't type it)")
        if got.platform not in ("", "tensorrt_plan") or got.backend not in ("", "tensorrt") or not (
                got.platform or got.backend):
            raise Mismatch(f"{where}: platform '{got.platform or '(none)'}', backend '{got.backend or '(none)'}'; "
                           "a TensorRT engine needs platform: \"tensorrt_plan\"")
        if got.max_batch_size != max_batch:
            reason = ("0 means Triton never batches and the dims must then include the batch dimension"
                      if got.max_batch_size == 0 else "take it from the `max_batch_size` argument, don't type it")
            raise Mismatch(f"{where}: max_batch_size {got.max_batch_size}, expected {max_batch}: {reason}")
        want_in, want_out = _tensor_list(want.input), _tensor_list(want.output)
        _check_tensors(where, "input", _tensor_list(got.input), want_in, {n for n, _, _ in want_out}, mc)
        _check_tensors(where, "output", _tensor_list(got.output), want_out, {n for n, _, _ in want_in}, mc)
        for group in got.instance_group:
            if group.kind in (mc.ModelInstanceGroup.KIND_CPU, mc.ModelInstanceGroup.KIND_MODEL):
                raise Mismatch(f"{where}: instance_group kind {mc.ModelInstanceGroup.Kind.Name(group.kind)}; a "
                               "TensorRT plan only runs on a GPU (KIND_GPU)")
    return (f"{len(cases)} engines configured (FP32, FP16, a dynamic sequence length with integer inputs, a detector "
            "with four outputs of mixed dtypes)")


# ---------------------------------------------------------------- 2. an HTTP inference request

# Tolerance for the logits: the checker sends the same float32 bytes to the same model at the same batch size, so the
# answer is bit-identical (measured; tests/check/test_lab06.py asserts it). atol = rtol = 1e-5 (84 float32 ulps of
# 2^-23) is margin for a server that sums in another order: a K-term float32 dot product then moves by at most
# K·2^-24·Σ|w·x|, under 1e-5·|result| for K ≲ 170 when the terms do not cancel. A change to the data itself lands
# outside: an fp16 round trip (2^-11 ≈ 4.9e-4 relative per input) moved the test's toy logits by 6.6e-5, over 3x the
# allowance; a /255 or a normalisation moves them by far more.
_LOGIT_TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compare_logits(got: Any, expected: np.ndarray, batch: int) -> None:
    if got is None:
        raise Mismatch("your function returned None; return the logits (result.as_numpy('logits'))")
    got = np.asarray(got)
    if got.shape == expected.shape[:1] and got.dtype.kind in "iu":
        raise Mismatch(f"batch of {batch}: you returned class ids {got.tolist()}; return the raw logits "
                       f"{expected.shape} (argmax comes later, on the client's side)")
    if got.shape == expected.shape[1:] and batch == 1:
        raise Mismatch(f"batch of 1: result shape {got.shape}, expected {expected.shape}: the batch dimension was "
                       "dropped (a squeeze or [0]); keep one row per image")
    if got.ndim == expected.ndim and got.shape[1:] == expected.shape[1:] and got.shape[0] < batch:
        raise Mismatch(f"batch of {batch}: {got.shape[0]} row(s) of logits, expected {batch}: send the whole "
                       "batch (InferInput shape = list(images.shape)), not only its first image(s)")
    if got.shape != expected.shape:
        raise Mismatch(f"batch of {batch}: result shape {got.shape}, expected {expected.shape}: one row of "
                       "logits per image, with the batch dimension kept")
    rows = got.astype(np.float64).sum(axis=-1)
    if np.allclose(rows, 1.0, atol=1e-3) and not np.allclose(expected.sum(axis=-1), 1.0, atol=1e-3):
        raise Mismatch(f"batch of {batch}: your rows sum to 1: those are probabilities (softmax); return the "
                       "logits the server sent")
    if batch > 1 and not np.allclose(got, expected, rtol=_LOGIT_TOL, atol=_LOGIT_TOL):
        order = [next((j for j in range(batch) if np.allclose(g, expected[j], rtol=_LOGIT_TOL, atol=_LOGIT_TOL)),
                      None) for g in got]
        if sorted(j for j in order if j is not None) == list(range(batch)):
            raise Mismatch(f"batch of {batch}: the right rows in another order ({order}): row i of the answer must "
                           "belong to image i of the batch")
    try:
        assert_close(got, expected, rtol=_LOGIT_TOL, atol=_LOGIT_TOL, name=f"logits for a batch of {batch}")
    except Mismatch as wrong:
        raise Mismatch(f"{wrong} Likely causes (not detected for sure): the images were changed before sending "
                       "(scaled, normalised, cast to float16, transposed), another model or output was asked for, "
                       "or the result was post-processed") from None


def _model_shape(server: Any, model: str, input_name: str) -> tuple[int, tuple[int, ...]]:
    """(max_batch_size, per-image shape of ``input_name``) from the server's config of ``model``."""
    from trtlab import serve

    c = serve.client(server, protocol="http")
    try:
        config = c.get_model_config(model)
    except Exception as err:  # noqa: BLE001
        raise serve.as_triton_error(err, server, model) from err
    finally:
        c.close()
    max_batch = int(config.get("max_batch_size", 0))
    for tensor in config["input"]:
        if tensor["name"] == input_name:
            dims = tuple(int(d) for d in tensor["dims"])
            return max_batch, (dims if max_batch > 0 else dims[1:])
    raise ValueError(f"model '{model}' has no input '{input_name}'")


def _returns_logits(fn: Callable, url: str, model: str, images: np.ndarray, expected: np.ndarray) -> bool:
    """True when ``fn`` answers with logits of the expected shape instead of failing (any error counts as failing)."""
    try:
        got = fn(url, model, images.copy())
    except Exception:  # noqa: BLE001 - an error is the right behaviour here, whichever
        return False
    return got is not None and np.asarray(got).shape == expected.shape


@exercise("lab06.http_request", title="An HTTP inference request with tritonclient", hints=(
    "tritonclient.http.InferenceServerClient(url) talks to the server; client.infer(model, inputs, outputs=...) "
    "sends one request; the result's .as_numpy('logits') gives the answer.",
    "Each input is an InferInput(name, shape, datatype) filled with set_data_from_numpy(array); the datatype is "
    "Triton's name for the array's dtype ('FP32' for float32; tritonclient.utils.np_to_triton_dtype converts). Use "
    "the url, model and images you are given: the check calls your function with other values too.",
    "inp = httpclient.InferInput('images', list(images.shape), 'FP32'); inp.set_data_from_numpy(images); "
    "result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput('logits')]); "
    "return result.as_numpy('logits')"),
    time_limit_s=60)  # measured < 1 s: 3 + 2 learner requests and 3 reference requests to a local server
def http_request(fn: Callable[[str, str, np.ndarray], np.ndarray], *, server: Any, model: str,
                 input_name: str = "images", output_name: str = "logits") -> str:
    from trtlab import serve

    url = server.http_url if isinstance(server, serve.TritonServer) else str(server)
    max_batch, shape = _model_shape(server, model, input_name)
    batches = [b for b in (1, 3, 5) if max_batch == 0 or b <= max_batch]
    rng = np.random.default_rng(6)
    for batch in batches:
        images = rng.standard_normal((batch, *shape)).astype(np.float32)  # values on no grid, signs mixed
        expected = serve.infer(server, model, {input_name: images}, outputs=(output_name,))[output_name]
        _compare_logits(fn(url, model, images.copy()), expected, batch)  # a copy: in-place edits stay the learner's
    bogus = f"{model}_not_on_this_server"  # the real name is its prefix: a name match must be exact
    if _returns_logits(fn, url, bogus, images, expected):
        raise Mismatch(f"asked for model '{bogus}', which the server does not have, your function still returned "
                       "logits: it ignores its `model` argument (a model name typed by hand?). Pass `model` to "
                       "client.infer")
    dead = f"127.0.0.1:{_free_port()}"
    if _returns_logits(fn, dead, model, images, expected):
        raise Mismatch(f"given the url '{dead}', where no server listens, your function still returned logits: it "
                       "ignores its `url` argument (a typed 'localhost:8000', or the notebook's `server.http_url`?). "
                       "Pass `url` to InferenceServerClient")
    return (f"your request returned the server's logits for batches of {', '.join(map(str, batches))} from {url}, "
            "and failed as it should for an unknown model and a dead address")


# ---------------------------------------------------------------- 3. average batch size from the metrics

_Counts = dict[tuple[str, str], tuple[int, int, int]]  # {(model, version): (requests, inferences, executions)}


def _metrics(counts: _Counts) -> str:
    """Prometheus text laid out like Triton's, with the neighbouring metrics a parser must skip."""
    blocks = {"nv_inference_request_success": "Number of successful inference requests, all batch sizes",
              "nv_inference_count": "Number of inferences performed (does not include cached requests)",
              "nv_inference_exec_count": "Number of model executions performed (does not include cached requests)"}
    lines = ["# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
             "# TYPE nv_inference_request_failure counter"]
    lines += [f'nv_inference_request_failure{{model="{m}",reason="BACKEND",version="{v}"}} 0' for m, v in counts]
    for index, (metric, help_text) in enumerate(blocks.items()):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines += [f'{metric}{{model="{m}",version="{v}"}} {c[index]}' for (m, v), c in counts.items()]
    lines += ["# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds",
              "# TYPE nv_inference_request_duration_us counter"]
    lines += [f'nv_inference_request_duration_us{{model="{m}",version="{v}"}} {c[0] * 1733}'
              for (m, v), c in counts.items()]
    lines += ["# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting "
              "execution per-model.", "# TYPE nv_inference_pending_request_count gauge"]
    lines += [f'nv_inference_pending_request_count{{model="{m}",version="{v}"}} 0' for m, v in counts]
    lines += ["# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]", "# TYPE nv_cpu_utilization gauge",
              "nv_cpu_utilization 0.93"]
    return "\n".join(lines) + "\n"


def _metric_cases() -> list[tuple[_Counts, _Counts, str]]:
    """(before, after, model). Every expected value is fractional; other models' names contain the asked one (as a
    prefix or a suffix); requests carry several images in case 2; case 3 has two versions. All counts < 2^24, so a
    float32 parse is exact too."""
    return [
        ({("resnet", "1"): (120, 120, 120), ("resnet50", "1"): (40, 160, 10), ("ensemble_resnet", "1"): (0, 0, 0),
          ("mobilenet_v3", "1"): (0, 0, 0)},
         {("resnet", "1"): (1357, 1357, 217), ("resnet50", "1"): (1040, 4160, 260),
          ("ensemble_resnet", "1"): (50, 50, 50), ("mobilenet_v3", "1"): (77, 616, 11)}, "resnet"),
        ({("resnet50", "1"): (10, 40, 10), ("resnet50_int8", "1"): (0, 0, 0), ("resnet", "1"): (5, 5, 5)},
         {("resnet50", "1"): (110, 440, 31), ("resnet50_int8", "1"): (300, 300, 7), ("resnet", "1"): (905, 905, 900)},
         "resnet50"),
        ({("classifier_ensemble_preprocess_resnet50_fp16", "1"): (0, 0, 0),
          ("classifier_ensemble_preprocess_resnet50_fp16", "2"): (7, 7, 7),
          ("classifier_ensemble_preprocess_resnet50_fp16_dynamic", "1"): (3, 3, 3),
          ("ensemble_classifier_ensemble_preprocess_resnet50_fp16", "1"): (0, 0, 0), ("mobilenet_v3", "1"): (1, 1, 1)},
         {("classifier_ensemble_preprocess_resnet50_fp16", "1"): (310, 310, 33),
          ("classifier_ensemble_preprocess_resnet50_fp16", "2"): (519, 519, 27),
          ("classifier_ensemble_preprocess_resnet50_fp16_dynamic", "1"): (2003, 2003, 100),
          ("ensemble_classifier_ensemble_preprocess_resnet50_fp16", "1"): (64, 64, 64),
          ("mobilenet_v3", "1"): (401, 1601, 51)},
         "classifier_ensemble_preprocess_resnet50_fp16"),
    ]


def _delta(before: _Counts, after: _Counts, keep: Callable[[str, str], bool]) -> np.ndarray:
    """(Δrequests, Δinferences, Δexecutions) summed over the (model, version) pairs ``keep`` accepts."""
    zero = (0, 0, 0)
    return sum((np.subtract(after[k], before.get(k, zero)) for k in after if keep(*k)), np.zeros(3, dtype=np.int64))


def _metric_mistakes(before: _Counts, after: _Counts, model: str) -> list[tuple[float, str]]:
    """What typical mistakes return on this case, each with the message that names it."""
    req, inf, exe = _delta(before, after, lambda m, v: m == model)
    versions = sorted(v for m, v in after if m == model)
    total_after = _delta({}, after, lambda m, v: m == model)
    found = [
        (exe / inf, "you divided executions by inferences; the average batch is inferences per execution"),
        (total_after[1] / total_after[2], "those are the totals since the server started: subtract the 'before' "
         "snapshot from the 'after' one (both counters)"),
        (req / exe, "you counted requests (nv_inference_request_success); a request can carry several images: "
         "use nv_inference_count"),
        (inf / req, "that is images per request (the clients' batch); the server's batch is inferences per "
         "execution (nv_inference_exec_count)"),
        (float(inf // exe), "integer division (//) drops the fraction: divide with /"),
        (float(round(inf / exe)), "the average was rounded to a whole number; return it unrounded"),
    ]
    for keep, what in ((lambda m, v: model in m, "whose name contains"), (lambda m, v: m.startswith(model),
                       "whose name starts with"), (lambda m, v: True, "of every model, not only")):
        _, i, e = _delta(before, after, keep)
        found.append((i / e, f"you added up the counters {what} '{model}'; keep only the samples whose label "
                      f"model is exactly \"{model}\" (a substring or prefix test also matches other models)"))
    if len(versions) > 1:
        for v in versions:
            _, i, e = _delta(before, after, lambda m, ver: m == model and ver == v)
            found.append((i / e, f"that is version {v} alone; model '{model}' has versions {versions} loaded: add "
                          "up their counters"))
        ratios = [i / e for _, i, e in (_delta(before, after, lambda m, ver: m == model and ver == v)
                                        for v in versions)]
        found.append((float(np.mean(ratios)), "you averaged the versions' ratios; add up their counters first, "
                      "then divide once"))
    return [(float(value), message) for value, message in found]


# Tolerance: the expected value is a ratio of two integer deltas below 2^24, exact in float64 up to its one rounding
# (2^-53). A learner who parses into float32 is still exact on the counts and rounds the division once (2^-24 ≈
# 6e-8 relative). rtol = 1e-6 accepts both and is far below the gap to every mistake listed above (checked per case).
_RATIO_RTOL = 1e-6


@exercise("lab06.batch_metrics", title="Average batch size from Triton's Prometheus metrics", hints=(
    "Triton counts, per model and version, the inferences (images) it served and the executions (model runs) it "
    "needed. Dynamic batching is working when one execution serves several inferences.",
    "average batch = Δ nv_inference_count / Δ nv_inference_exec_count between two snapshots, for this model only "
    "(the label model=\"...\" equal to the name, not containing it), summed over its versions.",
    "Parse each text with prometheus_client.parser.text_string_to_metric_families (counter samples are named "
    "'<family>_total' there) or split the lines yourself; keep samples whose labels['model'] == model; sum per "
    "metric; return (after_count - before_count) / (after_exec - before_exec)."),
    time_limit_s=20)  # measured < 0.1 s: three pairs of short metric texts
def batch_metrics(fn: Callable[[str, str, str], float]) -> str:
    cases = _metric_cases()
    for before, after, model in cases:
        _, inf, exe = _delta(before, after, lambda m, v: m == model)
        expected = inf / exe
        got = fn(_metrics(before), _metrics(after), model)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Mismatch(f"return a number (the average batch size); got {got!r}") from None
        if abs(value - expected) <= _RATIO_RTOL * expected:
            continue
        if not np.isfinite(value):
            raise Mismatch(f"model '{model}': got {value}; expected {expected:.6g} (Δ nv_inference_count {inf} / "
                           f"Δ nv_inference_exec_count {exe}). A 0/0: did you read the right counters for this model?")
        for wrong, message in _metric_mistakes(before, after, model):
            if abs(wrong - expected) > _RATIO_RTOL * expected and abs(value - wrong) <= _RATIO_RTOL * abs(wrong):
                raise Mismatch(f"model '{model}': got {value:.6g}, expected {expected:.6g}: {message}")
        raise Mismatch(f"model '{model}': got {value:.6g}, expected {expected:.6g} (Δ nv_inference_count {inf} / "
                       f"Δ nv_inference_exec_count {exe}). Likely causes (not detected for sure): another metric or "
                       "model read, a line parsed wrongly, or the 'before' snapshot not subtracted from both counters")
    return (f"average batch sizes right in {len(cases)} cases: deltas, batched requests, models whose names contain "
            "the asked one, two versions")
