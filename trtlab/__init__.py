"""trtlab: the helper package of the trtlab course (PyTorch → ONNX → TensorRT → Triton).

One module per pipeline stage; notebooks use ``import trtlab as tl`` and qualified calls (``tl.doctor.report()``).
Importing trtlab is cheap: stages import their heavy dependencies (torch, TensorRT, CuPy) when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from trtlab.i18n import set_language  # tl.set_language("zh_CN"): checks, hints and reports in Chinese

__version__ = "0.1.0"

#: The stage modules, in pipeline order; each is imported on first attribute access.
STAGES = ("env", "doctor", "data", "models", "train", "export", "precision", "engine", "device", "runtime",
          "bench", "kernels", "plugins", "serve", "triton_tensorrt", "check", "review", "course", "paths", "errors",
          "standin", "polygraphy_cli")

__all__ = sorted(["STAGES", "__version__", "hint", "seed", "set_language", *STAGES])


#: Internal modules reachable as ``tl._compat`` too (course code, not learner cells: those use the stages above).
_INTERNAL = ("_compat",)


def __getattr__(name: str) -> Any:
    if name in STAGES or name in _INTERNAL:
        return importlib.import_module(f"trtlab.{name}")
    raise AttributeError(f"module 'trtlab' has no attribute {name!r}")


def hint(key: str, level: int | None = None) -> None:
    """Print the next hint for exercise ``key`` (``tl.hint("lab00.tensor_core_precisions")``)."""
    from trtlab.check import hint as _hint

    _hint(key, level)


def seed(value: int = 0) -> None:
    """Seed Python, NumPy and (if imported) torch, so a re-run cell gives the same numbers."""
    import random
    import sys

    import numpy as np

    random.seed(value)
    np.random.seed(value)
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(value)
