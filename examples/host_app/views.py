"""The example's pages: sign-in, prices, account, the checkout landing pages and health."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import (  # type: ignore[import-untyped]
    current_user,
    login_required,
    login_user,
    logout_user,
)
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from .extensions import checkout, db
from .models import DEMO_PASSWORD, DEMO_USERS, find_user
from .settings import DEMO_PRICES

pages = Blueprint("pages", __name__)


@pages.app_template_global()
def csrf_token() -> str:
    """This browser session's token for the forms that POST."""
    token = session.get("csrf_token")
    if not isinstance(token, str):
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return token


@pages.app_context_processor
def instance_details() -> dict[str, Any]:
    """This instance's host name, and the local Stripe when it stands in for Stripe."""
    return {
        "checkout_fqdn": checkout.config.fqdn,
        "local_stripe_url": current_app.config.get("LOCAL_STRIPE_URL"),
    }


@pages.app_template_filter("datetime")
def format_timestamp(value: int | datetime | None) -> str:
    """A Unix time or a datetime as ``2026-01-31 12:00 UTC``."""
    if value is None:
        return "-"
    if isinstance(value, int):
        value = datetime.fromtimestamp(value, timezone.utc)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@pages.get("/")
def index() -> Response:
    return redirect(url_for("pages.prices"))


@pages.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    """Sign in, then go back to ``next`` (a path on this site only) or to the account."""
    next_url = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or url_for("pages.account"), 303)
        return _login_page(next_url)
    _check_csrf()
    user = find_user(request.form.get("username", "").strip())
    if user is None or not user.check_password(request.form.get("password", "")):
        flash("Unknown user name or wrong password.", "error")
        return _login_page(next_url), 401
    session.clear()  # a fresh session (and CSRF token) for the signed-in user
    login_user(user)
    return redirect(next_url or url_for("pages.account"), 303)


@pages.post("/logout")
def logout() -> Response:
    _check_csrf()
    logout_user()
    session.clear()
    return redirect(url_for("pages.login"), 303)


@pages.get("/prices")
def prices() -> str:
    """One subscription button per configured price, and a form to buy credits."""
    config = checkout.config
    plans = [
        {"price_id": price_id, "credits": credits, "href": _session_link(price_id=price_id)}
        for price_id, credits in (config.prices or {}).items()
    ]
    return render_template(
        "prices.html",
        plans=plans,
        config=config,
        credits_action=url_for("paxpar_checkout.create_session"),
        stripe_ready=config.secret_key is not None,
        demo_prices=_demo_prices(),
    )


@pages.get("/account")
@login_required  # type: ignore[untyped-decorator]
def account() -> str:
    """The balance with its ledger, and the subscription as the plugin knows it."""
    user_id = current_user.id
    config = checkout.config
    subscription = checkout.subscription(user_id)
    plan_credits = None
    if subscription is not None and subscription.price_id and config.prices:
        plan_credits = config.prices.get(subscription.price_id)
    return render_template(
        "account.html",
        user=current_user,
        config=config,
        credits=checkout.credits(user_id) if config.credits_enabled else None,
        ledger=checkout.ledger(user_id, limit=20),
        subscription=subscription,
        plan_credits=plan_credits,
        portal_href=url_for("paxpar_checkout.customer_portal", redirect="/account"),
    )


@pages.get("/front/checkout/success")
def checkout_success() -> str:
    """Where the plugin sends the user back after paying."""
    return render_template("checkout_success.html")


@pages.get("/front/checkout/cancel")
def checkout_cancel() -> str:
    """Where Stripe sends the user who leaves Checkout without paying."""
    return render_template("checkout_cancel.html")


@pages.get("/health")
def health() -> tuple[Response, int]:
    """Up, and the database answers."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        current_app.logger.exception("health: the database does not answer")
        return jsonify(status="error", database="unavailable"), 503
    return jsonify(status="ok", database="ok"), 200


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a path on this site (``/...``), else None: never another host."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _session_link(**params: Any) -> str:
    """The plugin's documented checkout link: ``/api/checkout/session?price_id=...``."""
    return url_for("paxpar_checkout.create_session", **params)


def _demo_prices() -> bool:
    return bool(current_app.config.get("PAXPAR_CHECKOUT_PRICES") == DEMO_PRICES)


def _login_page(next_url: str | None) -> str:
    return render_template(
        "login.html",
        next_url=next_url,
        demo_users=[name for name, _ in DEMO_USERS],
        demo_password=DEMO_PASSWORD,
    )


def _check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    expected = session.get("csrf_token")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, "The form has expired: reload the page and try again.")
