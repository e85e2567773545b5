"""Over HTTP: each receiver behind gunicorn (2 sync workers), the load generator in a second
process on loopback, the three servers up side by side and posted to in interleaved rounds."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text

from . import hosts
from .loadgen import Batch, Outcome, serve
from .report import Section, Target, median, percentile
from .workload import MIX_DESCRIPTION, Delivery, Workload

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def gunicorn(
    variant: str, db: hosts.Database, workers: int = WORKERS, log_level: str = "warning"
) -> Iterator[Any]:
    """``variant`` served by gunicorn on a free loopback port; yields (port, process)."""
    port = free_port()
    env = {
        **os.environ,
        "BENCH_VARIANT": variant,
        "BENCH_DB_KIND": db.kind,
        "BENCH_DB_URL": db.url,
        "PYTHONPATH": str(ROOT),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            log_level,
            "--timeout",
            "120",
            "benchmarks.wsgi:application",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn serving {variant} did not start")
            time.sleep(0.2)
        yield port, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_rss_kib(master: int) -> list[int]:
    """Resident size of each worker of the gunicorn ``master`` process, in KiB."""
    out: list[int] = []
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    except OSError:
        return out
    for pid in children:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]))
        except OSError:
            continue
    return out


def run(
    db: hosts.Database,
    *,
    rounds: int,
    per_round: int,
    concurrency: int = 4,
    seed: int = 11,
) -> Section:
    """Interleaved rounds over HTTP on ``db``: throughput, latency, errors, durability."""
    hosts.reset_tables(db)
    seeder, seeder_db = hosts.plugin_app(db)
    work = Workload(seed=seed, prefix="h")
    rng = random.Random(seed)
    names = hosts.VARIANTS
    seconds: dict[str, list[float]] = {n: [] for n in names}
    latencies: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, int] = {n: 0 for n in names}
    acknowledged: list[str] = []
    rss: dict[str, list[int]] = {}

    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    loader = ctx.Process(target=serve, args=(theirs,), daemon=True)
    loader.start()
    try:
        with ExitStack() as stack:
            servers = {n: stack.enter_context(gunicorn(n, db)) for n in names}
            for n in range(rounds + 1):  # the first round warms up and is not counted
                order = list(names)
                rng.shuffle(order)
                for name in order:
                    deliveries = work.deliveries(per_round)
                    if name == "plugin":
                        hosts.seed_sessions(
                            seeder,
                            seeder_db,
                            [d.session for d in deliveries if d.session],
                            prefix="h",
                        )
                    port = servers[name][0]
                    batch = Batch(
                        port,
                        hosts.WEBHOOK_PATH[name],
                        [(d.body, d.signature) for d in deliveries],
                        concurrency,
                    )
                    ours.send(batch)
                    outcome: Outcome = ours.recv()
                    bad = sum(1 for s in outcome.statuses if s != 200)
                    if name == "plugin":
                        acknowledged += _to_store(deliveries, outcome.statuses)
                    if n == 0:
                        if name == "plugin":
                            rss["after warm-up"] = worker_rss_kib(servers[name][1].pid)
                        continue
                    errors[name] += bad
                    seconds[name].append(outcome.seconds / per_round * 1e6)
                    latencies[name] += outcome.latencies
            rss["at the end"] = worker_rss_kib(servers["plugin"][1].pid)
    finally:
        ours.send(None)
        loader.join(10)

    stored = _stored(seeder, seeder_db, set(acknowledged))
    with seeder.app_context():
        seeder_db.engine.dispose()

    section = Section(
        title=(
            f"Over HTTP (gunicorn, {WORKERS} sync workers; load generator: another process, "
            f"{concurrency} connections), {db.label}"
        ),
        header=("receiver", "events/s", "us/event", "p50 ms", "p99 ms", "errors"),
    )
    for name in names:
        us = median(seconds[name])
        section.rows.append(
            (
                name,
                1e6 / us,
                us,
                percentile(latencies[name], 50) * 1e3,
                percentile(latencies[name], 99) * 1e3,
                errors[name],
            )
        )
    ratio_usual = median(p / u for p, u in zip(seconds["plugin"], seconds["usual"], strict=True))
    ratio_floor = median(p / f for p, f in zip(seconds["plugin"], seconds["floor"], strict=True))
    section.rows.append(("plugin/usual (median of rounds)", None, ratio_usual, None, None, None))
    section.rows.append(("plugin/floor (median of rounds)", None, ratio_floor, None, None, None))
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} deliveries per receiver; {MIX_DESCRIPTION}"
    )
    section.notes.append(
        "acknowledged (200) plugin deliveries found stored afterwards (another instance's "
        f"events are not stored): {stored}/"
        f"{len(set(acknowledged))}"
    )
    for when, values in rss.items():
        shown = ", ".join(f"{v / 1024:.1f} MiB" for v in values)
        section.notes.append(f"plugin worker RSS {when}: {shown}")
    section.targets.append(
        Target(f"over HTTP, {db.kind}: failed deliveries", float(sum(errors.values())), 0)
    )
    section.targets.append(
        Target(
            f"over HTTP, {db.kind}: acknowledged events missing",
            float(len(set(acknowledged)) - stored),
            0,
        )
    )
    crash, note = crash_check(db)
    section.notes.append(note)
    section.targets.append(crash)
    return section


def crash_check(
    db: hosts.Database, *, deliveries: int = 600, concurrency: int = 4
) -> tuple[Target, str]:
    """Kill the plugin's workers (SIGKILL) in the middle of a load: every delivery answered
    200 before must be stored, since the answer is sent only after the commit."""
    seeder, seeder_db = hosts.plugin_app(db)
    work = Workload(seed=23, prefix="k")
    batch = work.deliveries(deliveries)
    hosts.seed_sessions(seeder, seeder_db, [d.session for d in batch if d.session], prefix="k")
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    loader = ctx.Process(target=serve, args=(theirs,), daemon=True)
    loader.start()
    try:
        with gunicorn("plugin", db, log_level="critical") as (port, master):
            ours.send(
                Batch(
                    port,
                    hosts.WEBHOOK_PATH["plugin"],
                    [(d.body, d.signature) for d in batch],
                    concurrency,
                )
            )
            time.sleep(0.5)
            killed = 0
            for pid in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
                killed += 1
            outcome: Outcome = ours.recv()
    finally:
        ours.send(None)
        loader.join(10)
    acked = set(_to_store(batch, outcome.statuses))
    stored = _stored(seeder, seeder_db, acked)
    with seeder.app_context():
        seeder_db.engine.dispose()
    unanswered = sum(1 for s in outcome.statuses if s != 200)
    note = (
        f"crash: {killed} plugin workers killed (SIGKILL) 0.5 s into {deliveries} deliveries: "
        f"{len(acked)} distinct events answered 200, {stored} of them stored; "
        f"{unanswered} deliveries unanswered (Stripe would retry them)"
    )
    target = Target(
        f"over HTTP, {db.kind}: acknowledged events lost, workers killed",
        float(len(acked) - stored),
        0,
    )
    return target, note


def _to_store(deliveries: list[Delivery], statuses: list[int]) -> list[str]:
    """The events answered 200 that must be stored: all but another instance's (answered
    ``ignored``, and kept out of this instance's database by design)."""
    return [
        d.event_id
        for d, status in zip(deliveries, statuses, strict=True)
        if status == 200 and d.kind != "other_instance"
    ]


def _stored(app: Any, sqla: Any, ids: set[str]) -> int:
    """How many of ``ids`` the plugin's event table holds."""
    found = 0
    ordered = sorted(ids)
    with app.app_context():
        for i in range(0, len(ordered), 500):
            chunk = ordered[i : i + 500]
            marks = ", ".join(f":i{k}" for k in range(len(chunk)))
            found += int(
                sqla.session.execute(
                    text(f"SELECT count(*) FROM paxpar_checkout_events WHERE id IN ({marks})"),
                    {f"i{k}": v for k, v in enumerate(chunk)},
                ).scalar_one()
            )
        sqla.session.rollback()
    return found
