"""Triton model configuration and the model repository on disk (Lab 06).

``config.pbtxt`` is generated from the model's real I/O with Triton's own protobuf schema
(``tritonclient.grpc.model_config_pb2``), so a config cannot name a field Triton does not know.
:class:`ModelRepository` lays out ``<root>/<model>/config.pbtxt`` and numbered versions for three kinds of model:
``tensorrt_plan`` and ``onnxruntime_onnx`` (the NGC container's backends) and Python-backend models, whose
``model.py`` is one of the files in ``trtlab/serve/triton_models/`` (the only backend of the bundled CPU server).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab.errors import ArtifactMissing, InputMismatch, InvalidArgument, TritonError
from trtlab.i18n import _
from trtlab.serve.pbtxt import config_schema, parse_config, triton_dtype

__all__ = ["BACKEND_MODELS", "DynamicBatching", "ModelRepository", "backend_model", "config_from_text", "config_schema",
           "config_text", "io_from_onnx", "model_config", "triton_dtype"]

#: The Python-backend models shipped as package data: each is copied as ``<model>/<version>/model.py``.
BACKEND_MODELS = Path(__file__).resolve().parent / "triton_models"


def backend_model(name: str) -> bytes:
    """The source of a shipped Python-backend model (``"onnx_runner"`` or ``"preprocess"``)."""
    path = BACKEND_MODELS / f"{name}.py"
    if not path.exists():
        known = sorted(p.stem for p in BACKEND_MODELS.glob("*.py"))
        raise ArtifactMissing(_("no Python-backend model '{name}' in {folder} (shipped: {known}); reinstall trtlab "
                                "if the folder is incomplete").format(name=name, folder=BACKEND_MODELS, known=known))
    return path.read_bytes()


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
        raise ArtifactMissing(_("ONNX file {path} not found; Lab 02 exports it "
                                "(tl.export.ensure_course_onnx())").format(path=path))
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
            raise InputMismatch(_("tensor '{name}': shape {shape} has no dynamic batch dimension, but max_batch_size "
                                  "> 0 needs one; export with a dynamic batch or set max_batch_size=0").format(
                                      name=spec.name, shape=tuple(shape)))
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
                _("model '{name}' has no {what}: Triton serves tensors named in config.pbtxt, and a config without "
                  "{what} is refused or useless. Expected at least one (got inputs={inputs}, outputs={outputs}); an "
                  "ONNX whose input was folded into a constant has none: re-export it with the input as a graph input "
                  "(tl.serve.io_from_onnx(path) shows what the file declares)").format(
                      name=name, what=what, inputs=list(inputs), outputs=list(outputs)))
    mc = config_schema()
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
    """Parse ``config.pbtxt`` text with Triton's schema; a typo raises with the line and column (:mod:`.pbtxt`)."""
    return parse_config(text)


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
            raise ArtifactMissing(_("no model '{name}' in {root}; models there: {models}").format(
                name=name, root=self.root, models=self.models()))
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

    def write_config_text(self, name: str, text: str) -> Path:
        """Write hand-written ``config.pbtxt`` text as it is (comments kept) for model ``name``, after parsing it
        with Triton's schema; the model's version folder ``1/`` is created if there is none (an ensemble's)."""
        config = config_from_text(text)
        if config.name not in ("", name):
            raise TritonError(_("config.pbtxt says name: \"{got}\" but goes to folder '{name}': Triton refuses a name "
                                "that differs from its folder; write name: \"{name}\" or no name").format(
                                    got=config.name, name=name))
        folder = self.root / name
        if not any(p.is_dir() and p.name.isdigit() for p in folder.glob("*")):
            (folder / "1").mkdir(parents=True, exist_ok=True)
        (folder / "config.pbtxt").write_text(text)
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
        return self._write(config, version, {"model.onnx": Path(onnx_path), "model.py": backend_model("onnx_runner")})

    def add_preprocess(self, name: str, *, input_size: Sequence[int], mean: Sequence[float], std: Sequence[float],
                       input_name: str = "raw", output_name: str = "images", max_batch_size: int = 64,
                       version: int = 1, instances: int = 1) -> Path:
        """A Python-backend pre-processing model: uint8 N×H×W×3 → normalised float32 N×3×H×W (Lab 04 on a GPU)."""
        from trtlab.runtime import TensorSpec

        h, w = (int(input_size[0]), int(input_size[-1]))
        config = model_config(
            name, inputs={input_name: TensorSpec(input_name, (None, h, w, 3), np.dtype(np.uint8))},
            outputs={output_name: TensorSpec(output_name, (None, 3, h, w), np.dtype(np.float32))},
            max_batch_size=max_batch_size, backend="python", instances=instances,
            parameters={"mean": json.dumps([float(m) for m in mean]), "std": json.dumps([float(v) for v in std])})
        return self._write(config, version, {"model.py": backend_model("preprocess")})

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
