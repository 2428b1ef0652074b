"""trtlab/serve/triton_models: the Python-backend models shipped as package data, run here with a fake
``triton_python_backend_utils`` (the module only Triton's stub provides), and the package's layout.

The real server runs them in tests/test_serve.py; these tests reach the branches a server hides (error responses,
several requests in one execute()).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import json_format

from trtlab import serve
from trtlab._toy import toy_classifier_onnx
from trtlab.runtime import OnnxRuntimeRunner
from trtlab.serve.config import BACKEND_MODELS, backend_model

ROOT = Path(__file__).resolve().parent.parent
SIZE, CLASSES = 8, 4
#: What the stub environment provides (tl.serve.stub_python_bin): NumPy 1.26, this environment's packages, the
#: stub's own module, the standard library.
STUB_MODULES = {"json", "os", "numpy", "onnxruntime", "trtlab", "triton_python_backend_utils"}


def _fake_pb_utils() -> types.ModuleType:
    """The part of ``triton_python_backend_utils`` the models use, recording what they answer."""
    pb = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name, array):
            self.name, self.array = name, array

        def as_numpy(self):
            return self.array

    class InferenceResponse:
        def __init__(self, output_tensors=(), error=None):
            self.outputs = {t.name: t.array for t in output_tensors}
            self.error = error

    class TritonError:
        def __init__(self, message):
            self.message = message

    pb.Tensor, pb.InferenceResponse, pb.TritonError = Tensor, InferenceResponse, TritonError
    pb.get_input_tensor_by_name = lambda request, name: Tensor(name, request[name])
    return pb


def _load(name: str, monkeypatch) -> types.ModuleType:
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", _fake_pb_utils())
    spec = importlib.util.spec_from_file_location(f"triton_model_{name}", BACKEND_MODELS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _args(repo: serve.ModelRepository, name: str) -> dict[str, str]:
    """What Triton hands ``initialize``: the config as JSON with proto field names, the model folder, the version."""
    config = json_format.MessageToDict(repo.config(name), preserving_proto_field_name=True)
    return {"model_config": json.dumps(config), "model_repository": str(repo.root / name), "model_version": "1"}


@pytest.fixture()
def repo(tmp_path):
    onnx = tmp_path / "toy.onnx"
    onnx.write_bytes(toy_classifier_onnx(size=SIZE, classes=CLASSES))
    repo = serve.ModelRepository(tmp_path / "models")
    repo.add_python_runner("toy", onnx, max_batch_size=16)
    repo.add_preprocess("pre", input_size=(SIZE, SIZE), mean=[0.5, 0.4, 0.3], std=[0.2, 0.25, 0.5])
    return repo


def test_repository_copies_the_shipped_files(repo):
    assert (repo.root / "toy" / "1" / "model.py").read_bytes() == backend_model("onnx_runner")
    assert (repo.root / "pre" / "1" / "model.py").read_bytes() == backend_model("preprocess")
    with pytest.raises(serve.ArtifactMissing, match="no Python-backend model 'nope'.*onnx_runner"):
        backend_model("nope")


@pytest.mark.parametrize("name", ["onnx_runner", "preprocess"])
def test_models_import_only_what_the_stub_environment_has(name):
    tree = ast.parse((BACKEND_MODELS / f"{name}.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= STUB_MODULES, f"{name}.py imports {sorted(imported - STUB_MODULES)}, absent from the stub"


def test_models_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["trtlab"]
    shipped = {p.relative_to(ROOT / "trtlab") for pattern in data for p in (ROOT / "trtlab").glob(pattern)}
    assert {Path("serve/triton_models/onnx_runner.py"), Path("serve/triton_models/preprocess.py")} <= shipped


def test_onnx_runner_batches_requests_and_splits_the_answer(repo, monkeypatch):
    model = _load("onnx_runner", monkeypatch).TritonPythonModel()
    model.initialize(_args(repo, "toy"))
    rng = np.random.default_rng(0)
    requests = [{"images": rng.standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)} for n in (1, 3, 2)]
    responses = model.execute(requests)
    with OnnxRuntimeRunner(repo.root / "toy" / "1" / "model.onnx") as ort:
        for request, response in zip(requests, responses, strict=True):
            assert response.error is None
            np.testing.assert_allclose(response.outputs["logits"], ort.infer(request)["logits"], rtol=1e-5, atol=1e-6)
    model.finalize()


def test_onnx_runner_answers_every_request_with_the_error(repo, monkeypatch):
    model = _load("onnx_runner", monkeypatch).TritonPythonModel()
    model.initialize(_args(repo, "toy"))
    good, bad = np.zeros((1, 3, SIZE, SIZE), np.float32), np.zeros((1, 3, SIZE, SIZE + 1), np.float32)
    responses = model.execute([{"images": good}, {"images": bad}])
    assert len(responses) == 2 and all(r.error is not None and r.outputs == {} for r in responses)
    assert "concatenation" in responses[0].error.message or "dimension" in responses[0].error.message
    model.finalize()


def test_preprocess_normalises_raw_pixels_like_training(repo, monkeypatch):
    model = _load("preprocess", monkeypatch).TritonPythonModel()
    model.initialize(_args(repo, "pre"))
    pixels = np.random.default_rng(1).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    (response,) = model.execute([{"raw": pixels}])
    mean, std = np.array([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1), np.array([0.2, 0.25, 0.5]).reshape(1, 3, 1, 1)
    expected = (pixels.transpose(0, 3, 1, 2) / 255.0 - mean) / std
    got = response.outputs["images"]
    assert got.dtype == np.float32 and got.shape == (2, 3, SIZE, SIZE) and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- the package's layout


def test_no_module_of_the_package_is_over_600_lines():
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "trtlab" / "serve").rglob("*.py")}
    assert max(sizes.values()) <= 600, sizes


def test_lab06s_tensorrt_name_is_the_package_module():
    import trtlab
    from trtlab.serve import tensorrt_plan

    assert trtlab.triton_tensorrt is tensorrt_plan
    assert tensorrt_plan.write_repository and tensorrt_plan.PlanNotServable


def test_face_exports_resolve_and_prepare_command_is_there():
    assert all(getattr(serve, name) is not None for name in serve.__all__)
    assert serve.__all__ == sorted(serve.__all__)
    out = subprocess.run([sys.executable, "-m", "trtlab.serve", "--help"], capture_output=True, text=True, check=True)
    assert "prepare" in out.stdout
    out = subprocess.run([sys.executable, "-m", "trtlab.serve", "prepare", "--help"], capture_output=True, text=True,
                         check=True)
    assert "--perf-analyzer" in out.stdout
