"""Lab 01 exercises: a ResNet18 for 32×32 inputs (the CIFAR-style stem), and the training step.

Both checkers judge what the answer computes, not how it is written: the stem is loaded with the reference
model's weights and must compute the same logits (so ``padding="same"`` and ``padding=1`` are equally right), and
the training step is run for three steps next to the reference in two scenarios (other optimizers, loss functions,
batch sizes and class counts) and must leave the same weights and BatchNorm statistics behind.
"""

from __future__ import annotations

from typing import Any, Callable

from trtlab.check import Mismatch, exercise
from trtlab.i18n import N_, _

__all__ = ["cifar_resnet18", "train_step"]

U32 = 2.0 ** -24  # float32 unit roundoff: one rounding changes a value by at most this much, relatively

# The stem checker: ResNet18 has 17 convolutions + 1 linear layer on the longest path, each a dot product of at most
# K = 3·3·512 = 4608 terms. Summing K terms in another order changes the sum by at most K·u·Σ|terms| (the standard
# bound for recursive summation); BatchNorm re-normalises each layer, so the relative errors add up over the
# depth D = 18 rather than multiply: |Δlogit| ≤ D·K·u·max|logit| ≈ 4.9e-3·max|logit|. A wrong stem changes the
# logits by O(max|logit|), far outside that.
_STEM_RTOL = 18 * 4608 * U32
# (num_classes, image size, batch): neither class count is the default 10, and the second size is not 32, so a
# hard-coded class count or a stem that only works at 32×32 fails.
_STEM_CASES = ((7, 32, 2), (3, 24, 1))


def _reference_stem_model(num_classes: int, seed: int):
    """The reference CIFAR ResNet18 with random BatchNorm statistics, so that BatchNorm is not an identity."""
    import torch
    import torch.nn as nn

    from trtlab.models import resnet18

    torch.manual_seed(seed)
    model = resnet18(num_classes, stem="cifar")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
    return model.eval()


def _compare_weights(model: Any, reference: Any, num_classes: int) -> None:
    """The learner's model must hold exactly the reference's tensors (names and shapes): checkpoint compatibility."""
    mine, ref = model.state_dict(), reference.state_dict()
    if "conv1.bias" in mine and "conv1.bias" not in ref:
        raise Mismatch(_("conv1 has a bias: use bias=False. BatchNorm (bn1) right after it has its own shift, and "
                         "torchvision's state_dict has no conv1.bias"))
    if "conv1.weight" not in mine:
        raise Mismatch(_("model.conv1 is missing or has no weight: replace the stem convolution in place, keep its "
                         "name `conv1` (do not wrap the model) so the state_dict stays compatible with torchvision"))
    w = tuple(mine["conv1.weight"].shape)
    if w[:2] != (64, 3):
        raise Mismatch(_("conv1 maps {inputs} → {outputs} channels, expected 3 → 64 (RGB in, and layer1 expects "
                         "64)").format(inputs=w[1], outputs=w[0]))
    if w[2:] != (3, 3):
        raise Mismatch(_("conv1 has a {kh}×{kw} kernel, expected 3×3: a small kernel for a small image").format(
            kh=w[2], kw=w[3]))
    fc = tuple(mine["fc.weight"].shape) if "fc.weight" in mine else None
    if fc is not None and fc[0] != num_classes:
        raise Mismatch(_("called with num_classes={num_classes}, the model has {outputs} outputs: pass the "
                         "num_classes argument to tl.models.resnet18, do not hard-code it").format(
                             num_classes=num_classes, outputs=fc[0]))
    extra, gone = sorted(set(mine) - set(ref)), sorted(set(ref) - set(mine))
    if extra or gone:
        raise Mismatch(_("state_dict keys differ from resnet18's (extra {extra}, missing {missing}): modify the "
                         "existing attributes instead of adding or wrapping modules, so checkpoints stay "
                         "compatible").format(extra=extra[:3], missing=gone[:3]))
    for key, value in ref.items():
        if tuple(mine[key].shape) != tuple(value.shape):
            raise Mismatch(_("{key} has shape {got}, expected {expected}: change only conv1 and maxpool of "
                             "tl.models.resnet18").format(key=key, got=tuple(mine[key].shape),
                                                          expected=tuple(value.shape)))


