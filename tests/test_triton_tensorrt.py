"""trtlab.triton_tensorrt: Lab 06's TensorRT repository, the release table, and the real CPU server's refusal.

The plans are real TensorRT-RTX builds of trtlab's toy classifier (the builder this machine has); standard
TensorRT plans are represented by their sidecar metadata, which is all the release check reads.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from trtlab import engine, serve
from trtlab import triton_tensorrt as tt
from trtlab.errors import EngineMismatch, InputMismatch, TrtlabError

SIZE, CLASSES = 8, 4


@pytest.fixture(scope="module")
def plan(toy_onnx):
    return engine.build(toy_onnx, out=toy_onnx.with_name("toy.plan"), batch=(1, 4, 16)).path


@pytest.fixture(scope="module")
def repo(plan, tmp_path_factory):
    return tt.write_repository(tmp_path_factory.mktemp("triton") / "models_trt", plan)


def as_tensorrt(meta, version):
    """The sidecar a TensorRT build of the same network would have (what the release check reads)."""
    return dataclasses.replace(meta, backend="tensorrt", backend_version=version, rtx_targets=None)


# ---------------------------------------------------------------- the table


def test_every_row_has_a_source_and_a_py3_tag():
    assert tt.TRITON_RELEASES, "the table is empty"
    releases = [r.release for r in tt.TRITON_RELEASES]
    assert releases == sorted(set(releases)), "one row per release, oldest first"
    for row in tt.TRITON_RELEASES:
        assert re.fullmatch(r"\d\d\.\d\d", row.release) and re.fullmatch(r"\d+(\.\d+){1,3}", row.tensorrt)
        assert "https://" in row.source, f"{row.release}: no source"
        assert row.image == f"nvcr.io/nvidia/tritonserver:{row.release}-py3"


def test_version_match_uses_every_component_the_source_gives():
    row = tt.TritonRelease("99.01", "8.6.3", source="test")
    assert row.ships("8.6.3") and row.ships("8.6.3.1")
    assert not row.ships("8.6.1.6") and not row.ships("8.6")
    exact = tt.TritonRelease("99.02", "8.6.1.2", source="test")
    assert not exact.ships("8.6.1.6"), "a different build number is a different TensorRT for a plan"


def test_plan_not_servable_is_a_course_error():
    assert issubclass(tt.PlanNotServable, EngineMismatch) and issubclass(tt.PlanNotServable, TrtlabError)


# ---------------------------------------------------------------- the repository


def test_repository_config_comes_from_the_plan(repo, plan):
    assert repo.models() == ["classifier_trt"]
    text = (repo.root / "classifier_trt" / "config.pbtxt").read_text()
    config = serve.config_from_text(text)  # Triton's own schema
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 16  # the profile's max batch
    assert [(t.name, list(t.dims)) for t in config.input] == [("images", [3, SIZE, SIZE])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("logits", [CLASSES])]
    assert config.HasField("dynamic_batching") and config.instance_group[0].kind == config.instance_group[0].KIND_GPU
    served = repo.root / "classifier_trt" / "1" / "model.plan"
    assert served.read_bytes() == plan.read_bytes()
    assert engine.read_metadata(served).plan_sha256 == engine.sha256(served)


def test_repository_refuses_a_profile_that_does_not_start_at_batch_1(toy_onnx, tmp_path):
    plan = engine.build(toy_onnx, out=tmp_path / "b2.plan", batch=(2, 4, 8)).path
    with pytest.raises(InputMismatch, match="min batch is 2"):
        tt.write_repository(tmp_path / "r", plan)


def test_missing_plan_is_named(tmp_path):
    with pytest.raises(tt.ArtifactMissing, match="Lab 03 builds it"):
        tt.write_repository(tmp_path / "r", tmp_path / "nope.plan")


# ---------------------------------------------------------------- which container


def test_tensorrt_rtx_plan_is_refused_with_the_reason(repo):
    with pytest.raises(tt.PlanNotServable, match="(?s)TensorRT-RTX .*standard TensorRT plans only.*GPU machine"):
        tt.container_command(repo)


def test_unknown_tensorrt_version_is_refused_with_what_to_do(plan):
    meta = as_tensorrt(engine.read_metadata(plan), "11.4.0.106")
    with pytest.raises(tt.PlanNotServable, match=r"(?s)TensorRT 11\.4\.0\.106.*support-matrix.*TritonRelease"):
        tt.serving_release(meta)


@pytest.mark.parametrize("version, release", [("10.5.0.18", "24.10"), ("10.8.0.43", "25.01")])
def test_a_tensorrt_10_plan_gets_the_release_that_ships_it(plan, repo, version, release):
    meta = as_tensorrt(engine.read_metadata(plan), version)
    row = tt.serving_release(meta)
    assert row.release == release and row.tensorrt == version
    assert f" nvcr.io/nvidia/tritonserver:{release}-py3 " in tt.container_command(repo, metadata=meta)


@pytest.mark.parametrize("version", ["10.5.0.26", "10.13.3.9"])
def test_a_tensorrt_10_version_no_row_ships_is_refused_with_the_table(plan, version):
    """Another build number of 10.5 is another TensorRT for a plan; 10.13 has no verified -py3 row here."""
    meta = as_tensorrt(engine.read_metadata(plan), version)
    with pytest.raises(tt.PlanNotServable, match=rf"(?s)TensorRT {re.escape(version)}.*24\.10: TensorRT 10\.5\.0\.18"
                                                 r".*support-matrix.*TritonRelease"):
        tt.serving_release(meta)


def test_matching_plan_gets_its_release(plan):
    row = tt.TRITON_RELEASES[-1]
    meta = as_tensorrt(engine.read_metadata(plan), row.tensorrt + ".1" if row.tensorrt.count(".") < 3 else row.tensorrt)
    assert tt.serving_release(meta) == row
    own = tt.TritonRelease("99.01", "11.4.0", source="a learner's support-matrix lookup")
    assert tt.serving_release(as_tensorrt(meta, "11.4.0.106"), own) == own


def test_command_mounts_only_this_repository_and_loads_only_its_model(repo, plan):
    row = tt.TRITON_RELEASES[-1]
    meta = as_tensorrt(engine.read_metadata(plan), row.tensorrt)
    cmd = tt.container_command(repo, metadata=meta)
    assert f" {row.image} " in cmd and cmd.count(" -v ") == 1 and f"-v {repo.root.resolve()}:/models " in cmd
    assert "--load-model=classifier_trt" in cmd and "'*'" not in cmd and "--model-control-mode=explicit" in cmd


# ---------------------------------------------------------------- the real CPU server


def test_cpu_server_refuses_only_for_the_missing_tensorrt_backend(repo):
    with serve.TritonServer(repo) as server:
        assert tt.offer_to_server(server) == "tensorrt"
        state = server.model_states()["classifier_trt v1"]
        assert state.startswith("UNAVAILABLE") and "backend 'tensorrt'" in state, state


def _broken_copy(repo, tmp_path, edit):
    import shutil

    broken = serve.ModelRepository(tmp_path / "broken")
    shutil.copytree(repo.root / "classifier_trt", broken.root / "classifier_trt")
    config = broken.config("classifier_trt")
    edit(config)
    (broken.root / "classifier_trt" / "config.pbtxt").write_text(serve.config_text(config))
    return broken


def test_a_config_error_the_server_sees_is_not_mistaken_for_the_missing_backend(repo, tmp_path):
    broken = _broken_copy(repo, tmp_path, lambda c: c.dynamic_batching.preferred_batch_size.append(64))  # > max 16
    with serve.TritonServer(broken) as server:
        with pytest.raises(serve.TritonError, match="(?s)not for a missing backend.*failed to poll"):
            tt.offer_to_server(server)


def test_the_cpu_server_does_not_check_dims_of_a_tensorrt_model(repo, tmp_path):
    """Measured: Triton 2.51 looks the backend up before the I/O is validated (the backend validates it), so a
    wrong shape is refused here for the missing backend too. The lab compares dims with the plan itself."""
    broken = _broken_copy(repo, tmp_path, lambda c: c.input[0].dims.__setitem__(slice(None), [3, -5, SIZE]))
    with serve.TritonServer(broken) as server:
        assert tt.offer_to_server(server) == "tensorrt"


def test_triton_refusals_and_request_errors_speak_chinese_when_asked(plan):
    """A plan no release ships, a request to an address where no server listens (a real tritonclient call) and a
    taken port, in Chinese with the versions, addresses and ports kept; English again after set_language("en")."""
    import os
    import socket

    import numpy as np

    from trtlab import i18n
    from trtlab.serve import process

    meta = as_tensorrt(engine.read_metadata(plan), "11.4.0.106")
    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    feeds = {"images": np.zeros((1, 3, SIZE, SIZE), np.float32)}
    try:
        i18n.set_language("zh_CN")
        with pytest.raises(tt.PlanNotServable, match=r"^该 plan 由 TensorRT 11\.4\.0\.106 构建；这里列出的 Triton 版本都不带"
                                                     r"这个 TensorRT（21\.11: TensorRT 8\.0\.3\.4.*TritonRelease\('YY\.MM', '11\.4\.0\.106'"):
            tt.serving_release(meta)
        with pytest.raises(serve.ServerUnavailable, match=rf"^127\.0\.0\.1:{free} 上没有 Triton 服务器应答（.*）；请启动它"
                                                          r"（tl\.serve\.TritonServer），或检查地址和端口$"):
            serve.infer(f"127.0.0.1:{free}", "toy", feeds, timeout_s=5.0)
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port = holder.getsockname()[1]
            refusal = str(process.port_in_use("HTTP", port))
            assert refusal.startswith(f"tritonserver 无法绑定其 HTTP 端口 {port}：该端口被占用，占用者为 pid {os.getpid()} ("
                                      ), refusal
            assert refusal.endswith("不是本课程的服务器。请换一个端口（0 表示自动选一个空闲端口），或停止占用它的程序"), refusal
        i18n.set_language("en")
        with pytest.raises(serve.ServerUnavailable, match=rf"^no Triton server answers at 127\.0\.0\.1:{free} "):
            serve.infer(f"127.0.0.1:{free}", "toy", feeds, timeout_s=5.0)
        with pytest.raises(tt.PlanNotServable, match=r"^this plan was built by TensorRT 11\.4\.0\.106; no Triton"):
            tt.serving_release(meta)
    finally:
        i18n.set_language(None)
