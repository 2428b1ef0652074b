"""Lab 06 exercises: write ``config.pbtxt`` text by hand (a model with dynamic batching and instance groups, an
ensemble), send an HTTP inference request, and read the average batch size out of Triton's Prometheus metrics.

The config checks parse the text with Triton's own schema and name the mistake against the models' real I/O
(the same front door as the notebook: ``tl.serve.check_model_config`` / ``check_ensemble_config``), then load it into
a private bundled Triton server and send a request; that server is stopped whatever happens.

Each check calls the learner's function on several inputs (other names, dtypes, batch sizes, models whose names
are prefixes of one another) and, where it can, names the mistake it detected from what the answer computed."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from trtlab.check import Mismatch, NotDone, assert_close, exercise
from trtlab.i18n import N_, _

# ---------------------------------------------------------------- 1. config.pbtxt written by hand


__all__ = ["batch_metrics", "classifier_config", "ensemble_config", "http_request"]

@dataclass(frozen=True)
class _Task:
    """What Exercise 1 asks for (the notebook states it in words): the Python-backend classifier of the CPU server."""

    name: str = "classifier_tuned"
    max_batch_size: int = 32
    preferred: tuple[int, ...] = (8, 16)
    delay_us: int = 500
    instances: int = 2


CLASSIFIER_TASK = _Task()
# Served logits against ONNX Runtime in this process: the same ONNX file, but each served instance runs ONNX
# Runtime with one thread and the batcher may merge requests, so sums may run in another order; Lab 06 allows
# 1e-4 for the same comparison (cell c22), far below what a wrong model or a changed input moves.
_SERVED_TOL = 1e-4


def _text(answer: Any, what: str) -> str:
    """The learner's text: the answer itself, or what the learner's function returns (``what`` is translated)."""
    text = answer() if callable(answer) else answer
    if not isinstance(text, str):
        raise Mismatch(_("{what} must be the config.pbtxt text (a str between triple quotes); got {type}").format(
            what=what, type=type(text).__name__))
    if "NotImplementedError" in text:
        raise NotDone(_("the text still holds the `raise NotImplementedError` placeholder"))
    return text


def _parse(text: str) -> Any:
    from trtlab import serve

    try:
        return serve.parse_config(text)
    except serve.TritonError as err:
        raise Mismatch(str(err)) from None


def _copy_model(source: Path, target: Path) -> None:
    """A model folder, its large files hard-linked (a 45 MB ONNX file need not be copied)."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    shutil.copytree(source, target, copy_function=link)


def _served(repo: Any, load: list[str], feeds: dict[str, np.ndarray], *, chain: tuple[str, ...] = ()) -> list:
    """Start a private server on ``repo``, load ``load`` in order, send ``feeds`` to the last one, then to the
    ``chain`` models one after the other (each one's outputs feed the next). The server is always stopped."""
    from trtlab import serve

    server = serve.TritonServer(repo, load_timeout_s=60.0)
    try:
        server.start()
        for name in load:
            try:
                server.load(name)
            except serve.TritonError as err:
                log = [line for line in server.log_tail(40).splitlines() if line[:1] == "E"]
                tail = _("\nServer log: {line}").format(line=log[-1][:400]) if log else ""
                raise Mismatch(_("it passes the static checks, but Triton refused to load '{name}': "
                                 "{error}{tail}").format(name=name, error=str(err).splitlines()[0],
                                                         tail=tail)) from None
        answers, current = [], load[-1]
        try:
            answers.append(serve.infer(server, current, feeds, outputs=_names(repo, current, "output")))
            for current in chain:
                feeds = dict(zip(_names(repo, current, "input"), feeds.values() if not answers[1:] else
                                 answers[-1].values()))
                answers.append(serve.infer(server, current, feeds, outputs=_names(repo, current, "output")))
        except serve.TritonError as err:
            raise Mismatch(_("Triton loaded '{name}', but a request to '{current}' failed: {error}").format(
                name=load[-1], current=current, error=err)) from None
        return answers
    finally:
        server.stop()


