"""Lab 06 exercises: write a Triton ``config.pbtxt`` for an engine's real I/O, send an HTTP inference request,
and read the average batch size out of Triton's Prometheus metrics."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, assert_close, exercise

# ---------------------------------------------------------------- 1. config.pbtxt for a TensorRT plan


def _io_cases() -> list[tuple[str, dict, dict, int]]:
    from trtlab.runtime import TensorSpec

    def specs(*items: tuple[str, tuple, Any]) -> dict:
        return {name: TensorSpec(name, shape, np.dtype(dtype)) for name, shape, dtype in items}

    return [
        ("classifier", specs(("images", (None, 3, 32, 32), np.float32)), specs(("logits", (None, 10), np.float32)), 64),
        ("bert_fp16", specs(("input_ids", (None, 128), np.int32), ("attention_mask", (None, 128), np.int32)),
         specs(("probs", (None, 2), np.float16)), 8),
        ("detector", specs(("pixels", (None, 3, 224, 224), np.float16)),
         specs(("boxes", (None, 100, 4), np.float32), ("scores", (None, 100), np.float32)), 16),
    ]


def _tensor_table(tensors: Any) -> dict[str, tuple[int, list[int]]]:
    return {t.name: (t.data_type, list(t.dims)) for t in tensors}


@exercise("lab06.engine_config", title="config.pbtxt for a TensorRT plan, from the engine's real I/O", hints=(
    "Build a ModelConfig message (tritonclient.grpc.model_config_pb2) and turn it into text with "
    "google.protobuf.text_format.MessageToString. Names, dtypes and shapes come from the TensorSpecs you are given, "
    "never typed by hand.",
    "Three fields matter: platform 'tensorrt_plan', max_batch_size, and one input/output entry per tensor. With "
    "max_batch_size > 0 Triton owns the batch dimension: `dims` are the shape *without* the first (batch) dimension.",
    "for spec in inputs.values(): t = config.input.add(); t.name = spec.name; "
    "t.data_type = mc.DataType.Value(tl.serve.triton_dtype(spec.dtype)); t.dims.extend(spec.shape[1:]); the same for "
    "outputs; a plan runs on the GPU: config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=1)."))
def engine_config(fn: Callable[[str, dict, dict, int], str]) -> str:
    from trtlab import serve

    mc = serve._mc()
    for name, inputs, outputs, max_batch in _io_cases():
        text = fn(name, inputs, outputs, max_batch)
        if not isinstance(text, str):
            raise Mismatch(f"return the config.pbtxt text (a str, e.g. text_format.MessageToString(config)); "
                           f"got {type(text).__name__}")
        try:
            got = serve.config_from_text(text)
        except serve.TritonError as err:
            raise Mismatch(f"model '{name}': {err}") from None
        want = serve.model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch,
                                  platform="tensorrt_plan", kind="KIND_GPU")
        where = f"model '{name}'"
        if got.name not in ("", name):
            raise Mismatch(f"{where}: name '{got.name}', expected '{name}' (the folder name in the repository)")
        if got.platform != "tensorrt_plan" and got.backend != "tensorrt":
            raise Mismatch(f"{where}: platform '{got.platform or got.backend or '(none)'}'; a TensorRT engine needs "
                           "platform: \"tensorrt_plan\"")
        if got.max_batch_size != max_batch:
            raise Mismatch(f"{where}: max_batch_size {got.max_batch_size}, expected {max_batch} (the argument; "
                           "it must not exceed the engine's optimisation profile)")
        for kind, got_t, want_t in (("input", got.input, want.input), ("output", got.output, want.output)):
            g, w = _tensor_table(got_t), _tensor_table(want_t)
            if set(g) != set(w):
                raise Mismatch(f"{where}: {kind} names {sorted(g)}, the engine's are {sorted(w)}. Take the names "
                               "from the specs you are given, never type them by hand")
            for tname, (dtype, dims) in w.items():
                gdtype, gdims = g[tname]
                if gdims == [-1] + dims or (len(gdims) == len(dims) + 1 and gdims[1:] == dims):
                    raise Mismatch(f"{where}: {kind} '{tname}' dims {gdims} include the batch dimension. With "
                                   f"max_batch_size > 0 Triton adds it itself: write dims {dims}")
                if gdims != dims:
                    raise Mismatch(f"{where}: {kind} '{tname}' dims {gdims}, expected {dims} (the spec's shape "
                                   "without its first, batch, dimension; None → -1)")
                if gdtype != dtype:
                    raise Mismatch(f"{where}: {kind} '{tname}' is {mc.DataType.Name(gdtype)}, the engine's is "
                                   f"{mc.DataType.Name(dtype)} (an FP16 engine has FP16 I/O unless built otherwise)")
        kinds = {g.kind for g in got.instance_group}
        if mc.ModelInstanceGroup.KIND_CPU in kinds:
            raise Mismatch(f"{where}: instance_group kind KIND_CPU; a TensorRT plan only runs on a GPU (KIND_GPU)")
    return f"{len(_io_cases())} engines configured (FP32 classifier, FP16 two-input model, two-output detector)"


# ---------------------------------------------------------------- 2. an HTTP inference request


@exercise("lab06.http_request", title="An HTTP inference request with tritonclient", hints=(
    "tritonclient.http.InferenceServerClient(url) talks to the server; client.infer(model, inputs, outputs=...) "
    "sends one request; the result's .as_numpy('logits') gives the answer.",
    "Each input is an InferInput(name, shape, datatype) filled with set_data_from_numpy(array); the datatype is "
    "Triton's name for the array's dtype ('FP32' for float32; tritonclient.utils.np_to_triton_dtype converts).",
    "inp = httpclient.InferInput('images', list(images.shape), 'FP32'); inp.set_data_from_numpy(images); "
    "result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput('logits')]); "
    "return result.as_numpy('logits')"))
def http_request(fn: Callable[[str, str, np.ndarray], np.ndarray], *, server: Any, model: str,
                 input_name: str = "images", output_name: str = "logits") -> str:
    from trtlab import serve

    url = server.http_url if isinstance(server, serve.TritonServer) else str(server)
    shape = _input_shape(server, model, input_name)
    rng = np.random.default_rng(6)
    for batch in (1, 3):
        images = rng.uniform(0, 1, (batch, *shape)).astype(np.float32)
        expected = serve.infer(server, model, {input_name: images}, outputs=(output_name,))[output_name]
        got = fn(url, model, images)
        if got is None:
            raise Mismatch("your function returned None; return result.as_numpy('logits')")
        got = np.asarray(got)
        if got.shape == expected.shape[:1] and got.dtype.kind in "iu":
            raise Mismatch(f"batch of {batch}: you returned class ids {got.tolist()}; return the raw logits "
                           f"{expected.shape} (argmax comes later, on the client's side)")
        if got.shape != expected.shape:
            raise Mismatch(f"batch of {batch}: result shape {got.shape}, expected {expected.shape}: one row of "
                           "logits per image, with the batch dimension kept")
        rows = got.astype(np.float64).sum(axis=-1)
        if np.allclose(rows, 1.0, atol=1e-3) and not np.allclose(expected.sum(axis=-1), 1.0, atol=1e-3):
            raise Mismatch(f"batch of {batch}: your rows sum to 1: those are probabilities (softmax); return the "
                           "logits the server sent")
        assert_close(got, expected, rtol=1e-5, atol=1e-5, name=f"logits for a batch of {batch}")
    return f"your request returned the server's logits for batches of 1 and 3 from {url}"


def _input_shape(server: Any, model: str, input_name: str) -> tuple[int, ...]:
    from trtlab import serve

    c = serve.client(server, protocol="http")
    try:
        config = c.get_model_config(model)
    except Exception as err:  # noqa: BLE001
        raise serve._translate(err, serve._address(server, "http"), model) from err
    finally:
        c.close()
    for tensor in config["input"]:
        if tensor["name"] == input_name:
            return tuple(int(d) for d in tensor["dims"])
    raise ValueError(f"model '{model}' has no input '{input_name}'")


# ---------------------------------------------------------------- 3. average batch size from the metrics


def _metrics(counts: dict[tuple[str, str], tuple[int, int, int]]) -> str:
    """Prometheus text like Triton's: {(model, version): (requests, inferences, executions)}."""
    blocks = {"nv_inference_request_success": "Number of successful inference requests, all batch sizes",
              "nv_inference_count": "Number of inferences performed (does not include cached requests)",
              "nv_inference_exec_count": "Number of model executions performed (does not include cached requests)"}
    lines = []
    for index, (metric, help_text) in enumerate(blocks.items()):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines += [f'{metric}{{model="{m}",version="{v}"}} {c[index]}' for (m, v), c in counts.items()]
    lines += ["# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]", "# TYPE nv_cpu_utilization gauge",
              "nv_cpu_utilization 0.93"]
    return "\n".join(lines) + "\n"


