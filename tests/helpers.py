"""Reading the plugin's tables in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from flask_paxpar_checkout.state import current_state


def rows(table_name: str) -> list[Any]:
    state = current_state()
    table = getattr(state.tables, table_name)
    return list(state.database.session.execute(select(table)))


def count(table_name: str) -> int:
    state = current_state()
    table = getattr(state.tables, table_name)
    stmt = select(func.count()).select_from(table)
    return int(state.database.session.execute(stmt).scalar_one())


def ledger_total(user_id: str) -> int:
    """The sum of the user's ledger deltas."""
    state = current_state()
    with state.database.transaction() as tx:
        return state.ledger.total(tx, user_id)


def checkout_row(session_id: str) -> Any:
    """The stored Checkout Session, or None."""
    state = current_state()
    with state.database.transaction() as tx:
        return state.checkout_sessions.get(tx, session_id)