def _names(repo: Any, model: str, kind: str) -> tuple[str, ...]:
    return tuple(t.name for t in getattr(repo.config(model), kind))


def _task_problems(config: Any) -> list[str]:
    task = CLASSIFIER_TASK
    found = []
    if config.max_batch_size != task.max_batch_size:
        found.append(_("max_batch_size {got}; the task asks for batches of up to {want}").format(
            got=config.max_batch_size, want=task.max_batch_size))
    if not config.HasField("dynamic_batching"):
        found.append(_("no dynamic_batching block: without it every request is one execution (the task asks for "
                       "dynamic batching)"))
        return found
    db = config.dynamic_batching
    if sorted(db.preferred_batch_size) != sorted(task.preferred):
        found.append(_("preferred_batch_size {got}; the task asks for {want}").format(
            got=list(db.preferred_batch_size), want=list(task.preferred)))
    delay = db.max_queue_delay_microseconds
    if delay != task.delay_us:
        unit = (_(" (that is in milliseconds ×1000: the field counts microseconds)") if delay == task.delay_us * 1000
                else _(" (the field counts microseconds: 0.5 ms = 500)") if delay in (0, 1) else "")
        found.append(_("max_queue_delay_microseconds {delay}; the task asks for {want} µs{unit}").format(
            delay=delay, want=task.delay_us, unit=unit))
    groups = list(config.instance_group)
    count = sum(max(g.count, 1) for g in groups)  # count 0 (unset) means one instance
    if count != task.instances:
        found.append(_("{count} instance(s); the task asks for {want} copies on the CPU "
                       "(instance_group [ {{ count: ... kind: KIND_CPU }} ])").format(count=count, want=task.instances)
                     if groups else
                     _("no instance_group: Triton would start one instance; the task asks for {want} on the "
                       "CPU").format(want=task.instances))
    return found


@exercise("lab06.classifier_config", title=N_("config.pbtxt by hand: dynamic batching and instance groups"), hints=(
    N_("Start from the model: which backend runs it here (the CPU server has one), which tensors it has "
       "(tl.serve.io_from_onnx showed names, dtypes and shapes), then the two blocks that decide how it is "
       "scheduled: dynamic_batching { ... } and instance_group [ ... ]."),
    N_("backend: \"python\"; max_batch_size: 32; input/output entries with name, data_type (TYPE_FP32) and dims "
       "WITHOUT the batch dimension (max_batch_size > 0 means Triton owns it): images [3, 32, 32], logits [10]. "
       "dynamic_batching takes preferred_batch_size and max_queue_delay_microseconds; instance_group takes count "
       "and kind."),
    'name: "classifier_tuned"  backend: "python"  max_batch_size: 32  '
    'input [ { name: "images" data_type: TYPE_FP32 dims: [ 3, 32, 32 ] } ]  '
    'output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]  '
    "dynamic_batching { preferred_batch_size: [ 8, 16 ] max_queue_delay_microseconds: 500 }  "
    "instance_group [ { count: 2 kind: KIND_CPU } ]"),
    time_limit_s=150)  # measured 9-11 s (course model, 2 cores): a private server, two Python-backend stubs
