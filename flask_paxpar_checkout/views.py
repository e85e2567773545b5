"""The blueprint: each view reads top to bottom, request -> schema -> Stripe -> store."""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Flask, abort, current_app, jsonify, redirect, request
from flask.typing import ResponseReturnValue
from markupsafe import escape
from marshmallow import Schema, ValidationError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, ServiceUnavailable
from werkzeug.wrappers import Response

from .errors import (
    CheckoutHTTPError,
    HandlerFailed,
    InvalidRequest,
    InvalidWebhook,
    NoStripeCustomer,
    NotAuthenticated,
    StripeServiceError,
)
from .events import FQDN_KEY, instance_tags
from .schemas import SuccessQuery
from .state import current_state
from .users import CheckoutUser

log = logging.getLogger("flask_paxpar_checkout")
blueprint = Blueprint("paxpar_checkout", __name__)

# RFC 9745: the credit system is deprecated (a Date structured field: 2026-01-01T00:00Z).
CREDITS_DEPRECATION = "@1767225600"
_success_query = SuccessQuery()


@blueprint.get("/session")
def create_session() -> Response:
    """Create a Checkout Session for ``qty`` credits or a ``price_id`` subscription."""
    state = current_state()
    user = _require_user()
    checkout = _load(state.session_query, request.args)
    cancel_url = state.config.public_url + state.config.cancel_redirect
    created = state.session_maker.create(user, checkout, cancel_url=cancel_url)
    response = _redirect_or_json(created.url, {"id": created.id, "url": created.url})
    if checkout.qty is not None:
        response.headers["Deprecation"] = CREDITS_DEPRECATION
    return response


@blueprint.get("/success")
def checkout_success() -> Response:
    """Stripe's ``success_url``: fulfil the session now (the webhook may be late), then send
    the user on to the redirect stored with it. Anything unexpected lands on the default."""
    state = current_state()
    default = state.config.public_url + state.config.default_redirect
    try:
        session_id: str = _success_query.load(request.args)
    except ValidationError:
        return redirect(default, 303)
    user = state.users.current()
    with state.database.transaction() as tx:
        stored = state.checkout_sessions.get(tx, session_id)
    if stored is None or user is None or stored.user_id != user.id:
        return redirect(default, 303)
    state.database.commit_session()
    try:
        session = state.gateway.retrieve_checkout_session(session_id)
    except StripeServiceError:
        return redirect(stored.redirect_url, 303)  # the webhook will fulfil it
    if instance_tags(session).get(FQDN_KEY) == state.config.fqdn:
        state.purchases.fulfil_return(session)
    return redirect(stored.redirect_url, 303)


@blueprint.get("/account")
def account() -> Response:
    """The current user's credits and subscription, for the front end."""
    state = current_state()
    user = _require_user(login_redirect=False)
    with state.database.transaction() as tx:
        sub = state.subscriptions.of_user(tx, user.id)
        credits = state.ledger.balance(tx, user.id)
    body: dict[str, Any] = {
        "user_id": user.id,
        "credits": credits if state.config.credits_enabled else None,
        "credits_enabled": state.config.credits_enabled,
        "subscription": None
        if sub is None
        else {
            "id": sub.id,
            "price_id": sub.price_id,
            "status": sub.status,
            "active": sub.is_active,
            "current_period_end": sub.current_period_end,
            "cancel_at_period_end": sub.cancel_at_period_end,
            "cancel_at": sub.cancel_at,
        },
    }
    response = jsonify(body)
    if state.config.credits_enabled:
        response.headers["Deprecation"] = CREDITS_DEPRECATION
    return response


@blueprint.get("/portal")
def customer_portal() -> Response:
    """Send the user to Stripe's Billing Portal to manage or cancel their subscription."""
    state = current_state()
    user = _require_user()
    return_url: str = _load(state.portal_query, request.args)
    with state.database.transaction() as tx:
        customer = state.customers.customer_of(tx, user.id)
    if customer is None:
        raise NoStripeCustomer(
            "There is nothing to manage yet: this account has never paid through Stripe."
        )
    state.database.commit_session()
    portal = state.gateway.create_portal_session(customer=customer, return_url=return_url)
    return _redirect_or_json(portal["url"], {"url": portal["url"]})


@blueprint.post("/webhook")
def webhook() -> tuple[Response, int]:
    """Stripe's events: 400 if not verified, 200 once recorded, 500 if a handler failed."""
    state = current_state()
    body = _read_body(state.config.webhook_max_bytes)
    try:
        outcome = state.pipeline.receive(body, request.headers.get("Stripe-Signature"))
    except InvalidWebhook as exc:
        log.warning("Refused a webhook delivery: %s", exc.description)
        raise
    except HandlerFailed as exc:
        return _error_body(500, f"Event {exc.event_id} failed; Stripe will retry it."), 500
    answer: dict[str, Any] = {"status": outcome.status, "event": outcome.event_id}
    if outcome.reason:
        answer["reason"] = outcome.reason
    # Serialised directly: every delivery gets this answer, and needs none of jsonify's
    # options.
    text = json.dumps(answer, separators=(",", ":"))
    return current_app.response_class(text, mimetype="application/json"), 200


