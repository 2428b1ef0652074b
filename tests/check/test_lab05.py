"""Lab 05 checkers accept the right answers and reject wrong ones with a message naming the mistake."""

import re

import pytest

from trtlab.check import lab05


def _stub(*args, **kwargs):
    raise NotImplementedError("exercise not done yet: write your code here")


# ---------------------------------------------------------------- output_shape


def good_shape(shape):
    dims = tuple(shape)
    if len(dims) != 4:
        raise ValueError(f"rank {len(dims)}")
    return (dims[0], dims[1], 1, 1)


def test_output_shape_accepts_reference():
    result = lab05.output_shape.evaluate(good_shape)
    assert result, result.message


@pytest.mark.parametrize("wrong, message", [
    (lambda s: tuple(s), "returned the input shape.*x.like"),
    (lambda s: tuple(s)[:2], "1×1 spatial dimensions are gone"),
    (lambda s: (1, 1, s[0], s[1]), r"expected \(2, 512, 1, 1\)"),
    (lambda s: (int(s[0]), int(s[1]), 1, 1), "symbolic batch.*never int"),
    (lambda s: (s[0], s[1], 1, 1), "rank-2 input.*instead of raising"),
    (lambda s: 7, "return a tuple"),
])
def test_output_shape_rejects(wrong, message):
    result = lab05.output_shape.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_output_shape_stub_is_not_done():
    assert lab05.output_shape.evaluate(_stub).status == "not done"


# ---------------------------------------------------------------- plane_and_lane


def good_mapping(block_idx, thread_idx, block_dim):
    t = block_idx * block_dim + thread_idx
    return t // 32, t % 32


def test_plane_and_lane_accepts_reference():
    result = lab05.plane_and_lane.evaluate(good_mapping)
    assert result, result.message


@pytest.mark.parametrize("wrong, message", [
    (lambda b, t, d: (t // 32, t % 32), "never computed.*assigned twice.*blockIdx.x \\* blockDim.x"),
    (lambda b, t, d: ((b * d + t) // 32, b * d + t), "lane.*a warp has lanes 0..31.*remainder"),
    (lambda b, t, d: ((b * 256 + t) // 32, t % 32), "never computed|assigned to"),
    (lambda b, t, d: ((b * d + t) % 32, (b * d + t) // 32), "lane|never computed|assigned"),
])
def test_plane_and_lane_rejects(wrong, message):
    result = lab05.plane_and_lane.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_plane_and_lane_stub_is_not_done():
    assert lab05.plane_and_lane.evaluate(_stub).status == "not done"


# ---------------------------------------------------------------- gem_node


def good_node(input_name, output_name, p, eps):
    import onnx

    return onnx.helper.make_node("GemPool", [input_name], [output_name], domain="ai.onnx.contrib", p=float(p),
                                 eps=float(eps), plugin_version="1", plugin_namespace="trtlab")


def _node(**changes):
    import onnx

    fields = dict(op_type="GemPool", domain="ai.onnx.contrib", p=3.0, eps=1e-6, plugin_version="1",
                  plugin_namespace="trtlab")
    fields.update(changes)
    drop = [k for k, v in fields.items() if v is None]
    for key in drop:
        del fields[key]
    op_type = fields.pop("op_type")
    return lambda i, o, p, eps: onnx.helper.make_node(op_type, [i], [o], **fields)


def test_gem_node_accepts_reference():
    result = lab05.gem_node.evaluate(good_node)
    assert result, result.message
    assert "plugin registry" in result.message or "compared as text" in result.message


@pytest.mark.parametrize("wrong, message", [
    (_node(plugin_namespace=None), "Plugin not found.*no plugin_namespace attribute"),
    (_node(op_type="gem_pool"), "Plugin not found.*op_type is 'gem_pool'"),
    (_node(plugin_version="2"), "plugin_version is '2'"),
    (_node(p=3), "attribute 'p' has type INT.*3.0, not 3"),
    (_node(domain=""), "ONNX Runtime Extensions.*ai.onnx.contrib"),
    (_node(p=2.0), "differs from GeM with p=3"),
    (lambda i, o, p, eps: "GemPool", "return an onnx.NodeProto"),
])
def test_gem_node_rejects(wrong, message):
    result = lab05.gem_node.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message


def test_gem_node_stub_is_not_done():
    assert lab05.gem_node.evaluate(_stub).status == "not done"


def test_every_exercise_has_three_hints():
    for ex in (lab05.output_shape, lab05.plane_and_lane, lab05.gem_node):
        assert len(ex.hints) == 3 and all(len(h) > 20 for h in ex.hints)
