"""Fixtures shared by every test: a client that behaves like the SPA, and the usual personas."""

import logging
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any, cast

import pytest
from django.conf import settings
from django.core.cache import cache
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from core import background, rate_limit
from core.logging import JsonFormatter

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "redis: needs a real Redis (REDIS_URL); skipped without one")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
        return
    skip = pytest.mark.skip(reason="needs REDIS_URL (CI runs these in its PostgreSQL + Redis pass)")
    for item in items:
        if "redis" in item.keywords:
            item.add_marker(skip)


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


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    frozen = FrozenClock()
    monkeypatch.setattr(rate_limit, "time", frozen)
    return frozen


@pytest.fixture
def app_log() -> Iterator[StringIO]:
    """What the handler configured by settings.LOGGING writes, as JSON lines (as in production), at every
    level.

    The handler's own filters stay: they are what puts the request id on each record."""
    root = logging.getLogger()
    [handler] = [handler for handler in root.handlers if handler.name == "stdout"]
    assert isinstance(handler, logging.StreamHandler)
    stream = StringIO()
    previous_stream = handler.setStream(stream)
    previous_formatter, previous_level = handler.formatter, root.level
    handler.setFormatter(JsonFormatter())
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.setLevel(previous_level)
        handler.setFormatter(previous_formatter)
        if previous_stream is not None:
            handler.setStream(previous_stream)


@pytest.fixture(autouse=True)
def _isolated_cache() -> Iterator[None]:
    """Each test starts with empty throttle counters and no cached sessions."""
    _clear_cache()
    yield
    background.drain()
    _clear_cache()


def _clear_cache() -> None:
    if hasattr(cache, "delete_pattern"):
        cache.delete_pattern("*")  # only this run's KEY_PREFIX, not the whole Redis database
    else:
        cache.clear()


@pytest.fixture
def client() -> SpaClient:
    return SpaClient()


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def user(db: None) -> User:
    return cast(User, UserFactory())


@pytest.fixture
def other_user(db: None) -> User:
    return cast(User, UserFactory())


@pytest.fixture
def staff_user(db: None) -> User:
    return cast(User, UserFactory(is_staff=True))


def logged_in_client(user: User) -> SpaClient:
    """A client with a session made by the real login endpoint."""
    client = SpaClient()
    response = client.post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return client


@pytest.fixture
def user_client(user: User) -> SpaClient:
    return logged_in_client(user)


@pytest.fixture
def staff_client(staff_user: User) -> SpaClient:
    return logged_in_client(staff_user)
