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
from trtlab.i18n import _

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
            raise ValueError(_("it holds a JSON {type}, expected an object of fields").format(
                                 type=type(data).__name__))
        for name, kinds in _REQUIRED_FIELDS.items():
            if not isinstance(data.get(name), kinds):
                got = _("missing") if name not in data else f"{data[name]!r} ({type(data[name]).__name__})"
                raise ValueError(_("field {name!r} is {got}, expected {types}").format(
                                     name=name, got=got, types=_(' or ').join(k.__name__ for k in kinds)))
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
        raise EngineMismatch(_("engine {name}: no metadata file {sidecar} next to it | an unverified plan cannot be "
                               "loaded (a plan is executable code) | rebuild it with "
                               "tl.engine.build(onnx, ...)").format(
                                 name=path.name, sidecar=side.name))
    try:
        return EngineMetadata.from_dict(json.loads(side.read_text()))
    except (ValueError, TypeError) as err:
        raise EngineMismatch(_("engine {name}: metadata {sidecar} is not a trtlab sidecar: {err} | expected the JSON "
                               "object tl.engine.build writes next to the plan | rebuild it with "
                               "tl.engine.build(onnx, ...); never edit a sidecar by hand").format(
                                 name=path.name, sidecar=side.name, err=err)) from err


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
    rebuild = _("rebuild it here: {call}").format(
        call=f"tl.engine.build({meta.onnx_path or 'model.onnx'!r}, precision={meta.precision!r})")
    here = "TensorRT-RTX" if backend == "tensorrt_rtx" else "TensorRT"
    if meta.format != FORMAT:
        raise EngineMismatch(_("engine metadata format {format}, this trtlab reads format {FORMAT} | {rebuild}").format(
                                 format=meta.format, FORMAT=FORMAT, rebuild=rebuild))
    if meta.backend != backend:
        raise EngineMismatch(_("this engine was built by {label}; the runtime here is {here} {backend_version} | "
                               "TensorRT and TensorRT-RTX plans are not interchangeable | {rebuild}").format(
                                 label=meta.label, here=here, backend_version=backend_version, rebuild=rebuild))
    if meta.backend_version != backend_version:
        raise EngineMismatch(_("this engine was built by {label}; the runtime here is {here} {backend_version} | a "
                               "plan only loads in the exact TensorRT version that built it | {rebuild}").format(
                                 label=meta.label, here=here, backend_version=backend_version, rebuild=rebuild))
    if compute_capability is None:
        raise UnsupportedFeature(_("running an engine needs an NVIDIA GPU; none is visible here | the plan itself "
                                   "({label}, {precision}) is fine | run it on a GPU machine, or use "
                                   "tl.runtime.OnnxRuntimeRunner on the ONNX file").format(
                                     label=meta.label, precision=meta.precision))
    cc = f"{compute_capability[0]}.{compute_capability[1]}"
    if meta.backend == "tensorrt_rtx":
        targets = meta.rtx_targets or []
        allowed = {_cc_of_target(t) for t in targets if t != "CURRENT"}
        if "CURRENT" in targets and meta.compute_capability:
            major, minor = meta.compute_capability.split(".")
            allowed.add((int(major), int(minor)))
        if tuple(compute_capability) not in _compat.RTX_COMPUTE_CAPABILITIES:  # whatever the plan's targets say
            supported = ", ".join(f"{a}.{b}" for a, b in _compat.RTX_COMPUTE_CAPABILITIES)
            raise EngineMismatch(_("this TensorRT-RTX engine was compiled for {targets}; this GPU ({gpu}) has "
                                   "compute capability {cc}, which TensorRT-RTX does not support at all (it runs on "
                                   "{supported}) | no RTX build can run here | build a TensorRT engine on this GPU "
                                   "instead: install TensorRT (pip install -e '.[tensorrt]') and "
                                   "tl.engine.build({onnx!r})").format(
                                     targets=', '.join(targets) or _('no target'), gpu=gpu_name or _('unknown'), cc=cc,
                                     supported=supported, onnx=meta.onnx_path or 'model.onnx'))
        if tuple(compute_capability) not in allowed:
            raise EngineMismatch(_("this TensorRT-RTX engine was compiled for {targets}; this GPU ({gpu}) has "
                                   "compute capability {cc} | {rebuild_call}, rtx_targets=['CURRENT'])").format(
                                     targets=', '.join(targets) or _('no target'), gpu=gpu_name or _('unknown'), cc=cc,
                                     rebuild_call=rebuild.removesuffix(')')))
        return
    if meta.compute_capability != cc:
        raise EngineMismatch(_("this engine was built for a GPU of compute capability {compute_capability} "
                               "({gpu_name}); this GPU ({gpu}) is {cc} | engines are specific to the GPU "
                               "architecture | {rebuild}").format(
                                 compute_capability=meta.compute_capability, gpu_name=meta.gpu_name,
                                 gpu=gpu_name or _('unknown'), cc=cc, rebuild=rebuild))


