"""The errors trtlab raises. Every message says what was wrong, what was received, what was expected and
what to do next, so a learner can act on it without reading trtlab's source.

    TrtlabError
     ├── InputMismatch (ValueError)          wrong tensor name, shape or dtype handed to a runner or checker
     ├── InvalidArgument (ValueError)        an option a call does not know (a misspelt name, a batch of 0)
     ├── ArtifactMissing (FileNotFoundError) a dataset, checkpoint, ONNX file or engine that is not there (yet)
     ├── CheckpointMismatch (ValueError)     a checkpoint of another architecture, or weights that do not fit it
     ├── ExportError                         torch → ONNX export or ONNX validation failed
     ├── BuildError                          the TensorRT-family parser or builder rejected the network
     │    └── KernelCompileError                   NVRTC rejected a CUDA kernel (each error with its line)
     ├── EngineMismatch                      a plan built by another TensorRT / for another GPU, or tampered with
     │    └── PlanNotServable                      no Triton container in the course's table runs this plan
     ├── ExecutionFailed (RuntimeError)      the runtime refused a tensor address, an execution or a graph capture
     ├── PipelineError (RuntimeError)        Lab 04's frame pipeline: the engine refused to run inside it
     ├── ToolFailed (RuntimeError)           a command-line tool (polygraphy) failed or ran past its time limit
     ├── UnsupportedFeature                  needs a newer TensorRT, a GPU, or a package that is not installed
     ├── TritonError                         the Triton server refused a request, a model or a configuration
     │    ├── ServerUnavailable (ConnectionError)  no server answers there (not started, crashed, another port)
     │    ├── ServerTimeout (TimeoutError)         no answer within the call's timeout (frozen or overloaded)
     │    ├── PortInUse (OSError)                  a port the server needs is taken by another program
     │    └── RequestMismatch (InputMismatch)      feeds that do not fit the model's config.pbtxt, not sent
     ├── CheckFailed (AssertionError)        an exercise check failed while checks are strict (CI)
     ├── NotebookUnreadable (ValueError)     a solution or lab notebook that is not nbformat 4 JSON
     ├── SolutionMarkerError (ValueError)    a line that looks like a solution marker but is not one
     ├── SolutionLeak                        a generated lab would still hold solution text (nothing written)
     └── LabEdited (FileExistsError)         a lab someone changed; build-labs does not overwrite it

Inside ``tl.check`` only, checkers signal a verdict with ``Mismatch`` (the answer is wrong, and how) and ``NotDone``
(the placeholder is still there); the learner sees the verdict, never these exceptions.
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
    "InvalidArgument",
    "KernelCompileError",
    "LabEdited",
    "NotebookUnreadable",
    "PipelineError",
    "PlanNotServable",
    "PortInUse",
    "RequestMismatch",
    "ServerTimeout",
    "ServerUnavailable",
    "SolutionLeak",
    "SolutionMarkerError",
    "ToolFailed",
    "TritonError",
    "TrtlabError",
    "UnsupportedFeature",
]


class TrtlabError(Exception):
    """Base class of every error trtlab raises on purpose."""


class InputMismatch(TrtlabError, ValueError):
    """A tensor handed to a runner or checker has the wrong name, shape or dtype."""


class InvalidArgument(TrtlabError, ValueError):
    """An argument outside what the call accepts: a misspelt option, a profile naming no input, a batch of 0."""


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


class ToolFailed(TrtlabError, RuntimeError):
    """A command-line tool the course runs (``polygraphy ...``) exited with an error or ran past its time limit; the
    message names the command and ends with its last output lines."""


class UnsupportedFeature(TrtlabError):
    """The feature needs something this machine lacks (a GPU, a newer TensorRT, an optional package)."""


class TritonError(TrtlabError):
    """Triton refused something (a request, a model, a configuration); the message carries the server's reason."""


class ServerUnavailable(TritonError, ConnectionError):
    """No Triton server answers at the address (not started, crashed, or another port)."""


class ServerTimeout(TritonError, TimeoutError):
    """The server took longer than the call's timeout (stopped, frozen or overloaded); the call gave up."""


class PortInUse(TritonError, OSError):
    """A port the server was asked to bind is taken; the message names the process holding it when it can."""


class RequestMismatch(TritonError, InputMismatch):
    """Feeds that do not fit the model's ``config.pbtxt`` (name, dtype, shape, batch size), refused before sending."""


class CheckFailed(TrtlabError, AssertionError):
    """An exercise check failed while strict checking is on (TRTLAB_STRICT_CHECKS=1, as in CI)."""


class NotebookUnreadable(TrtlabError, ValueError):
    """A notebook file is not nbformat 4 JSON (a merge conflict, a truncated save); the message names the file."""


class SolutionMarkerError(TrtlabError, ValueError):
    """A solution notebook has a line that looks like a solution marker but is not one, or unpaired markers."""


class SolutionLeak(TrtlabError):
    """A generated lab still holds a line of a solution region; nothing was written."""


class LabEdited(TrtlabError, FileExistsError):
    """A lab in the target folder was changed since it was generated (someone's work); it is not overwritten."""


class KernelCompileError(BuildError):
    """NVRTC (or CuPy's compile) rejected a kernel source; the message lists each error with its line number."""


class PlanNotServable(EngineMismatch):
    """No Triton container in the table runs this plan (another TensorRT version, or a TensorRT-RTX plan)."""


class PipelineError(TrtlabError, RuntimeError):
    """The engine refused to run (``execute_async_v3`` returned False) inside Lab 04's frame pipeline."""
