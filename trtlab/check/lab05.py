"""Lab 05 exercises: the plugin's shape function, the kernel's index math, and the ONNX node that the TensorRT
parser maps to the plugin. Each is run against the real thing where this machine allows: a fake-tensor shape,
an emulated CUDA launch, and the TensorRT-RTX plugin registry plus ONNX Runtime."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, assert_close, exercise
from trtlab.plugins import (ONNX_DOMAIN, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION, WARP, emulate_kernel,
                            gem_pool_ref, launch_grid)

SHAPES = [((2, 512, 2, 2), (2, 512, 1, 1)), ((1, 64, 7, 7), (1, 64, 1, 1)), ((8, 3, 32, 1), (8, 3, 1, 1))]


class _SymDim:
    """A stand-in for a symbolic dimension (torch SymInt, TensorRT ShapeExpr): it has no integer value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def __int__(self) -> int:
        raise TypeError(f"dimension {self.name!r} is symbolic: it has no value until run time")

    __index__ = __int__


@exercise("lab05.output_shape", title="The plugin's shape function: N×C×H×W → N×C×1×1", hints=(
    "GeM pools each (n, c) plane to one number. Which dimensions survive, and what stays in place of H and W?",
    "Keep the batch and channel dimensions as they are (they may be symbolic: never call int() on them) and put "
    "1 where H and W were, like GlobalAveragePool. A shape that is not rank 4 is a mistake: raise ValueError.",
    "dims = tuple(shape); if len(dims) != 4: raise ValueError(...); return (dims[0], dims[1], 1, 1)",
))
def output_shape(fn: Callable[[Any], Any]) -> str:
    for shape, expected in SHAPES:
        got = fn(shape)
        if not hasattr(got, "__len__"):
            raise Mismatch(f"for input {shape} you returned {got!r}; return a tuple of 4 dimensions like {expected}")
        got = tuple(got)
        if got == shape:
            raise Mismatch(f"for input {shape} you returned the input shape: that is `x.like()`, right for elementwise "
                           f"ops only. GeM pools H×W away: expected {expected}")
        if got == shape[:2]:
            raise Mismatch(f"for input {shape} you returned {got}: the 1×1 spatial dimensions are gone. The graph "
                           f"after the pool (Flatten, Gemm) expects N×C×1×1 like GlobalAveragePool: {expected}")
        if got != expected:
            raise Mismatch(f"for input {shape} you returned {got}; expected {expected} (batch, channels, 1, 1)")
    n, c = _SymDim("batch"), _SymDim("channels")
    try:
        got = tuple(fn((n, c, 2, 2)))
    except TypeError as err:
        raise Mismatch(f"with a symbolic batch your function failed ({err}). In torch.export and TensorRT the "
                       "batch has no value when the shape function runs: pass dimensions through, never int() them")
    if len(got) != 4 or got[0] is not n or got[1] is not c:
        raise Mismatch(f"with symbolic dimensions (batch, channels, 2, 2) you returned {got}: pass the batch and "
                       "channel dimensions through unchanged")
    for bad in [(2, 512), (2, 512, 2, 2, 1)]:
        try:
            fn(bad)
        except Exception:  # noqa: BLE001 - any error is the right reaction to a wrong rank
            continue
        raise Mismatch(f"for a rank-{len(bad)} input {bad} you returned a shape instead of raising. GeM pools N×C×H×W "
                       "feature maps: raise ValueError naming the rank you got, so a wrong graph fails at build time")
    return "N×C×H×W → N×C×1×1 for concrete and symbolic shapes, and wrong ranks are refused"


@exercise("lab05.plane_and_lane", title="The kernel's index math: one warp per (n, c) plane", hints=(
    "Every thread has a global number t built from blockIdx.x, blockDim.x and threadIdx.x. A warp is 32 "
    "consecutive threads, and each warp owns one plane.",
    "t = block_idx * block_dim + thread_idx. Consecutive groups of 32 values of t share a plane (integer division "
    "by 32); the position inside the group is the lane (remainder).",
    "t = block_idx * block_dim + thread_idx; return t // 32, t % 32",
))
def plane_and_lane(fn: Callable[[int, int, int], tuple[int, int]]) -> str:
    rng = np.random.default_rng(5)
    for shape, block in [((2, 9, 3, 5), 256), ((3, 5, 7, 11), 128)]:
        x = rng.normal(size=shape).astype(np.float32)
        planes = shape[0] * shape[1]
        try:
            y, hits = emulate_kernel(x, 3.0, 1e-6, mapping=fn, block=block)
        except ValueError as err:  # InputMismatch: a lane outside 0..31
            raise Mismatch(f"{err}. The lane is the thread's position inside its warp of {WARP}: a remainder")
        grid = launch_grid(planes, block)
        missing = np.flatnonzero((hits == 0).all(axis=1))
        doubled = np.argwhere(hits > 1)
        if len(missing):
            raise Mismatch(f"with {grid} blocks of {block} threads and {planes} planes, planes {missing.tolist()} "
                           "were never computed"
                           + (f" while lanes were assigned twice (e.g. plane {doubled[0][0]}, lane {doubled[0][1]}): "
                              "different blocks compute the same planes. Include blockIdx.x * blockDim.x"
                              if len(doubled) else ". Check how the plane depends on the block index"))
        if len(doubled):
            plane, lane = doubled[0]
            raise Mismatch(f"plane {plane}, lane {lane} was assigned to {hits[plane, lane]} threads: two threads "
                           "would add the same values twice. Each global thread must map to a distinct pair")
        partial = np.flatnonzero((hits == 0).any(axis=1))
        if len(partial):
            raise Mismatch(f"planes {partial.tolist()} have lanes no thread was assigned to, so some of their values "
                           f"are never read: every plane needs all {WARP} lanes")
        note = assert_close(y, gem_pool_ref(x, 3.0, 1e-6), rtol=1e-5, atol=1e-6, name=f"GeM of {shape}")
    return f"every plane gets exactly one warp of 32 lanes, for blocks of 256 and 128 threads; {note}"


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: (a.type, onnx.helper.get_attribute_value(a)) for a in node.attribute}