def _spatial_sizes(model: Any, x: Any) -> tuple[Any, dict[str, int]]:
    """Run ``model`` on ``x``; also return the height of conv1's and layer1's outputs (where the stem shows)."""
    import torch

    seen: dict[str, int] = {}

    def recorder(name: str) -> Callable[..., None]:
        def record(module: Any, inputs: Any, output: Any) -> None:  # returns None: the output stays as it is
            seen.setdefault(name, int(output.shape[-2]))
        return record

    handles = [getattr(model, name).register_forward_hook(recorder(name))
               for name in ("conv1", "layer1") if isinstance(getattr(model, name, None), torch.nn.Module)]
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, seen


@exercise("lab01.cifar_resnet18", title=N_("A ResNet18 for 32×32 inputs: a 3×3 stride-1 stem, no max-pool"), hints=(
    N_("Start from tl.models.resnet18(num_classes) and replace two of its attributes: the first convolution and the "
       "max-pool that follows it."),
    N_("At 32×32 the ImageNet stem (7×7 conv stride 2, then a stride-2 max-pool) leaves layer1 only 8×8 pixels. "
       "A 3×3 convolution with stride 1 and padding 1 keeps 32×32; nn.Identity() removes the pooling."),
    N_("model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False); "
       "model.maxpool = nn.Identity(); return model"),
), time_limit_s=60)  # measured 1–2 s on 2 busy cores: four ResNet18s built, four forward passes
def cifar_resnet18(build: Callable[[int], Any]) -> str:
    """For each case of ``_STEM_CASES`` the reference's weights are loaded into the learner's model: the logits must
    agree within the float32 bound stated at ``_STEM_RTOL``."""
    import torch
    import torch.nn as nn

    worst = 0.0
    for seed, (num_classes, size, batch) in enumerate(_STEM_CASES):
        model = build(num_classes)
        if model is None:
            raise Mismatch(_("your function returned None: return the model at the end"))
        if not isinstance(model, nn.Module):
            raise Mismatch(_("your function returned a {kind}, expected a torch.nn.Module (the ResNet)").format(
                kind=type(model).__name__))
        reference = _reference_stem_model(num_classes, seed)
        _compare_weights(model, reference, num_classes)
        model.load_state_dict(reference.state_dict())
        model.eval()
        x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(size))
        want, _sizes = _spatial_sizes(reference, x)
        got, seen = _spatial_sizes(model, x)
        if tuple(got.shape) != tuple(want.shape):
            raise Mismatch(_("output shape {got} for {batch} images and num_classes={num_classes}, expected "
                             "{expected}").format(got=tuple(got.shape), batch=batch, num_classes=num_classes,
                                                  expected=tuple(want.shape)))
        diff = float((got - want).abs().max())
        allowed = _STEM_RTOL * float(want.abs().max())
        if diff > allowed:
            conv, layer1 = seen.get("conv1"), seen.get("layer1")
            if conv == size - 2:
                raise Mismatch(_("conv1 turns {size}×{size} into {conv}×{conv}: it has no padding. A 3×3 "
                                 "convolution needs padding=1 (or padding='same') to keep the size").format(
                                     size=size, conv=conv))
            if conv is not None and conv < size - 2:
                raise Mismatch(_("conv1 turns {size}×{size} into {conv}×{conv}: its stride is not 1. Stride 2 "
                                 "halves the input right away (that is the 'small' stem, not the CIFAR one)").format(
                                     size=size, conv=conv))
            if conv == size and layer1 is not None and layer1 < size:
                raise Mismatch(_("layer1 runs at {layer1}×{layer1} for a {size}×{size} input although conv1 keeps "
                                 "{size}×{size}: model.maxpool still halves the feature map ({pool}); replace it "
                                 "with nn.Identity()").format(layer1=layer1, size=size,
                                                              pool=type(getattr(model, 'maxpool', None)).__name__))
            raise Mismatch(_("with the reference's weights loaded, your model's logits differ by up to {diff:.3g} "
                             "(allowed {allowed:.2g}, the float32 bound) on a {size}×{size} input, although every "
                             "shape matches. Likely causes: conv1 with another padding_mode, dilation or groups, or "
                             "another module changed besides conv1 and maxpool").format(
                                 diff=diff, allowed=allowed, size=size))
        worst = max(worst, diff)
    return _("with the reference's weights your model computes the same logits (max |Δ| {worst:.2g}) for "
             "num_classes 7 at 32×32 and 3 at 24×24: layer1 runs at full resolution").format(worst=worst)


