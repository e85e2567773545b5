"""The execution seam (``database``), on the test database: a transaction is atomic
whatever the engine's isolation level, pooled connections go back as they were lent,
observers see every statement, and the package uses no private attribute of SQLAlchemy."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, event, select
from sqlalchemy.engine import Engine

from flask_paxpar_checkout.database import Database
from flask_paxpar_checkout.models import define_tables
from flask_paxpar_checkout.testing import StripeStub

from .conftest import as_user, database_url
from .helpers import checkout_row

JSON = {"Accept": "application/json"}
PACKAGE = Path(__file__).resolve().parent.parent / "flask_paxpar_checkout"


@pytest.fixture(params=["default", "AUTOCOMMIT"])
def seam(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Database, Table]]:
    """A ``Database`` on an app of its own with one pooled connection (the one given back
    is the one lent next), its engine at the default isolation level or autocommitting."""
    options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}
    if request.param == "AUTOCOMMIT":
        options["isolation_level"] = "AUTOCOMMIT"
    app = Flask(__name__)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=database_url(tmp_path), SQLALCHEMY_ENGINE_OPTIONS=options
    )
    db = SQLAlchemy()
    db.init_app(app)
    table = Table(
        f"seam_{uuid.uuid4().hex[:10]}", MetaData(), Column("id", Integer, primary_key=True)
    )
    with app.app_context():
        table.create(db.engine)
        yield Database(db, define_tables(MetaData())), table
        db.session.remove()
        table.drop(db.engine)
        db.engine.dispose()


def stored(engine: Engine, table: Table) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(table.c.id).order_by(table.c.id))]


def autocommit_of_the_next_connection(engine: Engine) -> bool:
    with engine.connect() as conn:
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None
        return bool(engine.dialect.detect_autocommit_setting(dbapi_connection))


def write_then_fail(database: Database, table: Table, *, with_session: bool = False) -> None:
    with database.transaction(with_session=with_session) as tx:
        tx.execute(table.insert(), {"id": 1})
        tx.after_commit(lambda: pytest.fail("a rolled back transaction ran its after-commit"))
        raise RuntimeError("the second write failed")


def test_a_transaction_lands_whole_or_not_at_all_whatever_the_engine(
    seam: tuple[Database, Table],
) -> None:
    """On an engine whose connections autocommit, a transaction of the plugin's still holds
    its statements together: a failure after the first write leaves nothing."""
    database, table = seam
    engine = database.db.engine
    lent = autocommit_of_the_next_connection(engine)
    with pytest.raises(RuntimeError, match="second write failed"):
        write_then_fail(database, table)
    assert stored(engine, table) == []
    with database.transaction() as tx:
        tx.execute(table.insert(), {"id": 1})
        tx.execute(table.insert(), {"id": 2})
    assert stored(engine, table) == [1, 2]
    assert autocommit_of_the_next_connection(engine) is lent


def test_the_hosts_session_transaction_is_atomic_too(seam: tuple[Database, Table]) -> None:
    database, table = seam
    engine = database.db.engine
    with pytest.raises(RuntimeError, match="second write failed"):
        write_then_fail(database, table, with_session=True)
    assert stored(engine, table) == []
    assert not database.session.in_transaction()


def test_after_commit_runs_after_the_commit_and_never_after_a_rollback(
    seam: tuple[Database, Table],
) -> None:
    database, table = seam
    seen: list[list[int]] = []
    with database.transaction() as tx:
        tx.execute(table.insert(), {"id": 3})
        tx.after_commit(lambda: seen.append(stored(database.db.engine, table)))
        assert seen == []
    assert seen == [[3]]
    with pytest.raises(RuntimeError, match="second write failed"):
        write_then_fail(database, table)
    assert seen == [[3]]


def test_a_transaction_joins_the_session_at_work_and_reads_leave_it_open(
    seam: tuple[Database, Table],
) -> None:
    """Never beside the request's session: a write joins (and commits) it; a read runs in it
    and leaves its commit to the host."""
    database, table = seam
    database.session.execute(table.insert(), {"id": 10})
    with database.reading() as tx:
        assert tx.scalar(select(table.c.id)) == 10
    assert database.session.in_transaction()
    with database.transaction() as tx:
        tx.execute(table.insert(), {"id": 11})
    assert not database.session.in_transaction()
    assert stored(database.db.engine, table) == [10, 11]


def test_engine_listeners_see_every_statement(seam: tuple[Database, Table]) -> None:
    database, table = seam
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(database.db.engine, "before_cursor_execute", record)
    try:
        with database.transaction() as tx:
            tx.execute(table.insert(), {"id": 4})
            tx.first(select(table.c.id))
    finally:
        event.remove(database.db.engine, "before_cursor_execute", record)
    assert [s.split()[0] for s in seen if table.name in s] == ["INSERT", "SELECT"]


def test_the_package_uses_no_private_attribute_of_sqlalchemy() -> None:
    """Private attributes break silently on a minor release: public API only."""
    private = re.compile(
        r"\.(_has_events|_echo|_autoflush|_handle_dbapi_exception|_execute_\w+|_compile\w*|"
        r"_generate_cache_key|_sa_\w+|_connection_for_bind|_proxied|_dbapi_connection)\b"
    )
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert offenders == []


def test_creating_a_session_holds_no_transaction_across_stripe(
    client: FlaskClient, stripe: StripeStub, db: Any
) -> None:
    """The customer lookup and the stored session are short transactions of their own: the
    request's ORM session never begins, and the customer is found the second time."""
    from sqlalchemy.orm import Session

    begun: list[Any] = []

    def on_begin(session: Any, transaction: Any, connection: Any) -> None:
        begun.append(session)

    db.session.commit()
    event.listen(Session, "after_begin", on_begin)
    try:
        first = client.get("/api/checkout/session?qty=3", headers=as_user(41, **JSON))
        again = client.get("/api/checkout/session?qty=4", headers=as_user(41, **JSON))
    finally:
        event.remove(Session, "after_begin", on_begin)
    assert first.status_code == again.status_code == 200
    assert begun == []
    sessions = [checkout_row(a.get_json()["id"]) for a in (first, again)]
    assert [(s.user_id, s.qty) for s in sessions if s is not None] == [("41", 3), ("41", 4)]
    assert len(stripe.requests_to("POST", "/v1/customers")) == 1


def test_an_engine_it_cannot_serve_is_refused_clearly(tmp_path: Path) -> None:
    from flask_paxpar_checkout.statements import Statements

    with pytest.raises(RuntimeError, match="SQLite and PostgreSQL, not mysql"):
        Statements(define_tables(MetaData()), "mysql")
    create_engine(f"sqlite:///{tmp_path}/x.db").dispose()
