"""``config.pbtxt`` written by hand: parse it with Triton's own schema and name what is wrong (Lab 06).

Triton reads ``config.pbtxt`` as protobuf text (``ModelConfig``, the schema shipped in tritonclient), so a typo is a
parse error with a line and a column, and everything else (a batch dimension in ``dims``, a tensor name the model
does not have, an ensemble map that points nowhere) parses fine and fails later, at load time or on the first
request. :func:`parse_config` turns the first kind into a readable error; :func:`check_model_config` and
:func:`check_ensemble_config` find the second kind before the server does, against the models' real I/O.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab.errors import InputMismatch, TritonError, UnsupportedFeature
from trtlab.i18n import N_, _

__all__ = ["check_ensemble_config", "check_model_config", "config_schema", "dims_problem", "ensemble_problems",
           "model_problems", "parse_config", "triton_dtype"]

_UNKNOWN_FIELD = re.compile(r'Message type "([\w.]+)" has no field named "(\w+)"')
_UNKNOWN_ENUM = re.compile(r'Enum type "([\w.]+)" has no value named (\w+)')
#: where an ensemble tensor comes from when no step writes it (compared as it is, translated where shown)
_ENSEMBLE_INPUT = N_("the ensemble's input")


def config_schema() -> Any:
    """Triton's model-config protobuf module, as shipped (and maintained) in tritonclient."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as err:
        raise UnsupportedFeature(
            _("Triton's model-config schema needs tritonclient[grpc] with protobuf >= 5: {error}. "
              "Install: pip install 'tritonclient[grpc,http]' 'protobuf>=6.30,<7'").format(error=err)) from err
    return model_config_pb2


def triton_dtype(dtype: Any) -> str:
    """NumPy dtype → Triton config type name (``float32`` → ``TYPE_FP32``)."""
    from tritonclient.utils import np_to_triton_dtype

    name = np_to_triton_dtype(np.dtype(dtype))
    if name is None:
        raise InputMismatch(_("dtype {dtype} has no Triton equivalent; use float32/16, int8..64, uint8").format(
            dtype=np.dtype(dtype).name))
    return "TYPE_STRING" if name == "BYTES" else f"TYPE_{name}"


def _schema() -> Any:
    return config_schema()


def _suggestion(message: str) -> str:
    """A 'did you mean' for an unknown field or enum value, from the schema itself."""
    pool = _schema().DESCRIPTOR.pool
    field = _UNKNOWN_FIELD.search(message)
    if field:
        names = [f.name for f in pool.FindMessageTypeByName(field[1]).fields]
        close = difflib.get_close_matches(field[2], names, n=1, cutoff=0.6)
        where = field[1].rsplit(".", 1)[-1]
        return (_(" Did you mean `{name}`?").format(name=close[0]) if close else
                _(" Fields of {message}: {fields}").format(message=where, fields=", ".join(sorted(names))))
    enum = _UNKNOWN_ENUM.search(message)
    if enum:
        values = [v.name for v in pool.FindEnumTypeByName(enum[1]).values]
        close = difflib.get_close_matches(enum[2], values, n=1, cutoff=0.5)
        return ((_(" Did you mean {value}?").format(value=close[0]) if close else "")
                + _(" Allowed: {values}").format(values=", ".join(values)))
    return ""


