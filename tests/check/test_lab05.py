"""Lab 05 checkers judge what the answer does: other correct styles pass, typical mistakes fail with their name."""

from __future__ import annotations

import onnx

from conftest import assert_fails, assert_not_done, assert_passes
from trtlab.check import lab05


def _stub(*args, **kwargs):
    raise NotImplementedError("exercise not done yet: write your code here")


# ---------------------------------------------------------------- output_shape


def solution_shape(shape):
    dims = tuple(shape)
    if len(dims) != 4:
        raise ValueError(f"GeM pools N×C×H×W feature maps; got rank {len(dims)} (shape {dims})")
    return (dims[0], dims[1], 1, 1)


def unpacking_shape(shape):
    n, c, _h, _w = shape  # a wrong rank fails to unpack: a ValueError too
    return [n, c, 1, 1]


def assert_style_shape(shape):
    assert len(shape) == 4, "rank 4 expected"
    return tuple(list(shape[:2]) + [1] * 2)


def test_output_shape_accepts_other_correct_styles():
    assert_passes(lab05.output_shape, solution_shape)
    assert_passes(lab05.output_shape, unpacking_shape)
    assert_passes(lab05.output_shape, assert_style_shape)


def test_output_shape_names_each_mistake():
    ex = lab05.output_shape
    assert_fails(ex, lambda s: tuple(s), "returned the input shape.*x.like")
    assert_fails(ex, lambda s: tuple(s)[:2], "1×1 spatial dimensions are gone")
    assert_fails(ex, lambda s: (1, 1, s[0], s[1]), r"expected \(2, 512, 1, 1\)")
    assert_fails(ex, lambda s: (int(s[0]), int(s[1]), 1, 1), "symbolic dimensions.*never int")
    assert_fails(ex, lambda s: (s[0], s[1], 1.0, 1.0), "1.0 is a float.*write 1, not 1.0")
    assert_fails(ex, lambda s: (s[0], s[1], s[2] // s[2], s[3] // s[3]), "symbolic dimensions.*failed")
    assert_fails(ex, lambda s: (s[0], s[1], 1, 1), "rank-2 input.*instead of raising")
    assert_fails(ex, lambda s: (2, 512, 1, 1), r"for input \(1, 64, 7, 7\) you returned \(2, 512, 1, 1\)")
    assert_fails(ex, lambda s: 7, "return a tuple")


def test_output_shape_stub_and_hang(fails_within_limit):
    assert_not_done(lab05.output_shape, _stub)
    fails_within_limit(lab05.output_shape)


# ---------------------------------------------------------------- plane_and_lane


def solution_mapping(block_idx, thread_idx, block_dim):
    t = block_idx * block_dim + thread_idx
    return t // 32, t % 32


def test_plane_and_lane_accepts_other_correct_styles():
    assert_passes(lab05.plane_and_lane, solution_mapping)
    assert_passes(lab05.plane_and_lane, lambda b, t, d: divmod(b * d + t, 32))
    assert_passes(lab05.plane_and_lane, lambda b, t, d: ((b * d + t) >> 5, (b * d + t) & 31))
    # with blocks of whole warps, the lane inside the block equals the lane of the global index
    assert_passes(lab05.plane_and_lane, lambda b, t, d: (b * (d // 32) + t // 32, t % 32))
    assert_passes(lab05.plane_and_lane, lambda b, t, d: (int((b * d + t) / 32), (b * d + t) % 32))


def test_plane_and_lane_names_each_mistake():
    ex = lab05.plane_and_lane
    assert_fails(ex, lambda b, t, d: (t // 32, t % 32),
                 "never computed: every block computes the same planes.*blockIdx.x \\* blockDim.x")
    assert_fails(ex, lambda b, t, d: ((b * d + t) // 32, b * d + t), "lane.*a warp has lanes 0..31.*remainder")
    assert_fails(ex, lambda b, t, d: ((b * 256 + t) // 32, t % 32), "blocks of 128 threads.*never computed")
    assert_fails(ex, lambda b, t, d: ((b * d + t) / 32, (b * d + t) % 32), "a float.*`/` is true division.*`//`")
    assert_fails(ex, lambda b, t, d: (float((b * d + t) // 32), (b * d + t) % 32), "return ints, not floats")
    assert_fails(ex, lambda b, t, d: ((b * d + t) // 64, (b * d + t) % 32), "plane 0 got 64 threads.*Divide .* by 32")
    assert_fails(ex, lambda b, t, d: 3, "return a pair")


def test_plane_and_lane_stub_and_hang(fails_within_limit):
    assert_not_done(lab05.plane_and_lane, _stub)
    fails_within_limit(lab05.plane_and_lane)


# ---------------------------------------------------------------- gem_node


def solution_node(input_name, output_name, p, eps):
    return onnx.helper.make_node("GemPool", [input_name], [output_name], domain="ai.onnx.contrib",
                                 p=float(p), eps=float(eps), plugin_version="1", plugin_namespace="trtlab")


def node_from_the_package(input_name, output_name, p, eps):
    """The package's own constants and attribute builder, with a node name."""
    from trtlab import plugins

    return onnx.helper.make_node(plugins.PLUGIN_NAME, inputs=[input_name], outputs=[output_name], name="gem0",
                                 domain=plugins.ONNX_DOMAIN, **plugins.node_attributes(p, eps))


def node_from_nodeproto(input_name, output_name, p, eps):
    """A NodeProto filled in field by field with make_attribute."""
    node = onnx.NodeProto()
    node.op_type, node.domain = "GemPool", "ai.onnx.contrib"
    node.input.append(input_name)
    node.output.append(output_name)
    node.attribute.extend([onnx.helper.make_attribute("plugin_namespace", "trtlab"),
                           onnx.helper.make_attribute("plugin_version", "1"),
                           onnx.helper.make_attribute("eps", eps), onnx.helper.make_attribute("p", p)])
    return node


def _node(**changes):
    fields = dict(op_type="GemPool", domain="ai.onnx.contrib", plugin_version="1", plugin_namespace="trtlab")
    fields.update(changes)
    fields = {k: v for k, v in fields.items() if v is not None}
    op_type = fields.pop("op_type")

    def make(i, o, p, eps):
        return onnx.helper.make_node(op_type, [i], [o], p=float(p), eps=float(eps), **fields)
    return make


def test_gem_node_accepts_other_correct_styles():
    result = assert_passes(lab05.gem_node, solution_node)
    assert "plugin registry" in result.message or "compared as text" in result.message
    assert_passes(lab05.gem_node, node_from_the_package)
    assert_passes(lab05.gem_node, node_from_nodeproto)


def test_gem_node_names_each_mistake():
    ex = lab05.gem_node
    assert_fails(ex, _node(plugin_namespace=None), "Plugin not found.*no plugin_namespace attribute")
    assert_fails(ex, _node(op_type="gem_pool"), "Plugin not found.*op_type is 'gem_pool'")
    assert_fails(ex, _node(plugin_version="2"), "plugin_version is '2'")
    assert_fails(ex, _node(plugin_version=1), "plugin_version has type INT.*STRING.*in quotes")
    assert_fails(ex, lambda i, o, p, eps: onnx.helper.make_node(
        "GemPool", [i], [o], domain="ai.onnx.contrib", p=int(p), eps=float(eps), plugin_version="1",
        plugin_namespace="trtlab"), "attribute 'p' has type INT.*3.0, not 3")
    assert_fails(ex, _node(domain=""), "ONNX Runtime Extensions.*ai.onnx.contrib")
    assert_fails(ex, lambda i, o, p, eps: _node()(i, o, 3.0, 1e-6), "called with p=2.5.*do not hard-code")
    assert_fails(ex, lambda i, o, p, eps: _node()("x", "y", p, eps), "called with \\('backbone.*input_name")
    assert_fails(ex, lambda i, o, p, eps: "GemPool", "return an onnx.NodeProto")


def test_gem_node_stub_and_hang(fails_within_limit):
    assert_not_done(lab05.gem_node, _stub)
    fails_within_limit(lab05.gem_node)


def test_every_exercise_has_three_hints():
    for ex in (lab05.output_shape, lab05.plane_and_lane, lab05.gem_node):
        assert len(ex.hints) == 3 and all(len(h) > 20 for h in ex.hints)


def test_verdicts_and_hints_in_chinese_when_asked():
    """Real mistakes in the shape function, the index math and the ONNX node get Chinese verdicts and hints under
    set_language("zh_CN") (shapes, attribute names and "Plugin not found" unchanged); English again after "en"."""
    from trtlab import i18n

    try:
        i18n.set_language("zh_CN")
        shape = lab05.output_shape.evaluate(lambda s: tuple(s)).message
        assert shape.startswith("对输入 (2, 512, 2, 2)，你返回了输入的形状：那是 `x.like()`，只适用于逐元素算子"), shape
        lane = lab05.plane_and_lane.evaluate(lambda b, t, d: (t // 32, t % 32)).message
        assert "个平面时，平面 [" in lane and "每个线程块计算的都是同一批平面" in lane, lane
        node = lab05.gem_node.evaluate(_node(plugin_namespace=None)).message
        assert "的创建器：\"Plugin not found\"（找不到插件）。没有 plugin_namespace 属性" in node and "插件位于 'trtlab'" in node, node
        assert lab05.gem_node.hint(2).startswith("💡 提示 2/3（lab05.gem_node）：op_type 必须是插件名（GemPool）")
        assert lab05.plane_and_lane.shown_title == "核函数的索引计算：每个 (n, c) 平面一个线程束"
        i18n.set_language("en")
        assert lab05.output_shape.evaluate(lambda s: tuple(s)).message.startswith("for input (2, 512, 2, 2) you")
        assert lab05.gem_node.hint(2).startswith("💡 hint 2/3 for lab05.gem_node: op_type must be")
    finally:
        i18n.set_language(None)
