"""core.db.postgresql: no health-check ping for a connection that ran a query less than a second ago."""

import time

import pytest
from django.db import connection, connections

from core.db.postgresql.base import DatabaseWrapper

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def pings(monkeypatch):
    calls = []
    original = DatabaseWrapper.is_usable

    def counting(self):
        calls.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(DatabaseWrapper, "is_usable", counting)
    return calls


def next_request():
    """What Django does between two requests: the connection may be kept, its check is due again."""
    connection.close_if_unusable_or_obsolete()


def query():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def test_a_connection_used_a_moment_ago_is_not_pinged(pings):
    query()
    next_request()

    query()

    assert pings == []


def test_a_connection_idle_for_longer_is_pinged_once_per_request(pings, monkeypatch):
    query()
    next_request()
    monkeypatch.setattr(DatabaseWrapper, "TRUSTED_FOR", 0.0)

    query()
    query()

    assert len(pings) == 1


def test_a_connection_the_server_dropped_is_replaced_by_the_check(monkeypatch):
    query()
    next_request()
    monkeypatch.setattr(DatabaseWrapper, "TRUSTED_FOR", 0.0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [old_pid] = cursor.fetchone()
    next_request()
    # The server ends this connection, as a restart would, from another connection.
    with connections["default"]._nodb_cursor() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [old_pid])

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [new_pid] = cursor.fetchone()

    assert new_pid != old_pid
