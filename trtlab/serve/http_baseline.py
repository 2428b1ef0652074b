"""The plain alternative to Triton: a FastAPI service around a course runner, to measure Triton against (Lab 06).

FastAPI (or Flask) around a model is what most tutorials reach for. This is that service, done carefully, so the
comparison is fair: the same runner Triton's Python-backend models wrap (``OnnxRuntimeRunner``, one thread like
each served instance) and the same endpoint Triton serves over HTTP (KServe v2: ``POST /v2/models/<m>/infer``, a
JSON header followed by binary tensors), so ``tl.serve.load_test(service.url, ..., protocol="http")`` drives both
with the same client, request and concurrency. What it deliberately lacks is what Triton adds: **no batching**
(each request runs alone, one at a time, at the batch it was sent with; ``batch_size_counts()`` counts them), one
instance, no model management, no metrics beyond that counter, no gRPC.

    with tl.serve.HttpBaseline(onnx_path, model="classifier") as api:
        logits = tl.serve.infer(api.url, "classifier", {"images": x})["logits"]

The service runs in a child process (plain uvicorn: h11 and asyncio, on 127.0.0.1 only, a free port) kept from outliving the notebook as
Triton is (:mod:`trtlab.serve.process`: parent-death signal, watchdog, marker), and ``stop()`` (the ``with``
block's end) checks that no process of it is left. A request's claimed shape is never trusted beyond the bytes it
carries (the request that kills the pinned Triton gets an HTTP 400 here).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from trtlab.errors import InputMismatch, PortInUse, ServerTimeout, ServerUnavailable, TritonError
from trtlab.i18n import _
from trtlab.serve.process import kill_and_clean, marked, marker, MARKER, pdeathsig, port_owner, start_watchdog

__all__ = ["HttpBaseline", "create_app"]

HOST = "127.0.0.1"  # never another interface: this service has no authentication and no request limits


class _BadRequest(Exception):
    """A request the service refuses with HTTP 400 (the message says what was wrong and what to send)."""


def _decode(body: bytes, header_length: str | None, specs: dict[str, Any],
            outputs: list[str]) -> tuple[dict[str, np.ndarray], Any]:
    """KServe v2 request → (feeds, header). Sizes are checked against the bytes received before any array exists."""
    from tritonclient.utils import triton_to_np_dtype

    n = int(header_length) if header_length and header_length.isdigit() else len(body)
    try:
        header = json.loads(body[:n])
    except ValueError:
        header = None
    tensors, asked = (header.get("inputs"), header.get("outputs", [])) if isinstance(header, dict) else (None, None)
    if not (isinstance(tensors, list) and isinstance(asked, list) and all(isinstance(x, dict) for x in tensors + asked)):
        raise _BadRequest("the body is not a KServe v2 inference request: expected a JSON header "
                          '{"inputs": [{"name", "shape", "datatype", "data"}]}, optionally followed by binary tensors '
                          "(header length in 'Inference-Header-Content-Length'); send it with tritonclient.http")
    wrong = [o.get("name") for o in asked if o.get("name") not in outputs]
    if wrong:
        raise _BadRequest(f"unknown outputs {wrong}: this model gives {outputs}; ask for those")
    feeds, offset = {}, n
    for t in tensors:
        name, shape, datatype = t.get("name"), t.get("shape"), str(t.get("datatype"))
        if name not in specs:
            raise _BadRequest(f"unexpected input '{name}': this model takes {sorted(specs)}; rename the feed")
        dtype = triton_to_np_dtype(datatype)
        if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise _BadRequest(f"input '{name}' has datatype '{datatype}' and shape {shape}: expected a Triton "
                              f"datatype (e.g. 'FP32') and a list of sizes for {specs[name].describe()}")
        count = int(np.prod(shape, dtype=np.int64))
        binary = (t.get("parameters") or {}).get("binary_data_size")
        if binary is not None:
            if binary != count * np.dtype(dtype).itemsize or offset + binary > len(body):
                raise _BadRequest(f"input '{name}' claims shape {shape} ({datatype}), but carries {binary} bytes of "
                                  f"which {len(body) - offset} arrived; send the bytes the shape says")
            feeds[name] = np.frombuffer(body, dtype, count, offset).reshape(shape)
            offset += binary
        else:
            try:
                data = np.asarray(t.get("data", []), dtype=dtype).ravel()
            except (ValueError, TypeError):
                raise _BadRequest(f"input '{name}': its data are not {datatype} numbers; send a flat list") from None
            if data.size != count:
                raise _BadRequest(f"input '{name}' claims shape {shape}, but carries {data.size} values; send "
                                  "the values the shape says")
            feeds[name] = data.reshape(shape)
    return feeds, header


def _encode(model: str, outputs: dict[str, np.ndarray], header: dict) -> Any:
    """The answer as Triton gives it: binary tensors after a JSON header where the request asked for binary."""
    from fastapi.responses import Response
    from tritonclient.utils import np_to_triton_dtype

    asked = {o["name"]: (o.get("parameters") or {}).get("binary_data", False) for o in header.get("outputs", [])}
    names = list(asked) or list(outputs)
    default = bool((header.get("parameters") or {}).get("binary_data_output", False))
    tensors, blobs = [], []
    for name in names:
        array = np.ascontiguousarray(outputs[name])
        tensor = {"name": name, "datatype": np_to_triton_dtype(array.dtype), "shape": list(array.shape)}
        if asked.get(name, default):
            tensor["parameters"] = {"binary_data_size": array.nbytes}
            blobs.append(array.tobytes())
        else:
            tensor["data"] = array.ravel().tolist()
        tensors.append(tensor)
    text = json.dumps({"model_name": model, "model_version": "1", "outputs": tensors}).encode()
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(b"".join([text, *blobs]), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})


def create_app(runner: Any, model: str) -> Any:
    """The FastAPI app: health, config, infer (one request at a time, no batching) and the batch-size counter."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse
    from tritonclient.utils import np_to_triton_dtype

    app = FastAPI(title=f"{model}: a plain FastAPI service (no batching)")
    counts: dict[int, int] = {}
    specs = runner.inputs()

    def error(status: int, text: str) -> JSONResponse:
        return JSONResponse({"error": text}, status_code=status)  # Triton's error body: tritonclient reads it

    def unknown(name: str) -> JSONResponse:
        return error(404, f"this service serves model '{model}' only, not '{name}'; use /v2/models/{model}/...")

    @app.get("/v2/health/ready")
    async def ready() -> dict:
        return {"ready": True}

    @app.get("/v2/models/{name}/config")
    async def config(name: str) -> Any:
        if name != model:
            return unknown(name)
        io = {group: [{"name": s.name, "data_type": "TYPE_" + np_to_triton_dtype(s.dtype),
                       "dims": [-1 if d is None else d for d in s.shape]} for s in getattr(runner, group + "s")().values()]
              for group in ("input", "output")}
        return {"name": model, "max_batch_size": 0, **io}  # 0: no server-side batching; dims include the batch

    @app.get("/v2/models/{name}/batch_sizes")
    async def batch_sizes(name: str) -> Any:
        return unknown(name) if name != model else {str(k): v for k, v in sorted(counts.items())}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> Any:
        if name != model:
            return unknown(name)
        try:
            feeds, header = _decode(await request.body(), request.headers.get("inference-header-content-length"),
                                    specs, list(runner.outputs()))
            outputs = runner.infer(feeds)  # in the event loop: one request at a time, as it arrived
        except (_BadRequest, InputMismatch) as err:
            return error(400, f"request to model '{model}' refused: {err}")
        batch = int(next(iter(feeds.values())).shape[0]) if feeds else 0
        counts[batch] = counts.get(batch, 0) + 1
        return _encode(model, outputs, header)

    return app


