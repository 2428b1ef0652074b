"""perf_analyzer, Triton's C++ load generator, where its binary runs (Lab 06).

The PyPI ``perf-analyzer`` wheels need glibc >= 2.38 and ``tritonclient[all]`` ships a placeholder; the binary
inside the ``tritonclient==2.51.0`` wheel runs here (``python -m trtlab.serve prepare --perf-analyzer``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from trtlab.errors import TritonError, UnsupportedFeature
from trtlab.serve.server import TritonServer, _bundled_server_dir

__all__ = ["PERF_ANALYZER_WHEEL", "install_perf_analyzer", "perf_analyzer", "perf_analyzer_binary"]

PERF_ANALYZER_WHEEL = "tritonclient==2.51.0"


def perf_analyzer_binary() -> Path | None:
    """A ``perf_analyzer`` that runs here, or None.

    The PyPI ``perf-analyzer`` wheels need glibc >= 2.38 and ``tritonclient[all]`` ships a placeholder; the
    ``tritonclient==2.51.0`` wheel has a real binary (extract ``tritonclient-2.51.0.data/data/bin/perf_analyzer``
    onto PATH or set TRTLAB_PERF_ANALYZER).
    """
    candidates = [os.environ.get("TRTLAB_PERF_ANALYZER", ""), str(Path(sys.executable).parent / "perf_analyzer"),
                  shutil.which("perf_analyzer") or ""]
    for candidate in filter(None, candidates):
        path = Path(candidate)
        if path.is_file() and os.access(path, os.X_OK) and path.stat().st_size > 1_000_000:
            return path
    return None


def _perf_analyzer_env() -> dict[str, str]:
    """perf_analyzer links libb64.so.0d and libcudart.so.12; nvidia-pytriton bundles both under hashed names."""
    from trtlab.paths import cache

    libs = cache() / "triton-backends" / "perf_analyzer_libs"
    libs.mkdir(parents=True, exist_ok=True)
    bundled = _bundled_server_dir().parent.parent / "nvidia_pytriton.libs"
    for wanted, pattern in (("libb64.so.0d", "libb64-*.so.0d"), ("libcudart.so.12", "libcudart-*.so.12*")):
        found = sorted(bundled.glob(pattern))
        if found and not (libs / wanted).exists():
            (libs / wanted).symlink_to(found[0])
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join([str(libs), env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    return env


def perf_analyzer(server: TritonServer, model: str, *, concurrency: Sequence[int] = (1, 8, 32), shape: str,
                  protocol: str = "grpc", timeout_s: float = 300.0, count_windows: int = 200,
                  stability_percent: int = 50) -> list[dict[str, float]]:
    """Run perf_analyzer (C++ load generator) over a concurrency range; rows of its CSV report.

    ``shape`` is e.g. ``"images:3,32,32"`` (without the batch dimension). Raises UnsupportedFeature without a binary.
    """
    import csv

    binary = perf_analyzer_binary()
    if binary is None:
        raise UnsupportedFeature("no working perf_analyzer: pip download --no-deps tritonclient==2.51.0, unzip "
                                 "tritonclient-2.51.0.data/data/bin/perf_analyzer onto PATH (see "
                                 "tl.serve.perf_analyzer_binary.__doc__)")
    report = Path(tempfile.mkdtemp(prefix="trtlab-pa-")) / "report.csv"
    lo, hi = min(concurrency), max(concurrency)
    step = (sorted(concurrency)[1] - lo) if len(concurrency) > 1 else 1
    cmd = [str(binary), "-m", model, "-i", protocol, "-u", server.url(protocol), "--shape", shape,
           f"--concurrency-range={lo}:{hi}:{max(step, 1)}", "--measurement-mode", "count_windows",
           "--measurement-request-count", str(count_windows), "--stability-percentage", str(stability_percent),
           "--max-trials", "8", "-f", str(report)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=_perf_analyzer_env())
    if done.returncode != 0:
        raise TritonError(f"perf_analyzer failed (exit {done.returncode}): {(done.stderr or done.stdout)[-800:]}")
    with open(report) as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]


def install_perf_analyzer(target: str | Path | None = None) -> Path:
    """Extract ``perf_analyzer`` from the ``tritonclient==2.51.0`` wheel into this environment's ``bin/``.

    Only the binary is taken (the wheel's Python package would pin numpy<2 and protobuf<5).
    """
    import zipfile

    from trtlab.paths import cache

    target = Path(target) if target else Path(sys.executable).parent / "perf_analyzer"
    wheels = cache() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    found = sorted(wheels.glob("tritonclient-2.51.0-*.whl"))
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--platform", "manylinux1_x86_64", "-d", str(wheels), PERF_ANALYZER_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        found = sorted(wheels.glob("tritonclient-2.51.0-*.whl"))
        if done.returncode != 0 or not found:
            raise UnsupportedFeature(f"could not download {PERF_ANALYZER_WHEEL}: {done.stderr.strip()[-300:]}")
    with zipfile.ZipFile(found[0]) as wheel:
        data = wheel.read("tritonclient-2.51.0.data/data/bin/perf_analyzer")
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(target)
    probe = subprocess.run([str(target), "--version"], capture_output=True, text=True, env=_perf_analyzer_env(),
                           timeout=60)
    if probe.returncode != 0:
        raise UnsupportedFeature(f"perf_analyzer does not run here: {(probe.stderr or probe.stdout)[-300:]}")
    return target
