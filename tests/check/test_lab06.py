"""Lab 06 checkers accept the right answers and reject wrong ones with a message naming the mistake.

The HTTP-request exercise runs against the real bundled Triton server (toy model, one server for the module).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from google.protobuf import text_format

from trtlab import serve
from trtlab._toy import toy_classifier_onnx
from trtlab.check import lab06

# ---------------------------------------------------------------- 1. engine_config


def reference_config(name, inputs, outputs, max_batch_size):
    mc = serve._mc()
    config = mc.ModelConfig(name=name, platform="tensorrt_plan", max_batch_size=max_batch_size)
    for group, specs in ((config.input, inputs), (config.output, outputs)):
        for spec in specs.values():
            t = group.add()
            t.name = spec.name
            t.data_type = mc.DataType.Value(serve.triton_dtype(spec.dtype))
            t.dims.extend(-1 if d is None else d for d in spec.shape[1:])
    config.instance_group.add(kind=mc.ModelInstanceGroup.KIND_GPU, count=1)
    return text_format.MessageToString(config)


def with_batch_dim(name, inputs, outputs, max_batch_size):
    text = reference_config(name, inputs, outputs, max_batch_size)
    config = serve.config_from_text(text)
    for t in list(config.input) + list(config.output):
        t.dims.insert(0, -1)
    return text_format.MessageToString(config)


def hand_typed_names(name, inputs, outputs, max_batch_size):
    return reference_config(name, {"input": next(iter(inputs.values()))}, outputs, max_batch_size).replace(
        f'name: "{next(iter(inputs))}"', 'name: "input"')


def all_fp32(name, inputs, outputs, max_batch_size):
    return reference_config(name, inputs, outputs, max_batch_size).replace("TYPE_FP16", "TYPE_FP32")


def onnx_platform(name, inputs, outputs, max_batch_size):
    return reference_config(name, inputs, outputs, max_batch_size).replace("tensorrt_plan", "onnxruntime_onnx")


def cpu_instances(name, inputs, outputs, max_batch_size):
    return reference_config(name, inputs, outputs, max_batch_size).replace("KIND_GPU", "KIND_CPU")


def fixed_max_batch(name, inputs, outputs, max_batch_size):
    return reference_config(name, inputs, outputs, 64)


def test_engine_config_accepts_reference():
    assert lab06.engine_config.evaluate(reference_config)


@pytest.mark.parametrize("wrong, message", [
    (with_batch_dim, r"include the batch dimension.*write dims \[3, 32, 32\]"),
    (hand_typed_names, r"input names \['input'\], the engine's are \['images'\].*never type them by hand"),
    (all_fp32, r"'probs' is TYPE_FP32, the engine's is TYPE_FP16"),
    (onnx_platform, r"platform 'onnxruntime_onnx'.*tensorrt_plan"),
    (cpu_instances, r"KIND_CPU.*only runs on a GPU"),
    (fixed_max_batch, r"max_batch_size 64, expected 8"),
    (lambda *a: serve.config_from_text(reference_config(*a)), r"return the config.pbtxt text \(a str"),
    (lambda *a: reference_config(*a).replace("max_batch_size: ", "max_batch: "), r"does not parse"),
])
def test_engine_config_rejects(wrong, message):
    result = lab06.engine_config.evaluate(wrong)
    assert result.status == "failed" and re.search(message, result.message), result.message


# ---------------------------------------------------------------- 3. batch_metrics


def reference_average(before, after, model):
    return serve.average_batch_size(before, after, model)


def _sum(text, metric, model=None):
    total = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and (model is None or f'model="{model}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _last(text, metric, model):
    value = 0.0
    for line in text.splitlines():
        if line.startswith(metric + "{") and f'model="{model}"' in line:
            value = float(line.rsplit(" ", 1)[1])
    return value


def test_batch_metrics_accepts_reference_and_a_hand_parser():
    assert lab06.batch_metrics.evaluate(reference_average)
    assert lab06.batch_metrics.evaluate(lambda b, a, m: (_sum(a, "nv_inference_count", m) - _sum(b, "nv_inference_count", m))
                                        / (_sum(a, "nv_inference_exec_count", m) - _sum(b, "nv_inference_exec_count", m)))


@pytest.mark.parametrize("wrong, message", [
    (lambda b, a, m: _sum(a, "nv_inference_count", m) / _sum(a, "nv_inference_exec_count", m),
     "totals since the server started: subtract the 'before'"),
    (lambda b, a, m: (_sum(a, "nv_inference_request_success", m) - _sum(b, "nv_inference_request_success", m))
     / (_sum(a, "nv_inference_exec_count", m) - _sum(b, "nv_inference_exec_count", m)),
     "use nv_inference_count, not the request count"),
    (lambda b, a, m: (_sum(a, "nv_inference_count") - _sum(b, "nv_inference_count"))
     / (_sum(a, "nv_inference_exec_count") - _sum(b, "nv_inference_exec_count")), "leave the other model's counters out"),
    (lambda b, a, m: (_last(a, "nv_inference_count", m) - _last(b, "nv_inference_count", m))
     / (_last(a, "nv_inference_exec_count", m) - _last(b, "nv_inference_exec_count", m)), "add up their counters"),
    (lambda b, a, m: 1 / reference_average(b, a, m), "divided executions by inferences"),
    (lambda b, a, m: "about 20", "return a number"),
])
def test_batch_metrics_rejects(wrong, message):
    result = lab06.batch_metrics.evaluate(wrong)
    assert result.status == "failed" and re.search(message, result.message), result.message


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
    inp = httpclient.InferInput("images", list(images.shape), "FP32")
    inp.set_data_from_numpy(images)
    result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput("logits")])
    client.close()
    return result.as_numpy("logits")


def test_http_request_accepts_reference(server):
    assert lab06.http_request.evaluate(reference_request, server=server, model="toy")
    assert lab06.http_request.evaluate(reference_request, server=server.http_url, model="toy")


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("wrong, message", [
    (lambda u, m, x: reference_request(u, m, x).argmax(axis=1), "class ids.*return the raw logits"),
    (lambda u, m, x: softmax(reference_request(u, m, x)), "probabilities \\(softmax\\)"),
    (lambda u, m, x: reference_request(u, m, x[:1]), r"shape \(1, 4\), expected \(3, 4\)"),
    (lambda u, m, x: reference_request(u, m, x[::-1].copy()), r"outside tolerance"),
    (lambda u, m, x: reference_request(u, m, x.astype(np.float64)), r"raised InferenceServerException"),
    (lambda u, m, x: None, "returned None"),
])
def test_http_request_rejects(server, wrong, message):
    result = lab06.http_request.evaluate(wrong, server=server, model="toy")
    assert result.status == "failed" and re.search(message, result.message), result.message


def test_untouched_stubs_are_not_done(server):
    def stub(*_):
        raise NotImplementedError

    assert lab06.engine_config.evaluate(stub).status == "not done"
    assert lab06.batch_metrics.evaluate(stub).status == "not done"
    assert lab06.http_request.evaluate(stub, server=server, model="toy").status == "not done"
