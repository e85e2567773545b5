"""Persistence that needs care: an event recorded once, credits that never drift nor go
below zero, a subscription record that an older event never rolls back.

Statements are built and compiled once per dialect; each call only binds parameters.
Everything runs in one transaction: the host's ``db.session`` one, so that the host
handlers' writes and the event's "processed" mark commit or roll back together, or, for an
event no host handler sees, one of the plugin's own (``execution``). Unobserved, the
compiled SQL goes straight to the DBAPI cursor: the same SQL, processed parameters,
transaction and errors, without SQLAlchemy's per-statement cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    Column,
    DateTime,
    Row,
    Table,
    bindparam,
    exists,
    func,
    insert,
    literal,
    result_tuple,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from .errors import InsufficientCredits
from .execution import current_own_transaction, engine_observed, own_transaction, session_observed
from .models import Tables
from .rehearsal import rehearsing

Claim = Literal["claimed", "duplicate"]
TERMINAL = frozenset({"canceled", "incomplete_expired"})
_EVENT_ROW = ("id", "type", "fqdn", "api_version", "created", "livemode", "payload")
_CLAIM_ROW = (*_EVENT_ROW, "status", "attempts", "received_at", "processed_at")
_LEDGER_ROW = (
    "user_id",
    "delta",
    "balance_after",
    "reason",
    "stripe_object_id",
    "dedup_key",
    "memo",
    "created_at",
)
_REQUIRED = object()
_PLAIN_CURSOR = "paxpar_checkout.plain_cursor"  # in session.info: (transaction, cursor)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class CreditChange:
    """One applied change of a user's balance."""

    user_id: str
    before: int
    after: int
    reason: str
    stripe_object_id: str | None


@dataclass(frozen=True)
class SubscriptionState:
    """A user's subscription as the plugin knows it."""

    id: str
    user_id: str
    customer_id: str | None
    price_id: str | None
    status: str
    current_period_end: int | None
    cancel_at_period_end: bool
    cancel_at: int | None
    canceled_at: int | None

    @property
    def is_active(self) -> bool:
        """Whether the user currently has what they pay for (active or trialing)."""
        return self.status in ("active", "trialing")


