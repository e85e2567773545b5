"""The local Stripe's HTTP side: a threaded server on loopback, request recording and the
faults a test injects (fail, delay or drop the next matching requests)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .wire import RecordedRequest, Reply, decode_form, error_body, json_reply, new_id

__all__ = ["HttpServer"]


@dataclass
class _Fault:
    kind: str  # "fail" | "delay" | "drop"
    method: str
    path_prefix: str
    remaining: int
    status: int = 500
    error: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    should_retry: bool | None = None

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and method == self.method and path.startswith(self.path_prefix)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Stay quiet: clients that time out or hang up are expected in tests."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        owner = self.server.owner
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length > 0 else ""
        raw = body if self.command == "POST" else split.query
        rec = RecordedRequest(
            method=self.command,
            path=split.path,
            params=decode_form(raw),
            headers={k.lower(): v for k, v in self.headers.items()},
            raw=raw,
        )
        fault = owner._arrive(rec)
        if fault is not None and fault.kind == "drop":
            self.close_connection = True
            return
        if fault is not None and fault.kind == "delay" and owner._stopping.wait(fault.seconds):
            self.close_connection = True
            return
        reply = owner._fault_reply(fault) if fault is not None and fault.kind == "fail" else None
        if reply is None:
            reply = owner._answer(rec)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            self.close_connection = True


class HttpServer:
    """Serves :meth:`_answer` on ``host:port`` (loopback, a free port by default) in a thread,
    recording every request and applying injected faults first."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._url = ""
        self._faults: list[_Fault] = []

    @property
    def url(self) -> str:
        """Base address, e.g. ``http://127.0.0.1:PORT``; valid after :meth:`start`."""
        if not self._url:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._url

    def start(self) -> Any:
        """Bind and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self.host, self.port), _Handler)
        server.owner = self
        self._server = server
        self._url = f"http://{self.host}:{server.server_address[1]}"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5)
        self._server = self._thread = None
        self._url = ""

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (the command line's way)."""
        self.start()
        try:
            self._stopping.wait()
        finally:
            self.stop()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path starts with ``path_prefix``."""
        with self._lock:
            return [
                r
                for r in self.requests
                if r.method == method.upper() and r.path.startswith(path_prefix)
            ]

    # -- faults ----------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_prefix: str,
        *,
        status: int = 500,
        times: int = 1,
        error_type: str = "api_error",
        message: str = "Injected failure",
        code: str | None = None,
        param: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with a Stripe-shaped error.

        ``Stripe-Should-Retry: true`` is sent on 409, 429 and 5xx unless ``should_retry``
        says otherwise; the answer is never stored under the idempotency key.
        """
        error = error_body(error_type, message, code, param)
        self._add_fault(
            _Fault("fail", method.upper(), path_prefix, times, status, error, 0.0, should_retry)
        )

    def delay_next(self, method: str, path_prefix: str, *, seconds: float, times: int = 1) -> None:
        """Hold the next ``times`` matching requests for ``seconds``, then answer normally."""
        self._add_fault(_Fault("delay", method.upper(), path_prefix, times, seconds=seconds))

    def drop_next(self, method: str, path_prefix: str, *, times: int = 1) -> None:
        """Close the connection of the next ``times`` matching requests without answering."""
        self._add_fault(_Fault("drop", method.upper(), path_prefix, times))

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _clear_requests_and_faults(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()

    # -- called from the server threads ----------------------------------------------------

    def _arrive(self, rec: RecordedRequest) -> _Fault | None:
        with self._lock:
            self.requests.append(rec)
            for fault in self._faults:
                if fault.matches(rec.method, rec.path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    @staticmethod
    def _fault_reply(fault: _Fault) -> Reply:
        headers = {"Request-Id": new_id("req_")}
        retry = fault.should_retry
        if retry is None and (fault.status in (409, 429) or fault.status >= 500):
            retry = True
        if retry is not None:
            headers["Stripe-Should-Retry"] = "true" if retry else "false"
        return json_reply(fault.status, fault.error, headers)

    def _answer(self, rec: RecordedRequest) -> Reply:
        raise NotImplementedError
