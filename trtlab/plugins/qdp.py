"""``trtlab::GemPool`` as a quickly deployable plugin (``tensorrt.plugin``, TensorRT >= 10.6; AOT from 10.9).

Imported by :func:`trtlab.plugins.trt.register_qdp` only, because importing it imports TensorRT. This module does
NOT use ``from __future__ import annotations``: ``tensorrt.plugin`` reads the annotations as classes (a
``TensorDesc`` argument is an input, the others are attributes; ``outputs`` must be ``Tuple[...]``, the autotune
result ``List[AutoTuneCombination]``), and postponed annotations would be strings.
"""

from typing import Any, List, Tuple, Union

import tensorrt.plugin as trtp

from trtlab.plugins import BLOCK, PLUGIN_ID, WARP, kernel, output_shape

__all__ = ["define"]


def define(aot: bool, *, desc: Any = None, impl: Any = None) -> None:
    """Register the shape/type function, the autotune formats, the JIT implementation and (``aot``) the AOT one.
    ``desc`` / ``impl``: a learner's shape/type function and implementation (Lab 05) instead of the course's."""

    def gem_pool_desc(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
        # Lab 05's exercise-1 rule on symbolic ShapeExprs: N and C pass through, H and W become 1
        dims = output_shape([x.shape_expr[i] for i in range(x.ndim)])
        return trtp.from_shape_expr(dims, dtype=x.dtype)

    trtp.register(PLUGIN_ID)(desc or gem_pool_desc)

    @trtp.autotune(PLUGIN_ID)
    def gem_pool_autotune(x: trtp.TensorDesc, p: float, eps: float,
                          outputs: Tuple[trtp.TensorDesc]) -> List[trtp.AutoTuneCombination]:
        return [trtp.AutoTuneCombination("FP32, FP32", "LINEAR")]

    def gem_pool_impl(x: trtp.Tensor, p: float, eps: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
        n, c, h, w = (int(d) for d in x.shape)
        kernel.launch(int(x.data_ptr), int(outputs[0].data_ptr), n * c, h * w, p, eps, int(stream))

    trtp.impl(PLUGIN_ID)(impl or gem_pool_impl)

    if not aot:
        return

    @trtp.aot_impl(PLUGIN_ID)
    def gem_pool_aot(x: trtp.TensorDesc, p: float, eps: float, outputs: Tuple[trtp.TensorDesc], tactic: int
                     ) -> Tuple[Union[str, bytes], Union[str, bytes], trtp.KernelLaunchParams, trtp.SymExprs]:
        shape = x.shape_expr
        planes, hw = shape[0] * shape[1], shape[2] * shape[3]
        params = trtp.KernelLaunchParams()
        params.grid_x = trtp.cdiv(planes * WARP, BLOCK)
        params.block_x = BLOCK
        params.shared_mem = 0
        # TensorRT passes the inputs, then these int32 scalars (resolved at run time), then the outputs
        extra = trtp.SymIntExprs.from_tuple([trtp.SymInt32(planes), trtp.SymInt32(hw)])
        return kernel.AOT_KERNEL.encode(), kernel.aot_ptx(p, eps).encode(), params, extra
