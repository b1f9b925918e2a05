"""Sessions are cached in Redis and written through to the database: losing the cache logs nobody out."""

import copy
import socket

from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.test import override_settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_session_is_written_to_the_database(user_client):
    assert Session.objects.filter(session_key=user_client.session_key).exists()


def test_session_survives_a_cache_flush(user_client, user):
    cache.clear()  # FLUSHDB on Redis

    response = user_client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_session_survives_a_redis_outage(user_client, user):
    unreachable = copy.deepcopy(settings.CACHES)
    unreachable["default"] = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/0",
        "OPTIONS": settings.REDIS_CACHE_OPTIONS,
    }

    with override_settings(CACHES=unreachable):
        me = user_client.get("/api/v1/auth/me")
        change = user_client.patch("/api/v1/auth/me", {"first_name": "Grace"})

    assert me.status_code == 200
    assert me.json()["id"] == user.id
    assert change.status_code == 200
    user.refresh_from_db()
    assert user.first_name == "Grace"
