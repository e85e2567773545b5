"""The example's extension objects, created once and bound to each app by ``create_app``."""

from __future__ import annotations

from flask_login import LoginManager  # type: ignore[import-untyped]
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

from flask_paxpar_checkout import PaxparCheckout


class Base(DeclarativeBase):
    """The declarative base of the example's models; ``db.metadata`` is its metadata."""


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
login_manager.login_view = "pages.login"
login_manager.login_message = "Sign in to see your account."
checkout = PaxparCheckout()
