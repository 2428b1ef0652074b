"""trtlab.serve against the real Triton Inference Server bundled in nvidia-pytriton (CPU, Python backend).

One server per module (start ~1 s, stop ~2–5 s). The model is trtlab's toy ONNX classifier, so the numbers are
about the server, not the network.
"""

from __future__ import annotations

import glob
import socket

import numpy as np
import pytest

from trtlab import serve
from trtlab.runtime import OnnxRuntimeRunner, TensorSpec
from trtlab.serve.load import _run_coroutine
from trtlab.serve.server import _free_port

SIZE, CLASSES, MAX_BATCH = 8, 4, 16


@pytest.fixture(scope="module")
def repo(toy_onnx, tmp_path_factory):
    repo = serve.ModelRepository(tmp_path_factory.mktemp("triton") / "models")
    repo.add_python_runner("toy", toy_onnx, max_batch_size=MAX_BATCH,
                           dynamic_batching=serve.DynamicBatching(max_queue_delay_us=1000))
    repo.add_onnx("toy_ort", toy_onnx, max_batch_size=MAX_BATCH)  # no onnxruntime backend in the CPU build
    repo.add_preprocess("pre", input_size=(SIZE, SIZE), mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25],
                        max_batch_size=MAX_BATCH)
    repo.add_classifier_ensemble("pipeline", preprocess="pre", classifier="toy", input_size=(SIZE, SIZE),
                                 classes=CLASSES, max_batch_size=MAX_BATCH)
    return repo


@pytest.fixture(scope="module")
def server(repo):
    shm_before = set(glob.glob(serve.SHM_PATTERN))
    with serve.TritonServer(repo, models=["toy"]) as srv:
        yield srv
    assert not srv.running
    assert set(glob.glob(serve.SHM_PATTERN)) - shm_before == set(), "server left /dev/shm regions behind"


def images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


# ---------------------------------------------------------------- configuration (no server)


def test_config_from_real_io_excludes_batch_dimension(toy_onnx):
    inputs, outputs = serve.io_from_onnx(toy_onnx)
    config = serve.model_config("m", inputs=inputs, outputs=outputs, max_batch_size=8, backend="python",
                                dynamic_batching=serve.DynamicBatching((4, 8), 500), instances=2)
    assert [(t.name, list(t.dims)) for t in config.input] == [("images", [3, SIZE, SIZE])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [CLASSES])]
    text = serve.config_text(config)
    assert "TYPE_FP32" in text and "KIND_CPU" in text and "max_queue_delay_microseconds: 500" in text
    again = serve.config_from_text(text)
    assert again == config and list(again.dynamic_batching.preferred_batch_size) == [4, 8]
    assert again.instance_group[0].count == 2


def test_config_without_batching_keeps_all_dims():
    spec = TensorSpec("x", (1, 3, 4, 4), np.dtype(np.float16))
    config = serve.model_config("m", inputs={"x": spec}, outputs={"x": spec}, max_batch_size=0,
                                platform="tensorrt_plan", kind="KIND_GPU")
    assert list(config.input[0].dims) == [1, 3, 4, 4]
    assert "TYPE_FP16" in serve.config_text(config) and "KIND_GPU" in serve.config_text(config)


def test_config_rejects_batching_without_dynamic_batch_dimension():
    spec = TensorSpec("x", (1, 3, 4, 4), np.dtype(np.float32))
    with pytest.raises(serve.InputMismatch, match="no dynamic batch dimension"):
        serve.model_config("m", inputs={"x": spec}, outputs={"x": spec}, max_batch_size=8)


def test_config_parse_error_is_readable():
    with pytest.raises(serve.TritonError, match="does not parse"):
        serve.config_from_text("name: 'm'\nmax_batch_size: eight\n")


# ---------------------------------------------------------------- hand-written config.pbtxt (tl.serve.pbtxt)

TOY_TEXT = f"""# a comment, fields in any order
output [ {{ name: "logits", data_type: TYPE_FP32, dims: [ {CLASSES} ] }} ]
input {{ name: "images" data_type: TYPE_FP32 dims: 3 dims: {SIZE} dims: {SIZE} }}
max_batch_size: 8
backend: "python"
dynamic_batching {{ preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }}
"""


