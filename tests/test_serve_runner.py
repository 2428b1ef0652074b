"""trtlab.serve.runner: a served model behind the course's Runner interface, against the real bundled Triton server.

One server per module. The model is trtlab's toy ONNX classifier; ONNX Runtime in this process is the reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from trtlab import bench, serve
from trtlab.errors import InputMismatch, RequestMismatch, ServerUnavailable, TritonError
from trtlab.runtime import OnnxRuntimeRunner, Runner
from trtlab.serve.runner import TritonRunner, specs_from_config

SIZE, CLASSES, MAX_BATCH = 8, 4, 16
PROTOCOLS = ("http", "grpc")


@pytest.fixture(scope="module")
def server(toy_onnx, tmp_path_factory):
    repo = serve.ModelRepository(tmp_path_factory.mktemp("triton") / "models")
    repo.add_python_runner("toy", toy_onnx, max_batch_size=MAX_BATCH, dynamic_batching=False)
    with serve.TritonServer(repo, models=["toy"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def reference(toy_onnx):
    with OnnxRuntimeRunner(toy_onnx) as ort:
        yield ort


def images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


def _inference_count(server) -> int:
    """Requests the server received for the toy model (successes and failures), from its own statistics."""
    stats = server.statistics("toy")["model_stats"][0]["inference_stats"]
    return int(stats["success"]["count"]) + int(stats["fail"]["count"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_io_comes_from_the_servers_config_and_matches_the_onnx_file(server, reference, protocol):
    with TritonRunner(server, "toy", protocol=protocol) as triton:
        assert isinstance(triton, Runner)
        assert triton.inputs() == reference.inputs() and triton.outputs() == reference.outputs()
        assert triton.name == f"triton-{protocol}" and triton.device == "cpu"
        assert int(triton.config["max_batch_size"]) == MAX_BATCH
        assert "triton-" in repr(triton) and "'toy'" in repr(triton)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_infer_agrees_with_onnx_runtime_over_both_protocols(server, reference, protocol):
    x = images(5)
    with TritonRunner(server.url(protocol), "toy", protocol=protocol, name=f"served-{protocol}") as triton:
        got = triton.infer({"images": x})
        assert triton.name == f"served-{protocol}"
    assert list(got) == ["logits"] and got["logits"].shape == (5, CLASSES)
    np.testing.assert_allclose(got["logits"], reference.infer({"images": x})["logits"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_feeds_are_refused_before_anything_is_sent(server, protocol):
    one = images(1)
    bad = {"wrong name": ({"image": one}, "unexpected inference input 'image'"),
           "wrong dtype": ({"images": one.astype(np.float64)}, "data-type is 'FP64'"),
           "wrong shape": ({"images": one[:, :, :7]}, r"unexpected shape for input 'images'"),
           "batch too big": ({"images": np.broadcast_to(one, (10**9, 3, SIZE, SIZE))}, "batch of 1000000000"),
           "missing input": ({}, r"missing inputs \['images'\]")}
    with TritonRunner(server, "toy", protocol=protocol) as triton:
        before = _inference_count(server)
        real_client, triton._client = triton._client, _NoNetwork()  # anything sent now fails the test
        try:
            for what, (feeds, message) in bad.items():
                with pytest.raises(RequestMismatch, match=f"refused before sending: .*{message}"):
                    triton.infer(feeds)
        finally:
            triton._client = real_client
        assert _inference_count(server) == before, "a refused feed reached the server"
        assert triton.infer({"images": one})["logits"].shape == (1, CLASSES)
    assert issubclass(RequestMismatch, InputMismatch), "callers catching the runners' InputMismatch catch it too"
    assert server.ready("toy")


class _NoNetwork:
    def infer(self, *args, **kwargs):
        raise AssertionError("TritonRunner sent a request it should have refused")

    def close(self):
        pass


def test_missing_model_and_dead_server_fail_at_construction(server):
    with pytest.raises(TritonError, match="no_such_model"):
        TritonRunner(server, "no_such_model")
    dead = f"127.0.0.1:{serve.server._free_port()}"
    for protocol in PROTOCOLS:
        with pytest.raises(ServerUnavailable, match=f"no Triton server answers at {dead}"):
            TritonRunner(dead, "toy", protocol=protocol, timeout_s=5)
    with pytest.raises(ValueError, match="protocol must be 'http' or 'grpc'"):
        TritonRunner(server, "toy", protocol="websocket")


def test_a_closed_runner_says_so_and_sends_nothing(server):
    triton = TritonRunner(server, "toy", protocol="grpc")
    triton.close()
    triton.close()  # idempotent
    with pytest.raises(TritonError, match="is closed; nothing was sent"):
        triton.infer({"images": images(1)})
    assert "(closed)" in repr(triton)


def test_one_comparison_loop_over_local_and_served_runners(server, reference):
    """What Lab 06 does: ONNX Runtime here and Triton over HTTP and gRPC, in one tl.bench.compare loop."""
    runners = [reference, *(TritonRunner(server, "toy", protocol=p) for p in PROTOCOLS)]
    try:
        x = images(4)
        outs = [r.infer({"images": x})["logits"] for r in runners]
        for out in outs[1:]:
            np.testing.assert_allclose(out, outs[0], rtol=1e-5, atol=1e-5)
        results = bench.compare(runners, [1, 4], progress=False, warmup_s=0.0, min_duration_s=0.05, min_iters=3)
    finally:
        for r in runners[1:]:
            r.close()
    assert sorted((r.name, r.batch) for r in results) == sorted(
        (r.name, b) for r in runners for b in (1, 4))
    assert all(r.items_per_s > 0 and r.iterations >= 3 for r in results)


def test_specs_from_config_reads_both_json_forms():
    """HTTP gives dims as numbers, gRPC's JSON as strings; without max_batch_size there is no batch dimension."""
    http = {"max_batch_size": 8, "input": [{"name": "x", "data_type": "TYPE_UINT8", "dims": [4, -1]}]}
    grpc = {"max_batch_size": 8, "input": [{"name": "x", "data_type": "TYPE_UINT8", "dims": ["4", "-1"]}]}
    assert specs_from_config(http, "input") == specs_from_config(grpc, "input")
    spec = specs_from_config(http, "input")["x"]
    assert spec.shape == (None, 4, None) and spec.dtype == np.uint8
    unbatched = {"input": [{"name": "y", "data_type": "TYPE_FP16", "dims": [2, 3]}]}
    assert specs_from_config(unbatched, "input")["y"].shape == (2, 3)
    assert specs_from_config(unbatched, "output") == {}