def _tiny_problem(seed: int, batch: int, classes: int):
    """A small CNN with BatchNorm (so running statistics show how often the model ran) and a batch of labels."""
    import torch
    import torch.nn as nn

    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, classes))
    x = torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    y = torch.arange(batch) % classes
    return model.train(), x, y


# Two scenarios, so that neither the optimizer nor the loss function can be hard-coded:
# (seed, batch, classes, optimizer, learning rate, loss function).
_SCENARIOS = (
    (0, 6, 5, "sgd", 0.5, {}),
    (1, 10, 3, "adam", 0.05, {"label_smoothing": 0.1}),
)
_STEPS = 3


def _run_steps(step_fn: Callable[..., Any], scenario: tuple, steps: int):
    import torch

    seed, batch, classes, opt, lr, loss_args = scenario
    model, x, y = _tiny_problem(seed, batch, classes)
    optimizer = (torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9) if opt == "sgd"
                 else torch.optim.Adam(model.parameters(), lr=lr))
    loss_fn = torch.nn.CrossEntropyLoss(**loss_args)
    results = [step_fn(model, x, y, optimizer, loss_fn) for _step in range(steps)]
    return model, results, (x, y)


def _as_number(value: Any, what: str) -> float:
    import torch

    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Mismatch(_("{what} has {count} values, expected one number").format(what=what, count=value.numel())
                           + (_(": the loss function already averages over the batch") if what == "loss" else ""))
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Mismatch(_("{what} is a {kind} ({value!r}), expected a number").format(
            what=what, kind=type(value).__name__, value=value)) from None


# Loss: cross-entropy of B rows of C classes is a log-sum-exp (C exponentials, a C-term sum, a log, a subtraction)
# then a B-term mean: k = C + B + 3 roundings on values up to M = max|logit| + log C, so a correct loss computed in
# another order differs by at most k·u·M (≈ 1e-6 here). Weights after S = 3 steps: the longest reduction in the
# backward pass is the conv-weight gradient, a sum over B·H·W ≤ 640 terms, so a gradient entry moves by at most
# 640·u ≈ 3.8e-5 relatively; S updates add at most S times that: 1.2e-4 of the weight's scale.
_WEIGHT_RTOL = _STEPS * 640 * U32


def _loss_bound(classes: int, batch: int, logits: Any) -> float:
    import math

    return (classes + batch + 3) * U32 * (float(logits.abs().max()) + math.log(classes)) + 1e-7


