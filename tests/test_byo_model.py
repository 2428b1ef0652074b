"""Bring your own model: a second architecture, unlike the course's ResNet in every I/O respect (input named
'pixels', 1×48×48 grayscale, two outputs 'logits' and 'embedding'), goes through export → parity → "will TensorRT
accept it?" → fp16/INT8 ONNX → TensorRT-RTX builds → accuracy table, with no argument the course model would not
need: names, channels, shapes and the output count are read from the model or the ONNX file.

The only names passed are the model's own, once, at export (the course model gets 'images'/'logits' by default)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from trtlab import _compat, data, engine, export, precision, runtime
from trtlab.errors import ExportError, InputMismatch, InvalidArgument

RTX = next(f for f in _compat.flavours() if f.is_rtx)


class Pixels(nn.Module):
    """Grayscale 48×48 in; class scores and a 12-d embedding out."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.embed = nn.Linear(16, 12)
        self.head = nn.Linear(12, 5)

    def forward(self, pixels):  # the names the exported file and every runner use come from here
        embedding = self.embed(self.features(pixels))
        return {"logits": self.head(torch.relu(embedding)), "embedding": embedding}


@pytest.fixture(scope="module")
def byo(tmp_path_factory):
    torch.manual_seed(0)
    model = Pixels()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so eval and train modes differ
        model.features[1].running_mean.uniform_(-0.2, 0.2)
        model.features[1].running_var.uniform_(0.5, 2.0)
    model.eval()
    folder = tmp_path_factory.mktemp("byo")
    path = export.export_onnx(model, folder / "pixels.onnx", input_size=48)  # nothing the course model needs not
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 48, 48, 1), dtype=np.uint8)  # grayscale, channels last like dataset.images
    return model, path, images, data.to_numpy_input(images)


def test_export_reads_channels_and_names_every_output(byo):
    _, path, _, x = byo
    s = export.inspect_onnx(path)
    assert [i.name for i in s.inputs] == ["pixels"] and s.inputs[0].shape[1:] == (1, 48, 48)
    assert s.inputs[0].dynamic_axes == [0]
    assert [o.name for o in s.outputs] == ["logits", "embedding"]
    assert x.shape == (64, 1, 48, 48) and x.dtype == np.float32


def test_parity_compares_every_output_and_leaves_the_model_alone(byo):
    model, path, images, _ = byo
    model.train()
    p = export.parity(model, path, images)
    assert model.training, "parity must give the model back in the mode it was in"
    model.eval()
    assert p, repr(p)
    assert [o.name for o in p.outputs] == ["logits", "embedding"] and p.precision == "fp32"
    assert p.top1_agreement == 1.0 and p.n == 64

    class Twisted(Pixels):  # same logits, a different embedding: only a check of every output sees it
        def forward(self, pixels):
            out = super().forward(pixels)
            return {"logits": out["logits"], "embedding": out["embedding"] * 1.01}

    twisted = Twisted()
    twisted.load_state_dict(model.state_dict())
    bad = export.parity(twisted.eval(), path, images)
    assert not bad and bad.outputs[0].passed and not bad.outputs[1].passed, repr(bad)
    assert "embedding" in repr(bad)


def test_runners_and_feeds_follow_the_model(byo):
    model, path, _, x = byo
    torch_runner = runtime.TorchRunner(model, device="cpu")
    assert torch_runner.inputs()["pixels"].shape == (None, 1, None, None), "name from forward, channels from conv"
    out = torch_runner.infer({"pixels": x[:3]})
    assert list(out) == ["logits", "embedding"], "output names from the dict the model returns"
    assert out["logits"].shape == (3, 5) and out["embedding"].shape == (3, 12)

    class Unnamed(Pixels):  # a plain tuple carries no names: the runner says so, and names given are used
        def forward(self, pixels):
            out = super().forward(pixels)
            return out["logits"], out["embedding"]

    unnamed = Unnamed()
    unnamed.load_state_dict(model.state_dict())
    with pytest.raises(InputMismatch, match="returned 2 outputs"):
        runtime.TorchRunner(unnamed, device="cpu").infer({"pixels": x[:3]})
    named = runtime.TorchRunner(unnamed, device="cpu", output_names=["logits", "embedding"]).infer({"pixels": x[:3]})
    np.testing.assert_array_equal(named["embedding"], out["embedding"])
    feeds = data.random_feeds(path, batch=2)
    assert list(feeds) == ["pixels"] and feeds["pixels"].shape == (2, 1, 48, 48)
    ort = precision.ort_runner(path)
    assert precision.predict_logits(ort, x).shape == (64, 5), "first output, by the file's own names"


def test_tensorrt_accepts_the_other_architecture(byo):
    _, path, _, _ = byo
    report = export.tensorrt_accepts(path)
    assert report, str(report)
    assert report.results[0].profile["pixels"][2] == (32, 1, 48, 48)


@pytest.mark.slow
def test_fp16_and_int8_builds_and_accuracy(byo):
    model, path, images, x = byo
    fp16 = precision.autocast_fp16(path, calibration_data=x[:16])
    int8 = precision.quantize_int8(path, x[:32])
    for onnx_path, label in ((path, "fp32"), (fp16, "fp16"), (int8, "int8")):
        built = engine.build(onnx_path, flavour=RTX, batch=(1, 4, 16))
        assert built.metadata.precision == label
        assert set(built.metadata.inputs) == {"pixels"} and set(built.metadata.outputs) == {"logits", "embedding"}
    p16 = export.parity(model, fp16, images)
    assert p16 and p16.precision == "fp16", repr(p16)
    p8 = export.parity(model, int8, images)
    assert p8.precision == "int8" and p8.outputs[0].max_rel < 0.1, repr(p8)
    labels = np.zeros(len(x), np.int64)
    table = precision.accuracy_table({"fp32": path, "fp16": fp16, "int8": int8}, x, labels)
    assert table["fp16"].agreement >= 95 and table["int8"].agreement >= 80, table
    errors = precision.layerwise_error(path, int8, x[:8])
    assert errors and all(np.isfinite(e.rel_error) for e in errors)


def test_export_mistakes_are_explained(tmp_path):
    torch.manual_seed(0)
    rgb = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.raises(InvalidArgument, match=r"1 channel\(s\), but the first conv .* takes 3"):
        export.export_onnx(rgb, tmp_path / "unused.onnx", input_size=(1, 64, 64))

    class Unnamed(Pixels):  # a plain tuple of two outputs: nothing in the model names them
        def forward(self, pixels):
            out = super().forward(pixels)
            return out["logits"], out["embedding"]

    with pytest.raises(InvalidArgument, match="2 outputs; name each one"):
        export.export_onnx(Unnamed().eval(), tmp_path / "unused.onnx", input_size=48)

    class Broken(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)

        def forward(self, x):
            raise RuntimeError("first line\n\x1b[31msecond line names the real cause\x1b[0m")

    with pytest.raises(ExportError, match="second line names the real cause") as err:
        export.export_onnx(Broken(), tmp_path / "unused.onnx", input_size=8)
    assert "\x1b" not in str(err.value), "no terminal colour codes in the message"
