"""The credit ledger (deprecated credit system): entries with effective times, and the
balance as their fold, whatever order they arrive in.

Each entry takes effect at a moment of Stripe's timeline and sorts by its ``position``:
its effective time, then resets before anything else of the same instant, then its key.
The balance is the fold of the entries in that order: a reset sets it, any other entry
adds to it, and it never goes below zero (an ``adjustment`` entry makes up the shortfall).
An entry that sorts after the last one is appended; a late one is put in its place and the
entries after it are folded again, up to the next reset (which absorbs it).
All of it happens under the user's balance row, locked until the transaction ends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .clock import EPOCH, as_utc, utcnow
from .database import Transaction
from .errors import InsufficientCredits
from .statements import SETS_BALANCE

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class CreditChange:
    """One change of a user's ledger: the balance before and after the fold."""

    user_id: str
    before: int
    after: int
    reason: str
    stripe_object_id: str | None


@dataclass(frozen=True)
class Entry:
    """What an effect asks of the ledger.

    ``amount`` is the balance a reset sets, else the signed change; ``key`` makes the entry
    unique (the same effect brought twice is one entry). A ``provisional`` time (the return
    page's) gives way to the time of the same entry brought by an event.
    """

    reason: str
    amount: int
    effective_at: datetime
    key: str
    stripe_object_id: str | None = None
    subscription_id: str | None = None
    memo: str | None = None
    provisional: bool = False

    @property
    def position(self) -> str:
        return position_of(self.effective_at, self.reason, self.key)


def position_of(effective_at: datetime, reason: str, key: str) -> str:
    """The entry's place in the fold, as a string that sorts in byte order: the effective
    time in microseconds, ``0`` for a reset (first at its instant) else ``1``, the key."""
    micros = (effective_at.astimezone(timezone.utc) - EPOCH) // _MICROSECOND
    rank = "0" if reason in SETS_BALANCE else "1"
    return f"{micros:017d}|{rank}|{key}"


def _adjustment_position(source_position: str) -> str:
    """Right after its source entry: no other position starts with the source's."""
    return source_position + "|~"


@dataclass
class _Folded:
    """The fold's running state over a range of entries."""

    balance: int
    last_position: str | None = None


