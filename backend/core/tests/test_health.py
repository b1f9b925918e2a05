"""GET /api/v1/health/live and /health/ready: public, unthrottled, and honest about the dependencies."""

import threading
import time
from typing import Any

import pytest
from django.db import connections
from django.db.utils import ConnectionHandler

from core import health
from testing import assert_error, closed_port, redis_cache_at, with_throttle_rates

LIVE = "/api/v1/health/live"
READY = "/api/v1/health/ready"


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
    with_throttle_rates(settings, anon="1/m")
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


# ---------------------------------------------------------------- cheap under a flood of calls


@pytest.fixture
def counted_checks(monkeypatch):
    """Each check as it is, counted, and slow enough that callers overlap."""
    calls = dict.fromkeys(health.CHECKS, 0)

    def counted(name, check):
        def run():
            calls[name] += 1
            time.sleep(0.1)
            check()

        return run

    for name, check in list(health.CHECKS.items()):
        monkeypatch.setitem(health.CHECKS, name, counted(name, check))
    return calls


def test_a_result_is_reused_for_a_second(client, db, counted_checks, settings):
    statuses = [client.get(READY).status_code for _ in range(5)]

    assert statuses == [200] * 5
    assert counted_checks == {"database": 1, "redis": 1}
    assert settings.HEALTH_CHECK_CACHE_SECONDS == 1.0


def test_concurrent_callers_share_one_check(db, counted_checks):
    results = []

    def call():
        results.append(health.run_checks())

    callers = [threading.Thread(target=call) for _ in range(10)]
    for thread in callers:
        thread.start()
    for thread in callers:
        thread.join()

    assert results == [{"database": "ok", "redis": "ok"}] * 10
    assert counted_checks == {"database": 1, "redis": 1}


def test_a_failure_is_reused_too_and_checked_again_after_a_second(client, db, monkeypatch, settings):
    monkeypatch.setattr(health, "connections", postgresql_at(closed_port()))
    assert client.get(READY).status_code == 503
    monkeypatch.undo()
    assert client.get(READY).status_code == 503  # the failure, from the last result

    settings.HEALTH_CHECK_CACHE_SECONDS = 0
    assert client.get(READY).status_code == 200


def test_the_database_check_keeps_its_connection(db, settings, monkeypatch):
    """No new database connection per call: the check's thread reuses its own."""
    settings.HEALTH_CHECK_CACHE_SECONDS = 0
    seen = []
    check = health.CHECKS["database"]

    def recording():
        check()
        seen.append(id(connections["default"].connection))

    monkeypatch.setitem(health.CHECKS, "database", recording)

    for _ in range(3):
        assert health.run_checks()["database"] == health.OK

    assert len(seen) == 3
    assert len(set(seen)) == 1
