"""``GemPool`` in the TensorRT family (Lab 05, steps 4 and 5): the parser's rejection, the plugin registry lookup
it performs, a classic Python ``IPluginV3``, and the ``tensorrt.plugin`` (quickly deployable plugin) definition
with JIT and AOT implementations.

What each TensorRT flavour can do with a custom node (checked 2026-11 on tensorrt-rtx-cu13 1.7.1.116):

- **TensorRT >= 10.6** with a GPU: everything here; ``tensorrt.plugin`` is the short path, ``aot_impl`` (10.9+)
  embeds the kernel's PTX in the engine so it runs without Python (trtexec, C++, Triton).
- **TensorRT-RTX 1.7** (the CPU builder of this course): the parser fails with "Plugin not found" until a creator
  is registered; ``get_plugin_registry()`` accepts a Python ``IPluginCreatorV3One`` and finds it by (name, version,
  namespace), and the parser then calls ``create_plugin`` with the node's attributes — but the process aborts right
  after (``std::terminate``; its ``INetworkDefinition`` has no ``add_plugin*`` methods), and ``tensorrt_rtx.plugin``
  is a shim over ``tensorrt_rtx_bindings.plugin``, which the wheel does not ship (``ModuleNotFoundError``).
  :func:`parse_in_subprocess` shows this safely; in-process parsing refuses instead of crashing the kernel.
"""

from __future__ import annotations

import contextlib
import functools
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from trtlab import _compat, engine, env
from trtlab.errors import BuildError, UnsupportedFeature
from trtlab.i18n import _
from trtlab.plugins import (DEFAULT_EPS, DEFAULT_P, PLUGIN_ID, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION,
                            output_shape)

__all__ = [
    "QdpInfo",
    "SubprocessParse",
    "build_engine",
    "builder_module",
    "find_creator",
    "infer",
    "parse",
    "parse_in_subprocess",
    "plugin_classes",
    "qdp_status",
    "register_creator",
    "register_qdp",
    "tensorrt_rtx_plugin_status",
]

QDP_MINIMUM = _compat.QUICK_PLUGIN_MINIMUM
AOT_MINIMUM = _compat.AOT_PLUGIN_MINIMUM


def builder_module() -> ModuleType:
    """The TensorRT-family module to parse and build with here (:func:`trtlab.env.builder_flavour`): ``tensorrt``
    on a GPU machine, else ``tensorrt_rtx`` (which builds without a GPU). The same API for everything Lab 05 calls."""
    return env.builder_flavour().module


# ---------------------------------------------------------------- parsing (through trtlab.engine.parse)


def parse(model: Any, *, trt: ModuleType | None = None, _allow_registered: bool = False) -> engine.ParseReport:
    """:func:`trtlab.engine.parse` of an ONNX model (path, bytes or ``ModelProto``) with ``trt`` (default: this
    machine's builder): every parser error, without raising. Refuses where TensorRT-RTX would abort the process (see
    the module docstring)."""
    trt = trt or builder_module()
    if _compat.flavour_of(trt).is_rtx and _creator_registered(trt) and not _allow_registered:
        raise UnsupportedFeature(_("TensorRT-RTX aborts the whole process when its parser instantiates a Python "
                                   "plugin; the GemPool creator is registered in this process, so parsing here would "
                                   "kill the kernel. Use parse_in_subprocess(...) or deregister the creator first"))
    return engine.parse(model, flavour=trt)


_SUBPROCESS = textwrap.dedent("""
    import importlib, json, sys
    trt = importlib.import_module(sys.argv[2])
    from trtlab.plugins import trt as plug
    calls = []
    creator = plug.register_creator(trt, on_create=lambda name, fields: calls.append([name, fields]) or
                                    print("CREATE " + json.dumps([name, fields]), flush=True))
    report = plug.parse(open(sys.argv[1], "rb").read(), trt=trt, _allow_registered=True)
    print("REPORT " + json.dumps([report.ok, [str(e) for e in report.errors]]), flush=True)
""")


