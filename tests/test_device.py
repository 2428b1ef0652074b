"""trtlab.device: the declared device protocol, its three implementations, the interop helpers and the one timer."""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from trtlab import device, env, runtime
from trtlab.errors import InputMismatch, UnsupportedFeature
from trtlab.standin.cpu import SimDevice, SimEngine

PROTOCOL_METHODS = ["capture", "copy_", "download", "elapsed_ms", "empty", "event", "ptr", "synchronize", "upload"]


def test_protocol_declares_what_the_runner_uses():
    declared = sorted(n for n, v in vars(device.DeviceMemory).items() if inspect.isfunction(v) and not n.startswith("_"))
    assert declared == PROTOCOL_METHODS
    assert isinstance(vars(device.DeviceMemory)["stream"], property)


@pytest.mark.parametrize("cls", [device.TorchDevice, device.CupyDevice, SimDevice])
def test_each_device_implements_the_protocol(cls):
    """Every protocol method exists with the protocol's parameters (a real GPU is not needed to check the shape)."""
    assert isinstance(cls.name, str)
    for method in PROTOCOL_METHODS:
        want = list(inspect.signature(getattr(device.DeviceMemory, method)).parameters)[1:]
        got = [p for p in inspect.signature(getattr(cls, method)).parameters if p != "self"]
        assert got == want, f"{cls.__name__}.{method}{tuple(got)}: expected parameters {tuple(want)}"
    assert isinstance(vars(cls).get("stream"), property) or cls is SimDevice  # SimDevice: an int per instance


def test_sim_device_is_a_device_memory_and_runs_the_runner():
    sim = SimDevice()
    assert isinstance(sim, device.DeviceMemory)
    engine = SimEngine(memory=sim.memory)
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    with runtime.TensorRTRunner(engine, device=sim, cuda_graph=True) as r:
        for _ in range(3):  # first run eager, then captured, then replayed
            np.testing.assert_allclose(r.infer({"images": x})["logits"], engine.reference(x), rtol=1e-6)
        assert sim.captures == 1 and r.last_times is not None


def test_runtime_keeps_its_device_names():
    assert runtime.TorchDevice is device.TorchDevice and runtime.CupyDevice is device.CupyDevice
    assert runtime.default_device is device.default_device


def test_address_of_every_kind_of_array():
    host = np.zeros(4, np.float32)
    assert device.address(host) == host.__array_interface__["data"][0]
    assert device.address(np.uint64(0x1000)) == 0x1000 and device.address(0x2000) == 0x2000
    assert device.address(SimpleNamespace(data_ptr=lambda: 0x3000)) == 0x3000
    assert device.address(SimpleNamespace(data=SimpleNamespace(ptr=0x4000))) == 0x4000
    with pytest.raises(InputMismatch, match="expected a device pointer"):
        device.address("0x10")


def no_gpu(monkeypatch):
    monkeypatch.setattr(env, "capabilities",
                        lambda: SimpleNamespace(torch_cuda=False, cupy_runs_kernels=False, has_gpu=False))


def test_without_a_gpu_every_gpu_helper_says_so(monkeypatch):
    no_gpu(monkeypatch)
    with pytest.raises(UnsupportedFeature, match="no NVIDIA GPU.*cupy"):
        device.require_gpu("a test")
    with pytest.raises(UnsupportedFeature, match="copy bandwidth needs an NVIDIA GPU"):
        device.copy_bandwidth()
    with pytest.raises(UnsupportedFeature, match="PyTorch .CUDA build. or CuPy"):
        device.default_device()


def test_on_gpu_says_what_the_cpu_misses(monkeypatch, capsys):
    no_gpu(monkeypatch)
    assert device.on_gpu("the kernel's timings") is False
    assert capsys.readouterr().out == "CPU mode, no GPU that CuPy can use: the kernel's timings\n"


def test_on_gpu_is_quiet_on_a_gpu(monkeypatch, capsys):
    monkeypatch.setattr(env, "capabilities", lambda: SimpleNamespace(cupy_runs_kernels=True))
    assert device.on_gpu("x") is True and capsys.readouterr().out == ""


def test_cuda_timer_times_between_the_devices_events(monkeypatch):
    """The one timer records an event, runs fn reps times, records another and divides: checked with a clock device."""
    ticks = iter(range(0, 1000, 10))

    class Clock:
        def event(self):
            return next(ticks)

        def elapsed_ms(self, start, end):
            return float(end - start)

    monkeypatch.setattr(device, "_timing_device", lambda stream: Clock())
    calls = []
    timer = device.cuda_timer(lambda: calls.append(1), reps=5)
    assert timer() == pytest.approx(10 / 5) and len(calls) == 5
