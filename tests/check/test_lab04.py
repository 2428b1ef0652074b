"""Lab 04 checkers accept the right answers and reject wrong ones with a message naming the mistake.

On a CPU machine the CUDA C exercise is compiled with NVRTC and evaluated by the checker's C-subset interpreter;
on a GPU machine the same tests also run the learner's code in the real kernel.
"""

import math

import numpy as np
import pytest

from trtlab import kernels
from trtlab.check import _c_eval, lab04
from trtlab.course import CODE_STUB, STUB

from conftest import assert_fails, assert_not_done, assert_passes

SIG = "__device__ void bilinear_taps(int dst, float scale, int size, int* i0, int* i1, float* w1) {\n"
REFERENCE = (kernels.KERNEL_DIR / "bilinear_taps.cuh").read_text()
#: the tail most answers share once src is known
TAIL = ("int lo = min((int)src, size - 1);", "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo;")


def taps(*body: str) -> str:
    return SIG + "".join(f"    {line}\n" for line in body) + "}\n"


# ---------------------------------------------------------------- bilinear_taps (CUDA C)


@pytest.mark.parametrize("source", [
    REFERENCE,
    taps("float src = (dst + 0.5f) * scale - 0.5f;", "src = fminf(fmaxf(src, 0.f), (float)(size - 1));",
         "int lo = __float2int_rd(src);", "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = src - (float)lo;"),
    taps("float src = max(0.0f, scale * (dst + 0.5f) - 0.5f);  // double literals and max() work too",
         "*i0 = min(static_cast<int>(floorf(src)), size - 1);", "*i1 = min(*i0 + 1, size - 1);",
         "*w1 = src - *i0;"),
    # the same value, rounded in another order: float32 steps by 2^-13 at 1920 px, the old 1e-4 bound refused it
    taps("float offset = 0.5f * scale - 0.5f;", "float src = fmaxf(dst * scale + offset, 0.0f);", *TAIL),
    taps("float src = fmaxf(fmaf((float)dst, scale, 0.5f * scale) - 0.5f, 0.0f);", *TAIL),
    taps("double src = fmax((dst + 0.5) * scale - 0.5, 0.0);  // all in double",
         "int lo = min((int)floor(src), size - 1);", "*i0 = lo;", "*i1 = min(lo + 1, size - 1);",
         "*w1 = (float)(src - lo);"),
], ids=["reference", "clamp-both-ends", "other-spelling", "rounding-order", "fmaf", "double"])
def test_bilinear_taps_accepts_correct_answers(source):
    assert_passes(lab04.bilinear_taps, source)


def test_bilinear_taps_accepts_the_solution_notebook_string_with_its_markers():
    body = REFERENCE.split("{", 1)[1].rsplit("}", 1)[0]
    marked = SIG + "    ### BEGIN SOLUTION" + body + "    ### END SOLUTION\n}\n"
    assert_passes(lab04.bilinear_taps, marked)


def test_bilinear_taps_untouched_stub_is_not_done():
    assert_not_done(lab04.bilinear_taps, taps(CODE_STUB, STUB))


