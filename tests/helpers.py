"""Reading the plugin's tables in tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from flask_paxpar_checkout.state import current_state


def rows(table_name: str) -> list[Any]:
    state = current_state()
    table = getattr(state.tables, table_name)
    return list(state.store.session.execute(select(table)))


def count(table_name: str) -> int:
    state = current_state()
    table = getattr(state.tables, table_name)
    stmt = select(func.count()).select_from(table)
    return int(state.store.session.execute(stmt).scalar_one())
