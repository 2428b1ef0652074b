"""Where the course keeps things: the checkout, the data folder, cached datasets and lab artifacts.

Set TRTLAB_DATA to keep datasets and artifacts elsewhere (a shared workshop disk, a bigger volume).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["artifacts", "cache", "course_root", "data_dir"]


def course_root() -> Path:
    """The course checkout (the folder holding labs/, solutions/ and data/)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "solutions").is_dir():
        return here
    return Path.cwd()


def data_dir() -> Path:
    """The data folder: TRTLAB_DATA if set, else data/ in the checkout."""
    return Path(os.environ.get("TRTLAB_DATA") or course_root() / "data")


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache() -> Path:
    """Generated or downloaded datasets, keyed by content hash (safe to delete: they are rebuilt)."""
    return _made(data_dir() / "cache")


def artifacts() -> Path:
    """What the labs produce for each other: checkpoints, ONNX files, engines, model repositories."""
    return _made(data_dir() / "artifacts")
