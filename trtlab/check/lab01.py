"""Lab 01 exercises: a ResNet18 for 32×32 inputs (the CIFAR-style stem), and the training step."""

from __future__ import annotations

from typing import Any, Callable

from trtlab.check import Mismatch, exercise

__all__ = ["cifar_resnet18", "train_step"]


@exercise("lab01.cifar_resnet18", title="A ResNet18 for 32×32 inputs: a 3×3 stride-1 stem, no max-pool", hints=(
    "Start from tl.models.resnet18(num_classes) and replace two of its attributes: the first convolution and the "
    "max-pool that follows it.",
    "At 32×32 the ImageNet stem (7×7 conv stride 2, then a stride-2 max-pool) leaves layer1 only 8×8 pixels. "
    "A 3×3 convolution with stride 1 and padding 1 keeps 32×32; nn.Identity() removes the pooling.",
    "model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False); "
    "model.maxpool = nn.Identity(); return model",
))
def cifar_resnet18(build: Callable[[int], Any]) -> str:
    import torch
    import torch.nn as nn

    from trtlab.models import resnet18

    model = build(7)
    if model is None:
        raise Mismatch("your function returned None: return the model at the end")
    if not isinstance(model, nn.Module):
        raise Mismatch(f"your function returned a {type(model).__name__}, expected a torch.nn.Module (the ResNet)")
    conv = getattr(model, "conv1", None)
    if not isinstance(conv, nn.Conv2d):
        raise Mismatch("model.conv1 is missing or not an nn.Conv2d: replace the stem convolution, keep its name "
                       "`conv1` so the state_dict stays compatible with torchvision")
    if conv.in_channels != 3 or conv.out_channels != 64:
        raise Mismatch(f"conv1 maps {conv.in_channels} → {conv.out_channels} channels, expected 3 → 64 "
                       "(RGB in, and layer1 expects 64 channels)")
    if tuple(conv.kernel_size) != (3, 3):
        raise Mismatch(f"conv1 has a {conv.kernel_size[0]}×{conv.kernel_size[1]} kernel, expected 3×3: a small "
                       "kernel for a small image")
    if tuple(conv.stride) != (1, 1):
        raise Mismatch(f"conv1 has stride {conv.stride[0]}, expected 1: stride 2 halves the 32×32 input right "
                       "away (that is the 'small' stem, not the CIFAR one)")
    if tuple(conv.padding) != (1, 1):
        raise Mismatch(f"conv1 has padding {conv.padding[0]}, expected 1: without it a 3×3 conv shrinks 32×32 "
                       "to 30×30")
    if conv.bias is not None:
        raise Mismatch("conv1 has a bias: use bias=False, BatchNorm (bn1) right after it has its own shift, and "
                       "torchvision's state_dict has no conv1.bias")
    if not isinstance(getattr(model, "maxpool", None), nn.Identity):
        raise Mismatch(f"model.maxpool is still {type(getattr(model, 'maxpool', None)).__name__}: the max-pool halves "
                       "the feature map again (layer1 would run at 16×16); replace it with nn.Identity()")
    seen: dict[str, Any] = {}

    def record(module, inputs, output):
        seen["layer1"] = tuple(output.shape)

    layer1: Any = getattr(model, "layer1", None)
    if not isinstance(layer1, nn.Module):
        raise Mismatch("model.layer1 is missing: start from tl.models.resnet18 and change only its stem")
    handle = layer1.register_forward_hook(record)
    try:
        model.eval()
        with torch.no_grad():
            out = model(torch.zeros(2, 3, 32, 32))
    finally:
        handle.remove()
    if tuple(out.shape) != (2, 7):
        raise Mismatch(f"output shape {tuple(out.shape)} for 2 images and num_classes=7, expected (2, 7): use the "
                       "num_classes argument, do not hard-code 10")
    if seen.get("layer1") != (2, 64, 32, 32):
        raise Mismatch(f"layer1 output is {seen.get('layer1')}, expected (2, 64, 32, 32)")
    expected = resnet18(7).state_dict().keys()
    if model.state_dict().keys() != expected:
        extra = sorted(set(model.state_dict()) - set(expected))[:3]
        gone = sorted(set(expected) - set(model.state_dict()))[:3]
        raise Mismatch(f"state_dict keys differ from resnet18's (extra {extra}, missing {gone}): modify the "
                       "existing attributes instead of wrapping the model, so checkpoints stay compatible")
    return "conv1 is 3×3 stride 1, no max-pool: layer1 runs at 32×32 (16× the work of the ImageNet stem)"


