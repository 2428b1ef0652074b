"""Serve the model with a real Triton Inference Server (Lab 06).

Four pieces, each small enough to read:

- **Model repository** (:class:`ModelRepository`): one folder per model, ``config.pbtxt`` generated from the
  model's real I/O with Triton's own protobuf schema (``tritonclient.grpc.model_config_pb2``), numbered versions
  (``1/``, ``2/``), ``max_batch_size``, ``dynamic_batching`` and ``instance_group``. Three kinds of model:
  ``tensorrt_plan`` and ``onnxruntime_onnx`` (the NGC container's backends) and a Python-backend model that wraps
  a trtlab runner (the only backend the CPU server bundled in ``nvidia-pytriton`` has).
- **Server** (:class:`TritonServer`): starts the bundled ``tritonserver`` bound to 127.0.0.1 on free ports, with
  the non-obvious steps the Python backend needs (stub next to the backend, libpython on LD_LIBRARY_PATH, a
  ``python3`` on PATH whose environment has NumPy 1: the bundled stub returns empty outputs under NumPy 2, see
  :data:`STUB_NUMPY`), waits for readiness with a timeout, captures the log, loads models
  explicitly (one broken model does not take the others down), stops cleanly and removes leftover ``/dev/shm``
  regions; it cannot outlive the kernel that started it (:mod:`trtlab.serve_process`).
  :func:`docker_command` prints the NGC container command for GPU machines.
- **Clients**: :func:`infer` / :func:`infer_async` over HTTP or gRPC (``tritonclient``): feeds checked against the
  model's config before sending (:mod:`trtlab.serve_requests`), timeouts honoured, errors translated into plain
  words (:class:`TritonError`, :class:`ServerUnavailable`, :class:`ServerTimeout`, :class:`RequestMismatch`).
- **Load**: :func:`load_test` (closed loop, N concurrent clients, like perf_analyzer: throughput, p50/p99, average
  batch from the Prometheus metrics, server CPU per inference), :func:`plot_sweep`; :func:`perf_analyzer` where its
  binary runs (``python -m trtlab.serve prepare --perf-analyzer`` installs it).

    repo = tl.serve.ModelRepository(tl.paths.artifacts() / "triton")
    repo.add_python_runner("classifier", onnx_path, max_batch_size=64, dynamic_batching=True)
    with tl.serve.TritonServer(repo, models=["classifier"]) as server:
        logits = tl.serve.infer(server, "classifier", {"images": batch})["logits"]
"""

from __future__ import annotations

import asyncio
import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from trtlab import serve_process
from trtlab.errors import (ArtifactMissing, InputMismatch, InvalidArgument, ServerTimeout, ServerUnavailable,
                           TritonError, UnsupportedFeature)
from trtlab.errors import PortInUse, RequestMismatch  # noqa: F401 - tl.serve.PortInUse / .RequestMismatch
from trtlab.serve_requests import check_feeds

__all__ = [
    "SHM_PATTERN",
    "STUB_NUMPY",
    "DynamicBatching",
    "LoadResult",
    "ModelRepository",
    "NGC_IMAGE",
    "PortInUse",
    "RequestMismatch",
    "ServerTimeout",
    "ServerUnavailable",
    "TritonError",
    "TritonServer",
    "average_batch_size",
    "batch_size_counts",
    "check_python_backend",
    "client",
    "config_from_text",
    "config_text",
    "docker_command",
    "infer",
    "infer_async",
    "install_perf_analyzer",
    "io_from_onnx",
    "load_test",
    "model_config",
    "parse_metrics",
    "perf_analyzer",
    "perf_analyzer_binary",
    "plot_sweep",
    "results_table",
    "stub_python_bin",
    "triton_dtype",
]

#: The NGC container holding the same Triton release (2.51) as the server bundled in nvidia-pytriton 0.7.0, for
#: ONNX Runtime / Python models. A TensorRT plan's container comes from tl.triton_tensorrt.TRITON_RELEASES instead.
NGC_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"

SHM_PATTERN = "/dev/shm/triton_python_backend_shm_region_*"


# ---------------------------------------------------------------- model configuration (protobuf schema)


def _mc() -> Any:
    """Triton's model-config protobuf module, as shipped (and maintained) in tritonclient."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as err:
        raise UnsupportedFeature(
            f"Triton's model-config schema needs tritonclient[grpc] with protobuf >= 5: {err}. "
            "Install: pip install 'tritonclient[grpc,http]' 'protobuf>=6.30,<7'") from err
    return model_config_pb2


def triton_dtype(dtype: Any) -> str:
    """NumPy dtype → Triton config type name (``float32`` → ``TYPE_FP32``)."""
    from tritonclient.utils import np_to_triton_dtype

    name = np_to_triton_dtype(np.dtype(dtype))
    if name is None:
        raise InputMismatch(f"dtype {np.dtype(dtype).name} has no Triton equivalent; use float32/16, int8..64, uint8")
    return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"


@dataclass(frozen=True)
class DynamicBatching:
    """Triton's dynamic batcher: wait up to ``max_queue_delay_us`` to gather requests into one execution."""

    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 2000