def _as_text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@exercise("lab05.gem_node", title="The ONNX node the TensorRT parser maps to the plugin", hints=(
    "The TensorRT ONNX parser has no importer for GemPool, so its FallbackPluginImporter asks the plugin registry "
    "for a creator. Which three strings does it ask with, and where in the node does it read them?",
    "op_type must be the plugin name (GemPool); plugin_version and plugin_namespace are STRING attributes (\"1\" and "
    "\"trtlab\"). p and eps are FLOAT attributes (write 3.0, not 3). ONNX Runtime Extensions needs the domain "
    "ai.onnx.contrib.",
    "onnx.helper.make_node('GemPool', [input_name], [output_name], domain='ai.onnx.contrib', p=float(p), "
    "eps=float(eps), plugin_version='1', plugin_namespace='trtlab')",
))
def gem_node(fn: Callable[..., Any]) -> str:
    import onnx
    from onnx import AttributeProto

    node = fn("x", "y", 3.0, 1e-6)
    if not isinstance(node, onnx.NodeProto):
        raise Mismatch(f"you returned a {type(node).__name__}; return an onnx.NodeProto (onnx.helper.make_node)")
    if list(node.input) != ["x"] or list(node.output) != ["y"]:
        raise Mismatch(f"the node reads {list(node.input)} and writes {list(node.output)}; expected ['x'] → ['y'] "
                       "(use the input_name and output_name arguments)")
    attrs = _attributes(node)
    version = _as_text(attrs.get("plugin_version", (None, "1"))[1])
    namespace = _as_text(attrs.get("plugin_namespace", (None, ""))[1])
    found, how = _lookup(node.op_type, version, namespace)
    if not found:
        reasons = []
        if node.op_type != PLUGIN_NAME:
            reasons.append(f"op_type is {node.op_type!r}, but the parser uses the op_type as the plugin name, "
                           f"which is {PLUGIN_NAME!r}")
        if "plugin_namespace" not in attrs:
            reasons.append(f"there is no plugin_namespace attribute, so the parser asks for namespace \"\"; "
                           f"the plugin lives in {PLUGIN_NAMESPACE!r}")
        elif namespace != PLUGIN_NAMESPACE:
            reasons.append(f"plugin_namespace is {namespace!r}; the plugin lives in {PLUGIN_NAMESPACE!r}")
        if version != PLUGIN_VERSION:
            reasons.append(f"plugin_version is {version!r}; the creator has {PLUGIN_VERSION!r}")
        raise Mismatch(f"{how} has no creator for (name={node.op_type!r}, version={version!r}, "
                       f"namespace={namespace!r}): \"Plugin not found\". " + "; ".join(reasons or ["check all three"]))
    for name in ("plugin_version", "plugin_namespace"):
        if name in attrs and attrs[name][0] != AttributeProto.STRING:
            raise Mismatch(f"attribute {name} has type {AttributeProto.AttributeType.Name(attrs[name][0])}; the "
                           "parser reads it as a STRING: write it in quotes")
    for name in ("p", "eps"):
        if name not in attrs:
            raise Mismatch(f"attribute {name!r} is missing: it becomes the plugin field {name!r} (and the ONNX "
                           "Runtime op's argument)")
        if attrs[name][0] != AttributeProto.FLOAT:
            raise Mismatch(f"attribute {name!r} has type {AttributeProto.AttributeType.Name(attrs[name][0])}; the "
                           f"plugin field is FLOAT32, so write a float ({name}=float({name}): 3.0, not 3)")
    if node.domain != ONNX_DOMAIN:
        raise Mismatch(f"domain {node.domain!r}: TensorRT ignores it, but ONNX Runtime Extensions runs Python custom "
                       f"ops only in {ONNX_DOMAIN!r}, so ONNX Runtime could not load this node")
    note = _run_in_onnxruntime(node)
    return f"{how} finds the creator for this node; {note}"


def _lookup(op_type: str, version: str, namespace: str) -> tuple[bool, str]:
    """Ask the real TensorRT-RTX plugin registry (with the GemPool creator registered) when it is installed."""
    from trtlab import _compat

    rtx = _compat.tensorrt_rtx()
    if rtx is None:
        found = (op_type, version, namespace) == (PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE)
        return found, "the plugin contract (TensorRT-RTX is not installed, so compared as text)"
    from trtlab.plugins.trt import find_creator

    return find_creator(op_type, version, namespace, trt=rtx), f"TensorRT-RTX {rtx.__version__}'s plugin registry"


def _run_in_onnxruntime(node: Any) -> str:
    import onnx
    from onnx import TensorProto, helper

    from trtlab.plugins.ort import session

    graph = helper.make_graph([node], "gem", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 3, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ONNX_DOMAIN, 1)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 3)).astype(np.float32)
    y = session(model).run(None, {"x": x})[0]
    try:
        return "ONNX Runtime runs it: " + assert_close(y, gem_pool_ref(x, 3.0, 1e-6), rtol=1e-5, atol=1e-6)
    except Mismatch as wrong:
        raise Mismatch(f"ONNX Runtime ran your node but the result differs from GeM with p=3, eps=1e-6 ({wrong}). "
                       "Are p and eps the arguments you were given?") from None
