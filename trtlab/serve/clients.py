"""Clients of a Triton server: one request over HTTP or gRPC, synchronous or ``await``-able (Lab 06).

Feeds are checked against the model's config before anything is sent (:mod:`trtlab.serve.feeds`), timeouts are
honoured, and ``tritonclient``'s exceptions become course errors in plain words (:class:`TritonError`,
:class:`ServerUnavailable`, :class:`ServerTimeout`, :class:`RequestMismatch`).
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab.errors import ServerTimeout, ServerUnavailable, TritonError
from trtlab.i18n import _
from trtlab.serve.feeds import check_feeds
from trtlab.serve.server import TritonServer, _protocol, _reason

__all__ = ["as_triton_error", "client", "infer", "infer_async"]


def _address(target: TritonServer | str, protocol: str) -> str:
    return target.url(protocol) if isinstance(target, TritonServer) else str(target)


def as_triton_error(err: BaseException, target: TritonServer | str, model: str, protocol: str = "http") -> TritonError:
    """The course's :class:`~trtlab.errors.TritonError` for an exception a raw tritonclient call raised (what the
    course's own clients raise), for code that talks to a server with tritonclient directly."""
    return _translate(err, _address(target, protocol), model)


def _translate(err: BaseException, address: str, model: str, timeout_s: float | None = None) -> TritonError:
    if isinstance(err, TritonError):
        return err
    text = _reason(err)
    if isinstance(err, TimeoutError) or any(s in text.lower() for s in ("deadline exceeded", "timed out")):
        return ServerTimeout(_("Triton at {address} did not answer within {timeout_s} s (model '{model}'; "
                               "{text}): the server is frozen, overloaded or stopped. Check server.ready() and "
                               "server.log_tail(); raise timeout_s only if the model is known to be that slow").format(
                                 address=address, timeout_s=timeout_s, model=model, text=text))
    dead = isinstance(err, (ConnectionError, OSError)) or any(
        s in text.lower() for s in ("connection refused", "failed to connect", "unavailable", "connect call failed",
                                    "cannot connect"))
    if dead:
        return ServerUnavailable(_("no Triton server answers at {address} ({text}); start it "
                                   "(tl.serve.TritonServer) or check the address and port").format(
                                     address=address, text=text))
    return TritonError(_("Triton rejected the request to model '{model}': {text}").format(model=model, text=text))


def client(target: TritonServer | str, *, protocol: str = "http", timeout_s: float = 30.0) -> Any:
    """A ``tritonclient`` InferenceServerClient for HTTP or gRPC."""
    if _protocol(protocol) == "http":
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(_address(target, "http"), connection_timeout=timeout_s,
                                                network_timeout=timeout_s)
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(_address(target, "grpc"))


def _module(protocol: str, aio: bool = False) -> Any:
    if _protocol(protocol) == "http":
        import tritonclient.http as m
        import tritonclient.http.aio as a
    else:
        import tritonclient.grpc as m
        import tritonclient.grpc.aio as a
    return a if aio else m


def _inputs(module: Any, feeds: Mapping[str, Any]) -> list[Any]:
    from tritonclient.utils import np_to_triton_dtype

    tensors = []
    for name, value in feeds.items():
        array = np.ascontiguousarray(value)
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        if module.__name__.endswith("http"):
            tensor.set_data_from_numpy(array, binary_data=True)
        else:
            tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def _outputs(module: Any, names: Sequence[str]) -> list[Any]:
    if module.__name__.endswith("http"):
        return [module.InferRequestedOutput(n, binary_data=True) for n in names]
    return [module.InferRequestedOutput(n) for n in names]


def _local_config(target: TritonServer | str, model: str) -> dict[str, Any] | None:
    """The model's config from our server's repository (no request), or None (then the server is asked)."""
    if not isinstance(target, TritonServer) or not (target.repository.root / model / "config.pbtxt").exists():
        return None
    from google.protobuf import json_format

    return json_format.MessageToDict(target.repository.config(model), preserving_proto_field_name=True)


def _ask_config(c: Any, model: str, protocol: str, timeout_s: float) -> Any:
    """The server's config of ``model`` (a dict, or a coroutine of one for the aio clients)."""
    if protocol == "grpc":
        return c.get_model_config(model, as_json=True, client_timeout=timeout_s)
    return c.get_model_config(model)


def infer(target: TritonServer | str, model: str, feeds: Mapping[str, Any], *, outputs: Sequence[str] = ("logits",),
          protocol: str = "http", timeout_s: float = 30.0, validate: bool = True) -> dict[str, np.ndarray]:
    """One synchronous request: ``feeds`` maps input names to arrays (with the batch dimension).

    ``validate`` checks the feeds against the model's config before sending (:class:`RequestMismatch`); with
    ``validate=False`` the server judges them (the pinned Triton aborts on some requests: see trtlab.serve.feeds).
    ``timeout_s`` bounds the call against a frozen server (:class:`ServerTimeout`).
    """
    module = _module(protocol)
    address = _address(target, protocol)
    try:
        c = client(target, protocol=protocol, timeout_s=timeout_s)
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    try:
        if validate:
            config = _local_config(target, model) or _ask_config(c, model, protocol, timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        extra = {"client_timeout": timeout_s} if protocol == "grpc" else {}
        result = c.infer(model, _inputs(module, feeds), outputs=_outputs(module, outputs), **extra)
        return {n: result.as_numpy(n) for n in outputs}
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    finally:
        c.close()


async def infer_async(target: TritonServer | str, model: str, feeds: Mapping[str, Any], *,
                      outputs: Sequence[str] = ("logits",), protocol: str = "http", timeout_s: float = 30.0,
                      validate: bool = True) -> dict[str, np.ndarray]:
    """One asynchronous request (``await`` it; gather many to keep the server busy). Arguments as :func:`infer`."""
    module = _module(protocol, aio=True)
    address = _address(target, protocol)
    c = module.InferenceServerClient(address)
    try:
        if validate:
            config = _local_config(target, model) or await asyncio.wait_for(
                _ask_config(c, model, protocol, timeout_s), timeout_s)
            check_feeds(config.get("config", config), model, feeds)
        result = await asyncio.wait_for(
            c.infer(model, _inputs(_module(protocol), feeds), outputs=_outputs(_module(protocol), outputs)),
            timeout_s)
        return {n: result.as_numpy(n) for n in outputs}
    except Exception as err:
        raise _translate(err, address, model, timeout_s) from err
    finally:
        await c.close()
