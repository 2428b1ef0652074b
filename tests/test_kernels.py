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
                                                     "preprocess_tiled_f16", "preprocess_same_f32",
                                                     "preprocess_same_f16", "preprocess_half_f32",
                                                     "preprocess_half_f16", "letterbox_f32", "letterbox_f16"}
    assert set(results["postprocess.cu"].kernels) == {"softmax_topk_f32", "softmax_topk_f16"}


@pytest.mark.parametrize("ppt", [1, 2, 4, 8])
@pytest.mark.parametrize("magic", [0, 1])
def test_preprocess_compiles_for_every_variant(ppt, magic):
    options = [f"-DPIXELS_PER_THREAD={ppt}", f"-DU8_MAGIC={magic}"]
    assert kernels.compile_source(kernels.kernel_source("preprocess.cu"), options=options)


@pytest.mark.parametrize("arch", ["compute_75", "compute_80", "compute_90"])
def test_exact_scale_kernels_compile_with_wide_accesses(arch):
    """The exact-scale kernels compile for every architecture (sm_75 takes the two-conversion fp16 path) and use
    16-byte loads and stores, never local memory (a spilled register array would defeat the point)."""
    result = kernels.compile_source(kernels.kernel_source("preprocess.cu"), arch=arch)
    assert result, result.log
    for name in ("preprocess_same_f16", "preprocess_half_f16", "preprocess_same_f32", "preprocess_half_f32"):
        start = result.ptx.index(f".entry {name}")
        body = result.ptx[start:result.ptx.find(".entry", start + 10) % (len(result.ptx) + 1)]
        assert "ld.global.nc.v4.u32" in body and "st.global.v4" in body, f"{name}: no 16-byte loads/stores"
        assert "ld.global.u8" not in body and ".local" not in body, f"{name}: byte loads or local memory"
        assert ("cvt.rn.f16x2.f32" in body) == (arch != "compute_75" and name.endswith("f16")), name


def test_exact_scale_geometry_and_alignment():
    assert kernels.exact_scale((1080, 1920), (1080, 1920))[0] == "same"
    assert kernels.exact_scale((1080, 1920), (540, 960), dtype=np.float16)[0] == "half"
    assert kernels.exact_scale((720, 1280), (360, 640))[0] == "half"
    for src, dst, why in (((1080, 1920), (224, 224), "neither"), ((1081, 1920), (540, 960), "neither"),
                          ((100, 100), (100, 100), "multiple of 16"), ((100, 100), (50, 50), "multiple of 8")):
        kind, reason = kernels.exact_scale(src, dst)
        assert kind is None and why in reason, reason
    kind, reason = kernels.exact_scale((64, 64), (64, 64), src_ptr=3, src_strides=(64 * 192, 192, 3))
    assert kind is None and "16-byte aligned" in reason
    kind, reason = kernels.exact_scale((64, 64), (64, 64), dst_ptr=8)
    assert kind is None and "output rows" in reason


def test_exact_scales_are_identity_and_2x2_mean_in_the_reference():
    """What the fast kernels rely on: at scale 1 the bilinear sample is the pixel itself, at scale 2 it is the
    exact mean of a 2×2 block (weights ½ on both axes), with the stated convention."""
    image = photo_bgr("coffee")[:400, :600]
    assert np.array_equal(kernels.resize_bilinear_ref(image, (400, 600)), image.astype(np.float64))
    blocks = image.astype(np.float64).reshape(200, 2, 300, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(kernels.resize_bilinear_ref(image, (200, 300)), blocks)
    as_float = cv2.resize(image.astype(np.float32), (300, 200), interpolation=cv2.INTER_LINEAR)
    assert np.abs(as_float - blocks).max() < 1e-4  # OpenCV agrees


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
    assert np.allclose(out[0, :, :150], 114 / 255)
    assert np.allclose(out[0, :, 170:470, 1:-1], 200 / 255)  # columns 0 and -1 blend with the border, as cv2 does


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


def test_exercise_markers_are_blanked_keeping_line_numbers():
    text = "a\n    ### BEGIN SOLUTION\nb\n    ### END SOLUTION\nc"
    assert kernels.clean_exercise_source(text).split("\n") == ["a", "", "b", "", "c"]


# ---------------------------------------------------------------- wrapper arguments vs kernel signatures (no GPU)


def _ptx_params(ptx: str, entry: str) -> list[str]:
    import re

    block = re.search(rf"\.entry {entry}\((.*?)\)", ptx, re.S).group(1)
    return re.findall(r"\.param \.(\w+)", block)


def _arg_type(arg) -> str:
    if isinstance(arg, np.ndarray):
        return "u64"  # a device pointer
    return {np.dtype(np.int32): "u32", np.dtype(np.int64): "u64", np.dtype(np.uint64): "u64",
            np.dtype(np.float32): "f32"}[np.asarray(arg).dtype]


@pytest.mark.parametrize("call", ["direct", "tiled", "letterbox", "softmax_topk"])
def test_wrappers_pass_what_the_kernels_declare(monkeypatch, call):
    """Each wrapper's launch arguments match its kernel's PTX parameters in number and type, checked on the CPU by
    replacing CuPy's launch with a recorder (the GPU tests check the values)."""
    import contextlib

    launches = []

    class Module:
        def get_function(self, name):
            return lambda grid, block, args, **kw: launches.append((name, grid, block, args))

    class FakeCupy:
        float32, int32 = np.float32, np.int32
        empty = staticmethod(np.empty)

    from trtlab.kernels import gpu

    monkeypatch.setattr(gpu, "require_gpu", lambda what="": FakeCupy)
    monkeypatch.setattr(gpu, "load_module", lambda *a, **k: Module())
    monkeypatch.setattr(gpu, "as_stream", lambda stream=None: contextlib.nullcontext())
    monkeypatch.setattr(gpu, "as_device_array", lambda x, stream=None: np.asarray(x))
    monkeypatch.setattr(gpu, "_output", lambda out, shape, dtype: np.empty(shape, dtype))
    images = np.zeros((2, 40, 60, 3), np.uint8)
    if call in ("direct", "tiled"):
        kernels.preprocess(images, (30, 50), mean=(0.1, 0.2, 0.3), std=(0.5, 0.5, 0.5), dtype=np.float16,
                           method=call)
    elif call == "letterbox":
        kernels.letterbox(images, (64, 64), dtype=np.float16)
    else:
        kernels.softmax_topk(np.zeros((4, 10), np.float32), 3)
    (name, grid, block, args), = launches
    ptx = kernels.compile_all()["postprocess.cu" if call == "softmax_topk" else "preprocess.cu"].ptx
    assert [_arg_type(a) for a in args] == _ptx_params(ptx, name), name
    assert all(int(g) >= 1 for g in grid) and int(np.prod(block)) <= 1024


def test_compiling_leaves_python_s_shared_bytes_alone():
    """NVRTC writes its log (size 1 when empty: the NUL) into the buffer it gets; a `b" " * size` buffer was CPython's
    shared one-byte object, and a clean compile turned every b" " in the process into b"\\x00" (Babel's extraction
    then failed on a file read with a NUL in it)."""
    from trtlab.kernels import compile as kernel_compile

    result = kernel_compile.compile_source('extern "C" __global__ void k(int* x) { x[0] = 1; }')
    assert result.ok and result.log == ""
    assert b" " == bytes([32]) and b" ".join([b"a", b"b"]) == b"a b"