class Store:
    """The plugin's reads and writes, on the host's Flask-SQLAlchemy session."""

    def __init__(self, db: SQLAlchemy, tables: Tables) -> None:
        self.db = db
        self.t = tables
        self._sql: _Statements | None = None
        t = tables
        self._user_subscriptions = (
            select(t.subscriptions)
            .where(t.subscriptions.c.user_id == _bind("user_id"))
            .order_by(t.subscriptions.c.status_at.desc())
        )

    @property
    def session(self) -> Session:
        return self.db.session  # type: ignore[return-value]

    @property
    def sql(self) -> _Statements:
        """The statements compiled for this app's database (on first use)."""
        if self._sql is None:
            self._sql = _Statements(self.t, self.db.engine.dialect)
        return self._sql

    @contextmanager
    def transaction(self, *, own: bool = False, single_statement: bool = False) -> Iterator[None]:
        """One transaction around the block, committed at its end, rolled back on error.

        With ``own``, the plugin's own transaction (see ``execution``) when nothing observes
        SQLAlchemy's execution and the host's session holds no transaction of this
        request; else, and by default, the host's ``db.session`` transaction. With
        ``single_statement`` too, the block's one statement is committed by itself.
        In a rehearsal (a dry run), a savepoint of the session's outer transaction.
        """
        if rehearsing():
            with self.session.begin_nested():
                yield
            return
        if own and self._may_run_own():
            with own_transaction(self.db.engine, single_statement=single_statement):
                yield
            return
        session = self.session
        try:
            yield
            session.commit()
        except BaseException:
            session.rollback()
            raise

    def release(self) -> None:
        """End the session's transaction before a call to Stripe: a slow Stripe must hold
        no pooled connection, nor a transaction, for the length of the call."""
        scoped = self.db.session
        if scoped.registry.has() and scoped().in_transaction():
            scoped.commit()

    def _may_run_own(self) -> bool:
        scoped = self.db.session
        if scoped.registry.has() and scoped().in_transaction():
            return False  # the request's session is at work: join it, never beside it
        return not engine_observed(self.db.engine)

    def _first(self, sql: _Sql, params: Mapping[str, Any]) -> Any:
        """Run ``sql`` in the current transaction; its first row, if it returns rows."""
        own = current_own_transaction()
        if own is not None:
            return own.execute(sql.text, sql.arguments(params), sql.returns_rows)
        session: Session = self.db.session()
        plain = self._plain_cursor(session)
        if plain is None:
            result = session.execute(sql.statement, params)
            return result.first() if getattr(result, "returns_rows", True) else None
        conn, cursor = plain
        session._autoflush()  # what session.execute does before a Core statement
        args = sql.arguments(params)
        try:
            cursor.execute(sql.text, args)
            return cursor.fetchone() if sql.returns_rows else None
        except BaseException as exc:  # wrapped, logged and invalidated as SQLAlchemy does
            session.info.pop(_PLAIN_CURSOR, None)
            conn._handle_dbapi_exception(exc, sql.text, args, cursor, None)

    def _plain_cursor(self, session: Session) -> tuple[Connection, Any] | None:
        """The DBAPI cursor of the session's connection, kept for the rest of its
        transaction, if nothing observes SQLAlchemy's execution there; else ``None``."""
        transaction = session.get_transaction()
        kept = session.info.get(_PLAIN_CURSOR)
        if (
            kept is not None
            and transaction is not None
            and kept[0] is transaction
            and transaction.is_active
        ):
            return kept[1]  # type: ignore[no-any-return]
        conn = session.connection()
        plain = None
        if not session_observed(session, conn):
            plain = (conn, conn.connection.dbapi_connection.cursor())  # type: ignore[union-attr]
        session.info[_PLAIN_CURSOR] = (session.get_transaction(), plain)
        return plain

    def _row(self, sql: _Sql, params: Mapping[str, Any]) -> Row[Any] | None:
        """The first row of ``sql`` as SQLAlchemy returns it (a ``Row``, types processed)."""
        raw = self._first(sql, params)
        return raw if raw is None or isinstance(raw, Row) else sql.row(raw)

    # -- customers -------------------------------------------------------------------------

    def customer_id(self, user_id: str) -> str | None:
        row = self._first(self.sql.customer_of, {"user_id": user_id})
        return None if row is None else row[0]

    def user_of_customer(self, customer_id: str) -> str | None:
        row = self._first(self.sql.user_of_customer, {"customer_id": customer_id})
        return None if row is None else row[0]

    def link_customer(self, user_id: str, customer_id: str, email: str | None = None) -> str:
        """Remember a user's Stripe customer (first one wins); return the stored id."""
        stored = self.customer_id(user_id)
        if stored is not None:
            return stored
        self._first(
            self.sql.link_customer,
            {
                "user_id": user_id,
                "stripe_customer_id": customer_id,
                "email": email,
                "created_at": utcnow(),
            },
        )
        return self.customer_id(user_id) or customer_id

    # -- checkout sessions -----------------------------------------------------------------

    def add_session(self, **values: Any) -> None:
        params = {"status": "open", "created_at": utcnow(), **values}
        self._first(self.sql.add_session(params), params)

    def checkout_session(self, session_id: str) -> Row[Any] | None:
        return self._row(self.sql.session_by_id, {"id": session_id})

    def mark_session(
        self, session_id: str, status: str, subscription_id: str | None = None
    ) -> Row[Any] | None:
        """Move an open stored session to ``complete`` or ``expired`` (never back to
        ``open``); its row as updated, or ``None`` if it is not stored or no longer open."""
        values: dict[str, Any] = {"status": status}
        if status == "complete":
            values["completed_at"] = utcnow()
        if subscription_id:
            values["subscription_id"] = subscription_id
        return self._row(self.sql.mark_session(values), {"session_id": session_id, **_set(values)})

    # -- events ----------------------------------------------------------------------------

    def claim_event(self, row: dict[str, Any], *, replay: bool = False) -> Claim:
        """Record an event as processed, first statement of its transaction.

        ``claimed``: first delivery, or one that had failed before; ``duplicate``: it was
        processed already (or is being processed by a concurrent delivery, whose commit
        this waits for). With ``replay`` a processed or ignored event is claimed again.
        """
        now = utcnow()
        claimed = self._first(
            self.sql.replay_event if replay else self.sql.claim_event,
            {**row, "status": "processed", "attempts": 1, "received_at": now, "processed_at": now},
        )
        return "duplicate" if claimed is None else "claimed"

    def record_ignored(self, row: dict[str, Any], reason: str) -> None:
        self._first(
            self.sql.record_ignored,
            {
                **row,
                "status": "ignored",
                "reason": reason[:255],
                "attempts": 1,
                "received_at": utcnow(),
            },
        )

    def record_failure(self, row: dict[str, Any], error: str) -> None:
        """Store a failed attempt in its own transaction (the effects were rolled back)."""
        self._first(
            self.sql.record_failure,
            {
                **row,
                "status": "failed",
                "attempts": 1,
                "last_error": error,
                "received_at": utcnow(),
            },
        )

    # -- credits ---------------------------------------------------------------------------

    def credits(self, user_id: str) -> int:
        row = self._first(self.sql.balance, {"user_id": user_id})
        return (row[0] if row is not None else None) or 0

    def change_credits(
        self,
        user_id: str,
        *,
        reason: str,
        delta: int | None = None,
        target: int | None = None,
        dedup_key: str | None = None,
        stripe_object_id: str | None = None,
        memo: str | None = None,
    ) -> CreditChange | None:
        """Add ``delta`` or set the balance to ``target``, with its ledger row.

        Returns ``None`` when ``dedup_key`` was applied before (the effect happens once).
        """
        now = utcnow()
        sql = self.sql
        # The balance row, made if new, locked until commit: its credits before the change.
        locked = self._first(
            sql.lock_balance, {"user_id": user_id, "credits": 0, "updated_at": now}
        )
        before: int = locked[0]
        after = before + delta if delta is not None else target
        assert after is not None
        if after < 0:
            raise InsufficientCredits(user_id, -(delta or 0), before)
        entry = {
            "user_id": user_id,
            "delta": after - before,
            "balance_after": after,
            "reason": reason,
            "stripe_object_id": stripe_object_id,
            "dedup_key": dedup_key,
            "memo": memo,
            "created_at": now,
        }
        balance = {"uid": user_id, "new_credits": after, "now": now}
        if sql.ledger_then_balance is not None:  # one round trip: the entry, then the balance
            both = sql.ledger_then_balance[dedup_key is not None]
            written = self._first(both, {**{f"l_{k}": v for k, v in entry.items()}, **balance})
            return None if written is None else _change(entry, before)
        ledger = sql.ledger_once if dedup_key is not None else sql.ledger_entry
        if self._first(ledger, entry) is None:
            return None
        self._first(sql.set_balance, balance)
        return _change(entry, before)

    def spend(self, user_id: str, n: int, memo: str | None) -> CreditChange:
        """Take ``n`` credits in one conditional UPDATE: never below zero, never lost."""
        now = utcnow()
        taken = self._first(self.sql.take_credits, {"uid": user_id, "n": n, "now": now})
        if taken is None:
            raise InsufficientCredits(user_id, n, self.credits(user_id))
        after: int = taken[0]
        self._first(
            self.sql.spend_entry,
            {
                "user_id": user_id,
                "delta": -n,
                "balance_after": after,
                "reason": "spend",
                "memo": memo,
                "created_at": now,
            },
        )
        return CreditChange(user_id, after + n, after, "spend", None)

    def ledger(self, user_id: str, limit: int = 50) -> list[Row[Any]]:
        lg = self.t.ledger
        stmt = select(lg).where(lg.c.user_id == user_id).order_by(lg.c.id.desc()).limit(limit)
        return list(self.session.execute(stmt))

    def ledger_total(self, user_id: str) -> int:
        lg = self.t.ledger
        stmt = select(func.coalesce(func.sum(lg.c.delta), 0)).where(lg.c.user_id == user_id)
        return int(self.session.execute(stmt).scalar_one())

    # -- subscriptions ---------------------------------------------------------------------

    def lock_subscription(self, sub_id: str, user_id: str) -> Row[Any]:
        """The subscription's row, created empty if new, locked until commit."""
        now = utcnow()
        row = self._row(
            self.sql.lock_subscription,
            {
                "id": sub_id,
                "user_id": user_id,
                "status": "incomplete",
                "cancel_at_period_end": False,
                "status_at": 0,
                "created_at": now,
                "updated_at": now,
            },
        )
        assert row is not None  # the upsert returns the row, new or existing
        return row

    def update_subscription(self, sub_id: str, values: dict[str, Any]) -> None:
        values = {**values, "updated_at": utcnow()}
        self._first(self.sql.update_subscription(values), {"sub_id": sub_id, **_set(values)})

    def subscription(self, user_id: str) -> SubscriptionState | None:
        """The user's current subscription: a live one first, else the latest."""
        rows = list(self.session.execute(self._user_subscriptions, {"user_id": user_id}))
        if not rows:
            return None
        live = [r for r in rows if r.status not in TERMINAL and r.status_at > 0]
        return subscription_state((live or rows)[0]._mapping)

    # -- prices ----------------------------------------------------------------------------

    def price(self, price_id: str) -> Row[Any] | None:
        return self._row(self.sql.price, {"id": price_id})

    def save_price(
        self, price_id: str, *, active: bool, recurring: bool, credits: int | None
    ) -> None:
        self._first(
            self.sql.save_price,
            {
                "id": price_id,
                "active": active,
                "recurring": recurring,
                "credits": credits,
                "fetched_at": utcnow(),
            },
        )