@exercise("lab01.train_step", title=N_("One training step: forward, loss, backward, update"), hints=(
    N_("Five things in order: clear old gradients, forward pass, loss, backward pass, optimizer step. Then count the "
       "correct predictions."),
    N_("PyTorch *accumulates* gradients: without optimizer.zero_grad() every step adds to the previous gradients. "
       "loss.backward() computes gradients; optimizer.step() applies them. Return plain Python numbers "
       "(loss.item(), an int)."),
    N_("optimizer.zero_grad(); logits = model(images); loss = loss_fn(logits, labels); loss.backward(); "
       "optimizer.step(); correct = (logits.argmax(dim=1) == labels).sum().item(); return loss.item(), correct"),
), time_limit_s=30)  # measured ~0.1 s: 2 scenarios × 3 steps of a 4-channel CNN, plus the reference runs
def train_step(step_fn: Callable[..., Any]) -> str:
    """Scenarios: SGD (momentum 0.9, lr 0.5) with plain cross-entropy on 6 images of 5 classes, and Adam (lr 0.05)
    with label smoothing 0.1 on 10 images of 3 classes; 3 steps each, a model with BatchNorm."""
    import torch
    import torch.nn.functional as F

    notes = []
    for scenario in _SCENARIOS:
        seed, batch, classes, opt, lr, loss_args = scenario
        ref_model, ref_results, (x, y) = _run_steps(_reference_step, scenario, _STEPS)
        model, results, _data = _run_steps(step_fn, scenario, _STEPS)
        first = results[0]
        if not isinstance(first, (tuple, list)) or len(first) != 2:
            raise Mismatch(_("your step returned {kind} {first!r}, expected a pair (loss, correct)").format(
                kind=type(first).__name__, first=first))
        loss, correct = _as_number(first[0], "loss"), _as_number(first[1], "correct")
        ref_loss, ref_correct = ref_results[0]
        start_model = _run_steps(_reference_step, scenario, 0)[0]
        with torch.no_grad():
            start_logits = start_model(x)
        if abs(loss - ref_loss) > _loss_bound(classes, batch, start_logits):
            plain = float(F.cross_entropy(start_logits, y))
            if loss_args and abs(loss - plain) < 1e-5:
                raise Mismatch(_("first-step loss {loss:.5f}, expected {ref_loss:.5f}: that is plain cross-entropy, "
                                 "but this check passes loss_fn = CrossEntropyLoss({loss_args}). Use the loss_fn "
                                 "argument instead of computing the loss yourself").format(
                                     loss=loss, ref_loss=ref_loss, loss_args=loss_args))
            raise Mismatch(_("first-step loss {loss:.6f}, expected {ref_loss:.6f} ({opt}, {batch} images): compute "
                             "loss_fn(logits, labels) on the model's output for *this* batch, before the "
                             "update").format(loss=loss, ref_loss=ref_loss, opt=opt, batch=batch))
        if ref_correct and abs(correct - ref_correct / batch) < 1e-9:
            raise Mismatch(_("correct = {correct:g}, expected {ref_correct} (a count, not a fraction): "
                             "(logits.argmax(dim=1) == labels).sum().item()").format(
                                 correct=correct, ref_correct=ref_correct))
        if ref_correct and abs(correct - 100 * ref_correct / batch) < 1e-9:
            raise Mismatch(_("correct = {correct:g}, expected {ref_correct}: that is a percentage; return the count "
                             "of correct predictions").format(correct=correct, ref_correct=ref_correct))
        if correct != ref_correct:
            raise Mismatch(_("correct = {correct!r}, expected {ref_correct} of {batch}: count the rows where "
                             "logits.argmax(dim=1) equals the label, using the logits of the forward pass before the "
                             "update").format(correct=correct, ref_correct=ref_correct, batch=batch))
        _compare_models(model, ref_model, step_fn, scenario)
        notes.append(_("{opt}: loss {first:.3f} → {last:.3f}").format(
            opt=opt, first=float(ref_results[0][0]), last=float(ref_results[-1][0])))
    return _("{steps} steps match the reference in both scenarios ({notes})").format(steps=_STEPS,
                                                                                      notes="; ".join(notes))


def _reference_step(*args: Any) -> Any:
    from trtlab.train import train_step as reference

    return reference(*args)


def _compare_models(model: Any, ref_model: Any, step_fn: Callable[..., Any], scenario: tuple) -> None:
    import torch

    unchanged = _run_steps(_reference_step, scenario, 0)[0]
    if all(torch.equal(p, q) for p, q in zip(model.parameters(), unchanged.parameters())):
        raise Mismatch(_("the weights did not change: call optimizer.step() after loss.backward()"))
    bn = next(m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    ref_bn = next(m for m in ref_model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    runs, ref_runs = int(bn.num_batches_tracked), int(ref_bn.num_batches_tracked)
    if runs > ref_runs:
        raise Mismatch(_("the model ran forward {runs} times in {ref_runs} steps (its BatchNorm counted {runs} "
                         "batches): each extra forward pass in training mode updates BatchNorm's running statistics "
                         "again. Compute the accuracy from the logits of the one forward pass").format(
                             runs=runs, ref_runs=ref_runs))
    for (name, p), q in zip(model.state_dict().items(), ref_model.state_dict().values()):
        if p.dtype.is_floating_point and not torch.allclose(p, q, rtol=_WEIGHT_RTOL, atol=_WEIGHT_RTOL):
            single = _run_steps(step_fn, scenario, 1)[0]
            ref_one = _run_steps(_reference_step, scenario, 1)[0]
            if all(torch.allclose(a, b, rtol=_WEIGHT_RTOL, atol=_WEIGHT_RTOL)
                   for a, b in zip(single.parameters(), ref_one.parameters())):
                raise Mismatch(_("the first step is right but later steps drift: gradients accumulate across "
                                 "steps. Call optimizer.zero_grad() at the start of every step"))
            raise Mismatch(_("after {steps} steps {name!r} differs from the reference by {diff:.3g} (allowed "
                             "{allowed:.2g} relative): do forward → loss → backward → optimizer.step(), once per "
                             "call").format(steps=_STEPS, name=name, diff=(p - q).abs().max().item(),
                                            allowed=_WEIGHT_RTOL))
