"""trtlab.serve.http_baseline: the plain FastAPI service Lab 06 measures Triton against, with a real uvicorn.

One service per module for the tests that leave it healthy (start ~1–2 s); the tests about stopping start their own.
The model is the toy classifier (``toy_onnx``), the reference is ONNX Runtime in this process.
"""

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from trtlab import serve
from trtlab.runtime import OnnxRuntimeRunner
from trtlab.serve import process as serve_process

SIZE, CLASSES = 8, 4


@pytest.fixture(scope="module")
def api(toy_onnx):
    with serve.HttpBaseline(toy_onnx, model="toy") as service:
        yield service
    assert not service.running


def images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


def reference(toy_onnx, x):
    with OnnxRuntimeRunner(toy_onnx) as runner:
        return runner.infer({"images": x})["logits"]


def _post(url, body, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _gone_within(seconds, pids):
    deadline = time.monotonic() + seconds
    while any(serve_process.alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if serve_process.alive(p)]


# ---------------------------------------------------------------- answers


def test_answers_equal_the_runner_over_the_course_clients(api, toy_onnx):
    x = images(5)
    for_http = serve.infer(api.url, "toy", {"images": x})["logits"]  # binary tensors, config checked first
    np.testing.assert_allclose(for_http, reference(toy_onnx, x), rtol=1e-5, atol=1e-5)
    assert api.url.startswith("127.0.0.1:") and api.running


def test_plain_json_request_gets_a_json_answer(api, toy_onnx):
    x = images(2, seed=1)
    body = json.dumps({"inputs": [{"name": "images", "shape": list(x.shape), "datatype": "FP32",
                                   "data": x.ravel().tolist()}]}).encode()
    status, answer = _post(f"http://{api.url}/v2/models/toy/infer", body)
    assert status == 200, answer
    out = json.loads(answer)["outputs"][0]
    assert out["name"] == "logits" and out["shape"] == [2, CLASSES] and out["datatype"] == "FP32"
    np.testing.assert_allclose(np.array(out["data"]).reshape(2, CLASSES), reference(toy_onnx, x), rtol=1e-5, atol=1e-5)


def test_config_says_no_server_side_batching(api):
    import tritonclient.http as httpclient

    c = httpclient.InferenceServerClient(api.url)
    try:
        config = c.get_model_config("toy")
    finally:
        c.close()
    assert config["max_batch_size"] == 0
    assert config["input"] == [{"name": "images", "data_type": "TYPE_FP32", "dims": [-1, 3, SIZE, SIZE]}]


def test_load_test_drives_it_and_every_execution_is_one_request(api):
    before = api.batch_size_counts()
    result = serve.load_test(api.url, "toy", {"images": images(1)}, concurrency=8, requests=80, protocol="http",
                             warmup=8, label="fastapi")
    assert result and result.requests == 80 and result.throughput > 0 and result.p99_ms >= result.p50_ms
    after = api.batch_size_counts()
    assert after.get(1, 0) - before.get(1, 0) == 88, (before, after)  # 8 warm-up + 80 measured, each alone
    assert set(after) - set(before) <= {1}, "the service must never merge requests into a batch"


# ---------------------------------------------------------------- bad input: HTTP 400 with the reason


@pytest.mark.parametrize("feeds, words", [
    ({"images": images(1)[:, :, :, :5]}, "got shape (1, 3, 8, 5), expected 'images' (N, 3, 8, 8) float32"),
    ({"images": images(1).astype(np.float64)}, "got dtype float64, expected float32 (convert with .astype"),
    ({"image": images(1)}, "unexpected input 'image': this model takes ['images']"),
])
def test_wrong_shape_dtype_or_name_is_a_400_with_the_reason(api, feeds, words):
    """Sent by tritonclient itself (the course's clients would refuse these before sending)."""
    import tritonclient.http as httpclient
    from tritonclient.utils import InferenceServerException

    from trtlab.serve.clients import _inputs, _outputs

    c = httpclient.InferenceServerClient(api.url)
    try:
        with pytest.raises(InferenceServerException) as caught:
            c.infer("toy", _inputs(httpclient, feeds), outputs=_outputs(httpclient, ["logits"]))
    finally:
        c.close()
    text = caught.value.message()
    assert caught.value.status() == "400" and text.startswith("request to model 'toy' refused: "), text
    assert words in text, text
    assert api.running and serve.infer(api.url, "toy", {"images": images(1)})["logits"].shape == (1, CLASSES)


def test_huge_shape_claim_is_refused_and_the_service_keeps_serving(api):
    """The ~100-byte request that aborts the pinned Triton (Lab 06): here a 400, no allocation for the claim."""
    body = json.dumps({"inputs": [{"name": "images", "shape": [1000000000, 3, SIZE, SIZE], "datatype": "FP32",
                                   "data": [0.0]}]}).encode()
    status, answer = _post(f"http://{api.url}/v2/models/toy/infer", body)
    assert status == 400 and "claims shape [1000000000, 3, 8, 8], but carries 1 values" in json.loads(answer)["error"]
    status, answer = _post(f"http://{api.url}/v2/models/toy/infer", b"not json")
    assert status == 400 and "not a KServe v2 inference request" in json.loads(answer)["error"]
    status, answer = _post(f"http://{api.url}/v2/models/other/infer", body)
    assert status == 404 and "serves model 'toy' only" in json.loads(answer)["error"]
    assert serve.infer(api.url, "toy", {"images": images(1)})["logits"].shape == (1, CLASSES)


@pytest.mark.parametrize("header, words", [
    ({"inputs": {"name": "images"}}, "not a KServe v2 inference request"),
    ({"inputs": ["images"]}, "not a KServe v2 inference request"),
    ({"inputs": [{"name": "images", "shape": [1, 3, 8, 8], "datatype": "FP32", "data": ["a"] * 192}]},
     "its data are not FP32 numbers"),
    ({"inputs": [{"name": "images", "shape": [1, 3, 8, 8], "datatype": "FLOAT", "data": [0.0] * 192}]},
     "expected a Triton datatype (e.g. 'FP32')"),
    ({"inputs": [{"name": "images", "shape": [1, 3, 8, 8], "datatype": "FP32", "data": [0.0] * 192}],
      "outputs": [{"name": "probs"}]}, "unknown outputs ['probs']: this model gives ['logits']"),
])
def test_malformed_requests_are_a_400_not_a_crash(api, header, words):
    status, answer = _post(f"http://{api.url}/v2/models/toy/infer", json.dumps(header).encode())
    assert status == 400 and words in json.loads(answer)["error"], answer
    assert api.running


def test_truncated_binary_tensor_is_refused(api):
    header = json.dumps({"inputs": [{"name": "images", "shape": [2, 3, SIZE, SIZE], "datatype": "FP32",
                                     "parameters": {"binary_data_size": 2 * 3 * SIZE * SIZE * 4}}]}).encode()
    status, answer = _post(f"http://{api.url}/v2/models/toy/infer", header + images(1).tobytes(),
                           {"Inference-Header-Content-Length": str(len(header))})
    assert status == 400 and "send the bytes the shape says" in json.loads(answer)["error"]


# ---------------------------------------------------------------- start and stop


def test_taken_port_names_its_holder(toy_onnx):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        with pytest.raises(serve.PortInUse, match=rf"cannot bind 127.0.0.1:{port}: it is taken by pid \d+"):
            serve.HttpBaseline(toy_onnx, model="toy", port=port).start()


def test_missing_model_file_is_a_clear_error(tmp_path):
    with pytest.raises(serve.ServerUnavailable, match="needs the ONNX model .* which is missing"):
        serve.HttpBaseline(tmp_path / "nope.onnx").start()


def test_no_process_survives_a_cell_that_raises(toy_onnx):
    with pytest.raises(RuntimeError, match="the learner's cell failed"):
        with serve.HttpBaseline(toy_onnx, model="toy") as service:
            pid, value = service.process.pid, service._marker
            assert serve_process.marked(value) == [pid]
            raise RuntimeError("the learner's cell failed")
    assert not serve_process.alive(pid) and serve_process.marked(value) == []
    with pytest.raises(serve.ServerUnavailable, match="does not answer"):
        service.batch_size_counts()


_KERNEL = textwrap.dedent("""
    import sys, time
    from trtlab import serve
    service = serve.HttpBaseline(sys.argv[1], model="toy").start()
    print(service.process.pid, flush=True)
    time.sleep(300)
""")


def test_killed_kernel_leaves_no_service(toy_onnx):
    """A notebook kernel SIGKILLed while its service runs (no stop(), no atexit): the service goes with it."""
    kernel = subprocess.Popen([sys.executable, "-c", _KERNEL, str(toy_onnx)], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(kernel.stdout.readline())
        assert serve_process.alive(pid)
    finally:
        kernel.kill()
        kernel.wait()
    assert _gone_within(10, [pid]) == []