def parse_config(text: str) -> Any:
    """Parse ``config.pbtxt`` text into Triton's ``ModelConfig``; a mistake raises :class:`TritonError` quoting
    protobuf's own message (line:column), the offending line, and the field or value it probably meant."""
    from google.protobuf import text_format

    if not isinstance(text, str):
        raise TritonError(_("config.pbtxt must be text (a str); got {type}").format(type=type(text).__name__))
    try:
        return text_format.Parse(text, _schema().ModelConfig())
    except text_format.ParseError as err:
        line_no, column = err.GetLine(), err.GetColumn()
        lines = text.split("\n")
        shown = ""
        if line_no and 0 < line_no <= len(lines):
            start = max(column - 60, 0)  # a long one-line config: show the 60 characters before the mistake
            line = lines[line_no - 1][start:start + 100]
            prefix = _("  line {line}: ").format(line=line_no) + ("…" if start else "")
            shown = f"\n{prefix}{line}\n{' ' * (_width(prefix) + max(column - 1 - start, 0))}^"
        reason = str(err).rstrip(".")  # protobuf's own words (line:column), quoted as they are
        raise TritonError(_("config.pbtxt does not parse: {reason}.{suggestion}{line}").format(
            reason=reason, suggestion=_suggestion(reason), line=shown)) from None


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (a Chinese character takes two), so the caret lands under the mistake."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def dims_problem(got: Sequence[int], want: Sequence[int]) -> str | None:
    """What is wrong with ``got`` dims given the model's ``want`` (its shape without the batch, -1 dynamic)."""
    got, want = list(got), list(want)
    if got == want:
        return None
    if len(got) == len(want) + 1 and got[1:] == want:
        return _("dims {got} include the batch dimension. With max_batch_size > 0 Triton adds it itself: write "
                 "dims {want}").format(got=got, want=want)
    if -1 in want and got == [d for d in want if d != -1]:
        return _("dims {got}: the dynamic dimensions were dropped. Drop only the first (batch) dimension and write "
                 "-1 for the other dynamic ones: dims {want}").format(got=got, want=want)
    if len(got) == len(want) and all(g == w or w == -1 for g, w in zip(got, want)):
        at = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
        return _("dims {got}: position {at} is dynamic and must be -1, not {size}: dims {want}").format(
            got=got, at=at, size=got[at], want=want)
    if sorted(got) == sorted(want):
        return _("dims {got}: the right sizes in another order (a layout mix-up, NHWC vs NCHW?); expected "
                 "{want}").format(got=got, want=want)
    return _("dims {got}, expected {want} (the model's shape without its first, batch, dimension; -1 = "
             "dynamic)").format(got=got, want=want)


def _want_dims(shape: Sequence[Any], batched: bool) -> list[int]:
    dims = [-1 if d in (None, -1) else int(d) for d in shape]
    return dims[1:] if batched else dims


def _tensor_problems(kind: str, got: Any, want: Mapping[str, Any], other: Mapping[str, Any], batched: bool,
                     mc: Any) -> list[str]:
    names = [t.name for t in got]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return [_("{kind} {names} listed more than once; one {kind} entry per tensor").format(kind=kind, names=twice)]
    if set(names) != set(want):
        if names and set(names) == set(other):
            swapped = (_("your inputs {names} are the model's outputs: input and output are swapped") if kind == "input"
                       else _("your outputs {names} are the model's inputs: input and output are swapped"))
            return [swapped.format(names=sorted(names))]
        unknown, missing = sorted(set(names) - set(want)), sorted(set(want) - set(names))
        close = {u: difflib.get_close_matches(u, missing, n=1, cutoff=0.3) or
                 (missing if len(unknown) == len(missing) == 1 else []) for u in unknown}
        named = "; ".join(_("'{name}' is not an {kind} of the model").format(name=u, kind=kind)
                          + (_(" (did you mean '{name}'?)").format(name=c[0]) if c else "")
                          for u, c in close.items())
        return [_("{kind} names {names}, the model's are {want}").format(kind=kind, names=sorted(names),
                                                                         want=sorted(want))
                + (f": {named}" if named else "")
                + _(". Names must match the model's tensors exactly (tl.serve.io_from_onnx shows them)")]
    problems = []
    for tensor in got:
        spec = want[tensor.name]
        want_type = mc.DataType.Value(_triton_dtype(spec.dtype))
        if tensor.data_type != want_type:
            problems.append(_("{kind} '{name}' is {got}, the model's is {want}").format(
                kind=kind, name=tensor.name, got=mc.DataType.Name(tensor.data_type), want=mc.DataType.Name(want_type)))
        problem = dims_problem(list(tensor.dims), _want_dims(spec.shape, batched))
        if problem:
            problems.append(f"{kind} '{tensor.name}': {problem}")
    return problems


def _triton_dtype(dtype: Any) -> str:
    return triton_dtype(dtype)


