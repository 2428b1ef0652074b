"""Lab 04 checkers accept the right answers and reject wrong ones with a message naming the mistake.

On a CPU machine the CUDA C exercise is compiled with NVRTC and evaluated by the checker's C-subset interpreter;
on a GPU machine the same tests also run the learner's code in the real kernel.
"""

import re

import pytest

from trtlab import kernels
from trtlab.check import lab04
from trtlab.course import STUB

SIG = "__device__ void bilinear_taps(int dst, float scale, int size, int* i0, int* i1, float* w1) {\n"
REFERENCE = (kernels.KERNEL_DIR / "bilinear_taps.cuh").read_text()


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
], ids=["reference", "clamp-both-ends", "other-spelling"])
def test_bilinear_taps_accepts_correct_answers(source):
    result = lab04.bilinear_taps.evaluate(source)
    assert result, result.message


def test_bilinear_taps_accepts_the_solution_notebook_string_with_its_markers():
    body = REFERENCE.split("{", 1)[1].rsplit("}", 1)[0]
    marked = SIG + "    ### BEGIN SOLUTION" + body + "    ### END SOLUTION\n}\n"
    result = lab04.bilinear_taps.evaluate(marked)
    assert result, result.message


def test_bilinear_taps_untouched_stub_is_not_done():
    stub = taps("# YOUR CODE HERE", STUB)
    assert lab04.bilinear_taps.evaluate(stub).status == "not done"


@pytest.mark.parametrize("wrong, message", [
    (taps("float src = (dst + 0.5f) * scale - 0.5f", "*i0 = (int)src;", "*i1 = *i0 + 1;", "*w1 = src - *i0;"),
     r"NVRTC does not compile.*\n  line 3: "),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = min((int)src, size - 1);",
          "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo"),
     r"NVRTC does not compile.*line 7"),
    (taps("float src = dst * scale;", "int lo = min((int)src, size - 1);", "*i0 = lo;",
          "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo;"),
     "corners, not centres.*half a pixel"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = (int)src;", "*i0 = lo;",
          "*i1 = lo + 1;", "*w1 = src - lo;"),
     r"reads outside the image.*\*i1 = 4, but valid indices are 0..3"),
    (taps("float src = (dst + 0.5f) * scale - 0.5f;", "int lo = min((int)src, size - 1);", "*i0 = lo;",
          "*i1 = min(lo + 1, size - 1);", "*w1 = src - lo;"),
     r"weight outside \[0, 1\].*below 0.*fmaxf"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = min((int)src, size - 1);",
          "*i0 = lo;", "*i1 = min(lo + 1, size - 1);", "*w1 = 1.0f - (src - lo);"),
     "weights are swapped"),
    (taps("float src = fmaxf((dst + 0.5f) * scale - 0.5f, 0.0f);", "int lo = min((int)src, size - 1);",
          "*i0 = lo;", "*i1 = min(lo + 1, size - 1);"),
     r"never writes \*w1"),
    (SIG.replace("float scale", "double scale") + "  *i0 = 0; *i1 = 0; *w1 = 0.f;\n}\n", "keep the signature"),
], ids=["missing-semicolon", "missing-semicolon-last", "top-left-convention", "no-right-clamp", "no-left-clamp",
        "swapped-weights", "missing-output", "changed-signature"])
def test_bilinear_taps_rejects(wrong, message):
    result = lab04.bilinear_taps.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message


def test_bilinear_taps_explains_what_the_cpu_check_cannot_evaluate():
    with_if = taps("float src = (dst + 0.5f) * scale - 0.5f;", "if (src < 0) src = 0;", "*i0 = (int)src;",
                   "*i1 = min(*i0 + 1, size - 1);", "*w1 = src - *i0;")
    result = lab04.bilinear_taps.evaluate(with_if)
    assert result.status == "failed" and "instead of if" in result.message


def test_c_interpreter_follows_c_semantics():
    import numpy as np

    src = taps("int a = 7 / 2;", "float b = 7 / 2.0f;", "int c = (int)-2.5f;", "int d = -7 % 3;",
               "*i0 = a + d;", "*i1 = c;", "*w1 = b;")
    got = lab04.evaluate_taps(src, np.arange(1), 1.0, 4)
    assert got["i0"][0] == 3 + (-1) and got["i1"][0] == -2 and got["w1"][0] == 3.5


# ---------------------------------------------------------------- launch_config


def reference_launch(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
    return kernels.launch_config(batch, out_hw, block=block, pixels_per_thread=pixels_per_thread)


def test_launch_config_accepts_reference():
    result = lab04.launch_config.evaluate(reference_launch)
    assert result, result.message


def test_launch_config_untouched_stub_is_not_done():
    def stub(batch, out_hw, *, block=(32, 8), pixels_per_thread=2):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert lab04.launch_config.evaluate(stub).status == "not done"


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


@pytest.mark.parametrize("wrong, message", [
    (floor_division, "unwritten: round the division up"),
    (ignores_pixels_per_thread, "no pixel to write.*each thread writes 2 pixels"),
    (swapped_axes, "x and y swapped"),
    (batch_in_x, "grid z is 1, expected the batch size|no pixel to write"),
    (other_block, "use the block you were given"),
    (lambda batch, out_hw, **kw: 7, "expected \\(grid, block\\)"),
])
def test_launch_config_rejects(wrong, message):
    result = lab04.launch_config.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message, re.S), result.message