def io_from_onnx(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inputs and outputs of an ONNX file as ``{name: TensorSpec}`` (None for a dynamic dimension)."""
    from onnx import helper

    from trtlab.export import load_onnx
    from trtlab.runtime import TensorSpec

    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(f"ONNX file {path} not found; Lab 02 exports it (tl.export.ensure_course_onnx())")
    graph = load_onnx(path, load_external_data=False).graph
    inits = {i.name for i in graph.initializer}

    def spec(value: Any) -> Any:
        t = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
        return TensorSpec(value.name, dims, np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type)))

    return ({v.name: spec(v) for v in graph.input if v.name not in inits}, {v.name: spec(v) for v in graph.output})


def _dims(spec: Any, batched: bool) -> list[int]:
    shape = list(spec.shape)
    if batched:
        if not shape or shape[0] not in (None, -1):
            raise InputMismatch(f"tensor '{spec.name}': shape {tuple(shape)} has no dynamic batch dimension, "
                                "but max_batch_size > 0 needs one; export with a dynamic batch or set max_batch_size=0")
        shape = shape[1:]
    return [-1 if d is None else int(d) for d in shape]


def model_config(name: str, *, inputs: Mapping[str, Any], outputs: Mapping[str, Any], max_batch_size: int,
                 platform: str | None = None, backend: str | None = None,
                 dynamic_batching: DynamicBatching | bool | None = None, instances: int = 1,
                 kind: str = "KIND_CPU", parameters: Mapping[str, str] | None = None) -> Any:
    """A ``ModelConfig`` protobuf message built from the model's real I/O (``{name: TensorSpec}``).

    With ``max_batch_size > 0`` Triton owns the first dimension: ``dims`` list the rest (the classic mistake is to
    write ``[-1, 3, 32, 32]``, which Triton reads as a 5-D tensor).
    """
    for what, specs in (("inputs", inputs), ("outputs", outputs)):
        if not specs:
            raise InvalidArgument(
                f"model '{name}' has no {what}: Triton serves tensors named in config.pbtxt, and a config without "
                f"{what} is refused or useless. Expected at least one (got inputs={list(inputs)}, outputs="
                f"{list(outputs)}); an ONNX whose input was folded into a constant has none: re-export it with "
                "the input as a graph input (tl.serve.io_from_onnx(path) shows what the file declares)")
    mc = _mc()
    config = mc.ModelConfig(name=name, max_batch_size=int(max_batch_size))
    if platform:
        config.platform = platform
    if backend:
        config.backend = backend
    for group, specs in ((config.input, inputs), (config.output, outputs)):
        for spec in specs.values():
            tensor = group.add()
            tensor.name = spec.name
            tensor.data_type = mc.DataType.Value(triton_dtype(spec.dtype))
            tensor.dims.extend(_dims(spec, max_batch_size > 0))
    if dynamic_batching:
        db = dynamic_batching if isinstance(dynamic_batching, DynamicBatching) else DynamicBatching()
        config.dynamic_batching.preferred_batch_size.extend(db.preferred_batch_sizes)
        config.dynamic_batching.max_queue_delay_microseconds = int(db.max_queue_delay_us)
    group = config.instance_group.add()
    group.count = int(instances)
    group.kind = mc.ModelInstanceGroup.Kind.Value(kind)
    for key, value in (parameters or {}).items():
        config.parameters[key].string_value = str(value)
    return config


def config_text(config: Any) -> str:
    """``config.pbtxt`` text of a ``ModelConfig`` message."""
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def config_from_text(text: str) -> Any:
    """Parse ``config.pbtxt`` text with Triton's schema; a typo raises with the line and column."""
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, _mc().ModelConfig())
    except text_format.ParseError as err:
        raise TritonError(f"config.pbtxt does not parse: {err}. Compare with tl.serve.config_text(...) output") from err


_PYTHON_MODEL = '''\
"""Triton Python-backend model generated by trtlab.serve: wraps trtlab.runtime.OnnxRuntimeRunner.

Dynamic batching hands execute() a *list* of requests; this model concatenates them into one batch, runs it once
and splits the result back, one response per request (that is where batching saves work).
"""
import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        import onnxruntime as ort
        from trtlab.runtime import OnnxRuntimeRunner

        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        here = os.path.join(args["model_repository"], args["model_version"])
        self.runner = OnnxRuntimeRunner(os.path.join(here, params.get("model_file", "model.onnx")),
                                        session_options=options)
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests):
        feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
        sizes = [f[self.inputs[0]].shape[0] for f in feeds]
        try:
            batch = {n: np.concatenate([f[n] for f in feeds]) for n in self.inputs}
            result = self.runner.infer(batch)
        except Exception as err:  # reported to each client, the server keeps serving
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(str(err))) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            tensors = [pb_utils.Tensor(n, np.ascontiguousarray(result[n][start:start + size])) for n in self.outputs]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += size
        return responses

    def finalize(self):
        self.runner.close()
'''


_PREPROCESS_MODEL = '''\
"""Triton Python-backend model generated by trtlab.serve: uint8 N×H×W×3 (RGB) → float32 N×3×H×W, (x/255 - mean)/std.

The first step of an ensemble: clients send raw pixels (4× fewer bytes than float32) and the server normalises
them exactly as training did (mean and std come from the checkpoint metadata, in config.pbtxt parameters).
"""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.mean = np.asarray(json.loads(params["mean"]), np.float32).reshape(1, 3, 1, 1)
        self.std = np.asarray(json.loads(params["std"]), np.float32).reshape(1, 3, 1, 1)
        self.input, self.output = config["input"][0]["name"], config["output"][0]["name"]

    def execute(self, requests):
        responses = []
        for request in requests:
            pixels = pb_utils.get_input_tensor_by_name(request, self.input).as_numpy()
            x = pixels.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
            x = np.ascontiguousarray((x - self.mean) / self.std, dtype=np.float32)
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, x)]))
        return responses
'''


