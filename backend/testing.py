"""Test helpers shared by the test modules of every app (imported, not fixtures): a client that behaves like
the SPA, a frozen clock for the rate limits, logging in, and assertions on the API's error shape. The
fixtures that use them are in conftest.py."""

import time
from typing import Any

from django.conf import settings
from django.http import HttpResponse
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD

ME = "/api/v1/auth/me"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class SpaClient(APIClient):
    """Sends what the SPA sends: JSON, the session cookie, and X-CSRFToken from the csrftoken cookie on
    unsafe requests (fetched from /auth/csrf first if there is none). CSRF checks are enforced, as in
    production; pass csrf=False to leave the header out."""

    def __init__(self, **defaults: Any) -> None:
        super().__init__(enforce_csrf_checks=True, **defaults)

    def csrf_token(self) -> str:
        if settings.CSRF_COOKIE_NAME not in self.cookies:
            response = self.get("/api/v1/auth/csrf")
            assert response.status_code == 200, response.content
        return self.cookies[settings.CSRF_COOKIE_NAME].value

    def generic(  # type: ignore[override]
        self,
        method: str,
        path: str,
        data: Any = "",
        content_type: str = "application/octet-stream",
        secure: bool = False,
        *,
        csrf: bool = True,
        **extra: Any,
    ) -> Any:
        if csrf and method.upper() in UNSAFE_METHODS and "HTTP_X_CSRFTOKEN" not in extra:
            extra["HTTP_X_CSRFTOKEN"] = self.csrf_token()
        return super().generic(method, path, data, content_type, secure=secure, **extra)

    @property
    def session_key(self) -> str | None:
        cookie = self.cookies.get(settings.SESSION_COOKIE_NAME)
        return cookie.value if cookie else None


class FrozenClock:
    """Stands in for the time module in core.rate_limit. The counters use fixed windows; with the clock
    standing 10.5 s into the current day (where every window of every rate starts), no window rolls over
    in the middle of a test unless the test moves ``now`` itself."""

    def __init__(self) -> None:
        self.now = time.time() // 86400 * 86400 + 10.5

    def time(self) -> float:
        return self.now


def logged_in_client(user: User) -> SpaClient:
    """A client with a session made by the real login endpoint."""
    client = SpaClient()
    response = client.post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return client


def logged_in_id(client: SpaClient) -> int | None:
    """The id of the user the client's session belongs to, or None when auth/me says 401."""
    response = client.get(ME)
    if response.status_code == 401:
        return None
    assert response.status_code == 200, response.content
    user_id: int = response.json()["id"]
    return user_id


def assert_error(response: HttpResponse, status: int, code: str) -> dict[str, Any]:
    """Asserts the API's one error shape, as JSON, with this status and code; returns the body."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].split(";")[0] == "application/json", response.content
    body: dict[str, Any] = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"message", "code", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["details"], dict)
    return body


def assert_throttled(response: HttpResponse, *, period: int) -> int:
    """429 THROTTLED with Retry-After equal to details.wait, a wait within the rate's period; returns it."""
    wait = assert_error(response, 429, "THROTTLED")["details"]["wait"]
    assert isinstance(wait, int)
    assert 1 <= wait <= period
    assert response["Retry-After"] == str(wait)
    return wait
