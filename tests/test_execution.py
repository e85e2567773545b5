"""The plugin's own transaction and single statements (``execution``), on the test database:
atomic whatever the engine's isolation level, and every pooled connection given back as it
was lent."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from flask_paxpar_checkout.execution import current_own_transaction, own_transaction
from flask_paxpar_checkout.testing import StripeStub

from .conftest import as_user, database_url

JSON = {"Accept": "application/json"}


@pytest.fixture(params=["default", "AUTOCOMMIT"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """One pooled connection, so that the connection given back is the one lent next; with
    the host's default isolation level, or with the driver's autocommit on."""
    options: dict[str, Any] = {"pool_size": 1, "max_overflow": 0}
    if request.param == "AUTOCOMMIT":
        options["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(database_url(tmp_path), **options)
    yield engine
    engine.dispose()


@pytest.fixture
def table(engine: Engine) -> Iterator[str]:
    name = f"exec_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)")
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE {name}")


def insert(engine: Engine, table: str, row_id: int) -> None:
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%(id)s"
    args: Any = (row_id,) if mark == "?" else {"id": row_id}
    own = current_own_transaction()
    assert own is not None
    own.execute(f"INSERT INTO {table} (id) VALUES ({mark})", args, False)


def stored(engine: Engine, table: str) -> list[int]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))]


def autocommit_of_the_next_connection(engine: Engine) -> bool:
    conn = engine.raw_connection()
    try:
        return engine.dialect.detect_autocommit_setting(conn.dbapi_connection)
    finally:
        conn.close()


def write_then_fail(engine: Engine, table: str) -> None:
    with own_transaction(engine):
        insert(engine, table, 1)
        raise RuntimeError("the second write failed")


def two_single_statements(engine: Engine, table: str) -> None:
    with own_transaction(engine, single_statement=True):
        insert(engine, table, 8)
        insert(engine, table, 9)


def test_a_transaction_lands_whole_or_not_at_all_whatever_the_engine(
    engine: Engine, table: str
) -> None:
    """On an engine whose connections autocommit, a transaction of the plugin's still holds
    its statements together: a failure after the first write leaves nothing."""
    lent = autocommit_of_the_next_connection(engine)
    with pytest.raises(RuntimeError, match="second write failed"):
        write_then_fail(engine, table)
    assert stored(engine, table) == []
    with own_transaction(engine):
        insert(engine, table, 1)
        insert(engine, table, 2)
    assert stored(engine, table) == [1, 2]
    assert autocommit_of_the_next_connection(engine) is lent


def test_a_single_statement_is_committed_by_itself(engine: Engine, table: str) -> None:
    """On PostgreSQL the statement is its own transaction (no BEGIN nor COMMIT round trip):
    another connection sees it before the block ends. Either way it is stored at the end,
    a second statement is refused, and the connection goes back to the pool as lent."""
    lent = autocommit_of_the_next_connection(engine)
    observer = create_engine(engine.url)
    try:
        with own_transaction(engine, single_statement=True):
            insert(engine, table, 7)
            if engine.dialect.name == "postgresql":
                assert stored(observer, table) == [7]
        assert stored(engine, table) == [7]
    finally:
        observer.dispose()
    with pytest.raises(RuntimeError, match="second statement"):
        two_single_statements(engine, table)
    assert 9 not in stored(engine, table)
    assert autocommit_of_the_next_connection(engine) is lent


def test_creating_a_session_starts_no_orm_transaction(
    client: FlaskClient, stripe: StripeStub, db: Any
) -> None:
    """The customer lookup and the stored session are single statements on the plugin's own
    connection: the request's ORM session never begins, and the session is stored."""
    from sqlalchemy import event as sa_event
    from sqlalchemy.orm import Session

    from flask_paxpar_checkout.state import current_state

    begun: list[Any] = []

    def on_begin(session: Any, transaction: Any, connection: Any) -> None:
        begun.append(session)

    db.session.commit()
    sa_event.listen(Session, "after_begin", on_begin)
    try:
        first = client.get("/api/checkout/session?qty=3", headers=as_user(41, **JSON))
        again = client.get("/api/checkout/session?qty=4", headers=as_user(41, **JSON))
    finally:
        sa_event.remove(Session, "after_begin", on_begin)
    assert first.status_code == again.status_code == 200
    assert begun == []
    store = current_state().store
    sessions = [store.checkout_session(a.get_json()["id"]) for a in (first, again)]
    assert [(s.user_id, s.qty) for s in sessions if s is not None] == [("41", 3), ("41", 4)]
    assert len(stripe.requests_to("POST", "/v1/customers")) == 1  # found the second time
