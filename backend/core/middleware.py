"""Request id and the access log line, for every request (API, admin, static); the Host check that
answers a foreign Host in the API's shape also with DEBUG on; no caching of API responses."""

import logging
import socket
import time
from collections.abc import Callable

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control
from django.utils.functional import empty

from core.exceptions import bad_request
from core.request_context import client_ip, request_id, request_id_from_header

access_logger = logging.getLogger("core.access")
# Django's own logger for this, so existing log filters keep working.
disallowed_host_logger = logging.getLogger("django.security.DisallowedHost")

REQUEST_ID_HEADER = "X-Request-ID"
# The container's host name (Docker's default: the container id), in each access line, so that the
# logs of several backend containers, or of a Swarm service's replicas, say which one served a request.
HOSTNAME = socket.gethostname()


def access_level(request: HttpRequest, status: int) -> int:
    """ERROR for 5xx; DEBUG for the successes of views polled by health checks (``polled = True``)."""
    if status >= 500:
        return logging.ERROR
    view_class = getattr(getattr(request.resolver_match, "func", None), "view_class", None)
    if status == 200 and getattr(view_class, "polled", False):
        return logging.DEBUG
    return logging.INFO


def _user_id(request: HttpRequest) -> int | None:
    """The id of an authenticated user, without loading the session just to log it."""
    user = getattr(request, "user", None)
    if user is None or getattr(user, "_wrapped", None) is empty:
        return None
    return user.pk if user.is_authenticated else None


class RequestIdMiddleware:
    """Takes X-Request-ID from the proxy (or makes one), binds it to every log record of the request,
    echoes it in the response, and logs one access line when the response is ready."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        current_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        token = request_id.set(current_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = current_id
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            access_logger.log(
                access_level(request, response.status_code),
                "%s %s %s %sms",
                request.method,
                request.path,
                response.status_code,
                duration_ms,
                extra={
                    "method": request.method,
                    # The path only: query strings may carry tokens.
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": duration_ms,
                    "user_id": _user_id(request),
                    "client_ip": client_ip(request),
                    "hostname": HOSTNAME,
                },
            )
            return response
        finally:
            request_id.reset(token)


class AllowedHostMiddleware:
    """Refuses a Host header not in ALLOWED_HOSTS before anything else reads it.

    Django does this too, but with DEBUG on it answers with its HTML debug page (under /api/ as well),
    and it logs every foreign Host, which any scanner sends, as an ERROR with a traceback. Here: the
    400 of core.exceptions.bad_request (the API's JSON under /api/) and one WARNING line.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        try:
            request.get_host()
        except DisallowedHost as exc:
            disallowed_host_logger.warning("%s", exc)
            return bad_request(request, exc)
        return self.get_response(request)


class NoStoreMiddleware:
    """API responses carry user data (the user, the CSRF token, errors about an account): no browser or
    proxy cache may keep them. Views that allow caching set their own Cache-Control."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if request.path.startswith("/api/") and not response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True)
        return response
