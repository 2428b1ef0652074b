"""A real JupyterLab server and a headless Chromium, for tests that check what a learner sees.

Used by ``tests/test_browser.py``. The recipe and its traps are in the project's browser-test notes; in short:

- the server runs from the *current* Python environment on a free port bound to 127.0.0.1, with a random token, and
  everything it writes (config, runtime, data, IPython, matplotlib, Chromium profile) goes into a temp dir, never ~;
- Chromium is the system browser (Debian's ``chromium``, or ``$TRTLAB_CHROMIUM``) driven by Playwright for Python;
  Playwright's own browser download is never used;
- the JupyterLab application object is exposed (``--expose-app-in-browser``), so the test reads the kernel status
  and the notebook model directly instead of guessing from CSS;
- teardown asks the server to shut down (``POST /api/shutdown``), then ends any process it started that is still
  alive: kernels run in their own process session, so killing the server's process group would miss them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import psutil

__all__ = ["JupyterLab", "chromium_path", "launch_chromium", "notebook_state", "wait_until"]

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
]


def chromium_path() -> str:
    """The system Chromium: ``$TRTLAB_CHROMIUM`` or ``chromium`` on PATH; a clear error when there is none."""
    configured = os.environ.get("TRTLAB_CHROMIUM")
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        raise RuntimeError(f"browser test: TRTLAB_CHROMIUM={configured!r} is not an executable file | point it at "
                           "a Chromium/Chrome binary, or unset it to use `chromium` from PATH")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise RuntimeError(
            "browser test: no Chromium on PATH (looked for `chromium` and `chromium-browser`) | install it with "
            "`make system-deps` (Debian/Ubuntu: apt-get install chromium fonts-noto-color-emoji), or point "
            "TRTLAB_CHROMIUM at a Chromium/Chrome binary. Do not run `playwright install`: the system browser is used.")
    return found


def wait_until(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.25,
               times: int = 1) -> Any:
    """Poll ``condition`` until it returns something truthy ``times`` times in a row; raise TimeoutError naming
    ``what`` (and the last value seen) when ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    streak, last = 0, None
    while True:
        last = condition()
        streak = streak + 1 if last else 0
        if streak >= times:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last seen: {last!r})")
        time.sleep(interval)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``jupyter lab`` from this environment, isolated in ``root`` (a temp dir); a context manager.

    ``root / "notebooks"`` is the server's root dir: copy the notebooks to open there. ``url(path)`` gives the
    address of a notebook with the token. ``command(port, token, notebooks)``, if given, is the command line that
    starts the server instead (e.g. ``make lab`` with options); it must honour the port, token and root dir.
    """

    def __init__(self, root: Path, *, env: dict[str, str] | None = None, start_timeout: float = 90,
                 command: Callable[[int, str, Path], list[str]] | None = None) -> None:
        self.root = Path(root)
        self.notebooks = self.root / "notebooks"
        self.port = 0
        self.token = secrets.token_hex(16)
        self.extra_env = env or {}
        self.start_timeout = start_timeout
        self.command = command
        self.proc: subprocess.Popen | None = None
        self.log_path = self.root / "jupyterlab.log"
        self._seen: dict[int, float] = {}  # pid -> create_time of every descendant seen, for teardown
        self.shutdown_notes: list[str] = []  # what teardown had to force (empty when the shutdown was clean)

    # ------------------------------------------------------------------ environment
    def _env(self) -> dict[str, str]:
        home = self.root / "home"
        dirs = {
            "JUPYTER_CONFIG_DIR": home / "jupyter-config", "JUPYTER_RUNTIME_DIR": home / "jupyter-runtime",
            "JUPYTER_DATA_DIR": home / "jupyter-data", "IPYTHONDIR": home / "ipython",
            "MPLCONFIGDIR": home / "matplotlib", "XDG_CONFIG_HOME": home / "xdg-config",
            "XDG_CACHE_HOME": home / "xdg-cache",
        }
        for d in dirs.values():
            d.mkdir(parents=True, exist_ok=True)
        # no "news" / "update available" toast over the notebook
        settings = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        # A learner's environment: no Jupyter paths of ours, and no MPLBACKEND (the test suite's conftest sets Agg
        # for nbval; inherited by the kernel it would swallow every plot instead of showing it inline).
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER") and k != "MPLBACKEND"}
        env.update({k: str(v) for k, v in dirs.items()})
        env["HOME"] = str(home)  # whatever else a library caches under ~ (ONNX Runtime, pip, fonts) lands here too
        env["PYTHONNOUSERSITE"] = "1"
        # this environment's bin/ first, so the kernel is this Python (the kernelspec says just "python")
        env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ start / stop
    def start(self) -> "JupyterLab":
        self.notebooks.mkdir(parents=True, exist_ok=True)
        env = self._env()
        for attempt in range(3):  # the free port can be taken between probing and binding: retry on a new one
            self.port = _free_port()
            cmd = [
                sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}",
                "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.notebooks}", "--expose-app-in-browser", "--allow-root",
                "--LabApp.news_url=", "--ServerApp.open_browser=False",
            ]
            if self.command is not None:
                cmd = self.command(self.port, self.token, self.notebooks)
            log = open(self.log_path, "ab")
            self.proc = subprocess.Popen(cmd, cwd=self.notebooks, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
            log.close()
            try:
                wait_until(self._ready, timeout=self.start_timeout, what=f"JupyterLab on port {self.port}",
                           interval=0.3)
                return self
            except _ServerExited:
                if attempt == 2:
                    raise RuntimeError(f"JupyterLab exited at start three times; its log:\n{self.log()}") from None
            except TimeoutError as err:
                self.stop()
                raise RuntimeError(f"{err}; its log:\n{self.log()}") from None
        raise AssertionError("unreachable")

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise _ServerExited
        try:
            with urllib.request.urlopen(self.api_request("/api/status"), timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def api_request(self, path: str, *, method: str = "GET") -> urllib.request.Request:
        return urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                      headers={"Authorization": f"token {self.token}"})

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?token={self.token}"

    def remember_processes(self) -> list[int]:
        """Record the server's descendants (kernels included); call it while they run, teardown ends leftovers."""
        if self.proc is None:
            return []
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for child in children:
            try:
                self._seen[child.pid] = child.create_time()
            except psutil.NoSuchProcess:
                pass
        return [c.pid for c in children]

    def stop(self) -> list[str]:
        """Shut down cleanly (kernels too); returns notes on anything that had to be killed."""
        notes: list[str] = []
        if self.proc is None:
            return notes
        self.remember_processes()
        if self.proc.poll() is None:
            try:
                urllib.request.urlopen(self.api_request("/api/shutdown", method="POST"), timeout=5).close()
            except (urllib.error.URLError, OSError) as err:
                notes.append(f"POST /api/shutdown failed: {err}")
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                notes.append("server ignored /api/shutdown for 15 s: SIGTERM")
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)
        # anything we saw that still runs (same pid *and* start time, so never a recycled pid) is ended
        leftovers = []
        for pid, created in self._seen.items():
            try:
                p = psutil.Process(pid)
                if p.create_time() == created and p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    leftovers.append(p)
            except psutil.NoSuchProcess:
                pass
        for p in leftovers:
            notes.append(f"still running after shutdown: pid {p.pid} {' '.join(p.cmdline()[:3])}")
            p.terminate()
        _, alive = psutil.wait_procs(leftovers, timeout=5)
        for p in alive:
            p.kill()
        self.proc = None
        return notes

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> "JupyterLab":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown_notes = self.stop()