@pytest.mark.parametrize("wrong, message", [
    (taps("float src = (dst + 0.5f) * scale - 0.5f", "*i0 = (int)src;", "*i1 = *i0 + 1;", "*w1 = src - *i0;"),
     r"NVRTC does not compile.*\n  line 3: "),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = min((int)src, size - 1);",
          "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo"),
     r"NVRTC does not compile.*line 7"),
    (taps("float src = dst * scale;", *TAIL), "corners, not centres.*half a pixel"),
    # integer division: 1 / 2 is 0 in C, which silently turns the centre convention into the corner one
    (taps("float src = fmaxf((dst + 1 / 2) * scale - 1 / 2, 0.0f);", *TAIL),
     r"corners, not centres.*`1 / 2`: in C that is integer division"),
    (taps("float n = size / scale;  // the output size", "float src = dst * (size - 1) / fmaxf(n - 1.0f, 1.0f);",
          *TAIL), "align_corners=True"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = (int)src;", "*i0 = lo;",
          "*i1 = lo + 1;", "*w1 = src - lo;"),
     r"reads outside the image.*\*i1 = 4, but valid indices are 0..3"),
    (taps("float src = (dst + 0.5f) * scale - 0.5f;", *TAIL), r"weight outside \[0, 1\].*below 0.*fmaxf"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = min(__float2int_rn(src), size - 1);",
          "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo;"),
     r"weight outside \[0, 1\].*i0 is above the source coordinate.*round src down.*not to the nearest"),
    (taps("int src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", *TAIL),
     r"\*w1 is 0 for every output pixel.*nearest-neighbour.*declared `int`"),
    (taps("float src = fmaxf((dst + 0.5f) * 2.0f - 0.5f, 0.0f);  // the scale of one example", *TAIL),
     r"input size 4 → output size 10, output index 2: you blend input pixels 3 and 3 .*expected 0.5000·pixel 0 "
     r"\+ 0.5000·pixel 1 \(off by 1, more than float32 rounding allows"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", *TAIL[:3], "*w1 = 1.0f - (src - lo);"),
     "weights are swapped"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", *TAIL[:3]), r"never writes \*w1"),
    (SIG.replace("float scale", "double scale") + "  *i0 = 0; *i1 = 0; *w1 = 0.f;\n}\n", "keep the signature"),
    (42, "expected the CUDA C source of bilinear_taps as a string, got int"),
], ids=["missing-semicolon", "missing-semicolon-last", "top-left-convention", "integer-division", "align-corners",
        "no-right-clamp", "no-left-clamp", "round-to-nearest", "int-src", "hard-coded-scale", "swapped-weights",
        "missing-output", "changed-signature", "not-a-string"])
def test_bilinear_taps_rejects(wrong, message):
    assert_fails(lab04.bilinear_taps, wrong, message)


def test_bilinear_taps_explains_what_the_cpu_check_cannot_evaluate():
    with_if = taps("float src = (dst + 0.5f) * scale - 0.5f;", "if (src < 0) src = 0;", "*i0 = (int)src;",
                   "*i1 = min(*i0 + 1, size - 1);", "*w1 = src - *i0;")
    assert_fails(lab04.bilinear_taps, with_if, "cannot evaluate.*instead of if")


def _weight_error(source, size, out_size):
    d = np.arange(out_size)
    scale = float(np.float32(size / out_size))
    got = _c_eval.evaluate_taps(source, d, scale, size)
    mine = lab04._weights(got["i0"].astype(int), got["i1"].astype(int), got["w1"].astype(np.float64), size)
    return float(np.abs(mine - lab04._weights(*kernels.bilinear_taps_ref(d, scale, size), size)).max())


def test_tolerance_is_float32_rounding_of_the_coordinates():
    """The bound is wider than float32's own step at 1920 px (the old 1e-4 was not), and a correct formula rounded in
    another order needs it: its error at 1080 → 224 is above 1e-4 but inside the bound."""
    assert lab04.taps_tolerance(1920, 960) == pytest.approx(4 * 1920 * 2.0 ** -23)
    assert lab04.taps_tolerance(1920, 960) > np.spacing(np.float32(1919.0))
    reordered = taps("float offset = 0.5f * scale - 0.5f;", "float src = fmaxf(dst * scale + offset, 0.0f);", *TAIL)
    errors = {case: _weight_error(reordered, *case) for case in lab04.SIZE_CASES}
    assert max(errors.values()) > 1e-4
    assert all(err <= lab04.taps_tolerance(*case) for case, err in errors.items()), errors


