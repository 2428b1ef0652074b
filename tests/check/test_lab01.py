"""Lab 01 checkers judge what the answer computes: other correct styles pass, typical mistakes fail with their name."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from trtlab import models, train
from trtlab.check import lab01

from conftest import assert_fails, assert_not_done, assert_passes


# ---------------------------------------------------------------- cifar_resnet18


def solution_resnet(num_classes=10):
    m = models.resnet18(num_classes)
    m.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    m.maxpool = nn.Identity()
    return m


def padding_same(num_classes):
    m = models.resnet18(num_classes=num_classes)
    m.conv1 = nn.Conv2d(in_channels=3, out_channels=64, kernel_size=(3, 3), padding="same", bias=False)
    m.maxpool = nn.MaxPool2d(kernel_size=1, stride=1)  # a 1×1 pool is an identity too
    return m


def setattr_style(num_classes):
    m = models.resnet18(num_classes)
    setattr(m, "conv1", nn.Conv2d(3, 64, 3, padding=(1, 1), bias=False))
    setattr(m, "maxpool", nn.Sequential())  # an empty Sequential returns its input
    return m


def _with(conv=None, keep_maxpool=False, classes=None):
    def build(num_classes):
        m = models.resnet18(num_classes if classes is None else classes)
        m.conv1 = conv() if conv else nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        if not keep_maxpool:
            m.maxpool = nn.Identity()
        return m
    return build


def test_cifar_resnet18_accepts_other_correct_styles():
    assert_passes(lab01.cifar_resnet18, solution_resnet)
    assert_passes(lab01.cifar_resnet18, padding_same)
    assert_passes(lab01.cifar_resnet18, setattr_style)
    assert_passes(lab01.cifar_resnet18, lambda n: models.resnet18(n, stem="cifar"))


def test_cifar_resnet18_names_each_mistake():
    ex = lab01.cifar_resnet18
    assert_fails(ex, _with(keep_maxpool=True), "layer1 runs at 16×16.*maxpool still halves.*MaxPool2d")
    assert_fails(ex, _with(lambda: nn.Conv2d(3, 64, 3, 2, 1, bias=False)), "stride is not 1")
    assert_fails(ex, _with(lambda: nn.Conv2d(3, 64, 3, 1, 0, bias=False)), "32×32 into 30×30: it has no padding")
    assert_fails(ex, _with(lambda: nn.Conv2d(3, 64, 7, 1, 3, bias=False)), "7×7 kernel, expected 3×3")
    assert_fails(ex, _with(lambda: nn.Conv2d(3, 64, 3, 1, 1)), "conv1 has a bias")
    assert_fails(ex, _with(classes=10), "num_classes=7, the model has 10 outputs.*do not hard-code")
    assert_fails(ex, lambda n: nn.Sequential(solution_resnet(n)), "conv1 is missing.*do not wrap")
    assert_fails(ex, _with(lambda: nn.Conv2d(3, 64, 3, 1, 1, bias=False, padding_mode="reflect")),
                 "logits differ.*although every shape matches.*Likely causes: conv1 with another padding_mode")
    assert_fails(ex, lambda n: models.resnet18(n), "7×7 kernel")
    assert_fails(ex, lambda n: None, "returned None")


def test_cifar_resnet18_stub_and_hang(fails_within_limit):
    def stub(num_classes):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab01.cifar_resnet18, stub)
    fails_within_limit(lab01.cifar_resnet18)


# ---------------------------------------------------------------- train_step


def solution_step(model, images, labels, optimizer, loss_fn):
    optimizer.zero_grad(set_to_none=True)
    logits = model(images)
    loss = loss_fn(logits, labels)
    loss.backward()
    optimizer.step()
    correct = (logits.argmax(dim=1) == labels).sum().item()
    return loss.item(), correct


def zero_grad_at_the_end(model, images, labels, optimizer, loss_fn):
    """Clears the gradients after the update instead of before: the same steps (they start at zero)."""
    out = model(images)
    loss = loss_fn(out, labels)
    loss.backward()
    optimizer.step()
    model.zero_grad()
    return [loss.item(), int(torch.eq(out.max(dim=1).indices, labels).sum())]


def tensors_returned(model, images, labels, optimizer, loss_fn):
    for p in model.parameters():
        p.grad = None
    logits = model.forward(images)
    loss = loss_fn(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.detach().argmax(-1) == labels).sum()


def no_zero_grad(model, images, labels, optimizer, loss_fn):
    logits = model(images)
    loss = loss_fn(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == labels).sum())


def no_step(model, images, labels, optimizer, loss_fn):
    optimizer.zero_grad()
    logits = model(images)
    loss = loss_fn(logits, labels)
    loss.backward()
    return loss.item(), int((logits.argmax(1) == labels).sum())


def fraction_correct(model, images, labels, optimizer, loss_fn):
    loss, correct = train.train_step(model, images, labels, optimizer, loss_fn)
    return loss, correct / len(labels)


def percent_correct(model, images, labels, optimizer, loss_fn):
    loss, correct = train.train_step(model, images, labels, optimizer, loss_fn)
    return loss, 100.0 * correct / len(labels)


def loss_after_update(model, images, labels, optimizer, loss_fn):
    train.train_step(model, images, labels, optimizer, loss_fn)
    with torch.no_grad():
        logits = model(images)
    return float(loss_fn(logits, labels)), int((logits.argmax(1) == labels).sum())


def second_forward_for_accuracy(model, images, labels, optimizer, loss_fn):
    optimizer.zero_grad()
    loss = loss_fn(model(images), labels)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        correct = int((model(images).argmax(1) == labels).sum())
    return loss.item(), correct


def own_loss(model, images, labels, optimizer, loss_fn):
    optimizer.zero_grad()
    logits = model(images)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    optimizer.step()
    return loss.item(), int((logits.argmax(1) == labels).sum())


def test_train_step_accepts_other_correct_styles():
    assert_passes(lab01.train_step, solution_step)
    assert_passes(lab01.train_step, train.train_step)
    assert_passes(lab01.train_step, zero_grad_at_the_end)
    assert_passes(lab01.train_step, tensors_returned)


def test_train_step_names_each_mistake():
    ex = lab01.train_step
    assert_fails(ex, no_zero_grad, "later steps drift: gradients accumulate.*zero_grad")
    assert_fails(ex, no_step, "did not change.*optimizer.step")
    assert_fails(ex, fraction_correct, "a count, not a fraction")
    assert_fails(ex, percent_correct, "that is a percentage")
    assert_fails(ex, loss_after_update, "before the update")
    assert_fails(ex, second_forward_for_accuracy, "ran forward 6 times in 3 steps.*BatchNorm")
    assert_fails(ex, own_loss, "plain cross-entropy.*label_smoothing.*Use the loss_fn argument")
    assert_fails(ex, lambda *a: 0.5, "expected a pair")


def test_train_step_stub_and_hang(fails_within_limit):
    def stub(model, images, labels, optimizer, loss_fn):
        raise NotImplementedError("exercise not done yet: write your code here")

    assert_not_done(lab01.train_step, stub)
    fails_within_limit(lab01.train_step)


def test_hints_are_graded():
    for ex in (lab01.cifar_resnet18, lab01.train_step):
        assert len(ex.hints) == 3 and len(ex.hints[2]) > len(ex.hints[0]) / 2


def test_verdicts_and_hints_in_chinese_when_asked():
    """A real mistake gets its verdict and hints in Chinese under set_language("zh_CN") (sizes, class names and
    API calls unchanged), and in English again after set_language("en")."""
    from trtlab import i18n

    try:
        i18n.set_language("zh_CN")
        stem = lab01.cifar_resnet18.evaluate(_with(keep_maxpool=True)).message
        assert "对 32×32 的输入，layer1 以 16×16 运行" in stem and "MaxPool2d" in stem, stem
        assert "请把它替换为 nn.Identity()" in stem and "卡住了" in stem, stem
        step = lab01.train_step.evaluate(no_zero_grad).message
        assert step.startswith("第一步正确，但之后的步骤逐渐偏离：梯度在步骤之间累加了"), step
        assert "optimizer.zero_grad()" in step, step
        assert lab01.train_step.hint(1).startswith("💡 提示 1/3（lab01.train_step）：按顺序做五件事")
        assert lab01.cifar_resnet18.hint(2).startswith("💡 提示 2/3（lab01.cifar_resnet18）：在 32×32 的输入上")
        assert lab01.cifar_resnet18.shown_title == "适用于 32×32 输入的 ResNet18：3×3、步长 1 的 stem，去掉最大池化"
        i18n.set_language("en")
        assert lab01.train_step.evaluate(no_zero_grad).message.startswith("the first step is right but later")
        assert lab01.train_step.hint(1).startswith("💡 hint 1/3 for lab01.train_step: Five things in order")
    finally:
        i18n.set_language(None)
