"""Parity of an ONNX file with its PyTorch model (Lab 02), the implementation of :func:`trtlab.export.parity`.

Every output is compared, with a tolerance per precision that combines absolute and relative error
(:data:`PARITY_TOLERANCES`); NaN/Inf in an output fails and is reported, NaN/Inf in an input is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from trtlab.errors import InputMismatch, InvalidArgument

__all__ = ["OutputParity", "PARITY_TOLERANCES", "Parity", "parity"]


#: Parity tolerance per precision, (atol, rtol): an output passes when max |Δ| <= atol + rtol · max |reference|,
#: the reference's largest magnitude in that output (a scale-aware relative error that does not explode near 0).
#: Derived from the arithmetic, with u the unit roundoff of each format:
#: - fp32 (u = 2**-24 ≈ 6e-8): PyTorch and ONNX Runtime sum each K-term dot product in different orders, so results
#:   differ by about √K·u of the layer's scale (K = 3·3·512 = 4608 in ResNet-18: 4e-6), growing about √L over L ≈ 20
#:   layers: ≈ 2e-5. rtol 1e-4 leaves 5× headroom; atol 1e-5 serves outputs whose scale is ~0.
#: - fp16 (u = 2**-11 ≈ 4.9e-4): every activation is rounded to fp16 once per layer, u per layer, up to L·u ≈ 1e-2
#:   after 20 layers when the roundings add up: rtol 1e-2, atol 1e-3.
#: - int8: a symmetric int8 tensor is rounded to half a step, 1/254 ≈ 3.9e-3 of its range, for weights and for
#:   activations of every quantized layer: (2·20)·3.9e-3 ≈ 0.16 when all add up, √40·3.9e-3 ≈ 2.5e-2 typically:
#:   rtol 1e-1, atol 1e-2.
PARITY_TOLERANCES: dict[str, tuple[float, float]] = {"fp32": (1e-5, 1e-4), "fp16": (1e-3, 1e-2), "int8": (1e-2, 1e-1)}


@dataclass
class OutputParity:
    """One output of the model compared: error, the reference's scale, the limit, and non-finite values found."""

    name: str
    max_abs: float
    scale: float  # max |reference|
    limit: float  # atol + rtol · scale
    nonfinite_onnx: int = 0
    nonfinite_torch: int = 0

    @property
    def max_rel(self) -> float:
        return self.max_abs / max(self.scale, 1e-12)

    @property
    def passed(self) -> bool:
        return not (self.nonfinite_onnx or self.nonfinite_torch) and self.max_abs <= self.limit

    def __str__(self) -> str:
        bad = (f"; NaN/Inf: {self.nonfinite_onnx} in ONNX Runtime, {self.nonfinite_torch} in PyTorch"
               if self.nonfinite_onnx or self.nonfinite_torch else "")
        return (f"{'✅' if self.passed else '❌'} {self.name}: max |Δ| {self.max_abs:.2e} (limit {self.limit:.2e}), "
                f"max rel {self.max_rel:.2e}{bad}")


@dataclass
class Parity:
    """ONNX Runtime vs PyTorch on the same inputs, every output. Truthy when every output is finite and within
    tolerance (see :data:`PARITY_TOLERANCES`) and, for fp32, top-1 agreement is 100 %."""

    n: int
    max_abs: float
    max_rel: float
    top1_agreement: float
    atol: float
    backend: str = "onnxruntime"
    rtol: float = 0.0
    precision: str = "fp32"
    outputs: list[OutputParity] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        if self.outputs:
            flips = self.precision == "fp32" and self.top1_agreement < 1.0  # nan (no class axis): nothing to flip
            return all(o.passed for o in self.outputs) and not flips
        return self.max_abs <= self.atol and self.top1_agreement == 1.0

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        head = (f"Parity({verdict}: {self.backend} vs PyTorch on {self.n} inputs, {self.precision} tolerance "
                f"|Δ| <= {self.atol:g} + {self.rtol:g}·max|ref|: max |Δ| {self.max_abs:.2e}, max rel "
                f"{self.max_rel:.2e}, top-1 agreement {self.top1_agreement:.2%}")
        if len(self.outputs) == 1 and self.outputs[0].passed:
            return head + ")"
        return head + "\n" + "\n".join(f"  {o}" for o in self.outputs) + ")"


