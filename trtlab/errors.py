"""The errors trtlab raises. Every message says what was wrong, what was received, what was expected and
what to do next, so a learner can act on it without reading trtlab's source.

    TrtlabError
     ├── InputMismatch (ValueError)          wrong tensor name, shape or dtype handed to a runner or checker
     ├── ArtifactMissing (FileNotFoundError) a dataset, checkpoint, ONNX file or engine that is not there (yet)
     ├── CheckpointMismatch (ValueError)     a checkpoint of another architecture, or weights that do not fit it
     ├── ExportError                         torch → ONNX export or ONNX validation failed
     ├── BuildError                          the TensorRT-family parser or builder rejected the network
     ├── EngineMismatch                      a plan built by another TensorRT / for another GPU, or tampered with
     ├── ExecutionFailed (RuntimeError)      the runtime refused a tensor address, an execution or a graph capture
     ├── UnsupportedFeature                  needs a newer TensorRT, a GPU, or a package that is not installed
     └── CheckFailed (AssertionError)        an exercise check failed while checks are strict (CI)
"""

from __future__ import annotations

__all__ = [
    "ArtifactMissing",
    "BuildError",
    "CheckFailed",
    "CheckpointMismatch",
    "EngineMismatch",
    "ExecutionFailed",
    "ExportError",
    "InputMismatch",
    "TrtlabError",
    "UnsupportedFeature",
]


class TrtlabError(Exception):
    """Base class of every error trtlab raises on purpose."""


class InputMismatch(TrtlabError, ValueError):
    """A tensor handed to a runner or checker has the wrong name, shape or dtype."""


class ArtifactMissing(TrtlabError, FileNotFoundError):
    """A file the course needs is not there; the message names the lab or call that makes it."""


class CheckpointMismatch(TrtlabError, ValueError):
    """A checkpoint belongs to another architecture, or its weights do not match its metadata."""


class ExportError(TrtlabError):
    """Export to ONNX or validation of an ONNX file failed."""


class BuildError(TrtlabError):
    """The TensorRT-family ONNX parser or builder failed; the message lists each parser error on its own line."""


class EngineMismatch(TrtlabError):
    """A serialized engine does not belong to this TensorRT version, this GPU, or its recorded hash."""


class ExecutionFailed(TrtlabError, RuntimeError):
    """The TensorRT-family runtime returned False: a tensor address it refused, or an execution it did not enqueue."""


class UnsupportedFeature(TrtlabError):
    """The feature needs something this machine lacks (a GPU, a newer TensorRT, an optional package)."""


class CheckFailed(TrtlabError, AssertionError):
    """An exercise check failed while strict checking is on (TRTLAB_STRICT_CHECKS=1, as in CI)."""
