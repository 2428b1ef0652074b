"""Keep a Triton server from outliving the Python process that started it (Lab 06).

A notebook kernel that is killed cannot run ``server.stop()``; without help its ``tritonserver``, the Python-backend
stubs (~170 MB each) and their ``/dev/shm`` regions stay behind, and a crashed server's stubs live on. Three guards:

- the server gets ``PR_SET_PDEATHSIG`` (Linux): the kernel's death kills ``tritonserver`` at once;
- a **watchdog** process reads a pipe whose write end only the kernel holds. The kernel's death closes the pipe: the
  watchdog kills the server's process group (server and stubs), unlinks their shared memory and removes the server's
  temp folder. It also kills the stubs as soon as the server itself dies;
- every server carries a **marker** in its environment (owner pid, owner start time, temp folder):
  :func:`clean_stale` finds servers whose owner is gone (left by an older trtlab, or a killed watchdog) and removes
  them; :func:`port_owner` names what holds a taken port.
"""

from __future__ import annotations

import os
import re
import select
import socket
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from trtlab.errors import PortInUse
from trtlab.i18n import _

__all__ = ["MARKER", "PORT_TAKEN", "alive", "clean_stale", "kill_and_clean", "mapped_regions", "marked", "marker",
           "pdeathsig", "port_in_use", "port_owner", "port_taken", "regions", "start_watchdog", "watch"]

MARKER = "TRTLAB_TRITON_OWNER"
SHM_DIR = Path("/dev/shm")
REGION = "triton_python_backend_shm_region_"


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], start time [19])."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child its parent has not reaped yet)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def marker(logdir: Path) -> str:
    """``<pid>:<start time>:<temp folder>`` of this process: the start time tells a reused pid from its owner."""
    fields = _stat(os.getpid())
    return f"{os.getpid()}:{fields[19] if fields else 0}:{logdir}"


def _owner_alive(value: str) -> bool:
    pid, start, _ = (value.split(":", 2) + ["", ""])[:3]
    fields = _stat(int(pid)) if pid.isdigit() else None
    return fields is not None and fields[0] not in ("Z", "X") and fields[19] == start


def _environ(pid: int) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            items = f.read().split(b"\0")
    except OSError:
        return {}
    return dict(i.decode(errors="replace").split("=", 1) for i in items if b"=" in i)


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _pids() -> list[int]:
    return [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]


def marked(value: str) -> list[int]:
    """Live processes whose environment carries this marker (the server and its stubs)."""
    return [p for p in _pids() if p != os.getpid() and alive(p) and _environ(p).get(MARKER) == value]


def regions(pids: list[int]) -> set[str]:
    """Shared-memory regions named on the stubs' command lines (the stub's second argument)."""
    return {a for p in pids for a in _cmdline(p) if a.startswith(REGION)}


def mapped_regions() -> set[str]:
    """Names of the Python-backend regions some live process maps (those must not be unlinked)."""
    mapped: set[str] = set()
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/maps") as f:
                mapped.update(Path(line.split()[-1]).name for line in f if REGION in line)
        except (OSError, IndexError):
            continue
    return mapped


def kill_and_clean(value: str, names: set[str], *, remove_folder: bool) -> list[int]:
    """SIGKILL every process carrying ``value``, unlink ``names`` no live process maps, optionally the temp folder."""
    pids = marked(value)
    names = names | regions(pids)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 5
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    busy = mapped_regions() if names else set()
    for name in names - busy:
        (SHM_DIR / name).unlink(missing_ok=True)
    if remove_folder:
        shutil.rmtree(value.split(":", 2)[-1], ignore_errors=True)
    return pids


def clean_stale() -> list[str]:
    """Kill servers of the course whose owner process is gone; one line per server removed (for the notebook)."""
    found: dict[str, list[int]] = {}
    for pid in _pids():
        value = _environ(pid).get(MARKER)
        if value and alive(pid) and not _owner_alive(value):
            found.setdefault(value, []).append(pid)
    report = []
    for value, pids in found.items():
        killed = kill_and_clean(value, set(), remove_folder=True)
        report.append(_("stopped a stale Triton server of the course left by process {owner} (gone): {count} "
                        "processes (pids {pids})").format(owner=value.split(':')[0], count=len(killed or pids),
                                                          pids=sorted(killed or pids)))
    return report


def port_owner(port: int) -> str:
    """Who listens on a local TCP port: ``pid N (command…)`` and whether it is a course server, or ``unknown``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for pid in _pids() if inodes else []:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    value = _environ(pid).get(MARKER)
                    what = (_("a Triton server of the course started by live process {owner}").format(
                        owner=value.split(':')[0]) if value else _("not a course server"))
                    return f"pid {pid} ({' '.join(_cmdline(pid))[:80]}), {what}"
            except OSError:
                continue
    return _("a process this user cannot see") if inodes else _("unknown (it may have been released since)")


#: Triton's log line when a port is taken: "failed to start HTTP service: Unavailable - Socket '127.0.0.1:8000'
#: already in use" (HTTP and gRPC exit; a taken metrics port only logs it and the server runs on).
PORT_TAKEN = re.compile(r"failed to start (\w+) service\W.*?:(\d+)'? already in use", re.IGNORECASE)


def port_taken(host: str, port: int) -> bool:
    """True if ``port`` cannot be bound on ``host`` now (checked before starting, for ports asked for by number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT does not count
        try:
            s.bind((host or "0.0.0.0", port))
        except OSError:
            return True
    return False


def port_in_use(service: str, port: int, tail: str = "") -> PortInUse:
    return PortInUse(_("tritonserver cannot bind its {service} port {port}: it is taken by {owner}. Choose another "
                       "port (0 picks a free one) or stop what holds it").format(
                         service=service, port=port, owner=port_owner(port))
                     + (_(".\nLast log lines:\n{tail}").format(tail=tail) if tail else ""))


def pdeathsig() -> Callable[[], None] | None:
    """A ``preexec_fn`` giving the child SIGKILL when the thread that started it dies (Linux), or None elsewhere.

    prctl is looked up here, in the parent: the forked child only calls it (no library loading between fork and
    exec, which could deadlock in a process with threads such as a Jupyter kernel).
    """
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1


def start_watchdog(server_pid: int, value: str) -> tuple[subprocess.Popen, int]:
    """Start the watchdog of one server; returns it and the pipe's write end (close it to release the server)."""
    read, write = os.pipe()  # not inheritable: tritonserver and other children do not hold the write end
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "trtlab.serve", "watch", str(server_pid), value],
                                stdin=read, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                start_new_session=True)
    finally:
        os.close(read)
    return proc, write


def watch(server_pid: int, value: str) -> None:
    """The watchdog's loop: remember the server's regions; on server death kill the stubs; on EOF clean all.

    Runs as ``python -m trtlab.serve watch <server pid> <marker>`` (:func:`start_watchdog`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the notebook's terminal is not meant for us
    names: set[str] = set()
    server_gone, tick = False, 0
    while True:
        ready, _, _ = select.select([0], [], [], 0.5)
        if ready and not os.read(0, 64):
            break  # the owner closed the pipe (stop()) or died
        tick += 1
        if not server_gone:
            if tick % 4 == 1:  # every 2 s: regions appear when models load
                names |= regions(marked(value))
            if not alive(server_pid):
                server_gone = True
                kill_and_clean(value, names, remove_folder=False)  # keep the log for the owner's error message
    kill_and_clean(value, names, remove_folder=True)
