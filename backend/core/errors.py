"""Every error code the API returns, and the one exception services raise.

Each error body is {"message": str, "code": <one of these>, "details": {...}}. The frontend switches on
``code``; ``message`` is for people. The README's error table lists the same codes.
"""

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int
    meaning: str

    def __str__(self) -> str:
        return self.code


VALIDATION_ERROR = ErrorCode(
    "VALIDATION_ERROR", 400, "Input is invalid; details maps each field to its messages."
)
PARSE_ERROR = ErrorCode("PARSE_ERROR", 400, "The body is not valid JSON.")
BAD_REQUEST = ErrorCode(
    "BAD_REQUEST", 400, "Refused before reaching the API, e.g. a Host header not in ALLOWED_HOSTS."
)
INVALID_CREDENTIALS = ErrorCode(
    "INVALID_CREDENTIALS", 400, "Email or password is wrong (the response does not say which)."
)
INVALID_TOKEN = ErrorCode("INVALID_TOKEN", 400, "The password-reset link is invalid, used or expired.")
NOT_AUTHENTICATED = ErrorCode("NOT_AUTHENTICATED", 401, "No valid session: show the login view.")
PERMISSION_DENIED = ErrorCode("PERMISSION_DENIED", 403, "Logged in, but not allowed to do this.")
CSRF_FAILED = ErrorCode(
    "CSRF_FAILED",
    403,
    "X-CSRFToken header missing or not matching the csrftoken cookie, or the Origin is not trusted; "
    "details.reason says which.",
)
NOT_FOUND = ErrorCode("NOT_FOUND", 404, "No such endpoint or object.")
METHOD_NOT_ALLOWED = ErrorCode(
    "METHOD_NOT_ALLOWED", 405, "The endpoint exists but not for this method (see the Allow header)."
)
NOT_ACCEPTABLE = ErrorCode("NOT_ACCEPTABLE", 406, "The Accept header asks for something other than JSON.")
REQUEST_TOO_LARGE = ErrorCode("REQUEST_TOO_LARGE", 413, "The body is larger than the limit (1 MiB).")
UNSUPPORTED_MEDIA_TYPE = ErrorCode(
    "UNSUPPORTED_MEDIA_TYPE", 415, "The body is not sent as Content-Type: application/json."
)
THROTTLED = ErrorCode(
    "THROTTLED",
    429,
    "Too many requests; retry after the Retry-After header's seconds (also details.wait).",
)
INTERNAL_ERROR = ErrorCode(
    "INTERNAL_ERROR", 500, "A bug on the server; details.request_id finds it in the logs."
)
SERVICE_UNAVAILABLE = ErrorCode(
    "SERVICE_UNAVAILABLE", 503, "A dependency is down; details.checks says which (health/ready)."
)

ALL_CODES: tuple[ErrorCode, ...] = (
    VALIDATION_ERROR,
    PARSE_ERROR,
    BAD_REQUEST,
    INVALID_CREDENTIALS,
    INVALID_TOKEN,
    NOT_AUTHENTICATED,
    PERMISSION_DENIED,
    CSRF_FAILED,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    NOT_ACCEPTABLE,
    REQUEST_TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
    THROTTLED,
    INTERNAL_ERROR,
    SERVICE_UNAVAILABLE,
)


class ApplicationError(Exception):
    """A domain error raised by services and selectors; the exception handler turns it into a response."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details = details or {}
        self.headers = headers or {}


def throttled(
    wait_seconds: float, message: str = "Too many requests. Try again in {wait} seconds."
) -> ApplicationError:
    """The 429 error, for DRF throttles and the per-account limits alike; ``{wait}`` in the message is
    replaced by the whole seconds to wait."""
    wait = max(1, math.ceil(wait_seconds))
    return ApplicationError(
        message.format(wait=wait),
        code=THROTTLED,
        details={"wait": wait},
        headers={"Retry-After": str(wait)},
    )
