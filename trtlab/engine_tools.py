"""The field's tools around a build: the ``trtexec`` command line that reproduces it, the engine inspector's layer
information, and per-layer timing with ``IProfiler``. Learners reach them through :mod:`trtlab.engine`
(``tl.engine.trtexec_command``, ``tl.engine.layer_precisions``, ...); this module imports nothing of it.

Every trtexec flag used here was checked against trtexec's own help text, per major version. Sources: [10] the help
printed by trtexec 10.5 (``[TensorRT v100500] trtexec --help``); [11] github.com/NVIDIA/TensorRT
samples/trtexecCommon/sampleOptions.cpp (11.4; ``samples/common`` before); [M] docs.nvidia.com/deeplearning/tensorrt/
11.0.0/api/migration/tensorrt-10x-to-11x-trtexec.html; [R] samples/trtexec/README.md (10.x), Example 6.

- ``--onnx``, ``--saveEngine``, ``--minShapes/--optShapes/--maxShapes`` and ``--shapes`` (``name:1x3x32x32``,
  comma-separated; a name with ``:`` goes in single quotes, ``'Input:0'``): same in 10.x and 11.x [10][11].
- ``--stronglyTyped``: 10.x makes the network strongly typed, and precision flags are "not allowed" with it [R];
  11.x: "[Deprecated] Strongly typed network is now enabled by default. This flag is a no-op." [11], so omitted.
- ``--fp16``, ``--int8``, ``--best`` (weak typing): 10.x only; removed in 11.0 [M].
- ``--memPoolSize=workspace:<n>M`` (B/K/M/G suffixes, MiB without), ``--timingCacheFile``,
  ``--profilingVerbosity=layer_names_only|detailed|none``, ``--builderOptimizationLevel`` (0..5, default 3),
  ``--skipInference``, ``--dumpLayerInfo``, ``--exportLayerInfo``, ``--dumpProfile``, ``--exportProfile``: same
  in both [10][11].
- ``--separateProfileRun``: opt-in in 10.x [10]; 11.x "now always enabled. This flag is a no-op." [11].
- CUDA graph: off in 10.x, ``--useCudaGraph`` turns it on [10]; on in 11.x, ``--noCudaGraph`` turns it off and
  ``--useCudaGraph`` is a deprecated no-op [11].
- H2D/D2H transfers: timed in 10.x, ``--noDataTransfers`` drops them [10]; dropped in 11.x,
  ``--includeDataTransfers`` adds them and ``--noDataTransfers`` is a deprecated no-op [11].

TensorRT-RTX builds its own variant of this tool from the same source (``TRT_WINML``: ``--computeCapabilities``,
``--useGpu``, no ``--versionCompatible``); its executable's name is not verified here, so trtlab prints TensorRT's
command only and says so.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab.errors import InvalidArgument, UnsupportedFeature
from trtlab.i18n import _

__all__ = ["BuildSettings", "LayerPrecision", "TrtexecCommand", "engine_information", "layer_precisions",
           "layer_times", "run_trtexec", "trtexec_command", "trtexec_version"]

#: trtexec's values for ``--profilingVerbosity`` (both majors); the course uses the same names.
_VERBOSITIES = ("layer_names_only", "detailed", "none")


@dataclass(frozen=True)
class BuildSettings:
    """What a build was asked to do, in the terms trtexec needs. :func:`trtlab.engine.build` records one on its
    result; write one by hand for a build made elsewhere (``weak_precision`` = the 10.x ``BuilderFlag.FP16/INT8``
    on an unchanged fp32 ONNX, i.e. a weakly typed network)."""

    onnx: str
    plan: str
    precision: str = "fp32"  # what the ONNX holds: fp32, fp16 (AutoCast) or int8 (Q/DQ)
    inputs: Mapping[str, Sequence[int]] = field(default_factory=dict)  # declared shapes, -1 = dynamic
    profiles: Mapping[str, Sequence[Sequence[int]]] = field(default_factory=dict)  # name -> (min, opt, max)
    workspace_mib: int | None = 1024
    optimization_level: int = 3
    profiling_verbosity: str = "detailed"
    timing_cache: str | None = None
    weak_precision: tuple[str, ...] = ()  # ("fp16",), ("int8",): weak typing, TensorRT 10.x only

    @property
    def strongly_typed(self) -> bool:
        return not self.weak_precision


@dataclass(frozen=True)
class TrtexecCommand:
    """One trtexec command line: ``argv`` for ``subprocess.run``, ``shell`` to paste into a terminal."""

    argv: tuple[str, ...]
    trt_version: str
    notes: tuple[str, ...] = ()

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)

    def __str__(self) -> str:
        return " \\\n    ".join(shlex.quote(a) for a in self.argv)


def _shape_spec(name: str, dims: Sequence[int]) -> str:
    """``images:8x3x32x32``; a name holding ``:`` or ``,`` is wrapped in single quotes, as trtexec's help says."""
    quoted = f"'{name}'" if (":" in name or "," in name) else name
    return f"{quoted}:{'x'.join(str(int(d)) for d in dims)}"


