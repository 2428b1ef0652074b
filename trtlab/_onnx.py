"""Reading an ONNX file, with errors that say what is wrong with it: the one loader every stage uses.

It sits below :mod:`trtlab.export` (Lab 02, which re-exports it as ``tl.export.load_onnx``), :mod:`trtlab.engine`
(Lab 03) and the runners, so none of them has to import another stage to read a file.
"""

from __future__ import annotations

from pathlib import Path

from trtlab.errors import ArtifactMissing, ExportError

__all__ = ["load_onnx", "load_path"]


def load_onnx(source: str | Path | bytes, *, load_external_data: bool = True):
    """``onnx.ModelProto`` from a path or bytes; a missing, truncated or corrupt file raises a clear error."""
    import onnx
    from google.protobuf.message import DecodeError

    if isinstance(source, (bytes, bytearray)):
        data, where = bytes(source), "the bytes given"
    else:
        p = Path(source)
        if not p.exists():
            raise ArtifactMissing(f"ONNX file {p} does not exist; export it first (Lab 02: tl.export.export_onnx, "
                                  "or tl.export.ensure_course_onnx())")
        data, where = p.read_bytes(), str(p)
    if not data:
        raise ExportError(f"{where} is empty (0 bytes): the export was interrupted; export again")
    try:
        proto = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ExportError(f"{where} is not a valid ONNX file ({len(data)} bytes; protobuf: {err}). It is truncated "
                          "(an interrupted copy or export) or not ONNX at all: export it again") from err
    if not proto.graph.node and not proto.graph.output:
        raise ExportError(f"{where} holds no graph ({len(data)} bytes decode to a model with no nodes and no "
                          "outputs) | expected an ONNX model with at least one output | the file is truncated, not "
                          "ONNX, or was saved from an empty graph: export it again")
    if not proto.graph.output:
        raise ExportError(f"{where} has {len(proto.graph.node)} node(s) but no graph output, so nothing can be "
                          "computed | expected at least one output | export again with output_names=[...]")
    if load_external_data and not isinstance(source, (bytes, bytearray)):
        from onnx.external_data_helper import load_external_data_for_model, uses_external_data

        if any(uses_external_data(t) for t in proto.graph.initializer):
            try:
                load_external_data_for_model(proto, str(Path(source).parent))
            except (OSError, ValueError) as err:
                raise ArtifactMissing(f"{source} keeps its weights in a separate .data file that is missing ({err}); "
                                      "export again with external_data=False to get one self-contained file") from err
    return proto


def load_path(source: str | Path) -> Path:
    """The path, after checking it is a loadable ONNX file (clear error otherwise)."""
    load_onnx(source, load_external_data=False)
    return Path(source)