@dataclass
class SubprocessParse:
    """The outcome of parsing with the GemPool creator registered, in a child process (it may abort)."""

    returncode: int
    created: list[tuple[str, dict[str, float]]]
    parsed: bool | None
    errors: list[str]
    stderr_tail: str
    module: str = "tensorrt_rtx"  # the module the child parsed with: "tensorrt_rtx" or "tensorrt"

    @property
    def aborted(self) -> bool:
        return self.returncode < 0 or self.parsed is None

    def explanation(self) -> str:
        """What the outcome means, in one paragraph. The known abort is TensorRT-RTX's (module docstring); the same
        ending under TensorRT is not explained away with it."""
        if not self.aborted:
            return (f"{self.module} parsed the model with the Python plugin: the fix works." if self.parsed else
                    f"{self.module} found the creator but rejected the model: " + "; ".join(self.errors))
        if self.module.startswith("tensorrt_rtx"):
            return (f"{self.module} found the plugin and created it, then aborted: its network API has no plugin "
                    "layers (INetworkDefinition has no add_plugin*), and tensorrt_rtx.plugin does not import. Custom "
                    "ops on TensorRT-RTX need a C++ plugin library; the Python paths below need TensorRT >= 10.6.")
        how = f"signal {-self.returncode}" if self.returncode < 0 else f"exit {self.returncode} without a parse report"
        return (f"the child process parsing with {self.module} died ({how}) — not an outcome this course expects "
                f"from TensorRT, so it is not explained here. Its last stderr: {self.stderr_tail.strip() or '(empty)'}")

    def __repr__(self) -> str:
        made = ", ".join(f"{name}({fields})" for name, fields in self.created) or "never"
        end = ("aborted (signal %d)" % -self.returncode if self.returncode < 0 else f"exit {self.returncode}") \
            if self.aborted else ("parsed" if self.parsed else "rejected: " + "; ".join(self.errors))
        return f"SubprocessParse(create_plugin called: {made}; then {end})"


def parse_in_subprocess(model_path: str | Path, *, module: str | None = None,
                        timeout: float = 120.0) -> SubprocessParse:
    """Parse after registering the Python GemPool creator, in a child process (``module``: "tensorrt_rtx" or
    "tensorrt"; default: :func:`builder_module`). Shows that the parser finds the creator and calls
    ``create_plugin`` with the node's attributes, and what happens next (TensorRT-RTX 1.7 aborts)."""
    module = module or builder_module().__name__.split(".")[0]
    proc = subprocess.run([sys.executable, "-c", _SUBPROCESS, str(model_path), module], capture_output=True,
                          text=True, timeout=timeout)
    created, parsed, errors = [], None, []
    for line in proc.stdout.splitlines():
        if line.startswith("CREATE "):
            name, fields = json.loads(line[7:])
            created.append((name, fields))
        elif line.startswith("REPORT "):
            parsed, errors = json.loads(line[7:])
    return SubprocessParse(proc.returncode, created, parsed, errors, proc.stderr[-600:], module)


# ---------------------------------------------------------------- a classic Python IPluginV3


