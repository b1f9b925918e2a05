"""Fixtures shared by every test: the SPA-like client, the usual personas, a frozen clock for the rate
limits and an empty cache for each test. The helpers behind them are in testing.py."""

import logging
from collections.abc import Iterator
from importlib import import_module
from io import StringIO
from typing import Any, cast

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from core import background, health, rate_limit
from core import cache as core_cache
from core.logging import JsonFormatter
from testing import (
    FrozenClock,
    RedisServer,
    SpaClient,
    closed_port,
    logged_in_client,
    redis_cache_at,
    silent_server,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "redis: needs a real Redis (REDIS_URL); skipped without one")
    config.addinivalue_line("markers", "postgresql: needs PostgreSQL (DB_HOST); skipped on SQLite")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # CI runs both kinds in its PostgreSQL + Redis pass (make test-postgres).
    missing = {
        "redis": settings.CACHES["default"]["BACKEND"] != "django_redis.cache.RedisCache",
        "postgresql": connection.vendor != "postgresql",
    }
    for item in items:
        for marker, is_missing in missing.items():
            if is_missing and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"needs {marker} (make test-postgres)"))


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
    """Each test starts with empty throttle counters, no cached sessions, closed circuit breakers and no
    cached readiness result."""
    _clear_cache()
    yield
    background.drain()
    _clear_cache()
    rate_limit.forget_local_counts()
    core_cache.reset_breakers()
    health.forget()


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


@pytest.fixture
def user_client(user: User) -> SpaClient:
    return logged_in_client(user)


@pytest.fixture
def staff_client(staff_user: User) -> SpaClient:
    return logged_in_client(staff_user)


# ---------------------------------------------------------------- Redis faults


@pytest.fixture
def redis_unreachable(settings: Any) -> int:
    """The default cache points at a port that refuses connections (a stopped Redis); the port."""
    port = closed_port()
    settings.CACHES = redis_cache_at(port)
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    with silent_server() as port:
        yield port


@pytest.fixture
def redis_server(settings: Any) -> Iterator[RedisServer]:
    """A redis-server of the test's own as the default cache, to pause and resume."""
    server = RedisServer()
    settings.CACHES = redis_cache_at(server.port)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def session_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Session keys loaded from the session store from now on."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    loads: list[str] = []
    original = store.load

    def load(self: Any) -> Any:
        loads.append(self.session_key)
        return original(self)

    monkeypatch.setattr(store, "load", load)
    return loads
