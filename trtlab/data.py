"""Datasets for the course, all available offline.

- :func:`load_shapes`: a procedural 10-class "shapes under varying illumination" set, generated from a seed in
  seconds and cached under ``trtlab.paths.cache()`` (Lab 01 trains on it, Lab 03 calibrates with it). Every image
  carries its illumination gain (``.brightness``), so Lab 03 can show that a calibration set covering only dark
  images hurts INT8 accuracy on bright ones.
- :func:`load_cifar10`: CIFAR-10 when its python archive is already on disk (hash-checked; never downloaded here).
- :func:`load_image_folder`: a learner's own images, one sub-folder per class.
- :func:`sample_photos`, :func:`sample_frames`: real colour photos (bundled with scikit-image) and video-like 1080p
  frames made from them, for Lab 04's kernels.

The course normalisation is ``x / 255`` (mean 0, std 1): it keeps the illumination in the input scale, which is
what makes Lab 03's calibration-coverage lesson visible. :func:`to_tensor` applies whatever the checkpoint metadata
records, through :func:`normalise`.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from trtlab import paths
from trtlab.errors import ArtifactMissing, InputMismatch, InvalidArgument
from trtlab.i18n import _

__all__ = [
    "CIFAR10_CLASSES",
    "COURSE_NORMALISATION",
    "Dataset",
    "PHOTOS",
    "SHAPE_CLASSES",
    "SPLITS",
    "batches",
    "brightness_bins",
    "load_cifar10",
    "load_image_folder",
    "load_shapes",
    "normalise",
    "random_feeds",
    "sample_frames",
    "sample_grid",
    "sample_photos",
    "to_numpy_input",
    "to_tensor",
    "write_sample_photos",
]

#: Bump when the generator changes: it is part of the cache key, so old caches are never reused by mistake.
GENERATOR_VERSION = 1
SHAPE_CLASSES = ["circle", "square", "triangle", "star", "cross", "ring", "crescent", "heart", "arrow", "semicircle"]
#: Default number of images per split (the training recipe of Lab 01 is tuned for these).
SPLITS = {"train": 24000, "val": 2000, "test": 2000, "calib": 1024}
_SPLIT_SEED = {"train": 1, "val": 2, "test": 3, "calib": 4}
#: Illumination gain range; the darkest images are ~7× darker than the brightest.
BRIGHTNESS_RANGE = (0.2, 1.5)
#: x/255, recorded in checkpoint metadata (mean/std per channel, in the 0..1 scale).
COURSE_NORMALISATION = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
#: sha256 of the archive at CIFAR10_URL
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"


@dataclass
class Dataset:
    """Images (uint8, N×H×W×3 RGB), labels (int64 N) and the illumination attribute (float N)."""

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    brightness: np.ndarray | None = None
    name: str = "dataset"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        h, w = self.images.shape[1:3]
        extra = ""
        if self.brightness is not None:
            extra = f", brightness {self.brightness.min():.2f}..{self.brightness.max():.2f}"
        return f"Dataset({self.name!r}, {len(self)} images {h}×{w}, {len(self.classes)} classes{extra})"

    def subset(self, index: np.ndarray | Sequence[int] | slice) -> "Dataset":
        """The images selected by ``index`` (a boolean mask, indices or a slice)."""
        return Dataset(self.images[index], self.labels[index], list(self.classes),
                       None if self.brightness is None else self.brightness[index], self.name, dict(self.meta))


# ---------------------------------------------------------------- the procedural shapes set


def _shape_mask(kind: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside-test of shape ``kind`` in its own unit coordinates (about [-1, 1]²)."""
    r = np.hypot(u, v)
    if kind == 0:  # circle
        return r < 0.9
    if kind == 1:  # square
        return np.maximum(np.abs(u), np.abs(v)) < 0.75
    if kind == 2:  # triangle (equilateral, centred)
        return (v > -0.5) & (np.sqrt(3) * u + v < 1.0) & (-np.sqrt(3) * u + v < 1.0)
    if kind == 3:  # five-pointed star
        theta = np.arctan2(v, u)
        return r < 0.42 + 0.58 * np.abs(np.cos(2.5 * theta)) ** 3
    if kind == 4:  # plus-shaped cross
        return ((np.abs(u) < 0.3) & (np.abs(v) < 0.95)) | ((np.abs(v) < 0.3) & (np.abs(u) < 0.95))
    if kind == 5:  # ring
        return (r < 0.95) & (r > 0.55)
    if kind == 6:  # crescent
        return (r < 0.95) & (np.hypot(u - 0.5, v) > 0.75)
    if kind == 7:  # heart
        x, y = u * 1.25, v * 1.25 + 0.15
        return (x**2 + y**2 - 1) ** 3 - x**2 * y**3 < 0
    if kind == 8:  # arrow: shaft + head
        shaft = (np.abs(v) < 0.18) & (u > -0.95) & (u < 0.1)
        head = (u >= 0.0) & (u < 0.95) & (np.abs(v) < 0.85 * (0.95 - u))
        return shaft | head
    if kind == 9:  # semicircle (half disc)
        return (r < 0.95) & (v > -0.25)
    raise ValueError(f"unknown shape {kind}")


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency texture: a cells×cells random grid, bilinearly upsampled to size×size, in [-1, 1]."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1))
    t = np.linspace(0, cells, size)
    i = np.minimum(t.astype(int), cells - 1)
    f = t - i
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def _render(rng: np.random.Generator, n: int, size: int, *, progress: bool = False,
            desc: str = "shapes") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` images: shape, colour, scale, rotation, position, background texture, illumination, noise."""
    ss = 3  # supersampling factor for anti-aliased edges
    grid = (np.arange(size * ss) + 0.5) / ss  # pixel coordinates in the size×size frame
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    images = np.empty((n, size, size, 3), np.uint8)
    labels = rng.integers(0, len(SHAPE_CLASSES), n).astype(np.int64)
    brightness = rng.uniform(*BRIGHTNESS_RANGE, n)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc=f"generating {desc}", unit="img", mininterval=1.0)
        except ImportError:
            bar = None
    for k in range(n):
        if bar is not None and k % 500 == 0 and k:
            bar.update(500)
        radius = rng.uniform(0.26, 0.42) * size  # 8–13.5 px at 32×32
        cx, cy = rng.uniform(radius * 0.75, size - radius * 0.75, 2)
        angle = rng.uniform(0, 2 * np.pi)
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = (gx - cx) / radius, (gy - cy) / radius
        u, v = c * dx + s * dy, -s * dx + c * dy
        cover = _shape_mask(int(labels[k]), u, v).reshape(size, ss, size, ss).mean(axis=(1, 3))
        background = rng.uniform(0.05, 0.95, 3)
        while True:  # foreground colour clearly different from the background
            colour = rng.uniform(0, 1, 3)
            if np.linalg.norm(colour - background) >= 0.5:
                break
        texture = _smooth_noise(rng, size, 4)[..., None] * rng.uniform(0.0, 0.08)
        img = background + texture
        img = img * (1 - cover[..., None]) + colour * cover[..., None]
        contrast = rng.uniform(0.8, 1.0)
        img = 0.5 + (img - 0.5) * contrast
        # illumination: a global gain plus a gentle linear light gradient across the image
        gx1 = np.linspace(-1, 1, size)
        ga = rng.uniform(0, 2 * np.pi)
        ramp = np.cos(ga) * gx1[None, :] + np.sin(ga) * gx1[:, None]
        gain = brightness[k] * (1 + rng.uniform(0.0, 0.2) * ramp)
        img = img * gain[..., None]
        img = img + rng.normal(0, 0.02, img.shape)  # sensor noise: does not scale with the light
        images[k] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    if bar is not None:
        bar.update(n - bar.n)
        bar.close()
    return images, labels, brightness


def _array_digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def load_shapes(split: str = "train", *, size: int = 32, n: int | None = None, seed: int = 0,
                cache: bool = True, progress: bool = True) -> Dataset:
    """The procedural shapes set: 10 classes, ``size``×``size`` RGB, deterministic for (split, size, n, seed).

    The first call generates it (~10 s for the 24,000 training images, with a progress bar) and caches it under
    ``trtlab.paths.cache()`` as an ``.npz`` keyed by its parameters, with a sha256 of the content checked on load.
    Splits are drawn from different seeds, so train/val/test/calib never share an image.
    """
    if split not in SPLITS:
        raise InvalidArgument(_("load_shapes: unknown split {split!r}; expected one of {splits}").format(
                                  split=split, splits=sorted(SPLITS)))
    if size < 16:
        raise InvalidArgument(_("load_shapes: size={size} is too small for the shapes to be recognisable; use "
                                "size >= 16").format(size=size))
    count = SPLITS[split] if n is None else int(n)
    if count <= 0:
        raise InvalidArgument(_("load_shapes: n must be positive; got {n}").format(n=n))
    params = {"v": GENERATOR_VERSION, "split": split, "size": size, "n": count, "seed": seed}
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    path = paths.cache() / f"shapes-{split}-{size}px-{count}-s{seed}-{key}.npz"
    if cache and path.exists():
        try:
            with np.load(path) as z:
                images, labels, brightness, digest = z["images"], z["labels"], z["brightness"], str(z["sha256"])
            if _array_digest(images, labels, brightness) == digest:
                return _shapes_dataset(images, labels, brightness, params, digest, split)
        except Exception:  # noqa: BLE001 - a truncated zip, a missing key...: the cache is regenerated below
            pass
    rng = np.random.default_rng([seed, _SPLIT_SEED[split], size, GENERATOR_VERSION])
    images, labels, brightness = _render(rng, count, size, progress=progress and count >= 5000,
                                         desc=f"shapes/{split}")
    digest = _array_digest(images, labels, brightness)
    if cache:
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, labels=labels, brightness=brightness, sha256=np.array(digest))
        tmp.replace(path)
    return _shapes_dataset(images, labels, brightness, params, digest, split)


def _shapes_dataset(images, labels, brightness, params, digest, split) -> Dataset:
    return Dataset(images, labels, list(SHAPE_CLASSES), brightness, name=f"shapes/{split}",
                   meta={**params, "sha256": digest, **COURSE_NORMALISATION})


def brightness_bins(brightness: np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Bin index (0 = darkest) of each image, equal-width bins over :data:`BRIGHTNESS_RANGE`."""
    lo, hi = BRIGHTNESS_RANGE
    edges = np.linspace(lo, hi, n_bins + 1)[1:-1]
    return np.digitize(np.asarray(brightness), edges)


# ---------------------------------------------------------------- tensors and batches


def to_tensor(images: np.ndarray, meta: Mapping[str, Any] | None = None) -> Any:
    """uint8 N×H×W×C (or one H×W×C image; C = 3 for RGB, 1 for grayscale) → float32 torch tensor N×C×H×W,
    normalised as ``meta`` records.

    ``meta`` is the checkpoint metadata (keys ``mean``/``std`` in the 0..1 scale, one value per channel); without it
    the course normalisation x/255 is used.
    """
    import torch

    arr = np.asarray(images)
    if arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] not in (1, 3, 4):
        raise InputMismatch(_("to_tensor: got an array of shape {shape}, expected N×H×W×3 (RGB) or N×H×W×1 "
                              "(grayscale), channels last; pass dataset.images, not tensors that were already "
                              "converted (grayscale N×H×W: add the axis with images[..., None])").format(
                                shape=arr.shape))
    if arr.dtype != np.uint8:
        raise InputMismatch(_("to_tensor: got dtype {dtype}, expected uint8 images in 0..255; convert with (x * "
                              "255).round().astype(np.uint8) if they are floats in 0..1").format(dtype=arr.dtype))
    c = arr.shape[-1]
    norm = dict(meta) if meta else {}
    mean, std = list(norm.get("mean", [0.0] * c)), list(norm.get("std", [1.0] * c))
    if meta is None and c != 3:
        mean, std = [0.0] * c, [1.0] * c
    if len(mean) != c or len(std) != c:
        raise InputMismatch(_("to_tensor: {c}-channel images, but the metadata's mean/std have {n_mean}/{n_std} "
                              "values | expected one per channel | pass meta with mean/std of length {c}").format(
                                c=c, n_mean=len(mean), n_std=len(std)))
    return torch.from_numpy(np.ascontiguousarray(normalise(arr, mean, std).transpose(0, 3, 1, 2)))


def normalise(images: Any, mean: Sequence[float] = (0.0, 0.0, 0.0), std: Sequence[float] = (1.0, 1.0, 1.0), *,
              dtype: Any = np.float32) -> np.ndarray:
    """``(x / 255 − mean) / std`` per channel (the last axis), computed in ``dtype``: the one normalisation of the
    course, which every CPU path (:func:`to_tensor`, the Lab 04 references and OpenCV path) calls. ``images``: pixel
    values in 0..255 (uint8, or the float result of a resize), channels last; ``mean``/``std`` in the 0..1 scale.
    The layout is left to the caller (NCHW: ``.transpose(0, 3, 1, 2)``)."""
    dtype = np.dtype(dtype)
    x = np.asarray(images).astype(dtype, copy=False)
    return (x / dtype.type(255) - np.asarray(mean, dtype)) / np.asarray(std, dtype)


def to_numpy_input(images: np.ndarray, meta: Mapping[str, Any] | None = None) -> np.ndarray:
    """Like :func:`to_tensor`, as a float32 NumPy array (the ``images`` input of the ONNX model)."""
    return to_tensor(images, meta).numpy()


def batches(dataset: Dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, drop_last: bool = False):
    """Yield (uint8 images, int64 labels) batches; shuffled with a seeded generator when asked."""
    order = np.random.default_rng(seed).permutation(len(dataset)) if shuffle else np.arange(len(dataset))
    stop = len(order) - (len(order) % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield dataset.images[idx], dataset.labels[idx]


def random_feeds(shape: Sequence[int] | Any = (1, 3, 32, 32), *, name: str = "images", seed: int = 0,
                 batch: int = 1) -> dict[str, np.ndarray]:
    """A feed dict of uniform random values in 0..1 (for smoke tests and warm-ups, not for accuracy).

    ``shape`` is one input's shape (named ``name``: the course model's 1×3×32×32 ``images`` by default), or a model
    to follow: an ONNX path or a runner, whose every input gets its own name, dtype and shape (dynamic dims =
    ``batch``).
    """
    rng = np.random.default_rng(seed)
    if isinstance(shape, (str, Path)) or hasattr(shape, "inputs"):
        from trtlab.runtime import OnnxRuntimeRunner

        runner = shape if hasattr(shape, "inputs") else OnnxRuntimeRunner(shape)
        feeds = {}
        for spec in runner.inputs().values():
            dims = tuple(batch if d is None else d for d in spec.shape)
            if None in spec.shape[1:]:
                raise InputMismatch(_("random_feeds: input {input} has free sizes besides the batch | pass a "
                                      "shape instead").format(input=spec.describe()))
            feeds[spec.name] = rng.random(dims).astype(spec.dtype)
        return feeds
    return {name: rng.random(tuple(shape), dtype=np.float32)}


#: Colour photos bundled with scikit-image (no download), used as real test images.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def sample_photos() -> dict[str, np.ndarray]:
    """scikit-image's bundled colour photos as BGR uint8 (as ``cv2.imread`` would give them)."""
    import skimage.data

    return {name: np.ascontiguousarray(getattr(skimage.data, name)()[:, :, ::-1]) for name in PHOTOS}


def write_sample_photos(folder: Path | str | None = None) -> list[Path]:
    """Write the sample photos as JPEG files (default: ``artifacts()/lab04_photos``), for the end-to-end pipeline
    that starts from image files."""
    import cv2

    folder = Path(folder) if folder is not None else paths.artifacts() / "lab04_photos"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in sample_photos().items():
        path = folder / f"{name}.jpg"
        if not path.exists():
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        written.append(path)
    return written


def sample_frames(n: int, hw: tuple[int, int] = (1080, 1920), *, seed: int = 0) -> np.ndarray:
    """``n`` video-like BGR frames of size ``hw``: a real photo resized, plus noise (never constant: constant data
    hides unwritten pixels and wrong indexing)."""
    import cv2

    base = cv2.resize(sample_photos()["astronaut"], (hw[1], hw[0]), interpolation=cv2.INTER_LINEAR)
    rng = np.random.default_rng(seed)
    out = np.empty((n, *hw, 3), np.uint8)
    for i in range(n):
        noise = rng.integers(-20, 21, base.shape, dtype=np.int16)
        out[i] = np.clip(base.astype(np.int16) + noise, 0, 255)
    return out


def sample_grid(dataset: Dataset, *, per_class: int = 6, seed: int = 0, ax=None):
    """A grid of sample images, one row per class, titled with brightness (Lab 01 looks at the data first)."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    n_cls = len(dataset.classes)
    if ax is None:
        fig, axes = plt.subplots(n_cls, per_class, figsize=(per_class * 1.1, n_cls * 1.15))
    else:
        fig, axes = ax.figure, ax
    for c in range(n_cls):
        idx = np.flatnonzero(dataset.labels == c)
        chosen: Any = rng.choice(idx, min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            a = axes[c, j]
            a.axis("off")
            if j < len(chosen):
                a.imshow(dataset.images[chosen[j]], interpolation="nearest")
                if dataset.brightness is not None:
                    a.set_title(f"{dataset.brightness[chosen[j]]:.2f}", fontsize=7)
        axes[c, 0].text(-4, 16, dataset.classes[c], ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- CIFAR-10 and folders of images


def load_cifar10(split: str = "train", *, root: str | Path | None = None, verify: bool = True,
                 download: bool = False) -> Dataset:
    """CIFAR-10 from ``cifar-10-python.tar.gz`` (or its extracted ``cifar-10-batches-py`` folder).

    Looks in ``root`` or ``trtlab.paths.cache()``. Nothing is downloaded unless ``download=True`` (tests and CI run
    offline). The archive's sha256 is checked against the published one.
    """
    if split not in ("train", "test"):
        raise InvalidArgument(_("load_cifar10: unknown split {split!r}; expected 'train' or 'test'").format(
                                  split=split))
    base = Path(root) if root is not None else paths.cache()
    archive = base / "cifar-10-python.tar.gz"
    folder = base / "cifar-10-batches-py"
    if not folder.is_dir():
        if not archive.exists() and download:
            import urllib.request

            base.mkdir(parents=True, exist_ok=True)
            try:
                urllib.request.urlretrieve(CIFAR10_URL, archive.with_suffix(".part"))
            except OSError as err:
                raise ArtifactMissing(_("CIFAR-10 download from {url} failed ({err}); this machine is "
                                        "probably offline: copy cifar-10-python.tar.gz into {base} by hand").format(
                                          url=CIFAR10_URL, err=err, base=base)) from err
            archive.with_suffix(".part").replace(archive)
        if not archive.exists():
            raise ArtifactMissing(
                _("CIFAR-10 is not on this machine: looked for {archive} and {folder}. The course works offline "
                  "with tl.data.load_shapes(); to use CIFAR-10, download cifar-10-python.tar.gz from "
                  "https://www.cs.toronto.edu/~kriz/cifar.html into that folder (or pass root=..., or "
                  "download=True where there is internet)").format(archive=archive, folder=folder))
        if verify:
            digest = hashlib.sha256(archive.read_bytes()).hexdigest()
            if digest != CIFAR10_SHA256:
                raise ArtifactMissing(_("{archive}: sha256 {digest}…, expected {expected}… (the published "
                                        "archive); the download is incomplete or another file: delete it and "
                                        "download it again").format(
                                          archive=archive, digest=digest[:12], expected=CIFAR10_SHA256[:12]))
        with tarfile.open(archive) as tar:
            tar.extractall(base, filter="data")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    images, labels = [], []
    for name in names:
        file = folder / name
        if not file.exists():
            raise ArtifactMissing(_("CIFAR-10 folder {folder} lacks {name}; delete the folder and extract the "
                                    "archive again").format(folder=folder, name=name))
        with open(file, "rb") as fh:
            batch = pickle.load(fh, encoding="bytes")
        images.append(np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], np.int64))
    return Dataset(np.concatenate(images), np.concatenate(labels), list(CIFAR10_CLASSES), None,
                   name=f"cifar10/{split}", meta={**COURSE_NORMALISATION})


_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def load_image_folder(root: str | Path, *, size: int = 32) -> Dataset:
    """A learner's own images: ``root/<class name>/<image>``, resized to ``size``×``size`` RGB (Pillow)."""
    from PIL import Image

    base = Path(root)
    if not base.is_dir():
        raise ArtifactMissing(_("image folder {base} does not exist; expected root/<class>/<image files>").format(
                                  base=base))
    classes = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ArtifactMissing(_("image folder {base} has no class sub-folders; expected root/<class>/<image "
                                "files>, e.g. root/cat/001.png").format(base=base))
    images, labels = [], []
    for index, name in enumerate(classes):
        for file in sorted((base / name).iterdir()):
            if file.suffix.lower() not in _IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as opened:
                    rgb = opened.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(rgb, np.uint8))
            except OSError as err:
                raise InputMismatch(_("image folder: cannot read {file} ({err}); remove or re-save it").format(
                                        file=file, err=err)) from err
            labels.append(index)
    if not images:
        raise ArtifactMissing(_("image folder {base}: class folders {classes} hold no images ({suffixes})").format(
                                  base=base, classes=classes, suffixes=', '.join(sorted(_IMAGE_SUFFIXES))))
    return Dataset(np.stack(images), np.asarray(labels, np.int64), classes, None, name=f"folder/{base.name}",
                   meta={**COURSE_NORMALISATION})