def classifier_config(answer: Callable[[], str] | str, *, onnx_path: str | Path) -> str:
    from trtlab import serve
    from trtlab.runtime import OnnxRuntimeRunner

    text = _text(answer, _("the classifier's config"))
    config = _parse(text)
    name = CLASSIFIER_TASK.name
    if config.name not in ("", name):
        raise Mismatch(_("name \"{got}\": the model's folder is '{name}', and Triton refuses a config whose name "
                         "differs from its folder (write name: \"{name}\" or leave the name out)").format(
                             got=config.name, name=name))
    if config.backend != "python" or config.platform:
        unset = _("(none)")
        got = (f"platform \"{config.platform}\"" if config.platform
               else f"backend \"{config.backend or unset}\"")
        raise Mismatch(_("{got}: this CPU server has only the Python backend, and the classifier here is a model.py "
                         "around ONNX Runtime: write backend: \"python\" (no platform)").format(got=got))
    inputs, outputs = serve.io_from_onnx(onnx_path)
    problems = [_cpu_only(p, config) for p in
                serve.model_problems(config, inputs=inputs, outputs=outputs, instance_kinds=("KIND_CPU",))]
    if problems:
        raise Mismatch("; ".join(problems))
    problems = _task_problems(config)
    if problems:
        raise Mismatch(_("the config is valid, but not the one asked for: {problems}").format(
            problems="; ".join(problems)))
    spec = inputs[config.input[0].name]
    images = np.random.default_rng(6).standard_normal((3, *spec.shape[1:])).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="trtlab-check-") as tmp:
        repo = serve.ModelRepository(Path(tmp) / "models")
        repo.add_python_runner(name, onnx_path, max_batch_size=config.max_batch_size)  # model.py + model.onnx
        repo.write_config_text(name, text)  # then the learner's text, as written
        served = _served(repo, [name], {spec.name: images})[0]
    with OnnxRuntimeRunner(onnx_path) as local:
        expected = local.infer({spec.name: images})
    for out in outputs:
        assert_close(served[out], expected[out], rtol=_SERVED_TOL, atol=_SERVED_TOL,
                     name=_("served '{name}'").format(name=out))
    return _("Triton loaded your config ({instances} CPU instances, batches up to {max_batch}, preferred "
             "{preferred}, {delay} µs queue delay) and answered a batch of 3 with the logits ONNX Runtime computes "
             "here").format(instances=CLASSIFIER_TASK.instances, max_batch=config.max_batch_size,
                            preferred=list(config.dynamic_batching.preferred_batch_size),
                            delay=config.dynamic_batching.max_queue_delay_microseconds)


def _cpu_only(problem: str, config: Any) -> str:
    """model_problems' instance-kind message, told why only KIND_CPU works here (matched in the language in use)."""
    from trtlab import serve

    mc = serve.config_schema()
    for group in config.instance_group:
        kind = mc.ModelInstanceGroup.Kind.Name(group.kind)
        if problem == _("instance_group kind {kind}: this model's instances can be {kinds}").format(
                kind=kind, kinds="KIND_CPU"):
            return _("instance_group kind {kind}: this model's instances can only be KIND_CPU here: this server has "
                     "no GPU and Triton refuses KIND_GPU without one (KIND_AUTO would pick the GPU where there is "
                     "one)").format(kind=kind)
    return problem


@exercise("lab06.ensemble_config",
          title=N_("An ensemble's ensemble_scheduling by hand: pre-processing → classifier"), hints=(
    N_("An ensemble is a config with platform \"ensemble\", its own input and output (what clients send and get), "
       "and ensemble_scheduling { step [ ... ] }: one step per model. Look at the configs of 'preprocess' and "
       "'classifier' (repo.config(...)) for their tensor names."),
    N_("In input_map and output_map the KEY is the composing model's tensor name and the VALUE is the ensemble's "
       "tensor: the ensemble input ('raw'), the ensemble output ('logits'), or a name you choose for the tensor "
       "passed from one step to the next. The ensemble's dims leave out the batch (max_batch_size > 0), like any "
       "model."),
    'platform: "ensemble"  max_batch_size: 64  input [ { name: "raw" data_type: TYPE_UINT8 dims: [ 32, 32, 3 ] } ]  '
    'output [ { name: "logits" data_type: TYPE_FP32 dims: [ 10 ] } ]  ensemble_scheduling { step [ '
    '{ model_name: "preprocess" model_version: -1 input_map { key: "raw" value: "raw" } '
    'output_map { key: "images" value: "normalised" } }, { model_name: "classifier" model_version: -1 '
    'input_map { key: "images" value: "normalised" } output_map { key: "logits" value: "logits" } } ] }'),
    time_limit_s=150)  # measured 10-12 s (course model, 2 cores): a private server, two models, the ensemble
