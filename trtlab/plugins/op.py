"""GeM pooling as a PyTorch custom op, the ResNet18 variant that uses it, and its export as one ONNX custom node
(Lab 05, steps 1 and 2).

``torch.library.custom_op`` makes the op opaque to ``torch.export``: the exporter sees one call with a known output
shape (the fake implementation) instead of the four ops inside, and ``custom_translation_table`` turns that call
into one ONNX ``GemPool`` node carrying the attributes the TensorRT parser looks up.
"""

from __future__ import annotations

import contextlib
import io
import copy
import functools
from pathlib import Path
from typing import Any

from trtlab.errors import ExportError
from trtlab.i18n import _
from trtlab.export import quiet_exporter
from trtlab.plugins import (DEFAULT_EPS, DEFAULT_P, ONNX_DOMAIN, PLUGIN_NAME, TORCH_OP, node_attributes,
                            output_shape)

__all__ = ["GeM", "count_custom_nodes", "decompose", "export_gem_onnx", "gem_pool", "gem_variant", "onnx_translation",
           "torch_op"]


@functools.cache
def torch_op() -> Any:
    """Register ``trtlab::gem_pool`` once per process and return ``torch.ops.trtlab.gem_pool``.

    The eager implementation is plain PyTorch (the reference the plugin is tested against), the fake one only
    computes the output shape (what ``torch.export`` needs), and the backward makes it trainable.
    """
    import torch

    # the schema is spelled out: this module uses postponed annotations, which custom_op cannot read
    @torch.library.custom_op(TORCH_OP, mutates_args=(), schema="(Tensor x, float p, float eps) -> Tensor")
    def gem_pool(x: torch.Tensor, p: float, eps: float) -> torch.Tensor:
        return x.clamp(min=eps).pow(p).mean(dim=(2, 3), keepdim=True).pow(1.0 / p)

    @gem_pool.register_fake
    def _(x: torch.Tensor, p: float, eps: float) -> torch.Tensor:
        return x.new_empty(output_shape(x.shape))

    def setup_context(ctx: Any, inputs: tuple, output: torch.Tensor) -> None:
        x, p, eps = inputs
        ctx.save_for_backward(x, output)
        ctx.p, ctx.eps = p, eps

    def backward(ctx: Any, grad: torch.Tensor) -> tuple:
        # y = m^(1/p), m = mean(xc^p)  →  dy/dx = y^(1-p) · xc^(p-1) / (H·W) where x > eps, else 0
        x, y = ctx.saved_tensors
        hw = x.shape[2] * x.shape[3]
        xc = x.clamp(min=ctx.eps)
        dx = grad * y.pow(1.0 - ctx.p) * xc.pow(ctx.p - 1.0) / hw * (x > ctx.eps).to(x.dtype)
        return dx, None, None

    gem_pool.register_autograd(backward, setup_context=setup_context)
    return torch.ops.trtlab.gem_pool.default


