"""Every error response of the API, with the body {"message", "code", "details"} (codes: core.errors).

DRF calls custom_exception_handler for anything an API view raises. The Django handlers below
(handler400/403/404/500 in config.urls, CSRF_FAILURE_VIEW) answer the errors Django raises before or
outside DRF (CSRF middleware, disallowed hosts, crashes) with the same body under /api/, and with
Django's own pages elsewhere (the admin). write_server_error answers the requests gunicorn's parser
refuses before Django sees them (config/gunicorn.py); nginx writes the bodies of its own errors in its
site (nginx/templates/default.conf.template).
"""

import json
import logging
import socket
import sys
from http import HTTPStatus
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import csrf as django_csrf
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from core import errors
from core.errors import DEPENDENCY_ERRORS, ApplicationError, ErrorCode, dependency_error
from core.request_context import request_id

logger = logging.getLogger(__name__)

NON_FIELD_ERRORS_KEY: str = api_settings.NON_FIELD_ERRORS_KEY


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "Request body is too large."
    default_code = "request_too_large"


class CsrfFailed(exceptions.PermissionDenied):
    default_detail = "CSRF verification failed."
    default_code = "csrf_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"CSRF verification failed: {reason}")
        self.reason = reason


_CODES: dict[type[exceptions.APIException], ErrorCode] = {
    CsrfFailed: errors.CSRF_FAILED,
    RequestTooLarge: errors.REQUEST_TOO_LARGE,
    exceptions.ValidationError: errors.VALIDATION_ERROR,
    exceptions.ParseError: errors.PARSE_ERROR,
    exceptions.NotAuthenticated: errors.NOT_AUTHENTICATED,
    exceptions.AuthenticationFailed: errors.NOT_AUTHENTICATED,
    exceptions.PermissionDenied: errors.PERMISSION_DENIED,
    exceptions.NotFound: errors.NOT_FOUND,
    exceptions.MethodNotAllowed: errors.METHOD_NOT_ALLOWED,
    exceptions.NotAcceptable: errors.NOT_ACCEPTABLE,
    exceptions.UnsupportedMediaType: errors.UNSUPPORTED_MEDIA_TYPE,
}


def _error_body(message: str, code: ErrorCode, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"message": message, "code": code.code, "details": details or {}}


def _error_response(
    message: str,
    code: ErrorCode,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(_error_body(message, code, details), status=code.status, headers=headers)


def application_error_body(error: ApplicationError) -> dict[str, Any]:
    """The body of an ApplicationError, for responses made outside DRF's exception handler."""
    return _error_body(error.message, error.code, error.details)


def _django_error_response(
    message: str, code: ErrorCode, details: dict[str, Any] | None = None
) -> JsonResponse:
    """The same body for the plain Django handlers below."""
    return JsonResponse(_error_body(message, code, details), status=code.status)


def _from_django(exc: Exception) -> Exception:
    """Django's own exceptions, as the DRF exceptions they correspond to."""
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, RequestDataTooBig):
        return RequestTooLarge()
    if isinstance(exc, DjangoValidationError):
        if not hasattr(exc, "error_dict"):
            return exceptions.ValidationError({NON_FIELD_ERRORS_KEY: exc.messages})
        detail = {
            (NON_FIELD_ERRORS_KEY if field == NON_FIELD_ERRORS else field): messages
            for field, messages in exc.message_dict.items()
        }
        return exceptions.ValidationError(detail)
    return exc


def _code_for(exc: exceptions.APIException) -> ErrorCode:
    for cls, code in _CODES.items():
        if isinstance(exc, cls):
            return code
    same_status = (code for code in errors.ALL_CODES if code.status == exc.status_code)
    return next(same_status, errors.INTERNAL_ERROR)


def _api_exception_response(exc: exceptions.APIException) -> Response:
    if isinstance(exc, exceptions.Throttled):
        error = errors.throttled(getattr(exc, "wait", None) or 1)
        return _error_response(error.message, error.code, error.details, error.headers)

    message = str(exc.detail)
    details: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        message = "Invalid input."
        details = exc.detail if isinstance(exc.detail, dict) else {NON_FIELD_ERRORS_KEY: exc.detail}
    elif isinstance(exc, CsrfFailed):
        details = {"reason": exc.reason}
    # Set by DRF for 401s from the authenticator's authenticate_header().
    auth_header = getattr(exc, "auth_header", None)
    headers = {"WWW-Authenticate": auth_header} if auth_header else None
    return _error_response(message, _code_for(exc), details, headers)


