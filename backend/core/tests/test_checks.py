"""core.checks: each project invariant is a system check that fires when its setting is wrong."""

import pytest
from django.core.checks import Error, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection

from config import gunicorn
from config.settings import base
from core import rate_limit
from core.checks import (
    ConnectionBudget,
    check_api_defaults,
    check_connection_budget,
    check_deployment,
    check_password_reset_url,
    connection_budget,
)

ARGON2_FIRST = base.PASSWORD_HASHERS
REDIS_CACHE = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": "redis://redis:6379/0",
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1, "IGNORE_EXCEPTIONS": True},
    }
}
BEHIND_NGINX = ("HTTP_X_FORWARDED_PROTO", "https")


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.fixture
def production_like(settings):
    """The deployment settings prod.py arrives at (the test settings use MD5 and maybe local memory)."""
    settings.PASSWORD_HASHERS = ARGON2_FIRST
    settings.CACHES = REDIS_CACHE
    settings.SECURE_PROXY_SSL_HEADER = BEHIND_NGINX
    settings.TRUSTED_PROXY_COUNT = 1
    return settings


def rest_framework_with(settings, **overrides):
    return {**settings.REST_FRAMEWORK, **overrides}


# ---------------------------------------------------------------- check_api_defaults


def test_api_defaults_pass_with_the_project_settings():
    assert check_api_defaults(None) == []


@pytest.mark.parametrize(
    "permissions",
    [
        ["rest_framework.permissions.AllowAny"],
        ["rest_framework.permissions.IsAuthenticated", "rest_framework.permissions.AllowAny"],
        [],
        None,
    ],
)
def test_e001_default_permission_not_is_authenticated(settings, permissions):
    settings.REST_FRAMEWORK = rest_framework_with(settings, DEFAULT_PERMISSION_CLASSES=permissions)

    messages = check_api_defaults(None)

    assert ids(messages) == ["core.E001"]
    assert isinstance(messages[0], Error)


def test_e001_default_permission_missing(settings):
    settings.REST_FRAMEWORK = {
        key: value for key, value in settings.REST_FRAMEWORK.items() if key != "DEFAULT_PERMISSION_CLASSES"
    }

    assert ids(check_api_defaults(None)) == ["core.E001"]


@pytest.mark.parametrize(
    "authentication",
    [
        ["rest_framework.authentication.SessionAuthentication"],
        ["core.authentication.SessionAuthentication", "rest_framework.authentication.BasicAuthentication"],
        [],
    ],
)
def test_e002_authentication_not_the_csrf_enforcing_session_class(settings, authentication):
    settings.REST_FRAMEWORK = rest_framework_with(settings, DEFAULT_AUTHENTICATION_CLASSES=authentication)

    messages = check_api_defaults(None)

    assert ids(messages) == ["core.E002"]
    assert isinstance(messages[0], Error)


@pytest.mark.parametrize(
    "engine",
    [
        "django.contrib.sessions.backends.cache",
        "django.contrib.sessions.backends.signed_cookies",
        "django.contrib.sessions.backends.file",
    ],
)
def test_e003_sessions_lost_with_the_cache(settings, engine):
    settings.SESSION_ENGINE = engine

    messages = check_api_defaults(None)

    assert ids(messages) == ["core.E003"]
    assert isinstance(messages[0], Error)


