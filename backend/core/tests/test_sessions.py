"""core.sessions: sessions cached in Redis and written through to the database. Losing the cache logs
nobody out; a session is ended only when Redis confirms it, and its Redis copy lives minutes, not weeks."""

import threading
import time
from typing import cast

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import OperationalError, connection

from accounts.models import User
from accounts.tests.factories import UserFactory
from core.sessions import SessionStore
from testing import (
    ME,
    SpaClient,
    assert_error,
    closed_port,
    logged_in_client,
    logged_in_id,
    redis_cache_at,
    with_throttle_rates,
)

LOGOUT = "/api/v1/auth/logout"
SIGNUP = "/api/v1/auth/signup"


def replay(session_key):
    client = SpaClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return logged_in_id(client)


def test_session_is_written_to_the_database(user_client):
    assert Session.objects.filter(session_key=user_client.session_key).exists()


def test_session_survives_a_cache_flush(user_client, user):
    cache.clear()  # FLUSHDB on Redis

    response = user_client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_session_survives_a_redis_outage(user_client, user, redis_unreachable):
    me = user_client.get(ME)
    change = user_client.patch(ME, {"first_name": "Grace"})

    assert me.status_code == 200
    assert me.json()["id"] == user.id
    assert change.status_code == 200
    user.refresh_from_db()
    assert user.first_name == "Grace"


# ---------------------------------------------------------------- ending a session needs Redis


def test_logout_while_redis_is_unreachable_is_503_and_changes_nothing(user_client, user, settings):
    session_key = user_client.session_key
    reachable = settings.CACHES
    settings.CACHES = redis_cache_at(closed_port())

    response = user_client.post(LOGOUT)

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert "session" in response.json()["message"]
    assert Session.objects.filter(session_key=session_key).exists()
    settings.CACHES = reachable
    assert logged_in_id(user_client) == user.pk
    assert user_client.post(LOGOUT).status_code == 204
    assert replay(session_key) is None


@pytest.mark.redis
def test_logout_while_redis_is_paused_never_claims_success(user, redis_server):
    """The issue's reproduction: Redis frozen during logout. Before, logout answered 204 and deleted the
    database row while the Redis copy stayed; the replayed cookie worked again once Redis answered."""
    client = logged_in_client(user)
    session_key = client.session_key
    assert replay(session_key) == user.pk  # the session is cached in Redis now
    redis_server.pause()

    started = time.monotonic()
    response = client.post(LOGOUT)
    elapsed = time.monotonic() - started

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert response["Retry-After"]
    assert elapsed < 2
    redis_server.resume()
    # Said "not logged out", and it is not: the session is whole, in Redis and in the database.
    assert replay(session_key) == user.pk
    assert Session.objects.filter(session_key=session_key).exists()


@pytest.mark.redis
def test_logout_deletes_the_redis_copy_and_the_row(user_client):
    session_key = user_client.session_key
    cache_key = f"django.contrib.sessions.cached_db{session_key}"
    assert cache.get(cache_key) is not None

    assert user_client.post(LOGOUT).status_code == 204

    assert cache.get(cache_key) is None
    assert not Session.objects.filter(session_key=session_key).exists()
    assert replay(session_key) is None


@pytest.mark.redis
def test_the_redis_copy_of_a_session_lives_minutes(user_client):
    key = f"django.contrib.sessions.cached_db{user_client.session_key}"
    ttl = cache.ttl(key)  # type: ignore[attr-defined]

    assert 0 < ttl <= settings.SESSION_CACHE_MAX_AGE
    assert settings.SESSION_CACHE_MAX_AGE <= 5 * 60
    assert settings.SESSION_CACHE_MAX_AGE < settings.SESSION_COOKIE_AGE


# ---------------------------------------------------------------- a logged-out session never answers again


def copy_key(session_key):
    return f"django.contrib.sessions.cached_db{session_key}"


def test_a_request_that_read_the_session_before_the_logout_cannot_bring_it_back(user_client, monkeypatch):
    """The audit's race (N-3): a request that missed the Redis copy read the row, the logout deleted the
    copy and the row, then the request wrote the copy back, where later requests found the session for
    up to SESSION_CACHE_MAX_AGE without looking at the database."""
    session_key = user_client.session_key
    cache.delete(copy_key(session_key))
    reader = SessionStore(session_key)
    read_row = reader._get_session_from_db  # type: ignore[attr-defined]

    def read_the_row_then_log_out():
        row = read_row()
        assert user_client.post(LOGOUT).status_code == 204
        return row

    monkeypatch.setattr(reader, "_get_session_from_db", read_the_row_then_log_out)

    assert reader.load() == {}
    assert cache.get(copy_key(session_key)) is None
    assert replay(session_key) is None