class ModelRepository:
    """A Triton model repository on disk: ``<root>/<model>/config.pbtxt`` and ``<root>/<model>/<version>/...``."""

    def __init__(self, root: str | Path, *, clean: bool = False) -> None:
        self.root = Path(root)
        if clean and self.root.exists():
            shutil.rmtree(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def models(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "config.pbtxt").exists())

    def config(self, name: str) -> Any:
        path = self.root / name / "config.pbtxt"
        if not path.exists():
            raise ArtifactMissing(f"no model '{name}' in {self.root}; models there: {self.models()}")
        return config_from_text(path.read_text())

    def _write(self, config: Any, version: int, files: Mapping[str, str | Path | bytes]) -> Path:
        folder = self.root / config.name
        (folder / str(version)).mkdir(parents=True, exist_ok=True)
        for target, source in files.items():
            dest = folder / str(version) / target
            if isinstance(source, bytes):
                dest.write_bytes(source)
            else:
                dest.unlink(missing_ok=True)
                try:
                    os.link(source, dest)  # a 45 MB model in four configurations need not take 180 MB
                except OSError:
                    shutil.copyfile(source, dest)
        (folder / "config.pbtxt").write_text(config_text(config))
        return folder

    def add_onnx(self, name: str, onnx_path: str | Path, *, version: int = 1, max_batch_size: int = 64,
                 dynamic_batching: DynamicBatching | bool | None = True, instances: int = 1,
                 kind: str = "KIND_CPU") -> Path:
        """An ``onnxruntime_onnx`` model (NGC container; the bundled CPU server has no ONNX Runtime backend)."""
        inputs, outputs = io_from_onnx(onnx_path)
        config = model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size,
                              platform="onnxruntime_onnx", dynamic_batching=dynamic_batching,
                              instances=instances, kind=kind)
        return self._write(config, version, {"model.onnx": Path(onnx_path)})

    def add_tensorrt_plan(self, name: str, plan_path: str | Path, *, io_like: str | Path | Any, version: int = 1,
                          max_batch_size: int = 64, dynamic_batching: DynamicBatching | bool | None = True,
                          instances: int = 1) -> Path:
        """A ``tensorrt_plan`` model (GPU servers). ``io_like``: the ONNX file the plan was built from, or a runner.

        The plan must be built by the same TensorRT version as the server's and its optimisation profile must cover
        1..max_batch_size: tl.triton_tensorrt.write_repository / container_command check both from its sidecar.
        """
        inputs, outputs = (io_from_onnx(io_like) if isinstance(io_like, (str, Path))
                           else (io_like.inputs(), io_like.outputs()))
        config = model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size,
                              platform="tensorrt_plan", dynamic_batching=dynamic_batching,
                              instances=instances, kind="KIND_GPU")
        return self._write(config, version, {"model.plan": Path(plan_path)})

    def add_python_runner(self, name: str, onnx_path: str | Path, *, version: int = 1, max_batch_size: int = 64,
                          dynamic_batching: DynamicBatching | bool | None = True, instances: int = 1,
                          intra_op_threads: int = 1) -> Path:
        """A Python-backend model whose ``model.py`` runs the ONNX file with ``trtlab.runtime.OnnxRuntimeRunner``."""
        inputs, outputs = io_from_onnx(onnx_path)
        config = model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size, backend="python",
                              dynamic_batching=dynamic_batching, instances=instances, kind="KIND_CPU",
                              parameters={"intra_op_threads": str(intra_op_threads), "model_file": "model.onnx"})
        return self._write(config, version, {"model.onnx": Path(onnx_path), "model.py": _PYTHON_MODEL.encode()})

    def add_preprocess(self, name: str, *, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                       input_name: str = "raw", output_name: str = "images", max_batch_size: int = 64,
                       version: int = 1, instances: int = 1) -> Path:
        """A Python-backend pre-processing model: uint8 N×H×W×3 → normalised float32 N×3×H×W (Lab 04 on a GPU)."""
        import json

        from trtlab.runtime import TensorSpec

        h, w = (int(input_size[0]), int(input_size[-1]))
        config = model_config(
            name, inputs={input_name: TensorSpec(input_name, (None, h, w, 3), np.dtype(np.uint8))},
            outputs={output_name: TensorSpec(output_name, (None, 3, h, w), np.dtype(np.float32))},
            max_batch_size=max_batch_size, backend="python", instances=instances,
            parameters={"mean": json.dumps([float(m) for m in mean]), "std": json.dumps([float(v) for v in std])})
        return self._write(config, version, {"model.py": _PREPROCESS_MODEL.encode()})

    def add_ensemble(self, name: str, steps: Sequence[tuple[str, Mapping[str, str], Mapping[str, str]]], *,
                     inputs: Mapping[str, Any], outputs: Mapping[str, Any], max_batch_size: int = 64) -> Path:
        """An ensemble: ``steps`` are ``(model, {its input: ensemble tensor}, {its output: ensemble tensor})``.

        Triton runs the steps server-side and passes tensors between them without a round trip to the client.
        """
        config = model_config(name, inputs=inputs, outputs=outputs, max_batch_size=max_batch_size,
                              platform="ensemble")
        del config.instance_group[:]  # an ensemble has no instances of its own
        for model, input_map, output_map in steps:
            step = config.ensemble_scheduling.step.add(model_name=model, model_version=-1)
            step.input_map.update(input_map)
            step.output_map.update(output_map)
        (self.root / name / "1").mkdir(parents=True, exist_ok=True)  # Triton wants a version folder, even empty
        return self._write(config, 1, {})

    def add_classifier_ensemble(self, name: str, *, preprocess: str, classifier: str, input_size: Sequence[int],
                                classes: int, max_batch_size: int = 64) -> Path:
        """``preprocess`` (raw uint8 pixels → ``images``) then ``classifier`` (``images`` → ``logits``)."""
        from trtlab.runtime import TensorSpec

        h, w = (int(input_size[0]), int(input_size[-1]))
        return self.add_ensemble(
            name, [(preprocess, {"raw": "raw"}, {"images": "images"}), (classifier, {"images": "images"},
                                                                          {"logits": "logits"})],
            inputs={"raw": TensorSpec("raw", (None, h, w, 3), np.dtype(np.uint8))},
            outputs={"logits": TensorSpec("logits", (None, classes), np.dtype(np.float32))},
            max_batch_size=max_batch_size)

    def tree(self) -> str:
        """The repository layout as an indented listing (what Triton scans)."""
        lines = [f"{self.root.name}/"]
        for model in sorted(p for p in self.root.iterdir() if p.is_dir()):
            lines.append(f"  {model.name}/")
            for item in sorted(model.iterdir()):
                if item.is_dir():
                    lines.append(f"    {item.name}/")
                    lines += [f"      {f.name}  ({f.stat().st_size / 1024:.0f} KiB)" for f in sorted(item.iterdir())
                              if f.is_file()]
                else:
                    lines.append(f"    {item.name}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ModelRepository {self.root}: {', '.join(self.models()) or 'empty'}>"


# ---------------------------------------------------------------- the server process


def _bundled_server_dir() -> Path:
    from trtlab.env import triton_server_binary

    binary = triton_server_binary()
    if binary is None:
        raise UnsupportedFeature("no tritonserver binary found: pip install nvidia-pytriton==0.7.0 (bundles a CPU "
                                 "Triton 2.51 with the Python backend), or use the NGC container: "
                                 "print(tl.serve.docker_command(repo))")
    return binary.resolve().parent.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _python_backend_dir(server_dir: Path) -> Path:
    """A private backends folder: the bundled Python backend plus the stub for *this* interpreter beside it.

    The backend looks for ``triton_python_backend_stub`` next to ``libtriton_python.so``; the wheel keeps the stubs
    apart (one per Python version), so we assemble the folder instead of writing into site-packages.
    """
    from trtlab.paths import cache

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise UnsupportedFeature(f"the bundled Triton has no Python-backend stub for Python {version} "
                                 f"(looked for {stub}); use Python 3.8–3.13")
    target = cache() / "triton-backends" / f"py{version}"
    python = target / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in [*(server_dir / "backends" / "python").iterdir(), stub]:
        if source.is_file():
            _link(source, python / source.name)
    return target


def _link(source: Path, link: Path) -> None:
    """``link`` → ``source``, replacing a stale link (a venv recreated elsewhere) and tolerating a racing twin."""
    if link.is_symlink() and os.readlink(link) == str(source):
        return
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(source)
    except FileExistsError:
        pass


#: NumPy for the Python-backend stub's environment. The bundled stub (Triton 2.51) is built with a pybind11 that
#: predates NumPy 2: with NumPy 2 inputs still arrive, but every output tensor is silently empty or zero
#: (pybind11 reads the old dtype layout, item size 0). The course environment needs NumPy 2 (CuPy 14), so the
#: model runs in a small execution environment: NumPy 1.26 first on sys.path, the course packages after it.
STUB_NUMPY = "numpy==1.26.4"


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def stub_python_bin(*, install: bool = True) -> Path:
    """The ``bin/`` whose ``python3`` the Python-backend stub takes its ``sys.prefix`` (and so its packages) from.

    This environment itself if its NumPy is 1.x; otherwise a venv under ``tl.paths.cache()`` holding NumPy 1.26 and
    a ``.pth`` that appends this environment's site-packages (onnxruntime, trtlab). Created once (``pip`` fetches
    one wheel, 14 MB); ``TRTLAB_TRITON_PYTHON_BIN`` overrides it.
    """
    override = os.environ.get("TRTLAB_TRITON_PYTHON_BIN")
    if override:
        return Path(override)
    if int(np.__version__.split(".")[0]) < 2:
        return Path(sys.executable).parent
    from trtlab.paths import cache

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = cache() / f"triton-stub-env-py{version}"
    site_dir = root / "lib" / f"python{version}" / "site-packages"
    marker = site_dir / "trtlab_stub_env.txt"
    wanted = f"{STUB_NUMPY}\n{sys.prefix}\n"
    if marker.exists() and marker.read_text() == wanted and (root / "bin" / "python3").exists():
        return root / "bin"
    if not install:
        raise UnsupportedFeature(f"no stub environment at {root}; create it: python -m trtlab.serve prepare")
    import fcntl

    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two notebooks starting servers at once build it once
        if marker.exists() and marker.read_text() == wanted:
            return root / "bin"
        _create_stub_env(root, site_dir)
        marker.write_text(wanted)
    return root / "bin"


def _create_stub_env(root: Path, site_dir: Path) -> None:
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(root)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site_dir), STUB_NUMPY]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as err:
        raise UnsupportedFeature(f"installing {STUB_NUMPY} for the Triton stub timed out: {' '.join(cmd)}") from err
    if done.returncode != 0:
        raise UnsupportedFeature(
            f"could not install {STUB_NUMPY} for the Triton Python-backend stub ({done.stderr.strip()[-300:]}). "
            f"Run once with network access: {' '.join(cmd)}  (or python -m trtlab.serve prepare)")
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs())
    (site_dir / "zz_trtlab_course_env.pth").write_text(lines)