def _major(trt_version: str | int) -> int:
    major = str(trt_version).split(".")[0]
    if major not in ("10", "11"):
        raise InvalidArgument(_("trt_version={version!r}: trtlab writes trtexec commands for TensorRT 10.x and "
                                "11.x | expected '10' or '11' (the major version of the trtexec you will run)").format(
                                    version=trt_version))
    return int(major)


def trtexec_command(build: Any, trt_version: str | int = "11", *, shapes: Mapping[str, Sequence[int]] | None = None,
                    layer_info: bool = False, profile: bool = False, cuda_graph: bool | None = None,
                    data_transfers: bool | None = None, skip_inference: bool = False,
                    executable: str = "trtexec") -> TrtexecCommand:
    """The trtexec command equivalent to ``build`` (an :class:`~trtlab.engine.EngineBuild` or a
    :class:`BuildSettings`) for trtexec ``trt_version`` ("10" or "11").

    The engine goes to ``<plan stem>.trtexec.plan``, next to the course's plan (whose sidecar would not match it).
    ``shapes``: the inference shape per input (default: the profile's opt shape). ``layer_info`` adds
    ``--dumpLayerInfo --exportLayerInfo=<engine>.layers.json``; ``profile`` adds per-layer timing
    (``--dumpProfile --exportProfile=<engine>.profile.json``, plus ``--separateProfileRun`` on 10.x, always on in 11).
    ``cuda_graph`` / ``data_transfers``: None keeps that version's default (10.x: no graph, transfers timed; 11.x:
    graph, no transfers); True/False adds the flag that sets it, so 10.x and 11.x runs can be made comparable.
    """
    settings: BuildSettings = getattr(build, "settings", build)
    if not isinstance(settings, BuildSettings):
        raise InvalidArgument(_("trtexec_command needs a tl.engine.build(...) result or a BuildSettings; got "
                                "{kind} | pass the EngineBuild that tl.engine.build returned").format(
                                    kind=type(build).__name__))
    major = _major(trt_version)
    notes: list[str] = []
    plan = str(Path(settings.plan).with_suffix(".trtexec.plan"))  # never over the course's plan and its sidecar
    argv = [executable, f"--onnx={settings.onnx}", f"--saveEngine={plan}"]
    if settings.weak_precision:
        if major >= 11:
            raise UnsupportedFeature(_(
                "a weakly typed {precision} build has no TensorRT 11 equivalent: 11.0 removed "
                "trtexec's --fp16/--int8/--best (and BuilderFlag.FP16/INT8) because every network is strongly typed "
                "| convert the ONNX instead (tl.precision.autocast_fp16 / tl.precision.quantize_int8), build that, "
                "or ask for trt_version='10'").format(precision="+".join(settings.weak_precision)))
        argv += [f"--{p}" for p in settings.weak_precision]
        notes.append(_("weak typing: deprecated in 10.12, removed in 11.0"))
    elif major == 10:
        argv.append("--stronglyTyped")  # 11.x: a deprecated no-op, so it is left out there
    dynamic = [n for n, dims in settings.inputs.items() if any(int(d) < 0 for d in dims)]
    if dynamic:
        for flag, i in (("--minShapes", 0), ("--optShapes", 1), ("--maxShapes", 2)):
            argv.append(f"{flag}=" + ",".join(_shape_spec(n, settings.profiles[n][i]) for n in dynamic))
        wanted = dict(shapes or {})
        unknown = sorted(set(wanted) - set(dynamic))
        if unknown:
            raise InvalidArgument(_("shapes names {unknown}, which are not dynamic inputs of this build | dynamic "
                                    "inputs: {dynamic}").format(unknown=unknown, dynamic=dynamic))
        argv.append("--shapes=" + ",".join(_shape_spec(n, wanted.get(n, settings.profiles[n][1])) for n in dynamic))
    if settings.workspace_mib is not None:
        argv.append(f"--memPoolSize=workspace:{int(settings.workspace_mib)}M")
    argv.append(f"--builderOptimizationLevel={int(settings.optimization_level)}")
    verbosity = str(settings.profiling_verbosity).lower()
    if verbosity not in _VERBOSITIES:
        raise InvalidArgument(_("profiling_verbosity={value!r} | expected one of {known}").format(
            value=settings.profiling_verbosity, known=_VERBOSITIES))
    argv.append(f"--profilingVerbosity={verbosity}")
    if settings.timing_cache:
        argv.append(f"--timingCacheFile={settings.timing_cache}")
    if skip_inference:
        argv.append("--skipInference")
    else:
        argv += _timing_flags(major, cuda_graph, data_transfers)
    if layer_info:
        argv += ["--dumpLayerInfo", f"--exportLayerInfo={plan}.layers.json"]
    if profile:
        argv += ["--dumpProfile", f"--exportProfile={plan}.profile.json"]
        if major == 10:
            argv.append("--separateProfileRun")  # 11.x: always separate (the flag is a no-op there)
    return TrtexecCommand(tuple(argv), str(major), tuple(notes))


