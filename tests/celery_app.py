"""The Celery app of the test host, for the workers the tests start:
``DEFERRED_HOST='{...}' celery -A tests.celery_app worker``."""

from __future__ import annotations

from tests.deferred_host import create_app, settings_from_env

flask_app = create_app(settings_from_env())
celery = flask_app.extensions["celery"]