def _stub_environment(server_dir: Path) -> dict[str, str]:
    """PATH and LD_LIBRARY_PATH for the stub: the stub environment's python3 first, libpython, the wheel's libs."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(stub_python_bin()), env.get("PATH", "")])
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(server_dir.parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([p for p in libs if p] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env.pop("PYTHONPATH", None)
    return env


def check_python_backend() -> str:
    """Check before starting that the stub finds libpython (without it, model loading hangs with no error)."""
    server_dir = _bundled_server_dir()
    backend = _python_backend_dir(server_dir)
    stub = backend / "python" / "triton_python_backend_stub"
    env = _stub_environment(server_dir)
    try:
        out = subprocess.run(["ldd", str(stub.resolve())], capture_output=True, text=True, env=env, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return "ldd not available; stub libraries not checked"
    missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
    if missing:
        raise UnsupportedFeature(
            f"the Python-backend stub cannot find {', '.join(missing)} (libdir {sysconfig.get_config_var('LIBDIR')}): "
            "model loading would hang. Use a Python built with --enable-shared (pyenv: "
            "PYTHON_CONFIGURE_OPTS=--enable-shared) or install the distribution's libpython3.X package")
    libpython = next((line.split("=>")[1].split()[0] for line in out.splitlines() if "libpython" in line), "?")
    python = stub_python_bin() / "python3"
    probe = subprocess.run([str(python), "-I", "-c", "import numpy, onnxruntime; print(numpy.__version__)"],
                           capture_output=True, text=True, env=env, timeout=60)
    if probe.returncode != 0 or not probe.stdout.strip().startswith("1."):
        raise UnsupportedFeature(
            f"the stub environment {python.parent.parent} must import NumPy 1.x and onnxruntime; got "
            f"{(probe.stdout or probe.stderr).strip()[-300:]}. Delete it and run: python -m trtlab.serve prepare")
    return f"stub OK: {libpython}; NumPy {probe.stdout.strip()} from {python.parent.parent}"


class TritonServer:
    """The bundled ``tritonserver`` as a context manager: bound to 127.0.0.1, free ports, explicit model control.

    ``models`` are loaded one by one after start; a model that fails raises :class:`TritonError` with Triton's
    reason (the server and the other models keep running). Pass ``host="0.0.0.0"`` only if other machines must
    reach it: Triton's endpoints have no authentication, and one malformed request can abort it (see
    :mod:`trtlab.serve_requests`). Ports: 0 picks free ones; a fixed port that is taken raises :class:`PortInUse`.

    The server cannot outlive the Python process that started it, and a stale server of the course (left by an
    older kernel) is stopped at the next start: :mod:`trtlab.serve_process`.
    """

    def __init__(self, repository: ModelRepository | str | Path, *, models: Sequence[str] = (),
                 host: str = "127.0.0.1", http_port: int = 0, grpc_port: int = 0, metrics_port: int = 0,
                 startup_timeout_s: float = 60.0, load_timeout_s: float = 120.0,
                 exit_timeout_s: int = 5, log_verbose: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.repository = repository if isinstance(repository, ModelRepository) else ModelRepository(repository)
        self.models = list(models)
        self.host = host
        self.startup_timeout_s, self.load_timeout_s, self.exit_timeout_s = startup_timeout_s, load_timeout_s, exit_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.ports = (int(http_port), int(grpc_port), int(metrics_port))
        self.http_port, self.grpc_port, self.metrics_port = self.ports
        self._logdir: Path | None = None  # one temp folder per start, removed with the server (or by its watchdog)
        self.log_path = Path(tempfile.gettempdir()) / "trtlab-triton-not-started.log"
        self._log_text: str | None = None  # the log, kept in memory once the folder is gone
        self._watchdog: subprocess.Popen | None = None
        self._watch_fd = -1
        self._shm_before: set[str] = set()
        self.startup_s = float("nan")
        self.stub_check = ""
        self.leaked_shm: list[str] = []

    # addresses -------------------------------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.metrics_port}/metrics"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def url(self, protocol: str = "http") -> str:
        return {"http": self.http_url, "grpc": self.grpc_url}[_protocol(protocol)]

    # lifecycle -------------------------------------------------------------------------------------------------
    def command(self) -> list[str]:
        server_dir = _bundled_server_dir()
        return [str(server_dir / "bin" / "tritonserver"),
                f"--model-repository={self.repository.root}",
                f"--backend-directory={_python_backend_dir(server_dir)}",
                f"--cache-directory={server_dir / 'caches'}",
                "--model-control-mode=explicit",
                f"--http-address={self.host}", f"--http-port={self.http_port}",
                f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
                f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
                "--allow-metrics=true", "--allow-gpu-metrics=false", "--allow-cpu-metrics=true",
                "--metrics-interval-ms=500",
                "--pinned-memory-pool-byte-size=0", f"--exit-timeout-secs={self.exit_timeout_s}",
                "--strict-readiness=false", f"--log-verbose={self.log_verbose}", *self.extra_args]

    def start(self) -> "TritonServer":
        if self.running:
            return self
        self.stub_check = check_python_backend()
        for line in serve_process.clean_stale():
            print(line)
        for service, port in zip(("HTTP", "gRPC", "metrics"), self.ports):
            if port and serve_process.port_taken(self.host, port):
                raise serve_process.port_in_use(service, port)
        server_dir = _bundled_server_dir()
        self._shm_before = set(glob.glob(SHM_PATTERN))
        t0 = time.perf_counter()
        for attempt in range(3):  # a free port can be taken between probing and binding: retry with new ones
            self.http_port, self.grpc_port, self.metrics_port = (p or _free_port() for p in self.ports)
            self._launch(_stub_environment(server_dir))
            live = self._wait_live(time.perf_counter())
            taken = serve_process.PORT_TAKEN.search(self.log_path.read_text(errors="replace"))
            if live and not taken:
                break
            tail, took, code = self.log_tail(), time.perf_counter() - t0, self.process.poll()
            self.stop()
            fixed = any(self.ports) or any("-port=" in a for a in self.extra_args)  # new free ports won't help
            if taken and (attempt == 2 or fixed):
                raise serve_process.port_in_use(taken.group(1), int(taken.group(2)), tail)
            if not taken:
                state = (f"exit code {code} after {took:.1f} s" if code is not None
                         else f"no answer within {self.startup_timeout_s:.0f} s")
                raise TritonError(f"tritonserver did not become live ({state}).\nLast log lines:\n{tail}")
        try:
            for name in self.models:
                self.load(name)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0  # process start → live → every model loaded
        return self

    def _launch(self, env: dict[str, str]) -> None:
        """Start tritonserver in its own process group, tied to this process (death signal, watchdog, marker)."""
        self._logdir = Path(tempfile.mkdtemp(prefix="trtlab-triton-"))
        self.log_path, self._log_text = self._logdir / "tritonserver.log", None
        env[serve_process.MARKER] = serve_process.marker(self._logdir)
        # PR_SET_PDEATHSIG fires when the starting *thread* ends: only from the main thread (a kernel's cells)
        tie = serve_process.pdeathsig() if threading.current_thread() is threading.main_thread() else None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=tie)
        self._watchdog, self._watch_fd = serve_process.start_watchdog(self.process.pid, env[serve_process.MARKER])
        atexit.register(self.stop)

    def _wait_live(self, t0: float) -> bool:
        assert self.process is not None
        url = f"http://{self._client_host}:{self.http_port}/v2/health/live"
        while time.perf_counter() - t0 < self.startup_timeout_s:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM (Triton finishes in-flight requests within ``exit_timeout_s``), then SIGKILL; clean /dev/shm."""
        atexit.unregister(self.stop)
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)  # a stopped (frozen) server cannot act on SIGTERM
            except (ProcessLookupError, PermissionError):
                pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.exit_timeout_s + 20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # stubs are in the server's process group; make sure none outlives it
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.leaked_shm = self._clean_shm()
        self._release()
        return self.process.returncode

    def _release(self) -> None:
        """Keep the log in memory, let the watchdog go (it removes the temp folder too), remove the folder."""
        if self._logdir is None:
            return
        self._log_text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        os.close(self._watch_fd)
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
        shutil.rmtree(self._logdir, ignore_errors=True)
        self._logdir, self._watchdog, self._watch_fd = None, None, -1

    def _clean_shm(self) -> list[str]:
        new = set(glob.glob(SHM_PATTERN)) - self._shm_before
        if not new:
            return []
        time.sleep(0.2)
        live = serve_process.mapped_regions()
        removed = []
        for path in sorted(new):
            if os.path.basename(path) not in live:
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
        return removed

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if getattr(self, "process", None) is not None and (self.running or self._logdir is not None):
            self.stop()

    # models ------------------------------------------------------------------------------------------------------
    def _admin(self, timeout_s: float = 30.0) -> Any:
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(self.http_url, connection_timeout=min(timeout_s, 5.0),
                                                network_timeout=timeout_s)

    def load(self, name: str) -> None:
        """Load (or reload, e.g. after adding a version) one model; raises with Triton's reason if it fails."""
        self._require_running()
        admin = self._admin(self.load_timeout_s)
        try:
            admin.load_model(name)
        except Exception as err:
            raise TritonError(f"model '{name}' failed to load: {_reason(err)}\nCheck "
                              f"{self.repository.root / name / 'config.pbtxt'} and server.log_tail()") from err
        finally:
            admin.close()

    def unload(self, name: str) -> None:
        self._require_running()
        admin = self._admin()
        try:
            admin.unload_model(name)
        finally:
            admin.close()

    def ready(self, name: str | None = None, *, timeout_s: float = 5.0) -> bool:
        """Server ready (``name=None``) or model ready; False when nothing answers within ``timeout_s``."""
        try:
            admin = self._admin(timeout_s)
            try:
                return bool(admin.is_model_ready(name) if name else admin.is_server_ready())
            finally:
                admin.close()
        except Exception:  # noqa: BLE001 - "not ready" is the answer for a dead server
            return False

    def model_states(self) -> dict[str, str]:
        """Every model of the repository with its state (READY, UNAVAILABLE: reason, or not loaded)."""
        admin = self._admin()
        try:
            index = admin.get_model_repository_index()
        finally:
            admin.close()
        return {m["name"] + (f" v{m['version']}" if m.get("version") else ""):
                m.get("state", "not loaded") + (f": {m['reason']}" if m.get("reason") else "") for m in index}

    def _require_running(self) -> None:
        if not self.running:
            raise ServerUnavailable("the Triton server is not running" + (
                f" (it exited with code {self.process.returncode}; last log lines:\n{self.log_tail()})"
                if self.process is not None else "; start it: server.start() or `with TritonServer(...)`"))

    # observability -----------------------------------------------------------------------------------------------
    def log_tail(self, lines: int = 20) -> str:
        text = self._log_text
        if text is None:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its Python-backend stubs (its process group).

        Unlike throughput, CPU time per inference barely moves when other programs load the machine: it is the
        robust way to compare configurations on a shared computer.
        """
        if self.process is None:
            return float("nan")
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # pgrp: the server and the stubs it started
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def metrics(self) -> str:
        """Prometheus metrics text (inference counts, execution counts, queue and compute times, CPU, memory)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, OSError) as err:
            raise ServerUnavailable(f"no metrics at {self.metrics_url}: {err}; is the server running?") from err

    def statistics(self, name: str) -> dict[str, Any]:
        admin = self._admin()
        try:
            return admin.get_inference_statistics(name)
        finally:
            admin.close()

    def __repr__(self) -> str:
        state = f"running on {self.http_url} (HTTP), {self.grpc_url} (gRPC)" if self.running else "stopped"
        return f"<TritonServer {state}, repository {self.repository.root}>"


