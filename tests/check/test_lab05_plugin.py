"""Lab 05's plugin exercises (kernel device function, tensorrt.plugin functions, ONNX Runtime compute): other correct
styles pass, typical mistakes fail with their name, a stub is "not done", a hang or crash does not kill the process.

On a CPU machine the CUDA C runs in the checker's warp interpreter and the impl's launch is recorded; on a GPU
machine the same tests also run the learner's kernel for real."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pytest

from conftest import assert_fails, assert_not_done, assert_passes

try:  # imported here, on the main thread: a hang test's time limit must never land inside torch's first import
    import torch  # noqa: F401
except ImportError:
    pass
from trtlab.check import lab05
from trtlab.course import CODE_STUB, STUB
from trtlab.plugins import kernel
from trtlab.standin import trtp

SIG = "__device__ float gem_plane(const float* __restrict__ x, int hw, float p, float eps, int lane) {\n"
REFERENCE = kernel.GEM_PLANE_FILE.read_text()
LOOP = ("float acc = 0.0f;", "for (int i = lane; i < hw; i += WARP) {", "    acc += powf(fmaxf(x[i], eps), p);", "}")
TREE = ("for (int offset = 16; offset > 0; offset /= 2) {",
        "    acc += __shfl_down_sync(0xffffffff, acc, offset);", "}")


def plane(*body: str) -> str:
    return SIG + "".join(f"    {line}\n" for line in body) + "}\n"


# ---------------------------------------------------------------- gem_kernel (CUDA C)


@pytest.mark.parametrize("source", [
    REFERENCE,
    plane(*LOOP, "for (int m = 16; m >= 1; m /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, m);  // butterfly",
          "return powf(acc / hw, 1.0f / p);"),
    plane("float acc = 0.0f;", "int i = lane;", "while (i < hw) {", "    float v = fmaxf(x[i], eps);",
          "    acc += expf(p * logf(v));", "    i += warpSize;", "}", *TREE,
          "float total = __shfl_sync(0xffffffff, acc, 0);  // every lane gets lane 0's sum",
          "return powf(total / (float)hw, 1.0f / p);"),
], ids=["reference", "xor-butterfly", "while-exp-log-broadcast"])
def test_gem_kernel_accepts_other_correct_styles(source):
    assert_passes(lab05.gem_kernel, source)


def test_gem_kernel_accepts_the_solution_string_with_its_markers():
    body = REFERENCE.split("{", 1)[1].rsplit("}", 1)[0]
    assert_passes(lab05.gem_kernel, SIG + "    ### BEGIN SOLUTION" + body + "    ### END SOLUTION\n}\n")


@pytest.mark.parametrize("wrong, reason", [
    (plane(*LOOP, *TREE, "return acc / hw;"), "the root is missing"),
    (plane(*LOOP, "return powf(acc / hw, 1.0f / p);"), "only lane 0's partial sum"),
    (plane("float acc = 0.0f;", "for (int i = lane; i < hw; i += WARP) {", "    acc += powf(x[i], p);", "}", *TREE,
           "return powf(acc / hw, 1.0f / p);"), "NaN.*clamp with max\\(x, eps\\)"),
    (plane("float acc = 0.0f;", "for (int i = lane; i < hw; i += WARP) {", "    acc += powf(fmaxf(x[i], eps), p);",
           "    acc += __shfl_down_sync(0xffffffff, acc, 16);", "}", "return powf(acc / hw, 1.0f / p);"),
     "some lanes of the warp are not active.*after the loop"),
    (plane("float acc = 0.0f;", "for (int i = lane; i <= hw; i += WARP) {", "    acc += powf(fmaxf(x[i], eps), p);",
           "}", *TREE, "return powf(acc / hw, 1.0f / p);"), r"reads x\[\d+\], outside the plane.*i < hw"),
    (plane(*LOOP, *TREE, "return powf(acc / WARP, 1.0f / p);"), "divided by 32.*instead of hw"),
    (plane(*LOOP, *TREE, "return powf(acc / hw, 1.0f / p)"), r"NVRTC does not compile.*line \d+"),
])
def test_gem_kernel_names_each_mistake(wrong, reason):
    assert_fails(lab05.gem_kernel, wrong, reason)


def test_gem_kernel_stub_and_endless_loop(fails_within_limit):
    assert_not_done(lab05.gem_kernel, plane(CODE_STUB, STUB))
    endless = plane("float acc = 0.0f;", "for (int i = lane; i < hw; i += 0) {", "    acc += x[i];", "}",
                    "return acc;")
    assert_fails(lab05.gem_kernel, endless, "loop ran more than .* never becomes false")


def test_kernel_use_falls_back_to_the_course_kernel_with_an_announcement():
    try:
        assert "course's kernel" in kernel.use(plane("return 0.0f;"), checked=False)
        assert kernel.in_use() == "the course's"
        assert "YOUR gem_plane" in kernel.use(REFERENCE)
        assert kernel.in_use() == "yours" and REFERENCE.strip() in kernel.source()
    finally:
        kernel.use(None)
    assert kernel.GEM_PLANE_INCLUDE not in kernel.source() and "gem_plane(" in kernel.source()


# ---------------------------------------------------------------- plugin_functions (tensorrt.plugin)


def desc_tuple(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
    return trtp.from_shape_expr((x.shape_expr[0], x.shape_expr[1], 1, 1), dtype=x.dtype)


def desc_unpacked(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
    n, c, _h, _w = x.shape_expr
    out = x.like()
    out.shape_expr = trtp.ShapeExprs.from_tuple((n, c, 1, 1))
    return out


def impl_unpacked(x: trtp.Tensor, p: float, eps: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
    from trtlab import plugins

    n, c, h, w = x.shape
    plugins.kernel.launch(x.data_ptr, outputs[0].data_ptr, n * c, h * w, p, eps, stream)


def impl_keywords(x: trtp.Tensor, p: float, eps: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
    shape = tuple(x.shape)
    kernel.launch(x.data_ptr, outputs[0].data_ptr, planes=shape[0] * shape[1], hw=x.numel() // (shape[0] * shape[1]),
                  p=p, eps=eps, stream=stream)


def test_plugin_functions_accepts_other_correct_styles():
    result = assert_passes(lab05.plugin_functions, desc_tuple, impl=impl_unpacked)
    assert "stand-in" in result.message or "TensorRT's own" in result.message
    assert_passes(lab05.plugin_functions, desc_unpacked, impl=impl_keywords)


def _desc(make):
    def desc(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
        return make(x)
    return desc


def _impl(launch_args):
    def impl(x: trtp.Tensor, p: float, eps: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
        kernel.launch(*launch_args(x, p, eps, outputs, stream))
    return impl


def _args(x, p, eps, outputs, stream):
    n, c, h, w = x.shape
    return [x.data_ptr, outputs[0].data_ptr, n * c, h * w, p, eps, stream]


@pytest.mark.parametrize("desc, impl, reason", [
    (_desc(lambda x: trtp.from_shape_expr((x.shape_expr[1], 1, 1), dtype=x.dtype)), impl_unpacked,
     "batch dimension was dropped"),
    (_desc(lambda x: trtp.from_shape_expr((x.shape_expr[0], x.shape_expr[1], 1, 1), dtype=trtp.DataType.FLOAT)),
     impl_unpacked, "HALF input.*wrong dtype propagated"),
    (_desc(lambda x: trtp.from_shape_expr(tuple(x.shape_expr), dtype=x.dtype)), impl_unpacked, "not \\(N, C, 1, 1\\)"),
    (_desc(lambda x: trtp.from_shape_expr([x.shape_expr[0], x.shape_expr[1], 1, 1], dtype=x.dtype)), impl_unpacked,
     "converts a tuple"),
    (_desc(lambda x: trtp.from_shape_expr((int(x.shape_expr[0]), x.shape_expr[1], 1, 1), dtype=x.dtype)),
     impl_unpacked, "symbolic input shape.*never int"),
    (desc_tuple, _impl(lambda *a: _args(*a)[:6] + [0]), "wrong stream"),
    (desc_tuple, _impl(lambda *a: [_args(*a)[1], _args(*a)[0], *_args(*a)[2:]]), "pointers are swapped"),
    (desc_tuple, _impl(lambda x, *a: [*_args(x, *a)[:2], x.shape[1], *_args(x, *a)[3:]]),
     "wrong pointer/plane count"),
    (desc_tuple, _impl(lambda *a: _args(*a)[:4] + [3.0, 1e-6, _args(*a)[6]]), "pass the attributes through"),
])
def test_plugin_functions_names_each_mistake(desc, impl, reason):
    assert_fails(lab05.plugin_functions, desc, reason, impl=impl)


def test_plugin_functions_refuses_what_tensorrt_plugin_refuses():
    def unannotated(x, p, eps):
        return desc_tuple(x, p, eps)
    assert_fails(lab05.plugin_functions, unannotated, "refuses your functions.*type annotation", impl=impl_unpacked)

    def wrong_names(x: trtp.Tensor, p: float, eps: float, outs: Tuple[trtp.Tensor], s: int) -> None:
        pass
    assert_fails(lab05.plugin_functions, desc_tuple, "does not match the expected input arg schema", impl=wrong_names)


def test_plugin_functions_stub_crash_and_hang(fails_within_limit):
    def stub(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
        raise NotImplementedError("exercise not done yet: write your code here")
    assert_not_done(lab05.plugin_functions, stub, impl=impl_unpacked)

    def crash(x: trtp.Tensor, p: float, eps: float, outputs: Tuple[trtp.Tensor], stream: int) -> None:
        return 1 / 0
    assert_fails(lab05.plugin_functions, desc_tuple, "ZeroDivisionError", impl=crash)

    def hang(x: trtp.TensorDesc, p: float, eps: float) -> trtp.TensorDesc:
        while True:
            pass
    fails_within_limit(lab05.plugin_functions, hang, impl=impl_unpacked)


# ---------------------------------------------------------------- ort_compute


def gem_float64(x, p, eps):
    clamped = np.maximum(x.astype(np.float64), eps)
    return (np.mean(clamped ** p, axis=(2, 3), keepdims=True) ** (1.0 / p)).astype(np.float32)


def gem_reshaped(x, p, eps):
    n, c = x.shape[:2]
    flat = np.clip(x.reshape(n, c, -1).astype(np.float64), eps, None)
    return np.power(np.power(flat, p).sum(-1) / flat.shape[-1], 1 / p).reshape(n, c, 1, 1).astype(x.dtype)


def test_ort_compute_accepts_other_correct_styles():
    assert_passes(lab05.ort_compute, gem_float64)
    assert_passes(lab05.ort_compute, gem_reshaped)


@pytest.mark.parametrize("wrong, reason", [
    (lambda x, p, eps: gem_float64(x, p, eps).astype(np.float64), "returns float64.*float32"),
    (lambda x, p, eps: gem_float64(x, p, eps)[:, :, 0, 0], "keepdims is missing"),
    (lambda x, p, eps: np.mean(np.maximum(x, eps) ** p, axis=(1, 2), keepdims=True) ** (1 / p),
     "reduce over H and W, the axes \\(2, 3\\)"),
    (lambda x, p, eps: gem_float64(x, 1.0, eps), "p is not applied at all"),
    (lambda x, p, eps: (np.mean(x.astype(np.float64) ** p, axis=(2, 3), keepdims=True) ** (1 / p)).astype(np.float32),
     "NaN.*clamp|not clamped"),
])
def test_ort_compute_names_each_mistake(wrong, reason):
    assert_fails(lab05.ort_compute, wrong, reason)


def test_ort_compute_stub_and_hang(fails_within_limit):
    def stub(x, p, eps):
        raise NotImplementedError("exercise not done yet: write your code here")
    assert_not_done(lab05.ort_compute, stub)
    fails_within_limit(lab05.ort_compute)


def test_new_exercises_have_three_hints():
    for ex in (lab05.gem_kernel, lab05.plugin_functions, lab05.ort_compute):
        assert len(ex.hints) == 3 and all(len(h) > 20 for h in ex.hints)


def test_verdicts_and_hints_in_chinese_when_asked():
    """The kernel checker's own diagnosis (a missing root), the warp interpreter's (a shuffle inside the loop), the
    tensorrt.plugin and ONNX Runtime checks speak Chinese under set_language("zh_CN"); English again after "en"."""
    from trtlab import i18n

    no_root = plane(*LOOP, *TREE, "return acc / hw;")
    shuffle_in_loop = plane("float acc = 0.0f;", "for (int i = lane; i < hw; i += WARP) {",
                            "    acc += powf(fmaxf(x[i], eps), p);",
                            "    acc += __shfl_down_sync(0xffffffff, acc, 16);", "}",
                            "return powf(acc / hw, 1.0f / p);")
    dropped_batch = _desc(lambda x: trtp.from_shape_expr((x.shape_expr[1], 1, 1), dtype=x.dtype))
    try:
        i18n.set_language("zh_CN")
        root = lab05.gem_kernel.evaluate(no_root).message
        assert root.startswith("输入 (2, 3, 7, 7)（H·W = 49），p=3，eps=1e-06：缺少开方"), root
        warp = lab05.gem_kernel.evaluate(shuffle_in_loop).message
        assert "调用 __shfl_down_sync(0xffffffff, ...) 时，线程束中有的 lane 处于非活动状态" in warp, warp
        desc = lab05.plugin_functions.evaluate(dropped_batch, impl=impl_unpacked).message
        assert "批次维被丢掉了" in desc and "N×C×1×1" in desc, desc
        ort = lab05.ort_compute.evaluate(lambda x, p, eps: x.mean(axis=(2, 3), keepdims=True)).message
        assert "（经由 ONNX Runtime）" in ort and "请对照公式 (max(x, eps)^p 在 H、W 上的均值)^(1/p)" in ort, ort
        assert lab05.gem_kernel.hint(1).startswith("💡 提示 1/3（lab05.gem_kernel）：32 个 lane 各自")
        assert lab05.ort_compute.shown_title == "ONNX Runtime 自定义算子的计算函数"
        i18n.set_language("en")
        assert lab05.gem_kernel.evaluate(no_root).message.startswith("input (2, 3, 7, 7) (H·W = 49), p=3, eps=1e-06: "
                                                                    "the root is missing")
        assert lab05.gem_kernel.hint(1).startswith("💡 hint 1/3 for lab05.gem_kernel: Each of the 32 lanes")
    finally:
        i18n.set_language(None)
