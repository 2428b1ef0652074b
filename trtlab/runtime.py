"""One small runner interface for every backend, so a comparison or a benchmark is one loop over runners.

    with tl.runtime.OnnxRuntimeRunner("model.onnx") as ort_runner:
        logits = ort_runner.infer({"images": batch})["logits"]

A runner validates what it is fed (names, ranks, fixed dimensions, dtypes) and raises
:class:`~trtlab.errors.InputMismatch` saying what it got and what it expected, instead of the backend's own
opaque error. Backends implement only ``_infer``; the base class does the checking.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab.errors import InputMismatch

__all__ = ["OnnxRuntimeRunner", "Runner", "TensorSpec", "TorchRunner"]


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor: ``shape`` uses None for a dynamic dimension (e.g. the batch)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype

    def describe(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        return f"'{self.name}' ({dims}) {np.dtype(self.dtype).name}"

    def problem_with(self, array: Any) -> str | None:
        """Why ``array`` does not fit this spec, or None if it does."""
        shape, dtype = tuple(array.shape), np.dtype(str(array.dtype).replace("torch.", ""))
        if len(shape) != len(self.shape) or any(e is not None and e != g for e, g in zip(self.shape, shape)):
            return f"input '{self.name}': got shape {shape}, expected {self.describe()}"
        if dtype != np.dtype(self.dtype):
            return (f"input '{self.name}': got dtype {dtype.name}, expected {np.dtype(self.dtype).name} "
                    f"(convert with .astype(np.{np.dtype(self.dtype).name}))")
        return None


class Runner(abc.ABC):
    """Base of every backend runner. Subclasses set ``name``/``device`` and implement the ``_`` methods."""

    name: str = "runner"
    device: str = "cpu"

    @abc.abstractmethod
    def inputs(self) -> dict[str, TensorSpec]:
        """Input tensors by name."""

    @abc.abstractmethod
    def outputs(self) -> dict[str, TensorSpec]:
        """Output tensors by name."""

    @abc.abstractmethod
    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        """Run the backend on already validated feeds."""

    def infer(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Run one batch; ``feeds`` maps input names to arrays. Returns NumPy arrays by output name."""
        self.validate(feeds)
        return self._infer(dict(feeds))

    def validate(self, feeds: Mapping[str, Any]) -> None:
        expected = self.inputs()
        missing, unknown = set(expected) - set(feeds), set(feeds) - set(expected)
        if missing or unknown:
            raise InputMismatch(
                f"{self.name}: got inputs {sorted(feeds)}, expected {sorted(expected)}"
                + (f"; missing {sorted(missing)}" if missing else "") + (f"; unknown {sorted(unknown)}" if unknown
                                                                           else ""))
        for name, spec in expected.items():
            problem = spec.problem_with(feeds[name])
            if problem:
                raise InputMismatch(f"{self.name}: {problem}")

    def sample_feeds(self, batch: int = 1, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs that fit the runner (dynamic dims set to ``batch``): for warm-up and smoke tests."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for name, spec in self.inputs().items():
            shape = tuple(batch if d is None else d for d in spec.shape)
            feeds[name] = rng.standard_normal(shape).astype(spec.dtype)
        return feeds

    def warmup(self, feeds: Mapping[str, Any] | None = None, n: int = 10) -> None:
        """Run ``n`` times so lazy initialisation (allocations, kernel selection, JIT) stays out of timings."""
        feeds = feeds if feeds is not None else self.sample_feeds()
        for _ in range(n):
            self.infer(feeds)

    def close(self) -> None:
        """Release the backend's resources (idempotent)."""

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs().values())
        outs = ", ".join(s.describe() for s in self.outputs().values())
        return f"<{type(self).__name__} {self.name} on {self.device}: {ins} -> {outs}>"


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}


def _ort_spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return TensorSpec(node.name, shape, np.dtype(_ORT_TYPES.get(node.type, np.float32)))


class OnnxRuntimeRunner(Runner):
    """ONNX Runtime (CPU by default; CUDA or TensorRT execution providers where installed)."""

    def __init__(self, model: str | Path | bytes, *, providers: Sequence[str] | None = None,
                 session_options: Any = None, disabled_optimizers: Sequence[str] = ()) -> None:
        import onnxruntime as ort

        providers = list(providers or ["CPUExecutionProvider"])
        source = model if isinstance(model, bytes) else str(model)
        kwargs = {"disabled_optimizers": list(disabled_optimizers)} if disabled_optimizers else {}
        self.session = ort.InferenceSession(source, sess_options=session_options, providers=providers, **kwargs)
        used = self.session.get_providers()[0]
        self.name = f"onnxruntime-{used.replace('ExecutionProvider', '').lower()}"
        self.device = "cpu" if used == "CPUExecutionProvider" else "cuda"
        self._inputs = {n.name: _ort_spec(n) for n in self.session.get_inputs()}
        self._outputs = {n.name: _ort_spec(n) for n in self.session.get_outputs()}

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in feeds.items()}
        values = self.session.run(list(self._outputs), arrays)
        return dict(zip(self._outputs, values))


class TorchRunner(Runner):
    """A PyTorch module in eval mode under ``torch.inference_mode`` (the eager baseline of every comparison)."""

    def __init__(self, module: Any, *, input_specs: Sequence[TensorSpec] | None = None,
                 output_names: Sequence[str] = ("logits",), device: str | None = None,
                 dtype: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.module = module.eval().to(self.device)
        self.dtype = dtype
        if dtype is not None:
            self.module = self.module.to(dtype)
        self.name = f"pytorch-{self.device}" + (f"-{str(dtype).replace('torch.', '')}" if dtype is not None else "")
        self._inputs = {s.name: s for s in (input_specs or [TensorSpec("images", (None, 3, 32, 32), np.dtype(np.float32))])}
        self._output_names = tuple(output_names)

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return {n: TensorSpec(n, (None,), np.dtype(np.float32)) for n in self._output_names}

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        torch = self.torch
        args = []
        for name in self._inputs:
            value = feeds[name]
            tensor = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(value))
            tensor = tensor.to(self.device, non_blocking=True)
            args.append(tensor.to(self.dtype) if self.dtype is not None else tensor)
        with torch.inference_mode():
            out = self.module(*args)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return {name: t.float().cpu().numpy() for name, t in zip(self._output_names, outs)}
