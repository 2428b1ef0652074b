"""The ``GemPool`` node on the CPU: an ONNX Runtime custom op through onnxruntime-extensions (Lab 05, step 3).

onnxruntime-extensions runs Python functions as ONNX Runtime kernels: ``@onnx_op`` registers one for an op_type in
the ``ai.onnx.contrib`` domain, and ``SessionOptions.register_custom_ops_library(get_library_path())`` loads the
library that calls it. Slow (it crosses into Python for every node) but exact, and it needs no GPU: the parity
check of the exported model against PyTorch before any TensorRT is involved.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from trtlab.errors import UnsupportedFeature
from trtlab.i18n import _
from trtlab.plugins import DEFAULT_EPS, DEFAULT_P, PLUGIN_NAME, gem_pool_ref

__all__ = ["CANDIDATE_OP", "register_ort_op", "session", "session_options", "use_candidate"]

#: a second op, ``GemPoolCandidate``, runs whichever compute function :func:`use_candidate` set (Lab 05's checker
#: runs a learner's function through ONNX Runtime with it), while ``GemPool`` keeps the reference
CANDIDATE_OP = f"{PLUGIN_NAME}Candidate"
_candidate: dict[str, Callable[..., Any] | None] = {"fn": None}


def use_candidate(fn: Callable[..., Any] | None) -> None:
    """Make ``GemPoolCandidate`` nodes call ``fn(x, p=..., eps=...)`` (``None``: none set; such nodes then fail)."""
    _candidate["fn"] = fn


@functools.cache
def register_ort_op() -> str:
    """Register ``GemPool`` (the NumPy reference) and ``GemPoolCandidate`` with onnxruntime-extensions, together
    and once per process; return the path of the custom-op library to load into a session.

    Both at once, before any session: onnxruntime-extensions keeps its Python ops in one table, and an op added
    after a session loaded the library leaves that session's kernels pointing at freed memory — the next run of
    the earlier session crashes the process (a segfault, reproduced with onnxruntime-extensions 0.15.2)."""
    try:
        from onnxruntime_extensions import PyCustomOpDef, get_library_path, onnx_op
    except ImportError as err:
        raise UnsupportedFeature(_("the ONNX Runtime custom op needs onnxruntime-extensions, which does not import "
                                   "({err}); pip install onnxruntime-extensions").format(err=err)) from err

    @onnx_op(op_type=PLUGIN_NAME, inputs=[PyCustomOpDef.dt_float], outputs=[PyCustomOpDef.dt_float],
             attrs={"p": PyCustomOpDef.dt_float, "eps": PyCustomOpDef.dt_float})
    def gem_pool(x: np.ndarray, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> np.ndarray:
        return gem_pool_ref(x, p, eps)

    @onnx_op(op_type=CANDIDATE_OP, inputs=[PyCustomOpDef.dt_float], outputs=[PyCustomOpDef.dt_float],
             attrs={"p": PyCustomOpDef.dt_float, "eps": PyCustomOpDef.dt_float})
    def gem_pool_candidate(x: np.ndarray, p: float = DEFAULT_P, eps: float = DEFAULT_EPS) -> np.ndarray:
        fn = _candidate["fn"]
        if fn is None:
            raise RuntimeError(f"{CANDIDATE_OP}: no compute function set (trtlab.plugins.ort.use_candidate)")
        return fn(x, p=p, eps=eps)

    return get_library_path()


def session_options(base: Any = None) -> Any:
    """``onnxruntime.SessionOptions`` (a copy of ``base`` if given) that can run ``GemPool`` nodes; pass it to
    ``trtlab.runtime.OnnxRuntimeRunner(path, session_options=...)``."""
    import onnxruntime as ort

    options = base if base is not None else ort.SessionOptions()
    options.register_custom_ops_library(register_ort_op())
    return options


def session(model: Any, *, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Any:
    """An ``onnxruntime.InferenceSession`` for a model with ``GemPool`` nodes (path, bytes or ``ModelProto``)."""
    from trtlab.runtime import ort_session

    return ort_session(model, session_options=session_options(), providers=providers)
