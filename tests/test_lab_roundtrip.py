"""`make lab`, open a lab, save it, `make test`: still green. The real sequence, with the real JupyterLab.

`make lab` is started as it is documented (its doctor, its copy of the labs, its options), but serving a copy in a
temp dir on a free port bound to 127.0.0.1. A lab is then opened and saved the way JupyterLab's frontend does it: a
session starts the notebook's kernel, the kernelspec (from the server) and language_info (from the kernel's own
``kernel_info_reply``) are written into the notebook's metadata, and the model goes back with a PUT to the contents
API. The sync check must then be clean and the generator must not call the lab "your work"; a changed cell source
must still be reported and kept. The repository's labs/ must be untouched by all of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.request
from pathlib import Path

import psutil
import pytest
from jupyter_client import BlockingKernelClient

from browser_helpers import JupyterLab, wait_until
from trtlab import course
from trtlab.paths import course_root

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REPO = course_root()
SOLUTIONS = REPO / "solutions"
LAB = "00_setup.ipynb"


def _make_lab(port: int, token: str, notebooks: Path) -> list[str]:
    """`make lab` as a learner runs it, with the options a workshop would pass; the venv is taken as set up."""
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port_retries=0 --IdentityProvider.token={token} " \
           "--LabApp.news_url="
    return ["make", "--no-print-directory", "-C", str(REPO), "-o", ".venv/.course", "lab", f"LAB_DIR={notebooks}",
            f"JUPYTER_PORT={port}", f"LAB_ARGS={args}"]


def _api(server: JupyterLab, path: str, *, method: str = "GET", body: dict | None = None) -> dict:
    request = server.api_request(path, method=method)
    if body is not None:
        request.data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read() or b"{}")


def _repo_labs() -> dict[str, str]:
    return {str(p.relative_to(REPO / "labs")): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((REPO / "labs").rglob("*")) if p.is_file()}


def _open_like_the_frontend(server: JupyterLab) -> dict:
    """Start the notebook's kernel and return its metadata as JupyterLab's notebook panel sets it."""
    session = _api(server, "/api/sessions", method="POST",
                   body={"path": LAB, "name": LAB, "type": "notebook", "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    server.remember_processes()
    spec = _api(server, "/api/kernelspecs")["kernelspecs"][session["kernel"]["name"]]["spec"]
    connection = server.root / "home" / "jupyter-runtime" / f"kernel-{kernel_id}.json"
    wait_until(connection.exists, timeout=30, what=f"the kernel's connection file {connection.name}")
    client = BlockingKernelClient(connection_file=str(connection))
    client.load_connection_file()
    client.start_channels()
    try:
        info = client.kernel_info(reply=True, timeout=60)["content"]
    finally:
        client.stop_channels()
    return {"kernelspec": {"name": session["kernel"]["name"], "display_name": spec["display_name"],
                           "language": spec["language"]},
            "language_info": info["language_info"]}


def _save(server: JupyterLab, content: dict) -> None:
    _api(server, f"/api/contents/{LAB}", method="PUT", body={"type": "notebook", "format": "json", "content": content})


def test_make_lab_then_open_and_save_keeps_the_sync_check_clean(tmp_path: Path) -> None:
    before = _repo_labs()
    # run under `make test` too: the outer make's flags (jobserver, -n, -k) are not for this one
    server = JupyterLab(tmp_path, command=_make_lab, start_timeout=120, env={"MAKEFLAGS": "", "MAKELEVEL": ""})
    with server:
        log = server.log()
        assert "lab(s) written to" in log, f"make lab did not make the learner's copy first:\n{log}"
        jupyter = [p for p in psutil.Process(server.proc.pid).children(recursive=True)
                   if any(part.startswith("--ServerApp.root_dir=") for part in p.cmdline())]
        assert jupyter, f"no `jupyter lab` process under make:\n{log}"
        cmdline = jupyter[0].cmdline()
        assert f"--ServerApp.root_dir={server.notebooks}" in cmdline and "--no-browser" in cmdline  # LAB_ARGS passed
        as_root = os.geteuid() == 0
        assert ("--allow-root" in cmdline) == as_root, cmdline
        assert ("passing --allow-root" in log) == as_root, log
        generated = (server.notebooks / LAB).read_text()
        assert course.labs_out_of_date(server.notebooks, SOLUTIONS) == []

        metadata = _open_like_the_frontend(server)
        model = _api(server, f"/api/contents/{LAB}?content=1")["content"]
        model["metadata"].update(metadata)
        _save(server, model)
        saved = (server.notebooks / LAB).read_text()
        assert saved != generated, "the save did not change the file: the test would prove nothing"
        assert json.loads(saved)["metadata"]["language_info"] == metadata["language_info"]

        # the sync check, and the generator that `make lab` runs again next time
        assert course.labs_out_of_date(server.notebooks, SOLUTIONS) == []
        assert course.plan_labs(server.notebooks, solutions_dir=SOLUTIONS).kept == []
        check = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(REPO), "-o", ".venv/.course", "lab"],
                               capture_output=True, text=True, timeout=60,
                               env={k: v for k, v in os.environ.items() if k not in ("LAB_DIR", "MAKEFLAGS")})
        assert "--ServerApp.root_dir=\"my-labs\"" in check.stdout, check.stdout  # never labs/

        # a learner's real edit is their work: reported, kept, never overwritten
        model["cells"][1]["source"] = "# my notes\n" + model["cells"][1]["source"]
        _save(server, model)
        assert course.labs_out_of_date(server.notebooks, SOLUTIONS) == [LAB]
        with pytest.raises(course.LabEdited, match=LAB):
            course.plan_labs(server.notebooks, solutions_dir=SOLUTIONS)
        assert course.build_labs(server.notebooks, solutions_dir=SOLUTIONS, keep_edited=True) == []
        assert "# my notes" in (server.notebooks / LAB).read_text()
    assert not server.shutdown_notes, server.shutdown_notes
    assert _repo_labs() == before, "make lab and the round trip changed the repository's labs/"
