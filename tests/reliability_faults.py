"""Database faults injected by the database itself: triggers that fail the writes to one
table, at the statement or (PostgreSQL) at COMMIT. The plugin runs the code path
production runs; nothing is patched in Python, no SQLAlchemy event is listened to.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Engine, text

FAULT_MESSAGE = "injected database failure"
WRITES = ("INSERT", "UPDATE")


@contextmanager
def failing_writes(
    db: SQLAlchemy,
    table: str,
    when: str = "1 = 1",
    *,
    operations: tuple[str, ...] = WRITES,
    at_commit: bool = False,
) -> Iterator[None]:
    """Until the block ends, fail every row written to ``table`` by one of ``operations``
    whose new values match ``when`` (SQL on ``NEW``): at the statement, or at COMMIT.

    On PostgreSQL the error is SQLSTATE 08006 (connection failure), as when the server
    goes away in the middle of a transaction.
    """
    with _row_trigger(
        db,
        table,
        when,
        operations=operations,
        plpgsql=f"RAISE EXCEPTION '{FAULT_MESSAGE}' USING ERRCODE = '08006';",
        sqlite=f"SELECT RAISE(ABORT, '{FAULT_MESSAGE}');",
        at_commit=at_commit,
    ):
        yield


@contextmanager
def connection_killed_on_write(db: SQLAlchemy, table: str, when: str = "1 = 1") -> Iterator[None]:
    """PostgreSQL only: until the block ends, a row written to ``table`` whose new values
    match ``when`` makes the server end the writing connection, as a crash or a failover
    would, in the middle of its transaction."""
    with _row_trigger(
        db,
        table,
        when,
        operations=WRITES,
        plpgsql="PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW;",
    ):
        yield


@contextmanager
def _row_trigger(
    db: SQLAlchemy,
    table: str,
    when: str,
    *,
    operations: tuple[str, ...],
    plpgsql: str,
    sqlite: str | None = None,
    at_commit: bool = False,
) -> Iterator[None]:
    """Until the block ends, run ``plpgsql`` (PostgreSQL) or ``sqlite`` (SQLite) for each
    row written to ``table`` by one of ``operations`` whose new values match ``when``:
    before the write, or (PostgreSQL) at COMMIT."""
    db.session.rollback()  # a transaction of the test holding the table would block the DDL
    name = f"reliability_fault_{secrets.token_hex(4)}"
    engine: Engine = db.engine
    postgresql = engine.dialect.name == "postgresql"
    if at_commit and not postgresql:
        raise ValueError("a failing COMMIT needs PostgreSQL's deferred triggers")
    if sqlite is None and not postgresql:
        raise ValueError("this fault exists on PostgreSQL only")
    drops: list[str] = []
    with engine.begin() as conn:
        if postgresql:
            conn.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"{plpgsql} END $$"
                )
            )
            kind, timing, deferred = (
                ("CONSTRAINT TRIGGER", "AFTER", "DEFERRABLE INITIALLY DEFERRED")
                if at_commit
                else ("TRIGGER", "BEFORE", "")
            )
            conn.execute(
                text(
                    f"CREATE {kind} {name} {timing} {' OR '.join(operations)} ON {table} "
                    f"{deferred} FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}()"
                )
            )
            drops += [f"DROP TRIGGER {name} ON {table}", f"DROP FUNCTION {name}()"]
        else:
            for operation in operations:
                trigger = f"{name}_{operation.lower()}"
                conn.execute(
                    text(
                        f"CREATE TRIGGER {trigger} BEFORE {operation} ON {table} WHEN {when} "
                        f"BEGIN {sqlite} END"
                    )
                )
                drops.append(f"DROP TRIGGER {trigger}")
    try:
        yield
    finally:
        db.session.rollback()
        with engine.begin() as conn:
            for drop in drops:
                conn.execute(text(drop))
