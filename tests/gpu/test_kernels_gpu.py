"""trtlab.kernels on a GPU (marker ``gpu``; ``make test-gpu``): every kernel against its NumPy reference with the
max abs error stated and asserted, stream ordering, zero-copy hand-over, and the speed targets of issue 5.

Run on a GPU machine:  python -m pytest -p no:nbval -o addopts="" -m gpu tests/gpu/test_kernels_gpu.py -ra
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import skimage.data

from trtlab import kernels
from trtlab.errors import InputMismatch

pytestmark = pytest.mark.gpu

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Stated tolerances, in grey levels of the 0..255 input (the output is (x/255 - mean)/std).
FP32_LEVELS = 0.05   # float32 arithmetic and a float32 scale factor vs float64
FP16_REL = 2.0 ** -11  # fp16 rounding of the output (half an ulp), on top of the fp32 error


@pytest.fixture(scope="module")
def cp():
    from trtlab.env import capabilities

    assert capabilities().cupy_runs_kernels, "the gpu tests need CuPy running kernels: " + capabilities().summary()
    import cupy

    return cupy


def photo_bgr(name: str) -> np.ndarray:
    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, ::-1])


def frames(n: int, h: int = 1080, w: int = 1920, seed: int = 0) -> np.ndarray:
    """Video-like test frames: a real photo resized to h×w plus noise (never zeros: they hide unwritten pixels)."""
    import cv2

    rng = np.random.default_rng(seed)
    base = cv2.resize(photo_bgr("astronaut"), (w, h), interpolation=cv2.INTER_LINEAR).astype(np.int16)
    return np.stack([np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8) for _ in range(n)])


def check(got, expected, atol: float, rtol: float = 0.0, what: str = "") -> float:
    got = got.get() if hasattr(got, "get") else np.asarray(got)
    got = got.astype(np.float64)
    assert np.isfinite(got).all(), f"{what}: NaN in the output (a pixel was never written)"
    err = np.abs(got - expected)
    allowed = atol + rtol * np.abs(expected)
    print(f"{what}: max abs error {err.max():.3g} (allowed {allowed.max():.3g})")
    assert (err <= allowed).all(), f"{what}: max abs error {err.max():.3g} > allowed; worst at " \
                                   f"{np.unravel_index(np.argmax(err - allowed), err.shape)}"
    return float(err.max())


def atol_for(levels: float, std=STD) -> float:
    return levels / 255 / min(std)


# ---------------------------------------------------------------- fused pre-processing


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket"])
@pytest.mark.parametrize("out_hw", [(224, 224), (300, 533), (640, 960), (37, 100)])
def test_preprocess_fp32_matches_reference(cp, name, out_hw):
    image = photo_bgr(name)
    out = cp.full((1, 3, *out_hw), np.nan, np.float32)  # poisoned: every pixel must be written
    kernels.preprocess(image, out_hw, mean=MEAN, std=STD, out=out)
    check(out, kernels.preprocess_ref(image, out_hw, mean=MEAN, std=STD), atol_for(FP32_LEVELS),
          what=f"preprocess fp32 {name}→{out_hw}")


@pytest.mark.parametrize("ppt,magic", [(1, 0), (2, 0), (4, 0), (8, 0), (4, 1), (8, 1)])
def test_preprocess_fp16_batched_1080p(cp, ppt, magic):
    batch = frames(4)
    for out_hw in ((224, 224), (540, 960)):
        out = cp.full((4, 3, *out_hw), np.nan, np.float16)
        kernels.preprocess(batch, out_hw, mean=MEAN, std=STD, dtype=np.float16, out=out, pixels_per_thread=ppt,
                           defines={"U8_MAGIC": magic}, method="direct")  # 540×960 would take the exact path
        check(out, kernels.preprocess_ref(batch, out_hw, mean=MEAN, std=STD), atol_for(FP32_LEVELS), FP16_REL,
              what=f"preprocess fp16 4×1080p→{out_hw} ({ppt} px/thread, u8 magic {magic})")


@pytest.mark.parametrize("method", ["auto", "direct", "tiled"])
def test_preprocess_same_size_2x_downscale_and_upscale(cp, method):
    batch = frames(2)
    for out_hw in ((1080, 1920), (540, 960), (700, 1000), (1333, 2001), (541, 961)):
        out = cp.full((2, 3, *out_hw), np.nan, np.float16)
        kernels.preprocess(batch, out_hw, dtype=np.float16, out=out, method=method)
        check(out, kernels.preprocess_ref(batch, out_hw), atol_for(FP32_LEVELS, (1, 1, 1)), FP16_REL,
              what=f"preprocess fp16 2×1080p→{out_hw} ({method})")


# ---------------------------------------------------------------- exact-scale fast paths (same size, exact 2×)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("orders", [("BGR", "RGB"), ("RGB", "RGB")])
@pytest.mark.parametrize("src_hw,out_hw", [((1080, 1920), (1080, 1920)), ((1080, 1920), (540, 960)),
                                           ((720, 1280), (360, 640)), ((64, 48), (64, 48)), ((66, 16), (33, 8))])
def test_exact_scale_kernels_match_reference_and_general_kernel(cp, dtype, orders, src_hw, out_hw):
    batch = frames(3, *src_hw, seed=5)
    x = cp.asarray(batch)
    kind, reason = kernels.exact_scale(src_hw, out_hw, dtype=dtype, src_ptr=int(x.data.ptr), src_strides=x.strides)
    assert kind == ("same" if src_hw == out_hw else "half"), reason
    norm = dict(mean=MEAN, std=STD, input_order=orders[0], output_order=orders[1], dtype=dtype)
    fast = cp.full((3, 3, *out_hw), np.nan, dtype)  # poisoned: every pixel must be written
    kernels.preprocess(x, out_hw, **norm, out=fast, method="exact")
    expected = kernels.preprocess_ref(batch, out_hw, mean=MEAN, std=STD, input_order=orders[0],
                                      output_order=orders[1])
    check(fast, expected, atol_for(FP32_LEVELS), FP16_REL if dtype == np.float16 else 0.0,
          what=f"exact {kind} {np.dtype(dtype).name} 3×{src_hw}→{out_hw} {orders[0]}→{orders[1]}")
    general = kernels.preprocess(x, out_hw, **norm, method="direct")
    diff = float(cp.abs(fast.astype(cp.float64) - general.astype(cp.float64)).max())
    print(f"    exact vs general kernel: max difference {diff:.3g}")
    assert diff <= (2.0 ** -10 * 3 if dtype == np.float16 else 1e-6), "exact and general kernels disagree"
    auto = kernels.preprocess(x, out_hw, **norm)
    assert bool((auto == fast).all()), "method='auto' did not give the exact kernel's result"


def test_exact_scale_falls_back_when_unaligned_or_not_exact(cp):
    from trtlab.errors import InputMismatch

    batch = frames(2, 64, 96)
    x = cp.asarray(batch)
    crop = x[:, :, 1:65]  # 64 wide, but rows start 3 bytes in: not 16-byte aligned
    assert kernels.exact_scale((64, 64), (64, 64), src_ptr=int(crop.data.ptr), src_strides=crop.strides)[0] is None
    with pytest.raises(InputMismatch, match="16-byte aligned"):
        kernels.preprocess(crop, (64, 64), method="exact")
    got = kernels.preprocess(crop, (64, 64), mean=MEAN, std=STD)  # auto: the general kernel, same values
    check(got, kernels.preprocess_ref(batch[:, :, 1:65], (64, 64), mean=MEAN, std=STD), atol_for(FP32_LEVELS),
          what="auto on an unaligned crop (general kernel)")
    with pytest.raises(InputMismatch, match="neither the same size"):
        kernels.preprocess(x, (32, 50), method="exact")
    with pytest.raises(InputMismatch, match="learner"):
        kernels.preprocess(x, (32, 48), method="exact", launch=kernels.launch_config)


@pytest.mark.parametrize("name", ["chelsea", "coffee", "rocket"])
def test_tiled_kernel_on_odd_pitches_and_crops(cp, name):
    image = photo_bgr(name)  # widths 451, 600, 640: row pitches that are not multiples of 16
    on_gpu = cp.asarray(image)
    for crop in ((slice(None), slice(None)), (slice(3, -5), slice(7, -2))):
        part = on_gpu[crop]
        h, w = part.shape[:2]
        for out_hw in ((h, w), ((h + 1) // 2, (w + 1) // 2), (h * 3 // 2, w * 5 // 4)):
            got = kernels.preprocess(part, out_hw, mean=MEAN, std=STD, method="tiled")
            check(got, kernels.preprocess_ref(image[crop], out_hw, mean=MEAN, std=STD), atol_for(FP32_LEVELS),
                  what=f"tiled {name}{'' if crop[0] == slice(None) else ' crop'} {h}×{w}→{out_hw}")


def test_preprocess_rgb_input_and_strided_crop(cp):
    image = photo_bgr("coffee")
    on_gpu = cp.asarray(image)
    crop = on_gpu[37:301, 53:555]  # rows keep the full image's stride: the kernel takes the row pitch
    assert not crop.flags.c_contiguous
    got = kernels.preprocess(crop, (128, 256), input_order="RGB", output_order="RGB")
    check(got, kernels.preprocess_ref(image[37:301, 53:555], (128, 256), input_order="RGB"),
          atol_for(FP32_LEVELS, (1, 1, 1)), what="preprocess of a strided crop, RGB in")


def test_preprocess_rejects_bad_input(cp):
    from trtlab.errors import InputMismatch

    with pytest.raises(InputMismatch, match="uint8"):
        kernels.preprocess(cp.zeros((2, 8, 8, 3), cp.float32), (4, 4))
    with pytest.raises(InputMismatch, match="out: got shape"):
        kernels.preprocess(cp.zeros((2, 8, 8, 3), cp.uint8), (4, 4), out=cp.zeros((2, 3, 4, 5), cp.float32))


# ---------------------------------------------------------------- letterbox


@pytest.mark.parametrize("name", ["chelsea", "rocket", "astronaut"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_letterbox_matches_reference(cp, name, dtype):
    image = photo_bgr(name)
    out = cp.full((1, 3, 640, 640), np.nan, dtype)
    _, m = kernels.letterbox(image, (640, 640), border=114, mean=MEAN, std=STD, dtype=dtype, out=out)
    assert np.allclose(m, kernels.letterbox_matrix(image.shape[:2], (640, 640)))
    check(out, kernels.letterbox_ref(image, (640, 640), border=114, mean=MEAN, std=STD), atol_for(FP32_LEVELS),
          FP16_REL if dtype == np.float16 else 0.0, what=f"letterbox {np.dtype(dtype).name} {name}")


# ---------------------------------------------------------------- softmax + top-k


@pytest.mark.parametrize("shape,k", [((64, 1000), 5), ((257, 10), 3), ((3, kernels.MAX_CLASSES), 10),
                                     ((5, 7), 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_softmax_topk_matches_reference(cp, shape, k, dtype):
    logits = np.random.default_rng(1).normal(0, 5, shape).astype(dtype)
    top_p, top_i, probs = kernels.softmax_topk(cp.asarray(logits), k, return_probs=True)
    ref_p, ref_i, ref_probs = kernels.softmax_topk_ref(logits.astype(np.float64), k)
    check(probs, ref_probs, 1e-6, 1e-5, what=f"softmax {shape} {np.dtype(dtype).name}")
    check(top_p, ref_p, 1e-6, 1e-5, what=f"top-{k} probabilities {shape}")
    assert np.array_equal(top_i.get(), ref_i), "top-k indices differ from the reference"


def test_softmax_topk_ties_and_torch_input(cp):
    import torch

    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0]] * 4, device="cuda")
    top_p, top_i = kernels.softmax_topk(logits, 3)  # torch tensor in: DLPack, no copy
    assert top_i.get().tolist() == [[1, 2, 4]] * 4


# ---------------------------------------------------------------- streams and zero-copy


def test_runs_on_the_given_stream_after_pending_work(cp):
    """The kernel must wait for work queued earlier on the same (torch) stream: cupy#6104 is this bug."""
    import torch

    image = photo_bgr("chelsea")
    source = torch.from_numpy(image).cuda()
    target = torch.zeros_like(source)
    side = torch.cuda.Stream()
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        torch.cuda._sleep(200_000_000)  # ~0.1 s of GPU time before the copy lands
        target.copy_(source)
    out = kernels.preprocess(target, (224, 224), stream=side)
    side.synchronize()
    check(out, kernels.preprocess_ref(image, (224, 224)), atol_for(FP32_LEVELS, (1, 1, 1)),
          what="preprocess queued behind a copy on a torch stream")


