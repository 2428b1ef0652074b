"""The GemPool CUDA kernel on a real GPU against the PyTorch op (Lab 05). Marker ``gpu``: ``make test-gpu``.

    python -m pytest -p no:nbval -o addopts="" -m gpu -ra -s tests/gpu/test_plugins_gpu.py

``-s`` shows the measured max |Δ| per case. The TensorRT engine test is marked ``tensorrt`` only (not ``gpu``): it
needs TensorRT >= 10.6 as well as a GPU, and the H100 machine has no TensorRT; run it with ``-m tensorrt``."""

from __future__ import annotations

import numpy as np
import pytest

import cupy  # noqa: E402  - GPU mode needs CuPy: missing is a failure, not a skip
import torch  # noqa: E402

from trtlab import plugins  # noqa: E402
from trtlab.plugins import kernel, op  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _needs_cuda():
    assert torch.cuda.is_available(), "markers gpu/tensorrt: these tests need a CUDA GPU visible to torch"


CASES = [((2, 3, 4, 4), 3.0), ((1, 1, 1, 1), 3.0), ((64, 512, 2, 2), 3.0), ((8, 64, 7, 7), 3.0),
         ((3, 5, 33, 17), 2.0), ((256, 512, 7, 7), 4.5), ((5, 7, 13, 11), 1.0), ((1, 2048, 14, 14), 3.0)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape, p", CASES)
def test_kernel_matches_pytorch_op(shape, p):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(*shape, device="cuda", generator=g) * 3  # negatives are clamped to eps
    got = torch.from_dlpack(kernel.gem_pool_gpu(x, p, 1e-6))
    expected = op.gem_pool(x, p, 1e-6)
    torch.cuda.synchronize()
    err = (got - expected).abs().max().item()
    scale = expected.abs().max().item()
    print(f"GemPool {shape} p={p}: max |Δ| = {err:.3e} (max |y| = {scale:.3g})")
    assert got.shape == expected.shape
    assert err <= 1e-5 * max(scale, 1.0), f"kernel vs PyTorch: max |Δ| {err:.3e}"


@pytest.mark.gpu
def test_kernel_matches_float64_reference():
    x = np.random.default_rng(1).gamma(2.0, 2.0, size=(16, 256, 5, 5)).astype(np.float32)
    got = cupy.asnumpy(kernel.gem_pool_gpu(x))
    np.testing.assert_allclose(got, plugins.gem_pool_ref(x), rtol=2e-5, atol=1e-6)


@pytest.mark.gpu
def test_kernel_runs_on_a_torch_stream_and_into_a_given_buffer():
    x = torch.rand(32, 128, 6, 6, device="cuda")
    out = cupy.empty((32, 128, 1, 1), dtype=cupy.float32)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())  # x was written on the default stream
    with torch.cuda.stream(stream):
        kernel.gem_pool_gpu(x, out=out, stream=stream)
    stream.synchronize()
    torch.testing.assert_close(torch.from_dlpack(out), op.gem_pool(x), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_aot_entry_point_with_baked_constants():
    """The PTX that tensorrt.plugin.aot_impl embeds: (x, planes, hw, y) with p and eps compiled in."""
    x = torch.rand(4, 96, 9, 9, device="cuda") * 5
    y = torch.empty(4, 96, 1, 1, device="cuda")
    module = cupy.RawModule(code=kernel.source(), options=("--std=c++17", "-DGEM_P=2.5f", "-DGEM_EPS=1e-6f"))
    fn = module.get_function(kernel.AOT_KERNEL)
    planes, hw = 4 * 96, 81
    fn((plugins.launch_grid(planes),), (plugins.BLOCK,),
       (np.uint64(x.data_ptr()), np.int32(planes), np.int32(hw), np.uint64(y.data_ptr())))
    torch.cuda.synchronize()
    torch.testing.assert_close(y, op.gem_pool(x, 2.5, 1e-6), rtol=1e-5, atol=1e-6)


@pytest.mark.tensorrt
def test_tensorrt_engine_with_the_plugin_matches_pytorch(tmp_path):
    from trtlab.plugins import trt as trt_plugin

    info = trt_plugin.register_qdp()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(), op.GeM(3.0),
                                torch.nn.Flatten(), torch.nn.Linear(16, 4)).eval()
    path = op.export_gem_onnx(model, tmp_path / "tiny_gem.onnx", input_size=8)
    plan = trt_plugin.build_engine(path, prefer_aot=info.aot)
    x = np.random.default_rng(0).random((8, 3, 8, 8), dtype=np.float32)
    got = trt_plugin.infer(plan, x)
    with torch.no_grad():
        np.testing.assert_allclose(got, model(torch.from_numpy(x)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("p", [1.0, 2.5, 3.0, 4.0])
@pytest.mark.parametrize("shape", [(2, 3, 7, 7), (1, 4, 1, 1), (3, 2, 5, 13), (64, 512, 7, 7), (1, 3, 17, 31)])
def test_learner_solution_kernel_runs_on_the_gpu(shape, p):
    """The solution notebook's gem_plane (Lab 05 exercise 5), extracted from its cell, in the real kernel."""
    import json
    import re
    from pathlib import Path

    from trtlab.check._lab05_kernel import _gem64, gem_tolerance

    nb = json.loads((Path(__file__).resolve().parents[2] / "solutions" / "05_custom_plugin.ipynb").read_text())
    cell = "".join(next(c["source"] for c in nb["cells"] if c.get("id") == "l05-plg-5"))
    solution = re.search(r'r"""(.*)"""', cell, re.S).group(1)
    x = (np.random.default_rng(1).normal(size=shape) * 2).astype(np.float32)
    got = kernel.gem_pool_gpu(x, p, 1e-6, gem_plane=solution).get().ravel().astype(np.float64)
    ref = _gem64(x, p, 1e-6)
    rel = np.abs(got / ref - 1)
    print(f"learner kernel {shape} p={p}: max rel err {rel.max():.2e} (bound {gem_tolerance(x, p, 1e-6, 'gpu').max():.2e})")
    assert np.all(rel <= gem_tolerance(x, p, 1e-6, "gpu"))