def subscription_state(row: Mapping[Any, Any]) -> SubscriptionState:
    """A subscription row (or its values) as the public value object."""
    return SubscriptionState(
        id=row["id"],
        user_id=row["user_id"],
        customer_id=row["customer_id"],
        price_id=row["price_id"],
        status=row["status"],
        current_period_end=row["current_period_end"],
        cancel_at_period_end=bool(row["cancel_at_period_end"]),
        cancel_at=row["cancel_at"],
        canceled_at=row["canceled_at"],
    )


def _bind(name: str) -> Any:
    return bindparam(name)


def _set(values: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters of a SET clause (named apart from the columns they set)."""
    return {f"v_{k}": v for k, v in values.items()}


def _change(entry: Mapping[str, Any], before: int) -> CreditChange:
    return CreditChange(
        entry["user_id"], before, entry["balance_after"], entry["reason"], entry["stripe_object_id"]
    )


class _Sql:
    """A statement compiled once for a dialect, and how to bind its parameters."""

    __slots__ = ("_binds", "_make_row", "_names", "_results", "returns_rows", "statement", "text")

    def __init__(
        self,
        statement: Any,
        dialect: Dialect,
        column_keys: Iterable[str] | None = None,
        columns: Sequence[Column[Any]] = (),
    ) -> None:
        compiled = statement.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
        )
        if getattr(compiled, "escaped_bind_names", None):
            raise RuntimeError("bind names needing escapes are not supported here")
        by_name = {name: bind for bind, name in compiled.bind_names.items()}
        positions = compiled.positiontup
        names = list(positions) if positions is not None else list(by_name)
        binds: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
        for name in names:
            bind = by_name[name]
            default = _REQUIRED if bind.required else bind.effective_value
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            binds.append((bind.key, default, processor))
        self.statement = statement
        self.text = compiled.string
        self.returns_rows = bool(statement.is_select or len(statement.exported_columns))
        self._binds = tuple(binds)
        self._names = tuple(names) if positions is None else None
        # The columns it returns, for rows made as SQLAlchemy makes them from the cursor's.
        self._make_row = result_tuple([c.key for c in columns], [(c,) for c in columns])
        self._results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        )

    def row(self, values: Sequence[Any]) -> Row[Any]:
        """A ``Row`` of the returned ``columns`` from the cursor's ``values``."""
        return self._make_row(
            v if p is None or v is None else p(v)
            for p, v in zip(self._results, values, strict=True)
        )

    def arguments(self, params: Mapping[str, Any]) -> Any:
        """The DBAPI arguments for ``params``: processed as SQLAlchemy processes them."""
        values = []
        for key, default, processor in self._binds:
            value = params[key] if default is _REQUIRED else params.get(key, default)
            if processor is not None and value is not None:
                value = processor(value)
            values.append(value)
        if self._names is not None:
            return dict(zip(self._names, values, strict=True))
        return tuple(values)


class _Statements:
    """Every statement of the hot paths, for one dialect, compiled once."""

    def __init__(self, t: Tables, dialect: Dialect) -> None:
        if dialect.name not in ("sqlite", "postgresql"):
            raise RuntimeError(
                f"flask-paxpar-checkout supports SQLite and PostgreSQL, not {dialect.name}"
            )
        self.t = t
        self.dialect = dialect
        dml: Any = postgresql if dialect.name == "postgresql" else sqlite
        e, b, lg, s = t.events, t.balances, t.ledger, t.subscriptions
        self._dml = dml
        self._variants: dict[tuple[str, frozenset[str]], _Sql] = {}

        self.customer_of = self._sql(
            select(t.customers.c.stripe_customer_id).where(
                t.customers.c.user_id == _bind("user_id")
            )
        )
        self.user_of_customer = self._sql(
            select(t.customers.c.user_id).where(
                t.customers.c.stripe_customer_id == _bind("customer_id")
            )
        )
        self.link_customer = self._sql(
            dml.insert(t.customers).on_conflict_do_nothing(),
            ("user_id", "stripe_customer_id", "email", "created_at"),
        )
        self.session_by_id = self._sql(
            select(t.sessions).where(t.sessions.c.id == _bind("id")), columns=tuple(t.sessions.c)
        )

        self.claim_event = self._sql(_claim(dml, e, ("failed",)), _CLAIM_ROW)
        self.replay_event = self._sql(
            _claim(dml, e, ("failed", "processed", "ignored")), _CLAIM_ROW
        )
        self.record_ignored = self._sql(
            dml.insert(e).on_conflict_do_nothing(index_elements=["id"]),
            (*_EVENT_ROW, "status", "reason", "attempts", "received_at"),
        )
        failure = dml.insert(e)
        self.record_failure = self._sql(
            failure.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "status": "failed",
                    "attempts": e.c.attempts + 1,
                    "last_error": failure.excluded.last_error,
                },
                where=e.c.status != "processed",
            ),
            (*_EVENT_ROW, "status", "attempts", "last_error", "received_at"),
        )

        self.balance = self._sql(select(b.c.credits).where(b.c.user_id == _bind("user_id")))
        # Made if new, else locked as it is (a no-op update): one statement for both.
        self.lock_balance = self._sql(
            dml.insert(b)
            .on_conflict_do_update(index_elements=["user_id"], set_={"credits": b.c.credits})
            .returning(b.c.credits),
            ("user_id", "credits", "updated_at"),
        )
        self.set_balance = self._sql(_set_balance(b))
        self.take_credits = self._sql(
            update(b)
            .where(b.c.user_id == _bind("uid"), b.c.credits >= _bind("n"))
            .values(credits=b.c.credits - _bind("n"), updated_at=_bind("now"))
            .returning(b.c.credits)
        )
        self.ledger_entry = self._sql(insert(lg).returning(lg.c.id), _LEDGER_ROW)
        self.ledger_once = self._sql(
            dml.insert(lg).on_conflict_do_nothing(index_elements=["dedup_key"]).returning(lg.c.id),
            _LEDGER_ROW,
        )
        self.spend_entry = self._sql(
            insert(lg), ("user_id", "delta", "balance_after", "reason", "memo", "created_at")
        )
        # PostgreSQL: the ledger entry and the balance it leads to in one round trip; the
        # balance changes only if the entry was written (not a duplicate of its dedup_key).
        self.ledger_then_balance: tuple[_Sql, _Sql] | None = None
        if dialect.name == "postgresql":
            self.ledger_then_balance = (
                self._sql(_ledger_then_balance(lg, b, once=False)),
                self._sql(_ledger_then_balance(lg, b, once=True)),
            )

        # Made empty if new, else locked as it is (a no-op update), and returned either way.
        self.lock_subscription = self._sql(
            dml.insert(s)
            .on_conflict_do_update(index_elements=["id"], set_={"status_at": s.c.status_at})
            .returning(*_untimed(s)),
            (
                "id",
                "user_id",
                "status",
                "cancel_at_period_end",
                "status_at",
                "created_at",
                "updated_at",
            ),
            _untimed(s),
        )
        self.price = self._sql(
            select(t.prices).where(t.prices.c.id == _bind("id")), columns=tuple(t.prices.c)
        )
        price = dml.insert(t.prices)
        self.save_price = self._sql(
            price.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    k: getattr(price.excluded, k)
                    for k in ("active", "recurring", "credits", "fetched_at")
                },
            ),
            ("id", "active", "recurring", "credits", "fetched_at"),
        )

    def _sql(
        self,
        statement: Any,
        column_keys: Iterable[str] | None = None,
        columns: Sequence[Column[Any]] = (),
    ) -> _Sql:
        return _Sql(statement, self.dialect, column_keys, columns)

    def add_session(self, values: Mapping[str, Any]) -> _Sql:
        """The INSERT of a checkout session with these columns."""
        return self._variant(
            "add_session", values, lambda: self._sql(insert(self.t.sessions), values)
        )

    def mark_session(self, values: Mapping[str, Any]) -> _Sql:
        """The UPDATE of an open session's ``values`` (bound as ``v_<column>``)."""
        s = self.t.sessions
        return self._variant(
            "mark_session",
            values,
            lambda: self._sql(
                update(s)
                .where(s.c.id == _bind("session_id"), s.c.status == "open")
                .values({k: _bind(f"v_{k}") for k in values})
                .returning(*_untimed(s)),
                columns=_untimed(s),
            ),
        )

    def update_subscription(self, values: Mapping[str, Any]) -> _Sql:
        """The UPDATE of a subscription's ``values`` (bound as ``v_<column>``)."""
        s = self.t.subscriptions
        return self._variant(
            "update_subscription",
            values,
            lambda: self._sql(
                update(s)
                .where(s.c.id == _bind("sub_id"))
                .values({k: _bind(f"v_{k}") for k in values})
            ),
        )

    def _variant(self, name: str, values: Mapping[str, Any], build: Callable[[], _Sql]) -> _Sql:
        key = (name, frozenset(values))
        found = self._variants.get(key)
        if found is None:
            found = self._variants[key] = build()
        return found


