"""The bundled Triton server as a process: stub environment, start, readiness, models, stop (Lab 06).

:class:`TritonServer` starts the ``tritonserver`` bundled in ``nvidia-pytriton`` bound to 127.0.0.1 on free ports,
with the non-obvious steps the Python backend needs (stub next to the backend, libpython on LD_LIBRARY_PATH, a
``python3`` on PATH whose environment has NumPy 1: the bundled stub returns empty outputs under NumPy 2, see
:data:`STUB_NUMPY`), waits for readiness with a timeout, captures the log, loads models explicitly (one broken
model does not take the others down), stops cleanly and removes leftover ``/dev/shm`` regions; it cannot outlive
the kernel that started it (:mod:`trtlab.serve.process`). :func:`docker_command` prints the NGC container command
for GPU machines.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from trtlab.errors import InvalidArgument, ServerUnavailable, TritonError, UnsupportedFeature
from trtlab.i18n import _
from trtlab.serve import process
from trtlab.serve.config import ModelRepository

__all__ = ["NGC_IMAGE", "SHM_PATTERN", "STUB_NUMPY", "TritonServer", "check_python_backend", "docker_command",
           "stub_python_bin"]

#: ONNX Runtime / Python models. A TensorRT plan's container comes from tl.triton_tensorrt.TRITON_RELEASES instead.
NGC_IMAGE = "nvcr.io/nvidia/tritonserver:24.10-py3"

SHM_PATTERN = "/dev/shm/triton_python_backend_shm_region_*"


def _bundled_server_dir() -> Path:
    from trtlab.env import triton_server_binary

    binary = triton_server_binary()
    if binary is None:
        raise UnsupportedFeature(_("no tritonserver binary found: pip install nvidia-pytriton==0.7.0 (bundles a "
                                   "CPU Triton 2.51 with the Python backend), or use the NGC container: "
                                   "print(tl.serve.docker_command(repo))"))
    return binary.resolve().parent.parent


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _python_backend_dir(server_dir: Path) -> Path:
    """A private backends folder: the bundled Python backend plus the stub for *this* interpreter beside it.

    The backend looks for ``triton_python_backend_stub`` next to ``libtriton_python.so``; the wheel keeps the stubs
    apart (one per Python version), so we assemble the folder instead of writing into site-packages.
    """
    from trtlab.paths import cache

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = server_dir / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise UnsupportedFeature(_("the bundled Triton has no Python-backend stub for Python {version} (looked "
                                   "for {stub}); use Python 3.8–3.13").format(version=version, stub=stub))
    target = cache() / "triton-backends" / f"py{version}"
    python = target / "python"
    python.mkdir(parents=True, exist_ok=True)
    for source in [*(server_dir / "backends" / "python").iterdir(), stub]:
        if source.is_file():
            _link(source, python / source.name)
    return target


def _link(source: Path, link: Path) -> None:
    """``link`` → ``source``, replacing a stale link (a venv recreated elsewhere) and tolerating a racing twin."""
    if link.is_symlink() and os.readlink(link) == str(source):
        return
    link.unlink(missing_ok=True)
    try:
        link.symlink_to(source)
    except FileExistsError:
        pass


#: NumPy for the Python-backend stub's environment. The bundled stub (Triton 2.51) is built with a pybind11 that
#: predates NumPy 2: with NumPy 2 inputs still arrive, but every output tensor is silently empty or zero
#: (pybind11 reads the old dtype layout, item size 0). The course environment needs NumPy 2 (CuPy 14), so the
#: model runs in a small execution environment: NumPy 1.26 first on sys.path, the course packages after it.
STUB_NUMPY = "numpy==1.26.4"


def _site_dirs() -> list[str]:
    paths = sysconfig.get_paths()
    return list(dict.fromkeys([paths["purelib"], paths["platlib"]]))


def stub_python_bin(*, install: bool = True) -> Path:
    """The ``bin/`` whose ``python3`` the Python-backend stub takes its ``sys.prefix`` (and so its packages) from.

    This environment itself if its NumPy is 1.x; otherwise a venv under ``tl.paths.cache()`` holding NumPy 1.26 and
    a ``.pth`` that appends this environment's site-packages (onnxruntime, trtlab). Created once (``pip`` fetches
    one wheel, 14 MB); ``TRTLAB_TRITON_PYTHON_BIN`` overrides it.
    """
    override = os.environ.get("TRTLAB_TRITON_PYTHON_BIN")
    if override:
        return Path(override)
    if int(np.__version__.split(".")[0]) < 2:
        return Path(sys.executable).parent
    from trtlab.paths import cache

    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = cache() / f"triton-stub-env-py{version}"
    site_dir = root / "lib" / f"python{version}" / "site-packages"
    marker = site_dir / "trtlab_stub_env.txt"
    wanted = f"{STUB_NUMPY}\n{sys.prefix}\n"
    if marker.exists() and marker.read_text() == wanted and (root / "bin" / "python3").exists():
        return root / "bin"
    if not install:
        raise UnsupportedFeature(_("no stub environment at {root}; create it: python -m trtlab.serve prepare").format(
                                     root=root))
    import fcntl

    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f".{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two notebooks starting servers at once build it once
        if marker.exists() and marker.read_text() == wanted:
            return root / "bin"
        _create_stub_env(root, site_dir)
        marker.write_text(wanted)
    return root / "bin"


def _create_stub_env(root: Path, site_dir: Path) -> None:
    import venv

    venv.EnvBuilder(with_pip=False, symlinks=True, clear=True).create(root)
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site_dir), STUB_NUMPY]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired as err:
        raise UnsupportedFeature(_("installing {package} for the Triton stub timed out: {command}").format(
                                     package=STUB_NUMPY, command=' '.join(cmd))) from err
    if done.returncode != 0:
        raise UnsupportedFeature(
            _("could not install {package} for the Triton Python-backend stub ({error}). Run once with network "
              "access: {command}  (or python -m trtlab.serve prepare)").format(
                package=STUB_NUMPY, error=done.stderr.strip()[-300:], command=' '.join(cmd)))
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in _site_dirs())
    (site_dir / "zz_trtlab_course_env.pth").write_text(lines)


def _stub_environment(server_dir: Path) -> dict[str, str]:
    """PATH and LD_LIBRARY_PATH for the stub: the stub environment's python3 first, libpython, the wheel's libs."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(stub_python_bin()), env.get("PATH", "")])
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(server_dir.parent.parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([p for p in libs if p] + [env.get("LD_LIBRARY_PATH", "")]).rstrip(":")
    env.pop("PYTHONPATH", None)
    return env


def check_python_backend() -> str:
    """Check before starting that the stub finds libpython (without it, model loading hangs with no error)."""
    server_dir = _bundled_server_dir()
    backend = _python_backend_dir(server_dir)
    stub = backend / "python" / "triton_python_backend_stub"
    env = _stub_environment(server_dir)
    try:
        out = subprocess.run(["ldd", str(stub.resolve())], capture_output=True, text=True, env=env, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return "ldd not available; stub libraries not checked"
    missing = [line.split()[0] for line in out.splitlines() if "not found" in line]
    if missing:
        raise UnsupportedFeature(
            _("the Python-backend stub cannot find {missing} (libdir {libdir}): model loading would hang. "
              "Use a Python built with --enable-shared (pyenv: PYTHON_CONFIGURE_OPTS=--enable-shared) or install "
              "the distribution's libpython3.X package").format(
                missing=', '.join(missing), libdir=sysconfig.get_config_var('LIBDIR')))
    libpython = next((line.split("=>")[1].split()[0] for line in out.splitlines() if "libpython" in line), "?")
    python = stub_python_bin() / "python3"
    probe = subprocess.run([str(python), "-I", "-c", "import numpy, onnxruntime; print(numpy.__version__)"],
                           capture_output=True, text=True, env=env, timeout=60)
    if probe.returncode != 0 or not probe.stdout.strip().startswith("1."):
        raise UnsupportedFeature(
            _("the stub environment {parent} must import NumPy 1.x and onnxruntime; got {got}. Delete it and "
              "run: python -m trtlab.serve prepare").format(
                parent=python.parent.parent, got=(probe.stdout or probe.stderr).strip()[-300:]))
    return f"stub OK: {libpython}; NumPy {probe.stdout.strip()} from {python.parent.parent}"


class TritonServer:
    """The bundled ``tritonserver`` as a context manager: bound to 127.0.0.1, free ports, explicit model control.

    ``models`` are loaded one by one after start; a model that fails raises :class:`TritonError` with Triton's
    reason (the server and the other models keep running). Pass ``host="0.0.0.0"`` only if other machines must
    reach it: Triton's endpoints have no authentication, and one malformed request can abort it (see
    :mod:`trtlab.serve.feeds`). Ports: 0 picks free ones; a fixed port that is taken raises :class:`PortInUse`.

    The server cannot outlive the Python process that started it, and a stale server of the course (left by an
    older kernel) is stopped at the next start: :mod:`trtlab.serve.process`.
    """

    def __init__(self, repository: ModelRepository | str | Path, *, models: Sequence[str] = (),
                 host: str = "127.0.0.1", http_port: int = 0, grpc_port: int = 0, metrics_port: int = 0,
                 startup_timeout_s: float = 60.0, load_timeout_s: float = 120.0,
                 exit_timeout_s: int = 5, log_verbose: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.repository = repository if isinstance(repository, ModelRepository) else ModelRepository(repository)
        self.models = list(models)
        self.host = host
        self.startup_timeout_s, self.load_timeout_s, self.exit_timeout_s = startup_timeout_s, load_timeout_s, exit_timeout_s
        self.log_verbose = log_verbose
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen | None = None
        self.ports = (int(http_port), int(grpc_port), int(metrics_port))
        self.http_port, self.grpc_port, self.metrics_port = self.ports
        self._logdir: Path | None = None  # one temp folder per start, removed with the server (or by its watchdog)
        self.log_path = Path(tempfile.gettempdir()) / "trtlab-triton-not-started.log"
        self._log_text: str | None = None  # the log, kept in memory once the folder is gone
        self._watchdog: subprocess.Popen | None = None
        self._watch_fd = -1
        self._shm_before: set[str] = set()
        self.startup_s = float("nan")
        self.stub_check = ""
        self.leaked_shm: list[str] = []

    # addresses -------------------------------------------------------------------------------------------------
    @property
    def http_url(self) -> str:
        return f"{self._client_host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self._client_host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self._client_host}:{self.metrics_port}/metrics"

    @property
    def _client_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host

    def url(self, protocol: str = "http") -> str:
        return {"http": self.http_url, "grpc": self.grpc_url}[_protocol(protocol)]

    # lifecycle -------------------------------------------------------------------------------------------------
    def command(self) -> list[str]:
        server_dir = _bundled_server_dir()
        return [str(server_dir / "bin" / "tritonserver"),
                f"--model-repository={self.repository.root}",
                f"--backend-directory={_python_backend_dir(server_dir)}",
                f"--cache-directory={server_dir / 'caches'}",
                "--model-control-mode=explicit",
                f"--http-address={self.host}", f"--http-port={self.http_port}",
                f"--grpc-address={self.host}", f"--grpc-port={self.grpc_port}",
                f"--metrics-address={self.host}", f"--metrics-port={self.metrics_port}",
                "--allow-metrics=true", "--allow-gpu-metrics=false", "--allow-cpu-metrics=true",
                "--metrics-interval-ms=500",
                "--pinned-memory-pool-byte-size=0", f"--exit-timeout-secs={self.exit_timeout_s}",
                "--strict-readiness=false", f"--log-verbose={self.log_verbose}", *self.extra_args]

    def start(self) -> "TritonServer":
        if self.running:
            return self
        self.stub_check = check_python_backend()
        for line in process.clean_stale():
            print(line)
        for service, port in zip(("HTTP", "gRPC", "metrics"), self.ports):
            if port and process.port_taken(self.host, port):
                raise process.port_in_use(service, port)
        server_dir = _bundled_server_dir()
        self._shm_before = set(glob.glob(SHM_PATTERN))
        t0 = time.perf_counter()
        for attempt in range(3):  # a free port can be taken between probing and binding: retry with new ones
            self.http_port, self.grpc_port, self.metrics_port = (p or _free_port() for p in self.ports)
            self._launch(_stub_environment(server_dir))
            live = self._wait_live(time.perf_counter())
            taken = process.PORT_TAKEN.search(self.log_path.read_text(errors="replace"))
            if live and not taken:
                break
            tail, took, code = self.log_tail(), time.perf_counter() - t0, self.process.poll()
            self.stop()
            fixed = any(self.ports) or any("-port=" in a for a in self.extra_args)  # new free ports won't help
            if taken and (attempt == 2 or fixed):
                raise process.port_in_use(taken.group(1), int(taken.group(2)), tail)
            if not taken:
                state = (_("exit code {code} after {took:.1f} s").format(code=code, took=took) if code is not None
                         else _("no answer within {timeout:.0f} s").format(timeout=self.startup_timeout_s))
                raise TritonError(_("tritonserver did not become live ({state}).\nLast log lines:\n{tail}").format(
                                      state=state, tail=tail))
        try:
            for name in self.models:
                self.load(name)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.perf_counter() - t0  # process start → live → every model loaded
        return self

    def _launch(self, env: dict[str, str]) -> None:
        """Start tritonserver in its own process group, tied to this process (death signal, watchdog, marker)."""
        self._logdir = Path(tempfile.mkdtemp(prefix="trtlab-triton-"))
        self.log_path, self._log_text = self._logdir / "tritonserver.log", None
        env[process.MARKER] = process.marker(self._logdir)
        # PR_SET_PDEATHSIG fires when the starting *thread* ends: only from the main thread (a kernel's cells)
        tie = process.pdeathsig() if threading.current_thread() is threading.main_thread() else None
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=tie)
        self._watchdog, self._watch_fd = process.start_watchdog(self.process.pid, env[process.MARKER])
        atexit.register(self.stop)

    def _wait_live(self, t0: float) -> bool:
        assert self.process is not None
        url = f"http://{self._client_host}:{self.http_port}/v2/health/live"
        while time.perf_counter() - t0 < self.startup_timeout_s:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return True
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM (Triton finishes in-flight requests within ``exit_timeout_s``), then SIGKILL; clean /dev/shm."""
        atexit.unregister(self.stop)
        if self.process is None:
            return None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGCONT)  # a stopped (frozen) server cannot act on SIGTERM
            except (ProcessLookupError, PermissionError):
                pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=self.exit_timeout_s + 20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        # stubs are in the server's process group; make sure none outlives it
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.leaked_shm = self._clean_shm()
        self._release()
        return self.process.returncode

    def _release(self) -> None:
        """Keep the log in memory, let the watchdog go (it removes the temp folder too), remove the folder."""
        if self._logdir is None:
            return
        self._log_text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        os.close(self._watch_fd)
        if self._watchdog is not None:
            try:
                self._watchdog.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
        shutil.rmtree(self._logdir, ignore_errors=True)
        self._logdir, self._watchdog, self._watch_fd = None, None, -1

    def _clean_shm(self) -> list[str]:
        new = set(glob.glob(SHM_PATTERN)) - self._shm_before
        if not new:
            return []
        time.sleep(0.2)
        live = process.mapped_regions()
        removed = []
        for path in sorted(new):
            if os.path.basename(path) not in live:
                try:
                    os.unlink(path)
                    removed.append(path)
                except FileNotFoundError:
                    pass
        return removed

    def __enter__(self) -> "TritonServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        if getattr(self, "process", None) is not None and (self.running or self._logdir is not None):
            self.stop()

    # models ------------------------------------------------------------------------------------------------------
    def _admin(self, timeout_s: float = 30.0) -> Any:
        import tritonclient.http as httpclient

        return httpclient.InferenceServerClient(self.http_url, connection_timeout=min(timeout_s, 5.0),
                                                network_timeout=timeout_s)

    def load(self, name: str) -> None:
        """Load (or reload, e.g. after adding a version) one model; raises with Triton's reason if it fails."""
        self._require_running()
        admin = self._admin(self.load_timeout_s)
        try:
            admin.load_model(name)
        except Exception as err:
            raise TritonError(_("model '{name}' failed to load: {reason}\nCheck {config} and server.log_tail()").format(
                                  name=name, reason=_reason(err),
                                  config=self.repository.root / name / 'config.pbtxt')) from err
        finally:
            admin.close()

    def unload(self, name: str) -> None:
        self._require_running()
        admin = self._admin()
        try:
            admin.unload_model(name)
        finally:
            admin.close()

    def ready(self, name: str | None = None, *, timeout_s: float = 5.0) -> bool:
        """Server ready (``name=None``) or model ready; False when nothing answers within ``timeout_s``."""
        try:
            admin = self._admin(timeout_s)
            try:
                return bool(admin.is_model_ready(name) if name else admin.is_server_ready())
            finally:
                admin.close()
        except Exception:  # noqa: BLE001 - "not ready" is the answer for a dead server
            return False

    def model_states(self) -> dict[str, str]:
        """Every model of the repository with its state (READY, UNAVAILABLE: reason, or not loaded)."""
        admin = self._admin()
        try:
            index = admin.get_model_repository_index()
        finally:
            admin.close()
        return {m["name"] + (f" v{m['version']}" if m.get("version") else ""):
                m.get("state", "not loaded") + (f": {m['reason']}" if m.get("reason") else "") for m in index}

    def _require_running(self) -> None:
        if not self.running:
            raise ServerUnavailable(_("the Triton server is not running") + (
                _(" (it exited with code {code}; last log lines:\n{tail})").format(
                    code=self.process.returncode, tail=self.log_tail())
                if self.process is not None else _("; start it: server.start() or `with TritonServer(...)`")))

    # observability -----------------------------------------------------------------------------------------------
    def log_tail(self, lines: int = 20) -> str:
        text = self._log_text
        if text is None:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server and its Python-backend stubs (its process group).

        Unlike throughput, CPU time per inference barely moves when other programs load the machine: it is the
        robust way to compare configurations on a shared computer.
        """
        if self.process is None:
            return float("nan")
        tick, total = os.sysconf("SC_CLK_TCK"), 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # pgrp: the server and the stubs it started
                total += int(fields[11]) + int(fields[12])
        return total / tick

    def metrics(self) -> str:
        """Prometheus metrics text (inference counts, execution counts, queue and compute times, CPU, memory)."""
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, OSError) as err:
            raise ServerUnavailable(_("no metrics at {metrics_url}: {err}; is the server running?").format(
                                        metrics_url=self.metrics_url, err=err)) from err

    def statistics(self, name: str) -> dict[str, Any]:
        admin = self._admin()
        try:
            return admin.get_inference_statistics(name)
        finally:
            admin.close()

    def __repr__(self) -> str:
        state = f"running on {self.http_url} (HTTP), {self.grpc_url} (gRPC)" if self.running else "stopped"
        return f"<TritonServer {state}, repository {self.repository.root}>"


def docker_command(repository: ModelRepository | str | Path, *, image: str = NGC_IMAGE, gpus: str = "all",
                   http_port: int = 8000, grpc_port: int = 8001, metrics_port: int = 8002,
                   localhost_only: bool = True) -> str:
    """The ``docker run`` command that serves the repository with the NGC container on a GPU machine."""
    root = repository.root if isinstance(repository, ModelRepository) else Path(repository)
    bind = "127.0.0.1:" if localhost_only else ""
    return (f"docker run --rm --gpus {gpus} --shm-size=1g "
            f"-p {bind}{http_port}:8000 -p {bind}{grpc_port}:8001 -p {bind}{metrics_port}:8002 "
            f"-v {root.resolve()}:/models {image} "
            "tritonserver --model-repository=/models --model-control-mode=explicit --load-model='*'")


def _protocol(protocol: str) -> str:
    if protocol not in ("http", "grpc"):
        raise InvalidArgument(_("protocol must be 'http' or 'grpc'; got {protocol!r}. Pass protocol='http' or "
                                "'grpc'").format(protocol=protocol))
    return protocol


def _reason(err: BaseException) -> str:
    """The server's own words from a tritonclient exception (its ``message()``), else the exception text."""
    method = getattr(err, "message", None)
    message = method() if callable(method) else str(err)
    return str(message).strip() or type(err).__name__
