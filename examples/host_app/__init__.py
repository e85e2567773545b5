"""An example "auth service" embedding flask-paxpar-checkout as a paxpar instance would:
its own users and sign-in (Flask-Login), SQLite by default, configured from the environment.

Run it with ``examples/run.sh`` or ``flask --app examples.host_app run``.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from .extensions import checkout, db, login_manager
from .models import User, seed_demo_users
from .settings import DEV_WEBHOOK_SECRET, settings_from_env
from .views import pages


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the service from the environment, then ``config`` (a ``None`` value unsets)."""
    app = Flask(__name__, instance_path=str(Path(__file__).resolve().parent / "instance"))
    settings = settings_from_env(os.environ)
    settings.update(config or {})
    app.config.update(settings)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(Path(app.instance_path))
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        db_file = Path(app.instance_path) / "host_app.db"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{db_file}"

    db.init_app(app)
    login_manager.init_app(app)
    checkout.init_app(app, db=db)  # the signed-in user comes from Flask-Login
    app.register_blueprint(pages)

    with app.app_context():
        _create_tables()
        seed_demo_users()
    return app


def _create_tables(attempts: int = 5) -> None:
    """The example's users and the plugin's tables. Workers starting together race on
    CREATE TABLE: the loser finds the tables made on its next try."""
    for attempt in range(attempts):
        try:
            db.create_all()
            return
        except (IntegrityError, OperationalError, ProgrammingError):
            db.session.rollback()
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))


def _load_user(user_id: str) -> User | None:
    """Flask-Login's user of a session cookie."""
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


login_manager.user_loader(_load_user)


def _instance_secret_key(instance: Path) -> str:
    """A session key kept in ``instance/`` so that sign-ins survive a restart."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


__all__ = ["DEV_WEBHOOK_SECRET", "create_app", "settings_from_env"]
