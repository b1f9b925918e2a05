"""The SQLite default of `make run` holds up under concurrent writes: several clients signing up at once
got "database is locked" before it used WAL, IMMEDIATE transactions and a busy timeout."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from accounts.models import User
from config.settings import base

THREADS = 8
SIGNUPS_PER_THREAD = 15


@pytest.fixture
def sqlite_file(tmp_path: Path, django_db_blocker: Any) -> Iterator[str]:
    """A database alias on a SQLite file of its own (not the test database) with the settings of base.py,
    holding the users table."""
    alias = "sqlite_file"
    database = {**base.SQLITE_DATABASE, "NAME": tmp_path / "db.sqlite3"}
    connections.settings[alias] = connections.configure_settings({"default": database})["default"]
    with django_db_blocker.unblock():
        with connections[alias].schema_editor() as editor:
            editor.create_model(User)
        yield alias
        connections[alias].close()
    del connections[alias]
    del connections.settings[alias]


def sign_up_concurrently(alias: str, options: Any) -> list[Exception]:
    """Threads that each sign users up as accounts.services.user_create does: in one transaction, read
    whether the email is taken, then write. Returns the errors."""
    connections.settings[alias] = {**connections.settings[alias], "OPTIONS": options}
    errors: list[Exception] = []
    barrier = threading.Barrier(THREADS)

    def worker(thread: int) -> None:
        barrier.wait()
        try:
            for n in range(SIGNUPS_PER_THREAD):
                email = f"user-{thread}-{n}@example.com"
                try:
                    with transaction.atomic(using=alias):
                        assert not User.objects.using(alias).filter(email=email).exists()
                        User.objects.using(alias).create(email=email, password="!")
                except OperationalError as error:
                    errors.append(error)
        finally:
            connections[alias].close()

    workers = [threading.Thread(target=worker, args=(thread,)) for thread in range(THREADS)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return errors


def test_concurrent_signups_on_sqlite_all_succeed(sqlite_file):
    errors = sign_up_concurrently(sqlite_file, base.SQLITE_DATABASE["OPTIONS"])

    assert errors == []
    assert User.objects.using(sqlite_file).count() == THREADS * SIGNUPS_PER_THREAD


def test_without_those_options_concurrent_signups_fail(sqlite_file):
    """Guards the test above: the same load on SQLite's defaults does lock."""
    errors = sign_up_concurrently(sqlite_file, {"timeout": 0.05})

    assert errors
    assert all("database is locked" in str(error) for error in errors)


def test_the_sqlite_database_uses_wal(sqlite_file):
    with connections[sqlite_file].cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone() == ("wal",)
    connections[sqlite_file].close()