def _as_inputs(images: Any, specs: Mapping[str, Any], meta: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """The feeds for the model's inputs: a dict by name, or one array for a one-input model (uint8 images are
    normalised as ``meta`` records). Shapes are checked against the ONNX file; NaN/Inf inputs are refused."""
    from trtlab.data import to_numpy_input

    wanted = ", ".join(s.describe() for s in specs.values())
    if isinstance(images, Mapping):
        feeds = {k: np.asarray(v) for k, v in images.items()}
    elif len(specs) == 1:
        feeds = {next(iter(specs)): np.asarray(images)}
    else:
        raise InputMismatch(f"parity: one array for a model with inputs {wanted} | pass a dict {{name: array}}")
    for name, arr in list(feeds.items()):
        spec = specs.get(name)
        if spec is not None and arr.dtype == np.uint8 and np.dtype(spec.dtype) != np.uint8:
            arr = feeds[name] = to_numpy_input(arr, meta)
        problem = spec.problem_with(arr) if spec is not None else None
        if problem:
            raise InputMismatch(f"parity: {problem} | expected uint8 N×H×W×C images (dataset.images) or the "
                                f"model's inputs as it takes them: {wanted}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise InputMismatch(f"parity: input '{name}' holds {int((~np.isfinite(arr)).sum())} NaN/Inf values | "
                                "expected finite inputs (a NaN in makes NaN out and hides every difference) | "
                                "check the preprocessing")
    unknown = set(feeds) - set(specs)
    if unknown or set(specs) - set(feeds):
        raise InputMismatch(f"parity: got inputs {sorted(feeds)}, the ONNX file takes {wanted}")
    return feeds


def _model_place(model) -> tuple[bool, Any]:
    tensor = next(iter(model.parameters()), None)
    tensor = tensor if tensor is not None else next(iter(model.buffers()), None)
    return model.training, None if tensor is None else tensor.device


def parity(model, onnx_model: str | Path | bytes, images: Any, *, meta: Mapping[str, Any] | None = None,
           atol: float | None = None, batch_size: int = 250, rtol: float | None = None,
           precision: str | None = None) -> Parity:
    """Run PyTorch (CPU) and ONNX Runtime (CPU) on the same batches; compare every output and the top-1 class.

    ``images``: uint8 N×H×W×C images (normalised as ``meta`` records), the model's float inputs, or a dict
    ``{input name: array}`` for a model with several inputs. Names and shapes come from the ONNX file. Tolerances
    default to the file's precision (``PARITY_TOLERANCES``: fp32, fp16 or int8, detected from the ONNX); an output
    holding NaN/Inf fails and is reported. Top-1 agreement is measured on the first output. The model is returned
    to its device and train/eval mode afterwards.
    """
    from trtlab.engine import detect_precision
    from trtlab._onnx import load_path
    from trtlab.runtime import OnnxRuntimeRunner, TorchRunner

    source = onnx_model if isinstance(onnx_model, (bytes, bytearray)) else str(load_path(onnx_model))
    precision = precision or detect_precision(source)
    if precision not in PARITY_TOLERANCES:
        raise InvalidArgument(f"parity: precision {precision!r} unknown | expected one of {sorted(PARITY_TOLERANCES)}")
    d_atol, d_rtol = PARITY_TOLERANCES[precision]
    atol = d_atol if atol is None else float(atol)
    rtol = d_rtol if rtol is None else float(rtol)
    was_training, device = _model_place(model)
    with OnnxRuntimeRunner(source) as ort_runner:
        specs = ort_runner.inputs()
        feeds = _as_inputs(images, specs, meta)
        names = list(ort_runner.outputs())
        n = len(next(iter(feeds.values())))
        torch_runner = TorchRunner(model, device="cpu", input_specs=list(specs.values()), output_names=names)
        try:
            worst = {k: [0.0, 0.0] for k in names}  # max |Δ|, max |ref| over the finite values
            nonfinite = {k: [0, 0] for k in names}  # NaN/Inf count in ONNX Runtime's, in PyTorch's
            agree = 0
            for start in range(0, n, batch_size):
                feed = {k: v[start:start + batch_size] for k, v in feeds.items()}
                got, ref = ort_runner.infer(feed), torch_runner.infer(feed)
                for k in names:
                    g, r = np.asarray(got[k], np.float64), np.asarray(ref[k], np.float64)
                    if g.shape != r.shape:
                        raise InputMismatch(f"parity: output '{k}' has shape {g.shape} in ONNX Runtime but "
                                            f"{r.shape} in PyTorch | expected the model the file was exported from | "
                                            "export it again from this model")
                    bad_g, bad_r = ~np.isfinite(g), ~np.isfinite(r)
                    w = worst[k]
                    nonfinite[k][0] += int(bad_g.sum())
                    nonfinite[k][1] += int(bad_r.sum())
                    ok = ~(bad_g | bad_r)
                    if ok.any():
                        w[0] = max(w[0], float(np.abs(g - r)[ok].max()))
                        w[1] = max(w[1], float(np.abs(r[ok]).max()))
                first_g, first_r = got[names[0]], ref[names[0]]
                if first_r.ndim == 2:  # N×classes: the predicted class per row
                    agree += int((first_g.argmax(1) == first_r.argmax(1)).sum())
        finally:
            model.train(was_training)
            if device is not None:
                model.to(device)
    outputs = [OutputParity(k, w[0], w[1], atol + rtol * w[1], *nonfinite[k]) for k, w in worst.items()]
    max_abs = max(o.max_abs for o in outputs)
    max_rel = max(o.max_rel for o in outputs)
    top1 = agree / max(n, 1) if len(ort_runner.outputs()[names[0]].shape) == 2 else float("nan")
    return Parity(n, max_abs, max_rel, top1, atol, backend=ort_runner.name, rtol=rtol,
                  precision=precision, outputs=outputs)
