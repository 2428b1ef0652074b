"""Serve the model with a real Triton Inference Server (Lab 06): the short face of ``tl.serve``.

Six pieces, one module each:

- :mod:`~trtlab.serve.config`: the model repository (:class:`ModelRepository`), ``config.pbtxt`` generated from
  the model's real I/O with Triton's own protobuf schema; Python-backend models are the files in
  ``trtlab/serve/triton_models/`` (the only backend of the CPU server bundled in ``nvidia-pytriton``).
  :mod:`~trtlab.serve.pbtxt` reads hand-written text: :func:`parse_config`, :func:`check_model_config`,
  :func:`check_ensemble_config` name what is wrong against the models' real I/O.
- :mod:`~trtlab.serve.server`: the server process (:class:`TritonServer`), its stub environment, and
  :func:`docker_command` for the NGC container; :mod:`~trtlab.serve.process` keeps it from outliving its kernel.
- :mod:`~trtlab.serve.clients`: :func:`infer` / :func:`infer_async` over HTTP or gRPC, feeds checked against the
  model's config before sending (:mod:`~trtlab.serve.feeds`); :class:`TritonRunner` (:mod:`~trtlab.serve.runner`)
  puts a served model in the same loop as the other runners (``tl.bench.compare``).
- :mod:`~trtlab.serve.load`: :func:`load_test` (closed loop, like perf_analyzer), metrics, :func:`plot_sweep`.
- :mod:`~trtlab.serve.perf`: :func:`perf_analyzer` where its binary runs (``python -m trtlab.serve prepare
  --perf-analyzer`` installs it).
- :mod:`~trtlab.serve.http_baseline`: :class:`HttpBaseline`, the plain FastAPI service Triton is measured against.

Lab 03's TensorRT plan gets a repository of its own in :mod:`~trtlab.serve.tensorrt_plan` (``tl.triton_tensorrt``).

    repo = tl.serve.ModelRepository(tl.paths.artifacts() / "triton")
    repo.add_python_runner("classifier", onnx_path, max_batch_size=64, dynamic_batching=True)
    with tl.serve.TritonServer(repo, models=["classifier"]) as server:
        logits = tl.serve.infer(server, "classifier", {"images": batch})["logits"]
"""

from __future__ import annotations

from trtlab.errors import (ArtifactMissing, InputMismatch, InvalidArgument, PortInUse, RequestMismatch, ServerTimeout,
                           ServerUnavailable, TritonError, UnsupportedFeature)
from trtlab.serve.clients import as_triton_error, client, infer, infer_async
from trtlab.serve.config import (DynamicBatching, ModelRepository, config_from_text, config_schema, config_text,
                                 io_from_onnx, model_config, triton_dtype)
from trtlab.serve.http_baseline import HttpBaseline
from trtlab.serve.load import (LoadResult, average_batch_size, batch_size_counts, load_test, parse_metrics, plot_sweep,
                               results_table)
from trtlab.serve.pbtxt import (check_ensemble_config, check_model_config, ensemble_problems, model_problems,
                                parse_config)
from trtlab.serve.perf import install_perf_analyzer, perf_analyzer, perf_analyzer_binary
from trtlab.serve.runner import TritonRunner
from trtlab.serve.server import (NGC_IMAGE, SHM_PATTERN, STUB_NUMPY, TritonServer, check_python_backend,
                                 docker_command, stub_python_bin)

__all__ = [
    "ArtifactMissing",
    "DynamicBatching",
    "HttpBaseline",
    "InputMismatch",
    "InvalidArgument",
    "LoadResult",
    "ModelRepository",
    "NGC_IMAGE",
    "PortInUse",
    "RequestMismatch",
    "SHM_PATTERN",
    "STUB_NUMPY",
    "ServerTimeout",
    "ServerUnavailable",
    "TritonError",
    "TritonRunner",
    "TritonServer",
    "UnsupportedFeature",
    "as_triton_error",
    "average_batch_size",
    "batch_size_counts",
    "check_ensemble_config",
    "check_model_config",
    "check_python_backend",
    "client",
    "config_from_text",
    "config_schema",
    "config_text",
    "docker_command",
    "ensemble_problems",
    "infer",
    "infer_async",
    "install_perf_analyzer",
    "io_from_onnx",
    "load_test",
    "model_config",
    "model_problems",
    "parse_config",
    "parse_metrics",
    "perf_analyzer",
    "perf_analyzer_binary",
    "plot_sweep",
    "results_table",
    "stub_python_bin",
    "triton_dtype",
]