def docker_command(repository: ModelRepository | str | Path, *, image: str = NGC_IMAGE, gpus: str = "all",
                   http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
                   localhost_only: bool = True) -> str:
    """The ``docker run`` command that serves the repository with the NGC container on a GPU machine."""
    root = repository.root if isinstance(repository, ModelRepository) else Path(repository)
    bind = "127.0.0.1:" if localhost_only else ""
    return (f"docker run --rm --gpus {gpus} --shm-size=1g "
            f"-p {bind}{http_port}:8000 -p {bind}{grpc_port}:8001 -p {bind}{metrics_port}:8002 "
            f"-v {root.resolve()}:/models {image} "
            "tritonserver --model-repository=/models --model-control-mode=explicit --load-model='*'")


# ---------------------------------------------------------------- clients


def _protocol(protocol: str) -> str:
    if protocol not in ("http", "grpc"):
        raise ValueError(f"protocol must be 'http' or 'grpc'; got {protocol!r}")
    return protocol


def _address(target: TritonServer | str, protocol: str) -> str:
    return target.url(protocol) if isinstance(target, TritonServer) else str(target)


def _reason(err: BaseException) -> str:
    method = getattr(err, "message", None)
    message = method() if callable(method) else str(err)
    return str(message).strip() or type(err).__name__


