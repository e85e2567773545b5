"""Stripe's lists: cursor pagination newest first, and the Events API's filters."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from .wire import invalid, no_such

__all__ = ["list_events", "page_of"]


def page_of(objects: Sequence[dict[str, Any]], p: dict[str, Any], url: str) -> dict[str, Any]:
    """One page of a Stripe list, ``objects`` newest first: ``limit``, ``starting_after``
    (older than that id) and ``ending_before`` (newer than it)."""
    raw = p.get("limit", "10")
    if not str(raw).isdigit() or not 1 <= int(raw) <= 100:
        raise invalid("limit", f"Invalid integer: {raw}; it must be between 1 and 100.")
    limit = int(raw)
    ids = [o["id"] for o in objects]
    after, before = p.get("starting_after"), p.get("ending_before")
    if after and before:
        raise invalid("ending_before", "You may only specify one of starting_after, ending_before.")
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor and cursor not in ids:
            raise no_such("object", str(cursor), param=name, status=400)
    if after:
        rest = list(objects[ids.index(after) + 1 :])
        data, has_more = rest[:limit], len(rest) > limit
    elif before:
        rest = list(objects[: ids.index(before)])
        data, has_more = rest[-limit:], len(rest) > limit
    else:
        data, has_more = list(objects[:limit]), len(objects) > limit
    return {"object": "list", "data": copy.deepcopy(data), "has_more": has_more, "url": url}


def _created_filter(p: dict[str, Any]) -> list[tuple[str, int]]:
    created = p.get("created")
    if created is None:
        return []
    if not isinstance(created, dict):
        created = {"eq": created}
    bounds = []
    for op, value in created.items():
        if op not in ("gt", "gte", "lt", "lte", "eq") or not str(value).isdigit():
            raise invalid(f"created[{op}]", f"Invalid created filter: {op}={value}")
        bounds.append((op, int(value)))
    return bounds


def _keep(created: int, bounds: list[tuple[str, int]]) -> bool:
    checks = {
        "gt": lambda v: created > v,
        "gte": lambda v: created >= v,
        "lt": lambda v: created < v,
        "lte": lambda v: created <= v,
        "eq": lambda v: created == v,
    }
    return all(checks[op](value) for op, value in bounds)


def list_events(oldest_first: Sequence[dict[str, Any]], p: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/events``: ``type`` or ``types[]``, ``created[gt|gte|lt|lte]``, a page."""
    types = p.get("types")
    if types is not None and p.get("type") is not None:
        raise invalid("types", "You may only specify one of type, types.")
    wanted = set(types) if isinstance(types, list) else {types} if isinstance(types, str) else None
    if wanted is None and p.get("type"):
        wanted = {str(p["type"])}
    bounds = _created_filter(p)
    newest_first = [
        e
        for e in reversed(oldest_first)
        if (wanted is None or e["type"] in wanted) and _keep(e["created"], bounds)
    ]
    return page_of(newest_first, p, "/v1/events")
