"""Lab 01 checkers accept the right answers and reject wrong ones with a message naming the mistake."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn as nn

from trtlab import models, train
from trtlab.check import lab01


def good_resnet(num_classes):
    m = models.resnet18(num_classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    m.maxpool = nn.Identity()
    return m


def _variant(**conv):
    def build(num_classes):
        m = models.resnet18(num_classes)
        m.conv1 = nn.Conv2d(3, 64, **{"kernel_size": 3, "stride": 1, "padding": 1, "bias": False, **conv})
        m.maxpool = nn.Identity()
        return m
    return build


def keeps_maxpool(num_classes):
    m = models.resnet18(num_classes)
    m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    return m


def stub(num_classes):
    raise NotImplementedError("exercise not done yet: write your code here")


def test_cifar_resnet18_accepts_reference_and_library():
    assert lab01.cifar_resnet18.evaluate(good_resnet)
    assert lab01.cifar_resnet18.evaluate(lambda n: models.resnet18(n, stem="cifar"))


@pytest.mark.parametrize("wrong, message", [
    (keeps_maxpool, "maxpool is still MaxPool2d.*nn.Identity"),
    (_variant(stride=2), "stride 2, expected 1"),
    (_variant(padding=0), "padding 0, expected 1"),
    (_variant(kernel_size=7, padding=3), "7×7 kernel, expected 3×3"),
    (_variant(bias=True), "has a bias"),
    (lambda n: models.resnet18(n), "stride 2, expected 1|7×7"),
    (lambda n: good_resnet(10), r"num_classes"),
    (lambda n: nn.Sequential(good_resnet(n)), "conv1 is missing"),
    (lambda n: None, "returned None"),
])
def test_cifar_resnet18_rejects(wrong, message):
    result = lab01.cifar_resnet18.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_cifar_resnet18_stub_is_not_done():
    assert lab01.cifar_resnet18.evaluate(stub).status == "not done"


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


def loss_after_update(model, images, labels, optimizer, loss_fn):
    train.train_step(model, images, labels, optimizer, loss_fn)
    with torch.no_grad():
        logits = model(images)
    return float(loss_fn(logits, labels)), int((logits.argmax(1) == labels).sum())


def test_train_step_accepts_reference_and_tensor_returns():
    assert lab01.train_step.evaluate(train.train_step)

    def tensors(model, images, labels, optimizer, loss_fn):
        optimizer.zero_grad()
        logits = model(images)
        loss = loss_fn(logits, labels)
        loss.backward()
        optimizer.step()
        return loss.detach(), (logits.argmax(1) == labels).sum()
    assert lab01.train_step.evaluate(tensors)


@pytest.mark.parametrize("wrong, message", [
    (no_zero_grad, "gradients accumulate.*zero_grad"),
    (no_step, "did not change.*optimizer.step"),
    (fraction_correct, "a count, not a fraction"),
    (loss_after_update, "before the update"),
    (lambda *a: 0.5, "expected a pair"),
])
def test_train_step_rejects(wrong, message):
    result = lab01.train_step.evaluate(wrong)
    assert result.status == "failed"
    assert re.search(message, result.message), result.message


def test_train_step_stub_is_not_done():
    def stub_step(model, images, labels, optimizer, loss_fn):
        raise NotImplementedError("exercise not done yet: write your code here")
    assert lab01.train_step.evaluate(stub_step).status == "not done"


def test_hints_are_graded():
    for ex in (lab01.cifar_resnet18, lab01.train_step):
        assert len(ex.hints) == 3 and len(ex.hints[2]) > len(ex.hints[0]) / 2
