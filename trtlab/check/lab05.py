"""Lab 05 exercises: the plugin's shape function, the kernel's index math, and the ONNX node that the TensorRT
parser maps to the plugin. Each is run against the real thing where this machine allows: a fake-tensor shape,
an emulated CUDA launch, and the TensorRT-RTX plugin registry plus ONNX Runtime."""

from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, assert_close, exercise
from trtlab.i18n import N_, _
from trtlab.plugins import (ONNX_DOMAIN, PLUGIN_NAME, PLUGIN_NAMESPACE, PLUGIN_VERSION, WARP, emulate_kernel,
                            gem_pool_ref, launch_grid)

from trtlab.check._lab05_kernel import gem_kernel, ort_compute  # noqa: E402,F401 - registered as lab05 exercises

__all__ = ["gem_kernel", "gem_node", "ort_compute", "output_shape", "plane_and_lane", "plugin_functions"]


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
        raise TypeError(_("dimension {name!r} is symbolic: it has no value until run time").format(name=self.name))

    __index__ = __int__


@exercise("lab05.output_shape", title=N_("The plugin's shape function: N×C×H×W → N×C×1×1"), hints=(
    N_("GeM pools each (n, c) plane to one number. Which dimensions survive, and what stays in place of H and W?"),
    N_("Keep the batch and channel dimensions as they are (they may be symbolic: never call int() on them) and put "
       "1 where H and W were, like GlobalAveragePool. A shape that is not rank 4 is a mistake: raise ValueError."),
    N_("dims = tuple(shape); if len(dims) != 4: raise ValueError(...); return (dims[0], dims[1], 1, 1)"),
), time_limit_s=20)  # measured < 0.1 s: nine calls on shapes
def output_shape(fn: Callable[[Any], Any]) -> str:
    """Four concrete shapes (as tuples, and one as a torch.Size, what a torch custom op receives), symbolic batch,
    channel and spatial dimensions, and two wrong ranks that must raise."""
    import torch

    cases = [(shape, expected) for shape, expected in SHAPES] + [(torch.Size((3, 16, 4, 4)), (3, 16, 1, 1))]
    for shape, expected in cases:
        got = fn(shape)
        if not hasattr(got, "__len__"):
            raise Mismatch(_("for input {shape} you returned {got!r}; return a tuple of 4 dimensions like "
                             "{expected}").format(shape=shape, got=got, expected=expected))
        got = tuple(got)
        shape = tuple(shape)
        floats = [d for d in got if isinstance(d, float)]
        if floats:
            raise Mismatch(_("for input {shape} you returned {got}: {value!r} is a float. Shapes hold integers "
                             "(TensorRT's dimension expressions and torch's SymInts refuse floats): write 1, not 1.0, "
                             "and use // rather than /").format(shape=shape, got=got, value=floats[0]))
        if got == shape:
            raise Mismatch(_("for input {shape} you returned the input shape: that is `x.like()`, right for "
                             "elementwise ops only. GeM pools H×W away: expected {expected}").format(
                                 shape=shape, expected=expected))
        if got == shape[:2]:
            raise Mismatch(_("for input {shape} you returned {got}: the 1×1 spatial dimensions are gone. The graph "
                             "after the pool (Flatten, Gemm) expects N×C×1×1 like GlobalAveragePool: "
                             "{expected}").format(shape=shape, got=got, expected=expected))
        if got != expected:
            raise Mismatch(_("for input {shape} you returned {got}; expected {expected} (batch, channels, 1, "
                             "1)").format(shape=shape, got=got, expected=expected))
    n, c, h, w = _SymDim("batch"), _SymDim("channels"), _SymDim("height"), _SymDim("width")
    for symbolic in [(n, c, 2, 2), (n, c, h, w)]:
        try:
            got = tuple(fn(symbolic))
        except TypeError as err:
            raise Mismatch(_("with symbolic dimensions {symbolic} your function failed ({error}). In torch.export "
                             "and TensorRT the batch (and with dynamic images H and W) has no value when the shape "
                             "function runs: pass N and C through and write 1 for H and W, never int() "
                             "them").format(symbolic=symbolic, error=err)) from None
        if len(got) != 4 or got[0] is not n or got[1] is not c:
            raise Mismatch(_("with symbolic dimensions {symbolic} you returned {got}: pass the batch and channel "
                             "dimensions through unchanged").format(symbolic=symbolic, got=got))
        if any(d is h or d is w for d in got) or got[2:] != (1, 1):
            raise Mismatch(_("with symbolic dimensions {symbolic} you returned {got}: H and W become 1 whatever "
                             "they were").format(symbolic=symbolic, got=got))
    for bad in [(2, 512), (2, 512, 2, 2, 1)]:
        try:
            fn(bad)
        except Exception:  # noqa: BLE001 - any error is the right reaction to a wrong rank
            continue
        raise Mismatch(_("for a rank-{rank} input {shape} you returned a shape instead of raising. GeM pools "
                         "N×C×H×W feature maps: raise ValueError naming the rank you got, so a wrong graph fails at "
                         "build time").format(rank=len(bad), shape=bad))
    return _("N×C×H×W → N×C×1×1 for concrete and symbolic shapes, and wrong ranks are refused")


