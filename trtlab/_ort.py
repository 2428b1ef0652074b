"""Opening ONNX Runtime sessions, in one place (re-exported as :func:`trtlab.runtime.ort_session`).

Every session the course opens — runners, Lab 03's accuracy tables and layer-wise error, Lab 02's checker, Lab 05's
custom-op session, Lab 06's Python backend — goes through :func:`ort_session`, so none can forget an optimizer
that ONNX Runtime must not run on a model (tests/test_runtime.py checks that nothing else opens one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

__all__ = ["ORT_DISABLED_OPTIMIZERS", "ORT_FP16_DISABLED_OPTIMIZERS", "ort_session"]

#: ONNX Runtime graph optimizers every course session turns off. ``WeightBiasQuantization`` overflows the fp16
#: biases of ModelOpt's default INT8 output (45–83 % top-1 instead of 99 %); it only rewrites Q/DQ models, so turning
#: it off costs fp32 models nothing. TensorRT never runs ORT's passes: this fixes the CPU reference, not the model.
ORT_DISABLED_OPTIMIZERS = ("WeightBiasQuantization",)
#: Turned off as well for models that compute in fp16: ``NchwcTransformer`` crashes the process (segmentation fault,
#: ONNX Runtime 1.31) on AutoCast fp16 vision transformers. Only there: on fp32 CNNs it is a 5× CPU speed-up.
ORT_FP16_DISABLED_OPTIMIZERS = ("NchwcTransformer",)


def _computes_in_fp16(proto: Any) -> bool:
    """Whether an ONNX graph holds fp16 tensors (AutoCast output, or ModelOpt INT8 with fp16 high precision)."""
    from onnx import TensorProto

    graph = proto.graph
    if any(t.data_type == TensorProto.FLOAT16 for t in graph.initializer):
        return True
    if any(v.type.tensor_type.elem_type == TensorProto.FLOAT16
           for v in (*graph.input, *graph.output, *graph.value_info)):
        return True
    return any(n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in n.attribute)
               for n in graph.node)


def ort_session(model: str | Path | bytes | Any, *, providers: Sequence[str] | None = None,
                session_options: Any = None, disabled_optimizers: Sequence[str] = ()) -> Any:
    """The one place trtlab opens an ``onnxruntime.InferenceSession`` (path, bytes or ``onnx.ModelProto``).

    Every session gets :data:`ORT_DISABLED_OPTIMIZERS`, and fp16 models also :data:`ORT_FP16_DISABLED_OPTIMIZERS`,
    so a model ONNX Runtime would mis-execute or crash on is never opened without them; ``disabled_optimizers``
    adds more. A missing, empty or corrupt file raises the course's error (see :func:`trtlab.export.load_onnx`).
    """
    import onnxruntime as ort

    from trtlab._onnx import load_onnx

    if hasattr(model, "SerializeToString"):
        proto, source = model, model.SerializeToString()
    else:
        proto = load_onnx(model, load_external_data=False)
        source = bytes(model) if isinstance(model, (bytes, bytearray)) else str(model)
    disabled = [*ORT_DISABLED_OPTIMIZERS, *(ORT_FP16_DISABLED_OPTIMIZERS if _computes_in_fp16(proto) else ()),
                *disabled_optimizers]
    return ort.InferenceSession(source, sess_options=session_options,
                                providers=list(providers or ["CPUExecutionProvider"]),
                                disabled_optimizers=list(dict.fromkeys(disabled)))
