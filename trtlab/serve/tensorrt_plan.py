"""Lab 06 on a GPU machine: serve Lab 03's TensorRT plan with NVIDIA's Triton container, and nothing else.

Learner cells call it ``tl.triton_tensorrt`` (an alias of this module).

A ``tensorrt_plan`` model is only as portable as its plan: Triton's TensorRT backend deserializes it with the
TensorRT *inside the container*, so the container release must ship the TensorRT version that built the plan.

- :data:`TRITON_RELEASES`: the one table of Triton container releases (``nvcr.io/nvidia/tritonserver:YY.MM-py3``)
  → the TensorRT version each ships, every row with the source that says so. Rows are added only from a source.
- :func:`write_repository`: a repository of its own (never the CPU one, whose Python-backend models import trtlab
  and ONNX Runtime, absent from the container): ``config.pbtxt`` from the plan's metadata sidecar (dims without
  the batch dimension, ``max_batch_size`` = the optimisation profile's max batch, dynamic batching) and
  ``1/model.plan`` (+ its sidecar).
- :func:`serving_release`: the plan's TensorRT (sidecar ``backend`` / ``backend_version``) against the table;
  :class:`PlanNotServable` when no release matches, including for TensorRT-RTX plans, which the ``tensorrt_plan``
  backend does not run.
- :func:`container_command`: checks the plan first, then the ``docker run`` command that mounts only this
  repository and loads only its model.
- :func:`offer_to_server`: on the CPU, the bundled Triton (Python backend only) must refuse the model for its
  missing TensorRT backend, not for its configuration.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trtlab import engine
from trtlab.errors import ArtifactMissing, InputMismatch, PlanNotServable, TritonError
from trtlab.i18n import _
from trtlab.serve.config import DynamicBatching, ModelRepository, config_from_text, model_config
from trtlab.serve.server import TritonServer, docker_command

__all__ = [
    "MISSING_BACKEND",
    "PlanNotServable",
    "TRITON_RELEASES",
    "TritonRelease",
    "container_command",
    "offer_to_server",
    "profile_max_batch",
    "serving_release",
    "write_repository",
]

SUPPORT_MATRIX = "https://docs.nvidia.com/deeplearning/frameworks/support-matrix/index.html"


@dataclass(frozen=True)
class TritonRelease:
    """One NGC Triton container release and the TensorRT it ships, with where that fact comes from."""

    release: str  # "24.02"
    tensorrt: str  # as the source gives it: "8.6.3" or "8.2.1.8"
    source: str

    @property
    def image(self) -> str:
        return f"nvcr.io/nvidia/tritonserver:{self.release}-py3"

    def ships(self, backend_version: str) -> bool:
        """True when the plan's TensorRT version agrees with every component the source gives."""
        given = self.tensorrt.split(".")
        return backend_version.split(".")[:len(given)] == given


#: Triton container releases (the ``-py3`` image, which has the TensorRT backend) → the TensorRT they ship.
#: Only rows whose source we could read are here. The TensorRT 10.x rows come from Triton's own release notes
#: ("Contents of the Triton Inference Server container"; their text is triton-inference-server/server
#: ``docs/introduction/release_notes.md`` of that release). Left out: the ``-trtllm-python-py3`` rows of Triton's
#: compatibility matrix (those images carry only the TensorRT-LLM and Python backends, and their TensorRT can
#: differ from the ``-py3`` image of the same month: 24.10-trtllm lists 10.4.0), and any 11.x release: no source we
#: could read gives a ``-py3`` release shipping TensorRT 11. Add a row from the Frameworks Support Matrix
#: (:data:`SUPPORT_MATRIX`) or the release's notes, or pass ``release=TritonRelease(...)`` with its source.
TRITON_RELEASES: tuple[TritonRelease, ...] = (
    TritonRelease("21.11", "8.0.3.4", "Triton release notes 21.11 (x64 Linux): "
                  "https://docs.nvidia.com/deeplearning/triton-inference-server/release-notes/rel_21-11.html"),
    TritonRelease("21.12", "8.2.1.8", "Triton release notes 21.12: "
                  "https://docs.nvidia.com/deeplearning/sdk/inference-release-notes/rel_21-12.html"),
    TritonRelease("24.02", "8.6.3", "Triton maintainers, dpkg in tritonserver:24.02-py3 (Frameworks Support Matrix): "
                  "https://github.com/triton-inference-server/server/issues/6959"),
    TritonRelease("24.10", "10.5.0.18", "Triton release notes 24.10, container contents 'NVIDIA TensorRT 10.5.0.18': "
                  "https://docs.nvidia.com/deeplearning/triton-inference-server/release-notes/rel-24-10.html"),
    TritonRelease("25.01", "10.8.0.43", "Triton release notes 25.01, container contents 'NVIDIA TensorRT 10.8.0.43': "
                  "https://docs.nvidia.com/deeplearning/triton-inference-server/release-notes/rel-25-01.html"),
)

#: What the bundled CPU server says when a model needs a backend it does not have.
MISSING_BACKEND = re.compile(r"unable to find backend library for backend '(?P<backend>[^']+)'")


# ---------------------------------------------------------------- the repository


def _numpy_dtype(trt_name: str, tensor: str) -> np.dtype:
    table = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
             "BOOL": np.bool_, "UINT8": np.uint8}
    if trt_name not in table:
        raise InputMismatch(_("tensor '{tensor}': TensorRT type {trt_name} has no NumPy/Triton equivalent here | "
                              "expected one of {table} | cast it in the ONNX model before building").format(
                                tensor=tensor, trt_name=trt_name, table=sorted(table)))
    return np.dtype(table[trt_name])


