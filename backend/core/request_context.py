"""The id of the request being served, for log records and error bodies, in this thread or task."""

import re
import uuid
from contextvars import ContextVar, Token

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What we accept from the proxy: nginx's $request_id is 32 hex digits; UUIDs and similar ids also pass.
# Anything else (too long, odd characters) is replaced, so the header cannot inject into log lines.
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{8,128}")


def current_request_id() -> str | None:
    return _request_id.get()


def request_id_from_header(value: str | None) -> str:
    if value and _VALID_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def bind_request_id(request_id: str) -> Token[str | None]:
    return _request_id.set(request_id)


def unbind_request_id(token: Token[str | None]) -> None:
    _request_id.reset(token)