def test_zero_copy_hand_over(cp):
    import torch

    out = kernels.preprocess(photo_bgr("astronaut"), (224, 224))
    as_torch = kernels.to_torch(out)
    assert as_torch.data_ptr() == kernels.device_pointer(out), "DLPack hand-over copied the data"
    view = kernels.from_device_pointer(kernels.device_pointer(as_torch), out.shape, out.dtype, owner=as_torch)
    assert int(view.data.ptr) == int(out.data.ptr) and bool((view == out).all())
    model = torch.nn.Conv2d(3, 4, 3).cuda().eval()
    with torch.no_grad():
        assert torch.isfinite(model(as_torch)).all()


# ---------------------------------------------------------------- the speed targets


def _gpu_ms(cp, fn, iters: int = 30, reps: int = 10) -> float:
    """Median GPU ms per call, ``reps`` back-to-back calls between CUDA events (launch overhead overlapped)."""
    timer = kernels.cuda_timer(fn, reps=reps)
    for _ in range(3):
        timer()
    return float(np.median([timer() for _ in range(iters)]))


def copy_bandwidth(cp, nbytes: int = 1 << 30) -> float:
    """Device-to-device copy, bytes read + written per second (the roofline's ceiling, measured now)."""
    a = cp.empty(nbytes, cp.uint8)
    a.fill(7)
    b = cp.empty_like(a)
    ms = _gpu_ms(cp, lambda: cp.cuda.runtime.memcpyAsync(b.data.ptr, a.data.ptr, nbytes, 3,
                                                         cp.cuda.get_current_stream().ptr), 10, 2)
    return 2 * nbytes / (ms / 1e3)