def _translate(err: BaseException, address: str, model: str, timeout_s: float | None = None) -> TritonError:
    if isinstance(err, TritonError):
        return err
    text = _reason(err)
    if isinstance(err, TimeoutError) or any(s in text.lower() for s in ("deadline exceeded", "timed out")):
        return ServerTimeout(f"Triton at {address} did not answer within {timeout_s} s (model '{model}'; {text}): "
                             "the server is frozen, overloaded or stopped. Check server.ready() and "
                             "server.log_tail(); raise timeout_s only if the model is known to be that slow")
    dead = isinstance(err, (ConnectionError, OSError)) or any(
        s in text.lower() for s in ("connection refused", "failed to connect", "unavailable", "connect call failed",
                                    "cannot connect"))
    if dead:
        return ServerUnavailable(f"no Triton server answers at {address} ({text}); start it "
                                 "(tl.serve.TritonServer) or check the address and port")
    return TritonError(f"Triton rejected the request to model '{model}': {text}")


def client(target: TritonServer | str, *, protocol: str = "http", timeout_s: float = 30.0) -> Any:
    """A ``tritonclient`` InferenceServerClient for HTTP or gRPC."""
    if _protocol(protocol) == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(_address(target, "http"), connection_timeout=timeout_s,
                                                network_timeout=timeout_s)
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(_address(target, "grpc"))


def _module(protocol: str, aio: bool = False) -> Any:
    if _protocol(protocol) == "http":
        import tritonclient.http as m
        import tritonclient.http.aio as a
    else:
        import tritonclient.grpc as m
        import tritonclient.grpc.aio as a
    return a if aio else m


def _inputs(module: Any, feeds: Mapping[str, Any]) -> list[Any]:
    from tritonclient.utils import np_to_triton_dtype

    tensors = []
    for name, value in feeds.items():
        array = np.ascontiguousarray(value)
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        if module.__name__.endswith("http"):
            tensor.set_data_from_numpy(array, binary_data=True)
        else:
            tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def _outputs(module: Any, names: Sequence[str]) -> list[Any]:
    if module.__name__.endswith("http"):
        return [module.InferRequestedOutput(n, binary_data=True) for n in names]
    return [module.InferRequestedOutput(n) for n in names]


def _local_config(target: TritonServer | str, model: str) -> dict[str, Any] | None:
    """The model's config from our server's repository (no request), or None (then the server is asked)."""
    if not isinstance(target, TritonServer) or not (target.repository.root / model / "config.pbtxt").exists():
        return None
    from google.protobuf import json_format

    return json_format.MessageToDict(target.repository.config(model), preserving_proto_field_name=True)


def _ask_config(c: Any, model: str, protocol: str, timeout_s: float) -> Any:
    """The server's config of ``model`` (a dict, or a coroutine of one for the aio clients)."""
    if protocol == "grpc":
        return c.get_model_config(model, as_json=True, client_timeout=timeout_s)
    return c.get_model_config(model)


