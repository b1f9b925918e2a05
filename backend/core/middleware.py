"""The envelope of every request (API, admin, static), first in MIDDLEWARE: its request id, the one access
line, the Host check, no caching of API responses, and the liveness probe.

One middleware rather than one per concern: each layer of Django's chain costs every request a wrapper
call and an exception guard, and these four concerns share the same two moments (before anything else
reads the request, after everything else made the response).
"""

import logging
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import Http404, HttpRequest, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.functional import empty

from core import health
from core.exceptions import bad_request, csrf_failure, page_not_found
from core.request_context import (
    client_ip,
    from_trusted_proxy,
    in_networks,
    request_id,
    request_id_from_header,
)

access_logger = logging.getLogger("core.access")
# Django's own logger for this, so existing log filters keep working.
disallowed_host_logger = logging.getLogger("django.security.DisallowedHost")

REQUEST_ID_HEADER = "X-Request-ID"
# X-Forwarded-For, -Proto, -Host and the rest, as WSGI names them.
FORWARDED_PREFIX = "HTTP_X_FORWARDED_"
# The production CSRF cookie's name until 0.2: a browser that still holds it is told to drop it, so that
# a SPA built then, which reads this name first, finds the csrftoken cookie Django checks instead of a
# stale token (CHANGELOG, 0.3.0's Upgrading). To go once such cookies have expired (a year after 0.3.0).
FORMER_CSRF_COOKIE = "__Host-csrftoken"
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


SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def guard_admin(request: HttpRequest) -> HttpResponseBase | None:
    """The admin's own rules, before Django's: a 404 for a client address outside ADMIN_ALLOWED_NETWORKS,
    and a 403 for an unsafe request from any origin but the site's own. CSRF_TRUSTED_ORIGINS lets the
    SPA's origin post to the API; it has no business posting to the admin, whose forms are the site's."""
    allowed: list[str] = settings.ADMIN_ALLOWED_NETWORKS
    if allowed and not in_networks(client_ip(request), allowed):
        return page_not_found(request, Http404())
    if request.method in SAFE_METHODS:
        return None
    own_origin = f"{request.scheme}://{request.get_host()}"
    origin = request.headers.get("Origin")
    referer = request.headers.get("Referer")
    if origin is None and referer and request.is_secure():
        # What Django's CSRF check falls back to over HTTPS: the referring page's origin.
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    if origin is not None and origin != own_origin:
        return csrf_failure(request, f"the admin takes unsafe requests from {own_origin} only")
    return None


class RequestMiddleware:
    """For every request, in this order:

    - X-Forwarded-* headers dropped unless a trusted proxy (FORWARDED_ALLOW_IPS: nginx) sent them;
    - the request id: taken from X-Request-ID (nginx's) or made, bound to every log record of the
      request, echoed in the response;
    - a Host header not in ALLOWED_HOSTS refused before anything else reads it. Django does this too,
      but with DEBUG on it answers with its HTML debug page (under /api/ as well), and it logs every
      foreign Host, which any scanner sends, as an ERROR with a traceback. Here: the 400 of
      core.exceptions.bad_request (the API's JSON under /api/) and one WARNING line;
    - GET and HEAD of health/live answered here, without the rest of the chain (core.apis.HealthLiveApi);
    - the admin (ADMIN_URL) guarded: its address allow-list and its own origin only (guard_admin);
    - API responses marked `Cache-Control: no-store`: they carry user data (the user, the CSRF token,
      errors about an account), which no browser or proxy cache may keep. Views that allow caching set
      their own Cache-Control;
    - the CSRF cookie of 0.2's production settings deleted where a browser still sends it;
    - one access line when the response is ready.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.live_path = reverse("health-live")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not from_trusted_proxy(request):
            # Before anything reads them: the scheme (SECURE_PROXY_SSL_HEADER, so CSRF's origin check
            # and the HTTPS redirect) and the client address (throttles, the access line).
            for key in [key for key in request.META if key.startswith(FORWARDED_PREFIX)]:
                del request.META[key]
        current_id = request_id_from_header(request.headers.get(REQUEST_ID_HEADER))
        token = request_id.set(current_id)
        started = time.perf_counter()
        try:
            response = self.respond(request)
            response[REQUEST_ID_HEADER] = current_id
            if request.path.startswith("/api/") and not response.has_header("Cache-Control"):
                response["Cache-Control"] = "no-store"
            if FORMER_CSRF_COOKIE in request.COOKIES:
                response.delete_cookie(FORMER_CSRF_COOKIE, samesite="Lax")  # Secure: its prefix says so
            self.log(request, response, started)
            return response
        finally:
            request_id.reset(token)

    def respond(self, request: HttpRequest) -> HttpResponseBase:
        try:
            request.get_host()
        except DisallowedHost as exc:
            disallowed_host_logger.warning("%s", exc)
            return bad_request(request, exc)
        if (
            request.path_info == self.live_path
            and request.method in ("GET", "HEAD")
            and request.accepts("application/json")  # else DRF's 406, like every endpoint
        ):
            return JsonResponse(health.LIVE_BODY)
        if request.path_info.startswith(f"/{settings.ADMIN_URL}"):
            refused = guard_admin(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    def log(self, request: HttpRequest, response: HttpResponseBase, started: float) -> None:
        status = response.status_code
        if request.path_info == self.live_path and status == 200:
            level = logging.DEBUG  # polled by the container health check every few seconds
        else:
            level = access_level(request, status)
        if not access_logger.isEnabledFor(level):
            return
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        access_logger.log(
            level,
            "%s %s %s %sms",
            request.method,
            request.path,
            status,
            duration_ms,
            extra={
                "method": request.method,
                # The path only: query strings may carry tokens.
                "path": request.path,
                "status": status,
                "duration_ms": duration_ms,
                "user_id": _user_id(request),
                "client_ip": client_ip(request),
                "hostname": HOSTNAME,
            },
        )
