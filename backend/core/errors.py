"""The error contract: every code the API returns with its status, and the one exception services raise.

Each error body is {"message": str, "code": <one of these>, "details": {...}}; core.exceptions writes it.
The frontend switches on ``code``; ``message`` is for people. What each code means is in the README's
error table, which a test keeps to exactly these codes and statuses.
"""

import logging
import math
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import InterfaceError, OperationalError
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.cache import CacheUnavailableError
from core.sessions import SessionNotEndedError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorCode:
    code: str
    status: int

    def __str__(self) -> str:
        return self.code


VALIDATION_ERROR = ErrorCode("VALIDATION_ERROR", 400)
PARSE_ERROR = ErrorCode("PARSE_ERROR", 400)
BAD_REQUEST = ErrorCode("BAD_REQUEST", 400)
INVALID_CREDENTIALS = ErrorCode("INVALID_CREDENTIALS", 400)
INVALID_TOKEN = ErrorCode("INVALID_TOKEN", 400)
NOT_AUTHENTICATED = ErrorCode("NOT_AUTHENTICATED", 401)
PERMISSION_DENIED = ErrorCode("PERMISSION_DENIED", 403)
CSRF_FAILED = ErrorCode("CSRF_FAILED", 403)
NOT_FOUND = ErrorCode("NOT_FOUND", 404)
METHOD_NOT_ALLOWED = ErrorCode("METHOD_NOT_ALLOWED", 405)
NOT_ACCEPTABLE = ErrorCode("NOT_ACCEPTABLE", 406)
REQUEST_TOO_LARGE = ErrorCode("REQUEST_TOO_LARGE", 413)
URI_TOO_LONG = ErrorCode("URI_TOO_LONG", 414)
UNSUPPORTED_MEDIA_TYPE = ErrorCode("UNSUPPORTED_MEDIA_TYPE", 415)
THROTTLED = ErrorCode("THROTTLED", 429)
REQUEST_HEADERS_TOO_LARGE = ErrorCode("REQUEST_HEADERS_TOO_LARGE", 431)
INTERNAL_ERROR = ErrorCode("INTERNAL_ERROR", 500)
SERVICE_UNAVAILABLE = ErrorCode("SERVICE_UNAVAILABLE", 503)

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
    URI_TOO_LONG,
    UNSUPPORTED_MEDIA_TYPE,
    THROTTLED,
    REQUEST_HEADERS_TOO_LARGE,
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


# Seconds a client is asked to wait when a dependency (PostgreSQL, Redis) did not answer: about as long as
# core.cache skips a failed Redis, and as a restarted database container takes to accept connections.
RETRY_AFTER_UNAVAILABLE = 5


def unavailable(
    message: str = "A service the API depends on is unavailable. Try again shortly.",
    details: dict[str, Any] | None = None,
) -> ApplicationError:
    """The 503 error for a database or Redis that did not answer, with Retry-After."""
    return ApplicationError(
        message,
        code=SERVICE_UNAVAILABLE,
        details=details,
        headers={"Retry-After": str(RETRY_AFTER_UNAVAILABLE)},
    )


# A dependency that did not answer: the database (Django wraps psycopg's errors, not always those of
# psycopg's own connect), or Redis where a caller asked to know (core.cache.strict). 503, not 500: the
# request may succeed in a moment, and it is not a bug.
DEPENDENCY_ERRORS = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    RedisConnectionError,
    RedisTimeoutError,
    ConnectionInterrupted,
    CacheUnavailableError,
)


def dependency_error(exc: BaseException) -> ApplicationError:
    """The 503 for a dependency that did not answer, logged once as a WARNING."""
    logger.warning("Service unavailable: %s: %s", type(exc).__name__, exc)
    if isinstance(exc, SessionNotEndedError):
        return unavailable(
            "The session could not be ended because the session store is unavailable; it is unchanged. "
            "Try again shortly."
        )
    return unavailable()
