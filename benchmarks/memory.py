"""Memory: the resident size of a process serving the plugin, and its growth over many
events (a worker's memory must not grow with the number of events it has handled).

Runs in a fresh process of its own. The events go through the WSGI app as in a worker; the
database is SQLite in WAL with ``synchronous=NORMAL`` here (durability does not change
memory, and it keeps this part short).
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path

from .report import Section, Target

SAMPLE_EVERY = 10_000


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _measure(events: int, conn: Connection) -> None:
    from . import hosts
    from .workload import Workload

    db = hosts.sqlite_database("memory")
    app, sqla = hosts.plugin_app(db, synchronous="NORMAL")
    hosts.reset_plugin_tables(app, sqla)
    client = app.test_client()
    work = Workload(seed=3, prefix="m")
    samples = [(0, rss_kib())]
    done = 0
    while done < events:
        batch = work.deliveries(1000, start=done)
        hosts.seed_sessions(app, sqla, [d.session for d in batch if d.session], prefix="m")
        for d in batch:
            answer = client.post(
                hosts.WEBHOOK_PATH["plugin"],
                data=d.body,
                headers={"Stripe-Signature": d.signature, "Content-Type": "application/json"},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"the plugin answered {answer.status_code}")
        done += len(batch)
        if done % SAMPLE_EVERY == 0 or done >= events:
            samples.append((done, rss_kib()))
    stored = hosts.count_rows(app, sqla, "SELECT count(*) FROM paxpar_checkout_events")
    with app.app_context():
        sqla.engine.dispose()
    hosts.remove_sqlite(db)  # hundreds of MB
    conn.send((samples, stored))


def run(*, events: int) -> Section:
    """RSS of a fresh plugin process: loaded, after warm-up, after ``events`` events."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_measure, args=(events, theirs))
    process.start()
    samples, stored = ours.recv()
    process.join()
    loaded = samples[0][1]
    total = samples[-1][0]
    # Caches (SQLite's pages, SQLAlchemy's, the allocator's) fill during the first events;
    # what must not grow is the second half.
    half, warm = next((c, kib) for c, kib in samples if c >= total // 2)
    end = samples[-1][1]
    growth = (end - warm) / 1024
    section = Section(
        title="Memory of a process serving the plugin (RSS)",
        header=("after events", "RSS MiB"),
    )
    for count, kib in samples:
        section.rows.append((count, kib / 1024))
    section.notes.append(
        f"loaded (app and plugin, before any event): {loaded / 1024:.1f} MiB; "
        f"{stored:,} distinct events stored; growth from {half:,} to {total:,} events: "
        f"{growth:+.2f} MiB ({(end - warm) * 1024 / max(1, total - half):.1f} bytes/event)"
    )
    section.targets.append(
        Target(f"memory: RSS growth from {half:,} to {total:,} events", growth, 1.0, " MiB")
    )
    return section