class _ServerExited(Exception):
    pass


def launch_chromium(playwright: Any, profile_dir: Path, *, viewport: tuple[int, int] = (1400, 1000)) -> Any:
    """A persistent Chromium context with the profile in ``profile_dir`` (Playwright rejects --user-data-dir)."""
    return playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": viewport[0], "height": viewport[1]}, env={
            **os.environ, "XDG_CONFIG_HOME": str(profile_dir / "xdg-config"),
            "XDG_CACHE_HOME": str(profile_dir / "xdg-cache"), "HOME": str(profile_dir)},
    )


# What the page can tell us about the current notebook, read from JupyterLab's own objects (not from CSS guesses):
# the kernel status, every cell's prompt and its outputs as the notebook model holds them.
_STATE_JS = """() => {
  const app = window.jupyterapp;
  const w = app && app.shell.currentWidget;
  if (!w || !w.sessionContext || !w.content || !w.content.model) return null;
  const session = w.sessionContext.session;
  const kernel = session ? session.kernel : null;
  const cells = [];
  const model = w.content.model;
  for (let i = 0; i < model.cells.length; i++) {
    const c = model.cells.get(i);
    const entry = {type: c.type, source: c.sharedModel.getSource()};
    if (c.type === 'code') {
      entry.execution_count = c.executionCount;
      entry.outputs = c.outputs.toJSON();
      const widget = w.content.widgets[i];
      entry.prompt = widget ? (widget.promptNode ? widget.promptNode.textContent : null) : null;
    }
    cells.push(entry);
  }
  return {
    path: w.context.path,
    kernel: kernel ? {name: kernel.name, status: kernel.status, connection: kernel.connectionStatus} : null,
    dirty: model.dirty,
    cells: cells,
  };
}"""


def notebook_state(page: Any) -> dict | None:
    """The current notebook as JupyterLab holds it: kernel status and, per cell, source, prompt and outputs."""
    return page.evaluate(_STATE_JS)