def test_tolerance_separates_every_named_mistake_from_the_reference():
    """Where a wrong convention differs from the reference, it differs by far more than the tolerance (≥ 10×)."""
    for size, out_size in lab04.SIZE_CASES:
        d = np.arange(out_size)
        reference = lab04._weights(*kernels.bilinear_taps_ref(d, size / out_size, size), size)
        for name, wrong in lab04._conventions(out_size, size).items():
            gap = np.abs(wrong - reference).max()
            assert gap < 1e-9 or gap > 10 * lab04.taps_tolerance(size, out_size), (name, size, out_size, gap)


def test_kernel_tolerance_follows_the_image_size():
    image = np.zeros((300, 451, 3), np.uint8)
    assert lab04.kernel_tolerance(image, (480, 640)) == pytest.approx(2 * 5 * 640 * 2.0 ** -23 + 8 * 2.0 ** -23)


def test_c_interpreter_follows_c_semantics():
    src = taps("int a = 7 / 2;", "float b = 7 / 2.0f;", "int c = (int)-2.5f;", "int d = -7 % 3;",
               "*i0 = a + d;", "*i1 = c;", "*w1 = b;")
    got = _c_eval.evaluate_taps(src, np.arange(1), 1.0, 4)
    assert got["i0"][0] == 3 + (-1) and got["i1"][0] == -2 and got["w1"][0] == 3.5


def test_c_interpreter_rounds_float_arithmetic_to_float32():
    src = taps("float a = 16777216.0f + 1.0f;", "double b = 16777216.0 + 1.0;", "*i0 = (int)(a - 16777216.0f);",
               "*i1 = (int)(b - 16777216.0);", "*w1 = fmaf(3.0f, 0.5f, 0.25f);")
    got = _c_eval.evaluate_taps(src, np.arange(1), 1.0, 4)
    assert got["i0"][0] == 0 and got["i1"][0] == 1 and got["w1"][0] == 1.75  # 2^24 + 1 is not a float32


# ---------------------------------------------------------------- launch_config


