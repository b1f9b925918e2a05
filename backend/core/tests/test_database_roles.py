"""core.database_roles on a real PostgreSQL: the runtime role reads and writes rows and cannot change the
schema; migrate creates and updates it idempotently."""

import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from core.database_roles import runtime_role_ensure

pytestmark = pytest.mark.postgresql


@pytest.fixture
def role(transactional_db: None) -> Iterator[str]:
    """A runtime role name of this test's own (roles are global to the server), dropped afterwards."""
    name = f"test_runtime_{secrets.token_hex(4)}"
    yield name
    database = connection.settings_dict["NAME"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [name])
        if cursor.fetchone():
            # Not DROP OWNED BY, which needs the role's own rights; what runtime_role_ensure granted.
            for statement in (
                f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}",
                f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {name}",
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {name}",
                f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {name}",
                f"REVOKE ALL ON SCHEMA public FROM {name}",
                f'REVOKE ALL ON DATABASE "{database}" FROM {name}',
                f"DROP ROLE {name}",
            ):
                cursor.execute(statement)


def connect_as(role: str, password: str, dbname: str | None = None) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=dbname or settings["NAME"],
        user=role,
        password=password,
        autocommit=True,
    )


def test_the_runtime_role_reads_and_writes_rows(role):
    runtime_role_ensure(connection=connection, role=role, password="first")

    with connect_as(role, "first") as runtime:
        runtime.execute(
            "INSERT INTO accounts_user (email, password, first_name, last_name, is_active, is_staff, "
            "is_superuser, date_joined) VALUES ('r@example.com', '!', '', '', true, false, false, now())"
        )
        runtime.execute("UPDATE accounts_user SET first_name = 'Ada' WHERE email = 'r@example.com'")
        [(name,)] = runtime.execute("SELECT first_name FROM accounts_user WHERE email = 'r@example.com'")
        runtime.execute("DELETE FROM accounts_user WHERE email = 'r@example.com'")
        runtime.execute("INSERT INTO django_session VALUES ('k', 'd', now())")
        runtime.execute("DELETE FROM django_session WHERE session_key = 'k'")

    assert name == "Ada"


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE intruder (id int)",
        "DROP TABLE accounts_user",
        "ALTER TABLE accounts_user ADD COLUMN intruder int",
        "TRUNCATE django_session",
        "CREATE INDEX intruder ON accounts_user (first_name)",
        "CREATE ROLE intruder",
        # What only migrate writes: a backend that could delete migration records could make the next
        # migrate re-run or skip migrations.
        "DELETE FROM django_migrations",
        "UPDATE django_migrations SET name = 'x'",
        "INSERT INTO django_migrations (app, name, applied) VALUES ('accounts', '9999_x', now())",
        "DELETE FROM django_content_type",
        "INSERT INTO django_content_type (app_label, model) VALUES ('x', 'y')",
        "UPDATE auth_permission SET codename = 'x'",
        "DELETE FROM auth_permission",
        "CREATE TEMPORARY TABLE intruder (id int)",
        "CREATE FUNCTION pg_temp.intruder() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_the_runtime_role_cannot_change_the_schema_nor_what_migrate_writes(role, statement):
    runtime_role_ensure(connection=connection, role=role, password="first")

    with connect_as(role, "first") as runtime, pytest.raises(psycopg.errors.InsufficientPrivilege):
        runtime.execute(statement)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*) FROM django_migrations",
        "SELECT count(*) FROM django_content_type",
        "SELECT count(*) FROM auth_permission",
    ],
)
def test_the_runtime_role_reads_what_migrate_writes(role, query):
    runtime_role_ensure(connection=connection, role=role, password="first")

    with connect_as(role, "first") as runtime:
        [(count,)] = runtime.execute(query)
    assert count > 0


@pytest.mark.parametrize("database", ["postgres", "template1"])
def test_the_runtime_role_cannot_connect_to_the_maintenance_databases(role, database):
    runtime_role_ensure(connection=connection, role=role, password="first")

    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_as(role, "first", dbname=database).close()


def test_the_password_reaches_the_server_only_as_a_scram_verifier(role):
    password = secrets.token_urlsafe(16)
    sent: list[str] = []

    def record(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        sent.append(f"{sql} {params!r}")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        runtime_role_ensure(connection=connection, role=role, password=password)

    assert not [statement for statement in sent if password in statement]
    [alter] = [statement for statement in sent if "PASSWORD" in statement]
    assert re.search(r"'SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+'", alter)
    with connect_as(role, password) as runtime:
        [(user,)] = runtime.execute("SELECT current_user")
    assert user == role


def test_tables_created_later_are_granted_too(role):
    runtime_role_ensure(connection=connection, role=role, password="first")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE later_migration (id bigint GENERATED BY DEFAULT AS IDENTITY, note text)")
    try:
        with connect_as(role, "first") as runtime:
            runtime.execute("INSERT INTO later_migration (note) VALUES ('x')")
            [(count,)] = runtime.execute("SELECT count(*) FROM later_migration")
        assert count == 1
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE later_migration")


def test_ensuring_again_updates_the_password_and_takes_back_extra_rights(role):
    runtime_role_ensure(connection=connection, role=role, password="first")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER ROLE {role} CREATEDB")

    runtime_role_ensure(connection=connection, role=role, password="second")

    with pytest.raises(psycopg.OperationalError):
        connect_as(role, "first").close()
    with connect_as(role, "second") as runtime:
        [(createdb,)] = runtime.execute("SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user")
    assert createdb is False


def test_migrate_manages_the_role_named_by_the_settings(role, settings):
    settings.DB_APP_USER = role
    settings.DB_APP_PASSWORD = "from-settings"

    call_command("migrate", verbosity=0)

    with connect_as(role, "from-settings") as runtime:
        runtime.execute("SELECT count(*) FROM accounts_user")


def test_the_owner_cannot_be_made_the_runtime_role(transactional_db):
    with pytest.raises(ImproperlyConfigured, match="another role than DB_USER"):
        runtime_role_ensure(connection=connection, role=connection.settings_dict["USER"], password="x")


def test_a_runtime_role_needs_a_password(role):
    with pytest.raises(ImproperlyConfigured, match="DB_APP_PASSWORD"):
        runtime_role_ensure(connection=connection, role=role, password="")
