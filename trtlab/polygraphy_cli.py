"""Polygraphy's command-line tool, run for real: the commands a learner types (``polygraphy inspect model``,
``polygraphy surgeon sanitize``, ``polygraphy run ... --onnxrt``, ``polygraphy debug reduce``), executed as a
subprocess of this environment with a time limit, and small parsers for the lines the notebooks assert on.

Every call prints the command line exactly as a learner would type it, so the notebook cell and the terminal agree.
The parsers read Polygraphy 0.53's text output (the formats are in ``polygraphy/tools/inspect``,
``polygraphy/comparator/compare.py`` and ``polygraphy/tools/surgeon``); a format they do not recognise raises
:class:`~trtlab.errors.ToolFailed` naming the line it looked for, never a silent zero.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from trtlab.errors import InvalidArgument, ToolFailed
from trtlab.i18n import _

__all__ = ["CliResult", "Comparison", "IterationStats", "ModelView", "folding_passes", "inspect_model",
           "poison_weight", "run", "save_inputs"]

#: Printed once by Polygraphy when the optional ``colored`` package is missing; cosmetic, so dropped from output.
_COLORED_NOTICE = "[W] 'colored' module is not installed"
#: The final line of ``run``, ``surgeon`` and ``debug`` (``inspect`` prints none): ``[I] PASSED | Runtime: 3.6s |
#: Command: ...`` or FAILED. A non-zero exit without it means the tool crashed or refused its arguments.
_VERDICT = re.compile(r"^\[[IE]\] (PASSED|FAILED) \| Runtime: ([\d.]+)s \| Command:", re.M)


@functools.cache
def _scripts_dir() -> Path:
    """A folder whose ``polygraphy`` is *this* interpreter's (never another one on PATH): the environment's scripts
    folder, or — where the package was installed without its console script (``pip install --target``) — a
    temporary folder with a two-line launcher, so that a ``--check polygraphy ...`` typed by the learner works."""
    scripts = Path(sys.executable).parent
    if (scripts / "polygraphy").exists():
        return scripts
    shim_dir = Path(tempfile.mkdtemp(prefix="trtlab-polygraphy-"))
    atexit.register(shutil.rmtree, shim_dir, ignore_errors=True)
    shim = shim_dir / "polygraphy"
    shim.write_text(f"#!{sys.executable}\nimport sys\nfrom polygraphy.tools import main\nsys.exit(main())\n")
    shim.chmod(0o755)
    return shim_dir


def _executable() -> list[str]:
    """The ``polygraphy`` console script of this interpreter's environment."""
    return [str(_scripts_dir() / "polygraphy")]


def _shown(arg: str | os.PathLike, cwd: Path) -> str:
    """A path as the learner would type it from ``cwd``: relative when it lies below it."""
    text = os.fspath(arg)
    if os.path.isabs(text):
        try:
            return str(Path(text).relative_to(cwd))
        except ValueError:
            return text
    return text


