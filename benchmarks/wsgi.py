"""The app gunicorn serves in the HTTP benchmark: ``BENCH_VARIANT`` on ``BENCH_DB_URL``."""

from __future__ import annotations

import os

from . import hosts

application = hosts.make(
    os.environ["BENCH_VARIANT"],
    hosts.Database(os.environ["BENCH_DB_KIND"], os.environ["BENCH_DB_URL"]),
)
