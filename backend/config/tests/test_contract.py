"""The API contract's literal names (SYSTEM_CONTEXT.md, the specification every frontend is written from):
paths, the CSRF cookie and header, the error body's keys, the `auth` throttle scope and the exception
handler, held against the local and the production settings alike, so that a name cannot change in one
environment only. The names are written here as the specification quotes them, and checked to be its
own words where it lies beside the checkout (../shared/spec, as in CI)."""

import json
import re

import pytest
from django.urls import reverse
from django.utils.module_loading import import_string
from rest_framework import exceptions

from accounts import apis
from config.env import BACKEND_DIR
from config.tests.test_settings import LOCAL, PROD, PROD_REQUIRED, environment, load_settings, run
from core.authentication import SessionAuthentication
from core.exceptions import custom_exception_handler

SPEC = BACKEND_DIR.parent.parent / "shared" / "spec" / "SYSTEM_CONTEXT.md"

CSRF_COOKIE = "csrftoken"
CSRF_HEADER = "X-CSRFToken"
BASE_URL = "/api/v1/"
SESSION_CHECK = "/api/v1/auth/me"
ERROR_KEYS = ("message", "code", "details")
AUTH_SCOPE = "auth"
EXCEPTION_HANDLER = "custom_exception_handler"
EXCEPTION_MODULE = "core/exceptions.py"
SESSION_AUTHENTICATION = "rest_framework.authentication.SessionAuthentication"
DEFAULT_PERMISSION = "IsAuthenticated"

# Where the specification says each name.
QUOTED = {
    CSRF_COOKIE: f"`{CSRF_COOKIE}` cookie",
    CSRF_HEADER: f"`{CSRF_HEADER}` HTTP header",
    BASE_URL: f"prefixed with `{BASE_URL}`",
    SESSION_CHECK: f"`GET {SESSION_CHECK}`",
    AUTH_SCOPE: f"The `{AUTH_SCOPE}` scope",
    EXCEPTION_HANDLER: f"`{EXCEPTION_MODULE}` via `{EXCEPTION_HANDLER}`",
    SESSION_AUTHENTICATION: f"`{SESSION_AUTHENTICATION}`",
    DEFAULT_PERMISSION: f"Global default is `{DEFAULT_PERMISSION}`",
}

CONTRACT_SETTINGS = (
    "CSRF_COOKIE_NAME",
    "CSRF_HEADER_NAME",
    "CSRF_COOKIE_HTTPONLY",
    "CSRF_COOKIE_SAMESITE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_SECURE",
    "REST_FRAMEWORK",
)


def test_the_names_here_are_the_specifications_own():
    if not SPEC.exists():
        pytest.skip(f"{SPEC} is not beside this checkout (CI has it)")
    text = SPEC.read_text()
    for name, quoted in QUOTED.items():
        assert quoted in text, name
    [error_body] = re.findall(r"```json\n(\{.*?\})\n```", text, re.DOTALL)
    assert tuple(json.loads(error_body)) == ERROR_KEYS


@pytest.mark.parametrize(("settings_module", "secure"), [(LOCAL, False), (PROD, True)], ids=["local", "prod"])
def test_the_settings_keep_the_contracts_names(settings_module, secure):
    values, _ = load_settings(environment(settings_module), *CONTRACT_SETTINGS)

    assert values["CSRF_COOKIE_NAME"] == CSRF_COOKIE
    assert values["CSRF_HEADER_NAME"] == "HTTP_" + CSRF_HEADER.upper().replace("-", "_")
    # The SPA reads the CSRF cookie; it never sees the session's.
    assert values["CSRF_COOKIE_HTTPONLY"] is False
    assert values["SESSION_COOKIE_HTTPONLY"] is True
    assert values["CSRF_COOKIE_SAMESITE"] == values["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert values["CSRF_COOKIE_SECURE"] is values["SESSION_COOKIE_SECURE"] is secure
    rest = values["REST_FRAMEWORK"]
    assert rest["EXCEPTION_HANDLER"] == f"core.exceptions.{EXCEPTION_HANDLER}"
    assert AUTH_SCOPE in rest["DEFAULT_THROTTLE_RATES"]
    assert rest["DEFAULT_PERMISSION_CLASSES"] == [f"rest_framework.permissions.{DEFAULT_PERMISSION}"]
    [authentication] = rest["DEFAULT_AUTHENTICATION_CLASSES"]
    assert authentication == "core.authentication.SessionAuthentication"


def test_the_default_authentication_is_drfs_session_authentication():
    assert issubclass(SessionAuthentication, import_string(SESSION_AUTHENTICATION))


def test_every_api_path_is_under_the_base_url_and_the_session_check_is_where_the_spec_says():
    assert reverse("auth-me") == SESSION_CHECK
    assert reverse("auth-login").startswith(BASE_URL)


@pytest.mark.parametrize("view", [apis.AuthSignupApi, apis.AuthLoginApi, apis.PasswordResetApi])
def test_the_auth_scope_throttles_the_public_sensitive_endpoints(view):
    assert view.throttle_scope == AUTH_SCOPE


def test_the_error_body_has_the_contracts_keys():
    response = custom_exception_handler(exceptions.NotAuthenticated(), {})

    assert tuple(response.data) == ERROR_KEYS


# ---------------------------------------------------------------- what differs between the environments

# The settings whose effect a client sees: cookies, CSRF, CORS, the HTTPS handling, the API docs, DEBUG,
# the limits on bodies and passwords, and DRF's (errors, throttles, authentication).
CLIENT_VISIBLE = re.compile(
    r"(SESSION_COOKIE|LOGIN_DEVICE_COOKIE|CSRF|CORS|SECURE)_[A-Z_]+|DEBUG|API_DOCS|APPEND_SLASH|X_FRAME_OPTIONS"
    r"|DATA_UPLOAD_MAX_MEMORY_SIZE|JSON_MAX_DEPTH|PASSWORD_M(IN|AX)_LENGTH|REST_FRAMEWORK"
)
SHOW_CLIENT_VISIBLE_SETTINGS = """
import json, re, sys
from django.conf import settings
pattern = re.compile(sys.argv[1])
names = [name for name in dir(settings) if pattern.fullmatch(name)]
print(json.dumps({name: getattr(settings, name) for name in names}, default=str))
"""
FRONTEND_DOC = BACKEND_DIR.parent / "docs" / "frontend.md"


def listed_differences() -> set[str]:
    """The first column's names of docs/frontend.md's "What differs between development and production"."""
    section = FRONTEND_DOC.read_text().split("## What differs between development and production", 1)[1]
    section = section.split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def client_visible_defaults(env: dict[str, str]) -> dict[str, object]:
    result = run(["-c", SHOW_CLIENT_VISIBLE_SETTINGS, CLIENT_VISIBLE.pattern], env)
    assert result.returncode == 0, result.stderr
    values: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return values


def test_every_setting_a_client_sees_that_differs_in_production_is_listed_in_the_frontend_guide():
    """By their defaults: local settings with no variable set, production settings with only the
    required ones."""
    local = client_visible_defaults(environment(LOCAL))
    prod = client_visible_defaults(
        environment(
            {"DJANGO_SETTINGS_MODULE": PROD["DJANGO_SETTINGS_MODULE"]}
            | {name: PROD[name] for name in PROD_REQUIRED}
        )
    )
    assert "CSRF_COOKIE_NAME" in local
    assert "REST_FRAMEWORK" in prod

    differing = {name for name in local.keys() | prod.keys() if local.get(name) != prod.get(name)}

    assert differing == {name for name in listed_differences() if CLIENT_VISIBLE.fullmatch(name)}