def test_e003_database_sessions_pass(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"

    assert check_api_defaults(None) == []


@pytest.mark.parametrize("scope", ["anon", "user", "auth", "login_failures", "password_reset_mail"])
@pytest.mark.parametrize("rate", ["missing", "10 per minute", "10/x", None, 10])
def test_e004_throttle_rate_missing_or_malformed(settings, scope, rate):
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    if rate == "missing":
        del rates[scope]
    else:
        rates[scope] = rate
    settings.REST_FRAMEWORK = rest_framework_with(settings, DEFAULT_THROTTLE_RATES=rates)

    messages = check_api_defaults(None)

    assert ids(messages) == ["core.E004"]
    assert isinstance(messages[0], Error)
    assert repr(scope) in messages[0].msg


def test_e004_no_throttle_rates_at_all(settings):
    settings.REST_FRAMEWORK = {
        key: value for key, value in settings.REST_FRAMEWORK.items() if key != "DEFAULT_THROTTLE_RATES"
    }

    assert ids(check_api_defaults(None)) == ["core.E004"] * len(rate_limit.SCOPES)


# ---------------------------------------------------------------- check_deployment


def test_deployment_passes_with_production_settings(production_like):
    assert check_deployment(None) == []


@pytest.mark.parametrize(
    "hashers",
    [
        ["django.contrib.auth.hashers.MD5PasswordHasher"],
        ["django.contrib.auth.hashers.PBKDF2PasswordHasher", "accounts.hashers.Argon2idPasswordHasher"],
    ],
)
def test_e005_first_hasher_not_argon2(production_like, hashers):
    production_like.PASSWORD_HASHERS = hashers

    messages = check_deployment(None)

    assert ids(messages) == ["core.E005"]
    assert isinstance(messages[0], Error)


@pytest.mark.parametrize(
    "backend",
    ["django.core.cache.backends.locmem.LocMemCache", "django.core.cache.backends.dummy.DummyCache"],
)
def test_e006_process_local_cache(production_like, backend):
    production_like.CACHES = {"default": {"BACKEND": backend}}

    messages = check_deployment(None)

    assert ids(messages) == ["core.E006"]
    assert isinstance(messages[0], Error)


@pytest.mark.parametrize(
    "unfit",
    [{"SECURE": False}, {"PATH": "/api/"}, {"DOMAIN": "example.com"}],
    ids=["not-secure", "path", "domain"],
)
def test_e007_host_prefixed_session_cookie_that_browsers_would_drop(production_like, unfit):
    production_like.SESSION_COOKIE_NAME = "__Host-sessionid"
    production_like.SESSION_COOKIE_SECURE = True
    assert check_deployment(None) == []
    for attribute, value in unfit.items():
        setattr(production_like, f"SESSION_COOKIE_{attribute}", value)

    assert ids(check_deployment(None)) == ["core.E007"]


def test_e007_host_prefixed_login_device_cookie_that_is_not_secure(production_like):
    production_like.LOGIN_DEVICE_COOKIE_NAME = "__Host-login_device"
    production_like.SESSION_COOKIE_SECURE = True
    assert check_deployment(None) == []
    production_like.SESSION_COOKIE_SECURE = False

    assert ids(check_deployment(None)) == ["core.E007"]


@pytest.mark.parametrize(
    "unfit",
    [
        {"CSRF_COOKIE_NAME": "__Host-csrftoken"},
        {"CSRF_COOKIE_NAME": "XSRF-TOKEN"},
        {"CSRF_COOKIE_DOMAIN": ".example.com"},
        {"CSRF_COOKIE_SAMESITE": "None"},
        {"CSRF_COOKIE_SAMESITE": False},
        {"CSRF_TRUSTED_ORIGINS": ["https://app.example.com", "https://*.example.com"]},
    ],
    ids=["host-prefix", "other-name", "domain", "samesite-none", "no-samesite", "wildcard-origin"],
)
def test_e007_a_csrf_cookie_off_the_contract_or_weaker_than_host_only(production_like, unfit):
    assert check_deployment(None) == []
    for name, value in unfit.items():
        setattr(production_like, name, value)

    [message] = check_deployment(None)

    assert message.id == "core.E007"
    assert isinstance(message, Error)


def test_w001_behind_a_tls_proxy_without_trusted_proxies(production_like):
    production_like.TRUSTED_PROXY_COUNT = 0

    messages = check_deployment(None)

    assert ids(messages) == ["core.W001"]
    assert isinstance(messages[0], Warning)
    assert not isinstance(messages[0], Error)


def test_w001_silent_without_a_proxy(production_like):
    production_like.SECURE_PROXY_SSL_HEADER = None
    production_like.TRUSTED_PROXY_COUNT = 0

    assert check_deployment(None) == []


# ---------------------------------------------------------------- check_password_reset_url

CODE_DEFAULT_RESET_URL = "http://localhost:5173/reset-password?uid={uid}&token={token}"


@pytest.mark.parametrize(
    "url",
    [
        CODE_DEFAULT_RESET_URL,
        "https://127.0.0.1/reset?uid={uid}&token={token}",
        "http://[::1]:3000/reset?uid={uid}&token={token}",
        "https://app.localhost/reset?uid={uid}&token={token}",
    ],
)
def test_e009_a_reset_link_to_this_machine_without_debug(settings, url):
    settings.DEBUG = False
    settings.PASSWORD_RESET_URL = url

    [message] = check_password_reset_url(None)

    assert message.id == "core.E009"
    assert isinstance(message, Error)
    assert "PASSWORD_RESET_URL" in message.msg
    assert "PASSWORD_RESET_URL" in (message.hint or "")


def test_e009_silent_for_a_frontend_and_for_local_development(settings):
    settings.DEBUG = False
    settings.PASSWORD_RESET_URL = "https://app.example.com/reset-password?uid={uid}&token={token}"
    assert check_password_reset_url(None) == []

    settings.DEBUG = True
    settings.PASSWORD_RESET_URL = CODE_DEFAULT_RESET_URL
    assert check_password_reset_url(None) == []


def test_e009_stops_every_command_that_checks(settings):
    """Registered without deploy=True: `migrate`, which the production stacks run first, stops too."""
    settings.DEBUG = False
    settings.PASSWORD_RESET_URL = CODE_DEFAULT_RESET_URL

    with pytest.raises(SystemCheckError, match=r"core\.E009"):
        call_command("check")


# ---------------------------------------------------------------- check_connection_budget


def test_the_budget_counts_every_thread_and_health_check_of_every_container_an_update_runs():
    budget = ConnectionBudget(
        max_connections=100, reserved=3, replicas=3, surge=1, workers=4, threads=4, beside=5
    )

    assert budget.per_container == 4 * (4 + 1)
    assert budget.needed == (3 + 1) * 20 + 5 == 85
    assert budget.available == 97
    assert "85 connections needed: 4 backend containers (BACKEND_REPLICAS 3, plus 1 " in str(budget)
    assert "PostgreSQL allows 97 (max_connections 100 minus 3 reserved for superusers)" in str(budget)


@pytest.fixture
def sizes(settings, monkeypatch):
    """Sets the replicas, the update's surge and gunicorn's workers x threads the check reads."""

    def set_sizes(*, replicas: int, surge: int, workers: int, threads: int) -> None:
        settings.BACKEND_REPLICAS, settings.BACKEND_UPDATE_SURGE = replicas, surge
        monkeypatch.setattr(gunicorn, "workers", workers)
        monkeypatch.setattr(gunicorn, "threads", threads)

    return set_sizes


def max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


@pytest.mark.postgresql
def test_the_budget_reads_what_postgresql_allows(db, sizes):
    sizes(replicas=2, surge=2, workers=3, threads=4)

    budget = connection_budget()

    assert budget.max_connections == max_connections()
    assert 3 <= budget.reserved < budget.max_connections  # superuser_reserved_connections' default: 3
    assert (budget.replicas, budget.surge, budget.workers, budget.threads) == (2, 2, 3, 4)
    assert budget.beside == base.DB_CONNECTIONS_BESIDE_THE_BACKEND


@pytest.mark.postgresql
def test_e008_sizes_that_postgresql_cannot_hold(db, sizes):
    # Exactly what it allows passes; one more worker's worth does not.
    sizes(replicas=1, surge=0, workers=1, threads=1)
    reserved = connection_budget().reserved
    fitting = max_connections() - reserved - base.DB_CONNECTIONS_BESIDE_THE_BACKEND
    sizes(replicas=fitting // 2, surge=0, workers=1, threads=1)
    assert connection_budget().needed <= connection_budget().available
    assert check_connection_budget(None, databases=["default"]) == []

    sizes(replicas=fitting // 2, surge=1, workers=1, threads=1)
    [error] = check_connection_budget(None, databases=["default"])

    assert error.id == "core.E008"
    assert "BACKEND_REPLICAS" in error.msg
    assert "GUNICORN_WORKERS" in error.msg
    assert "DB_MAX_CONNECTIONS" in (error.hint or "")


@pytest.mark.postgresql
def test_migrate_refuses_sizes_that_postgresql_cannot_hold(db, sizes):
    sizes(replicas=50, surge=50, workers=8, threads=4)

    with pytest.raises(SystemCheckError, match=r"core\.E008"):
        # call_command skips the checks unless told otherwise; `manage.py migrate` runs them.
        call_command("migrate", verbosity=0, skip_checks=False)


def test_the_budget_is_checked_only_on_postgresql_and_when_databases_are(settings, sizes):
    sizes(replicas=50, surge=50, workers=8, threads=4)

    # `check` without --database, as check --deploy runs it, does not connect.
    assert check_connection_budget(None) == []
    if connection.vendor != "postgresql":
        assert check_connection_budget(None, databases=["default"]) == []


# ---------------------------------------------------------------- registered with Django


def test_checks_are_registered(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.cache"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    assert "core.E003" in ids(run_checks())
    assert "core.E005" not in ids(run_checks())  # a deployment check: only with --deploy
    assert {"core.E003", "core.E005"} <= set(ids(run_checks(include_deployment_checks=True)))


def test_deploy_run_reports_no_core_problem_with_production_settings(production_like):
    messages = run_checks(include_deployment_checks=True)

    problems = [message for message in messages if (message.id or "").startswith("core.")]

    assert problems == []