def test_roofline_target_70_percent_of_copy_bandwidth(cp):
    """Issue 5: on a case that touches every input byte, >= 70 % of the copy bandwidth (bytes read + written),
    both measured in this run; kernel times are 10 back-to-back calls between CUDA events (no launch gaps)."""
    copy = copy_bandwidth(cp)
    fractions = {}
    base = cp.asarray(frames(8))
    # batches of ~300 MB moved (~0.1 ms): Python's per-call launch cost (tens of us) stays below the kernel time
    for case, batch, out_hw in (("2x downscale 1080p->540x960 fp16", 32, (540, 960)),
                                ("same size 1080p fp16", 16, (1080, 1920))):
        x = cp.concatenate([base ^ cp.uint8(k) for k in range(batch // 8)])  # distinct frames, made on the GPU
        out = cp.empty((batch, 3, *out_hw), cp.float16)
        for method in ("exact", "direct", "tiled"):
            ms = _gpu_ms(cp, lambda: kernels.preprocess(x, out_hw, mean=MEAN, std=STD, dtype=np.float16, out=out,
                                                        method=method))
            name = f"{case} x{batch} ({method})"
            fractions[name] = (x.nbytes + out.nbytes) / (ms / 1e3) / copy
            print(f"roofline {name}: {(x.nbytes + out.nbytes) / 1e6:.0f} MB in {ms * 1e3:.1f} us = "
                  f"{fractions[name]:.0%} of the copy bandwidth ({copy / 1e9:.0f} GB/s)")
        del x, out
    best = max(fractions, key=fractions.get)
    print(f"roofline best: {best} at {fractions[best]:.0%} of the copy bandwidth (target 70 %)")
    assert fractions[best] >= 0.70, f"best case {best} reached {fractions[best]:.0%} of the copy bandwidth, " \
                                    "target >= 70% (issue 5)"


def test_faster_than_torch_and_20x_faster_than_cpu(cp):
    import cv2
    import torch
    import torch.nn.functional as F

    host = frames(32, seed=3)
    x = cp.asarray(host)
    out = cp.empty((32, 3, 224, 224), cp.float16)
    fused = _gpu_ms(cp, lambda: kernels.preprocess(x, (224, 224), mean=MEAN, std=STD, dtype=np.float16, out=out))
    t = torch.from_numpy(host).cuda()
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
    std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)

    def torch_chain():
        y = t.permute(0, 3, 1, 2).float()
        y = F.interpolate(y, size=(224, 224), mode="bilinear", align_corners=False, antialias=False)
        y = y.flip(1) / 255.0
        return ((y - mean) / std).half()

    torch_ms = _gpu_ms(cp, torch_chain)
    expected = kernels.preprocess_ref(host[:2], (224, 224), mean=MEAN, std=STD)
    check(torch_chain()[:2].float().cpu().numpy(), expected, atol_for(0.1), FP16_REL, what="torch chain")

    def cpu_path():
        batch = np.empty((32, 3, 224, 224), np.float32)
        for i, frame in enumerate(host):
            rgb = cv2.cvtColor(cv2.resize(frame, (224, 224), interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2RGB)
            batch[i] = ((rgb.astype(np.float32) / 255 - MEAN) / STD).transpose(2, 0, 1)
        return batch

    cpu_path()
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        cpu_path()
        runs.append((time.perf_counter() - t0) * 1e3)
    cpu_ms = float(np.median(runs))
    print(f"1080p→224 batch 32: fused {fused:.3f} ms, torch {torch_ms:.3f} ms ({torch_ms / fused:.1f}×), "
          f"CPU (OpenCV) {cpu_ms:.1f} ms ({cpu_ms / fused:.0f}×)")
    assert fused < torch_ms, f"fused kernel {fused:.3f} ms is not faster than torch's chain {torch_ms:.3f} ms"
    assert cpu_ms / fused >= 20, f"kernel only {cpu_ms / fused:.1f}× faster than the CPU path (target 20×)"


def test_streams_are_wrapped_without_a_gpu():
    """as_stream accepts CuPy streams (also its own ExternalStream again), torch-like streams and raw handles.
    Wrapping a handle touches no device, but needs CuPy, which only GPU machines install."""
    class TorchLikeStream:
        cuda_stream = 0x5150

    wrapped = kernels.as_stream(TorchLikeStream())
    assert wrapped.ptr == 0x5150 and kernels.as_stream(wrapped) is wrapped  # no re-wrapping on the second call
    assert kernels.as_stream(0x77).ptr == 0x77
    with pytest.raises(InputMismatch, match="expected None, a cupy stream"):
        kernels.as_stream("default")
