"""Start-up as an operator sees it: each settings module loaded in a fresh process from a controlled
environment. Every variable the settings read is set explicitly (blank means unset), so neither this
process's environment nor a developer's .env (loaded without override) can leak in."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from config.env import BACKEND_DIR
from config.tests.variables import SETTINGS_MODULES, variables_read_by

# What a child process prints: the settings named on its command line, as JSON.
SHOW_SETTINGS = """
import json, sys
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))
"""
# The same after a warning logged through the logging the settings configure.
LOG_AND_SHOW_SETTINGS = (
    'import logging, django; django.setup(); logging.getLogger("probe").warning("probe message")\n'
    + SHOW_SETTINGS
)


# Every NAME (and NAME_FILE) the settings modules read, so a child gets each one from us alone.
SETTINGS_VARIABLES = {
    variant for name in variables_read_by(*SETTINGS_MODULES) for variant in (name, f"{name}_FILE")
}


def sample_production_env() -> dict[str, str]:
    """config/settings/sample-prod.env: what `make check-deploy` loads the production settings with."""
    lines = (BACKEND_DIR / "config" / "settings" / "sample-prod.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


# Loading settings and running the checks contacts neither the database nor Redis.
PROD = sample_production_env()
PROD_REQUIRED = [
    "ALLOWED_HOSTS",
    "DB_NAME",
    "DB_USER",
    "DB_HOST",
    "DB_PORT",
    "SECRET_KEY",
    "DB_PASSWORD",
    "REDIS_URL",
]

LOCAL = {"DJANGO_SETTINGS_MODULE": "config.settings.local"}


def environment(values: dict[str, str], *, unset: tuple[str, ...] = ()) -> dict[str, str]:
    env = dict.fromkeys(SETTINGS_VARIABLES, "")
    env["PATH"] = os.defpath
    env.update(values)
    for name in unset:
        env.pop(name, None)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and scripts
        [sys.executable, *args],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_settings(env: dict[str, str], *names: str, log: bool = False) -> tuple[dict[str, Any], list[str]]:
    """The named settings, and the lines logged before them if ``log``."""
    result = run(["-c", LOG_AND_SHOW_SETTINGS if log else SHOW_SETTINGS, *names], env)
    assert result.returncode == 0, result.stderr
    *log_lines, last = result.stdout.strip().splitlines()
    return json.loads(last), log_lines


def start_up_error(env: dict[str, str]) -> str:
    """The exception line a process that fails to load its settings dies with."""
    result = run(["-c", "from django.conf import settings; settings.DEBUG"], env)
    assert result.returncode != 0, result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: "), result.stderr
    return last_line


def probe_line(log_lines: list[str]) -> str:
    [line] = [line for line in log_lines if "probe message" in line]
    return line


# ---------------------------------------------------------------- production


def test_prod_starts_with_every_required_variable_and_is_hardened():
    values, log_lines = load_settings(
        environment(PROD),
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SESSION_COOKIE_NAME",
        "LOGIN_DEVICE_COOKIE_NAME",
        "CSRF_COOKIE_NAME",
        "SECURE_PROXY_SSL_HEADER",
        "SECURE_SSL_REDIRECT",
        "CORS_ALLOWED_ORIGINS",
        "CSRF_TRUSTED_ORIGINS",
        "DATABASES",
        "CACHES",
        "LOG_FORMAT",
        log=True,
    )

    assert values["DEBUG"] is False
    assert values["SECRET_KEY"] == PROD["SECRET_KEY"]
    assert values["ALLOWED_HOSTS"] == ["api.example.com"]
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert values["LOGIN_DEVICE_COOKIE_NAME"] == "__Host-login_device"
    # The name every SPA reads (the spec's), as in development.
    assert values["CSRF_COOKIE_NAME"] == "csrftoken"
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["CORS_ALLOWED_ORIGINS"] == ["https://app.example.com"]
    assert values["CSRF_TRUSTED_ORIGINS"] == ["https://app.example.com"]
    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "core.db.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"], database["USER"], database["PASSWORD"]) == (
        PROD["DB_HOST"],
        int(PROD["DB_PORT"]),
        PROD["DB_NAME"],
        PROD["DB_USER"],
        PROD["DB_PASSWORD"],
    )
    assert values["CACHES"]["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert values["CACHES"]["default"]["LOCATION"] == PROD["REDIS_URL"]
    assert values["LOG_FORMAT"] == "json"
    record = json.loads(probe_line(log_lines))
    assert record["level"] == "WARNING"
    assert record["logger"] == "probe"
    assert record["message"] == "probe message"


def test_prod_reads_secrets_from_files(tmp_path: Path):
    files = {}
    for name, value in [
        ("SECRET_KEY", "k" * 25 + secrets.token_hex(20)),
        ("DB_PASSWORD", "db-password-from-file"),
        ("REDIS_URL", "redis://:from-file@redis:6379/1"),
    ]:
        (tmp_path / name).write_text(value + "\n")
        files[name] = value
    env = environment({**PROD, **dict.fromkeys(files, "")})
    env.update({f"{name}_FILE": str(tmp_path / name) for name in files})

    values, _ = load_settings(env, "SECRET_KEY", "DATABASES", "CACHES")

    assert values["SECRET_KEY"] == files["SECRET_KEY"]
    assert values["DATABASES"]["default"]["PASSWORD"] == files["DB_PASSWORD"]
    assert values["CACHES"]["default"]["LOCATION"] == files["REDIS_URL"]


def test_prod_signs_with_the_secret_key_files_first_line_and_verifies_with_the_next(tmp_path: Path):
    """The file `make rotate-secret` writes: the new key, then the one it replaced."""
    new, old = "n" * 25 + secrets.token_hex(20), "o" * 25 + secrets.token_hex(20)
    (tmp_path / "secret_key").write_text(f"{new}\n{old}\n")
    env = environment({**PROD, "SECRET_KEY": "", "SECRET_KEY_FILE": str(tmp_path / "secret_key")})

    values, _ = load_settings(env, "SECRET_KEY", "SECRET_KEY_FALLBACKS")

    assert values["SECRET_KEY"] == new
    assert values["SECRET_KEY_FALLBACKS"] == [old]


@pytest.mark.parametrize("name", PROD_REQUIRED)
def test_prod_refuses_to_start_without_a_required_variable(name):
    error = start_up_error(environment({**PROD, name: ""}))

    assert name in error
    others = [other for other in PROD_REQUIRED if other != name]
    assert not [other for other in others if re.search(rf"\b{other}\b", error)]


def test_prod_names_every_missing_variable_at_once():
    error = start_up_error(environment({**PROD, **dict.fromkeys(PROD_REQUIRED, "")}))

    for name in PROD_REQUIRED:
        assert name in error


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PORT", "postgres"),
        ("DB_PORT", "70000"),
        ("REDIS_URL", "http://:redis-hunter2@redis:6379/0"),
        ("CORS_ALLOWED_ORIGINS", "https://app.example.com/app"),
        ("CSRF_TRUSTED_ORIGINS", "app.example.com"),
        ("PASSWORD_RESET_URL", "https://app.example.com/reset?uid={uid}"),
        ("SECRET_KEY", "too-short-hunter2"),
        ("API_DOCS", "bogus"),
        ("LOG_FORMAT", "xml"),
        ("TRUSTED_PROXY_COUNT", "-1"),
        ("FORWARDED_ALLOW_IPS", "172.16.253.0/24,nginx"),
        # gunicorn would refuse it: host bits set after the prefix.
        ("FORWARDED_ALLOW_IPS", "172.16.253.5/24"),
        ("ADMIN_URL", "/admin"),
        ("ADMIN_URL", "api/admin/"),
        ("ADMIN_ALLOWED_NETWORKS", "192.0.2.0/24;rm"),
    ],
)
def test_prod_refuses_a_malformed_variable_naming_it(name, value):
    error = start_up_error(environment({**PROD, name: value}))

    assert re.search(rf"\b{name}\b", error)
    assert "malformed" in error
    assert "hunter2" not in error


def test_a_malformed_rate_stops_check_and_migrate_naming_the_variable():
    result = run(["manage.py", "check"], environment({**PROD, "THROTTLE_AUTH": "10/minute"}))

    assert result.returncode != 0
    assert "core.E004" in result.stderr
    assert "THROTTLE_AUTH" in result.stderr


def test_prod_passes_the_deployment_checks():
    result = run(["manage.py", "check", "--deploy", "--fail-level", "WARNING"], environment(PROD))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# ---------------------------------------------------------------- local development


def test_local_defaults_need_no_environment():
    values, log_lines = load_settings(
        environment(LOCAL),
        "DEBUG",
        "DATABASES",
        "CACHES",
        "EMAIL_BACKEND",
        "LOG_FORMAT",
        "API_DOCS",
        log=True,
    )

    assert values["DEBUG"] is True
    assert values["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASES"]["default"]["NAME"] == str(BACKEND_DIR / "db.sqlite3")
    assert values["CACHES"]["default"]["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
    assert values["EMAIL_BACKEND"] == "django.core.mail.backends.console.EmailBackend"
    assert values["API_DOCS"] == "public"
    assert values["LOG_FORMAT"] == "text"
    line = probe_line(log_lines)
    assert not line.startswith("{")
    assert "WARNING" in line
    assert "probe" in line


@pytest.mark.parametrize(("proxies", "expected"), [("", None), ("1", ["HTTP_X_FORWARDED_PROTO", "https"])])
def test_local_behind_a_proxy_trusts_its_forwarded_scheme(proxies, expected):
    """The dev compose stack puts nginx (TLS) in front of runserver: without the forwarded scheme,
    CSRF's origin check would refuse every form posted over https://localhost:8443."""
    env = environment({**LOCAL, "TRUSTED_PROXY_COUNT": proxies})
    values, _ = load_settings(env, "SECURE_PROXY_SSL_HEADER")

    assert values["SECURE_PROXY_SSL_HEADER"] == expected


