"""GET /api/v1/health/live and /health/ready: public, unthrottled, and honest about the dependencies."""

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.utils import ConnectionHandler

from core import health
from testing import assert_error

LIVE = "/api/v1/health/live"
READY = "/api/v1/health/ready"

# The OPTIONS of base.py's Redis cache.
REDIS_OPTIONS = {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local TCP server that accepts connections and never answers: a hung dependency."""
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
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    server.close()
    # Closing the connections ends the abandoned health check threads waiting on them.
    for conn in accepted:
        conn.close()


def redis_cache_at(port: int) -> dict[str, dict[str, object]]:
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "KEY_PREFIX": "test",
            "OPTIONS": REDIS_OPTIONS,
        }
    }


def postgresql_at(port: int) -> ConnectionHandler:
    return ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": port,
                "NAME": "unreachable",
                "USER": "backend",
                "PASSWORD": "unused",
                "OPTIONS": {"connect_timeout": 2},
            }
        }
    )


def assert_reveals_nothing(content: bytes, port: int) -> None:
    text = content.decode()
    for secret in ("127.0.0.1", str(port), "Error", "refused", "Traceback", "connection"):
        assert secret not in text


# ---------------------------------------------------------------- up


def test_live(client):
    response = client.get(LIVE)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready(client, db):
    response = client.get(READY)

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_health_needs_no_session_or_csrf_and_sets_no_cookies(client, db):
    for path in (LIVE, READY):
        response = client.get(path)

        assert response.status_code == 200
        assert not response.cookies


def test_health_is_not_throttled(client, db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "anon": "1/m"},
    }
    # The rate is in force: a throttled endpoint refuses the second request.
    assert client.get("/api/v1/auth/csrf").status_code == 200
    assert client.get("/api/v1/auth/csrf").status_code == 429

    statuses = [client.get(path).status_code for path in (LIVE, READY) for _ in range(5)]

    assert statuses == [200] * 10


# ---------------------------------------------------------------- down


def assert_unavailable(response, checks: dict[str, str]) -> dict[str, Any]:
    """503 SERVICE_UNAVAILABLE in the API's error shape, with these check results; returns the body."""
    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert body["details"] == {"checks": checks}
    return body


def test_ready_reports_an_unreachable_database(client, db, monkeypatch, caplog):
    port = closed_port()
    monkeypatch.setattr(health, "connections", postgresql_at(port))

    response = client.get(READY)

    body = assert_unavailable(response, {"database": "unavailable", "redis": "ok"})
    assert "database" in body["message"]
    assert_reveals_nothing(response.content, port)
    # A real connection failure, not pytest-django's guard against database access.
    assert "Health check database failed: OperationalError" in caplog.messages


def test_ready_reports_an_unreachable_redis(client, db, settings, caplog):
    port = closed_port()
    settings.CACHES = redis_cache_at(port)

    response = client.get(READY)

    body = assert_unavailable(response, {"database": "ok", "redis": "unavailable"})
    assert "redis" in body["message"]
    assert_reveals_nothing(response.content, port)
    assert "Health check redis failed: ConnectionError" in caplog.messages


def test_ready_times_out_on_a_hung_redis(client, db, settings, silent_port):
    settings.CACHES = redis_cache_at(silent_port)
    settings.HEALTH_CHECK_TIMEOUT = 0.3

    response = client.get(READY)

    assert_unavailable(response, {"database": "ok", "redis": "timeout"})
    assert_reveals_nothing(response.content, silent_port)


def test_ready_times_out_on_a_hung_database(client, db, settings, monkeypatch, silent_port):
    monkeypatch.setattr(health, "connections", postgresql_at(silent_port))
    settings.HEALTH_CHECK_TIMEOUT = 0.3

    response = client.get(READY)

    assert_unavailable(response, {"database": "timeout", "redis": "ok"})
    assert_reveals_nothing(response.content, silent_port)