def test_parse_config_styles_agree_and_typos_are_located():
    one_line = serve.parse_config(" ".join(line.split("#")[0] for line in TOY_TEXT.splitlines()))
    assert one_line == serve.parse_config(TOY_TEXT) and list(one_line.input[0].dims) == [3, SIZE, SIZE]
    with pytest.raises(serve.TritonError, match=r"does not parse: 6:20 : .*\"preffered_batch_size\"\. Did you mean "
                                                r"`preferred_batch_size`\?\n  line 6: dynamic_batching \{ preff"):
        serve.parse_config(TOY_TEXT.replace("preferred", "preffered"))
    with pytest.raises(serve.TritonError, match=r"no value named TYPE_FLOAT32\. Did you mean TYPE_FP32\? Allowed: "):
        serve.parse_config(TOY_TEXT.replace("TYPE_FP32", "TYPE_FLOAT32", 1))
    with pytest.raises(serve.TritonError, match="must be text"):
        serve.parse_config(b"max_batch_size: 8")


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("dims: 3 dims", "dims: -1 dims: 3 dims"), r"dims \[-1, 3, 8, 8\] include the batch"),
    (lambda t: t.replace('"images"', '"logits2"').replace('"logits"', '"images"').replace('"logits2"', '"logits"'),
     r"your inputs \['logits'\] are the model's outputs: input and output are swapped"),
    (lambda t: t.replace("[ 4, 8 ]", "[ 4, 16 ]"), r"preferred_batch_size \[16\] above max_batch_size 8"),
    (lambda t: t.replace("max_batch_size: 8", "max_batch_size: 0"), r"dynamic_batching with max_batch_size 0"),
    (lambda t: t + "instance_group [ { kind: KIND_GPU } ]", r"kind KIND_GPU: this model's instances can be KIND_CPU"),
    (lambda t: t.replace(f"dims: [ {CLASSES} ]", f"dims: [ {CLASSES + 1} ]"), rf"dims \[{CLASSES + 1}\], expected"),
])
def test_check_model_config_names_the_mistake(toy_onnx, edit, message):
    inputs, outputs = serve.io_from_onnx(toy_onnx)
    assert serve.check_model_config(TOY_TEXT, inputs=inputs, outputs=outputs).max_batch_size == 8
    with pytest.raises(serve.TritonError, match=message):
        serve.check_model_config(edit(TOY_TEXT), inputs=inputs, outputs=outputs, instance_kinds=("KIND_CPU",))


def test_parse_error_in_chinese_keeps_protobuf_line_and_column():
    """Under set_language("zh_CN") the diagnosis is Chinese, protobuf's own words and line:column stay as they are,
    and the caret still lands under the mistake after the wider Chinese "line" prefix; English again after "en"."""
    from trtlab import i18n

    text = TOY_TEXT.replace("preferred", "preffered")
    try:
        i18n.set_language("zh_CN")
        with pytest.raises(serve.TritonError) as zh:
            serve.parse_config(text)
        message, shown, caret = str(zh.value).split("\n")[-3:]
        assert message.startswith("config.pbtxt 无法解析：6:20 : ") and '"preffered_batch_size"' in message
        assert message.endswith("你是想写 `preferred_batch_size` 吗？"), message
        assert shown.startswith("  第 6 行：") and caret.endswith("^")
        width = sum(2 if "\u4e00" <= c <= "\u9fff" or c == "：" else 1 for c in shown[:shown.index("：") + 1])
        assert shown[shown.index("：") + 1:][len(caret) - 1 - width:].startswith("preffered"), (shown, caret)
        i18n.set_language("en")
        with pytest.raises(serve.TritonError, match=r"does not parse: 6:20 : .*Did you mean `preferred_batch_size`"):
            serve.parse_config(text)
    finally:
        i18n.set_language(None)


def test_check_ensemble_config_follows_the_data(repo):
    models = {m: repo.config(m) for m in ("pre", "toy")}
    generated = serve.config_text(repo.config("pipeline"))
    assert serve.check_ensemble_config(generated, models=models).platform == "ensemble"
    assert serve.ensemble_problems(repo.config("pipeline"), models) == []
    renamed = generated.replace('key: "images"\n      value: "images"', 'key: "images"\n      value: "pixels"', 1)
    with pytest.raises(serve.TritonError, match=r"step 'toy' reads 'images', which no step writes and the ensemble "
                                                r"does not receive \(tensors: \['logits', 'pixels', 'raw'\]\)"):
        serve.check_ensemble_config(renamed, models=models)
    with pytest.raises(serve.TritonError, match=r"not in the repository \(models there: \['pre', 'toy'\]\)"):
        serve.check_ensemble_config(generated.replace('"toy"', '"toy2"'), models=models)


def test_write_config_text_keeps_the_text_and_refuses_another_name(tmp_path):
    repo = serve.ModelRepository(tmp_path / "r")
    folder = repo.write_config_text("toy", TOY_TEXT)
    assert (folder / "config.pbtxt").read_text() == TOY_TEXT and (folder / "1").is_dir()
    with pytest.raises(serve.TritonError, match="name: \"other\" but goes to folder 'toy'"):
        repo.write_config_text("toy", 'name: "other"\n' + TOY_TEXT)


