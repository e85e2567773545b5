"""The sync's row: its checkpoint, and a lease so that one sync runs at a time per database.

The lease is a conditional UPDATE of one row, committed by itself on a connection of its
own: it works alike on SQLite and PostgreSQL, and a sync that dies leaves a lease that
simply runs out.
"""

from __future__ import annotations

import time

from sqlalchemy import MetaData, Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from .models import define_sync_state

NAME = "events"
LEASE_SECONDS = 600  # renewed after every page: only a dead sync's lease runs out


def sync_state_table(metadata: MetaData) -> Table:
    """The sync's table in the host's ``MetaData``."""
    return define_sync_state(metadata)


def read_checkpoint(conn: Connection, table: Table) -> int | None:
    """When the last completed sync started (a Unix time), or None before the first."""
    value = conn.execute(select(table.c.checkpoint).where(table.c.name == NAME)).scalar()
    return None if value is None else int(value)


class Lease:
    """This sync's claim on the sync row, until ``lease_until``."""

    def __init__(self, engine: Engine, table: Table, *, owner: str) -> None:
        self.engine = engine
        self.table = table
        self.owner = owner

    def acquire(self, now: int) -> bool:
        """Take the lease if nobody holds a live one; whether it was taken."""
        t = self.table
        dml = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        with self.engine.begin() as conn:
            conn.execute(dml.insert(t).values(name=NAME).on_conflict_do_nothing())
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(t)
                .where(t.c.name == NAME, or_(t.c.lease_until.is_(None), t.c.lease_until < now))
                .values(lease_owner=self.owner, lease_until=now + LEASE_SECONDS)
            )
        return taken.rowcount == 1

    def renew(self, now: int) -> bool:
        """Extend the lease; False if it was lost (it ran out and another sync took it)."""
        t = self.table
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(t)
                .where(t.c.name == NAME, t.c.lease_owner == self.owner)
                .values(lease_until=now + LEASE_SECONDS)
            )
        return renewed.rowcount == 1

    def release(self, *, checkpoint: int | None) -> None:
        """Give the lease back, moving the checkpoint to ``checkpoint`` if given."""
        t = self.table
        values: dict[str, object] = {"lease_owner": None, "lease_until": None}
        if checkpoint is not None:
            values.update(checkpoint=checkpoint, completed_at=int(time.time()))
        with self.engine.begin() as conn:
            conn.execute(
                update(t).where(t.c.name == NAME, t.c.lease_owner == self.owner).values(values)
            )
