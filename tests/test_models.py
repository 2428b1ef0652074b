"""trtlab.models: a torchvision-compatible ResNet18 without torchvision, small-input stems, other CNNs."""

from __future__ import annotations

import pytest
import torch

from trtlab import models


def test_resnet18_matches_torchvision_numbers():
    # torchvision.models.resnet18(): 11,689,512 parameters, 1.81 GMAC at 224×224, 122 state_dict entries
    m = models.resnet18(1000)
    assert models.count_parameters(m) == 11_689_512
    assert abs(models.count_macs(m, 224) / 1.814e9 - 1) < 0.01
    sd = m.state_dict()
    assert len(sd) == 122
    for key, shape in {"conv1.weight": (64, 3, 7, 7), "bn1.running_mean": (64,),
                       "layer1.0.conv1.weight": (64, 64, 3, 3), "layer2.0.downsample.0.weight": (128, 64, 1, 1),
                       "layer2.0.downsample.1.num_batches_tracked": (), "layer4.1.bn2.weight": (512,),
                       "fc.weight": (1000, 512), "fc.bias": (1000,)}.items():
        assert tuple(sd[key].shape) == shape, key


@pytest.mark.parametrize("stem, layer1_hw", [("imagenet", 8), ("small", 16), ("cifar", 32)])
def test_stems_set_the_feature_map_size(stem, layer1_hw):
    m = models.resnet18(10, stem=stem).eval()
    seen = {}

    def record(module, inputs, output):
        seen["hw"] = output.shape[-1]

    m.layer1.register_forward_hook(record)
    with torch.no_grad():
        out = m(torch.zeros(2, 3, 32, 32))
    assert tuple(out.shape) == (2, 10) and seen["hw"] == layer1_hw
    # same state_dict keys whatever the stem (only conv1's kernel differs)
    assert m.state_dict().keys() == models.resnet18(10).state_dict().keys()


def test_cifar_stem_costs_about_16x():
    small = models.count_macs(models.resnet18(10, stem="imagenet"), 32)
    big = models.count_macs(models.resnet18(10, stem="cifar"), 32)
    assert 12 < big / small < 18


@pytest.mark.parametrize("arch", ["resnet34", "mobilenet_v2", "vgg11_bn", "resnet18/small"])
def test_other_architectures_run(arch):
    m = models.build(arch).eval()
    with torch.no_grad():
        assert tuple(m(torch.zeros(2, 3, 32, 32)).shape) == (2, 10)


def test_unknown_names_are_explained():
    with pytest.raises(ValueError, match="unknown architecture"):
        models.build("resnet50")
    with pytest.raises(ValueError, match="unknown stem"):
        models.resnet18(stem="tiny")
