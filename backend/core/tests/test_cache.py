"""core.cache: a Redis that is paused, stopped or unresolvable costs a request at most one short timeout,
once per process and breaker window; the security limits keep holding meanwhile."""

import json
import logging
import socket
import threading
import time

import pytest
from django.core.cache import cache

from core import cache as core_cache
from core.cache import CacheUnavailableError, strict
from testing import SpaClient, assert_throttled, logged_in_client, redis_cache_at, with_throttle_rates

ME = "/api/v1/auth/me"
LOGIN = "/api/v1/auth/login"


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def breaker_messages(caplog):
    return [record.getMessage() for record in caplog.records if record.name == "core.cache"]


# ---------------------------------------------------------------- no retries, one timeout


def test_a_failed_command_is_not_retried(settings, silent_port, caplog):
    """redis-py 8 retries ten times with backoff by default; one silent Redis cost seconds per call."""
    settings.CACHES = redis_cache_at(silent_port)

    _, elapsed = timed(lambda: cache.get("anything"))

    assert elapsed < 1.5  # one 0.5 s timeout, not eleven
    assert len(breaker_messages(caplog)) == 1


def test_the_open_breaker_skips_redis_without_waiting(settings, silent_port):
    settings.CACHES = redis_cache_at(silent_port)
    cache.get("first")  # times out and opens the breaker

    results, elapsed = timed(lambda: [cache.get(f"key{n}") for n in range(100)])

    assert results == [None] * 100
    assert elapsed < 0.2


def test_strict_operations_raise_instead_of_returning_a_default(redis_unreachable):
    with pytest.raises(CacheUnavailableError):
        strict(cache).get("anything")
    # The breaker is open now: the next one fails at once, the same way.
    with pytest.raises(CacheUnavailableError, match="circuit open"):
        strict(cache).delete("anything")


def test_an_outage_is_logged_once_per_process_not_once_per_request(user_client, redis_unreachable, caplog):
    statuses = [user_client.get(ME).status_code for _ in range(20)]

    assert statuses == [200] * 20
    [opened] = breaker_messages(caplog)
    assert opened.startswith(f"Redis at 127.0.0.1:{redis_unreachable} is unavailable (ConnectionError")


# ---------------------------------------------------------------- the breaker closes again


@pytest.mark.redis
def test_after_the_window_one_probe_closes_the_breaker(settings, redis_server, caplog):
    settings.REDIS_BREAKER_SECONDS = 0.3
    core_cache.reset_breakers()
    cache.set("k", "v")
    redis_server.pause()
    assert cache.get("k") is None  # times out: the breaker opens
    redis_server.resume()

    assert cache.get("k") is None  # still skipped within the window
    time.sleep(0.35)
    assert cache.get("k") == "v"  # the probe

    opened, closed = breaker_messages(caplog)
    assert "is unavailable (TimeoutError" in opened
    assert "answers again after" in closed
    assert "1 commands skipped meanwhile" in closed


def test_only_one_caller_probes_while_the_others_keep_skipping(settings):
    breaker = core_cache.CircuitBreaker("test:1", open_seconds=0.05)
    breaker.failed(ConnectionError("down"))
    assert not breaker.allow()
    time.sleep(0.06)

    allowed = [breaker.allow() for _ in range(5)]

    assert allowed == [True, False, False, False, False]
    breaker.succeeded()
    assert breaker.allow()
    assert breaker.is_closed


# ---------------------------------------------------------------- a paused Redis under the API


@pytest.mark.redis
def test_requests_stay_fast_while_redis_is_paused(user, redis_server):
    client = logged_in_client(user)
    redis_server.pause()
    try:
        first, first_time = timed(lambda: client.get(ME))
        rest, rest_time = timed(lambda: [client.get(ME).status_code for _ in range(20)])
    finally:
        redis_server.resume()

    assert first.status_code == 200
    assert first_time < 1.0  # one socket timeout (0.5 s) at most
    assert rest == [200] * 20
    assert rest_time < 1.0  # the breaker is open: no waiting at all


@pytest.mark.redis
def test_login_stays_fast_while_redis_is_paused(user, redis_server):
    redis_server.pause()
    try:
        response, elapsed = timed(
            lambda: SpaClient().post(LOGIN, {"email": user.email, "password": "correct horse battery staple"})
        )
    finally:
        redis_server.resume()

    assert response.status_code == 200, response.content
    assert elapsed < 1.0


# ---------------------------------------------------------------- security limits hold meanwhile


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_unreachable")
def test_failed_logins_are_still_limited_while_redis_is_unreachable(user):
    """The issue's reproduction: 25 wrong logins for one account in a row got no 429."""
    statuses = [
        SpaClient().post(LOGIN, {"email": user.email, "password": f"wrong {n}"}).status_code
        for n in range(25)
    ]

    assert statuses[:5] == [400] * 5
    assert set(statuses[5:]) == {429}


@pytest.mark.django_db
@pytest.mark.usefixtures("redis_unreachable")
def test_the_auth_rate_still_holds_while_redis_is_unreachable():
    responses = [
        SpaClient().post(
            LOGIN, {"email": f"nobody{n}@example.com", "password": "x"}, REMOTE_ADDR="203.0.113.5"
        )
        for n in range(11)
    ]

    assert [response.status_code for response in responses[:10]] == [400] * 10
    assert_throttled(responses[10], period=60)


@pytest.mark.usefixtures("redis_unreachable")
def test_the_anon_rate_lets_requests_through_while_redis_is_unreachable(client, settings):
    with_throttle_rates(settings, anon="2/m")

    assert [client.get("/api/v1/auth/csrf").status_code for _ in range(5)] == [200] * 5


# ---------------------------------------------------------------- name resolution


def test_a_stalled_resolver_costs_at_most_the_connect_timeout(settings, monkeypatch, caplog):
    """A stopped container's name made Docker's resolver stall for seconds; resolution has the connect
    timeout too. getaddrinfo is made to hang, as it does then."""
    release = threading.Event()
    real_getaddrinfo = socket.getaddrinfo

    def stalled(host, *args, **kwargs):
        if host == "redis.stalled.test":
            release.wait(10)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", stalled)
    config = redis_cache_at(0)
    config["default"]["LOCATION"] = "redis://redis.stalled.test:6379/0"
    settings.CACHES = config
    try:
        _, elapsed = timed(lambda: cache.get("anything"))
    finally:
        release.set()

    assert elapsed < 1.0
    [opened] = breaker_messages(caplog)
    assert "resolving redis.stalled.test took longer than 0.5s" in opened
    assert next(r.levelno for r in caplog.records if r.name == "core.cache") == logging.WARNING


# ---------------------------------------------------------------- what Redis holds


@pytest.mark.redis
def test_cached_values_are_json_not_pickle():
    """Whoever can write to Redis must not be able to make the backend unpickle (run) something."""
    cache.set("value", {"user": 1, "roles": ["a"]})

    raw = cache.client.get_client().get(cache.make_key("value"))  # type: ignore[attr-defined]

    assert json.loads(raw) == {"user": 1, "roles": ["a"]}


@pytest.mark.redis
def test_a_session_is_stored_as_json(user_client):
    key = cache.make_key(f"django.contrib.sessions.cached_db{user_client.session_key}")

    raw = cache.client.get_client().get(key)  # type: ignore[attr-defined]

    assert "_auth_user_id" in json.loads(raw)
