"""Check a request's feeds against the model's ``config.pbtxt`` before anything is sent (Lab 06).

Triton 2.51 validates requests too, but it trusts the shape a request *claims* before checking it: one ~100-byte
HTTP request claiming ``[1000000000, 3, 32, 32]`` makes it allocate for that shape and abort (``std::bad_alloc``,
the whole server dies). The course's clients therefore refuse, here, anything the config does not allow; the
wording follows Triton's own messages so a learner meets the same words from either side.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from trtlab.errors import RequestMismatch
from trtlab.i18n import _

__all__ = ["check_feeds"]


def _fmt(dims: Any) -> str:
    return "[" + ",".join(str(int(d)) for d in dims) + "]"


def check_feeds(config: Mapping[str, Any], model: str, feeds: Mapping[str, Any]) -> None:
    """Raise :class:`RequestMismatch` unless every feed fits ``config`` (a ModelConfig as a dict, proto field names).

    Names, dtypes, dims (``-1`` = any size) and the batch size (``1..max_batch_size``) are checked on the array's
    metadata only: a huge broadcast view is refused without being copied.
    """
    from tritonclient.utils import np_to_triton_dtype, triton_to_np_dtype

    def refuse(reason: str) -> RequestMismatch:
        return RequestMismatch(_("request to model '{model}' refused before sending: {reason}").format(
            model=model, reason=reason))

    inputs = {t["name"]: t for t in config.get("input", [])}
    max_batch = int(config.get("max_batch_size", 0))
    for name in feeds:
        if name not in inputs:
            raise refuse(_("unexpected inference input '{name}' (its inputs are {inputs}); rename the feed").format(
                name=name, inputs=sorted(inputs)))
    missing = sorted(n for n, t in inputs.items() if n not in feeds and not t.get("optional"))
    if missing:
        raise refuse(_("missing inputs {missing} (it expects {inputs}); add them to the feeds").format(
            missing=missing, inputs=sorted(inputs)))
    for name, value in feeds.items():
        spec, array = inputs[name], np.asarray(value)  # no copy for arrays and views
        got = np_to_triton_dtype(array.dtype)
        want = str(spec.get("data_type", "TYPE_INVALID")).removeprefix("TYPE_").replace("STRING", "BYTES")
        if got != want:
            cast = triton_to_np_dtype(want)
            raise refuse((_("input '{name}' data-type is '{got}', but model '{model}' expects '{want}'; convert it "
                            "first (x.astype(np.{dtype}))") if cast is not None else
                          _("input '{name}' data-type is '{got}', but model '{model}' expects '{want}'; convert it "
                            "first")).format(name=name, got=got, model=model, want=want,
                                             dtype=np.dtype(cast).name if cast is not None else None))
        if "reshape" in spec:
            continue  # the config maps another shape onto the model's; Triton checks it
        full = ([-1] if max_batch > 0 else []) + [int(d) for d in spec.get("dims", [])]
        if array.ndim != len(full) or any(d != -1 and d != s for d, s in zip(full, array.shape)):
            batch = _("; the first dimension is the batch") if max_batch > 0 else ""
            raise refuse(_("unexpected shape for input '{name}', got {got}, expected {expected} (-1 = any "
                           "size{batch}); reshape the feed to the model's input").format(
                               name=name, got=_fmt(array.shape), expected=_fmt(full), batch=batch))
        if max_batch > 0 and not 1 <= array.shape[0] <= max_batch:
            raise refuse(_("input '{name}' has a batch of {batch}, but model '{model}' takes 1..{max_batch} "
                           "(batch-size must be <= {max_batch}); send it in batches of at most {max_batch}").format(
                               name=name, batch=array.shape[0], model=model, max_batch=max_batch))