def profile_max_batch(meta: engine.EngineMetadata) -> int:
    """The largest batch every input's optimisation profile accepts (Triton's ``max_batch_size``)."""
    batches = []
    for name, (lo, _opt, hi) in meta.profiles.items():
        declared = meta.inputs.get(name, {}).get("shape", lo)
        if not declared or declared[0] != -1:
            raise InputMismatch(_("input '{name}' has a fixed first dimension {declared} | Triton's batching "
                                  "needs a dynamic batch dimension | export with a dynamic batch (Lab 02) and "
                                  "rebuild").format(name=name, declared=declared))
        if lo[0] != 1:
            raise InputMismatch(_("input '{name}': the profile's min batch is {lo} | Triton sends batches from 1 "
                                  "up | rebuild with batch=(1, opt, max)").format(name=name, lo=lo[0]))
        batches.append(int(hi[0]))
    return min(batches)


def _specs(meta: engine.EngineMetadata, group: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from trtlab.runtime import TensorSpec

    return {name: TensorSpec(name, tuple(None if d == -1 else int(d) for d in t["shape"]),
                             _numpy_dtype(t["dtype"], name)) for name, t in group.items()}


def write_repository(root: str | Path, plan: str | Path, *, name: str = "classifier_trt",
                     dynamic_batching: DynamicBatching | bool = True) -> ModelRepository:
    """A fresh repository holding one ``tensorrt_plan`` model: ``<name>/config.pbtxt`` and ``<name>/1/model.plan``.

    I/O, dtypes and ``max_batch_size`` come from the plan's sidecar, so the config cannot disagree with the plan.
    """
    plan = Path(plan)
    if not plan.exists():
        raise ArtifactMissing(_("plan {plan} not found | Lab 03 builds it "
                                "(tl.engine.build(onnx_path, out=...))").format(
                                  plan=plan))
    meta = engine.read_metadata(plan)
    config = model_config(name, inputs=_specs(meta, meta.inputs), outputs=_specs(meta, meta.outputs),
                                max_batch_size=profile_max_batch(meta), platform="tensorrt_plan",
                                dynamic_batching=dynamic_batching, kind="KIND_GPU")
    repo = ModelRepository(root, clean=True)
    folder = repo._write(config, 1, {"model.plan": plan})
    shutil.copyfile(f"{plan}.json", folder / "1" / "model.plan.json")  # the sidecar travels with the plan
    return repo


# ---------------------------------------------------------------- which container runs the plan


def serving_release(meta: engine.EngineMetadata, release: TritonRelease | None = None) -> TritonRelease:
    """The container release whose TensorRT runs this plan; :class:`PlanNotServable` says why none does."""
    if meta.backend != "tensorrt":
        raise PlanNotServable(
            _("this plan was built by {label}; Triton's tensorrt_plan backend deserializes standard TensorRT "
              "plans only | expected a plan built by TensorRT (tensorrt) on the GPU that will serve it | on a GPU "
              "machine build it with TensorRT inside the Triton release's TensorRT container, then rerun this "
              "cell").format(label=meta.label))
    candidates = [release] if release else list(TRITON_RELEASES)
    for row in candidates:
        if row.ships(meta.backend_version):
            return row
    known = ", ".join(f"{r.release}: TensorRT {r.tensorrt}" for r in candidates)
    raise PlanNotServable(
        _("this plan was built by {label}; no Triton release here ships it ({known}) | a plan loads only with the "
          "TensorRT that built it | find the release shipping TensorRT {backend_version} in {matrix} and "
          "pass release=tl.triton_tensorrt.TritonRelease('YY.MM', '{backend_version}', source=...), or rebuild "
          "the plan with a listed release's TensorRT").format(
            label=meta.label, known=known, backend_version=meta.backend_version, matrix=SUPPORT_MATRIX))


def container_command(repository: ModelRepository, *, name: str = "classifier_trt",
                      release: TritonRelease | None = None, metadata: engine.EngineMetadata | None = None,
                      gpus: str = "all") -> str:
    """``docker run`` for this repository only, loading only ``name``, in the release that ships the plan's TensorRT.

    ``metadata`` defaults to the sidecar next to ``<name>/1/model.plan``; the check runs before anything is printed.
    """
    meta = metadata or engine.read_metadata(repository.root / name / "1" / "model.plan")
    row = serving_release(meta, release)
    command = docker_command(repository, image=row.image, gpus=gpus)
    return command.replace("--load-model='*'", f"--load-model={name}")


# ---------------------------------------------------------------- the CPU server's answer


def offer_to_server(server: TritonServer, name: str = "classifier_trt") -> str:
    """Load the model into the bundled CPU server and return the backend it is missing.

    Raises :class:`TritonError` if the server refuses for any other reason (a config error) or accepts it.
    """
    config_from_text((server.repository.root / name / "config.pbtxt").read_text())  # Triton's schema
    try:
        server.load(name)
    except TritonError as err:
        found = MISSING_BACKEND.search(str(err))
        if found is None:
            raise TritonError(_("model '{name}' was refused, but not for a missing backend: {err}").format(
                                  name=name, err=err)) from err
        return found["backend"]
    raise TritonError(_("model '{name}' loaded on a server without a TensorRT backend: expected a refusal").format(
                          name=name))
