"""A database of its own for the reliability tests, on the suite's engine.

On PostgreSQL (``PAXPAR_TEST_DATABASE_URL``) each use gets a fresh schema, selected with
``search_path`` in the URL, so that the plugin's tables never collide with another test
run on the same database; on SQLite, a file under the test's ``tmp_path``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, make_url, text


def suite_database_url() -> str | None:
    """The PostgreSQL URL the suite runs on, or None for SQLite."""
    return os.environ.get("PAXPAR_TEST_DATABASE_URL") or None


def on_postgresql() -> bool:
    return suite_database_url() is not None


def with_search_path(url: str, schema: str, **settings: str) -> str:
    """``url`` with libpq ``options`` that select ``schema`` (and any other settings)."""
    options = " ".join(f"-c {k}={v}" for k, v in {"search_path": schema, **settings}.items())
    return make_url(url).update_query_dict({"options": options}).render_as_string(False)


@contextmanager
def isolated_database(tmp_path: Path, name: str = "db") -> Iterator[str]:
    """Yield a SQLAlchemy URL of an empty database that only this caller uses."""
    base = suite_database_url()
    if base is None:
        yield f"sqlite:///{tmp_path / name}.sqlite"
        return
    schema = f"reliability_{name}_{secrets.token_hex(4)}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield with_search_path(base, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def schema_of(url: str) -> str | None:
    """The schema an ``isolated_database`` URL selects (None on SQLite)."""
    options = make_url(url).query.get("options")
    if not isinstance(options, str):
        return None
    for part in options.split("-c "):
        key, _, value = part.strip().partition("=")
        if key == "search_path":
            return value
    return None


@contextmanager
def engine_for(url: str, **kwargs: Any) -> Iterator[Engine]:
    """A plain engine on ``url``, disposed afterwards."""
    engine = create_engine(url, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()
