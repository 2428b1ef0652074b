"""A toy ONNX classifier (Conv → ReLU → GlobalAveragePool → Gemm) made with onnx.helper in milliseconds.

Checkers and tests build and quantize it instead of the course ResNet18, so they stay fast and need no training.
"""

from __future__ import annotations

import numpy as np

__all__ = ["toy_classifier_onnx"]


def toy_classifier_onnx(*, size: int = 8, classes: int = 4, channels: int = 6, dynamic_batch: bool = True,
                        seed: int = 0) -> bytes:
    """Serialized ONNX (opset 18): input "images" N×3×size×size float32, output "logits" N×classes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array((rng.standard_normal((channels, 3, 3, 3)) * 0.3).astype(np.float32), "conv.weight"),
        numpy_helper.from_array((rng.standard_normal(channels) * 0.1).astype(np.float32), "conv.bias"),
        numpy_helper.from_array((rng.standard_normal((classes, channels)) * 0.3).astype(np.float32), "fc.weight"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "fc.bias"),
    ]
    nodes = [
        helper.make_node("Conv", ["images", "conv.weight", "conv.bias"], ["conv"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"], name="relu"),
        helper.make_node("GlobalAveragePool", ["relu"], ["pool"], name="pool"),
        helper.make_node("Flatten", ["pool"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight", "fc.bias"], ["logits"], transB=1, name="fc"),
    ]
    batch: int | str = "N" if dynamic_batch else 1
    graph = helper.make_graph(
        nodes, "toy", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()
