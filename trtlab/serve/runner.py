"""A model on a Triton server as a course runner, so Triton joins the other backends in one comparison loop (Lab 06).

    with tl.serve.TritonRunner(server, "classifier", protocol="grpc") as triton:
        logits = triton.infer({"images": batch})["logits"]

Inputs and outputs come from the model's config *as the server reports it* (not from a local file), and every feed
is checked against that config before anything is sent (:func:`trtlab.serve.feeds.check_feeds`): a wrong name,
dtype, shape or batch raises :class:`~trtlab.errors.RequestMismatch`, a subclass of the
:class:`~trtlab.errors.InputMismatch` the other runners raise. One client is kept open for the runner's life, so
a benchmark times requests, not connection set-up.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from trtlab.errors import TritonError
from trtlab.i18n import _
from trtlab.runtime import Runner, TensorSpec
from trtlab.serve.clients import _address, _ask_config, _inputs, _module, _outputs, _translate, client
from trtlab.serve.feeds import check_feeds
from trtlab.serve.server import TritonServer, _protocol

__all__ = ["TritonRunner", "specs_from_config"]


def specs_from_config(config: Mapping[str, Any], group: str) -> dict[str, TensorSpec]:
    """``{name: TensorSpec}`` of a config's ``input`` or ``output`` list (a ModelConfig as a dict).

    With ``max_batch_size > 0`` Triton owns the batch dimension, which the config's ``dims`` leave out: it comes
    back here as a leading ``None``, as in the other runners' specs.
    """
    from tritonclient.utils import triton_to_np_dtype

    batched = int(config.get("max_batch_size", 0)) > 0
    specs = {}
    for tensor in config.get(group, []):
        dims = tuple(None if int(d) == -1 else int(d) for d in tensor.get("dims", []))
        triton = str(tensor.get("data_type", "TYPE_INVALID")).removeprefix("TYPE_").replace("STRING", "BYTES")
        dtype = triton_to_np_dtype(triton)
        specs[tensor["name"]] = TensorSpec(tensor["name"], ((None,) if batched else ()) + dims,
                                           np.dtype(dtype if dtype is not None else object))
    return specs


class TritonRunner(Runner):
    """One model on a Triton server, over HTTP or gRPC, with the :class:`~trtlab.runtime.Runner` interface.

    ``target``: a :class:`TritonServer` or an address (``"127.0.0.1:8001"`` for gRPC). The model must be loaded:
    its config is asked for at construction (a missing model or a dead server fails here, with the reason).
    ``name`` defaults to ``triton-<protocol>``; ``timeout_s`` bounds every call (:class:`ServerTimeout`).
    """

    def __init__(self, target: TritonServer | str, model: str, *, protocol: str = "http",
                 name: str | None = None, timeout_s: float = 30.0) -> None:
        self.protocol = _protocol(protocol)
        self.model = model
        self.address = _address(target, self.protocol)
        self.timeout_s = float(timeout_s)
        self.name = name or f"triton-{self.protocol}"
        self._module = _module(self.protocol)
        self._client: Any = None
        try:
            self._client = client(target, protocol=self.protocol, timeout_s=self.timeout_s)
            answer = _ask_config(self._client, model, self.protocol, self.timeout_s)
        except Exception as err:
            self.close()
            raise _translate(err, self.address, model, self.timeout_s) from err
        self.config: dict[str, Any] = answer.get("config", answer)  # gRPC wraps it in {"config": ...}
        self._inputs = specs_from_config(self.config, "input")
        self._outputs = specs_from_config(self.config, "output")
        kinds = {g.get("kind", "KIND_AUTO") for g in self.config.get("instance_group", [])}
        self.device = "cuda" if "KIND_GPU" in kinds else "cpu"  # where the server runs the model

    def inputs(self) -> dict[str, TensorSpec]:
        return dict(self._inputs)

    def outputs(self) -> dict[str, TensorSpec]:
        return dict(self._outputs)

    def validate(self, feeds: Mapping[str, Any]) -> None:
        """Refuse feeds that do not fit the server's config (:class:`RequestMismatch`), before anything is sent."""
        check_feeds(self.config, self.model, feeds)

    def _infer(self, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
        if self._client is None:
            raise TritonError(_("{name}: this runner of model '{model}' is closed; nothing was sent. Create a new "
                                "TritonRunner (or use it inside its `with` block)").format(
                                  name=self.name, model=self.model))
        names = list(self._outputs)
        extra = {"client_timeout": self.timeout_s} if self.protocol == "grpc" else {}
        try:
            result = self._client.infer(self.model, _inputs(self._module, feeds),
                                        outputs=_outputs(self._module, names), **extra)
        except Exception as err:
            raise _translate(err, self.address, self.model, self.timeout_s) from err
        return {n: result.as_numpy(n) for n in names}

    def close(self) -> None:
        if self._client is not None:
            client_, self._client = self._client, None
            client_.close()

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self._inputs.values())
        outs = ", ".join(s.describe() for s in self._outputs.values())
        state = "" if self._client is not None else " (closed)"
        return f"<TritonRunner {self.name}: model '{self.model}' at {self.address}{state}: {ins} -> {outs}>"