def infer(target: TritonServer | str, model: str, feeds: Mapping[str, Any], *, outputs: Sequence[str] = ("logits",),
          protocol: str = "http", timeout_s: float = 30.0, validate: bool = True) -> dict[str, np.ndarray]:
    """One synchronous request: ``feeds`` maps input names to arrays (with the batch dimension).

    ``validate`` checks the feeds against the model's config before sending (:class:`RequestMismatch`); with
    ``validate=False`` the server judges them (the pinned Triton aborts on some requests: see serve_requests).
    ``timeout_s`` bounds the call against a frozen server (:class:`ServerTimeout`).
    """
    module = _module(protocol)
    address = _address(target, protocol)
    try:
        c = client(target, protocol=protocol, timeout_s=timeout_s)
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    try:
        if validate:
            config = _local_config(target, model) or _ask_config(c, model, protocol, timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        extra = {"client_timeout": timeout_s} if protocol == "grpc" else {}
        result = c.infer(model, _inputs(module, feeds), outputs=_outputs(module, outputs), **extra)
        return {n: result.as_numpy(n) for n in outputs}
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    finally:
        c.close()


async def infer_async(target: TritonServer | str, model: str, feeds: Mapping[str, Any], *,
                      outputs: Sequence[str] = ("logits",), protocol: str = "http", timeout_s: float = 30.0,
                      validate: bool = True) -> dict[str, np.ndarray]:
    """One asynchronous request (``await`` it; gather many to keep the server busy). Arguments as :func:`infer`."""
    module = _module(protocol, aio=True)
    address = _address(target, protocol)
    c = module.InferenceServerClient(address)
    try:
        if validate:
            config = _local_config(target, model) or await asyncio.wait_for(
                _ask_config(c, model, protocol, timeout_s), timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        result = await asyncio.wait_for(
            c.infer(model, _inputs(_module(protocol), feeds), outputs=_outputs(_module(protocol), outputs)),
            timeout_s)
        return {n: result.as_numpy(n) for n in outputs}
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    finally:
        await c.close()


# ---------------------------------------------------------------- metrics


def parse_metrics(text: str) -> dict[tuple[str, str], float]:
    """Prometheus text → ``{(metric, model): value}`` summed over versions (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            # the parser names counter samples "<family>_total"; Triton's counters have no suffix
            name = family.name if sample.name == f"{family.name}_total" else sample.name
            key = (name, sample.labels.get("model", ""))
            values[key] = values.get(key, 0.0) + float(sample.value)
    return values


def average_batch_size(before: str, after: str, model: str) -> float:
    """Requests per execution between two metric snapshots: ``Δnv_inference_count / Δnv_inference_exec_count``."""
    b, a = parse_metrics(before), parse_metrics(after)
    count = a.get(("nv_inference_count", model), 0.0) - b.get(("nv_inference_count", model), 0.0)
    execs = a.get(("nv_inference_exec_count", model), 0.0) - b.get(("nv_inference_exec_count", model), 0.0)
    return count / execs if execs else float("nan")


def batch_size_counts(server: TritonServer, model: str) -> dict[int, int]:
    """Executions per batch size from the model's statistics (``/v2/models/<m>/stats``)."""
    stats = server.statistics(model)["model_stats"]
    counts: dict[int, int] = {}
    for version in stats:
        for entry in version.get("batch_stats", []):
            counts[int(entry["batch_size"])] = counts.get(int(entry["batch_size"]), 0) + int(
                entry["compute_infer"]["count"])
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- load test


@dataclass
class LoadResult:
    """One load-test point. Truthy when no request failed."""

    label: str
    model: str
    protocol: str
    concurrency: int
    requests: int
    failures: int
    duration_s: float
    latencies_ms: np.ndarray = field(repr=False)
    avg_batch: float = float("nan")
    errors: list[str] = field(default_factory=list, repr=False)
    server_cpu_s: float = float("nan")
    note: str = ""  # what went wrong with the run itself (the server died during it)

    def __bool__(self) -> bool:
        return self.failures == 0

    @property
    def throughput(self) -> float:
        """Successful inferences per second (each request is one image here)."""
        return (self.requests - self.failures) / self.duration_s if self.duration_s else 0.0

    @property
    def p50_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 50)) if len(self.latencies_ms) else float("nan")

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if len(self.latencies_ms) else float("nan")

    @property
    def server_cpu_ms(self) -> float:
        """Server CPU time (server + stubs) per successful inference, in ms."""
        done = self.requests - self.failures
        return 1e3 * self.server_cpu_s / done if done else float("nan")

    def to_row(self) -> dict[str, Any]:
        return {"config": self.label, "concurrency": self.concurrency, "requests": self.requests,
                "failures": self.failures, "infer/s": round(self.throughput, 1), "p50 ms": round(self.p50_ms, 2),
                "p99 ms": round(self.p99_ms, 2), "avg batch": round(self.avg_batch, 2),
                "server CPU ms/inf": round(self.server_cpu_ms, 3)}

    def __str__(self) -> str:
        return (f"{self.label:<22} c={self.concurrency:<3} {self.throughput:8.1f} infer/s  p50 {self.p50_ms:7.2f} ms  "
                f"p99 {self.p99_ms:7.2f} ms  avg batch {self.avg_batch:5.2f}  server CPU {self.server_cpu_ms:.2f} "
                f"ms/inf  failures {self.failures}/{self.requests}" + (f"\n  {self.note}" if self.note else ""))


async def _closed_loop(address: str, model: str, feeds: Mapping[str, Any], outputs: Sequence[str], protocol: str,
                       concurrency: int, requests: int, timeout_s: float, progress: Any,
                       server: TritonServer | None = None) -> tuple[list, list, float, int]:
    """Latencies (ms), errors, duration and the requests not sent because the server died (``server.running``)."""
    module, sync = _module(protocol, aio=True), _module(protocol)
    if protocol == "http":
        c = module.InferenceServerClient(address, conn_limit=concurrency, conn_timeout=timeout_s)
    else:
        c = module.InferenceServerClient(address)
    inputs, outs = _inputs(sync, feeds), _outputs(sync, outputs)
    latencies: list[float] = []
    errors: list[str] = []
    remaining = [requests]

    async def worker() -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            t0 = time.perf_counter()
            try:
                await asyncio.wait_for(c.infer(model, inputs, outputs=outs), timeout_s)
                latencies.append((time.perf_counter() - t0) * 1e3)
            except Exception as err:  # noqa: BLE001 - counted and reported, the load goes on
                errors.append(f"{type(err).__name__}: {_reason(err)}")
                if server is not None and not server.running:
                    remaining[0] = -abs(remaining[0])  # stop sending: the rest would fail the same way
            if progress is not None:
                progress.update(1)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        duration = time.perf_counter() - t0
        await c.close()
    return latencies, errors, duration, max(-remaining[0], 0)


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine from plain Python or from inside Jupyter (whose loop is already running)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def load_test(server: TritonServer | str, model: str, feeds: Mapping[str, Any], *, concurrency: int = 32,
              requests: int = 1000, protocol: str = "grpc", outputs: Sequence[str] = ("logits",),
              label: str | None = None, warmup: int = 50, timeout_s: float = 60.0,
              progress: bool = False, validate: bool = True) -> LoadResult:
    """Closed loop: ``concurrency`` clients each send the next request as soon as the previous answer arrives.

    gRPC by default: its client costs about half the CPU of the HTTP one per request, which matters when the
    clients share two cores with the server. ``warmup`` requests run first and are not counted. With a :class:`TritonServer`, the average batch size comes
    from the metrics endpoint (counts before and after). If the server dies during the run, the result keeps
    what was measured: answered and failed counts, and a ``note`` saying so (``bool(result)`` is False).
    ``validate`` checks the feeds once against the model's config, before any load (as :func:`infer`).
    """
    address = _address(server, protocol)
    if validate:
        c = client(server, protocol=protocol, timeout_s=timeout_s)
        try:
            config = _local_config(server, model) or _ask_config(c, model, protocol, timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        except Exception as err:
            raise _translate(err, address, model, timeout_s) from err
        finally:
            c.close()
    ours = server if isinstance(server, TritonServer) else None
    if warmup:
        _run_coroutine(_closed_loop(address, model, feeds, outputs, protocol, min(concurrency, warmup), warmup,
                                    timeout_s, None))
    before = server.metrics() if isinstance(server, TritonServer) else None
    cpu_before = server.cpu_seconds() if isinstance(server, TritonServer) else float("nan")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=requests, desc=f"{label or model} c={concurrency}", leave=False)
    try:
        latencies, errors, duration, unsent = _run_coroutine(
            _closed_loop(address, model, feeds, outputs, protocol, concurrency, requests, timeout_s, bar, ours))
    finally:
        if bar is not None:
            bar.close()
    avg = cpu = float("nan")
    note = ""
    if ours is not None and not ours.running:
        note = (f"the server died during the run (exit code {ours.process.returncode}): {len(latencies)} "
                f"requests answered, {len(errors)} failed, {unsent} not sent. Its last words: server.log_tail()")
    elif ours is not None:
        cpu = ours.cpu_seconds() - cpu_before
        time.sleep(0.6)  # metrics are refreshed every 500 ms (--metrics-interval-ms)
        avg = average_batch_size(before or "", ours.metrics(), model)
    return LoadResult(label or model, model, protocol, concurrency, requests, len(errors) + unsent, duration,
                      np.asarray(latencies), avg, errors[:10], cpu, note)


