"""trtlab.train: fit/evaluate, checkpoints (weights_only, metadata, refusals), ensure_course_model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trtlab import data, models, train
from trtlab.errors import ArtifactMissing


@pytest.fixture(scope="module")
def tiny():
    return data.load_shapes("val", n=128, cache=False)


META = {"arch": "resnet18/imagenet", "classes": data.SHAPE_CLASSES, "input_size": [32, 32],
        **data.COURSE_NORMALISATION, "accuracy": 0.5}


def test_fit_is_seeded_and_records_history(tiny):
    runs = []
    for _ in range(2):
        torch.manual_seed(0)  # the initial weights are the caller's; fit seeds the shuffle and augmentation
        m = models.resnet18(10)
        torch.manual_seed(123)  # so a different global seed afterwards must not matter
        h = train.fit(m, tiny, tiny, steps=4, batch_size=32, seed=7, progress=False, eval_every=2)
        runs.append(h)
    a, b = runs
    assert a.loss == b.loss and len(a.loss) == 4 and a.step == [1, 2, 3, 4]
    assert a.val_step == [2, 4] and 0 <= a.val_acc[-1] <= 1
    assert a.images == 4 * 32 and a.images_per_s > 0 and "steps on cpu" in repr(a)


def test_fit_uses_the_learners_step_and_resumes(tiny):
    calls = []

    def my_step(model, x, y, optimizer, loss_fn):
        calls.append(tuple(x.shape))
        return train.train_step(model, x, y, optimizer, loss_fn)

    m = models.resnet18(10)
    h = train.fit(m, tiny, steps=2, batch_size=16, step_fn=my_step, progress=False)
    h = train.fit(m, tiny, steps=2, batch_size=16, progress=False, history=h)
    assert calls == [(16, 3, 32, 32)] * 2 and h.step == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="exactly one of"):
        train.fit(m, tiny, progress=False)


def test_evaluate_and_plots(tiny):
    import matplotlib

    matplotlib.use("Agg")
    m = models.resnet18(10)
    ev = train.evaluate(m, tiny)
    assert 0 <= ev.accuracy <= 1 and ev.confusion.sum() == len(tiny)
    assert set(ev.per_class) == set(tiny.classes) and len(ev.by_brightness(4)) == 4
    assert np.isclose(np.trace(ev.confusion) / len(tiny), ev.accuracy)
    train.plot_confusion(ev)
    train.fit(m, tiny, tiny, steps=2, batch_size=32, progress=False).plot()


def test_checkpoint_roundtrip(tmp_path):
    m = models.resnet18(10).eval()
    meta = train.save_checkpoint(m, tmp_path / "m.pt", META)
    assert json.loads((tmp_path / "m.json").read_text())["sha256"] == meta["sha256"]
    loaded, meta2 = train.load_checkpoint(tmp_path / "m.pt", arch="resnet18")
    assert not loaded.training and meta2["arch"] == "resnet18/imagenet"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))
    for key in ("arch", "classes", "input_size", "mean", "std", "accuracy", "sha256"):
        assert key in meta2


def test_checkpoint_refusals(tmp_path):
    with pytest.raises(ArtifactMissing, match="does not exist"):
        train.load_checkpoint(tmp_path / "missing.pt")
    m = models.resnet18(10)
    path = tmp_path / "m.pt"
    train.save_checkpoint(m, path, META)
    with pytest.raises(train.CheckpointMismatch, match="is a 'resnet18/imagenet' model, expected 'resnet34'"):
        train.load_checkpoint(path, arch="resnet34")
    # weights of another architecture under resnet18 metadata
    other = tmp_path / "other.pt"
    train.save_checkpoint(models.resnet34(10), other, META)
    with pytest.raises(train.CheckpointMismatch, match="do not fit"):
        train.load_checkpoint(other)
    # tampered weights
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(train.CheckpointMismatch, match="does not match"):
        train.load_checkpoint(path)
    with pytest.raises(ValueError, match="lacks"):
        train.save_checkpoint(m, tmp_path / "x.pt", {"arch": "resnet18"})


class _Payload:
    pass


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weights": _Payload()}, path)
    (tmp_path / "evil.json").write_text(json.dumps({**META, "sha256": None}))
    with pytest.raises(train.CheckpointMismatch, match="weights_only=True"):
        train.load_checkpoint(path)


def test_ensure_course_model_reuses_the_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTLAB_DATA", str(tmp_path))
    m = models.resnet18(10)
    train.save_checkpoint(m, tmp_path / "artifacts" / train.COURSE_CHECKPOINT, META)

    def no_training(*a, **k):
        raise AssertionError("ensure_course_model trained although a checkpoint exists")

    monkeypatch.setattr(train, "fit", no_training)
    model, meta = train.ensure_course_model(progress=False)
    assert meta["arch"] == "resnet18/imagenet" and not model.training
