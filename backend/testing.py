"""Test helpers shared by the test modules of every app (imported, not fixtures): a client that behaves like
the SPA, a frozen clock for the rate limits, logging in, assertions on the API's error shape, on objects
only their owner may see and on the queries of a list, and dependencies that fail (a refused port, a
silent server, a Redis to pause). The fixtures that use them are in conftest.py."""

import json
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import URLPattern, URLResolver, get_resolver
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


def api_routes() -> list[tuple[str, Any]]:
    """Every route of the API under /api/v1/ in the URLconf with its view class, the path as the OpenAPI
    schema writes it (``/api/v1/notes/{note_id}``)."""
    found = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + route)
            elif hasattr(pattern.callback, "view_class") and not route.startswith("^"):
                found.append(
                    ("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", prefix + route), pattern.callback.view_class)
                )

    walk(get_resolver().url_patterns, "")
    return [(path, view) for path, view in found if path.startswith("/api/v1/")]


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


def with_throttle_rates(test_settings: Any, **rates: str) -> None:
    """Set these throttle rates (scope="limit/period") for one test, through pytest-django's `settings`
    fixture, which restores them after it; the other scopes keep theirs."""
    test_settings.REST_FRAMEWORK = {
        **test_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**test_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


# ---------------------------------------------------------------- objects of one owner, lists


def assert_looks_absent(client: SpaClient, url: str, missing_url: str, *, body: dict[str, Any]) -> None:
    """``url``, another user's object, answers ``client`` exactly as ``missing_url``, an object that does
    not exist: for every method the endpoint allows, the same status and body, 404 NOT_FOUND for all but
    OPTIONS (which reads no object). ``body`` is sent with PUT, PATCH and POST: make it valid, so the
    request gets as far as looking the object up."""
    methods = [method.strip() for method in client.options(missing_url)["Allow"].split(",")]
    assert "GET" in methods, methods
    for method in methods:
        data = json.dumps(body) if method in {"PUT", "PATCH", "POST"} else ""
        theirs, missing = (
            client.generic(method, path, data, content_type="application/json") for path in (url, missing_url)
        )
        assert (theirs.status_code, theirs.content) == (missing.status_code, missing.content), method
        if method == "HEAD":
            assert theirs.status_code == 404, method
        elif method != "OPTIONS":
            assert_error(theirs, 404, "NOT_FOUND")


def assert_list_queries_do_not_grow(
    client: SpaClient,
    url: str,
    *,
    add_rows: Callable[[int], object],
    django_assert_max_num_queries: Callable[[int], AbstractContextManager[Any]],
) -> None:
    """A page of 50 rows of the list at ``url`` costs no more queries than a page of 1: whatever a row's
    output reads beyond the row is fetched with the list, not once per row (an N+1). ``add_rows(n)``
    adds n rows that ``client`` lists; pass pytest-django's django_assert_max_num_queries fixture."""
    add_rows(1)
    with CaptureQueriesContext(connection) as one_row:
        response = client.get(url, {"limit": 50})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 1
    add_rows(49)
    with django_assert_max_num_queries(len(one_row)):
        response = client.get(url, {"limit": 50})
    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == 50


# ---------------------------------------------------------------- dependencies that fail


def closed_port() -> int:
    """A local TCP port nothing listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redis_cache_at(port: int) -> dict[str, dict[str, Any]]:
    """CACHES with the project's Redis cache options, pointing at a local port."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": "test",
            "OPTIONS": settings.REDIS_CACHE_OPTIONS,
        }
    }


@contextmanager
def silent_server() -> Iterator[int]:
    """A local TCP server that accepts connections and never answers (a hung dependency); its port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        server.close()
        # Closing the connections ends the threads still waiting on them.
        for conn in accepted:
            conn.close()


class RedisServer:
    """A real redis-server of its own on 127.0.0.1, to pause (SIGSTOP: it accepts connections and answers
    nothing, like a frozen container) and resume."""

    def __init__(self) -> None:
        self.port = closed_port()
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
                time.sleep(0.02)

    def pause(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.process.terminate()
        self.process.wait(timeout=5)
