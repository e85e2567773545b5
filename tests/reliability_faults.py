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
    db.session.rollback()  # a transaction of the test holding the table would block the DDL
    name = f"reliability_fault_{secrets.token_hex(4)}"
    engine: Engine = db.engine
    postgresql = engine.dialect.name == "postgresql"
    if at_commit and not postgresql:
        raise ValueError("a failing COMMIT needs PostgreSQL's deferred triggers")
    drops: list[str] = []
    with engine.begin() as conn:
        if postgresql:
            conn.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    f"RAISE EXCEPTION '{FAULT_MESSAGE}' USING ERRCODE = '08006'; END $$"
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
                        f"BEGIN SELECT RAISE(ABORT, '{FAULT_MESSAGE}'); END"
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


@contextmanager
def connection_killed_on_write(db: SQLAlchemy, table: str, when: str = "1 = 1") -> Iterator[None]:
    """PostgreSQL only: until the block ends, a row written to ``table`` whose new values
    match ``when`` makes the server end the writing connection, as a crash or a failover
    would, in the middle of its transaction."""
    db.session.rollback()
    name = f"reliability_kill_{secrets.token_hex(4)}"
    engine: Engine = db.engine
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE INSERT OR UPDATE ON {table} "
                f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        db.session.rollback()
        with engine.begin() as conn:
            conn.execute(text(f"DROP TRIGGER {name} ON {table}"))
            conn.execute(text(f"DROP FUNCTION {name}()"))