def _serve() -> None:
    """The child process: ``<listening fd> <onnx path> <model> <threads>`` → uvicorn on the inherited socket."""
    fd, onnx_path, model, threads = sys.argv[1:5]
    import onnxruntime as ort
    import uvicorn

    from trtlab.runtime import OnnxRuntimeRunner

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = int(threads)
    runner = OnnxRuntimeRunner(onnx_path, session_options=options, name="fastapi-onnxruntime")
    config = uvicorn.Config(create_app(runner, model), http="h11", loop="asyncio", log_level="warning",
                            access_log=False, lifespan="off")  # plain uvicorn: no httptools, no uvloop
    uvicorn.Server(config).run(sockets=[socket.socket(fileno=int(fd))])


class HttpBaseline:
    """The FastAPI service in a child process; a context manager (``stop()`` at the end of the ``with`` block).

    ``threads``: ONNX Runtime threads (1, like each Triton instance of the course). ``port=0`` picks a free port;
    a taken port raises :class:`PortInUse` naming its holder. ``url`` is ``"127.0.0.1:<port>"`` for tritonclient.
    """

    def __init__(self, onnx_path: str | Path, *, model: str = "classifier", port: int = 0, threads: int = 1,
                 timeout_s: float = 60.0) -> None:
        self.onnx_path, self.model, self.threads = Path(onnx_path), model, int(threads)
        self.port, self.timeout_s = int(port), float(timeout_s)
        self.process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self._pipe: int | None = None
        self._marker, self._log_text = "", ""

    @property
    def url(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "HttpBaseline":
        if not self.onnx_path.exists():
            raise ServerUnavailable(_("the FastAPI service needs the ONNX model {onnx_path}, which is missing; "
                                      "export it first (tl.export.ensure_course_onnx())").format(
                                        onnx_path=self.onnx_path))
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, self.port))
        except OSError:
            sock.close()
            raise PortInUse(_("the FastAPI service cannot bind {host}:{port}: it is taken by {owner}. Choose "
                              "another port (0 picks a free one) or stop what holds it").format(
                                host=HOST, port=self.port, owner=port_owner(self.port))) from None
        sock.listen(128)
        self.port = sock.getsockname()[1]
        folder = Path(tempfile.mkdtemp(prefix="trtlab_fastapi_"))
        self._marker, self._log_text = marker(folder), ""
        env = dict(os.environ, **{MARKER: self._marker}, PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        command = [sys.executable, "-c", "from trtlab.serve.http_baseline import _serve; _serve()",
                   str(sock.fileno()), str(self.onnx_path), self.model, str(self.threads)]
        try:
            with open(folder / "server.log", "wb") as log:
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                pass_fds=(sock.fileno(),), preexec_fn=pdeathsig(),
                                                start_new_session=True)
        finally:
            sock.close()  # the child holds the listening socket now
        self._watchdog, self._pipe = start_watchdog(self.process.pid, self._marker)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = self.process.returncode if self.process else None
                raise ServerUnavailable(_("the FastAPI service exited during start-up (code {code}). Its last "
                                          "words:\n{log_tail}").format(code=code, log_tail=self.log_tail()))
            try:
                with urllib.request.urlopen(f"http://{self.url}/v2/health/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise ServerTimeout(_("the FastAPI service was not ready after {timeout_s} s; raise timeout_s on a slow "
                              "machine. Its last words:\n{log_tail}").format(
                                timeout_s=self.timeout_s, log_tail=self.log_tail()))

    def batch_size_counts(self) -> dict[int, int]:
        """Executions per batch size since start (like ``tl.serve.batch_size_counts`` for a Triton model)."""
        try:
            with urllib.request.urlopen(f"http://{self.url}/v2/models/{self.model}/batch_sizes", timeout=10) as r:
                return {int(k): int(v) for k, v in json.load(r).items()}
        except OSError as err:
            raise ServerUnavailable(_("the FastAPI service at {url} does not answer ({err}); is it running?").format(
                                        url=self.url, err=err)) \
                from err

    def log_tail(self, lines: int = 20) -> str:
        log = Path(self._marker.split(":", 2)[-1]) / "server.log" if self._marker else None
        text = self._log_text or (log.read_text(errors="replace") if log and log.exists() else "")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """Stop the service (SIGTERM, SIGKILL after 10 s), release its watchdog, check nothing of it survives."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            code = self.process.returncode
            self._log_text = self.log_tail(200)
        if self._pipe is not None:
            os.close(self._pipe)  # the watchdog sees EOF, kills anything still marked and removes the folder
            self._pipe = None
        if self._watchdog is not None:
            try:
                self._watchdog.wait(15)
            except subprocess.TimeoutExpired:
                self._watchdog.kill()
                self._watchdog.wait()
        if self._marker:
            kill_and_clean(self._marker, set(), remove_folder=True)  # whatever the watchdog could not do
            if marked(self._marker):
                raise TritonError(_("processes of the FastAPI service survived stop(): {marked}").format(
                                      marked=marked(self._marker)))
        return code

    def __enter__(self) -> "HttpBaseline":
        return self.start() if not self.running else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        pid = self.process.pid if self.process is not None else None
        state = f"running at http://{self.url} (pid {pid})" if self.running else "stopped"
        return f"<HttpBaseline model '{self.model}' ({self.onnx_path.name}, {self.threads} ORT thread): {state}>"