def test_a_request_that_saved_the_session_during_the_logout_cannot_bring_it_back(user_client, monkeypatch):
    session_key = user_client.session_key
    writer = SessionStore(session_key)
    writer["note"] = "saved while the owner logs out"
    save_row = DatabaseStore.save
    logged_out: list[int] = []

    def save_the_row_then_log_out(store, must_create=False):
        save_row(store, must_create)
        if not logged_out:
            logged_out.append(user_client.post(LOGOUT).status_code)

    monkeypatch.setattr(DatabaseStore, "save", save_the_row_then_log_out)

    writer.save()

    assert logged_out == [204]
    assert cache.get(copy_key(session_key)) is None
    assert replay(session_key) is None


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_no_logged_out_session_answers_again_while_its_cookie_is_replayed_during_the_logout(settings):
    """Eight threads replay the cookie (GET auth/me) while the owner logs out, for 30 sessions: after the
    204, no request gets 200. Before, 13 of 30 sessions still answered (audit of 25008d9, N-3)."""
    with_throttle_rates(settings, anon="1000000/m", user="1000000/m", auth="1000000/m")
    revived, replayed_after = [], 0
    for n in range(30):
        owner = logged_in_client(cast(User, UserFactory()))
        session_key = owner.session_key
        logged_out, stop = threading.Event(), threading.Event()
        late: list[int] = []

        def replay_until_stopped(session_key=session_key, logged_out=logged_out, stop=stop, late=late):
            thief = SpaClient()
            thief.cookies[settings.SESSION_COOKIE_NAME] = session_key
            try:
                while not stop.is_set():
                    after_the_logout = logged_out.is_set()
                    status = thief.get(ME).status_code
                    if after_the_logout:
                        late.append(status)
            finally:
                connection.close()

        threads = [threading.Thread(target=replay_until_stopped) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.02)
        assert owner.post(LOGOUT).status_code == 204
        logged_out.set()
        time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join()
        replayed_after += len(late)
        if 200 in late or replay(session_key) is not None:
            revived.append(n)

    assert revived == []
    assert replayed_after >= 30


def test_login_over_a_live_session_while_redis_is_unreachable_is_503(user, other_user, settings):
    """Logging in ends the session the client had; if that cannot be confirmed, nothing happens."""
    client = logged_in_client(other_user)
    old_key = client.session_key
    settings.CACHES = redis_cache_at(closed_port())

    response = client.post(
        "/api/v1/auth/login", {"email": user.email, "password": "correct horse battery staple"}
    )

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert client.session_key == old_key
    assert Session.objects.filter(session_key=old_key).exists()


def test_login_without_a_session_works_while_redis_is_unreachable(user, client, redis_unreachable):
    response = client.post(
        "/api/v1/auth/login", {"email": user.email, "password": "correct horse battery staple"}
    )

    assert response.status_code == 200, response.content
    assert logged_in_id(client) == user.pk


# ---------------------------------------------------------------- the database fails while saving


@pytest.fixture
def session_writes_fail(monkeypatch):
    """Every write of a session row fails as it does when PostgreSQL is gone."""

    def fail(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Session, "save", fail)


@pytest.mark.django_db
@pytest.mark.usefixtures("session_writes_fail")
def test_signup_whose_session_cannot_be_stored_says_the_account_exists():
    client = SpaClient()

    response = client.post(SIGNUP, {"email": "new@example.com", "password": "a perfectly fine passphrase"})

    body = assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert body["details"] == {"account_created": True}
    assert "Log in" in body["message"]
    assert User.objects.filter(email="new@example.com").exists()
    assert settings.SESSION_COOKIE_NAME not in response.cookies


@pytest.mark.django_db
def test_a_database_outage_while_the_middleware_saves_is_503_not_400(user_client, monkeypatch):
    """Django reports any database error of a session update as "session deleted by a concurrent
    request" (400); an outage is a 503."""
    user_client.get(ME)
    session = Session.objects.get(session_key=user_client.session_key)

    def fail(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(Session, "save", fail)
    # A PATCH of the name changes nothing in the session; a change of the session's expiry does.
    user_client.raise_request_exception = False
    monkeypatch.setattr(settings, "SESSION_SAVE_EVERY_REQUEST", True)

    response = user_client.get(ME)

    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert Session.objects.filter(pk=session.pk).exists()


def test_a_session_ended_by_a_password_change_is_401_while_redis_is_unreachable(user, settings):
    """Such a session is flushed when it is read, which needs Redis; it is no login either way."""
    stale = logged_in_client(user)
    stale_key = stale.session_key
    current = logged_in_client(user)
    changed = current.post(
        "/api/v1/auth/password/change",
        {"current_password": "correct horse battery staple", "new_password": "a completely new passphrase"},
    )
    assert changed.status_code == 204, changed.content
    reachable = settings.CACHES
    settings.CACHES = redis_cache_at(closed_port())

    assert_error(stale.get(ME), 401, "NOT_AUTHENTICATED")
    assert logged_in_id(current) == user.pk

    settings.CACHES = reachable
    assert_error(stale.get(ME), 401, "NOT_AUTHENTICATED")
    assert Session.objects.filter(session_key=current.session_key).exists()
    assert not Session.objects.filter(session_key=stale_key).exists()