def test_repository_layout_versions_and_kinds(toy_onnx, tmp_path):
    repo = serve.ModelRepository(tmp_path / "r")
    repo.add_python_runner("py", toy_onnx, version=1)
    repo.add_python_runner("py", toy_onnx, version=2)
    repo.add_onnx("ort", toy_onnx)
    plan = tmp_path / "fake.plan"
    plan.write_bytes(b"plan")
    repo.add_tensorrt_plan("trt", plan, io_like=toy_onnx, max_batch_size=32)
    assert repo.models() == ["ort", "py", "trt"]
    assert (tmp_path / "r/py/1/model.py").exists() and (tmp_path / "r/py/2/model.onnx").exists()
    assert repo.config("ort").platform == "onnxruntime_onnx"
    assert repo.config("trt").platform == "tensorrt_plan" and repo.config("trt").max_batch_size == 32
    assert repo.config("py").backend == "python"
    assert "model.plan" in repo.tree()
    with pytest.raises(serve.ArtifactMissing, match="no model 'nope'"):
        repo.config("nope")


def test_docker_command_binds_localhost_and_mounts_repository(tmp_path):
    cmd = serve.docker_command(tmp_path)
    assert serve.NGC_IMAGE in cmd and "-p 127.0.0.1:8000:8000" in cmd and f"{tmp_path}:/models" in cmd
    assert "--gpus all" in cmd


def test_instructor_guide_names_the_images_the_code_uses():
    import re
    from pathlib import Path

    from trtlab.triton_tensorrt import TRITON_RELEASES

    guide = (Path(__file__).resolve().parent.parent / "docs" / "instructor.md").read_text()
    tags = set(re.findall(r"nvcr\.io/nvidia/tritonserver:(\d\d\.\d\d)-py3", guide))
    assert serve.NGC_IMAGE.split(":")[1].removesuffix("-py3") in tags, "the guide must name tl.serve.NGC_IMAGE"
    assert tags <= {serve.NGC_IMAGE.split(":")[1].removesuffix("-py3"), *(r.release for r in TRITON_RELEASES)}


def _metrics(count, execs):
    return (f"# TYPE nv_inference_count counter\nnv_inference_count{{model=\"m\",version=\"1\"}} {count}\n"
            f"# TYPE nv_inference_exec_count counter\nnv_inference_exec_count{{model=\"m\",version=\"1\"}} {execs}\n")


def test_metrics_parsing_and_average_batch():
    before, after = _metrics(10, 10), _metrics(110, 14)
    assert serve.parse_metrics(after)[("nv_inference_count", "m")] == 110
    assert serve.average_batch_size(before, after, "m") == pytest.approx(100 / 4)


# ---------------------------------------------------------------- the real server


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hexport = local.rsplit(":", 1)
            if state == "0A" and int(hexport, 16) == port:
                found.add(address)
    return found


# 127.0.0.1 as /proc/net/tcp writes it, and the IPv4-mapped form gRPC uses (::ffff:127.0.0.1)
LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F"}


def test_server_listens_on_localhost_only(server):
    for port in (server.http_port, server.grpc_port, server.metrics_port):
        found = _listening_addresses(port)
        assert found and found <= LOOPBACK, f"port {port} listens on {found}, beyond 127.0.0.1"


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_inference_matches_onnxruntime(server, toy_onnx, protocol):
    x = images(5)
    with OnnxRuntimeRunner(toy_onnx) as runner:
        expected = runner.infer({"images": x})["logits"]
    got = serve.infer(server, "toy", {"images": x}, protocol=protocol)["logits"]
    assert got.shape == (5, CLASSES)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_async_http_and_grpc_agree(server):
    x = images(3, seed=1)
    http = _run_coroutine(serve.infer_async(server, "toy", {"images": x}, protocol="http"))["logits"]
    grpc = _run_coroutine(serve.infer_async(server, "toy", {"images": x}, protocol="grpc"))["logits"]
    np.testing.assert_array_equal(http, grpc)