def ensemble_config(answer: Callable[[], str] | str, *, repository: Any, preprocess: str = "preprocess",
                    classifier: str = "classifier") -> str:
    from tritonclient.utils import triton_to_np_dtype

    from trtlab import serve

    text = _text(answer, _("the ensemble's config"))
    config = _parse(text)
    name = config.name or "pipeline"
    steps = [s.model_name for s in config.ensemble_scheduling.step]
    models = {m: repository.config(m) for m in repository.models() if m != name or m in steps}
    problems = serve.ensemble_problems(config, models)
    if problems:
        raise Mismatch("; ".join(problems))
    ins, outs = [t.name for t in config.input], [t.name for t in config.output]
    want_in, want_out = [t.name for t in models[preprocess].input], [t.name for t in models[classifier].output]
    if ins != want_in or outs != want_out:
        raise Mismatch(_("ensemble input(s) {ins}, output(s) {outs}; the task: clients send {want_in} (raw pixels, "
                         "as '{preprocess}' takes them) and get {want_out}").format(
                             ins=ins, outs=outs, want_in=want_in, preprocess=preprocess, want_out=want_out))
    raw = models[preprocess].input[0]
    mc = serve.config_schema()
    pixels = np.random.default_rng(6).integers(0, 256, (3, *raw.dims)).astype(
        triton_to_np_dtype(mc.DataType.Name(raw.data_type).removeprefix("TYPE_")))
    with tempfile.TemporaryDirectory(prefix="trtlab-check-") as tmp:
        repo = serve.ModelRepository(Path(tmp) / "models")
        for model in dict.fromkeys([preprocess, classifier, *steps]):
            _copy_model(repository.root / model, repo.root / model)
        repo.write_config_text(name, text)
        got, _step_one, expected = _served(repo, [*dict.fromkeys([preprocess, classifier, *steps]), name],
                                   {raw.name: pixels}, chain=(preprocess, classifier))
    for out in outs:
        assert_close(got[out], expected[out], rtol=_LOGIT_TOL, atol=_LOGIT_TOL,
                     name=_("ensemble output '{name}'").format(name=out))
    return _("Triton loaded your ensemble ({steps}) and its answer to 3 raw images equals '{preprocess}' then "
             "'{classifier}' called one after the other").format(steps=" → ".join(steps), preprocess=preprocess,
                                                                  classifier=classifier)


# ---------------------------------------------------------------- 2. an HTTP inference request