@exercise("lab05.plane_and_lane", title=N_("The kernel's index math: one warp per (n, c) plane"), hints=(
    N_("Every thread has a global number t built from blockIdx.x, blockDim.x and threadIdx.x. A warp is 32 "
       "consecutive threads, and each warp owns one plane."),
    N_("t = block_idx * block_dim + thread_idx. Consecutive groups of 32 values of t share a plane (integer "
       "division by 32); the position inside the group is the lane (remainder)."),
    N_("t = block_idx * block_dim + thread_idx; return t // 32, t % 32"),
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
            raise Mismatch(_("{error}. The lane is the thread's position inside its warp of {warp}: a "
                             "remainder").format(error=err, warp=WARP))
        grid = launch_grid(planes, block)
        missing = np.flatnonzero((hits == 0).all(axis=1))
        doubled = np.argwhere(hits > 1)
        if len(missing):
            raise Mismatch(_("with {grid} blocks of {block} threads and {planes} planes, planes {missing} were never "
                             "computed{why}").format(grid=grid, block=block, planes=planes, missing=missing.tolist(),
                                                     why=_why_missing(fn, hits, grid, block)))
        if len(doubled):
            plane, lane = doubled[0]
            raise Mismatch(_("plane {plane}, lane {lane} was assigned to {count} threads: two threads would add the "
                             "same values twice. Each global thread must map to a distinct pair").format(
                                 plane=plane, lane=lane, count=hits[plane, lane]))
        partial = np.flatnonzero((hits == 0).any(axis=1))
        if len(partial):
            raise Mismatch(_("planes {planes} have lanes no thread was assigned to, so some of their values are "
                             "never read: every plane needs all {warp} lanes").format(planes=partial.tolist(),
                                                                                      warp=WARP))
        note = assert_close(y, gem_pool_ref(x, 3.0, 1e-6), rtol=_GEM_RTOL, atol=0,
                            name=_("GeM of {shape}").format(shape=shape))
    return _("every plane gets exactly one warp of 32 lanes, for blocks of 256, 128 and 96 threads; {note}").format(
        note=note)


def _why_missing(fn: Callable[[int, int, int], Any], hits: np.ndarray, grid: int, block: int) -> str:
    """The mistake behind planes no warp computed, as far as the assignments show it."""
    if all(int(fn(b, t, block)[0]) == int(fn(0, t, block)[0]) for b in range(grid) for t in range(block)):
        return _(": every block computes the same planes (the plane does not depend on the block index). Include "
                 "blockIdx.x * blockDim.x in the global thread index")
    per_plane = int(hits[0].sum())
    if per_plane != WARP:
        return _(": plane 0 got {count} threads instead of one warp of {warp}, so the threads run out before the "
                 "last planes. Divide the global thread index by {warp}, the warp size").format(count=per_plane,
                                                                                            warp=WARP)
    return _(". Likely causes: the plane computed from the block index with another block size than blockDim.x")


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
        raise Mismatch(_("plane_and_lane(1, 33, 64) returned {got!r}; return a pair (plane, lane)").format(got=got))
    for what, value in zip(("plane", "lane"), got):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            whole = isinstance(value, float) and value.is_integer()
            raise Mismatch(_("for block 1, thread 33 of 64 the {what} is {value!r}, a {kind}: ").format(
                what=what, value=value, kind=type(value).__name__)
                           + (_("return ints, not floats (int(...) or //)") if whole else
                              _("in Python `/` is true division; CUDA's int / int truncates, which is Python's "
                                "`//`")))


def _attributes(node: Any) -> dict[str, Any]:
    import onnx

    return {a.name: (a.type, onnx.helper.get_attribute_value(a)) for a in node.attribute}


def _as_text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


@exercise("lab05.gem_node", title=N_("The ONNX node the TensorRT parser maps to the plugin"), hints=(
    N_("The TensorRT ONNX parser has no importer for GemPool, so its FallbackPluginImporter asks the plugin registry "
       "for a creator. Which three strings does it ask with, and where in the node does it read them?"),
    N_("op_type must be the plugin name (GemPool); plugin_version and plugin_namespace are STRING attributes (\"1\" "
       "and \"trtlab\"). p and eps are FLOAT attributes (write 3.0, not 3). ONNX Runtime Extensions needs the domain "
       "ai.onnx.contrib."),
    N_("onnx.helper.make_node('GemPool', [input_name], [output_name], domain='ai.onnx.contrib', p=float(p), "
       "eps=float(eps), plugin_version='1', plugin_namespace='trtlab')"),
), time_limit_s=60)  # measured ~1 s: two registry look-ups and two ONNX Runtime sessions
def gem_node(fn: Callable[..., Any]) -> str:
    """Two calls (``_NODE_CASES``: short and long tensor names, p = 3 and 2.5, two eps), each looked up in the plugin
    registry and run in ONNX Runtime against the reference within ``_NODE_RTOL``."""
    notes = []
    for input_name, output_name, p, eps in _NODE_CASES:
        notes.append(_check_one_node(fn, input_name, output_name, p, eps))
    return notes[0] + _("; also right for p={p}, eps={eps:g} and long tensor names").format(p=_NODE_CASES[1][2],
                                                                                            eps=_NODE_CASES[1][3])


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
        raise Mismatch(_("you returned a {kind}; return an onnx.NodeProto (onnx.helper.make_node)").format(
            kind=type(node).__name__))
    if list(node.input) != [input_name] or list(node.output) != [output_name]:
        raise Mismatch(_("called with ({input_name!r}, {output_name!r}) the node reads {inputs} and writes "
                         "{outputs}: use the input_name and output_name arguments").format(
                             input_name=input_name, output_name=output_name, inputs=list(node.input),
                             outputs=list(node.output)))
    attrs = _attributes(node)
    for name in ("plugin_version", "plugin_namespace"):
        if name in attrs and attrs[name][0] != AttributeProto.STRING:
            raise Mismatch(_("attribute {name} has type {kind}; the parser reads it as a STRING (a number here is "
                             "not found): write it in quotes").format(
                                 name=name, kind=AttributeProto.AttributeType.Name(attrs[name][0])))
    version = _as_text(attrs.get("plugin_version", (None, "1"))[1])
    namespace = _as_text(attrs.get("plugin_namespace", (None, ""))[1])
    found, how = _lookup(node.op_type, version, namespace)
    if not found:
        reasons = []
        if node.op_type != PLUGIN_NAME:
            reasons.append(_("op_type is {op_type!r}, but the parser uses the op_type as the plugin name, which is "
                             "{plugin!r}").format(op_type=node.op_type, plugin=PLUGIN_NAME))
        if "plugin_namespace" not in attrs:
            reasons.append(_("there is no plugin_namespace attribute, so the parser asks for namespace \"\"; the "
                             "plugin lives in {namespace!r}").format(namespace=PLUGIN_NAMESPACE))
        elif namespace != PLUGIN_NAMESPACE:
            reasons.append(_("plugin_namespace is {got!r}; the plugin lives in {namespace!r}").format(
                got=namespace, namespace=PLUGIN_NAMESPACE))
        if version != PLUGIN_VERSION:
            reasons.append(_("plugin_version is {got!r}; the creator has {version!r}").format(
                got=version, version=PLUGIN_VERSION))
        raise Mismatch(_("{how} has no creator for (name={name!r}, version={version!r}, namespace={namespace!r}): "
                         "\"Plugin not found\". ").format(how=how, name=node.op_type, version=version,
                                                           namespace=namespace)
                       + "; ".join(reasons or [_("check all three")]))
    for name in ("p", "eps"):
        if name not in attrs:
            raise Mismatch(_("attribute {name!r} is missing: it becomes the plugin field {name!r} (and the ONNX "
                             "Runtime op's argument)").format(name=name))
        if attrs[name][0] != AttributeProto.FLOAT:
            raise Mismatch(_("attribute {name!r} has type {kind}; the plugin field is FLOAT32, so write a float "
                             "({name}=float({name}): 3.0, not 3)").format(
                                 name=name, kind=AttributeProto.AttributeType.Name(attrs[name][0])))
    stored = {name: attrs[name][1] for name in ("p", "eps")}
    for name, given in (("p", p), ("eps", eps)):
        if abs(stored[name] - given) > 2 * U32 * abs(given):  # a FLOAT attribute holds float32: one rounding
            raise Mismatch(_("called with {name}={given:g}, the node's {name} attribute is {stored:g}: use the {name} "
                             "argument, do not hard-code it").format(name=name, given=given, stored=stored[name]))
    if node.domain != ONNX_DOMAIN:
        raise Mismatch(_("domain {domain!r}: TensorRT ignores it, but ONNX Runtime Extensions runs Python custom ops "
                         "only in {expected!r}, so ONNX Runtime could not load this node").format(
                             domain=node.domain, expected=ONNX_DOMAIN))
    note = _run_in_onnxruntime(node, input_name, output_name, p, eps)
    return _("{how} finds the creator for this node; {note}").format(how=how, note=note)


def _lookup(op_type: str, version: str, namespace: str) -> tuple[bool, str]:
    """Ask the real TensorRT-RTX plugin registry (with the GemPool creator registered) when it is installed."""
    from trtlab import _compat

    rtx = _compat.tensorrt_rtx()
    if rtx is None:
        found = (op_type, version, namespace) == (PLUGIN_NAME, PLUGIN_VERSION, PLUGIN_NAMESPACE)
        return found, _("the plugin contract (TensorRT-RTX is not installed, so compared as text)")
    from trtlab.plugins.trt import find_creator

    return find_creator(op_type, version, namespace, trt=rtx), _("TensorRT-RTX {version}'s plugin registry").format(
        version=rtx.__version__)


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
        return _("ONNX Runtime runs it: ") + assert_close(y, gem_pool_ref(x, p, eps), rtol=_NODE_RTOL, atol=0)
    except Mismatch as wrong:
        raise Mismatch(_("ONNX Runtime ran your node but the result differs from GeM with p={p:g}, eps={eps:g} "
                         "({error}). Are p and eps the arguments you were given?").format(p=p, eps=eps,
                                                                                        error=wrong)) from None


# ---------------------------------------------------------------- the tensorrt.plugin functions


#: (input shape, dtype name, p, eps): fp16 and fp32 inputs, odd H·W, p and eps other than the defaults.
_PLUGIN_CASES = [((2, 8, 7, 7), "HALF", 2.5, 1e-5), ((3, 5, 4, 9), "FLOAT", 3.0, 1e-6)]
_STREAM = 0x5EED  # the stream handle TensorRT passes: any nonzero int; the default stream is 0


def _real_trtp() -> Any:
    """``tensorrt.plugin`` where TensorRT >= 10.6 imports (it ships no plugin module before), else None."""
    try:
        import tensorrt.plugin as trtp
    except ImportError:
        return None
    return trtp


def _check_desc(desc: Callable[..., Any], trtp: Any) -> None:
    for shape, dtype_name, p, eps in _PLUGIN_CASES:
        dims = [trtp.ShapeExpr(name) for name in ("N", "C", "H", "W")]
        dtype = getattr(trtp.DataType, dtype_name)
        x = trtp.TensorDesc(trtp.ShapeExprs.from_tuple(tuple(dims)), dtype)
        try:
            out = desc(x, p, eps)
        except TypeError as err:
            raise Mismatch(_("with a symbolic input shape (N, C, H, W) your shape function failed ({error}). When it "
                             "runs, TensorRT's dimensions are expressions with no value: index x.shape_expr and pass "
                             "N and C through; never int() them").format(error=err)) from None
        if isinstance(out, tuple) and len(out) == 1:
            out = out[0]
        if not isinstance(out, trtp.TensorDesc):
            raise Mismatch(_("your shape function returned {kind}; return a TensorDesc: "
                             "trtp.from_shape_expr((...), dtype=...)").format(kind=type(out).__name__))
        if not isinstance(out.shape_expr, trtp.ShapeExprs):
            raise Mismatch(_("the TensorDesc's shape is a {kind}: from_shape_expr converts a tuple (or ShapeExprs) "
                             "only, and TensorRT fails on anything else: pass a tuple").format(
                                 kind=type(out.shape_expr).__name__))
        got = list(out.shape_expr)
        if len(got) == 3 and got[0].same_as(dims[1]):
            raise Mismatch(_("the output shape is {got}: the batch dimension was dropped. TensorRT shapes include the "
                             "batch: the output is N×C×1×1").format(got=got))
        if len(got) != 4:
            raise Mismatch(_("the output shape has {rank} dimensions ({got}); the output is N×C×1×1 (rank 4, like "
                             "GlobalAveragePool), so the Flatten after it sees the same shape as in PyTorch").format(
                                 rank=len(got), got=got))
        if not got[0].same_as(dims[0]):
            raise Mismatch(_("output dimension 0 is {got}, not the input's batch expression N: the batch dimension "
                             "must pass through (x.shape_expr[0]); a constant would fix the batch size in the "
                             "engine").format(got=got[0]))
        if not got[1].same_as(dims[1]):
            raise Mismatch(_("output dimension 1 is {got}, not the input's channels C (x.shape_expr[1])").format(
                got=got[1]))
        if any(not d.is_constant or d.constant_value() != 1 for d in got[2:]):
            raise Mismatch(_("the output shape is {got}; not (N, C, 1, 1): H and W become the constant 1").format(
                got=got))
        if out.dtype != dtype:
            raise Mismatch(_("for a {dtype_name} input your output's dtype is {dtype}: wrong dtype propagated. Write "
                             "dtype=x.dtype (a hard-coded float32 breaks fp16 networks, which are strongly "
                             "typed)").format(dtype_name=dtype_name, dtype=out.dtype))


def _check_impl(impl: Callable[..., Any], trtp: Any, gpu: bool) -> str:
    from unittest import mock

    from trtlab.plugins import kernel

    calls: list[tuple] = []
    real_launch = kernel.launch

    def spy(x_ptr: int, y_ptr: int, planes: int, hw: int, p: float, eps: float, stream: Any = None,
            **kwargs: Any) -> None:
        calls.append((x_ptr, y_ptr, planes, hw, p, eps, stream))
        if gpu:
            real_launch(x_ptr, y_ptr, planes, hw, p, eps, stream, **kwargs)

    rng = np.random.default_rng(7)
    for shape, _dtype, p, eps in _PLUGIN_CASES:
        n, c, h, w = shape
        x_host = (rng.normal(size=shape) * 2).astype(np.float32)
        if gpu:
            import cupy

            stream = cupy.cuda.Stream(non_blocking=True)
            xd, yd = cupy.asarray(x_host), cupy.full((n, c, 1, 1), np.nan, np.float32)
            x_ptr, y_ptr, handle = int(xd.data.ptr), int(yd.data.ptr), int(stream.ptr)
        else:
            x_ptr, y_ptr, handle = 0x7F0000001000, 0x7F0000200000, _STREAM  # addresses the launch is compared with
        x = trtp.Tensor(shape, trtp.DataType.FLOAT, x_ptr)
        y = trtp.Tensor((n, c, 1, 1), trtp.DataType.FLOAT, y_ptr)
        calls.clear()
        with mock.patch.object(kernel, "launch", spy):
            impl(x, p, eps, (y,), handle)
        _check_launch(calls, x_ptr, y_ptr, n * c, h * w, p, eps, handle, shape)
        if gpu:
            stream.synchronize()
            assert_close(yd.get(), gem_pool_ref(x_host, p, eps), rtol=1e-4, atol=0,
                         name=_("GeM of {shape} (GPU)").format(shape=shape))
    where = (_("and ran the kernel on a CuPy stream") if gpu else
             _("(recorded; no GPU here, so the kernel was not run)"))
    return _("your impl launches the kernel on TensorRT's stream with the right pointers and sizes {where}").format(
        where=where)


def _check_launch(calls: list, x_ptr: int, y_ptr: int, planes: int, hw: int, p: float, eps: float, stream: int,
                  shape: tuple) -> None:
    if not calls:
        raise Mismatch(_("your impl never called tl.plugins.kernel.launch(...): nothing would be written to the "
                         "output"))
    if len(calls) > 1:
        raise Mismatch(_("your impl launched the kernel {count} times for one enqueue; once covers every "
                         "plane").format(count=len(calls)))
    got_x, got_y, got_planes, got_hw, got_p, got_eps, got_stream = calls[0]
    if (got_x, got_y) == (y_ptr, x_ptr):
        raise Mismatch(_("input and output pointers are swapped: launch(x.data_ptr, outputs[0].data_ptr, ...)"))
    if got_x != x_ptr or got_y != y_ptr:
        raise Mismatch(_("the kernel gets other pointers than x.data_ptr and outputs[0].data_ptr: a plugin reads and "
                         "writes only the buffers TensorRT hands it"))
    if (got_planes, got_hw) != (planes, hw):
        raise Mismatch(_("for input {shape} you launch planes={got_planes}, hw={got_hw}; expected planes = N·C = "
                         "{planes} and hw = H·W = {hw} (wrong pointer/plane count: the kernel would skip or overrun "
                         "planes)").format(shape=shape, got_planes=got_planes, got_hw=got_hw, planes=planes, hw=hw))
    if (float(got_p), float(got_eps)) != (p, eps):
        raise Mismatch(_("called with p={p}, eps={eps} you launch with p={got_p}, eps={got_eps}: pass the attributes "
                         "through (they come from the ONNX node)").format(p=p, eps=eps, got_p=got_p,
                                                                           got_eps=got_eps))
    if got_stream in (None, 0) or int(got_stream) != stream:
        raise Mismatch(_("the kernel is launched on stream {got!r}, not on `stream` ({stream:#x}): launched on the "
                         "wrong stream. TensorRT orders the plugin with the rest of the engine on the stream it "
                         "passes; the default stream (0) breaks that ordering and CUDA graphs").format(
                             got=got_stream, stream=stream))


@exercise("lab05.plugin_functions", title=N_("The tensorrt.plugin shape/type function and implementation"), hints=(
    N_("The shape function sees descriptors, not data: x.shape_expr holds symbolic dimensions and x.dtype the type. "
       "The implementation gets real tensors (x.shape, x.data_ptr, outputs[0].data_ptr) and the stream to launch on."),
    N_("Shape: trtp.from_shape_expr((x.shape_expr[0], x.shape_expr[1], 1, 1), dtype=x.dtype) — a tuple. Impl: planes "
       "= N·C and hw = H·W from x.shape; launch with tl.plugins.kernel.launch(...) on `stream`."),
    N_("return trtp.from_shape_expr((x.shape_expr[0], x.shape_expr[1], 1, 1), dtype=x.dtype)  |  n, c, h, w = "
       "x.shape; tl.plugins.kernel.launch(x.data_ptr, outputs[0].data_ptr, n * c, h * w, p, eps, stream)"),
), time_limit_s=60)  # measured < 0.1 s on the stand-in
def plugin_functions(desc: Callable[..., Any], impl: Callable[..., Any]) -> str:
    """Registration rules, the shape/type function on symbolic fp16/fp32 descriptors, and the launch the impl makes
    (``_PLUGIN_CASES``), against ``tensorrt.plugin`` where TensorRT >= 10.6 imports, else the stand-in (said so)."""
    from trtlab.env import capabilities
    from trtlab.standin import trtp as standin

    real = _real_trtp()
    registrar = real if real is not None else standin
    plugin_id = f"trtlab_check::GemPool{next(_PLUGIN_IDS)}"
    try:
        registrar.register(plugin_id)(desc)
        registrar.impl(plugin_id)(impl)
    except ValueError as err:
        raise Mismatch(_("tensorrt.plugin refuses your functions: {error}").format(error=err)) from None
    note = _check_impl(impl, standin, capabilities().cupy_runs_kernels)
    if real is None:
        _check_desc(desc, standin)
        return _("shape N×C×1×1 from symbolic (N, C, H, W), dtype propagated (fp16 and fp32); {note}. Checked on "
                 "the {announcement}").format(note=note, announcement=standin.announcement)
    # TensorRT's ShapeExpr needs the builder's IExprBuilder, so its shape function runs when an engine is built
    return _("TensorRT's own tensorrt.plugin accepted both signatures (registered as {plugin_id}); {note}, with "
             "stand-in tensors. Your shape function runs on TensorRT when the engine below is built").format(
                 plugin_id=plugin_id, note=note)


_PLUGIN_IDS = itertools.count()
