"""Project invariants as system checks, so `manage.py check --deploy` catches a settings change that would
quietly weaken the API, and `migrate` a deployment whose sizes the database cannot hold. Each check has
a test in core/tests/test_checks.py."""

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.hashers import get_hashers
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import DEFAULT_DB_ALIAS, connections

from core import rate_limit

SESSION_ENGINES_SURVIVING_CACHE_LOSS = (
    "core.sessions",
    "django.contrib.sessions.backends.cached_db",
    "django.contrib.sessions.backends.db",
)
PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.security)
def check_api_defaults(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    rest: dict[str, Any] = settings.REST_FRAMEWORK
    if rest.get("DEFAULT_PERMISSION_CLASSES") != ["rest_framework.permissions.IsAuthenticated"]:
        problems.append(
            Error(
                "REST_FRAMEWORK['DEFAULT_PERMISSION_CLASSES'] must be [IsAuthenticated].",
                hint="Public views opt out in the view itself (permission_classes = [AllowAny]).",
                id="core.E001",
            )
        )
    if rest.get("DEFAULT_AUTHENTICATION_CLASSES") != ["core.authentication.SessionAuthentication"]:
        problems.append(
            Error(
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES'] must be "
                "['core.authentication.SessionAuthentication'].",
                hint="DRF's own class skips CSRF for anonymous requests and answers 403 instead of 401.",
                id="core.E002",
            )
        )
    if settings.SESSION_ENGINE not in SESSION_ENGINES_SURVIVING_CACHE_LOSS:
        problems.append(
            Error(
                f"SESSION_ENGINE {settings.SESSION_ENGINE!r} loses sessions when the cache is flushed.",
                hint="Use core.sessions.",
                id="core.E003",
            )
        )
    # The one place rates are validated: a malformed THROTTLE_* value stops runserver and migrate (which
    # the production stack runs before the backend starts) naming the variable.
    rates = rest.get("DEFAULT_THROTTLE_RATES", {})
    for scope in rate_limit.SCOPES:
        try:
            rate_limit.Rate.parse(rates[scope])
        except (KeyError, TypeError, ValueError):
            problems.append(
                Error(
                    f"Throttle rate {scope!r} is missing or malformed: {rates.get(scope)!r}.",
                    hint=f"Set {rate_limit.variable_for(scope)} to a rate like 10/m, 100/h or 5/15m "
                    "(requests per optional number of s, m, h or d).",
                    id="core.E004",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_deployment(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    problems: list[CheckMessage] = []
    if get_hashers()[0].algorithm != "argon2":
        problems.append(
            Error(
                "The first of PASSWORD_HASHERS must be an Argon2 hasher.",
                hint="accounts.hashers.Argon2idPasswordHasher",
                id="core.E005",
            )
        )
    if settings.CACHES["default"]["BACKEND"] in PROCESS_LOCAL_CACHES:
        problems.append(
            Error(
                "The default cache is local to one process, so throttles are per worker and easy to evade.",
                hint="Set REDIS_URL.",
                id="core.E006",
            )
        )
    problems += _cookie_problems()
    if settings.SECURE_PROXY_SSL_HEADER and settings.TRUSTED_PROXY_COUNT == 0:
        problems.append(
            Warning(
                "SECURE_PROXY_SSL_HEADER is set but TRUSTED_PROXY_COUNT is 0: behind the proxy every "
                "client would share the proxy's address and one throttle bucket.",
                hint="Set TRUSTED_PROXY_COUNT to the number of proxies in front of the app (1 for nginx).",
                id="core.W001",
            )
        )
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@register(Tags.security)
def check_password_reset_url(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[CheckMessage]:
    """Without DEBUG (production), the reset link must point at a real frontend: the code's default is a
    dev server on the reader's own machine. Not deploy-only, so the production stacks' `migrate`, which
    runs before the backend starts, stops on it."""
    if settings.DEBUG or not _is_loopback(urlsplit(settings.PASSWORD_RESET_URL).hostname or ""):
        return []
    return [
        Error(
            f"PASSWORD_RESET_URL points at this machine ({settings.PASSWORD_RESET_URL}): every "
            "password-reset mail would send its reader to a page on their own computer.",
            hint="Set PASSWORD_RESET_URL to your frontend's reset page, with {uid} and {token} "
            "(.env.example).",
            id="core.E009",
        )
    ]


# The CSRF cookie's name is the SPA contract's (SYSTEM_CONTEXT.md: "retrieve the csrftoken cookie"), in
# every environment, so it cannot carry the __Host- prefix. What the prefix bought is kept by its other
# means: the cookie is host-only (no Domain, so a sibling subdomain's cookie is never this one), Secure
# in production (Django's security.W016), SameSite, and an unsafe request over HTTPS must come from a
# trusted origin (Django's Origin check) that is named exactly, never a wildcard that would trust a
# sibling subdomain (docs/decisions.md, "The CSRF cookie keeps its name").
CSRF_COOKIE_CONTRACT_NAME = "csrftoken"


def _cookie_problems() -> list[CheckMessage]:
    def error(message: str, fix: str) -> Error:
        return Error(message, hint=f"Set {fix}.", id="core.E007")

    problems: list[CheckMessage] = []
    session = settings.SESSION_COOKIE_NAME
    if session.startswith("__Host-") and not (
        settings.SESSION_COOKIE_SECURE
        and settings.SESSION_COOKIE_PATH == "/"
        and not settings.SESSION_COOKIE_DOMAIN
    ):
        problems.append(
            error(
                f"SESSION_COOKIE_NAME {session!r} has the __Host- prefix, so browsers drop the cookie "
                "unless it is Secure, on Path=/ and without a Domain.",
                "SESSION_COOKIE_SECURE = True, SESSION_COOKIE_PATH = '/' and no SESSION_COOKIE_DOMAIN",
            )
        )
    device = settings.LOGIN_DEVICE_COOKIE_NAME
    if device.startswith("__Host-") and not settings.SESSION_COOKIE_SECURE:
        problems.append(
            error(
                f"LOGIN_DEVICE_COOKIE_NAME {device!r} has the __Host- prefix, and the cookie is Secure only "
                "when the session cookie is: browsers would drop it.",
                "SESSION_COOKIE_SECURE = True",
            )
        )
    if settings.CSRF_COOKIE_NAME != CSRF_COOKIE_CONTRACT_NAME:
        problems.append(
            error(
                f"CSRF_COOKIE_NAME is {settings.CSRF_COOKIE_NAME!r}: a SPA reads the CSRF cookie by the "
                f"name the API contract gives, {CSRF_COOKIE_CONTRACT_NAME!r}.",
                f"CSRF_COOKIE_NAME = {CSRF_COOKIE_CONTRACT_NAME!r}",
            )
        )
    if settings.CSRF_COOKIE_DOMAIN:
        problems.append(
            error(
                "CSRF_COOKIE_DOMAIN is set: the CSRF cookie must be host-only, or subdomains share it.",
                "no CSRF_COOKIE_DOMAIN",
            )
        )
    if settings.CSRF_COOKIE_SAMESITE not in ("Lax", "Strict"):
        problems.append(
            error(
                f"CSRF_COOKIE_SAMESITE is {settings.CSRF_COOKIE_SAMESITE!r}, not Lax or Strict.",
                "CSRF_COOKIE_SAMESITE = 'Lax'",
            )
        )
    wildcards = [origin for origin in settings.CSRF_TRUSTED_ORIGINS if "*" in origin]
    if wildcards:
        problems.append(
            error(
                f"CSRF_TRUSTED_ORIGINS has wildcards ({', '.join(wildcards)}): every subdomain, and "
                "whoever controls one, could send unsafe requests.",
                "exact origins in CSRF_TRUSTED_ORIGINS",
            )
        )
    return problems


# ---------------------------------------------------------------- the connection budget


@dataclass(frozen=True)
class ConnectionBudget:
    """The PostgreSQL connections the stack may hold at once, against those PostgreSQL allows it.

    Each gunicorn worker keeps one persistent connection per thread (CONN_MAX_AGE: Django's connections
    are per thread) and one for its health check (core.health); an update runs `surge` containers
    beside the `replicas` that serve.
    """

    max_connections: int
    # superuser_reserved_connections + reserved_connections: not for an ordinary role.
    reserved: int
    replicas: int
    surge: int
    workers: int
    threads: int
    beside: int

    @property
    def per_container(self) -> int:
        return self.workers * (self.threads + 1)

    @property
    def needed(self) -> int:
        return (self.replicas + self.surge) * self.per_container + self.beside

    @property
    def available(self) -> int:
        return self.max_connections - self.reserved

    def __str__(self) -> str:
        return (
            f"{self.needed} connections needed: {self.replicas + self.surge} backend containers "
            f"(BACKEND_REPLICAS {self.replicas}, plus {self.surge} while an update replaces them) x "
            f"{self.workers} gunicorn workers (GUNICORN_WORKERS) x ({self.threads} threads "
            f"(GUNICORN_THREADS) + 1 health check), plus {self.beside} for migrate, backups and "
            f"admin sessions; PostgreSQL allows {self.available} (max_connections {self.max_connections} "
            f"minus {self.reserved} reserved for superusers)"
        )


def connection_budget() -> ConnectionBudget:
    """The budget of this configuration on the default database (PostgreSQL).

    The sizes are what gunicorn would run with in this container (config/gunicorn.py): the production
    stacks give `migrate` the backend's CPU limit, so its defaults are the backend's.
    """
    from config import gunicorn

    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(
            "SELECT current_setting('max_connections')::int,"
            " current_setting('superuser_reserved_connections')::int"
            # reserved_connections is PostgreSQL 16's; NULL before.
            " + coalesce(current_setting('reserved_connections', true), '0')::int"
        )
        max_connections, reserved = cursor.fetchone()
    return ConnectionBudget(
        max_connections=max_connections,
        reserved=reserved,
        replicas=settings.BACKEND_REPLICAS,
        surge=settings.BACKEND_UPDATE_SURGE,
        workers=gunicorn.workers,
        threads=gunicorn.threads,
        beside=settings.DB_CONNECTIONS_BESIDE_THE_BACKEND,
    )


@register(Tags.database)
def check_connection_budget(
    app_configs: Sequence[Any] | None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Run by `migrate` (and `check --database default`), which every deploy runs before new backend
    containers start: sizes whose connections PostgreSQL would refuse under load stop it."""
    if not databases or DEFAULT_DB_ALIAS not in databases:
        return []
    if connections[DEFAULT_DB_ALIAS].vendor != "postgresql":
        return []
    budget = connection_budget()
    if budget.needed <= budget.available:
        return []
    return [
        Error(
            f"The stack could open more database connections than PostgreSQL allows: {budget}.",
            hint="Lower BACKEND_REPLICAS, GUNICORN_WORKERS or GUNICORN_THREADS, or raise "
            "DB_MAX_CONNECTIONS (docs/operations.md, The connection budget).",
            id="core.E008",
        )
    ]