def model_problems(config: Any, *, inputs: Mapping[str, Any], outputs: Mapping[str, Any],
                   instance_kinds: Sequence[str] = ("KIND_CPU", "KIND_GPU", "KIND_AUTO", "KIND_MODEL")) -> list[str]:
    """Everything in a model's ``ModelConfig`` that disagrees with its real I/O (``{name: TensorSpec}``, the first
    dimension the batch) or that Triton would refuse; empty when the config is right."""
    mc = _schema()
    problems: list[str] = []
    batched = config.max_batch_size > 0
    if config.max_batch_size < 0:
        problems.append(_("max_batch_size {size}: it must be 0 (no batching) or a positive size").format(
            size=config.max_batch_size))
    problems += _tensor_problems("input", config.input, inputs, outputs, batched, mc)
    problems += _tensor_problems("output", config.output, outputs, inputs, batched, mc)
    if config.HasField("dynamic_batching"):
        if not batched:
            problems.append(_("dynamic_batching with max_batch_size 0: the batcher can only form batches when "
                              "max_batch_size > 0 (and then dims leave out the batch dimension)"))
        too_big = [s for s in config.dynamic_batching.preferred_batch_size if s > config.max_batch_size or s < 1]
        if batched and too_big:
            problems.append(_("preferred_batch_size {sizes} above max_batch_size {max_batch} (or below 1): Triton "
                              "refuses to load it. Preferred sizes are batches the batcher aims for, each ≤ "
                              "max_batch_size").format(sizes=too_big, max_batch=config.max_batch_size))
    for group in config.instance_group:
        kind = mc.ModelInstanceGroup.Kind.Name(group.kind)
        if kind not in instance_kinds:
            problems.append(_("instance_group kind {kind}: this model's instances can be {kinds}").format(
                kind=kind, kinds=", ".join(instance_kinds)))
        if group.count < 0:
            problems.append(_("instance_group count {count}: the number of copies must be ≥ 1").format(
                count=group.count))
    return problems


def check_model_config(text_or_config: Any, *, inputs: Mapping[str, Any], outputs: Mapping[str, Any],
                       instance_kinds: Sequence[str] = ("KIND_CPU", "KIND_GPU", "KIND_AUTO", "KIND_MODEL")) -> Any:
    """Parse (if text) and check a model's config against its real I/O; raises :class:`TritonError` listing what
    is wrong, returns the ``ModelConfig`` when nothing is."""
    config = parse_config(text_or_config) if isinstance(text_or_config, str) else text_or_config
    problems = model_problems(config, inputs=inputs, outputs=outputs, instance_kinds=instance_kinds)
    if problems:
        raise TritonError(_("config of '{name}': {problems}").format(name=config.name or _("(no name)"),
                                                                     problems="; ".join(problems)))
    return config


def _spec(tensor: Any, mc: Any) -> tuple[str, list[int]]:
    return mc.DataType.Name(tensor.data_type), list(tensor.dims)


