"""The least-privilege role the production backend connects as (DB_APP_USER): data only, no DDL.

Migrations connect as the owner of the tables (DB_USER). After every `migrate`, when DB_APP_USER is set,
the owner creates the runtime role if it is missing, sets its password to DB_APP_PASSWORD, and grants it
SELECT, INSERT, UPDATE and DELETE on every table and the use of every sequence, now and, through default
privileges, on the tables later migrations create. It can neither create, alter nor drop a table. Run on
every migrate and idempotent, so an existing database upgrades by itself and a changed password applies
at the next deploy.

What the backend only reads at runtime it may only read: django_migrations (a compromised backend that
could delete rows there would make the next migrate re-run or skip migrations), and the content types and
permissions, which migrate writes (post_migrate, as the owner). It may not create temporary tables or
functions (pg_temp) in the database, nor connect to the server's maintenance databases. Its password
reaches the server as a SCRAM-SHA-256 verifier computed here (libpq), never as text that a statement log
would keep.
"""

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

# Written at runtime only by migrate (django_migrations; post_migrate's content types and permissions).
READ_ONLY_TABLES = ("django_migrations", "django_content_type", "auth_permission")
# The databases every PostgreSQL server has that accept connections (template0 does not).
MAINTENANCE_DATABASES = ("postgres", "template1")


def password_verifier(*, connection: BaseDatabaseWrapper, role: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of the password (salted, iterated), as PostgreSQL stores it."""
    connection.ensure_connection()
    verifier: bytes = connection.connection.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256"
    )
    return verifier.decode()


def runtime_role_ensure(*, connection: BaseDatabaseWrapper, role: str, password: str) -> None:
    if role == connection.settings_dict["USER"]:
        raise ImproperlyConfigured(
            "DB_APP_USER must name another role than DB_USER: migrations connect as DB_USER, the owner."
        )
    if not password:
        raise ImproperlyConfigured("DB_APP_USER is set but DB_APP_PASSWORD is not. See .env.example.")
    name = connection.ops.quote_name(role)
    database = connection.ops.quote_name(connection.settings_dict["NAME"])
    # No CREATE ROLE IF NOT EXISTS in PostgreSQL; migrate runs once per deploy, so no race to lose.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
            "FROM pg_roles WHERE rolname = %s",
            [role],
        )
        attributes = cursor.fetchone()
        if attributes is None:
            cursor.execute(f"CREATE ROLE {name}")
        else:
            # What an existing role was given by hand is taken back. Only what is set: an owner that is
            # not a superuser (CREATEROLE) may not even say NOSUPERUSER.
            names = ("SUPERUSER", "CREATEDB", "CREATEROLE", "REPLICATION", "BYPASSRLS")
            for attribute, is_set in zip(names, attributes, strict=True):
                if is_set:
                    cursor.execute(f"ALTER ROLE {name} NO{attribute}")
        cursor.execute(
            f"ALTER ROLE {name} LOGIN PASSWORD %s",
            [password_verifier(connection=connection, role=role, password=password)],
        )
        for statement in (
            f"GRANT CONNECT ON DATABASE {database} TO {name}",
            f"GRANT USAGE ON SCHEMA public TO {name}",
            # PostgreSQL 15 and later revoke this by default; a database made by an older one had it.
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
            f"REVOKE CREATE ON SCHEMA public FROM {name}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {name}",
            f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {name}",
            # Tables and sequences the owner creates later (the next migrations).
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {name}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {name}",
            # Temporary tables and pg_temp functions: the backend uses none. The owner keeps the right.
            f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC",
            f"REVOKE TEMPORARY ON DATABASE {database} FROM {name}",
        ):
            cursor.execute(statement)
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY(%s)",
            [list(READ_ONLY_TABLES)],
        )
        for (table,) in cursor.fetchall():
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON {connection.ops.quote_name(table)} FROM {name}")
        # The server's other databases, which PostgreSQL lets every role (PUBLIC) connect to: where this
        # connection may change that (a superuser, as in compose.prod.yaml, or their owner). A role that
        # must connect to one of them needs its own GRANT CONNECT from then on; superusers always may.
        cursor.execute(
            "SELECT datname FROM pg_database WHERE datname = ANY(%s) AND datallowconn "
            "AND (datdba = (SELECT oid FROM pg_roles WHERE rolname = current_user) "
            "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user))",
            [list(MAINTENANCE_DATABASES)],
        )
        for (other,) in cursor.fetchall():
            cursor.execute(f"REVOKE CONNECT ON DATABASE {connection.ops.quote_name(other)} FROM PUBLIC")


def runtime_role_after_migrate(using: str = "default", **kwargs: Any) -> None:
    """post_migrate receiver (core.apps)."""
    connection = connections[using]
    if settings.DB_APP_USER and connection.vendor == "postgresql":
        runtime_role_ensure(
            connection=connection, role=settings.DB_APP_USER, password=settings.DB_APP_PASSWORD
        )