@pytest.mark.parametrize("protocol", ["http", "grpc"])
@pytest.mark.parametrize("feeds, message", [
    ({"images": images(1)[:, :, :, :SIZE - 1]}, r"unexpected shape for input 'images'.*\[-1,3,8,8\]"),
    ({"images": images(1).astype(np.float64)}, r"'images' data-type is 'FP64', but model 'toy' expects 'FP32'"),
    ({"image": images(1)}, r"unexpected inference input 'image'"),
    ({"images": images(MAX_BATCH + 1)}, rf"batch-size must be <= {MAX_BATCH}"),
    ({"images": images(1), "extra": images(1)}, r"unexpected inference input 'extra'|expected 1 inputs but got 2"),
])
def test_malformed_requests_get_clear_errors(server, feeds, message, protocol):
    with pytest.raises(serve.TritonError, match=message) as info:
        serve.infer(server, "toy", feeds, protocol=protocol)
    assert not isinstance(info.value, serve.ServerUnavailable)
    assert server.ready("toy")


def test_ensemble_preprocesses_raw_pixels_server_side(server, toy_onnx):
    server.load("pre")
    server.load("pipeline")
    assert server.repository.config("pipeline").platform == "ensemble"
    pixels = np.random.default_rng(3).integers(0, 256, (4, SIZE, SIZE, 3), dtype=np.uint8)
    x = ((pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255 - 0.5) / 0.25).astype(np.float32)
    with OnnxRuntimeRunner(toy_onnx) as runner:
        expected = runner.infer({"images": x})["logits"]
    got = serve.infer(server, "pipeline", {"raw": pixels}, protocol="grpc")["logits"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_unknown_model_is_named(server):
    with pytest.raises(serve.TritonError, match="nope"):
        serve.infer(server, "nope", {"images": images(1)})


def test_failing_model_does_not_take_the_others_down(server):
    with pytest.raises(serve.TritonError, match="toy_ort.*failed to load.*onnxruntime"):
        server.load("toy_ort")
    assert server.ready("toy") and server.ready()
    states = server.model_states()
    assert states["toy v1"] == "READY", states
    assert any(k.startswith("toy_ort") and v.startswith("UNAVAILABLE") for k, v in states.items()), states


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_load_1000_requests_at_concurrency_32_then_still_healthy(server, protocol):
    result = serve.load_test(server, "toy", {"images": images(1)}, concurrency=32, requests=1000, warmup=32,
                             protocol=protocol)
    print(result)
    assert result.failures == 0, result.errors
    assert result.requests == 1000 and len(result.latencies_ms) == 1000
    assert result.avg_batch > 1.0, "with 32 clients the dynamic batcher should merge requests"
    # bad requests during/after the load are refused one by one; the server keeps serving
    with pytest.raises(serve.TritonError):
        serve.infer(server, "toy", {"images": images(1).astype(np.float64)})
    assert server.ready() and server.ready("toy")
    np.testing.assert_array_equal(serve.infer(server, "toy", {"images": images(2)})["logits"].shape, (2, CLASSES))
    assert serve.batch_size_counts(server, "toy"), "statistics list executions per batch size"


def test_dead_server_is_reported_clearly(repo):
    srv = serve.TritonServer(repo)
    with srv:
        url_http, url_grpc = srv.http_url, srv.grpc_url
    for protocol, url in (("http", url_http), ("grpc", url_grpc)):
        with pytest.raises(serve.ServerUnavailable, match=f"no Triton server answers at {url}"):
            serve.infer(url, "toy", {"images": images(1)}, protocol=protocol)
    with pytest.raises(serve.ServerUnavailable, match="not running"):
        srv.load("toy")
    assert not srv.ready()


def test_startup_failure_shows_the_log(tmp_path):
    srv = serve.TritonServer(tmp_path / "empty-repo", startup_timeout_s=30, extra_args=["--no-such-flag"])
    with pytest.raises(serve.TritonError, match="(?s)did not become live.*exit code 1.*Last log lines"):
        srv.start()
    assert not srv.running


def test_free_port_is_free():
    port = _free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_numpy2_stub_environment_is_refused_and_why(repo, monkeypatch):
    """The bundled stub (pybind11 predating NumPy 2) returns empty outputs under NumPy 2: hence the stub env.

    If this starts passing requests through correctly, a fixed stub shipped: drop STUB_NUMPY and the stub env.
    """
    import sys
    from pathlib import Path

    monkeypatch.setenv("TRTLAB_TRITON_PYTHON_BIN", str(Path(sys.executable).parent))  # this env: NumPy 2
    with pytest.raises(serve.UnsupportedFeature, match="must import NumPy 1.x"):
        serve.check_python_backend()
    monkeypatch.setattr(serve.server, "check_python_backend", lambda: "skipped on purpose")
    with serve.TritonServer(repo, models=["toy"]) as srv:
        try:
            got = serve.infer(srv, "toy", {"images": images(2)})["logits"]
        except serve.TritonError as err:
            assert "reshape array of size 0" in str(err)
        else:
            assert not np.any(got), "NumPy 2 stub produced real outputs: the upstream stub was fixed"
