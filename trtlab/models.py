"""The course's models, in our own code (no torchvision needed: it does not import next to the CPU torch here).

:func:`resnet18` is architecture- and ``state_dict``-compatible with ``torchvision.models.resnet18``: the same
module names and shapes, so torchvision weights load with ``load_state_dict`` wherever torchvision is installed
(a test proves equal outputs on the GPU machine). For small inputs the *stem* (the layers before ``layer1``) can be
swapped — Lab 01 has the learner build one and choose by FLOPs, speed and accuracy:

=========  ================================  =======================================================
stem       layers                            at 32×32
=========  ================================  =======================================================
imagenet   7×7 conv stride 2 + 3×3 max-pool  layer1 runs at 8×8: cheap (~37 MMAC), trains in minutes
cifar      3×3 conv stride 1, no max-pool    layer1 runs at 32×32: 16× the work (~556 MMAC), ~10× slower
small      3×3 conv stride 2, no max-pool    layer1 runs at 16×16: 4× the work
=========  ================================  =======================================================

Other CNNs (:func:`resnet34`, :func:`mobilenet_v2`, :func:`vgg11_bn`) exist so Lab 02's export checks can be
shown on more than one architecture.
"""

from __future__ import annotations

from typing import Any, Callable

from trtlab.errors import InvalidArgument

__all__ = ["ARCHITECTURES", "STEMS", "build", "count_macs", "count_parameters", "mobilenet_v2", "resnet18",
           "resnet34", "vgg11_bn"]

STEMS = ("imagenet", "cifar", "small")


def _basic_block_class():
    import torch.nn as nn

    class BasicBlock(nn.Module):
        """torchvision's BasicBlock: two 3×3 convs with BatchNorm and an identity (or 1×1 conv) shortcut."""

        expansion = 1

        def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: Any = None) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.downsample = downsample
            self.stride = stride

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return self.relu(out + identity)

    return BasicBlock


def _resnet(layers: list[int], num_classes: int, stem: str):
    import torch
    import torch.nn as nn

    if stem not in STEMS:
        raise InvalidArgument(f"resnet: unknown stem {stem!r}; expected one of {STEMS}")
    Block = _basic_block_class()

    class ResNet(nn.Module):
        """torchvision-compatible ResNet (BasicBlock). ``stem`` picks the layers before ``layer1``."""

        def __init__(self) -> None:
            super().__init__()
            self.stem_kind = stem
            self.inplanes = 64
            if stem == "imagenet":
                self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
                self.maxpool: nn.Module = nn.MaxPool2d(3, 2, 1)
            elif stem == "cifar":
                self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
                self.maxpool = nn.Identity()
            else:  # small
                self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
                self.maxpool = nn.Identity()
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.layer1 = self._make_layer(64, layers[0])
            self.layer2 = self._make_layer(128, layers[1], 2)
            self.layer3 = self._make_layer(256, layers[2], 2)
            self.layer4 = self._make_layer(512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512, num_classes)
            for m in self.modules():  # torchvision's initialisation
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)

        def _make_layer(self, planes: int, blocks: int, stride: int = 1):
            downsample = None
            if stride != 1 or self.inplanes != planes:
                downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                           nn.BatchNorm2d(planes))
            layers = [Block(self.inplanes, planes, stride, downsample)]
            self.inplanes = planes
            layers += [Block(planes, planes) for _ in range(1, blocks)]
            return nn.Sequential(*layers)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def resnet18(num_classes: int = 10, *, stem: str = "imagenet"):
    """ResNet18, ``state_dict``-compatible with torchvision's (with ``stem="imagenet"``, also shape-compatible)."""
    return _resnet([2, 2, 2, 2], num_classes, stem)


def resnet34(num_classes: int = 10, *, stem: str = "imagenet"):
    """ResNet34 (torchvision-compatible names), a deeper variant for Lab 02's multi-architecture export check."""
    return _resnet([3, 4, 6, 3], num_classes, stem)


def mobilenet_v2(num_classes: int = 10, *, width: float = 0.5):
    """A MobileNetV2 (inverted residuals, depthwise convs, ReLU6), strides adapted to 32×32 inputs."""
    import torch.nn as nn

    def conv_bn(cin, cout, k, s, groups=1, act=True):
        layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
        return layers + ([nn.ReLU6(inplace=True)] if act else [])

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, expand):
            super().__init__()
            hidden = cin * expand
            layers = (conv_bn(cin, hidden, 1, 1) if expand != 1 else []) + conv_bn(hidden, hidden, 3, stride, hidden)
            self.block = nn.Sequential(*layers, *conv_bn(hidden, cout, 1, 1, act=False))
            self.residual = stride == 1 and cin == cout

        def forward(self, x):
            return x + self.block(x) if self.residual else self.block(x)

    def ch(c):
        return max(8, int(c * width + 4) // 8 * 8)

    config = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    layers: list[nn.Module] = [*conv_bn(3, ch(32), 3, 1)]
    cin = ch(32)
    for t, c, n, s in config:
        for i in range(n):
            layers.append(InvertedResidual(cin, ch(c), s if i == 0 else 1, t))
            cin = ch(c)
    layers += conv_bn(cin, 1280, 1, 1)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes))


def vgg11_bn(num_classes: int = 10, *, width: float = 0.25):
    """A VGG11 with BatchNorm (plain conv/pool stacks, a classifier of two Linear layers), narrowed by ``width``."""
    import torch.nn as nn

    layers: list[nn.Module] = []
    cin = 3
    plan: list[int | str] = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]
    for v in plan:
        if isinstance(v, str):
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = int(v * width)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(cin, 256), nn.ReLU(inplace=True), nn.Dropout(0.5),
                         nn.Linear(256, num_classes))


ARCHITECTURES: dict[str, Callable[..., Any]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "mobilenet_v2": mobilenet_v2,
    "vgg11_bn": vgg11_bn,
}


def build(arch: str, num_classes: int = 10, **kwargs: Any):
    """A model by name: ``"resnet18"`` or ``"resnet18/cifar"`` (arch/stem), ``"mobilenet_v2"``, ..."""
    name, _, stem = arch.partition("/")
    if name not in ARCHITECTURES:
        raise InvalidArgument(f"unknown architecture {arch!r}; expected one of {sorted(ARCHITECTURES)} "
                         "(ResNets take a stem: 'resnet18/cifar')")
    if stem:
        kwargs["stem"] = stem
    return ARCHITECTURES[name](num_classes, **kwargs)


def count_parameters(model) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model, input_size: int | tuple[int, int] = 32) -> int:
    """Multiply-accumulates of one forward pass on one image (Conv2d and Linear layers; the rest is negligible)."""
    import torch
    import torch.nn as nn

    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += int(output.numel() // output.shape[0]) * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    channels = first.in_channels if first is not None else 3
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, channels, h, w))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
