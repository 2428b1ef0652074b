"""Lab 06 checkers judge what the answer does: other correct styles pass, typical mistakes fail with their name.

The HTTP-request exercise runs against the real bundled Triton server (toy model, one server for the module).
"""

from __future__ import annotations

import json
import re
import urllib.request

import numpy as np
import pytest
from google.protobuf import json_format, text_format

from conftest import assert_fails, assert_not_done, assert_passes
from trtlab import serve
from trtlab._toy import toy_classifier_onnx
from trtlab.check import lab06


def stub(*_args, **_kwargs):
    raise NotImplementedError


# ---------------------------------------------------------------- 1. engine_config


def config_with(*, batch_dims=False, none_as=-1, drop_none=False, dtype=None, platform="tensorrt_plan",
                kind="KIND_GPU", max_batch=None, name=None, swap=False, twice=False):
    """The solution's way (a ModelConfig message); each keyword introduces one mistake."""
    def fn(model, inputs, outputs, max_batch_size):
        mc = serve.config_schema()
        config = mc.ModelConfig(name=name or model, platform=platform,
                                max_batch_size=max_batch_size if max_batch is None else max_batch)
        groups = ((config.input, outputs), (config.output, inputs)) if swap else (
            (config.input, inputs), (config.output, outputs))
        for group, specs in groups:
            for spec in list(specs.values()) * (2 if twice else 1):
                t = group.add()
                t.name = spec.name
                t.data_type = mc.DataType.Value(dtype or serve.triton_dtype(spec.dtype))
                shape = spec.shape if batch_dims else spec.shape[1:]
                t.dims.extend(none_as if d is None else d for d in shape if not (drop_none and d is None))
        config.instance_group.add(kind=mc.ModelInstanceGroup.Kind.Value(kind), count=1)
        return text_format.MessageToString(config)
    return fn


def handwritten_text(model, inputs, outputs, max_batch_size):
    """The config typed as text with f-strings; dtype names from tritonclient's own table; no instance_group."""
    from tritonclient.utils import np_to_triton_dtype

    def block(kind, specs):
        entries = []
        for key, spec in specs.items():
            dims = ", ".join(str(-1 if d is None else d) for d in spec.shape[1:])
            entries.append(f'  {{\n    name: "{key}"\n    data_type: TYPE_{np_to_triton_dtype(spec.dtype)}\n'
                           f"    dims: [ {dims} ]\n  }}")
        return f"{kind} [\n" + ",\n".join(entries) + "\n]\n"

    return (f'name: "{model}"\nplatform: "tensorrt_plan"\nmax_batch_size: {max_batch_size}\n'
            + block("input", inputs) + block("output", outputs))


def from_a_dict(model, inputs, outputs, max_batch_size):
    """backend: "tensorrt" instead of the platform, KIND_AUTO, outputs before inputs, built from a dict."""
    def tensors(specs):
        return [{"name": s.name, "data_type": serve.triton_dtype(s.dtype),
                 "dims": [d if d is not None else -1 for d in s.shape][1:]} for s in reversed(list(specs.values()))]

    mc = serve.config_schema()
    config = json_format.ParseDict({"output": tensors(outputs), "input": tensors(inputs), "backend": "tensorrt",
                                    "max_batch_size": max_batch_size, "instance_group": [{"kind": "KIND_AUTO"}]},
                                   mc.ModelConfig())
    return text_format.MessageToString(config, as_one_line=True)


def with_course_helper(model, inputs, outputs, max_batch_size):
    return serve.config_text(serve.model_config(model, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size,
                                                platform="tensorrt_plan", kind="KIND_GPU"))


def test_engine_config_accepts_other_correct_styles():
    for answer in (config_with(), handwritten_text, from_a_dict, with_course_helper):
        assert_passes(lab06.engine_config, answer)


