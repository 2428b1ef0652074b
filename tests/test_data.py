"""trtlab.data: the procedural shapes set, tensors, CIFAR-10 on disk, folders of images."""

from __future__ import annotations

import pickle
import tarfile

import numpy as np
import pytest

from trtlab import data
from trtlab.errors import ArtifactMissing, InputMismatch


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TRTLAB_DATA", str(tmp_path))
    return tmp_path


def test_shapes_are_deterministic_and_well_formed():
    a = data.load_shapes("val", n=64, cache=False)
    b = data.load_shapes("val", n=64, cache=False)
    assert a.images.shape == (64, 32, 32, 3) and a.images.dtype == np.uint8
    assert a.labels.dtype == np.int64 and a.labels.shape == (64,)
    assert a.brightness.shape == (64,) and a.brightness.dtype.kind == "f"
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert a.classes == data.SHAPE_CLASSES and len(a.classes) == 10
    lo, hi = data.BRIGHTNESS_RANGE
    assert lo <= a.brightness.min() and a.brightness.max() <= hi


def test_splits_and_seeds_differ():
    val = data.load_shapes("val", n=32, cache=False)
    test = data.load_shapes("test", n=32, cache=False)
    other = data.load_shapes("val", n=32, seed=1, cache=False)
    assert not np.array_equal(val.images, test.images)
    assert not np.array_equal(val.images, other.images)


def test_illumination_is_in_the_pixels():
    d = data.load_shapes("calib", n=400, cache=False)
    dark, bright = d.brightness < 0.5, d.brightness > 1.2
    assert d.images[bright].mean() > 2 * d.images[dark].mean()
    bins = data.brightness_bins(d.brightness, 4)
    assert set(np.unique(bins)) == {0, 1, 2, 3}


def test_all_classes_present_with_variation():
    d = data.load_shapes("test", n=500, cache=False)
    counts = np.bincount(d.labels, minlength=10)
    assert (counts > 20).all()
    # same class, different images: position/colour/scale vary
    circles = d.images[d.labels == 0].astype(float)
    assert circles.std(axis=0).mean() > 20


def test_cache_roundtrip_and_damaged_cache_is_regenerated(data_dir):
    a = data.load_shapes("val", n=40)
    files = list((data_dir / "cache").glob("shapes-val-*.npz"))
    assert len(files) == 1
    b = data.load_shapes("val", n=40)
    assert np.array_equal(a.images, b.images) and b.meta["sha256"] == a.meta["sha256"]
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncate the cache
    c = data.load_shapes("val", n=40)
    assert np.array_equal(a.images, c.images)


def test_bad_arguments_are_explained():
    with pytest.raises(ValueError, match="unknown split"):
        data.load_shapes("training")
    with pytest.raises(ValueError, match="too small"):
        data.load_shapes("val", size=8)


def test_to_tensor_layout_and_normalisation():
    d = data.load_shapes("val", n=4, cache=False)
    x = data.to_tensor(d.images)
    assert tuple(x.shape) == (4, 3, 32, 32) and str(x.dtype) == "torch.float32"
    assert np.allclose(x[0, :, 5, 7].numpy(), d.images[0, 5, 7] / 255.0)
    y = data.to_tensor(d.images, {"mean": [0.5] * 3, "std": [0.25] * 3})
    assert np.allclose(y.numpy(), (x.numpy() - 0.5) / 0.25, atol=1e-6)
    assert tuple(data.to_tensor(d.images[0]).shape) == (1, 3, 32, 32)


def test_to_tensor_rejects_wrong_input():
    with pytest.raises(InputMismatch, match="uint8"):
        data.to_tensor(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(InputMismatch, match=r"N×H×W×3"):
        data.to_tensor(np.zeros((2, 3, 32, 32), np.uint8))


def test_cifar10_missing_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactMissing, match="CIFAR-10 is not on this machine"):
        data.load_cifar10(root=tmp_path)


def _fake_cifar(folder, n=6):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, n))}, fh)


def test_cifar10_from_extracted_folder(tmp_path):
    _fake_cifar(tmp_path / "cifar-10-batches-py")
    train = data.load_cifar10("train", root=tmp_path)
    assert train.images.shape == (30, 32, 32, 3) and train.classes == data.CIFAR10_CLASSES
    assert len(data.load_cifar10("test", root=tmp_path)) == 6


def test_cifar10_archive_with_wrong_hash_is_refused(tmp_path):
    src = tmp_path / "src"
    _fake_cifar(src / "cifar-10-batches-py")
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(ArtifactMissing, match="sha256"):
        data.load_cifar10(root=root)
    assert len(data.load_cifar10(root=root, verify=False)) == 30  # the same archive, unchecked


def test_image_folder(tmp_path):
    from PIL import Image

    for cls, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new("RGB", (40, 20), colour).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "red" / "notes.txt").write_text("not an image")
    d = data.load_image_folder(tmp_path, size=16)
    assert d.classes == ["blue", "red"] and d.images.shape == (6, 16, 16, 3)
    assert (d.images[d.labels == 1][..., 0] == 255).all()


def test_image_folder_errors(tmp_path):
    with pytest.raises(ArtifactMissing, match="does not exist"):
        data.load_image_folder(tmp_path / "nope")
    with pytest.raises(ArtifactMissing, match="no class sub-folders"):
        data.load_image_folder(tmp_path)
    (tmp_path / "cat").mkdir()
    with pytest.raises(ArtifactMissing, match="hold no images"):
        data.load_image_folder(tmp_path)
    (tmp_path / "cat" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputMismatch, match="cannot read"):
        data.load_image_folder(tmp_path)