def reference_launch(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    return kernels.launch_config(batch, out_hw, block=block, pixels_per_thread=pixels_per_thread)


def with_math_ceil(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    rows, cols = out_hw
    return [math.ceil(cols / (block[0] * pixels_per_thread)), math.ceil(rows / block[1]), batch], [*block, 1]


def with_numpy(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    size = np.array([out_hw[1], out_hw[0]])
    tile = np.array([block[0] * pixels_per_thread, block[1]])
    grid = (size + tile - 1) // tile  # np.int64 entries
    return (*grid, batch), (*block, 1)


@pytest.mark.parametrize("answer", [reference_launch, with_math_ceil, with_numpy],
                         ids=["reference", "math-ceil-lists", "numpy-ints"])
def test_launch_config_accepts_correct_answers(answer):
    assert_passes(lab04.launch_config, answer)


def test_launch_config_untouched_stub_is_not_done():
    def stub(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab04.launch_config, stub)


def test_launch_config_hanging_function_fails_within_the_time_limit(fails_within_limit):
    fails_within_limit(lab04.launch_config)


def floor_division(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (w // (block[0] * pixels_per_thread), h // block[1], batch), (*block, 1)


def ignores_pixels_per_thread(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (-(-w // block[0]), -(-h // block[1]), batch), (*block, 1)


def swapped_axes(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (-(-h // (block[0] * pixels_per_thread)), -(-w // block[1]), batch), (*block, 1)


def batch_in_x(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (-(-w // (block[0] * pixels_per_thread)) * batch, -(-h // block[1]), 1), (*block, 1)


def other_block(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    return reference_launch(batch, out_hw, block=(16, 16), pixels_per_thread=pixels_per_thread)


def always_plus_one(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (w // (block[0] * pixels_per_thread) + 1, h // block[1] + 1, batch), (*block, 1)


def numpy_ceil(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (np.ceil(w / (block[0] * pixels_per_thread)), np.ceil(h / block[1]), batch), (*block, 1)


def true_division(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    h, w = out_hw
    return (w / (block[0] * pixels_per_thread), h / block[1], batch), (*block, 1)


def hard_coded_batch(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    grid, blk = reference_launch(1, out_hw, block=block, pixels_per_thread=pixels_per_thread)
    return grid, blk


@pytest.mark.parametrize("wrong, message", [
    (floor_division, "unwritten: round the division up"),
    (ignores_pixels_per_thread, "no pixel to write.*each thread writes 2 pixels"),
    (swapped_axes, "x and y swapped.*out_hw is \\(height, width\\)"),
    (batch_in_x, "grid z is 1, expected the batch size 32"),
    (other_block, "use the block you were given"),
    (always_plus_one,
     r"output 224×224.*grid \(4, 29, 1\), expected \(4, 28, 1\).*no pixel to write.*`n // t \+ 1` adds a block"),
    (numpy_ceil, "holds floats; grid and block sizes are integers.*np.ceil"),
    (lambda batch, out_hw, *, block, pixels_per_thread: (reference_launch(
        batch, out_hw, block=block, pixels_per_thread=pixels_per_thread)[0], block), r"block \(32, 8\) has 2 "
     r"entries; give all three"),
    (true_division, r"holds 3.5, not a whole number: `/` is true division"),
    (hard_coded_batch, "grid z is 1, expected the batch size 32"),
    (lambda batch, out_hw, **kw: 7, "expected \\(grid, block\\)"),
], ids=["floor-division", "ignores-pixels-per-thread", "swapped-axes", "batch-in-x", "other-block",
        "always-plus-one", "numpy-ceil-floats", "two-entry-block", "true-division", "hard-coded-batch", "not-a-pair"])
def test_launch_config_rejects(wrong, message):
    assert_fails(lab04.launch_config, wrong, message)


def test_verdicts_and_hints_in_chinese_when_asked():
    """Real mistakes (the corner convention, an `if` the CPU check cannot evaluate, a grid rounded down) get Chinese
    verdicts and hints under set_language("zh_CN"), with the code and numbers unchanged; English after "en"."""
    from trtlab import i18n

    top_left = taps("float src = dst * scale;", *TAIL)
    with_if = taps("float src = (dst + 0.5f) * scale - 0.5f;", "if (src < 0) src = 0;", "*i0 = (int)src;",
                   "*i1 = min(*i0 + 1, size - 1);", "*w1 = src - *i0;")
    try:
        i18n.set_language("zh_CN")
        verdict = lab04.bilinear_taps.evaluate(top_left).message
        assert verdict.startswith("输入尺寸 4 → 输出尺寸 10：你把输出像素 d 映射到输入坐标 d * scale"), verdict
        assert "src = (d + 0.5) * scale - 0.5" in verdict and "卡住了" in verdict, verdict
        cannot = lab04.bilinear_taps.evaluate(with_if).message  # the interpreter's (_c_eval) message, in Chinese
        assert "CPU 检查无法求值 `if (src < 0) src = 0`（请把函数体写成简单的赋值" in cannot, cannot
        launch = lab04.launch_config.evaluate(floor_division).message
        assert launch.startswith("批大小 1，输出 224×224，线程块 (32, 8)，每个线程 2 个像素：grid (3, 28, 1)"), launch
        assert "没有被写入：除法要向上取整。" in launch, launch
        assert lab04.launch_config.hint(2).startswith("💡 提示 2/3（lab04.launch_config）：要向上取整")
        assert lab04.bilinear_taps.shown_title == "双线性采样的索引计算（CUDA C）"
        i18n.set_language("en")
        assert lab04.bilinear_taps.evaluate(top_left).message.startswith("input size 4 → output size 10: you map")
        assert lab04.launch_config.hint(2).startswith("💡 hint 2/3 for lab04.launch_config: Round up")
    finally:
        i18n.set_language(None)
