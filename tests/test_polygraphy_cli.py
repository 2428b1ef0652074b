"""trtlab.polygraphy_cli runs the real `polygraphy` command line on the toy ONNX model: the printed command, the
parsers (checked against onnx's and NumPy's own numbers), the time limit and the course errors."""

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from trtlab import polygraphy_cli as pg
from trtlab.errors import InvalidArgument, ToolFailed


def _ort(path, x):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]


@pytest.fixture(scope="module")
def toy_inputs(tmp_path_factory):
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 8, 8)).astype(np.float32)
    path = pg.save_inputs(tmp_path_factory.mktemp("pg") / "inputs.json", [{"images": b} for b in x])
    return path, x


def test_inspect_model_matches_onnx_view(toy_onnx, capsys):
    result = pg.run(["inspect", "model", toy_onnx, "--show", "layers"])
    assert capsys.readouterr().out.startswith(f"$ polygraphy inspect model {toy_onnx} --show layers")
    assert result.passed and result.verdict is None and "'colored' module" not in result.output
    view = pg.inspect_model(result)
    proto = onnx.load(str(toy_onnx))
    assert view.opset == 18 and view.name == proto.graph.name
    assert view.inputs == {"images": ("float32", ("N", 3, 8, 8))}
    assert view.outputs == {"logits": ("float32", ("N", 4))}
    assert view.initializers == len(proto.graph.initializer) and view.nodes == len(proto.graph.node)
    assert view.layers == [(n.name, n.op_type) for n in proto.graph.node]