def _metric_cases() -> list[tuple[str, str, str, float, str]]:
    # (before, after, model, expected, what the case catches)
    return [
        (_metrics({("resnet", "1"): (100, 100, 100), ("other", "1"): (0, 0, 0)}),
         _metrics({("resnet", "1"): (1100, 1100, 150), ("other", "1"): (0, 0, 0)}),
         "resnet", 1000 / 50, "the counters are totals since the server started: subtract the 'before' snapshot"),
        (_metrics({("resnet", "1"): (10, 40, 10), ("other", "1"): (5, 5, 5)}),
         _metrics({("resnet", "1"): (110, 440, 30), ("other", "1"): (905, 905, 900)}),
         "resnet", 400 / 20, "requests of 4 images count 4 inferences: use nv_inference_count, not the request "
         "count, and leave the other model's counters out"),
        (_metrics({("resnet", "1"): (0, 0, 0), ("resnet", "2"): (0, 0, 0)}),
         _metrics({("resnet", "1"): (300, 300, 30), ("resnet", "2"): (500, 500, 20)}),
         "resnet", 800 / 50, "two versions are loaded: add up their counters"),
    ]


@exercise("lab06.batch_metrics", title="Average batch size from Triton's Prometheus metrics", hints=(
    "Triton counts, per model and version, the inferences (images) it served and the executions (model runs) it "
    "needed. Dynamic batching is working when one execution serves several inferences.",
    "average batch = Δ nv_inference_count / Δ nv_inference_exec_count between two snapshots, for this model only "
    "(the label model=\"...\"), summed over its versions.",
    "Parse each text with prometheus_client.parser.text_string_to_metric_families (counter samples are named "
    "'<family>_total' there) or split the lines yourself; keep samples whose labels['model'] == model; sum per "
    "metric; return (after_count - before_count) / (after_exec - before_exec)."))
def batch_metrics(fn: Callable[[str, str, str], float]) -> str:
    for before, after, model, expected, lesson in _metric_cases():
        got = fn(before, after, model)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Mismatch(f"return a number (the average batch size); got {got!r}") from None
        if abs(value - 1.0 / expected) < 1e-6 * max(1.0, expected) or (value < 1.0 and expected > 1.0):
            raise Mismatch(f"got {value:.4g}, below 1: you divided executions by inferences; the average batch is "
                           "inferences per execution")
        if abs(value - expected) > 1e-6 * expected:
            raise Mismatch(f"got {value:.4g}, expected {expected:.4g} for model '{model}': {lesson}")
    return "average batch sizes right for deltas, batched requests, other models and two versions"