@blueprint.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> ResponseReturnValue:
    """One JSON error shape: ``{code, status, message[, errors]}``. A person who followed a
    checkout link in the browser gets the same message as a small page instead."""
    if exc.response is not None:  # abort(redirect(...)) carries its own answer
        return exc.get_response()
    code = exc.code or 500
    errors = getattr(exc, "errors", None)
    if request.method == "GET" and _wants_page():
        response = _error_page(code, exc.description or "", errors)
    else:
        response = _error_body(code, exc.description or "", errors)
    if isinstance(exc, StripeServiceError) and exc.request_id:
        response.headers["X-Stripe-Request-Id"] = exc.request_id
    return response, code


@blueprint.errorhandler(SQLAlchemyError)
def database_error(exc: SQLAlchemyError) -> ResponseReturnValue:
    """The database failed: 503 in the one error shape. The log names the error, never the
    statement's parameters (they hold users' emails and Stripe ids)."""
    current_state().database.session.rollback()
    cause = getattr(exc, "orig", None) or exc
    log.error("Database error in %s: %s: %.200s", request.path, type(exc).__name__, cause)
    return http_error(
        ServiceUnavailable("The payment service's database is unavailable; try again shortly.")
    )


def exempt_from_csrf(app: Flask) -> None:
    """Stripe cannot send a CSRF token: exempt the webhook from Flask-WTF's protection,
    whether CSRFProtect was set up before this plugin or after it."""
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        csrf.exempt(webhook)
        return

    @app.before_request
    def _exempt_late() -> None:
        if request.endpoint == "paxpar_checkout.webhook":
            late = current_app.extensions.get("csrf")
            if late is not None:
                late.exempt(webhook)


def _read_body(limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes, with or without Content-Length:
    a chunked body is read no further than one byte past the limit."""
    request.max_content_length = limit + 1  # ours, whatever the host's MAX_CONTENT_LENGTH
    length = request.content_length
    if length is not None:  # the usual case: Stripe sends a Content-Length
        if length > limit:
            raise RequestEntityTooLarge(f"Webhook bodies are limited to {limit} bytes.")
        return request.get_data(cache=False)
    stream = request.stream
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(min(1 << 16, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise RequestEntityTooLarge(f"Webhook bodies are limited to {limit} bytes.")
    return b"".join(chunks)


def _require_user(*, login_redirect: bool = True) -> CheckoutUser:
    user = current_state().users.current()
    if user is not None:
        return user
    login_url = current_state().config.login_url
    if login_redirect and login_url and not _wants_json():
        sep = "&" if "?" in login_url else "?"
        target = login_url + sep + urlencode({"next": request.full_path.rstrip("?")})
        abort(redirect(target, 303))
    raise NotAuthenticated("Sign in first: checkout needs to know who is paying.")


def _load(schema: Schema, args: MultiDict[str, str]) -> Any:
    try:
        return schema.load(args)
    except ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        general = messages.pop("_schema", None)
        message = general[0] if general else "Invalid query parameters."
        raise InvalidRequest(message, errors=messages or None) from None


def _wants_page() -> bool:
    """A browser navigation: HTML asked for explicitly and preferred to JSON."""
    accept = request.accept_mimetypes
    return accept["text/html"] > accept["application/json"] and "text/html" in accept.values()


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _redirect_or_json(url: str, body: dict[str, Any]) -> Response:
    if _wants_json():
        return jsonify(body)
    return redirect(url, 303)


def _error_body(code: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = errors
    return jsonify(body)


__all__ = ["CheckoutHTTPError", "blueprint"]


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{status}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
color:#222}}h1{{font-size:1.3rem}}li{{color:#555}}</style></head>
<body><h1>{status}</h1><p>{message}</p>{details}
<p><a href="{home}">Back to {home}</a></p></body></html>
"""


def _error_page(code: int, message: str, errors: dict[str, Any] | None) -> Response:
    details = ""
    if errors:
        items = "".join(
            f"<li>{escape(field)}: {escape(' '.join(map(str, problems)))}</li>"
            for field, problems in errors.items()
        )
        details = f"<ul>{items}</ul>"
    page = _PAGE.format(
        status=f"{code} {escape(HTTPStatus(code).phrase)}",
        message=escape(message),
        details=details,
        home=escape(current_state().config.public_url + "/"),
    )
    return Response(page, code, mimetype="text/html")
