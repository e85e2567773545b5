"""How the plugin's SQL runs: the one module that knows it.

Every statement is a SQLAlchemy Core construct, run with ``Connection.execute`` inside a
``Transaction`` (SQLAlchemy compiles and caches it; engine listeners and echo see it). A
transaction's connection is the host's ``db.session`` one when the session is already at
work in this request, or when a host handler will write through it, so that everything
commits or rolls back together; otherwise one checked out of the engine's pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Row, event
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from .models import Tables
from .rehearsal import rehearsing
from .statements import Statements


class Transaction:
    """One database transaction in progress, and what is to happen once it commits."""

    def __init__(self, connection: Connection, sql: Statements) -> None:
        self.connection = connection
        self.sql = sql
        self._after_commit: list[Callable[[], None]] = []

    def execute(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """Run ``statement``; its result (rows, ``rowcount``)."""
        result: CursorResult[Any] = self.connection.execute(statement, params)
        return result

    def first(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """The first row of ``statement``, or ``None``."""
        row: Row[Any] | None = self.connection.execute(statement, params).first()
        return row

    def scalar(self, statement: Executable, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row of ``statement``, or ``None``."""
        return self.connection.execute(statement, params).scalar()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transaction has committed; never if it rolls back."""
        self._after_commit.append(callback)

    def pending(self) -> list[Callable[[], None]]:
        """What is to happen once the transaction has committed."""
        return list(self._after_commit)

    def committed(self) -> None:
        for callback in self._after_commit:
            callback()


class Database:
    """The plugin's access to the host's Flask-SQLAlchemy database."""

    def __init__(self, db: SQLAlchemy, tables: Tables) -> None:
        self.db = db
        self.tables = tables
        self._engine_autocommits: bool | None = None
        self._sql: Statements | None = None

    @property
    def sql(self) -> Statements:
        """The plugin's statements for this app's database, built on first use."""
        if self._sql is None:
            self._sql = Statements(self.tables, self.db.engine.dialect.name)
        return self._sql

    @property
    def session(self) -> Session:
        """The host's ``db.session`` of this request or app context."""
        return self.db.session()

    def session_at_work(self) -> bool:
        """Whether the host's session holds a transaction in this request."""
        scoped = self.db.session
        return bool(scoped.registry.has() and scoped().in_transaction())

    def commit_session(self) -> None:
        """Commit the host's session if it holds a transaction: called before a call to
        Stripe, so that a slow Stripe holds no transaction nor pooled connection."""
        if self.session_at_work():
            self.db.session.commit()

    @contextmanager
    def transaction(self, *, with_session: bool = False) -> Iterator[Transaction]:
        """One transaction around the block: committed at its end, rolled back if it raises.

        It is the host's ``db.session`` transaction when ``with_session`` is asked (a host
        handler writes through the session) or the session is already at work in this
        request (never beside it); otherwise one on a connection of the engine's pool. It
        is a transaction whatever the engine's isolation level, AUTOCOMMIT included. In a
        rehearsal (``sync --dry-run``) it is a savepoint of the rehearsal's transaction,
        and nothing is to happen after it.
        """
        if rehearsing():  # a dry run: a savepoint of the caller's transaction, no aftermath
            with self.session.begin_nested():
                yield Transaction(self.session.connection(), self.sql)
            return
        if with_session or self.session_at_work():
            with self._session_transaction() as tx:
                yield tx
        else:
            with self._pool_transaction() as tx:
                yield tx
        tx.committed()

    @contextmanager
    def reading(self) -> Iterator[Transaction]:
        """For reads: inside the host's session transaction if it is at work (which stays
        the host's to commit), else a short transaction on a pooled connection."""
        if self.session_at_work():
            with self.joined() as tx:
                yield tx
        else:
            with self.transaction() as tx:
                yield tx

    @contextmanager
    def joined(self) -> Iterator[Transaction]:
        """The block joins the host's ``db.session`` transaction, which the caller commits;
        what is to happen after the commit happens after the session's."""
        session = self.session
        tx = Transaction(session.connection(), self.sql)
        yield tx
        for callback in tx.pending():
            event.listen(session, "after_commit", lambda _session, cb=callback: cb(), once=True)

    @contextmanager
    def _session_transaction(self) -> Iterator[Transaction]:
        session = self.session
        options = {} if session.in_transaction() else self._transaction_options()
        tx = Transaction(session.connection(execution_options=options), self.sql)
        try:
            yield tx
            session.commit()
        except BaseException:
            session.rollback()
            raise

    @contextmanager
    def _pool_transaction(self) -> Iterator[Transaction]:
        with self.db.engine.connect() as connection:
            options = self._transaction_options(connection)
            if options:
                connection = connection.execution_options(**options)
            with connection.begin():
                yield Transaction(connection, self.sql)

    def _transaction_options(self, connection: Connection | None = None) -> dict[str, Any]:
        """Execution options that make a new connection transactional: none, unless the
        engine's connections autocommit, then the dialect's default isolation level."""
        if self._engine_autocommits is None:
            if connection is not None:
                self._engine_autocommits = _autocommits(connection)
            else:
                with self.db.engine.connect() as checked_out:
                    self._engine_autocommits = _autocommits(checked_out)
        if not self._engine_autocommits:
            return {}
        return {"isolation_level": self.db.engine.dialect.default_isolation_level}


def _autocommits(connection: Connection) -> bool:
    """Whether the driver commits each statement by itself (psycopg's ``autocommit``,
    pysqlite's ``isolation_level = None``): SQLAlchemy's AUTOCOMMIT isolation level."""
    driver = connection.connection.driver_connection
    if getattr(driver, "autocommit", None) is True:
        return True
    return connection.dialect.name == "sqlite" and driver.isolation_level is None  # type: ignore[union-attr]
