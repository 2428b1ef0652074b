"""A plan on disk: the metadata sidecar written next to it, and the checks made before TensorRT sees a byte.

A plan is executable code, so :func:`load_plan` refuses one whose sha256 does not match its sidecar, and one built by
another TensorRT version or for another GPU with "rebuild with ..." instead of TensorRT's opaque deserialization
failure. Public through :mod:`trtlab.engine` (``tl.engine.load_plan``, ``tl.engine.EngineMetadata``, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

from trtlab import _compat, env
from trtlab.errors import ArtifactMissing, EngineMismatch, UnsupportedFeature

__all__ = ["EngineMetadata", "FORMAT", "LoadedEngine", "atomic_write", "check_compatible", "current_gpu",
           "deserialize", "load_plan", "read_metadata", "sha256", "write_plan"]

FORMAT = 1


def sha256(data: bytes | bytearray | memoryview | str | os.PathLike) -> str:
    """Hex sha256 of bytes, or of a file's contents (streamed)."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return hashlib.sha256(data).hexdigest()
    digest = hashlib.sha256()
    with open(data, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- metadata


@dataclass
class EngineMetadata:
    """What ``<plan>.json`` records about a plan; :func:`check_compatible` compares it with this machine."""

    backend: str  # "tensorrt" | "tensorrt_rtx"
    backend_version: str
    cuda_version: str | None
    gpu_name: str | None  # the GPU it was built on (None for an RTX build without a GPU)
    compute_capability: str | None  # "9.0" for a TensorRT build; None for RTX ahead-of-time builds
    rtx_targets: list[str] | None  # ["SM86", "SM89", "SM120"] for TensorRT-RTX
    precision: str
    onnx_sha256: str
    plan_sha256: str
    plan_bytes: int
    profiles: dict[str, list[list[int]]]  # input → [min, opt, max]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    build_seconds: float = 0.0
    builder_optimization_level: int = 3
    workspace_bytes: int | None = None
    onnx_path: str | None = None
    built_at: str = ""
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    @property
    def label(self) -> str:
        name = "TensorRT-RTX" if self.backend == "tensorrt_rtx" else "TensorRT"
        return f"{name} {self.backend_version}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EngineMetadata":
        """The metadata in ``data``; ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(data, Mapping):
            raise ValueError(f"it holds a JSON {type(data).__name__}, expected an object of fields")
        for name, kinds in _REQUIRED_FIELDS.items():
            if not isinstance(data.get(name), kinds):
                got = "missing" if name not in data else f"{data[name]!r} ({type(data[name]).__name__})"
                raise ValueError(f"field {name!r} is {got}, expected {' or '.join(k.__name__ for k in kinds)}")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


#: Sidecar fields the checks read, with their JSON types (a sidecar edited by hand is refused, not half-read).
_REQUIRED_FIELDS: dict[str, tuple[type, ...]] = {
    "backend": (str,), "backend_version": (str,), "precision": (str,), "onnx_sha256": (str,), "plan_sha256": (str,),
    "plan_bytes": (int,), "profiles": (dict,), "format": (int,), "rtx_targets": (list, type(None)),
    "compute_capability": (str, type(None)),
}


def _sidecar(plan_path: Path) -> Path:
    return plan_path.with_name(plan_path.name + ".json")


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, then rename: a crash never leaves half a plan behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_plan(path: str | os.PathLike, plan: bytes, metadata: EngineMetadata) -> Path:
    """Save ``plan`` and its sidecar ``<plan>.json`` atomically; the sidecar records the plan's sha256."""
    path = Path(path)
    metadata.plan_sha256 = sha256(plan)
    metadata.plan_bytes = len(plan)
    atomic_write(path, bytes(plan))
    atomic_write(_sidecar(path), metadata.to_json().encode())
    return path


def read_metadata(path: str | os.PathLike) -> EngineMetadata:
    """The sidecar of a plan; :class:`EngineMismatch` when it is missing or unreadable."""
    path = Path(path)
    side = _sidecar(path)
    if not side.exists():
        raise EngineMismatch(f"engine {path.name}: no metadata file {side.name} next to it | an unverified plan "
                             "cannot be loaded (a plan is executable code) | rebuild it with tl.engine.build(onnx, ...)")
    try:
        return EngineMetadata.from_dict(json.loads(side.read_text()))
    except (ValueError, TypeError) as err:
        raise EngineMismatch(f"engine {path.name}: metadata {side.name} is not a trtlab sidecar: {err} | expected "
                             "the JSON object tl.engine.build writes next to the plan | rebuild it with "
                             "tl.engine.build(onnx, ...); never edit a sidecar by hand") from err


# ---------------------------------------------------------------- compatibility


def _cc_of_target(target: str) -> tuple[int, int] | None:
    digits = target.removeprefix("SM")
    if not digits.isdigit():
        return None
    return int(digits[:-1]), int(digits[-1])


def check_compatible(meta: EngineMetadata, *, backend: str, backend_version: str,
                     compute_capability: tuple[int, int] | None, gpu_name: str | None = None) -> None:
    """Refuse a plan that this runtime cannot (or must not) execute, saying how to rebuild it.

    TensorRT plans are tied to the exact TensorRT version and to the GPU's compute capability; TensorRT-RTX plans
    run on the compute capabilities they were compiled for ahead of time.
    """
    rebuild = f"rebuild it here: tl.engine.build({meta.onnx_path or 'model.onnx'!r}, precision={meta.precision!r})"
    here = "TensorRT-RTX" if backend == "tensorrt_rtx" else "TensorRT"
    if meta.format != FORMAT:
        raise EngineMismatch(f"engine metadata format {meta.format}, this trtlab reads format {FORMAT} | {rebuild}")
    if meta.backend != backend:
        raise EngineMismatch(f"this engine was built by {meta.label}; the runtime here is {here} {backend_version} | "
                             f"TensorRT and TensorRT-RTX plans are not interchangeable | {rebuild}")
    if meta.backend_version != backend_version:
        raise EngineMismatch(f"this engine was built by {meta.label}; the runtime here is {here} {backend_version} | "
                             "a plan only loads in the exact TensorRT version that built it | " + rebuild)
    if compute_capability is None:
        raise UnsupportedFeature(f"running an engine needs an NVIDIA GPU; none is visible here | the plan itself "
                                 f"({meta.label}, {meta.precision}) is fine | run it on a GPU machine, or use "
                                 "tl.runtime.OnnxRuntimeRunner on the ONNX file")
    cc = f"{compute_capability[0]}.{compute_capability[1]}"
    if meta.backend == "tensorrt_rtx":
        targets = meta.rtx_targets or []
        allowed = {_cc_of_target(t) for t in targets if t != "CURRENT"}
        if "CURRENT" in targets and meta.compute_capability:
            major, minor = meta.compute_capability.split(".")
            allowed.add((int(major), int(minor)))
        if tuple(compute_capability) not in _compat.RTX_COMPUTE_CAPABILITIES:  # whatever the plan's targets say
            supported = ", ".join(f"{a}.{b}" for a, b in _compat.RTX_COMPUTE_CAPABILITIES)
            raise EngineMismatch(f"this TensorRT-RTX engine was compiled for {', '.join(targets) or 'no target'}; "
                                 f"this GPU ({gpu_name or 'unknown'}) has compute capability {cc}, which TensorRT-RTX "
                                 f"does not support at all (it runs on {supported}) | no RTX build can run here | "
                                 f"build a TensorRT engine on this GPU instead: install TensorRT (pip install -e "
                                 f"'.[tensorrt]') and tl.engine.build({meta.onnx_path or 'model.onnx'!r})")
        if tuple(compute_capability) not in allowed:
            raise EngineMismatch(f"this TensorRT-RTX engine was compiled for {', '.join(targets) or 'no target'}; "
                                 f"this GPU ({gpu_name or 'unknown'}) has compute capability {cc} | "
                                 f"{rebuild.removesuffix(')')}, rtx_targets=['CURRENT'])")
        return
    if meta.compute_capability != cc:
        raise EngineMismatch(f"this engine was built for a GPU of compute capability {meta.compute_capability} "
                             f"({meta.gpu_name}); this GPU ({gpu_name or 'unknown'}) is {cc} | engines are "
                             f"specific to the GPU architecture | {rebuild}")


def load_plan(path: str | os.PathLike, *, verify_runtime: bool = True) -> tuple[bytes, EngineMetadata]:
    """Read a plan after checking its sidecar: hash first (tampering), then version and GPU (portability).

    With ``verify_runtime=False`` only the hash is checked (to inspect a plan built for another machine).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(f"engine {path} does not exist | build it first: tl.engine.build(onnx_path, out={str(path)!r})")
    meta = read_metadata(path)
    plan = path.read_bytes()
    digest = sha256(plan)
    if digest != meta.plan_sha256:
        raise EngineMismatch(f"engine {path.name}: sha256 {digest[:12]}… but its metadata records "
                             f"{meta.plan_sha256[:12]}… | the plan was modified or replaced after it was built, and a "
                             "plan is executable code, so it is not loaded | rebuild it with tl.engine.build(...)")
    if verify_runtime:
        flavour = env.runtime_flavour()
        if flavour is None:
            _check_version_without_runtime(path, meta)
            raise UnsupportedFeature(f"engine {path.name} ({meta.label}, {meta.precision}): its sha256 matches its "
                                     "metadata, but no TensorRT-family runtime can execute engines on this machine, so "
                                     "whether it fits the GPU it will run on was not checked | use "
                                     "tl.runtime.OnnxRuntimeRunner here, or a machine with an NVIDIA GPU and TensorRT")
        gpu = current_gpu()
        check_compatible(meta, backend=flavour.module_name, backend_version=str(flavour.version),
                         compute_capability=gpu[1] if gpu else None, gpu_name=gpu[0] if gpu else None)
    return plan, meta


def _check_version_without_runtime(path: Path, meta: EngineMetadata) -> None:
    """Without a runtime, still compare the plan's TensorRT version with the same package installed here, if any:
    a plan from another version will not load on a GPU machine with this install either."""
    here = next((f for f in _compat.flavours() if f.module_name == meta.backend), None)
    if here is not None and str(here.version) != meta.backend_version:
        raise EngineMismatch(f"engine {path.name} was built by {meta.label}; {here.label} is installed here | a plan "
                             f"only loads in the exact TensorRT version that built it | rebuild it with this version: "
                             f"tl.engine.build({meta.onnx_path or 'model.onnx'!r}, precision={meta.precision!r})")


@dataclass
class LoadedEngine:
    """A deserialized engine with the runtime that owns it (the runtime must outlive the engine) and its metadata."""

    engine: Any
    runtime: Any
    metadata: EngineMetadata
    module: ModuleType


def deserialize(path: str | os.PathLike, *, logger: Any = None) -> LoadedEngine:
    """Verified load (:func:`load_plan`) + ``Runtime.deserialize_cuda_engine``."""
    import importlib

    plan, meta = load_plan(path)
    trt = importlib.import_module(meta.backend)
    runtime = trt.Runtime(logger or trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EngineMismatch(f"{meta.label} could not deserialize {Path(path).name} although its metadata matches "
                             "this machine | see the TensorRT log above; rebuild with tl.engine.build(...)")
    return LoadedEngine(engine, runtime, meta, trt)


def current_gpu() -> tuple[str, tuple[int, int]] | None:
    """(name, compute capability) of this machine's first GPU, or None: what a plan is built for and checked against."""
    gpus = env.capabilities().gpus
    return (gpus[0].name, gpus[0].compute_capability) if gpus else None
