"""The example served over real HTTP in a thread, for the browser test and the screenshots.

The port is taken before the app is built, so that the app can be configured with its own
URL (``PAXPAR_CHECKOUT_PUBLIC_URL``): Stripe's success URL then comes back to it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from . import create_app
from .extensions import db

# Debian's Chromium, run headless on a closed network: no background calls home.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No access log: the test and the script print what matters."""


class LiveServer:
    """Serves one WSGI app on ``127.0.0.1`` (a free port) until stopped."""

    def __init__(self) -> None:
        self.app: WSGIApplication | None = None
        self._server = make_server(
            "127.0.0.1", 0, self._dispatch, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def _dispatch(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"starting"]
        return self.app(environ, start_response)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def serve_example(
    database: Path, stripe_api: str, config: Mapping[str, Any] | None = None
) -> Iterator[tuple[Flask, str]]:
    """The example app on SQLite file ``database``, its Stripe API at ``stripe_api`` (a
    local stub), served over HTTP; yields the app and its base URL."""
    with LiveServer() as server:
        app = create_app(
            {
                "SECRET_KEY": secrets.token_hex(16),
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
                "STRIPE_SECRET_KEY": "sk_test_example",
                "STRIPE_API_BASE": stripe_api,
                "PAXPAR_CHECKOUT_PUBLIC_URL": server.url,
                "PAXPAR_CHECKOUT_STRIPE_MAX_NETWORK_RETRIES": 0,
                "PAXPAR_CHECKOUT_STRIPE_TIMEOUT": 5,
                **(config or {}),
            }
        )
        server.app = app
        try:
            yield app, server.url
        finally:
            with app.app_context():
                db.engine.dispose()