def ensemble_problems(config: Any, models: Mapping[str, Any]) -> list[str]:
    """What is wrong with an ensemble's ``ModelConfig`` given the configs of the models it may call (``{name:
    ModelConfig}``): unknown models, map keys that are not the model's tensors, map values nothing produces, types
    or shapes that do not connect, steps wired in the wrong order. Empty when the data flows."""
    mc = _schema()
    if config.platform != "ensemble":
        return [_("platform '{platform}': an ensemble is `platform: \"ensemble\"`").format(
            platform=config.platform or _("(none)"))]
    if config.instance_group:
        return [_("an ensemble has no instance_group (its scheduler runs no model of its own); scale the models it "
                  "calls in their own configs")]
    steps = list(config.ensemble_scheduling.step)
    if not steps:
        return [_("no ensemble_scheduling steps: list one step per model, each with its input_map and output_map")]
    if config.name and config.name in {s.model_name for s in steps}:
        return [_("the ensemble is named '{name}', like a model it calls: give it a name of its own").format(
            name=config.name)]
    unknown = [s.model_name for s in steps if s.model_name not in models]
    if unknown:
        return [_("step model(s) {unknown} are not in the repository (models there: {models})").format(
            unknown=unknown, models=sorted(models))]
    over = sorted({s.model_name for s in steps if config.max_batch_size > models[s.model_name].max_batch_size})
    if over:
        return [_("max_batch_size {size} is above that of {models} ({limit}): Triton refuses an ensemble that could "
                  "send a batch its models cannot take").format(
                      size=config.max_batch_size, models=over, limit=min(models[m].max_batch_size for m in over))]
    # where each ensemble tensor comes from: the request, or a step's output
    source = {t.name: (_ENSEMBLE_INPUT, _spec(t, mc)) for t in config.input}
    for index, step in enumerate(steps):
        outs = {t.name: t for t in models[step.model_name].output}
        for key, value in step.output_map.items():
            if key in outs:
                source.setdefault(value, (_("'{model}' (its output '{name}')").format(model=step.model_name, name=key),
                                          _spec(outs[key], mc)))
    problems: list[str] = []
    for step in steps:
        model = models[step.model_name]
        ins, outs = {t.name: t for t in model.input}, {t.name: t for t in model.output}
        for map_name, keys, mapping in (("input_map", ins, step.input_map), ("output_map", outs, step.output_map)):
            for key, value in mapping.items():
                if key not in keys:
                    swapped = _(" (key and value swapped? the key is the model's tensor, the value the "
                                "ensemble's)") if value in keys else ""
                    its = (_("its inputs: {names}") if map_name == "input_map" else _("its outputs: {names}")).format(
                        names=sorted(keys))
                    problems.append(_("step '{model}': {map} key '{key}' is not a tensor of '{model}' "
                                      "({its}){swapped}").format(model=step.model_name, map=map_name, key=key,
                                                                 its=its, swapped=swapped))
        missing = sorted(set(ins) - set(step.input_map))
        if missing:
            problems.append(_("step '{model}': its input(s) {missing} are not in input_map; every input of a step "
                              "must be fed").format(model=step.model_name, missing=missing))
        for key, value in step.input_map.items():
            if key not in ins:
                continue
            if value not in source:
                problems.append(_("step '{model}' reads '{tensor}', which no step writes and the ensemble does not "
                                  "receive (tensors: {tensors})").format(model=step.model_name, tensor=value,
                                                                        tensors=sorted(source)))
                continue
            origin, (dtype, dims) = source[value]
            want = _spec(ins[key], mc)
            if (dtype, dims) != want:
                order = ""
                if origin == _ENSEMBLE_INPUT:
                    first = [s.model_name for s in steps if s.model_name != step.model_name and
                             any(_spec(t, mc) == (dtype, dims) for t in models[s.model_name].input)]
                    if first:
                        order = _(": steps in the wrong order? '{tensor}' must go to '{model}' first").format(
                            tensor=value, model=first[0])
                detail = f": {dims_problem(dims, want[1])}" if dtype == want[0] and not order else order
                problems.append(_("step '{model}' reads '{tensor}' ({dtype} {dims}, from {origin}) into its input "
                                  "'{key}' ({want_dtype} {want_dims}){detail}").format(
                                      model=step.model_name, tensor=value, dtype=dtype, dims=dims,
                                      origin=_(origin), key=key, want_dtype=want[0], want_dims=want[1],
                                      detail=detail))
    for tensor in config.output:
        if tensor.name not in source or source[tensor.name][0] == _ENSEMBLE_INPUT:
            problems.append(_("ensemble output '{name}' is written by no step's output_map (tensors written: "
                              "{written})").format(name=tensor.name,
                                                   written=sorted(v for s in steps for v in s.output_map.values())))
        elif source[tensor.name][1] != _spec(tensor, mc):
            origin, (dtype, dims) = source[tensor.name]
            problems.append(_("ensemble output '{name}' is declared {declared_dtype} {declared_dims}, but {origin} "
                              "is {dtype} {dims}").format(name=tensor.name, declared_dtype=_spec(tensor, mc)[0],
                                                          declared_dims=list(tensor.dims), origin=_(origin),
                                                          dtype=dtype, dims=dims))
    return problems


def check_ensemble_config(text_or_config: Any, *, models: Mapping[str, Any]) -> Any:
    """Parse (if text) and check an ensemble against the configs of the models it calls; raises
    :class:`TritonError` listing what is wrong, returns the ``ModelConfig`` when the data flows."""
    config = parse_config(text_or_config) if isinstance(text_or_config, str) else text_or_config
    problems = ensemble_problems(config, models)
    if problems:
        raise TritonError(_("ensemble '{name}': {problems}").format(name=config.name or _("(no name)"),
                                                                    problems="; ".join(problems)))
    return config
