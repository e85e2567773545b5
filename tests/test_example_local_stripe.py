"""``examples/run.sh`` without a Stripe key: the example starts the local Stripe as its child,
says so on start-up and on every page, and takes it down when it ends."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent
WAIT = 30.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str:
    with urlopen(url, timeout=10) as page:  # noqa: S310
        return str(page.read().decode())


def _until(check: object, what: str) -> None:
    """Poll ``check()`` until true, failing with ``what`` after a bound."""
    deadline = time.monotonic() + WAIT
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {WAIT}s")
        time.sleep(0.1)


def _serves(url: str) -> bool:
    try:
        _get(url)
    except (URLError, OSError):
        return False
    return True


def test_without_a_key_the_example_runs_on_the_local_stripe(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "PAXPAR_"))}
    env.update(
        PORT=str(port),
        DATABASE_URL=f"sqlite:///{tmp_path / 'host.db'}",
        SECRET_KEY="test",
        PYTHONUNBUFFERED="1",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "examples.host_app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout

    def read_lines() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read_lines, daemon=True).start()
    summary: list[str] = []
    try:
        while not any(line.strip().startswith("Stripe:") for line in summary):
            try:
                summary.append(lines.get(timeout=WAIT))
            except queue.Empty:
                pytest.fail(f"no start-up summary within {WAIT}s: {summary}")
        [stripe_line] = [line for line in summary if line.strip().startswith("Stripe:")]
        assert "Local Stripe: no real payment" in stripe_line
        local = stripe_line.split(", at ")[1].split()[0]
        base = f"http://127.0.0.1:{port}"
        _until(lambda: _serves(base + "/health"), "the example did not answer")
        for path in ("/prices", "/login"):
            assert "Local Stripe: no real payment" in _get(base + path)
        assert "Local Stripe: no real payment" in _get(local + "/")
    finally:
        process.terminate()
        process.wait(timeout=WAIT)
        stdout.close()
    _until(lambda: not _serves(local + "/"), "the local Stripe outlived the example")
