"""Session authentication for a browser SPA."""

from typing import cast

from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from core.exceptions import CsrfFailed
from core.sessions import SessionNotEndedError


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover - process_view never calls it
    raise AssertionError("unreachable")


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication with two fixes for an API used by a browser.

    - CSRF is checked on every unsafe request, anonymous ones included. DRF checks it only for logged-in
      users, which leaves signup, login and password reset open to login CSRF (a hostile page logging the
      victim into the attacker's account).
    - A request without a session gets 401 with a WWW-Authenticate header, not DRF's 403, so the SPA can
      tell "log in" from "not allowed".
    - A session ended by a password change is a 401 also while Redis is unavailable.
    """

    def authenticate(self, request: Request) -> tuple[object, None] | None:
        self.enforce_csrf(request)
        try:
            user = getattr(request._request, "user", None)
            if not user or not user.is_active:  # loads the session and the user
                return None
        except SessionNotEndedError:
            # A session whose password hash no longer matches (the password changed) is flushed when it
            # is read; with Redis unavailable it cannot be (core.sessions). It is no login either way,
            # and a later request flushes it: 401, not 503.
            return None
        return (user, None)

    def enforce_csrf(self, request: Request) -> None:
        # The same check as CsrfViewMiddleware; it passes safe methods (GET, HEAD, OPTIONS, TRACE).
        check = authentication.CSRFCheck(_no_response)
        check.process_request(request._request)
        # DRF's CSRFCheck returns the reason (a str) where Django's middleware returns a response. The check
        # reads a form body for a csrfmiddlewaretoken field: a form body the API does not take anyway
        # (it takes JSON) that Django cannot parse is a 415, not a crash.
        try:
            reason = cast(str | None, check.process_view(request._request, _no_response, (), {}))
        except MultiPartParserError as error:
            raise exceptions.UnsupportedMediaType(request.content_type) from error
        if reason:
            raise CsrfFailed(reason)

    def authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'
