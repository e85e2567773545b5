"""Where the plugin's compiled statements run, when nothing observes SQLAlchemy's execution.

- In the host's ``db.session`` transaction, on the DBAPI cursor of its connection.
- In a transaction of the plugin's own, on a connection checked out of the engine's pool,
  without the ORM session: for a webhook event that only the built-in handlers handle. The
  session's bookkeeping around its connection and COMMIT is then saved (a tenth of the
  webhook's cost), and the statements, parameters, errors and pool are the same.
- As one statement committed by itself, the same way: a read or a single write of the
  checkout, which on PostgreSQL then costs one round trip instead of three (BEGIN, the
  statement, COMMIT).

Anything observed (an engine, dialect or session listener, echo, execution options) takes
SQLAlchemy's usual way instead, where the observer sees it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import BindTyping
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def engine_observed(engine: Engine) -> bool:
    """Whether anything observes or alters SQLAlchemy's execution on ``engine``.

    These are SQLAlchemy's own checks on its execution path: listeners of the engine or of
    the dialect, echo or SQL logging, execution options (``schema_translate_map``...), and
    bind typing by ``setinputsizes``.
    """
    return bool(
        engine._has_events
        or engine.dialect._has_events
        or engine.echo
        or engine.get_execution_options()
        or engine.dialect.bind_typing is BindTyping.SETINPUTSIZES
    )


def session_observed(session: Session, conn: Connection) -> bool:
    """Whether anything observes or alters SQLAlchemy's execution in ``session`` on ``conn``:
    the engine's checks, and the session's ``do_orm_execute`` listeners and options."""
    return bool(
        session.dispatch.do_orm_execute
        or getattr(session, "execution_options", None)
        or conn._has_events
        or conn._echo
        or conn.get_execution_options()
        or engine_observed(conn.engine)
    )


class OwnTransaction:
    """The plugin's own transaction on a connection of the engine's pool.

    The checkout goes through the pool, so its ``connect``/``checkout`` events (a host's
    PRAGMAs) apply and its reset runs at checkin. DBAPI errors come out wrapped as
    SQLAlchemy's, without their parameters, and a lost connection is invalidated.

    The driver's autocommit is set for the length of the transaction, whatever the engine's
    isolation level: off for a transaction (statements that must land together), on for
    ``single_statement`` on PostgreSQL (the statement is its own transaction, without a
    round trip for BEGIN nor one for COMMIT). It is put back before the connection returns
    to the pool.
    """

    __slots__ = ("_connection", "_cursor", "_dialect", "_restore", "_single", "_statements")

    def __init__(self, engine: Engine, *, single_statement: bool = False) -> None:
        self._dialect = engine.dialect
        self._connection: Any = None
        self._cursor: Any = None
        self._restore: Any = None
        self._single = single_statement
        self._statements = 0
        try:
            self._connection = engine.raw_connection()
            self._set_autocommit(single_statement and self._dialect.name != "sqlite")
            self._cursor = self._connection.cursor()
        except Exception as exc:
            error = self._wrapped(exc, "connect")
            if self._connection is not None:
                self.close()
            raise error from exc

    def execute(self, text: str, args: Any, returns_rows: bool) -> Any:
        """Run one statement; its first row if it returns rows."""
        self._statements += 1
        if self._single and self._statements > 1:
            raise RuntimeError("a single-statement transaction ran a second statement")
        try:
            self._cursor.execute(text, args)
            return self._cursor.fetchone() if returns_rows else None
        except Exception as exc:
            raise self._wrapped(exc, text) from exc

    def commit(self) -> None:
        try:
            self._connection.commit()
        except Exception as exc:
            raise self._wrapped(exc, "COMMIT") from exc

    def rollback(self) -> None:
        try:
            self._connection.rollback()
        except Exception as exc:
            raise self._wrapped(exc, "ROLLBACK") from exc

    def close(self) -> None:
        """Give the connection back to the pool (which resets it), as it was lent."""
        if self._restore is not None:
            try:
                self._restore()
            except Exception as exc:  # a broken connection: the pool must not lend it again
                self._connection.invalidate(exc)
        self._connection.close()

    def _set_autocommit(self, on: bool) -> None:
        """Switch the driver's autocommit to ``on``, remembering how to switch it back."""
        dbapi_connection = self._connection.dbapi_connection
        if self._dialect.name == "sqlite":  # pysqlite: autocommit is isolation_level None
            lent = dbapi_connection.isolation_level
            if (lent is None) is not on:
                dbapi_connection.isolation_level = None if on else ""
                self._restore = lambda: setattr(dbapi_connection, "isolation_level", lent)
        elif bool(dbapi_connection.autocommit) is not on:  # psycopg, psycopg2, pg8000
            dbapi_connection.autocommit = on
            self._restore = lambda: setattr(dbapi_connection, "autocommit", not on)

    def _wrapped(self, exc: Exception, statement: str) -> Exception:
        dbapi_error = self._dialect.loaded_dbapi.Error
        if not isinstance(exc, dbapi_error):
            return exc
        lost = False
        if self._connection is not None:
            dbapi_connection = self._connection.dbapi_connection
            lost = self._dialect.is_disconnect(exc, dbapi_connection, self._cursor)
            if lost:
                self._connection.invalidate(exc)
        return DBAPIError.instance(
            statement,
            None,
            exc,
            dbapi_error,
            hide_parameters=True,  # they hold users' emails and Stripe ids
            connection_invalidated=lost,
            dialect=self._dialect,
        )


_own: ContextVar[OwnTransaction | None] = ContextVar("paxpar_checkout_own", default=None)


def current_own_transaction() -> OwnTransaction | None:
    """The plugin's own transaction running in this context, if any."""
    return _own.get()


@contextmanager
def own_transaction(engine: Engine, *, single_statement: bool = False) -> Iterator[None]:
    """Run the block in a transaction of the plugin's own: committed at its end, rolled
    back on error, the connection given back to the pool either way. With
    ``single_statement``, the block runs one statement at most, committed by itself."""
    own = OwnTransaction(engine, single_statement=single_statement)
    token = _own.set(own)
    try:
        yield
        own.commit()
    except BaseException:
        with suppress(Exception):  # the original error says more; the pool resets anyway
            own.rollback()
        raise
    finally:
        _own.reset(token)
        own.close()