def _tiny_problem(seed: int):
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 5))
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    y = torch.tensor([0, 1, 2, 3, 4, 0])
    return model, x, y


def _run_steps(step_fn, seed: int, steps: int):
    import torch

    model, x, y = _tiny_problem(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    results = [step_fn(model, x, y, optimizer, loss_fn) for _ in range(steps)]
    return model, results


@exercise("lab01.train_step", title="One training step: forward, loss, backward, update", hints=(
    "Five things in order: clear old gradients, forward pass, loss, backward pass, optimizer step. Then count the "
    "correct predictions.",
    "PyTorch *accumulates* gradients: without optimizer.zero_grad() every step adds to the previous gradients. "
    "loss.backward() computes gradients; optimizer.step() applies them. Return plain Python numbers "
    "(loss.item(), an int).",
    "optimizer.zero_grad(); logits = model(images); loss = loss_fn(logits, labels); loss.backward(); "
    "optimizer.step(); correct = (logits.argmax(dim=1) == labels).sum().item(); return loss.item(), correct",
))
def train_step(step_fn: Callable[..., Any]) -> str:
    import torch

    from trtlab.train import train_step as reference

    ref_model, ref_results = _run_steps(reference, 0, 3)
    model, results = _run_steps(step_fn, 0, 3)
    first = results[0]
    if not isinstance(first, (tuple, list)) or len(first) != 2:
        raise Mismatch(f"your step returned {type(first).__name__} {first!r}, expected a pair (loss, correct)")
    loss, correct = first
    if isinstance(loss, torch.Tensor):
        if loss.numel() != 1:
            raise Mismatch(f"loss has {loss.numel()} values, expected one number: the loss function already "
                           "averages over the batch")
        loss = loss.item()
    ref_loss, ref_correct = ref_results[0]
    if abs(float(loss) - ref_loss) > 1e-5:
        raise Mismatch(f"first-step loss {float(loss):.5f}, expected {ref_loss:.5f}: compute loss_fn(logits, labels) "
                       "on the model's output for *this* batch, before the update")
    if isinstance(correct, torch.Tensor):
        correct = correct.item()
    if isinstance(correct, float) and not correct.is_integer() or int(correct) != ref_correct:
        raise Mismatch(f"correct = {correct!r}, expected {ref_correct} (a count, not a fraction): "
                       "(logits.argmax(dim=1) == labels).sum().item()")
    unchanged = _run_steps(lambda *a: None, 0, 0)[0]
    if all(torch.equal(p, q) for p, q in zip(model.parameters(), unchanged.parameters())):
        raise Mismatch("the weights did not change: call optimizer.step() after loss.backward()")
    for (name, p), q in zip(model.named_parameters(), ref_model.parameters()):
        if not torch.allclose(p, q, atol=1e-5):
            ref_one, _ = _run_steps(reference, 0, 1)
            single, _ = _run_steps(step_fn, 0, 1)
            if all(torch.allclose(a, b, atol=1e-5) for a, b in zip(single.parameters(), ref_one.parameters())):
                raise Mismatch("the first step is right but later steps drift: gradients accumulate across steps. "
                               "Call optimizer.zero_grad() at the start of every step")
            raise Mismatch(f"after 3 steps parameter {name!r} differs from the reference by "
                           f"{(p - q).abs().max().item():.3g}: do forward → loss → backward → optimizer.step(), "
                           "once per call")
    later = [float(r[0]) for r in results]
    return f"3 steps on a toy problem match the reference (loss {later[0]:.3f} → {later[-1]:.3f})"
