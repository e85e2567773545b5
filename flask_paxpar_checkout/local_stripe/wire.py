"""What goes over the local Stripe's wire: Stripe's form encoding, recorded requests, replies
and Stripe-shaped API errors."""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

__all__ = ["ApiError", "RecordedRequest", "Reply", "decode_form", "json_reply", "new_id"]

_ALPHABET = string.ascii_letters + string.digits
_KEY_RE = re.compile(r"\[([^\]]*)\]")


def new_id(prefix: str, length: int = 14) -> str:
    """A Stripe-looking id: ``prefix`` and random letters and digits."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def decode_form(raw: str) -> dict[str, Any]:
    """Decode Stripe's bracketed form encoding into nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(raw, keep_blank_values=True):
        head, _, rest = key.partition("[")
        segments = [head, *_KEY_RE.findall("[" + rest)] if rest else [head]
        node = root
        for seg in segments[:-1]:
            seg = seg or str(len(node))  # `a[]` appends
            child = node.get(seg)
            if not isinstance(child, dict):
                child = node[seg] = {}
            node = child
        node[segments[-1] or str(len(node))] = value
    return {k: _listify(v, k) if isinstance(v, dict) else v for k, v in root.items()}


def _listify(node: dict[str, Any], name: str) -> Any:
    out = {k: _listify(v, k) if isinstance(v, dict) else v for k, v in node.items()}
    if name != "metadata" and out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


@dataclass(frozen=True)
class RecordedRequest:
    """One request the local Stripe received."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    raw: str = ""

    @property
    def idempotency_key(self) -> str | None:
        """The ``Idempotency-Key`` header, if sent."""
        return self.headers.get("idempotency-key")


@dataclass
class Reply:
    """An HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """A refusal answered as Stripe answers it: ``{"error": {"type", "message", ...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(error_type, message, code, param)


def error_body(
    error_type: str, message: str, code: str | None, param: str | None
) -> dict[str, Any]:
    """The body of a Stripe API error."""
    error: dict[str, Any] = {"type": error_type, "message": message}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return {"error": error}


def json_reply(status: int, body: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON answer."""
    return Reply(status, json.dumps(body).encode(), headers=dict(headers or {}))


def missing(param: str) -> ApiError:
    """Stripe's error for a missing required parameter."""
    return ApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


def invalid(param: str, message: str) -> ApiError:
    """Stripe's error for a parameter of the wrong value."""
    return ApiError(400, message, code="parameter_invalid", param=param)


def no_such(kind: str, obj_id: str, param: str | None = None, status: int = 404) -> ApiError:
    """Stripe's ``resource_missing`` error."""
    return ApiError(status, f"No such {kind}: '{obj_id}'", code="resource_missing", param=param)


def mask(api_key: str) -> str:
    """An API key as Stripe shows it in errors."""
    if len(api_key) <= 12:
        return api_key
    return api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]


def unrecognized(rec: RecordedRequest) -> ApiError:
    """Stripe's answer to a URL it does not serve."""
    return ApiError(
        404,
        f"Unrecognized request URL ({rec.method}: {rec.path}). Please see "
        "https://stripe.com/docs or we can help at https://support.stripe.com/.",
    )