def _timing_flags(major: int, cuda_graph: bool | None, data_transfers: bool | None) -> list[str]:
    """Only the flags that change that version's default (10.x: graph off, transfers on; 11.x: the reverse)."""
    flags = []
    if cuda_graph is not None and cuda_graph != (major >= 11):
        flags.append("--useCudaGraph" if cuda_graph else "--noCudaGraph")
    if data_transfers is not None and data_transfers != (major < 11):
        flags.append("--includeDataTransfers" if data_transfers else "--noDataTransfers")
    return flags


def trtexec_version(executable: str = "trtexec") -> str | None:
    """The major version of the trtexec on PATH ("10", "11"), read from its banner ``[TensorRT v100500]``;
    None when there is none."""
    path = shutil.which(executable)
    if path is None:
        return None
    out = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=60)
    found = re.search(r"\[TensorRT v(\d+)\]", out.stdout + out.stderr)
    return str(int(found.group(1)) // 10000) if found else None


def run_trtexec(command: TrtexecCommand, *, timeout_s: float = 600) -> subprocess.CompletedProcess:
    """Run the command (its output captured) where trtexec is installed; UnsupportedFeature where it is not."""
    if shutil.which(command.argv[0]) is None:
        raise UnsupportedFeature(_("{tool} is not installed here (the pip wheels do not ship it) | run "
                                   "the printed command on a machine with TensorRT's tar/deb package or the NGC "
                                   "container").format(tool=command.argv[0]))
    return subprocess.run(list(command.argv), capture_output=True, text=True, timeout=timeout_s, check=False)


# ---------------------------------------------------------------- which precision each layer runs in

#: TensorRT ``DataType`` names and the inspector's spellings ("Row major linear FP32", 11.x "DataType": "Float"),
#: as NumPy-style names. Inspector spellings: NVIDIA TREx (trt-engine-explorer) trex/activations.py.
_DTYPE_NAMES = {"float": "float32", "fp32": "float32", "half": "float16", "fp16": "float16", "bf16": "bfloat16",
                "int8": "int8", "fp8": "float8", "int32": "int32", "int64": "int64", "bool": "bool",
                "uint8": "uint8", "int4": "int4", "fp4": "float4"}
_DTYPE_TOKEN = re.compile(r"\b(" + "|".join(_DTYPE_NAMES) + r")\b", re.I)


def _dtype(text: str) -> str:
    found = _DTYPE_TOKEN.search(str(text).split(".")[-1])
    return _DTYPE_NAMES[found.group(1).lower()] if found else "unknown"


@dataclass(frozen=True)
class LayerPrecision:
    """One layer and the dtypes (NumPy-style names: "float32", "float16", "int8", ...) of the tensors it reads and
    writes. ``kind`` is the layer type in lower case ("convolution", "cast", "constant" from a network;
    "caskconvolution", "reformat" from an engine)."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def engine_information(loaded: Any) -> dict[str, Any]:
    """The engine inspector's JSON of a deserialized plan (:func:`trtlab.engine.deserialize`): layers after fusion,
    their tactics and tensor formats; full detail needs a build with ``ProfilingVerbosity.DETAILED``."""
    inspector = loaded.engine.create_engine_inspector()
    return json.loads(inspector.get_engine_information(loaded.module.LayerInformationFormat.JSON))


def layer_precisions(source: Any) -> list[LayerPrecision]:
    """The layers of a parsed network (a :class:`~trtlab.engine.ParseReport` or ``INetworkDefinition``: the types
    the ONNX fixes, before any fusion) or of a built engine (a deserialized plan, or the inspector's JSON text or
    dict: what TensorRT chose, fused layers and reformats included), in one shape."""
    network = getattr(source, "network", source)
    if hasattr(network, "num_layers") and hasattr(network, "get_layer"):
        return [_network_layer(network.get_layer(i)) for i in range(network.num_layers)]
    if hasattr(source, "engine") and hasattr(source, "module"):  # a LoadedEngine (tl.engine.deserialize)
        source = engine_information(source)
    info = json.loads(source) if isinstance(source, (str, bytes)) else source
    if not isinstance(info, Mapping) or "Layers" not in info:
        raise InvalidArgument(_("layer_precisions got a {kind} | expected a parsed network, an "
                                "engine, or the engine inspector's JSON (an object with 'Layers')").format(
                                    kind=type(source).__name__))
    layers = info["Layers"]
    if layers and not isinstance(layers[0], Mapping):
        raise InvalidArgument(_("the engine inspector gave layer names only: the engine was built with profiling "
                                "verbosity LAYER_NAMES_ONLY (TensorRT's default) | rebuild with "
                                "profiling_verbosity='detailed' (tl.engine.build's default)"))
    return [LayerPrecision(str(layer.get("Name", "?")), str(layer.get("LayerType", "?")).lower(),
                           tuple(_tensor_dtype(t) for t in layer.get("Inputs", [])),
                           tuple(_tensor_dtype(t) for t in layer.get("Outputs", []))) for layer in layers]


def _tensor_dtype(tensor: Mapping[str, Any]) -> str:
    """10.x: "Format/Datatype" ("Row major linear FP32"); 11.x splits it and adds "DataType" ("Float")."""
    return _dtype(tensor.get("DataType") or tensor.get("Format/Datatype") or "")


def _network_layer(layer: Any) -> LayerPrecision:
    ins = tuple(_dtype(layer.get_input(j).dtype.name) for j in range(layer.num_inputs)
                if layer.get_input(j) is not None)
    outs = tuple(_dtype(layer.get_output(j).dtype.name) for j in range(layer.num_outputs))
    return LayerPrecision(layer.name, layer.type.name.lower(), ins, outs)


# ---------------------------------------------------------------- per-layer timing (IProfiler), where TensorRT runs


def layer_times(runner: Any, feeds: Mapping[str, Any], *, runs: int = 20) -> list[tuple[str, float, float]]:
    """``(layer, median ms, share of the total)`` per layer, slowest first, from ``runs`` inferences of a
    :class:`trtlab.runtime.TensorRTRunner` (made with ``cuda_graph=False``) with an ``IProfiler`` attached to its
    execution context: TensorRT calls ``report_layer_time`` once per layer per inference. The profiler stays attached
    and slows the runner: give it a runner of its own. These times rank layers; they are not the benchmark."""
    trt = runner.trt
    times: dict[str, list[float]] = {}

    class LayerTimer(trt.IProfiler):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            trt.IProfiler.__init__(self)

        def report_layer_time(self, layer_name: str, ms: float) -> None:
            times.setdefault(layer_name, []).append(float(ms))

    runner.context.profiler = LayerTimer()  # the bindings keep it alive with the context (py::keep_alive<1, 2>)
    for _run in range(runs):
        runner.infer(feeds)
    if not times:
        raise UnsupportedFeature(_("{runner}: TensorRT reported no layer time | per-layer timing needs a "
                                   "TensorRT runtime executing the plan on a GPU").format(runner=runner.name))
    medians = {name: float(np.median(values)) for name, values in times.items()}
    total = sum(medians.values())
    return sorted(((n, ms, ms / total) for n, ms in medians.items()), key=lambda row: -row[1])