# Tolerance for the logits: the checker sends the same float32 bytes to the same model at the same batch size, so the
# answer is bit-identical (measured; tests/check/test_lab06.py asserts it). atol = rtol = 1e-5 (84 float32 ulps of
# 2^-23) is margin for a server that sums in another order: a K-term float32 dot product then moves by at most
# K·2^-24·Σ|w·x|, under 1e-5·|result| for K ≲ 170 when the terms do not cancel. A change to the data itself lands
# outside: an fp16 round trip (2^-11 ≈ 4.9e-4 relative per input) moved the test's toy logits by 6.6e-5, over 3x the
# allowance; a /255 or a normalisation moves them by far more.
_LOGIT_TOL = 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compare_logits(got: Any, expected: np.ndarray, batch: int) -> None:
    if got is None:
        raise Mismatch(_("your function returned None; return the logits (result.as_numpy('logits'))"))
    got = np.asarray(got)
    if got.shape == expected.shape[:1] and got.dtype.kind in "iu":
        raise Mismatch(_("batch of {batch}: you returned class ids {ids}; return the raw logits {shape} (argmax "
                         "comes later, on the client's side)").format(batch=batch, ids=got.tolist(),
                                                                      shape=expected.shape))
    if got.shape == expected.shape[1:] and batch == 1:
        raise Mismatch(_("batch of 1: result shape {got}, expected {expected}: the batch dimension was dropped (a "
                         "squeeze or [0]); keep one row per image").format(got=got.shape, expected=expected.shape))
    if got.ndim == expected.ndim and got.shape[1:] == expected.shape[1:] and got.shape[0] < batch:
        raise Mismatch(_("batch of {batch}: {rows} row(s) of logits, expected {batch}: send the whole batch "
                         "(InferInput shape = list(images.shape)), not only its first image(s)").format(
                             batch=batch, rows=got.shape[0]))
    if got.shape != expected.shape:
        raise Mismatch(_("batch of {batch}: result shape {got}, expected {expected}: one row of logits per image, "
                         "with the batch dimension kept").format(batch=batch, got=got.shape, expected=expected.shape))
    rows = got.astype(np.float64).sum(axis=-1)
    if np.allclose(rows, 1.0, atol=1e-3) and not np.allclose(expected.sum(axis=-1), 1.0, atol=1e-3):
        raise Mismatch(_("batch of {batch}: your rows sum to 1: those are probabilities (softmax); return the "
                         "logits the server sent").format(batch=batch))
    if batch > 1 and not np.allclose(got, expected, rtol=_LOGIT_TOL, atol=_LOGIT_TOL):
        order = [next((j for j in range(batch) if np.allclose(g, expected[j], rtol=_LOGIT_TOL, atol=_LOGIT_TOL)),
                      None) for g in got]
        if sorted(j for j in order if j is not None) == list(range(batch)):
            raise Mismatch(_("batch of {batch}: the right rows in another order ({order}): row i of the answer "
                             "must belong to image i of the batch").format(batch=batch, order=order))
    try:
        assert_close(got, expected, rtol=_LOGIT_TOL, atol=_LOGIT_TOL,
                     name=_("logits for a batch of {batch}").format(batch=batch))
    except Mismatch as wrong:
        raise Mismatch(_("{mismatch} Likely causes (not detected for sure): the images were changed before sending "
                         "(scaled, normalised, cast to float16, transposed), another model or output was asked for, "
                         "or the result was post-processed").format(mismatch=wrong)) from None


def _model_shape(server: Any, model: str, input_name: str) -> tuple[int, tuple[int, ...]]:
    """(max_batch_size, per-image shape of ``input_name``) from the server's config of ``model``."""
    from trtlab import serve

    c = serve.client(server, protocol="http")
    try:
        config = c.get_model_config(model)
    except Exception as err:  # noqa: BLE001
        raise serve.as_triton_error(err, server, model) from err
    finally:
        c.close()
    max_batch = int(config.get("max_batch_size", 0))
    for tensor in config["input"]:
        if tensor["name"] == input_name:
            dims = tuple(int(d) for d in tensor["dims"])
            return max_batch, (dims if max_batch > 0 else dims[1:])
    raise ValueError(_("model '{model}' has no input '{name}'").format(model=model, name=input_name))


def _returns_logits(fn: Callable, url: str, model: str, images: np.ndarray, expected: np.ndarray) -> bool:
    """True when ``fn`` answers with logits of the expected shape instead of failing (any error counts as failing)."""
    try:
        got = fn(url, model, images.copy())
    except Exception:  # noqa: BLE001 - an error is the right behaviour here, whichever
        return False
    return got is not None and np.asarray(got).shape == expected.shape


@exercise("lab06.http_request", title=N_("An HTTP inference request with tritonclient"), hints=(
    N_("tritonclient.http.InferenceServerClient(url) talks to the server; client.infer(model, inputs, outputs=...) "
       "sends one request; the result's .as_numpy('logits') gives the answer."),
    N_("Each input is an InferInput(name, shape, datatype) filled with set_data_from_numpy(array); the datatype is "
       "Triton's name for the array's dtype ('FP32' for float32; tritonclient.utils.np_to_triton_dtype converts). "
       "Use the url, model and images you are given: the check calls your function with other values too."),
    "inp = httpclient.InferInput('images', list(images.shape), 'FP32'); inp.set_data_from_numpy(images); "
    "result = client.infer(model, [inp], outputs=[httpclient.InferRequestedOutput('logits')]); "
    "return result.as_numpy('logits')"),
    time_limit_s=60)  # measured < 1 s: 3 + 2 learner requests and 3 reference requests to a local server