def results_table(results: Iterable[LoadResult]) -> str:
    """A plain-text table of load-test results."""
    rows = [r.to_row() for r in results]
    if not rows:
        return "(no results)"
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    line = "  ".join(k.rjust(widths[k]) for k in keys)
    return "\n".join([line, "-" * len(line)] + ["  ".join(str(r[k]).rjust(widths[k]) for k in keys) for r in rows])


def plot_sweep(results: Sequence[LoadResult], *, ax: Any = None) -> Any:
    """Throughput and p99 latency against concurrency, one line per configuration."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    labels = list(dict.fromkeys(r.label for r in results))
    for label in labels:
        points = sorted((r for r in results if r.label == label), key=lambda r: r.concurrency)
        c = [r.concurrency for r in points]
        ax[0].plot(c, [r.throughput for r in points], marker="o", label=label)
        ax[1].plot(c, [r.p99_ms for r in points], marker="o", label=label)
    ax[0].set(xlabel="concurrent clients", ylabel="inferences / s", title="throughput", xscale="log")
    ax[1].set(xlabel="concurrent clients", ylabel="ms", title="p99 latency", xscale="log", yscale="log")
    ax[0].legend()
    ax[0].figure.tight_layout()
    return ax


# ---------------------------------------------------------------- perf_analyzer


def perf_analyzer_binary() -> Path | None:
    """A ``perf_analyzer`` that runs here, or None.

    The PyPI ``perf-analyzer`` wheels need glibc >= 2.38 and ``tritonclient[all]`` ships a placeholder; the
    ``tritonclient==2.51.0`` wheel has a real binary (extract ``tritonclient-2.51.0.data/data/bin/perf_analyzer``
    onto PATH or set TRTLAB_PERF_ANALYZER).
    """
    candidates = [os.environ.get("TRTLAB_PERF_ANALYZER", ""), str(Path(sys.executable).parent / "perf_analyzer"),
                  shutil.which("perf_analyzer") or ""]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK) and path.stat().st_size > 1_000_000:
            return path
    return None


def _perf_analyzer_env() -> dict[str, str]:
    """perf_analyzer links libb64.so.0d and libcudart.so.12; nvidia-pytriton bundles both under hashed names."""
    from trtlab.paths import cache

    libs = cache() / "triton-backends" / "perf_analyzer_libs"
    libs.mkdir(parents=True, exist_ok=True)
    bundled = _bundled_server_dir().parent.parent / "nvidia_pytriton.libs"
    for wanted, pattern in (("libb64.so.0d", "libb64-*.so.0d"), ("libcudart.so.12", "libcudart-*.so.12*")):
        found = sorted(bundled.glob(pattern))
        if found and not (libs / wanted).exists():
            (libs / wanted).symlink_to(found[0])
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(libs), env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return env


def perf_analyzer(server: TritonServer, model: str, *, concurrency: Sequence[int] = (1, 8, 32), shape: str,
                  protocol: str = "grpc", timeout_s: float = 300.0, count_windows: int = 200,
                  stability_percent: int = 50) -> list[dict[str, float]]:
    """Run perf_analyzer (C++ load generator) over a concurrency range; rows of its CSV report.

    ``shape`` is e.g. ``"images:3,32,32"`` (without the batch dimension). Raises UnsupportedFeature without a binary.
    """
    import csv

    binary = perf_analyzer_binary()
    if binary is None:
        raise UnsupportedFeature("no working perf_analyzer: pip download --no-deps tritonclient==2.51.0, unzip "
                                 "tritonclient-2.51.0.data/data/bin/perf_analyzer onto PATH (see "
                                 "tl.serve.perf_analyzer_binary.__doc__)")
    report = Path(tempfile.mkdtemp(prefix="trtlab-pa-")) / "report.csv"
    lo, hi = min(concurrency), max(concurrency)
    step = (sorted(concurrency)[1] - lo) if len(concurrency) > 1 else 1
    cmd = [str(binary), "-m", model, "-i", protocol, "-u", server.url(protocol), "--shape", shape,
           f"--concurrency-range={lo}:{hi}:{max(step, 1)}", "--measurement-mode", "count_windows",
           "--measurement-request-count", str(count_windows), "--stability-percentage", str(stability_percent),
           "--max-trials", "8", "-f", str(report)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=_perf_analyzer_env())
    if done.returncode != 0:
        raise TritonError(f"perf_analyzer failed (exit {done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    with open(report) as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


PERF_ANALYZER_WHEEL = "tritonclient==2.51.0"


def install_perf_analyzer(target: str | Path | None = None) -> Path:
    """Extract ``perf_analyzer`` from the ``tritonclient==2.51.0`` wheel into this environment's ``bin/``.

    Only the binary is taken (the wheel's Python package would pin numpy<2 and protobuf<5).
    """
    import zipfile

    from trtlab.paths import cache

    target = Path(target) if target else Path(sys.executable).parent / "perf_analyzer"
    wheels = cache() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("tritonclient-2.51.0-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--platform", "manylinux1_x86_64", "-d", str(wheels), PERF_ANALYZER_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob("tritonclient-2.51.0-*.whl"))
        if done.returncode != 0 or not found:
            raise UnsupportedFeature(f"could not download {PERF_ANALYZER_WHEEL}: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(found[0]) as wheel:
        data = wheel.read("tritonclient-2.51.0.data/data/bin/perf_analyzer")
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)
    probe = subprocess.run([str(target), "--version"], capture_output=True, text=True, env=_perf_analyzer_env(),
                           timeout=60)
    if probe.returncode != 0:
        raise UnsupportedFeature(f"perf_analyzer does not run here: {(probe.stderr or probe.stdout)[-300:]}")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trtlab.serve prepare [--perf-analyzer]``: set up the stub environment (CI set-up step)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m trtlab.serve")
    parser.add_argument("command", choices=["prepare"])
    parser.add_argument("--perf-analyzer", action="store_true",
                        help=f"also extract perf_analyzer from the {PERF_ANALYZER_WHEEL} wheel into bin/")
    args = parser.parse_args(argv)
    print(f"tritonserver: {_bundled_server_dir() / 'bin' / 'tritonserver'}")
    print(check_python_backend())
    if args.perf_analyzer:
        print(f"perf_analyzer: {install_perf_analyzer()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
