"""The host service's own tables: its users. The plugin adds its tables to the same
metadata, keyed by the user id as a string, and never references this table."""

from __future__ import annotations

from functools import cache

from sqlalchemy import String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import Base, db

DEMO_PASSWORD = "paxpar-demo"
DEMO_USERS = (("alice", "alice@example.com"), ("bob", "bob@example.com"))


class User(Base):
    """A user of the auth service; Flask-Login reads the four attributes below."""

    __tablename__ = "example_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    password_hash: Mapped[str] = mapped_column(String(255))

    is_active = True
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """The id Flask-Login keeps in the session cookie."""
        return str(self.id)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


def find_user(username: str) -> User | None:
    """The user of this name, or None."""
    return db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()


def seed_demo_users() -> None:
    """Create alice and bob on first start, so that there is someone to sign in as.

    Several workers may start at once: a user another worker has just inserted is a
    unique-key conflict here, and means the user is there.
    """
    for username, email in DEMO_USERS:
        if find_user(username) is not None:
            continue
        db.session.add(User(username=username, email=email, password_hash=_demo_password_hash()))
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()


@cache
def _demo_password_hash() -> str:
    """Hashed once per process: the demo password is public, and hashing is slow on purpose."""
    return generate_password_hash(DEMO_PASSWORD)