def http_request(fn: Callable[[str, str, np.ndarray], np.ndarray], *, server: Any, model: str,
                 input_name: str = "images", output_name: str = "logits") -> str:
    from trtlab import serve

    url = server.http_url if isinstance(server, serve.TritonServer) else str(server)
    max_batch, shape = _model_shape(server, model, input_name)
    batches = [b for b in (1, 3, 5) if max_batch == 0 or b <= max_batch]
    rng = np.random.default_rng(6)
    for batch in batches:
        images = rng.standard_normal((batch, *shape)).astype(np.float32)  # values on no grid, signs mixed
        expected = serve.infer(server, model, {input_name: images}, outputs=(output_name,))[output_name]
        _compare_logits(fn(url, model, images.copy()), expected, batch)  # a copy: in-place edits stay the learner's
    bogus = f"{model}_not_on_this_server"  # the real name is its prefix: a name match must be exact
    if _returns_logits(fn, url, bogus, images, expected):
        raise Mismatch(_("asked for model '{model}', which the server does not have, your function still returned "
                         "logits: it ignores its `model` argument (a model name typed by hand?). Pass `model` to "
                         "client.infer").format(model=bogus))
    dead = f"127.0.0.1:{_free_port()}"
    if _returns_logits(fn, dead, model, images, expected):
        raise Mismatch(_("given the url '{url}', where no server listens, your function still returned logits: it "
                         "ignores its `url` argument (a typed 'localhost:8000', or the notebook's "
                         "`server.http_url`?). Pass `url` to InferenceServerClient").format(url=dead))
    return _("your request returned the server's logits for batches of {batches} from {url}, and failed as it should "
             "for an unknown model and a dead address").format(batches=", ".join(map(str, batches)), url=url)


# ---------------------------------------------------------------- 3. average batch size from the metrics

_Counts = dict[tuple[str, str], tuple[int, int, int]]  # {(model, version): (requests, inferences, executions)}


def _metrics(counts: _Counts) -> str:
    """Prometheus text laid out like Triton's, with the neighbouring metrics a parser must skip."""
    blocks = {"nv_inference_request_success": "Number of successful inference requests, all batch sizes",
              "nv_inference_count": "Number of inferences performed (does not include cached requests)",
              "nv_inference_exec_count": "Number of model executions performed (does not include cached requests)"}
    lines = ["# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes",
             "# TYPE nv_inference_request_failure counter"]
    lines += [f'nv_inference_request_failure{{model="{m}",reason="BACKEND",version="{v}"}} 0' for m, v in counts]
    for index, (metric, help_text) in enumerate(blocks.items()):
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        lines += [f'{metric}{{model="{m}",version="{v}"}} {c[index]}' for (m, v), c in counts.items()]
    lines += ["# HELP nv_inference_request_duration_us Cumulative inference request duration in microseconds",
              "# TYPE nv_inference_request_duration_us counter"]
    lines += [f'nv_inference_request_duration_us{{model="{m}",version="{v}"}} {c[0] * 1733}'
              for (m, v), c in counts.items()]
    lines += ["# HELP nv_inference_pending_request_count Instantaneous number of pending requests awaiting "
              "execution per-model.", "# TYPE nv_inference_pending_request_count gauge"]
    lines += [f'nv_inference_pending_request_count{{model="{m}",version="{v}"}} 0' for m, v in counts]
    lines += ["# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]", "# TYPE nv_cpu_utilization gauge",
              "nv_cpu_utilization 0.93"]
    return "\n".join(lines) + "\n"