def _foldable(path):
    """x + (2 * 3): Polygraphy folds the Mul of two constants into one initializer."""
    two, three = (numpy_helper.from_array(np.full((1, 4), v, np.float32), n) for v, n in ((2, "two"), (3, "three")))
    nodes = [helper.make_node("Mul", ["two", "three"], ["six"], name="mul"),
             helper.make_node("Add", ["x", "six"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "fold", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [two, three])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    return path


def test_sanitize_fold_constants_counts(tmp_path):
    result = pg.run(["surgeon", "sanitize", _foldable(tmp_path / "f.onnx"), "--fold-constants", "-o",
                     tmp_path / "folded.onnx"], echo=False)
    assert pg.folding_passes(result)[0] == (2, 1)
    assert pg.inspect_model(result).nodes == 2 and pg.inspect_model(result, -1).nodes == 1
    assert [n.op_type for n in onnx.load(str(tmp_path / "folded.onnx")).graph.node] == ["Add"]


def test_comparison_report_agrees_with_numpy(toy_onnx, toy_inputs, tmp_path):
    inputs, x = toy_inputs
    reference = tmp_path / "ref.json"
    pg.run(["run", toy_onnx, "--onnxrt", "--load-inputs", inputs, "--save-outputs", reference], echo=False)
    other = tmp_path / "other.onnx"
    proto = onnx.load(str(toy_onnx))
    bias = next(t for t in proto.graph.initializer if t.name == "fc.bias")
    bias.CopyFrom(numpy_helper.from_array(np.array([0.0, 0.01, 0.0, -0.2], np.float32), "fc.bias"))
    onnx.save(proto, str(other))

    same = pg.Comparison.parse(pg.run(["run", toy_onnx, "--onnxrt", "--load-inputs", inputs, "--load-outputs",
                                       reference], echo=False))
    assert same.passed and same.passed_iterations == 2 and same.worst("max") == 0

    strict = pg.run(["run", other, "--onnxrt", "--load-inputs", inputs, "--load-outputs", reference], echo=False,
                    check=False)
    assert strict.verdict == "FAILED" and not strict.passed
    report = pg.Comparison.parse(strict)
    assert not report.passed and report.passed_iterations == 0 and report.iterations[0].stat == "elemwise"
    for it, batch in zip(report.iterations, x):
        diff = np.abs(_ort(other, batch) - _ort(toy_onnx, batch))
        assert it.abs_error["max"] == pytest.approx(diff.max(), rel=1e-3) == it.required_atol
        assert it.abs_error["median"] == pytest.approx(np.median(diff), rel=1e-3, abs=1e-6)
    assert "FAILED: 0/2 batches passed" in str(report)

    loose = pg.Comparison.parse(pg.run(["run", other, "--onnxrt", "--load-inputs", inputs, "--load-outputs",
                                        reference, "--check-error-stat", "median", "--atol", "0.05", "--rtol", "0"],
                                       echo=False))
    assert loose.passed and {it.stat for it in loose.iterations} == {"median"}


def test_failed_verdict_raises_when_checked(toy_onnx, tmp_path):
    bad = tmp_path / "nan.onnx"
    assert pg.poison_weight(toy_onnx, bad, "fc.weight") == "fc"
    with pytest.raises(ToolFailed, match=r"polygraphy run .*nan.onnx --onnxrt --validate.* exited with code 1 "
                                         r"\(FAILED verdict\)(.|\n)*NaN"):
        pg.run(["run", bad, "--onnxrt", "--validate"], echo=False)


def test_debug_reduce_finds_the_poisoned_node(toy_onnx, tmp_path):
    pg.poison_weight(toy_onnx, tmp_path / "broken.onnx", "conv.weight")
    pg.run(["surgeon", "sanitize", "broken.onnx", "--override-input-shapes", "images:[1,3,8,8]", "-o", "static.onnx"],
           cwd=tmp_path, echo=False)
    pg.run(["debug", "reduce", "static.onnx", "-o", "reduced.onnx", "--mode=bisect",
            "--check", "polygraphy", "run", "polygraphy_debug.onnx", "--onnxrt", "--validate"], cwd=tmp_path,
           timeout=180, echo=False)
    reduced = pg.inspect_model(pg.run(["inspect", "model", "reduced.onnx", "--show", "layers"], cwd=tmp_path,
                                      echo=False))
    # bisect is not guaranteed minimal (--help: 'linear' can do better): the culprit comes first, most nodes are gone
    assert reduced.layers[0] == ("conv", "Conv") and len(reduced.layers) < 5


def test_time_limit_stops_the_command(toy_onnx):
    start = time.perf_counter()
    with pytest.raises(ToolFailed, match=r"ran past its 0.2 s limit"):
        pg.run(["run", toy_onnx, "--onnxrt"], timeout=0.2, echo=False)
    assert time.perf_counter() - start < 10


def test_errors_name_the_problem(toy_onnx, tmp_path):
    with pytest.raises(ToolFailed, match=r"before reaching a verdict(.|\n)*Unrecognized Options"):
        pg.run(["run", toy_onnx, "--no-such-flag"], check=False, echo=False)
    with pytest.raises(ToolFailed, match="before reaching a verdict"):
        pg.run(["inspect", "model", tmp_path / "missing.onnx"], echo=False)
    with pytest.raises(InvalidArgument, match="list of arguments"):
        pg.run("inspect model x.onnx")
    with pytest.raises(InvalidArgument, match="no initializer 'nope'"):
        pg.poison_weight(toy_onnx, tmp_path / "x.onnx", "nope")
    with pytest.raises(InvalidArgument, match="non-empty list"):
        pg.save_inputs(tmp_path / "i.json", [])


@pytest.mark.parametrize("parse", [pg.inspect_model, pg.folding_passes, pg.Comparison.parse])
def test_parsers_reject_other_output(parse):
    with pytest.raises(ToolFailed, match="expected"):
        parse("[I] PASSED | Runtime: 1.0s | Command: polygraphy something else")


def test_without_a_console_script_a_launcher_of_this_interpreter_is_put_on_path(monkeypatch, tmp_path):
    """``pip install --target`` leaves no ``polygraphy`` script: a `--check polygraphy ...` must still find this one."""
    import re
    import sys
    import sysconfig

    from trtlab import polygraphy_cli

    fake_python = tmp_path / "bin" / "python"  # an interpreter with no scripts beside it; packages from PYTHONPATH
    fake_python.parent.mkdir()
    fake_python.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    monkeypatch.setenv("PYTHONPATH", sysconfig.get_paths()["purelib"])
    polygraphy_cli._scripts_dir.cache_clear()
    try:
        folder = polygraphy_cli._scripts_dir()
        assert folder != fake_python.parent and (folder / "polygraphy").exists()
        result = polygraphy_cli.run(["--version"], echo=False)
        assert result.returncode == 0 and re.search(r"\d+\.\d+", result.output), result.output
    finally:
        polygraphy_cli._scripts_dir.cache_clear()