@pytest.mark.parametrize("wrong, reason", [
    (config_with(batch_dims=True), r"'images' dims \[-1, 3, 32, 32\] include the batch dimension.*write dims "
                                   r"\[3, 32, 32\]"),
    (config_with(drop_none=True), r"input 'input_ids' dims \[\]: the dynamic dimensions \(None in the spec\) were "
                                  r"dropped.*dims \[-1\]"),
    (config_with(none_as=0), r"'input_ids' dims \[0\]: position 0 is dynamic.*must be -1, not 0"),
    (config_with(dtype="TYPE_FP32"), r"'images' is TYPE_FP32, the spec's dtype is TYPE_FP16 \(likely cause: "
                                     r"TYPE_FP32 typed by hand\)"),
    (config_with(dtype=None, name=None, max_batch=64), r"model 'classifier_fp16': max_batch_size 64, expected 8: "
                                                       r"take it from the `max_batch_size` argument"),
    (config_with(max_batch=0), r"max_batch_size 0, expected 64: 0 means Triton never batches"),
    (config_with(name="classifier"), r"model 'classifier_fp16': name 'classifier'.*the `name` argument"),
    (config_with(platform="onnxruntime_onnx"), r"platform 'onnxruntime_onnx'.*tensorrt_plan"),
    (config_with(kind="KIND_CPU"), r"KIND_CPU.*only runs on a GPU"),
    (config_with(swap=True), r"your inputs are the engine's outputs \['logits'\]: inputs and outputs are swapped"),
    (config_with(twice=True), r"input \['images'\] listed more than once"),
    (lambda *a: config_with()(*a).replace('name: "images"', 'name: "input"'),
     r"input names \['input'\], the engine's are \['images'\].*never type them by hand"),
    (lambda *a: serve.config_from_text(config_with()(*a)), r"return the config.pbtxt text \(a str"),
    (lambda *a: config_with()(*a).replace("max_batch_size: ", "max_batch: "), r"does not parse"),
])
def test_engine_config_names_each_mistake(wrong, reason):
    assert_fails(lab06.engine_config, wrong, reason)


def test_engine_config_dtype_message_without_a_guess():
    """An int32 written where the spec says int64: the message states both, with no "typed TYPE_FP32" guess."""
    def int64_as_int32(model, inputs, outputs, max_batch_size):
        return config_with()(model, inputs, outputs, max_batch_size).replace("TYPE_INT64", "TYPE_INT32")

    result = assert_fails(lab06.engine_config, int64_as_int32, r"'input_ids' is TYPE_INT32, the spec's dtype is "
                                                               r"TYPE_INT64\. Take data_type from spec.dtype")
    assert "likely cause" not in result.message


def test_engine_config_stub_and_hang(fails_within_limit):
    assert_not_done(lab06.engine_config, stub)
    fails_within_limit(lab06.engine_config)


# ---------------------------------------------------------------- 2. http_request (real server)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab06")
    onnx_path = root / "toy.onnx"
    onnx_path.write_bytes(toy_classifier_onnx(size=8, classes=4))
    repo = serve.ModelRepository(root / "models")
    repo.add_python_runner("toy", onnx_path, max_batch_size=8)
    with serve.TritonServer(repo, models=["toy"]) as srv:
        yield srv


def reference_request(url, model, images):
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(url)
    try:
        inp = httpclient.InferInput("images", list(images.shape), "FP32")
        inp.set_data_from_numpy(images)
        result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput("logits")])
        return result.as_numpy("logits")
    finally:
        client.close()


def json_request(url, model, images):
    """JSON both ways (binary_data=False), dtype from tritonclient's table, every output returned."""
    import tritonclient.http as httpclient
    from tritonclient.utils import np_to_triton_dtype

    with httpclient.InferenceServerClient(url=url, verbose=False) as client:
        request = httpclient.InferInput("images", images.shape, np_to_triton_dtype(images.dtype))
        request.set_data_from_numpy(images, binary_data=False)
        return client.infer(model_name=model, inputs=[request]).as_numpy("logits")