@functools.cache
def plugin_classes(trt: ModuleType) -> tuple[type, type]:
    """``(GemPoolPlugin, GemPoolCreator)`` for this TensorRT module: the IPluginV3 interface written by hand.

    ``tensorrt.plugin`` (:func:`register_qdp`) generates all of this; it is spelled out here because it is what the
    C++ plugin in ``cpp/`` implements, method for method.
    """

    class GemPoolPlugin(trt.IPluginV3, trt.IPluginV3OneCore, trt.IPluginV3OneBuild, trt.IPluginV3OneRuntime):
        def __init__(self, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> None:
            trt.IPluginV3.__init__(self)
            trt.IPluginV3OneCore.__init__(self)
            trt.IPluginV3OneBuild.__init__(self)
            trt.IPluginV3OneRuntime.__init__(self)
            self.p, self.eps = float(p), float(eps)
            self.num_outputs = 1
            self.plugin_name, self.plugin_version, self.plugin_namespace = PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE
            self.timing_cache_id = ""

        def get_capability_interface(self, kind: Any) -> Any:
            return self

        def get_output_data_types(self, input_types: list) -> list:
            return [input_types[0]]

        def get_output_shapes(self, inputs: list, shape_inputs: list, expr_builder: Any) -> list:
            dims = trt.DimsExprs(inputs[0])
            n, c, one, _one = output_shape([inputs[0][i] for i in range(len(inputs[0]))])
            dims[2] = expr_builder.constant(one)
            dims[3] = expr_builder.constant(one)
            return [dims]

        def supports_format_combination(self, pos: int, in_out: list, num_inputs: int) -> bool:
            desc = in_out[pos].desc
            return desc.format == trt.TensorFormat.LINEAR and desc.type == trt.DataType.FLOAT

        def configure_plugin(self, inputs: list, outputs: list) -> None:
            pass

        def on_shape_change(self, inputs: list, outputs: list) -> None:
            pass

        def get_fields_to_serialize(self) -> Any:
            return trt.PluginFieldCollection([
                trt.PluginField("p", np.array([self.p], np.float32), trt.PluginFieldType.FLOAT32),
                trt.PluginField("eps", np.array([self.eps], np.float32), trt.PluginFieldType.FLOAT32)])

        def enqueue(self, input_desc: list, output_desc: list, inputs: list, outputs: list, workspace: int,
                    stream: int) -> None:
            from trtlab.plugins.kernel import launch

            n, c, h, w = tuple(input_desc[0].dims)
            launch(int(inputs[0]), int(outputs[0]), n * c, h * w, self.p, self.eps, int(stream))

        def attach_to_context(self, context: Any) -> Any:
            return self.clone()

        def clone(self) -> Any:
            twin = GemPoolPlugin(self.p, self.eps)
            twin.__dict__.update(self.__dict__)
            return twin

    class GemPoolCreator(trt.IPluginCreatorV3One):
        def __init__(self, on_create: Any = None) -> None:
            trt.IPluginCreatorV3One.__init__(self)
            self.name, self.plugin_version, self.plugin_namespace = PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE
            self.field_names = trt.PluginFieldCollection([
                trt.PluginField("p", np.array([]), trt.PluginFieldType.FLOAT32),
                trt.PluginField("eps", np.array([]), trt.PluginFieldType.FLOAT32)])
            self.on_create = on_create

        def create_plugin(self, name: str, fc: Any, phase: Any) -> Any:
            fields = {f.name: float(np.asarray(f.data).reshape(-1)[0]) for f in fc if f.name in ("p", "eps")}
            if self.on_create is not None:
                self.on_create(name, fields)
            return GemPoolPlugin(fields.get("p", DEFAULT_P), fields.get("eps", DEFAULT_EPS))

    return GemPoolPlugin, GemPoolCreator


_REGISTERED: dict[str, Any] = {}


def _creator_registered(trt: ModuleType) -> bool:
    return trt.__name__ in _REGISTERED


def register_creator(trt: ModuleType | None = None, *, on_create: Any = None) -> Any:
    """Register the Python ``GemPoolCreator`` in ``trt``'s plugin registry under namespace "trtlab" (once)."""
    trt = trt or builder_module()
    if trt.__name__ not in _REGISTERED:
        creator = plugin_classes(trt)[1](on_create)
        if not trt.get_plugin_registry().register_creator(creator, PLUGIN_NAMESPACE):
            raise BuildError(_("{module}: the plugin registry refused the {plugin} creator "
                               "(a creator with the same name, version and namespace is already registered?)").format(
                                   module=trt.__name__, plugin=PLUGIN_NAME))
        _REGISTERED[trt.__name__] = creator
    return _REGISTERED[trt.__name__]


@contextlib.contextmanager
def _temporarily_registered(trt: ModuleType) -> Iterator[Any]:
    already = _creator_registered(trt)
    creator = register_creator(trt)
    try:
        yield creator
    finally:
        if not already:
            trt.get_plugin_registry().deregister_creator(_REGISTERED.pop(trt.__name__))


def find_creator(op_type: str, plugin_version: str = "1", plugin_namespace: str = "", *,
                 trt: ModuleType | None = None) -> bool:
    """Would the ONNX parser find a plugin for a node with this op_type / plugin_version / plugin_namespace?

    Registers the GemPool creator, asks the registry exactly what the FallbackPluginImporter asks
    (``get_creator(op_type, version, namespace)``), and deregisters it again (so parsing stays safe).
    """
    trt = trt or builder_module()
    with _temporarily_registered(trt):
        return trt.get_plugin_registry().get_creator(str(op_type), str(plugin_version), str(plugin_namespace)) \
            is not None


# ---------------------------------------------------------------- tensorrt.plugin (quickly deployable plugins)


@dataclass(frozen=True)
class QdpInfo:
    plugin_id: str
    tensorrt: str
    aot: bool

    def __repr__(self) -> str:
        impls = "JIT (Python) and AOT (PTX in the engine)" if self.aot else "JIT (Python) only: AOT needs 10.9+"
        return f"QdpInfo({self.plugin_id} registered with {self.tensorrt}: {impls})"


def tensorrt_rtx_plugin_status() -> str:
    """Whether ``tensorrt_rtx.plugin`` imports here, in one sentence."""
    if _compat.tensorrt_rtx() is None:
        return "tensorrt_rtx is not installed"
    try:
        import tensorrt_rtx.plugin  # noqa: F401
    except Exception as err:  # noqa: BLE001 - report what the wheel does
        return f"tensorrt_rtx.plugin does not import: {type(err).__name__}: {err}"
    return "tensorrt_rtx.plugin imports"


def qdp_status() -> str:
    """Why :func:`register_qdp` can or cannot run here, in one sentence."""
    try:
        flavour = _compat.require("tensorrt.plugin (quickly deployable plugins)", minimum=QDP_MINIMUM)
    except UnsupportedFeature as missing:
        return str(missing)
    if not env.capabilities().has_gpu:
        return f"{flavour.label} is installed, but there is no GPU to run the plugin on"
    return f"{flavour.label} with a GPU: tensorrt.plugin runs here"


@functools.cache
def register_qdp(desc: Any = None, impl: Any = None) -> QdpInfo:
    """Define ``trtlab::GemPool`` with ``tensorrt.plugin``: shape/type (register; ``desc``: Lab 05's learner function
    instead of the course's), formats (autotune), a JIT implementation (``impl`` likewise) that launches the CUDA
    kernel through CuPy, and from TensorRT 10.9 an AOT implementation whose PTX is embedded in the engine. Raises
    :class:`UnsupportedFeature` below TensorRT 10.6; a second registration with other functions needs a new process."""
    flavour = _compat.require("tensorrt.plugin (quickly deployable plugins)", minimum=QDP_MINIMUM)
    from trtlab.plugins import qdp  # imports tensorrt.plugin

    if register_qdp.cache_info().currsize:
        raise UnsupportedFeature(_("{plugin} is already registered in this process with other functions; "
                                   "tensorrt.plugin registers a plugin id once: restart the kernel to register "
                                   "again").format(plugin=PLUGIN_ID))
    aot = _compat.supports_aot_plugins(flavour)
    qdp.define(aot, desc=desc, impl=impl)
    return QdpInfo(PLUGIN_ID, flavour.label, aot)


def build_engine(model: Any, *, batch: tuple[int, int, int] = (1, 8, 64), prefer_aot: bool = True) -> bytes:
    """Build a TensorRT engine for an ONNX model with GemPool nodes (needs :func:`register_qdp` first), through
    :func:`trtlab.engine.build_plan` (not saved).

    With both implementations defined, the network must be told which to use (``NetworkDefinitionCreationFlag``
    ``PREFER_AOT_PYTHON_PLUGINS``: the engine runs without Python; ``PREFER_JIT_PYTHON_PLUGINS``: TensorRT calls
    back into Python for every launch; :func:`trtlab._compat.plugin_network_flags`).
    """
    flavour = _compat.require("building with tensorrt.plugin", minimum=QDP_MINIMUM)
    if not env.capabilities().has_gpu:
        raise UnsupportedFeature(_("building an engine with the GemPool plugin needs an NVIDIA GPU (TensorRT builds "
                                   "and times the plugin on it); none here. Run this on a GPU machine"))
    flags = _compat.plugin_network_flags(flavour.module, prefer_aot=prefer_aot)  # next to STRONGLY_TYPED
    try:
        plan, _facts = engine.build_plan(model, batch=batch, flavour=flavour, network_flags=flags)
    except BuildError as err:
        raise BuildError(_("{err}\n| for the GemPool model: call register_qdp() before building, and check op_type "
                           "/ plugin_version / plugin_namespace").format(err=err)) from err
    return plan


def infer(plan: bytes, images: np.ndarray, *, input_name: str = "images", output_name: str = "logits") -> np.ndarray:
    """Run a GemPool engine once on the GPU through :class:`trtlab.runtime.TensorRTRunner` (``execute_async_v3``)."""
    from trtlab.runtime import TensorRTRunner

    trt = _compat.require("running an engine with tensorrt.plugin", minimum=QDP_MINIMUM).module
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))  # outlives the engine: both live until we return
    eng = runtime.deserialize_cuda_engine(plan)
    if eng is None:
        raise BuildError(_("the GemPool plan did not deserialize (see the TensorRT log above) | build it with "
                           "build_engine(...) in this process, after register_qdp()"))
    with TensorRTRunner(eng, trt=trt, name="tensorrt-gempool") as runner:
        return runner.infer({input_name: np.ascontiguousarray(images, dtype=np.float32)})[output_name]