def gem_pool(x: Any, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> Any:
    """``torch.ops.trtlab.gem_pool(x, p, eps)``, registering the op on first use."""
    return torch_op()(x, float(p), float(eps))


@functools.cache
def _gem_class() -> type:
    import torch.nn as nn

    class GeM(nn.Module):
        """Generalized-mean pooling over H×W (N×C×H×W → N×C×1×1), a drop-in for ``AdaptiveAvgPool2d(1)``."""

        def __init__(self, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> None:
            super().__init__()
            self.p, self.eps = float(p), float(eps)

        def forward(self, x: Any) -> Any:
            return gem_pool(x, self.p, self.eps)

        def extra_repr(self) -> str:
            return f"p={self.p:g}, eps={self.eps:g}"

    return GeM


def GeM(p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> Any:  # noqa: N802 - reads like the nn.Module it returns
    """A GeM pooling module (``p`` fixed: it becomes the ONNX attribute and the plugin field)."""
    return _gem_class()(p, eps)


def gem_variant(model: Any, *, p: float = DEFAULT_P, eps: float = DEFAULT_EPS, last_stride: int = 1) -> Any:
    """A copy of a torchvision-style ResNet with GeM pooling instead of average pooling.

    ``last_stride=1`` removes layer4's down-sampling (the "last stride 1" of re-identification baselines): at 32×32
    input the course model's layer4 is 1×1, where any pooling is the identity; at stride 1 it is 2×2.
    """
    import torch.nn as nn

    variant = copy.deepcopy(model)
    if not hasattr(variant, "avgpool") or not hasattr(variant, "layer4"):
        raise ExportError(_("gem_variant: {kind} has no avgpool/layer4; expected the course ResNet "
                            "(trtlab.models.resnet18 or ensure_course_model())").format(kind=type(model).__name__))
    if last_stride != 2:
        first = variant.layer4[0]
        for conv in (first.conv1, *(m for m in (first.downsample or []) if isinstance(m, nn.Conv2d))):
            conv.stride = (last_stride, last_stride)
    variant.avgpool = GeM(p, eps)
    return variant


@functools.cache
def onnx_translation() -> Any:
    """The ONNX translation of the op for ``torch.onnx.export(..., custom_translation_table=...)``: one ``GemPool``
    node in ``ai.onnx.contrib`` with ``p``, ``eps``, ``plugin_version`` and ``plugin_namespace``."""
    import onnxscript
    from onnx.defs import OpSchema

    # A schema tells the exporter the node has one output (unknown ops get none by default).
    schema = OpSchema(
        PLUGIN_NAME, ONNX_DOMAIN, 1,
        inputs=[OpSchema.FormalParameter("x", "T")], outputs=[OpSchema.FormalParameter("y", "T")],
        type_constraints=[("T", ["tensor(float)"], "float32 only, like the plugin")],
        attributes=[OpSchema.Attribute("p", OpSchema.AttrType.FLOAT, "exponent"),
                    OpSchema.Attribute("eps", OpSchema.AttrType.FLOAT, "clamp floor"),
                    OpSchema.Attribute("plugin_version", OpSchema.AttrType.STRING, "TensorRT creator version"),
                    OpSchema.Attribute("plugin_namespace", OpSchema.AttrType.STRING, "TensorRT creator namespace")])
    gem_node = onnxscript.values.Op(onnxscript.values.Opset(ONNX_DOMAIN, 1), PLUGIN_NAME, schema)

    def gem_pool_onnx(x: Any, p: float, eps: float) -> Any:
        return gem_node(x, **node_attributes(p, eps))

    return gem_pool_onnx


def export_gem_onnx(model: Any, path: str | Path, *, input_size: int = 32, dynamic_batch: bool = True,
                    opset: int = 18, input_name: str = "images", output_name: str = "logits") -> Path:
    """Export a model that calls ``trtlab::gem_pool`` with the op as one ``GemPool`` node (dynamo exporter)."""
    import onnx
    import torch

    torch_op()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device  # export where the model lives (a GPU after fine-tuning there)
    sample = torch.zeros(2, 3, input_size, input_size, device=device)  # batch 2: torch.export would pin a batch of 1
    kwargs: dict[str, Any] = dict(dynamo=True, opset_version=opset, input_names=[input_name],
                                  output_names=[output_name], external_data=False, verbose=False,
                                  custom_translation_table={torch_op(): onnx_translation()})
    if dynamic_batch:
        kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=4096)},)
    try:
        with quiet_exporter(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
            torch.onnx.export(model.eval(), (sample,), str(path), **kwargs)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types
        raise ExportError(_("export of the GeM model failed: {kind}: {first_line}. "
                            "Check that the model runs on (2, 3, H, W) in eval mode and calls "
                            "torch.ops.trtlab.gem_pool (trtlab.plugins.op.GeM)").format(
                                kind=type(err).__name__, first_line=str(err).splitlines()[0])) from err
    found = count_custom_nodes(onnx.load(str(path)))
    if found == 0:
        raise ExportError(_("{file}: no {plugin} node after export; the model does not call "
                            "torch.ops.trtlab.gem_pool (did it keep nn.AdaptiveAvgPool2d?)").format(
                                file=path.name, plugin=PLUGIN_NAME))
    return path


def count_custom_nodes(model: Any) -> int:
    """How many ``GemPool`` nodes an ONNX model (a ``ModelProto``) has."""
    return sum(1 for node in model.graph.node if node.op_type == PLUGIN_NAME)


def decompose(model: Any) -> Any:
    """A copy of an ONNX model with every ``GemPool`` node written as standard ONNX ops (opset >= 18):
    ``Max(x, eps) → Pow(p) → ReduceMean(H, W) → Pow(1/p)``. What an export without the custom op would contain:
    any runtime runs it, as four kernels (unless a compiler fuses them), with ``x**p`` materialised in the
    tensor's precision (in FP16, ``x**3`` overflows above x ≈ 40)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    out = copy.deepcopy(model)
    nodes = []
    for index, node in enumerate(out.graph.node):
        if node.op_type != PLUGIN_NAME:
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        p, eps = float(attrs.get("p", DEFAULT_P)), float(attrs.get("eps", DEFAULT_EPS))
        tag = f"gem{index}"
        consts = {f"{tag}_eps": np.array(eps, np.float32), f"{tag}_p": np.array(p, np.float32),
                  f"{tag}_inv_p": np.array(1.0 / p, np.float32), f"{tag}_axes": np.array([2, 3], np.int64)}
        out.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
        x, y = node.input[0], node.output[0]
        nodes += [helper.make_node("Max", [x, f"{tag}_eps"], [f"{tag}_clamped"], name=f"{tag}_max"),
                  helper.make_node("Pow", [f"{tag}_clamped", f"{tag}_p"], [f"{tag}_powered"], name=f"{tag}_pow"),
                  helper.make_node("ReduceMean", [f"{tag}_powered", f"{tag}_axes"], [f"{tag}_mean"], keepdims=1,
                                   name=f"{tag}_mean"),
                  helper.make_node("Pow", [f"{tag}_mean", f"{tag}_inv_p"], [y], name=f"{tag}_root")]
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    if not any(n.domain == ONNX_DOMAIN for n in out.graph.node):
        kept = [o for o in out.opset_import if o.domain != ONNX_DOMAIN]
        del out.opset_import[:]
        out.opset_import.extend(kept)
    onnx.checker.check_model(out)
    return out