def _claim(dml: Any, e: Table, again: tuple[str, ...]) -> Executable:
    """Insert an event as processed, or claim it again if its status is one of ``again``;
    its id if claimed, no row if it is a duplicate."""
    stmt = dml.insert(e)
    return stmt.on_conflict_do_update(  # type: ignore[no-any-return]
        index_elements=["id"],
        set_={
            "status": "processed",
            "attempts": e.c.attempts + 1,
            "processed_at": stmt.excluded.processed_at,
        },
        where=e.c.status.in_([literal(s) for s in again]),
    ).returning(e.c.id)


def _untimed(table: Table) -> tuple[Column[Any], ...]:
    """A row's columns but its timestamps, for rows read back by the webhook's handlers:
    they never use those, and parsing them is most of the work of reading one back."""
    return tuple(c for c in table.c if not isinstance(c.type, DateTime))


def _set_balance(b: Table) -> Any:
    return (
        update(b)
        .where(b.c.user_id == _bind("uid"))
        .values(credits=_bind("new_credits"), updated_at=_bind("now"))
    )


def _ledger_then_balance(lg: Table, b: Table, *, once: bool) -> Any:
    """PostgreSQL: the ledger entry, then the balance it leads to if the entry was written."""
    entry: Any = postgresql.insert(lg).values({k: _bind(f"l_{k}") for k in _LEDGER_ROW})
    if once:
        entry = entry.on_conflict_do_nothing(index_elements=["dedup_key"])
    written = entry.returning(lg.c.id).cte("entry")
    return (
        _set_balance(b).where(exists(select(written.c.id))).returning(b.c.credits).add_cte(written)
    )
