"""``python -m benchmarks``: run the benchmarks, print the table, exit 1 if a target is missed.

.venv/bin/python -m benchmarks                       # everything (about 10 minutes)
.venv/bin/python -m benchmarks --quick               # fewer rounds and events
.venv/bin/python -m benchmarks --only inprocess,http --db sqlite
.venv/bin/python -m benchmarks --profile             # where the webhook's time goes
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import hosts
from .report import Section, machine, save, versions

PARTS = ("inprocess", "http", "session", "memory", "scaling")
RESULTS = Path(__file__).resolve().parent / ".data" / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds and events")
    parser.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated parts of: {', '.join(PARTS)}"
    )
    parser.add_argument("--db", default="sqlite,postgresql", help="sqlite, postgresql or both")
    parser.add_argument(
        "--pg-url",
        default=None,
        help=f"a PostgreSQL database the benchmark may wipe (default {hosts.DEFAULT_PG_URL}, "
        "or PAXPAR_BENCH_DATABASE_URL); created if missing",
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison")
    parser.add_argument("--profile", action="store_true", help="profile the webhook path only")
    parser.add_argument("--markdown", action="store_true", help="also print Markdown tables")
    args = parser.parse_args(argv)

    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    if set(kinds) - {"sqlite", "postgresql"}:
        parser.error("--db takes sqlite, postgresql or both")

    if args.profile:
        from .profiling import profile

        return profile(kinds[0], quick=args.quick, pg_url=args.pg_url)

    quick = args.quick
    info: dict[str, object] = {**machine(), **versions()}
    databases: dict[str, Callable[[], hosts.Database]] = {
        "sqlite": hosts.sqlite_database,
        "postgresql": lambda: hosts.pg_database(args.pg_url),
    }
    if "postgresql" in kinds:
        try:
            info.update(
                {
                    f"postgresql {k}": v
                    for k, v in hosts.pg_settings(databases["postgresql"]()).items()
                }
            )
        except Exception as exc:
            print(f"PostgreSQL is not reachable ({exc}); run with --db sqlite", file=sys.stderr)
            return 2

    print("Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    sections: list[Section] = []
    started = time.monotonic()

    def show(section: Section) -> None:
        sections.append(section)
        print("\n" + section.render(), flush=True)

    if "inprocess" in parts:
        from . import inprocess

        for kind in kinds:
            show(
                inprocess.run(
                    databases[kind](),
                    rounds=args.rounds or (11 if quick else 31),
                    per_round=60,
                )
            )
    if "http" in parts:
        from . import over_http

        for kind in kinds:
            show(
                over_http.run(
                    databases[kind](),
                    rounds=args.rounds or (3 if quick else 7),
                    per_round=300 if quick else 400,
                )
            )
    if "session" in parts:
        from . import checkout_session

        for kind in kinds:
            show(
                checkout_session.run(
                    databases[kind](),
                    rounds=args.rounds or (5 if quick else 11),
                    per_round=40 if quick else 60,
                )
            )
    if "memory" in parts:
        from . import memory

        show(memory.run(events=20_000 if quick else 100_000))
    if "scaling" in parts:
        from . import scaling

        for kind in kinds:
            show(
                scaling.run(
                    kind,
                    pg_url=args.pg_url,
                    small=10_000,
                    large=100_000 if quick else 1_000_000,
                    rounds=args.rounds or (5 if quick else 9),
                    per_round=150 if quick else 240,
                )
            )

    elapsed = time.monotonic() - started
    targets = [t for s in sections for t in s.targets]
    missed = [t for t in targets if not t.met]
    print(f"\n{len(targets) - len(missed)} of {len(targets)} targets met in {elapsed:.0f} s")
    for t in missed:
        print(f"  MISSED  {t.line()}")
    info["seconds"] = round(elapsed)
    save(RESULTS, sections, info)
    if args.markdown:
        print("\n" + "\n\n".join(s.markdown() for s in sections))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