def raw_http_request(url, model, images):
    """No tritonclient: the KServe v2 JSON protocol with urllib."""
    body = {"inputs": [{"name": "images", "shape": list(images.shape), "datatype": "FP32",
                        "data": images.ravel().tolist()}], "outputs": [{"name": "logits"}]}
    request = urllib.request.Request(f"http://{url}/v2/models/{model}/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        out = json.load(response)["outputs"][0]
    return np.asarray(out["data"], dtype=np.float32).reshape(out["shape"])


def test_http_request_accepts_other_correct_styles(server):
    for answer in (reference_request, json_request, raw_http_request,
                   lambda url, model, images: serve.infer(url, model, {"images": images})["logits"]):
        assert_passes(lab06.http_request, answer, server=server, model="toy")
    assert_passes(lab06.http_request, json_request, server=server.http_url, model="toy")


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def fp16_round_trip(u, m, x):
    return reference_request(u, m, x.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("wrong, reason", [
    (lambda u, m, x: reference_request(u, m, x).argmax(axis=1), "class ids.*return the raw logits"),
    (lambda u, m, x: softmax(reference_request(u, m, x)), r"probabilities \(softmax\)"),
    (lambda u, m, x: reference_request(u, m, x[:1]), r"batch of 3: 1 row\(s\) of logits, expected 3: send the "
                                                     r"whole batch"),
    (lambda u, m, x: reference_request(u, m, x).squeeze(), r"batch of 1: .*the batch dimension was dropped"),
    (lambda u, m, x: reference_request(u, m, x[::-1].copy()), r"the right rows in another order \(\[2, 1, 0\]\)"),
    (lambda u, m, x: reference_request(u, m, x / 255), r"outside tolerance.*Likely causes \(not detected for sure\): "
                                                       r"the images were changed before sending"),
    (fp16_round_trip, r"outside tolerance \(atol=1e-05, rtol=1e-05\)"),
    (lambda u, m, x: reference_request(u, "toy", x), r"asked for model 'toy_not_on_this_server'.*ignores its "
                                                     r"`model` argument"),
    (lambda u, m, x: reference_request(u, m, x.astype(np.float64)), r"raised InferenceServerException"),
    (lambda u, m, x: None, "returned None"),
])
def test_http_request_names_each_mistake(server, wrong, reason):
    assert_fails(lab06.http_request, wrong, reason, server=server, model="toy")


def test_http_request_names_an_address_taken_from_the_notebook(server):
    def notebook_address(url, model, images):
        return reference_request(server.http_url, model, images)  # the global `server`, not the argument

    assert_fails(lab06.http_request, notebook_address, r"given the url '127\.0\.0\.1:\d+', where no server "
                 r"listens.*ignores its `url` argument", server=server, model="toy")


def test_http_request_tolerance_admits_repeats_and_refuses_an_fp16_round_trip(server):
    """Two identical requests agree exactly; an fp16 round trip of the images (2^-11 relative per input) lands at
    least twice the allowance away on the toy model (measured: 6.6e-5 against 1.9e-5)."""
    images = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    exact = reference_request(server.http_url, "toy", images)
    assert np.array_equal(exact, reference_request(server.http_url, "toy", images))
    rounded = fp16_round_trip(server.http_url, "toy", images)
    allowed = lab06._LOGIT_TOL + lab06._LOGIT_TOL * np.abs(exact)
    assert (np.abs(rounded - exact) / allowed).max() > 2


def test_http_request_stub_and_hang(server, fails_within_limit):
    assert_not_done(lab06.http_request, stub, server=server, model="toy")
    fails_within_limit(lab06.http_request, server=server, model="toy")


# ---------------------------------------------------------------- 3. batch_metrics


def samples(text, metric):
    """{(model, version): value} for ``metric``, labels parsed with a regular expression (any label order)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(metric + "{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            out[(labels["model"], labels.get("version", ""))] = float(line.rsplit(" ", 1)[1])
    return out


def total(text, metric, model, match=lambda label, model: label == model):
    return sum(v for (m, _), v in samples(text, metric).items() if match(m, model))


def delta(before, after, metric, model, **kw):
    return total(after, metric, model, **kw) - total(before, metric, model, **kw)


def hand_parser(before, after, model):
    return delta(before, after, "nv_inference_count", model) / delta(before, after, "nv_inference_exec_count", model)


def with_course_parser(before, after, model):
    b, a = serve.parse_metrics(before), serve.parse_metrics(after)
    return ((a[("nv_inference_count", model)] - b[("nv_inference_count", model)])
            / (a[("nv_inference_exec_count", model)] - b[("nv_inference_exec_count", model)]))


def float32_numpy(before, after, model):
    """Counts parsed into float32 arrays, the division in float32: within the stated tolerance."""
    def counts(text):
        return np.array([total(text, m, model) for m in ("nv_inference_count", "nv_inference_exec_count")],
                        dtype=np.float32)
    d = counts(after) - counts(before)
    return d[0] / d[1]


def test_batch_metrics_accepts_other_correct_styles():
    for answer in (serve.average_batch_size, hand_parser, with_course_parser, float32_numpy):
        assert_passes(lab06.batch_metrics, answer)


def last_version_only(before, after, model):
    def last(text, metric):
        return [v for (m, _), v in samples(text, metric).items() if m == model][-1]
    return ((last(after, "nv_inference_count") - last(before, "nv_inference_count"))
            / (last(after, "nv_inference_exec_count") - last(before, "nv_inference_exec_count")))


def substring(before, after, model):
    def contains(label, name):
        return name in label
    return (delta(before, after, "nv_inference_count", model, match=contains)
            / delta(before, after, "nv_inference_exec_count", model, match=contains))


def line_prefix(before, after, model):
    """`'model="resnet' in line`: the closing quote forgotten, so "resnet50" matches "resnet"."""
    def tot(text, metric):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(metric) and f'model="{model}' in line)
    return ((tot(after, "nv_inference_count{") - tot(before, "nv_inference_count{"))
            / (tot(after, "nv_inference_exec_count{") - tot(before, "nv_inference_exec_count{")))


@pytest.mark.parametrize("wrong, reason", [
    (lambda b, a, m: total(a, "nv_inference_count", m) / total(a, "nv_inference_exec_count", m),
     "totals since the server started: subtract the 'before'"),
    (lambda b, a, m: delta(b, a, "nv_inference_request_success", m) / delta(b, a, "nv_inference_exec_count", m),
     r"model 'resnet50'.*you counted requests.*use nv_inference_count"),
    (lambda b, a, m: delta(b, a, "nv_inference_count", m) / delta(b, a, "nv_inference_request_success", m),
     r"images per request \(the clients' batch\)"),
    (substring, r"got 13.3174, expected 12.7526: you added up the counters whose name contains 'resnet'"),
    (line_prefix, r"got 15.0922.*whose name starts with 'resnet'; keep only the samples whose label model is "
                  r"exactly \"resnet\""),
    (lambda b, a, m: delta(b, a, "nv_inference_count", m, match=lambda *_: True)
     / delta(b, a, "nv_inference_exec_count", m, match=lambda *_: True), r"of every model, not only 'resnet'"),
    (last_version_only, r"that is version 2 alone.*add up their counters"),
    (lambda b, a, m: 1 / hand_parser(b, a, m), "divided executions by inferences"),
    (lambda b, a, m: delta(b, a, "nv_inference_count", m) // delta(b, a, "nv_inference_exec_count", m),
     r"got 12, expected 12.7526: integer division \(//\)"),
    (lambda b, a, m: round(hand_parser(b, a, m)), r"got 13, expected 12.7526: .*rounded"),
    (lambda b, a, m: hand_parser(b, a, m) * 1.01, r"Likely causes \(not detected for sure\)"),
    (lambda b, a, m: f"{hand_parser(b, a, m):.1f} images", "return a number"),
    (lambda b, a, m: 12.75257731958763, r"model 'resnet50': got 12.7526, expected 19.0476"),  # hard-coded
])
def test_batch_metrics_names_each_mistake(wrong, reason):
    assert_fails(lab06.batch_metrics, wrong, reason)


def test_batch_metrics_averaged_versions_named():
    def mean_of_versions(before, after, model):
        a, b = samples(after, "nv_inference_count"), samples(before, "nv_inference_count")
        ae, be = samples(after, "nv_inference_exec_count"), samples(before, "nv_inference_exec_count")
        keys = [k for k in a if k[0] == model]
        return float(np.mean([(a[k] - b[k]) / (ae[k] - be[k]) for k in keys]))

    assert_fails(lab06.batch_metrics, mean_of_versions, r"averaged the versions' ratios")


def test_batch_metrics_cases_separate_every_mistake_from_the_answer():
    """Each case's expected value is fractional, and no listed mistake lands within the tolerance of it by chance
    on the case meant to catch it (checked: at least one case separates each mistake)."""
    separated = set()
    for before, after, model in lab06._metric_cases():
        _, inf, exe = lab06._delta(before, after, lambda m, v: m == model)
        expected = inf / exe
        assert expected != round(expected)
        for value, message in lab06._metric_mistakes(before, after, model):
            if abs(value - expected) > 10 * lab06._RATIO_RTOL * expected:
                separated.add(message.split(";")[0].split(":")[0][:40])
    assert len(separated) >= 10, separated


def test_batch_metrics_stub_and_hang(fails_within_limit):
    assert_not_done(lab06.batch_metrics, stub)
    fails_within_limit(lab06.batch_metrics)