class CreditLedger:
    """Entries and balances, each call inside the caller's ``Transaction``."""

    def balance(self, tx: Transaction, user_id: str) -> int:
        credits = tx.scalar(tx.sql.balance, {"user_id": user_id})
        return int(credits or 0)

    def record(
        self, tx: Transaction, user_id: str, entry: Entry, *, require: int = 0
    ) -> CreditChange | None:
        """Put ``entry`` in its place and fold; ``None`` if the ledger already had it as it
        is. An entry brought again takes the new amount (a refund's share depends on the
        other refunds of its charge) and the new time unless that one is provisional. With
        ``require``, raise ``InsufficientCredits`` unless the balance has that much."""
        appended = self._append(tx, user_id, entry, require)
        if appended is not None:
            return appended
        before, last_position = self._lock(tx, user_id)
        if before < require:
            raise InsufficientCredits(user_id, require, before)
        value = entry.amount if entry.reason in SETS_BALANCE else before + entry.amount
        row = _row(user_id, entry, delta=value - before, balance_after=value)
        position = row["position"]
        added = tx.first(tx.sql.add_entry, row)
        if added is None:
            return self._merge(tx, user_id, entry, before)
        if last_position is None or position > last_position:  # appended
            folded = _Folded(value, position)
            if value < 0:
                self._add_adjustment(tx, user_id, position, entry.effective_at, folded)
            self._save_balance(tx, user_id, folded)
            after = folded.balance
        else:
            after = self._fold(tx, user_id, position, before)
        return CreditChange(user_id, before, after, entry.reason, entry.stripe_object_id)

    def spend(self, tx: Transaction, user_id: str, n: int, memo: str | None) -> CreditChange:
        """Take ``n`` credits now, or raise ``InsufficientCredits`` having taken nothing."""
        change = self.record(tx, user_id, local_entry("spend", -n, memo), require=n)
        assert change is not None  # a local entry's key is new
        return change

    def remove(self, tx: Transaction, user_id: str, entries: list[Any]) -> CreditChange | None:
        """Delete ``entries`` (rows with ``id`` and ``position``) and fold again from the
        first: for resets that a later-known cancellation says never were."""
        if not entries:
            return None
        before, _ = self._lock(tx, user_id)
        for row in entries:
            tx.execute(tx.sql.delete_entry, {"entry_id": row.id})
        first = min(row.position for row in entries)
        after = self._fold(tx, user_id, first, before)
        return CreditChange(user_id, before, after, entries[0].reason, None)

    def entries(self, tx: Transaction, user_id: str, limit: int) -> list[dict[str, Any]]:
        """The latest ``limit`` entries, newest effective time first."""
        rows = tx.execute(tx.sql.ledger_page, {"user_id": user_id, "n": limit})
        return [dict(row._mapping) for row in rows]

    def total(self, tx: Transaction, user_id: str) -> int:
        """The sum of the ledger's deltas: always the balance."""
        return int(tx.scalar(tx.sql.ledger_total, {"user_id": user_id}))

    def _append(
        self, tx: Transaction, user_id: str, entry: Entry, require: int
    ) -> CreditChange | None:
        """The usual case in two statements: a new entry after the last one, which leaves
        the balance at or above zero. ``None`` for anything else (the balance row is new,
        the entry late or known, the balance short), which ``record`` then does in full."""
        position = entry.position
        added = tx.first(
            tx.sql.append_entry,
            {
                "balance_of": user_id,
                "sets_balance": entry.reason in SETS_BALANCE,
                "require": require,
                "new_amount": entry.amount,
                "new_effective_at": entry.effective_at,
                "new_position": position,
                "new_reason": entry.reason,
                "new_stripe_object_id": entry.stripe_object_id,
                "new_subscription_id": entry.subscription_id,
                "new_dedup_key": entry.key,
                "new_memo": entry.memo,
                "new_created_at": utcnow(),
            },
        )
        if added is None:
            return None
        self._save_balance(tx, user_id, _Folded(added.balance_after, position))
        before = added.balance_after - added.delta
        return CreditChange(
            user_id, before, added.balance_after, entry.reason, entry.stripe_object_id
        )

    def _lock(self, tx: Transaction, user_id: str) -> tuple[int, str | None]:
        """The user's balance row, made if new, locked until the transaction ends."""
        row = tx.first(
            tx.sql.lock_balance,
            {"user_id": user_id, "credits": 0, "last_position": None, "updated_at": utcnow()},
        )
        return int(row.credits), row.last_position

    def _merge(
        self, tx: Transaction, user_id: str, entry: Entry, before: int
    ) -> CreditChange | None:
        stored = tx.first(tx.sql.entry_by_key, {"dedup_key": entry.key})
        effective_at = as_utc(stored.effective_at) if entry.provisional else entry.effective_at
        position = position_of(effective_at, entry.reason, entry.key)
        if stored.amount == entry.amount and position == stored.position:
            return None
        tx.execute(
            tx.sql.change_entry,
            {
                "entry_id": stored.id,
                "new_amount": entry.amount,
                "new_effective_at": effective_at,
                "new_position": position,
            },
        )
        start, through = sorted((position, stored.position))
        after = self._fold(tx, user_id, start, before, through=through)
        return CreditChange(user_id, before, after, entry.reason, entry.stripe_object_id)

    def _fold(
        self, tx: Transaction, user_id: str, start: str, before: int, through: str | None = None
    ) -> int:
        """Fold the entries from ``start`` on, up to the first reset after it (and after
        ``through``, an entry's old place), which absorbs what came before; return the
        balance."""
        sql = tx.sql
        previous = tx.first(sql.entry_before, {"user_id": user_id, "position": start})
        rows = tx.execute(sql.entries_from, {"user_id": user_id, "position": start}).all()
        folded = _Folded(0) if previous is None else _Folded(*previous)
        absorbing = next(
            (
                i
                for i, row in enumerate(rows)
                if row.reason in SETS_BALANCE
                and row.position > start
                and (through is None or row.position > through)
            ),
            None,
        )
        span = rows if absorbing is None else rows[: absorbing + 1]
        # The adjustments of the span are made again by this fold: the old ones go first.
        for row in span:
            if row.reason == "adjustment":
                tx.execute(sql.delete_entry, {"entry_id": row.id})
        for row in span:
            if row.reason == "adjustment":
                continue
            self._fold_row(tx, row, folded)
            if folded.balance < 0:
                self._add_adjustment(tx, user_id, row.position, as_utc(row.effective_at), folded)
        if absorbing is not None:
            return before  # the balance after that reset is what it was
        self._save_balance(tx, user_id, folded)
        return folded.balance

    def _fold_row(self, tx: Transaction, row: Any, folded: _Folded) -> None:
        value = row.amount if row.reason in SETS_BALANCE else folded.balance + row.amount
        delta = value - folded.balance
        if (delta, value) != (row.delta, row.balance_after):
            tx.execute(
                tx.sql.fold_entry,
                {"entry_id": row.id, "new_delta": delta, "new_balance_after": value},
            )
        folded.balance = value
        folded.last_position = row.position

    def _add_adjustment(
        self, tx: Transaction, user_id: str, source: str, at: datetime, folded: _Folded
    ) -> None:
        position = _adjustment_position(source)
        shortfall = -folded.balance
        entry = Entry("adjustment", shortfall, at, f"adjustment:{source}")
        row = _row(user_id, entry, delta=shortfall, balance_after=0)
        tx.execute(tx.sql.add_entry, {**row, "position": position})
        folded.balance = 0
        folded.last_position = position

    def _save_balance(self, tx: Transaction, user_id: str, folded: _Folded) -> None:
        tx.execute(
            tx.sql.set_balance,
            {
                "balance_of": user_id,
                "new_credits": folded.balance,
                "new_last_position": folded.last_position,
                "now": utcnow(),
            },
        )


def local_entry(reason: str, amount: int, memo: str | None) -> Entry:
    """A spend or grant by the host, effective now, under a key of its own."""
    return Entry(reason, amount, utcnow(), f"local:{uuid.uuid4().hex}", memo=memo)


def _row(user_id: str, entry: Entry, *, delta: int, balance_after: int) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "effective_at": entry.effective_at,
        "position": entry.position,
        "amount": entry.amount,
        "delta": delta,
        "balance_after": balance_after,
        "reason": entry.reason,
        "stripe_object_id": entry.stripe_object_id,
        "subscription_id": entry.subscription_id,
        "dedup_key": entry.key,
        "memo": entry.memo,
        "created_at": utcnow(),
    }
