"""trtlab.kernels on the CPU: every kernel compiles with NVRTC, and the NumPy references (the ground truth the GPU
kernels are tested against) agree with OpenCV and torch on real photos bundled with scikit-image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from trtlab import kernels
from trtlab.errors import InputMismatch

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def photo_bgr(name: str) -> np.ndarray:
    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, ::-1])


# ---------------------------------------------------------------- NVRTC


def test_every_kernel_compiles_with_nvrtc():
    results = kernels.compile_all()
    assert set(results) == set(kernels.SOURCES)
    for name, result in results.items():
        assert result, f"{name} does not compile:\n{result.log}"
    assert set(results["preprocess.cu"].kernels) == {"preprocess_f32", "preprocess_f16", "preprocess_tiled_f32",
                                                     "preprocess_tiled_f16", "letterbox_f32", "letterbox_f16"}
    assert set(results["postprocess.cu"].kernels) == {"softmax_topk_f32", "softmax_topk_f16"}


@pytest.mark.parametrize("ppt", [1, 2, 4, 8])
@pytest.mark.parametrize("magic", [0, 1])
def test_preprocess_compiles_for_every_variant(ppt, magic):
    options = [f"-DPIXELS_PER_THREAD={ppt}", f"-DU8_MAGIC={magic}"]
    assert kernels.compile_source(kernels.kernel_source("preprocess.cu"), options=options)


def test_compile_errors_carry_line_numbers():
    source = 'extern "C" __global__ void k(float* x) {\n    float y = 1.0f\n    x[0] = y;\n}\n'
    result = kernels.compile_source(source, name="broken.cu")
    assert not result
    assert result.errors and result.errors[0][0] == 3, result.log
    with pytest.raises(kernels.KernelCompileError, match="line 3"):
        result.raise_for_errors()


def test_learner_taps_are_pasted_into_the_kernel():
    taps = (kernels.KERNEL_DIR / "bilinear_taps.cuh").read_text().replace("fmaxf(", "fmaxf_typo(")
    source = kernels.kernel_source("preprocess.cu", bilinear_taps=taps)
    assert kernels.TAPS_INCLUDE not in source and "fmaxf_typo" in source
    result = kernels.compile_source(source)
    assert not result and any("fmaxf_typo" in msg for _, msg in result.errors)


# ---------------------------------------------------------------- resize reference vs OpenCV and torch


def test_taps_match_the_stated_convention():
    i0, i1, w1 = kernels.bilinear_taps_ref(np.arange(4), 2.0, 8)  # exact 2x downscale: centres at 2d + 0.5
    assert i0.tolist() == [0, 2, 4, 6] and i1.tolist() == [1, 3, 5, 7] and np.allclose(w1, 0.5)
    i0, i1, w1 = kernels.bilinear_taps_ref(np.arange(4), 0.5, 2)  # 2x upscale: clamped at both edges
    assert i0.tolist() == [0, 0, 0, 1] and i1.tolist() == [1, 1, 1, 1]
    assert np.allclose(w1, [0.0, 0.25, 0.75, 0.25])


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("out_hw", [(224, 224), (300, 533), (37, 100)])
def test_resize_reference_matches_opencv_inter_linear(name, out_hw):
    image = photo_bgr(name)
    ref = kernels.resize_bilinear_ref(image, out_hw)
    as_float = cv2.resize(image.astype(np.float32), out_hw[::-1], interpolation=cv2.INTER_LINEAR)
    assert np.abs(ref - as_float).max() < 1e-3  # OpenCV in float32: the same function, to rounding
    as_uint8 = cv2.resize(image, out_hw[::-1], interpolation=cv2.INTER_LINEAR)
    diff = np.abs(ref - as_uint8)
    assert diff.max() <= 1.0 and diff.mean() < 0.3  # OpenCV uint8: fixed-point weights and rounding, < 1 level


@pytest.mark.parametrize("out_hw", [(224, 224), (700, 900)])
def test_resize_reference_matches_torch_align_corners_false(out_hw):
    import torch
    import torch.nn.functional as F

    image = photo_bgr("astronaut")
    x = torch.from_numpy(image.astype(np.float64)).permute(2, 0, 1)[None]
    expected = F.interpolate(x, size=out_hw, mode="bilinear", align_corners=False, antialias=False)
    assert np.abs(kernels.resize_bilinear_ref(image, out_hw) - expected[0].permute(1, 2, 0).numpy()).max() < 1e-9


def test_preprocess_reference_is_the_whole_chain():
    image = photo_bgr("chelsea")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    got = kernels.preprocess_ref(image, (224, 224), mean=mean, std=std, input_order="BGR", output_order="RGB")
    rgb = cv2.cvtColor(cv2.resize(image.astype(np.float32), (224, 224), interpolation=cv2.INTER_LINEAR),
                       cv2.COLOR_BGR2RGB)
    expected = ((rgb / 255.0 - mean) / std).transpose(2, 0, 1)[None]
    assert got.shape == (1, 3, 224, 224)
    assert np.abs(got - expected).max() < 1e-4
    same_order = kernels.preprocess_ref(image, (224, 224), input_order="BGR", output_order="BGR")
    assert np.allclose(same_order[0, ::-1], kernels.preprocess_ref(image, (224, 224))[0])


def test_preprocess_reference_rejects_bad_input():
    with pytest.raises(InputMismatch, match=r"expected \(H, W, 3\) uint8"):
        kernels.preprocess_ref(np.zeros((8, 8), np.uint8), (4, 4))
    with pytest.raises(InputMismatch, match="expected 'RGB' or 'BGR'"):
        kernels.preprocess_ref(np.zeros((8, 8, 3), np.uint8), (4, 4), input_order="YUV")


# ---------------------------------------------------------------- letterbox reference vs cv2.warpAffine


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket", "astronaut"])
@pytest.mark.parametrize("out_hw", [(640, 640), (320, 480)])
def test_letterbox_reference_matches_opencv_warp_affine(name, out_hw):
    image = photo_bgr(name)
    m = kernels.letterbox_matrix(image.shape[:2], out_hw)
    ref = kernels.warp_affine_ref(image, m, out_hw, border=114)
    kwargs = dict(flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(114, 114, 114))
    as_float = cv2.warpAffine(image.astype(np.float32), m, out_hw[::-1], **kwargs)
    assert np.abs(ref - as_float).max() < 0.02  # OpenCV quantises coordinates to 1/32 pixel
    as_uint8 = cv2.warpAffine(image, m, out_hw[::-1], **kwargs)
    assert np.abs(ref - as_uint8).max() <= 1.0


def test_letterbox_keeps_the_aspect_ratio_and_centres():
    m = kernels.letterbox_matrix((300, 600), (640, 640))  # 2:1 landscape → 640×320 band in the middle
    assert m[0, 0] == m[1, 1] == pytest.approx(640 / 600)
    corners = np.array([[-0.5, -0.5, 1], [599.5, 299.5, 1]]) @ m.T  # outer pixel edges
    assert np.allclose(corners, [[-0.5, 159.5], [639.5, 479.5]])
    out = kernels.letterbox_ref(np.full((300, 600, 3), 200, np.uint8), (640, 640), border=114)
    assert np.allclose(out[0, :, :150], 114 / 255) and np.allclose(out[0, :, 170:470, 1:-1], 200 / 255)  # column 0 blends with the border, as cv2 does


# ---------------------------------------------------------------- softmax + top-k reference vs torch


def test_softmax_topk_reference_matches_torch():
    import torch

    logits = np.random.default_rng(0).normal(0, 4, (16, 1000)).astype(np.float32)
    top_p, top_i, probs = kernels.softmax_topk_ref(logits, 5)
    t_probs = torch.softmax(torch.from_numpy(logits).double(), dim=1)
    t_p, t_i = torch.topk(t_probs, 5, dim=1)
    assert np.array_equal(top_i, t_i.numpy())
    assert np.abs(top_p - t_p.numpy()).max() < 1e-12 and np.abs(probs - t_probs.numpy()).max() < 1e-12


def test_softmax_topk_reference_breaks_ties_towards_the_smaller_index():
    _, idx, _ = kernels.softmax_topk_ref(np.array([[1.0, 3.0, 3.0, 0.0, 3.0]]), 3)
    assert idx.tolist() == [[1, 2, 4]]


def test_softmax_topk_reference_is_stable_for_large_logits():
    top_p, top_i, _ = kernels.softmax_topk_ref(np.array([[1000.0, 999.0, -1000.0]]), 2)
    assert np.all(np.isfinite(top_p)) and top_i.tolist() == [[0, 1]]


# ---------------------------------------------------------------- launch configuration, GPU guard


def test_launch_config_covers_the_output_exactly():
    grid, block = kernels.launch_config(3, (225, 223), block=(32, 8), pixels_per_thread=2)
    assert block == (32, 8, 1) and grid == (4, 29, 3)
    assert grid[0] * 32 * 2 >= 223 > (grid[0] - 1) * 32 * 2


def test_gpu_wrappers_say_they_need_a_gpu(monkeypatch):
    from trtlab import env
    from trtlab.errors import UnsupportedFeature

    fake = env.Capabilities(gpus=(), torch_cuda=False, cupy_runs_kernels=False, nvrtc_compiles=True, tensorrt=None,
                            tensorrt_rtx=None, onnxruntime_providers=(), triton_server=None)
    monkeypatch.setattr(env, "capabilities", lambda: fake)
    with pytest.raises(UnsupportedFeature, match="needs an NVIDIA GPU with CuPy"):
        kernels.preprocess(np.zeros((1, 8, 8, 3), np.uint8), (4, 4))