def _metric_cases() -> list[tuple[_Counts, _Counts, str]]:
    """(before, after, model). Every expected value is fractional; other models' names contain the asked one (as a
    prefix or a suffix); requests carry several images in case 2; case 3 has two versions. All counts < 2^24, so a
    float32 parse is exact too."""
    return [
        ({("resnet", "1"): (120, 120, 120), ("resnet50", "1"): (40, 160, 10), ("ensemble_resnet", "1"): (0, 0, 0),
          ("mobilenet_v3", "1"): (0, 0, 0)},
         {("resnet", "1"): (1357, 1357, 217), ("resnet50", "1"): (1040, 4160, 260),
          ("ensemble_resnet", "1"): (50, 50, 50), ("mobilenet_v3", "1"): (77, 616, 11)}, "resnet"),
        ({("resnet50", "1"): (10, 40, 10), ("resnet50_int8", "1"): (0, 0, 0), ("resnet", "1"): (5, 5, 5)},
         {("resnet50", "1"): (110, 440, 31), ("resnet50_int8", "1"): (300, 300, 7), ("resnet", "1"): (905, 905, 900)},
         "resnet50"),
        ({("classifier_ensemble_preprocess_resnet50_fp16", "1"): (0, 0, 0),
          ("classifier_ensemble_preprocess_resnet50_fp16", "2"): (7, 7, 7),
          ("classifier_ensemble_preprocess_resnet50_fp16_dynamic", "1"): (3, 3, 3),
          ("ensemble_classifier_ensemble_preprocess_resnet50_fp16", "1"): (0, 0, 0), ("mobilenet_v3", "1"): (1, 1, 1)},
         {("classifier_ensemble_preprocess_resnet50_fp16", "1"): (310, 310, 33),
          ("classifier_ensemble_preprocess_resnet50_fp16", "2"): (519, 519, 27),
          ("classifier_ensemble_preprocess_resnet50_fp16_dynamic", "1"): (2003, 2003, 100),
          ("ensemble_classifier_ensemble_preprocess_resnet50_fp16", "1"): (64, 64, 64),
          ("mobilenet_v3", "1"): (401, 1601, 51)},
         "classifier_ensemble_preprocess_resnet50_fp16"),
    ]


def _delta(before: _Counts, after: _Counts, keep: Callable[[str, str], bool]) -> np.ndarray:
    """(Δrequests, Δinferences, Δexecutions) summed over the (model, version) pairs ``keep`` accepts."""
    zero = (0, 0, 0)
    return sum((np.subtract(after[k], before.get(k, zero)) for k in after if keep(*k)), np.zeros(3, dtype=np.int64))