def _internal_error_body() -> dict[str, Any]:
    """The 500 body: no traceback, only the request id that finds it in the logs."""
    return _error_body("Internal server error.", errors.INTERNAL_ERROR, {"request_id": request_id.get()})


def custom_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    exc = _from_django(exc)
    if isinstance(exc, DEPENDENCY_ERRORS):
        exc = dependency_error(exc)
    if isinstance(exc, ApplicationError):
        response = _error_response(exc.message, exc.code, exc.details, exc.headers)
    elif isinstance(exc, exceptions.APIException):
        response = _api_exception_response(exc)
    else:
        # The traceback goes to the log, with the request id; the client gets only the id.
        logger.error("Unhandled exception in %s", type(context.get("view")).__name__, exc_info=exc)
        response = Response(_internal_error_body(), status=errors.INTERNAL_ERROR.status)
    # Imported here: DRF imports this module (via the authentication class) while loading its views.
    from rest_framework.views import set_rollback

    set_rollback()
    return response


# ---------------------------------------------------------------- Django's error handlers


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: CsrfViewMiddleware's rejections, for views not checked by DRF."""
    if _is_api(request):
        return _django_error_response(
            f"CSRF verification failed: {reason}", errors.CSRF_FAILED, {"reason": reason}
        )
    return django_csrf.csrf_failure(request, reason)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refuses before any view (a Host not in ALLOWED_HOSTS, other suspicious input)."""
    if _is_api(request):
        return _django_error_response("Bad request.", errors.BAD_REQUEST)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _django_error_response(
            "You do not have permission to perform this action.", errors.PERMISSION_DENIED
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return _django_error_response("Not found.", errors.NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """Crashes outside DRF, e.g. in the session middleware; Django calls it while handling the error."""
    if _is_api(request):
        exc = sys.exc_info()[1]
        if isinstance(exc, DEPENDENCY_ERRORS):
            error = dependency_error(exc)
            return JsonResponse(
                application_error_body(error),
                status=error.code.status,
                headers=error.headers,
            )
        return JsonResponse(_internal_error_body(), status=errors.INTERNAL_ERROR.status)
    return defaults.server_error(request)


# ---------------------------------------------------------------- gunicorn's own answers

# What gunicorn answers itself (gunicorn.workers.base.Worker.handle_error), as the API's codes. Any other
# 4xx (417 for an Expect nginx no longer forwards, 501 for a transfer coding nginx does not send) is a
# malformed request, any other 5xx an internal error.
_SERVER_ERROR_CODES = {
    code.status: code
    for code in (
        errors.BAD_REQUEST,
        errors.PERMISSION_DENIED,
        errors.URI_TOO_LONG,
        errors.REQUEST_HEADERS_TOO_LARGE,
        errors.INTERNAL_ERROR,
    )
}
_SERVER_ERROR_MESSAGES = {
    errors.BAD_REQUEST: "The request is malformed.",
    errors.PERMISSION_DENIED: "You do not have permission to perform this action.",
    errors.URI_TOO_LONG: "The URI is too long.",
    errors.REQUEST_HEADERS_TOO_LARGE: "A request header, or all of them together, is too large.",
    errors.INTERNAL_ERROR: "Internal server error.",
}


def server_error_response(status: int) -> bytes:
    """The whole HTTP response for an error gunicorn answers itself, in the API's error shape. Its own
    reason (the parser's message) goes to gunicorn's log, not to the client."""
    code = _SERVER_ERROR_CODES.get(status) or (errors.BAD_REQUEST if status < 500 else errors.INTERNAL_ERROR)
    body = json.dumps(_error_body(_SERVER_ERROR_MESSAGES[code], code)).encode()
    head = (
        f"HTTP/1.1 {code.status} {HTTPStatus(code.status).phrase}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def write_server_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """A stand-in for gunicorn.util.write_error (its HTML page), installed by config/gunicorn.py."""
    from gunicorn import util

    util.write_nonblock(sock, server_error_response(status_int))