def test_local_uses_postgresql_and_redis_when_configured():
    env = environment(
        {
            **LOCAL,
            "DB_HOST": "127.0.0.1",
            "DB_PORT": "55432",
            "DB_NAME": "app",
            "DB_USER": "app_user",
            "DB_PASSWORD": "db-password",
            "REDIS_URL": "redis://127.0.0.1:6379/3",
        }
    )

    values, _ = load_settings(env, "DEBUG", "DATABASES", "CACHES")

    assert values["DEBUG"] is True
    database = values["DATABASES"]["default"]
    assert database["ENGINE"] == "core.db.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"], database["USER"], database["PASSWORD"]) == (
        "127.0.0.1",
        55432,
        "app",
        "app_user",
        "db-password",
    )
    assert values["CACHES"]["default"]["BACKEND"] == "django_redis.cache.RedisCache"
    assert values["CACHES"]["default"]["LOCATION"] == "redis://127.0.0.1:6379/3"


@pytest.mark.parametrize("name", ["DB_NAME", "DB_USER", "DB_PASSWORD"])
def test_local_with_db_host_requires_the_other_db_variables(name):
    values = {
        **LOCAL,
        "DB_HOST": "127.0.0.1",
        "DB_NAME": "app",
        "DB_USER": "app_user",
        "DB_PASSWORD": "db-password",
    }
    error = start_up_error(environment({**values, name: ""}))

    assert name in error
    assert "required" in error


# ---------------------------------------------------------------- entry points

PRINT_SETTINGS_MODULE_AND_DEBUG = (
    "from django.conf import settings; print(os.environ['DJANGO_SETTINGS_MODULE'], settings.DEBUG)"
)


@pytest.mark.parametrize("module", ["config.wsgi", "config.asgi"])
def test_server_entry_points_default_to_prod_settings(module):
    code = f"import os, {module}; {PRINT_SETTINGS_MODULE_AND_DEBUG}"
    env = environment(PROD, unset=("DJANGO_SETTINGS_MODULE",))

    result = run(["-c", code], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.prod", "False"]


def test_manage_py_defaults_to_local_settings():
    code = f"import os; {PRINT_SETTINGS_MODULE_AND_DEBUG}"
    env = environment({}, unset=("DJANGO_SETTINGS_MODULE",))

    result = run(["manage.py", "shell", "-v", "0", "-c", code], env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["config.settings.local", "True"]
