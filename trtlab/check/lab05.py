"""Lab 05 exercises: the plugin's shape function, the kernel's index math, and the ONNX node that the TensorRT
parser maps to the plugin. Each is run against the real thing where this machine allows: a fake-tensor shape,
an emulated CUDA launch, and the TensorRT-RTX plugin registry plus ONNX Runtime."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, assert_close, exercise
from trtlab.plugins import (ONNX_DOMAIN, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION, WARP, emulate_kernel,
                            gem_pool_ref, launch_grid)

__all__ = ["gem_node", "output_shape", "plane_and_lane"]


SHAPES = [((2, 512, 2, 2), (2, 512, 1, 1)), ((1, 64, 7, 7), (1, 64, 1, 1)), ((8, 3, 32, 1), (8, 3, 1, 1)),
          ((5, 1000, 3, 9), (5, 1000, 1, 1))]
U32 = 2.0 ** -24  # float32 unit roundoff


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
), time_limit_s=20)  # measured < 0.1 s: nine calls on shapes
def output_shape(fn: Callable[[Any], Any]) -> str:
    """Four concrete shapes (as tuples, and one as a torch.Size, what a torch custom op receives), symbolic batch,
    channel and spatial dimensions, and two wrong ranks that must raise."""
    import torch

    cases = [(shape, expected) for shape, expected in SHAPES] + [(torch.Size((3, 16, 4, 4)), (3, 16, 1, 1))]
    for shape, expected in cases:
        got = fn(shape)
        if not hasattr(got, "__len__"):
            raise Mismatch(f"for input {shape} you returned {got!r}; return a tuple of 4 dimensions like {expected}")
        got = tuple(got)
        shape = tuple(shape)
        floats = [d for d in got if isinstance(d, float)]
        if floats:
            raise Mismatch(f"for input {shape} you returned {got}: {floats[0]!r} is a float. Shapes hold integers "
                           "(TensorRT's dimension expressions and torch's SymInts refuse floats): write 1, not 1.0, "
                           "and use // rather than /")
        if got == shape:
            raise Mismatch(f"for input {shape} you returned the input shape: that is `x.like()`, right for elementwise "
                           f"ops only. GeM pools H×W away: expected {expected}")
        if got == shape[:2]:
            raise Mismatch(f"for input {shape} you returned {got}: the 1×1 spatial dimensions are gone. The graph "
                           f"after the pool (Flatten, Gemm) expects N×C×1×1 like GlobalAveragePool: {expected}")
        if got != expected:
            raise Mismatch(f"for input {shape} you returned {got}; expected {expected} (batch, channels, 1, 1)")
    n, c, h, w = _SymDim("batch"), _SymDim("channels"), _SymDim("height"), _SymDim("width")
    for symbolic in [(n, c, 2, 2), (n, c, h, w)]:
        try:
            got = tuple(fn(symbolic))
        except TypeError as err:
            raise Mismatch(f"with symbolic dimensions {symbolic} your function failed ({err}). In torch.export and "
                           "TensorRT the batch (and with dynamic images H and W) has no value when the shape "
                           "function runs: pass N and C through and write 1 for H and W, never int() them") from None
        if len(got) != 4 or got[0] is not n or got[1] is not c:
            raise Mismatch(f"with symbolic dimensions {symbolic} you returned {got}: pass the batch and channel "
                           "dimensions through unchanged")
        if any(d is h or d is w for d in got) or got[2:] != (1, 1):
            raise Mismatch(f"with symbolic dimensions {symbolic} you returned {got}: H and W become 1 whatever "
                           "they were")
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
), time_limit_s=60)  # measured ~0.5 s: about 1,300 emulated threads across three launches
def plane_and_lane(fn: Callable[[int, int, int], tuple[int, int]]) -> str:
    """Three launches (``_LAUNCHES``: blocks of 256, 128 and 96 threads, plane counts that leave the last block
    partly idle), emulated thread by thread; the pooled values must match the reference within ``_GEM_RTOL``."""
    _check_integer_results(fn)
    rng = np.random.default_rng(5)
    for shape, block in _LAUNCHES:
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
                           f"were never computed{_why_missing(fn, hits, grid, block)}")
        if len(doubled):
            plane, lane = doubled[0]
            raise Mismatch(f"plane {plane}, lane {lane} was assigned to {hits[plane, lane]} threads: two threads "
                           "would add the same values twice. Each global thread must map to a distinct pair")
        partial = np.flatnonzero((hits == 0).any(axis=1))
        if len(partial):
            raise Mismatch(f"planes {partial.tolist()} have lanes no thread was assigned to, so some of their values "
                           f"are never read: every plane needs all {WARP} lanes")
        note = assert_close(y, gem_pool_ref(x, 3.0, 1e-6), rtol=_GEM_RTOL, atol=0, name=f"GeM of {shape}")
    return f"every plane gets exactly one warp of 32 lanes, for blocks of 256, 128 and 96 threads; {note}"


def _why_missing(fn: Callable[[int, int, int], Any], hits: np.ndarray, grid: int, block: int) -> str:
    """The mistake behind planes no warp computed, as far as the assignments show it."""
    if all(int(fn(b, t, block)[0]) == int(fn(0, t, block)[0]) for b in range(grid) for t in range(block)):
        return (": every block computes the same planes (the plane does not depend on the block index). "
                "Include blockIdx.x * blockDim.x in the global thread index")
    per_plane = int(hits[0].sum())
    if per_plane != WARP:
        return (f": plane 0 got {per_plane} threads instead of one warp of {WARP}, so the threads run out before the "
                f"last planes. Divide the global thread index by {WARP}, the warp size")
    return ". Likely causes: the plane computed from the block index with another block size than blockDim.x"


# (input shape, threads per block): 18, 15 and 7 planes; 96 is a block size that is not a power of two.
_LAUNCHES = [((2, 9, 3, 5), 256), ((3, 5, 7, 11), 128), ((7, 1, 4, 4), 96)]
# The emulation and the reference both sum in float64 (error ~ H·W·2^-53, negligible) and round once to float32, so
# they differ by at most one float32 ulp: 2^-23 relative. Only the summation order differs (lane-strided vs
# row-wise), which is what a correct mapping changes.
_GEM_RTOL = 2 * U32


def _check_integer_results(fn: Callable[[int, int, int], Any]) -> None:
    """A thread index is an integer; Python's ``/`` is not CUDA's integer division."""
    got = fn(1, 33, 64)  # thread 97 → plane 3, lane 1
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise Mismatch(f"plane_and_lane(1, 33, 64) returned {got!r}; return a pair (plane, lane)")
    for what, value in zip(("plane", "lane"), got):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            whole = isinstance(value, float) and value.is_integer()
            raise Mismatch(f"for block 1, thread 33 of 64 the {what} is {value!r}, a {type(value).__name__}: "
                           + ("return ints, not floats (int(...) or //)" if whole else
                              "in Python `/` is true division; CUDA's int / int truncates, which is Python's `//`"))


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
), time_limit_s=60)  # measured ~1 s: two registry look-ups and two ONNX Runtime sessions
def gem_node(fn: Callable[..., Any]) -> str:
    """Two calls (``_NODE_CASES``: short and long tensor names, p = 3 and 2.5, two eps), each looked up in the plugin
    registry and run in ONNX Runtime against the reference within ``_NODE_RTOL``."""
    notes = []
    for input_name, output_name, p, eps in _NODE_CASES:
        notes.append(_check_one_node(fn, input_name, output_name, p, eps))
    return notes[0] + f"; also right for p={_NODE_CASES[1][2]}, eps={_NODE_CASES[1][3]:g} and long tensor names"


# (input name, output name, p, eps): the second case changes every argument, so none can be hard-coded.
_NODE_CASES = [("x", "y", 3.0, 1e-6),
               ("backbone.layer4.1.relu_output_0", "head.gem_pool.pooled_features_0", 2.5, 1e-5)]
# ONNX Runtime runs the node's op with p and eps as stored in the node (FLOAT attributes: float32) through the same
# float64 reference: p = 3.0 and 2.5 are exact in float32, eps only matters for values below it (their eps^p adds
# < 1e-12 relative), so both results are the same float64 number rounded once to float32: one ulp, 2^-23, apart at
# most. 2^-22 allows for the float32 rounding of eps.
_NODE_RTOL = 4 * U32


def _check_one_node(fn: Callable[..., Any], input_name: str, output_name: str, p: float, eps: float) -> str:
    import onnx
    from onnx import AttributeProto

    node = fn(input_name, output_name, p, eps)
    if not isinstance(node, onnx.NodeProto):
        raise Mismatch(f"you returned a {type(node).__name__}; return an onnx.NodeProto (onnx.helper.make_node)")
    if list(node.input) != [input_name] or list(node.output) != [output_name]:
        raise Mismatch(f"called with ({input_name!r}, {output_name!r}) the node reads {list(node.input)} and writes "
                       f"{list(node.output)}: use the input_name and output_name arguments")
    attrs = _attributes(node)
    for name in ("plugin_version", "plugin_namespace"):
        if name in attrs and attrs[name][0] != AttributeProto.STRING:
            raise Mismatch(f"attribute {name} has type {AttributeProto.AttributeType.Name(attrs[name][0])}; the "
                           "parser reads it as a STRING (a number here is not found): write it in quotes")
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
    for name in ("p", "eps"):
        if name not in attrs:
            raise Mismatch(f"attribute {name!r} is missing: it becomes the plugin field {name!r} (and the ONNX "
                           "Runtime op's argument)")
        if attrs[name][0] != AttributeProto.FLOAT:
            raise Mismatch(f"attribute {name!r} has type {AttributeProto.AttributeType.Name(attrs[name][0])}; the "
                           f"plugin field is FLOAT32, so write a float ({name}=float({name}): 3.0, not 3)")
    stored = {name: attrs[name][1] for name in ("p", "eps")}
    for name, given in (("p", p), ("eps", eps)):
        if abs(stored[name] - given) > 2 * U32 * abs(given):  # a FLOAT attribute holds float32: one rounding
            raise Mismatch(f"called with {name}={given:g}, the node's {name} attribute is {stored[name]:g}: use the "
                           f"{name} argument, do not hard-code it")
    if node.domain != ONNX_DOMAIN:
        raise Mismatch(f"domain {node.domain!r}: TensorRT ignores it, but ONNX Runtime Extensions runs Python custom "
                       f"ops only in {ONNX_DOMAIN!r}, so ONNX Runtime could not load this node")
    note = _run_in_onnxruntime(node, input_name, output_name, p, eps)
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


def _run_in_onnxruntime(node: Any, input_name: str, output_name: str, p: float, eps: float) -> str:
    import onnx
    from onnx import TensorProto, helper

    from trtlab.plugins.ort import session

    graph = helper.make_graph([node], "gem",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, [2, 4, 3, 3])],
                              [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, [2, 4, 1, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(ONNX_DOMAIN, 1)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    x = np.random.default_rng(0).normal(size=(2, 4, 3, 3)).astype(np.float32)
    y = session(model).run(None, {input_name: x})[0]
    try:
        return "ONNX Runtime runs it: " + assert_close(y, gem_pool_ref(x, p, eps), rtol=_NODE_RTOL, atol=0)
    except Mismatch as wrong:
        raise Mismatch(f"ONNX Runtime ran your node but the result differs from GeM with p={p:g}, eps={eps:g} "
                       f"({wrong}). Are p and eps the arguments you were given?") from None