@dataclass(frozen=True)
class CliResult:
    """One finished ``polygraphy`` command: what ran, its exit code, its output (stdout and stderr interleaved)."""

    command: str
    returncode: int
    output: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Exit code 0 and no final ``FAILED`` line (``inspect`` prints no verdict; ``run`` and ``surgeon`` do)."""
        return self.returncode == 0 and self.verdict != "FAILED"

    @property
    def verdict(self) -> str | None:
        found = _VERDICT.findall(self.output)
        return found[-1][0] if found else None

    def lines(self, *patterns: str) -> list[str]:
        """The output lines that contain any of ``patterns`` (all lines when none is given)."""
        rows = self.output.splitlines()
        return [r for r in rows if not patterns or any(p in r for p in patterns)]

    def show(self, *patterns: str, limit: int = 40) -> None:
        """Print the matching lines (at most ``limit``; the rest is counted, not hidden silently)."""
        rows = self.lines(*patterns)
        print("\n".join(rows[:limit]))
        if len(rows) > limit:
            print(_("... {count} more line(s) not shown").format(count=len(rows) - limit))

    def tail(self, n: int = 15) -> str:
        return _tail(self.output, n)


def run(args: Sequence[str | os.PathLike], *, timeout: float = 120, cwd: str | os.PathLike | None = None,
        check: bool = True, echo: bool = True) -> CliResult:
    """Run ``polygraphy <args>`` of this environment and return its :class:`CliResult`.

    ``check=True``: any non-zero exit raises :class:`ToolFailed` (with the command and the output's tail).
    ``check=False``: a FAILED verdict is a result (an accuracy comparison that fails is an answer), but a run that
    never reached a verdict (a usage error, a missing module, a crash) still raises. Past ``timeout`` seconds the
    whole process group (``debug reduce`` starts its check commands as children) is killed and ToolFailed raised.
    """
    if isinstance(args, (str, bytes)):
        raise InvalidArgument(_("run: got the string {args!r} | expected a list of arguments, e.g. "
                                "['inspect', 'model', 'model.onnx'] | split the command line (shlex.split)").format(
                                    args=args))
    where = Path(cwd) if cwd is not None else Path.cwd()
    argv = [os.fspath(a) for a in args]
    command = "polygraphy " + shlex.join(_shown(a, where) for a in argv)
    if echo:
        print(f"$ {command}" if cwd is None else f"$ cd {where} && {command}")
    start = time.perf_counter()
    # this environment's scripts first on PATH: a `--check polygraphy run ...` of debug reduce must find the same tool
    env = {**os.environ, "PATH": os.pathsep.join([str(_scripts_dir()), os.environ.get("PATH", "")])}
    proc = subprocess.Popen(_executable() + argv, cwd=where, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env=env)
    try:
        raw, _stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raw, _stderr = proc.communicate()
        raise ToolFailed(_("`{command}` ran past its {timeout:g} s limit and was stopped | last output:\n"
                           "{tail}\n| expected it to finish within the limit | check the machine's load (other "
                           "jobs on its cores), or pass a larger timeout=").format(
                               command=command, timeout=timeout, tail=_tail(raw))) from None
    output = "\n".join(r for r in raw.splitlines() if not r.startswith(_COLORED_NOTICE))
    result = CliResult(command, proc.returncode, output, time.perf_counter() - start)
    if proc.returncode != 0 and (check or result.verdict is None):
        raise ToolFailed(_("`{command}` exited with code {code} {how} | last output:\n"
                           "{tail}\n| expected a PASSED run | read its [E]/[!] lines; run the same "
                           "command in a terminal to reproduce it").format(
                               command=command, code=proc.returncode, tail=result.tail(),
                               how=_("(FAILED verdict)") if result.verdict else _("before reaching a verdict")))
    return result


def _tail(text: str, n: int = 15) -> str:
    return "\n".join(text.splitlines()[-n:])


# ---------------------------------------------------------------- inspect model


@dataclass(frozen=True)
class ModelView:
    """What ``polygraphy inspect model`` printed: graph name, opset, I/O, counts, and (with --show layers) nodes."""

    name: str
    opset: int
    inputs: dict[str, tuple[str, tuple]]
    outputs: dict[str, tuple[str, tuple]]
    initializers: int
    nodes: int
    layers: list[tuple[str, str]] = field(default_factory=list)  # (node name, op type), with --show layers


_HEADER = re.compile(r"Name: (\S*) \| ONNX Opset: (\d+)")
_SECTION = re.compile(r"---- (\d+) (Graph Input|Graph Output|Initializer|Node)\(s\) ----")
_TENSOR = re.compile(r"([^\s{},]+) \[dtype=(\w+), shape=\((.*?)\)\]")
_LAYER = re.compile(r"^\s*Node \d+\s+\| (\S+) \[Op: (\w+)\]", re.M)


def _shape(text: str) -> tuple:
    dims = [d.strip().strip("'\"") for d in text.split(",") if d.strip()]
    return tuple(int(d) if d.lstrip("-").isdigit() else d for d in dims)


def inspect_model(output: str | CliResult, which: int = 0) -> ModelView:
    """Parse a model summary Polygraphy printed: ``which=0`` the first (``inspect model``; the input model of
    ``surgeon sanitize``), ``which=-1`` the last (the model ``surgeon sanitize`` saved)."""
    text = output.output if isinstance(output, CliResult) else output
    headers = list(_HEADER.finditer(text))
    if not headers:
        raise ToolFailed(_("inspect_model: no 'Name: ... | ONNX Opset: N' line in the output | expected the output "
                           "of `polygraphy inspect model <file.onnx>` | pass that command's CliResult"))
    header = headers[which]
    following = [h.start() for h in headers if h.start() > header.start()]
    body = text[header.end():following[0] if following else len(text)]
    sections: dict[str, tuple[int, str]] = {}
    marks = list(_SECTION.finditer(body))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        sections[mark.group(2)] = (int(mark.group(1)), body[mark.end():end])
    missing = {"Graph Input", "Graph Output", "Initializer", "Node"} - set(sections)
    if missing:
        raise ToolFailed(_("inspect_model: the output has no '---- N {section}(s) ----' section | expected "
                           "Polygraphy's ONNX model summary | was the file an ONNX model?").format(
                               section=sorted(missing)[0]))

    def tensors(kind: str) -> dict[str, tuple[str, tuple]]:
        return {m.group(1): (m.group(2), _shape(m.group(3))) for m in _TENSOR.finditer(sections[kind][1])}

    return ModelView(header.group(1), int(header.group(2)), tensors("Graph Input"), tensors("Graph Output"),
                     sections["Initializer"][0], sections["Node"][0], _LAYER.findall(sections["Node"][1]))


# ---------------------------------------------------------------- surgeon sanitize --fold-constants

_FOLD = re.compile(r"Total Nodes \| Original:\s+(\d+), After Folding:\s+(\d+) \|\s+(\d+) Nodes Folded")


def folding_passes(output: str | CliResult) -> list[tuple[int, int]]:
    """(nodes before, nodes after) of each constant-folding pass ``surgeon sanitize --fold-constants`` reported."""
    text = output.output if isinstance(output, CliResult) else output
    passes = [(int(a), int(b)) for a, b, _folded in _FOLD.findall(text)]
    if not passes:
        raise ToolFailed(_("folding_passes: no 'Total Nodes | Original: N, After Folding: M' line | expected the "
                           "output of `polygraphy surgeon sanitize ... --fold-constants`"))
    return passes


# ---------------------------------------------------------------- run --onnxrt comparisons

_ITERATION = re.compile(r"^\[I\] Iteration: (\d+)$", re.M)
_REQUIRED = re.compile(r"Minimum Required Tolerance: (\w+) error \| \[abs=([\w.+-]+)\] OR \[rel=([\w.+-]+)\]")
_ABS = re.compile(r"Absolute Difference \| Stats: (.*)")
_STAT = re.compile(r"(mean|median|max|p90|p95|p99)=([-\w.+]+)")
_SUMMARY = re.compile(r"Accuracy Summary \| .* \| Passed: (\d+)/(\d+) iterations")


@dataclass(frozen=True)
class IterationStats:
    """One iteration (one batch) of a ``polygraphy run`` comparison."""

    index: int
    passed: bool
    stat: str  # the statistic checked: elemwise, max, mean, median or quantile
    required_atol: float  # the smallest --atol that would pass this iteration (alone), as Polygraphy reports it
    required_rtol: float
    abs_error: dict[str, float]  # mean, median, max, p90, p95, p99 of |candidate - reference|


@dataclass(frozen=True)
class Comparison:
    """The report of ``polygraphy run <model> --onnxrt --load-outputs <reference>``: per-iteration numbers and the
    overall verdict."""

    passed: bool
    iterations: list[IterationStats]

    @property
    def passed_iterations(self) -> int:
        return sum(it.passed for it in self.iterations)

    def __str__(self) -> str:
        rows = [_("batch {index}: {verdict} ({stat}) | needs atol ≥ {atol:.3g} | |Δ| median {median:.3g}, p99 "
                  "{p99:.3g}, max {max:.3g}").format(
                      index=it.index, verdict="PASSED" if it.passed else "FAILED", stat=it.stat, atol=it.required_atol,
                      median=it.abs_error["median"], p99=it.abs_error["p99"], max=it.abs_error["max"])
                for it in self.iterations]
        verdict = "PASSED" if self.passed else "FAILED"
        return "\n".join([*rows, _("{verdict}: {passed}/{total} batches passed").format(
            verdict=verdict, passed=self.passed_iterations, total=len(self.iterations))])

    def worst(self, key: str) -> float:
        """The largest per-iteration absolute-error statistic ``key`` (mean, median, max, p99, ...)."""
        return max(it.abs_error[key] for it in self.iterations)

    @classmethod
    def parse(cls, output: str | CliResult) -> Comparison:
        text = output.output if isinstance(output, CliResult) else output
        starts = list(_ITERATION.finditer(text))
        if not starts:
            raise ToolFailed(_("Comparison.parse: no '[I] Iteration: N' line | expected the output of `polygraphy "
                               "run <model> --onnxrt --load-outputs <reference.json>` (a comparison)"))
        iterations = []
        for i, start in enumerate(starts):
            block = text[start.end():starts[i + 1].start() if i + 1 < len(starts) else len(text)]
            required, stats = _REQUIRED.search(block), _ABS.search(block)
            if required is None or stats is None:
                raise ToolFailed(_("Comparison.parse: iteration {index} has no 'Minimum Required Tolerance' "
                                   "or 'Absolute Difference | Stats' line | expected the `simple` comparison's "
                                   "report").format(index=start.group(1)))
            iterations.append(IterationStats(
                int(start.group(1)), "FAILED | Output:" not in block,
                required.group(1), float(required.group(2)), float(required.group(3)),
                {k: float(v) for k, v in _STAT.findall(stats.group(1))}))
        summary = _SUMMARY.search(text)
        if summary is None:
            raise ToolFailed(_("Comparison.parse: no 'Accuracy Summary | ... | Passed: N/M iterations' line"))
        passed = CliResult("", 0, text, 0.0).verdict == "PASSED"
        return cls(passed and int(summary.group(1)) == int(summary.group(2)), iterations)


def save_inputs(path: str | os.PathLike, batches: Sequence[Mapping[str, object]]) -> Path:
    """Write feed dicts (one per iteration) in the JSON format ``polygraphy run --load-inputs`` reads, so every model
    is compared on the same real images instead of Polygraphy's random data."""
    import numpy as np
    from polygraphy.json import save_json

    if not batches or not all(isinstance(b, Mapping) and b for b in batches):
        raise InvalidArgument(_("save_inputs: expected a non-empty list of {{input name: array}} dicts, one per "
                                "iteration; got {kind} | e.g. [{{'images': x[:64]}}]").format(
                                    kind=type(batches).__name__))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_json([{k: np.ascontiguousarray(v) for k, v in b.items()} for b in batches], str(path))
    return path


# ---------------------------------------------------------------- debug reduce: a model broken on purpose


def poison_weight(source: str | os.PathLike, out: str | os.PathLike, initializer: str,
                  value: float = float("nan")) -> str:
    """Copy ``source`` to ``out`` with one element of weight ``initializer`` set to ``value`` (NaN: the corrupted
    checkpoint or fp16 overflow you meet in the field). Returns the name of the node that reads that weight — the
    culprit ``debug reduce`` should find."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(os.fspath(source))
    init = next((t for t in model.graph.initializer if t.name == initializer), None)
    if init is None:
        names = [t.name for t in model.graph.initializer][:8]
        raise InvalidArgument(_("poison_weight: no initializer {name!r} in {source} | some it has: {names}").format(
            name=initializer, source=source, names=names))
    weight = numpy_helper.to_array(init).copy()
    weight.flat[0] = value
    init.CopyFrom(numpy_helper.from_array(weight.astype(np.float32, copy=False), initializer))
    onnx.save(model, os.fspath(out))
    return next(n.name for n in model.graph.node if initializer in n.input)