def _metric_mistakes(before: _Counts, after: _Counts, model: str) -> list[tuple[float, str]]:
    """What typical mistakes return on this case, each with the message that names it."""
    req, inf, exe = _delta(before, after, lambda m, v: m == model)
    versions = sorted(v for m, v in after if m == model)
    total_after = _delta({}, after, lambda m, v: m == model)
    found = [
        (exe / inf, _("you divided executions by inferences; the average batch is inferences per execution")),
        (total_after[1] / total_after[2], _("those are the totals since the server started: subtract the 'before' "
                                            "snapshot from the 'after' one (both counters)")),
        (req / exe, _("you counted requests (nv_inference_request_success); a request can carry several images: "
                      "use nv_inference_count")),
        (inf / req, _("that is images per request (the clients' batch); the server's batch is inferences per "
                      "execution (nv_inference_exec_count)")),
        (float(inf // exe), _("integer division (//) drops the fraction: divide with /")),
        (float(round(inf / exe)), _("the average was rounded to a whole number; return it unrounded")),
    ]
    exactly = _("keep only the samples whose label model is exactly \"{model}\" (a substring or prefix test also "
                "matches other models)").format(model=model)
    for keep, what in ((lambda m, v: model in m, _("you added up the counters whose name contains '{model}'")),
                       (lambda m, v: m.startswith(model), _("you added up the counters whose name starts with "
                                                            "'{model}'")),
                       (lambda m, v: True, _("you added up the counters of every model, not only '{model}'"))):
        _req, i, e = _delta(before, after, keep)
        found.append((i / e, _("{mistake}; {fix}").format(mistake=what.format(model=model), fix=exactly)))
    if len(versions) > 1:
        for v in versions:
            _req, i, e = _delta(before, after, lambda m, ver: m == model and ver == v)
            found.append((i / e, _("that is version {version} alone; model '{model}' has versions {versions} "
                                   "loaded: add up their counters").format(version=v, model=model, versions=versions)))
        ratios = [i / e for _req, i, e in (_delta(before, after, lambda m, ver: m == model and ver == v)
                                           for v in versions)]
        found.append((float(np.mean(ratios)), _("you averaged the versions' ratios; add up their counters first, "
                                                "then divide once")))
    return [(float(value), message) for value, message in found]


# Tolerance: the expected value is a ratio of two integer deltas below 2^24, exact in float64 up to its one rounding
# (2^-53). A learner who parses into float32 is still exact on the counts and rounds the division once (2^-24 ≈
# 6e-8 relative). rtol = 1e-6 accepts both and is far below the gap to every mistake listed above (checked per case).
_RATIO_RTOL = 1e-6


@exercise("lab06.batch_metrics", title=N_("Average batch size from Triton's Prometheus metrics"), hints=(
    N_("Triton counts, per model and version, the inferences (images) it served and the executions (model runs) it "
       "needed. Dynamic batching is working when one execution serves several inferences."),
    N_("average batch = Δ nv_inference_count / Δ nv_inference_exec_count between two snapshots, for this model only "
       "(the label model=\"...\" equal to the name, not containing it), summed over its versions."),
    N_("Parse each text with prometheus_client.parser.text_string_to_metric_families (counter samples are named "
       "'<family>_total' there) or split the lines yourself; keep samples whose labels['model'] == model; sum per "
       "metric; return (after_count - before_count) / (after_exec - before_exec).")),
    time_limit_s=20)  # measured < 0.1 s: three pairs of short metric texts
def batch_metrics(fn: Callable[[str, str, str], float]) -> str:
    cases = _metric_cases()
    for before, after, model in cases:
        _req, inf, exe = _delta(before, after, lambda m, v: m == model)
        expected = inf / exe
        got = fn(_metrics(before), _metrics(after), model)
        try:
            value = float(got)
        except (TypeError, ValueError):
            raise Mismatch(_("return a number (the average batch size); got {got!r}").format(got=got)) from None
        if abs(value - expected) <= _RATIO_RTOL * expected:
            continue
        if not np.isfinite(value):
            raise Mismatch(_("model '{model}': got {value}; expected {expected:.6g} (Δ nv_inference_count {inf} / "
                             "Δ nv_inference_exec_count {exe}). A 0/0: did you read the right counters for this "
                             "model?").format(model=model, value=value, expected=expected, inf=inf, exe=exe))
        for wrong, message in _metric_mistakes(before, after, model):
            if abs(wrong - expected) > _RATIO_RTOL * expected and abs(value - wrong) <= _RATIO_RTOL * abs(wrong):
                raise Mismatch(_("model '{model}': got {value:.6g}, expected {expected:.6g}: {mistake}").format(
                    model=model, value=value, expected=expected, mistake=message))
        raise Mismatch(_("model '{model}': got {value:.6g}, expected {expected:.6g} (Δ nv_inference_count {inf} / "
                         "Δ nv_inference_exec_count {exe}). Likely causes (not detected for sure): another metric or "
                         "model read, a line parsed wrongly, or the 'before' snapshot not subtracted from both "
                         "counters").format(model=model, value=value, expected=expected, inf=inf, exe=exe))
    return _("average batch sizes right in {count} cases: deltas, batched requests, models whose names contain the "
             "asked one, two versions").format(count=len(cases))
