"""trtlab.models against torchvision on the GPU machine (marker ``gpu``; ``make test-gpu``): torchvision's resnet18
weights load into ours and give the same outputs. torchvision cannot import next to the CPU torch of the CI machine.

Run on a GPU machine:  python -m pytest -p no:nbval -o addopts="" -m gpu tests/gpu/test_models_gpu.py -ra
"""

from __future__ import annotations

import pytest
import torch

from trtlab import models

pytestmark = pytest.mark.gpu


def test_equal_to_torchvision_resnet18():
    """Where torchvision imports (the GPU machine): its weights load into ours and give the same outputs."""
    import torchvision  # present on the GPU machine (0.26); it does not import next to the CPU torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    ref = torchvision.models.resnet18(weights=None, num_classes=1000).eval().to(device)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a mis-mapped buffer shows
        for mod in ref.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
    ours = models.resnet18(1000).eval().to(device)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(4, 3, 224, 224, device=device)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)
    small_ref = torchvision.models.resnet18(num_classes=10)
    ours_small = models.resnet18(10)
    ours_small.load_state_dict(small_ref.state_dict(), strict=True)
