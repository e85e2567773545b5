"""Where the webhook's time goes.

First the cost of each stage of the plugin's path, measured by leaving the later stages out
(interleaved rounds, as the other benchmarks): the view alone, then signature and parsing,
then the event recorded and committed, then the built-in handlers' effects. Then a profile
of the whole path under pyinstrument when it is installed (``pip install pyinstrument``),
else cProfile.

For a sampling profile of a whole run without touching the code::

    py-spy record -o webhook.svg -- .venv/bin/python -m benchmarks --only inprocess --quick
"""

from __future__ import annotations

import cProfile
import importlib.util
import io
import os
import pstats
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask_paxpar_checkout.events import parse_event
from flask_paxpar_checkout.gateway import verify_signature
from flask_paxpar_checkout.pipeline import Outcome, Pipeline

from . import hosts
from .inprocess import Receiver, post_all, receivers
from .report import Section, median
from .workload import MIX_DESCRIPTION, Workload

# The profile's order: PAXPAR_PROFILE_SORT=tottime shows where the time is spent itself.
SORT = os.environ.get("PAXPAR_PROFILE_SORT", "cumulative")

STAGES = (
    ("floor (for reference)", "floor"),
    ("plugin: the view and its JSON answer", "view"),
    ("  + signature verified, body parsed", "verified"),
    ("  + event recorded and committed", "recorded"),
    ("  + built-in handlers' effects (as shipped)", "full"),
)


def _view_only(self: Pipeline, body: bytes, signature: str | None) -> Outcome:
    return Outcome("processed", "evt_profile")


def _verified_only(self: Pipeline, body: bytes, signature: str | None) -> Outcome:
    verify_signature(body, signature, self.config.webhook_secrets, self.config.webhook_tolerance)
    return Outcome("processed", parse_event(body).id)


@contextmanager
def _stage(plugin: Receiver, stage: str) -> Iterator[None]:
    """The plugin with the stages after ``stage`` left out."""
    receive = Pipeline.receive
    pipeline: Pipeline = plugin.app.extensions["paxpar_checkout"].pipeline
    builtins = pipeline.builtins
    try:
        if stage == "view":
            Pipeline.receive = _view_only  # type: ignore[method-assign]
        elif stage == "verified":
            Pipeline.receive = _verified_only  # type: ignore[method-assign]
        elif stage == "recorded":

            def nothing(tx: Any, event: Any) -> None:
                return None

            pipeline.builtins = {event_type: nothing for event_type in builtins}
        yield
    finally:
        Pipeline.receive = receive  # type: ignore[method-assign]
        pipeline.builtins = builtins


def stages(db: hosts.Database, *, rounds: int, per_round: int) -> Section:
    """The cost of each stage of the webhook path, in interleaved rounds."""
    hosts.reset_tables(db)
    every = {r.name: r for r in receivers(db)}
    plugin = every["plugin"]
    assert plugin.seed is not None
    work = Workload(seed=19)
    rng = random.Random(19)
    timings: dict[str, list[float]] = {key: [] for _, key in STAGES}
    for n in range(rounds + 1):
        order = [key for _, key in STAGES]
        rng.shuffle(order)
        for key in order:
            deliveries = work.deliveries(per_round)
            if key == "floor":
                seconds = post_all(every["floor"], deliveries)
            else:
                plugin.seed(deliveries)
                with _stage(plugin, key):
                    seconds = post_all(plugin, deliveries)
            if n:
                timings[key].append(seconds / per_round * 1e6)
    section = Section(
        title=f"Where the webhook's time goes (in process), {db.label}",
        header=("stage", "us/event", "added us"),
    )
    before: float | None = None
    for label, key in STAGES:
        us = median(timings[key])
        section.rows.append((label, us, None if before is None else us - before))
        before = None if key == "floor" else us
    section.notes.append(
        f"{rounds} interleaved rounds of {per_round} deliveries; {MIX_DESCRIPTION}"
    )
    return section


def profile(kind: str, *, quick: bool = False, pg_url: str | None = None) -> int:
    """Print the stages and a profile of the plugin's webhook on ``kind``; return 0."""
    db = hosts.sqlite_database() if kind == "sqlite" else hosts.pg_database(pg_url)
    print(stages(db, rounds=5 if quick else 11, per_round=150 if quick else 240).render())

    hosts.reset_tables(db)
    plugin = next(r for r in receivers(db) if r.name == "plugin")
    assert plugin.seed is not None
    work = Workload(seed=17)
    warm = work.deliveries(400)
    plugin.seed(warm)
    post_all(plugin, warm)
    deliveries = work.deliveries(1000 if quick else 4000)
    plugin.seed(deliveries)
    run: Callable[[], float] = lambda: post_all(plugin, deliveries)  # noqa: E731
    if importlib.util.find_spec("pyinstrument") is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
        seconds = run()
        profiler.stop()
        report = profiler.output_text(unicode=False, color=False, show_all=False)
    else:
        stats = cProfile.Profile()
        stats.enable()
        seconds = run()
        stats.disable()
        out = io.StringIO()
        pstats.Stats(stats, stream=out).sort_stats(SORT).print_stats(40)
        report = out.getvalue()
    print(f"\nProfile of {len(deliveries)} deliveries of the mix ({db.label}):")
    print(report)
    print(f"{seconds / len(deliveries) * 1e6:.0f} us/event under the profiler")
    return 0