def load_plan(path: str | os.PathLike, *, verify_runtime: bool = True) -> tuple[bytes, EngineMetadata]:
    """Read a plan after checking its sidecar: hash first (tampering), then version and GPU (portability).

    With ``verify_runtime=False`` only the hash is checked (to inspect a plan built for another machine).
    """
    path = Path(path)
    if not path.exists():
        raise ArtifactMissing(_("engine {path} does not exist | build it first: tl.engine.build(onnx_path, "
                                "out={out!r})").format(path=path, out=str(path)))
    meta = read_metadata(path)
    plan = path.read_bytes()
    digest = sha256(plan)
    if digest != meta.plan_sha256:
        raise EngineMismatch(_("engine {name}: sha256 {digest}… but its metadata records {plan_sha256}… | the plan "
                               "was modified or replaced after it was built, and a plan is executable code, so it is "
                               "not loaded | rebuild it with tl.engine.build(...)").format(
                                 name=path.name, digest=digest[:12], plan_sha256=meta.plan_sha256[:12]))
    if verify_runtime:
        flavour = env.runtime_flavour()
        if flavour is None:
            _check_version_without_runtime(path, meta)
            raise UnsupportedFeature(_("engine {name} ({label}, {precision}): its sha256 matches its metadata, but no "
                                       "TensorRT-family runtime can execute engines on this machine, so whether it "
                                       "fits the GPU it will run on was not checked | use "
                                       "tl.runtime.OnnxRuntimeRunner here, or a machine with an NVIDIA GPU and "
                                       "TensorRT").format(name=path.name, label=meta.label, precision=meta.precision))
        gpu = current_gpu()
        check_compatible(meta, backend=flavour.module_name, backend_version=str(flavour.version),
                         compute_capability=gpu[1] if gpu else None, gpu_name=gpu[0] if gpu else None)
    return plan, meta


def _check_version_without_runtime(path: Path, meta: EngineMetadata) -> None:
    """Without a runtime, still compare the plan's TensorRT version with the same package installed here, if any:
    a plan from another version will not load on a GPU machine with this install either."""
    here = next((f for f in _compat.flavours() if f.module_name == meta.backend), None)
    if here is not None and str(here.version) != meta.backend_version:
        raise EngineMismatch(_("engine {name} was built by {label}; {installed} is installed here | a plan only "
                               "loads in the exact TensorRT version that built it | rebuild it with this version: "
                               "tl.engine.build({onnx!r}, precision={precision!r})").format(
                                 name=path.name, label=meta.label, installed=here.label,
                                 onnx=meta.onnx_path or 'model.onnx', precision=meta.precision))


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
        raise EngineMismatch(_("{label} could not deserialize {name} although its metadata matches this machine | see "
                               "the TensorRT log above; rebuild with tl.engine.build(...)").format(
                                 label=meta.label, name=Path(path).name))
    return LoadedEngine(engine, runtime, meta, trt)


def current_gpu() -> tuple[str, tuple[int, int]] | None:
    """(name, compute capability) of this machine's first GPU, or None: what a plan is built for and checked against."""
    gpus = env.capabilities().gpus
    return (gpus[0].name, gpus[0].compute_capability) if gpus else None
