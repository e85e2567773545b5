"""Who is paying: the host's signed-in user, from its ``user_loader`` or Flask-Login."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import has_request_context

UserLoader = Callable[[], Any]


@dataclass(frozen=True)
class CheckoutUser:
    """The host's user as the plugin needs it."""

    id: str
    email: str | None


def user_key(user_id: object) -> str:
    """The host's user id as the plugin stores it: ``42`` and ``"42"`` are the same user."""
    if isinstance(user_id, bool) or not isinstance(user_id, (int, str)):
        raise TypeError(f"a user id is an int or a str, not {type(user_id).__name__}")
    key = str(user_id).strip()
    if not key or len(key) > 64:
        raise ValueError(f"a user id must have 1 to 64 characters, got {user_id!r}")
    return key


class UserSource:
    """The signed-in user: the registered loader's, else Flask-Login's ``current_user``."""

    def __init__(self) -> None:
        self.loader: UserLoader | None = None

    def current(self) -> CheckoutUser | None:
        user = self.loader() if self.loader is not None else _flask_login_user()
        if user is None or getattr(user, "id", None) is None:
            return None
        email = getattr(user, "email", None)
        return CheckoutUser(user_key(user.id), email if isinstance(email, str) else None)


def _flask_login_user() -> Any:
    try:
        from flask_login import current_user  # type: ignore[import-untyped]
    except ImportError:
        return None
    if not has_request_context() or not getattr(current_user, "is_authenticated", False):
        return None
    return current_user
