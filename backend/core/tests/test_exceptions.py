"""Every error of the API has the body {"message", "code", "details"} and its code's status, whether DRF,
a service, Django's middleware or Django's URL and crash handlers produced it."""

import json
import logging
from io import BytesIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import EMAIL_TAKEN
from core import errors, health
from core.errors import ErrorCode
from core.exceptions import RequestTooLarge
from core.logging import RequestContextFilter
from core.parsers import JSONParser, nesting_exceeds
from core.tests.urls import CRASH_MESSAGE
from testing import SpaClient, assert_error, with_throttle_rates

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"
CSRF = "/api/v1/auth/csrf"
STRONG_PASSWORD = "a perfectly fine passphrase"

with_test_views = pytest.mark.urls("core.tests.urls")


def error_body(response: Any, code: ErrorCode) -> dict[str, Any]:
    """The body of an error response with this code, after checking its shape and status."""
    return assert_error(response, code.status, code.code)


# ---------------------------------------------------------------- 400


def test_validation_error_lists_messages_per_field(client, db):
    body = error_body(client.post(SIGNUP, {}), errors.VALIDATION_ERROR)

    assert set(body["details"]) == {"email", "password"}
    for messages in body["details"].values():
        assert messages
        assert all(isinstance(message, str) for message in messages)


def test_validation_error_for_a_body_that_is_not_an_object(client, db):
    body = error_body(client.post(SIGNUP, [1, 2]), errors.VALIDATION_ERROR)

    assert list(body["details"]) == ["non_field_errors"]


def test_django_validation_error_from_a_service_keeps_its_field(client, user):
    response = client.post(SIGNUP, {"email": user.email, "password": STRONG_PASSWORD})

    body = error_body(response, errors.VALIDATION_ERROR)
    assert body["details"] == {"email": [EMAIL_TAKEN]}


@with_test_views
@pytest.mark.parametrize(
    ("name", "details"),
    [
        ("validation-plain", {"non_field_errors": ["Something about the request as a whole is wrong."]}),
        ("validation-non-field", {"non_field_errors": ["These fields do not go together."]}),
        ("validation-field", {"email": ["This email is not allowed."]}),
    ],
)
def test_django_validation_errors_map_to_validation_error(client, name, details):
    response = client.get(f"/api/test/django-exception/{name}")

    assert error_body(response, errors.VALIDATION_ERROR)["details"] == details


@with_test_views
@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("http404", errors.NOT_FOUND),
        ("permission-denied", errors.PERMISSION_DENIED),
        ("data-too-big", errors.REQUEST_TOO_LARGE),
    ],
)
def test_django_exceptions_raised_in_api_views_get_their_code(client, name, code):
    error_body(client.get(f"/api/test/django-exception/{name}"), code)


def test_malformed_json_is_a_parse_error(client):
    response = client.post(LOGIN, '{"email": "a@example.com", ', content_type="application/json")

    error_body(response, errors.PARSE_ERROR)


def test_wrong_credentials(client, user):
    response = client.post(LOGIN, {"email": user.email, "password": "not the password"})

    error_body(response, errors.INVALID_CREDENTIALS)


def test_invalid_reset_token(client, user):
    response = client.post(
        "/api/v1/auth/password/reset/confirm",
        {"uid": "MQ", "token": "not-a-token", "new_password": STRONG_PASSWORD},
    )

    error_body(response, errors.INVALID_TOKEN)


# ---------------------------------------------------------------- 401, 403


def test_not_authenticated_asks_for_a_session(client):
    response = client.get(ME)

    error_body(response, errors.NOT_AUTHENTICATED)
    assert response["WWW-Authenticate"] == 'Session realm="api"'


@with_test_views
def test_permission_denied_for_a_logged_in_user(user_client):
    error_body(user_client.get("/api/test/admin-only"), errors.PERMISSION_DENIED)


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/schema"])
def test_staff_only_docs_deny_other_users_in_the_api_shape(user_client, settings, path):
    settings.API_DOCS = "staff"

    error_body(user_client.get(path), errors.PERMISSION_DENIED)


def test_csrf_failure_in_an_api_view(client, db):
    response = client.post(LOGIN, {"email": "a@example.com", "password": "whatever"}, csrf=False)

    body = error_body(response, errors.CSRF_FAILED)
    assert isinstance(body["details"]["reason"], str)
    assert body["details"]["reason"]


def test_csrf_failure_with_a_wrong_token(client, db):
    client.csrf_token()

    response = client.post(LOGIN, {"email": "a@example.com", "password": "x"}, HTTP_X_CSRFTOKEN="x" * 32)

    assert error_body(response, errors.CSRF_FAILED)["details"]["reason"]


@with_test_views
def test_csrf_failure_from_django_middleware_under_api_is_json(client):
    assert client.post("/api/test/plain-post", {}).json() == {"ok": True}

    response = client.post("/api/test/plain-post", {}, csrf=False)

    body = error_body(response, errors.CSRF_FAILED)
    assert body["details"]["reason"]


def test_csrf_failure_outside_the_api_is_djangos_page(db):
    client = Client(enforce_csrf_checks=True)

    response = client.post("/admin/login/", {"username": "a@example.com", "password": "x"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in response.content


# ---------------------------------------------------------------- 404, 405, 406


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/nothing-here", "/api/v1/nothing/here", f"{ME}/"])
def test_unmatched_api_url_is_not_found(client, settings, debug, method, path):
    settings.DEBUG = debug

    error_body(getattr(client, method)(path), errors.NOT_FOUND)


def test_unmatched_url_outside_the_api_is_not_json(client):
    response = client.get("/nothing-here")

    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_method_not_allowed_names_the_allowed_ones(client):
    response = client.get(LOGIN)

    error_body(response, errors.METHOD_NOT_ALLOWED)
    allowed = {method.strip() for method in response["Allow"].split(",")}
    assert "POST" in allowed
    assert "GET" not in allowed


def test_not_acceptable_when_the_client_does_not_take_json(client):
    response = client.get("/api/v1/health/live", HTTP_ACCEPT="text/html")

    error_body(response, errors.NOT_ACCEPTABLE)


# ---------------------------------------------------------------- 413, 415


def test_body_over_the_limit_is_refused(client):
    padding = "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.post(
        LOGIN, json.dumps({"email": padding, "password": "x"}), content_type="application/json"
    )

    error_body(response, errors.REQUEST_TOO_LARGE)


def test_form_body_over_the_limit_is_refused(client):
    body = "email=" + "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = client.post(LOGIN, body, content_type="application/x-www-form-urlencoded")

    error_body(response, errors.REQUEST_TOO_LARGE)


LIMIT = 32


@pytest.fixture
def small_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT


def json_of_length(length: int) -> bytes:
    body = json.dumps({"a": "x" * (length - len('{"a": ""}'))}).encode()
    assert len(body) == length
    return body


def parse(body: bytes, content_length: str | None) -> Any:
    meta = {} if content_length is None else {"CONTENT_LENGTH": content_length}
    request = SimpleNamespace(META=meta)
    return JSONParser().parse(BytesIO(body), "application/json", {"request": request})


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize("content_length", [None, "", "2", "chunked"])
def test_parser_refuses_a_long_body_whatever_content_length_says(content_length):
    with pytest.raises(RequestTooLarge):
        parse(json_of_length(LIMIT + 1), content_length)


@pytest.mark.usefixtures("small_limit")
def test_parser_refuses_a_declared_length_over_the_limit_before_reading():
    class Unread(BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            raise AssertionError("the body was read")

    request = SimpleNamespace(META={"CONTENT_LENGTH": str(LIMIT + 1)})

    with pytest.raises(RequestTooLarge):
        JSONParser().parse(Unread(), "application/json", {"request": request})


@pytest.mark.usefixtures("small_limit")
@pytest.mark.parametrize("content_length", [None, str(LIMIT)])
def test_parser_accepts_a_body_of_exactly_the_limit(content_length):
    body = json_of_length(LIMIT)

    assert parse(body, content_length) == json.loads(body)


def test_form_encoded_body_is_unsupported(client):
    response = client.post(
        LOGIN, "email=a%40example.com&password=x", content_type="application/x-www-form-urlencoded"
    )

    error_body(response, errors.UNSUPPORTED_MEDIA_TYPE)


# ---------------------------------------------------------------- 429


def test_throttled_says_when_to_retry(client, settings):
    # One request a year: the second is refused whenever the test runs.
    with_throttle_rates(settings, anon="1/365d")
    assert client.get(CSRF).status_code == 200

    response = client.get(CSRF)

    body = error_body(response, errors.THROTTLED)
    wait = body["details"]["wait"]
    assert isinstance(wait, int)
    assert wait >= 1
    assert response["Retry-After"] == str(wait)


# ---------------------------------------------------------------- 500, 503


@pytest.fixture
def error_records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """caplog, with the request id on each record as the configured log handler adds it."""
    caplog.handler.addFilter(RequestContextFilter())
    return caplog


def crash_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.exc_info
        and isinstance(record.exc_info[1], RuntimeError)
        and str(record.exc_info[1]) == CRASH_MESSAGE
    ]


def assert_internal_error(response: Any, caplog: pytest.LogCaptureFixture) -> None:
    body = error_body(response, errors.INTERNAL_ERROR)
    request_id = response["X-Request-ID"]
    assert body["details"] == {"request_id": request_id}
    assert CRASH_MESSAGE not in response.content.decode()
    assert "Traceback" not in response.content.decode()
    assert "RuntimeError" not in response.content.decode()
    [record] = crash_records(caplog)
    assert record.request_id == request_id  # type: ignore[attr-defined]


@with_test_views
def test_crash_in_an_api_view_is_logged_and_answered_with_the_request_id(client, error_records):
    assert_internal_error(client.get("/api/test/crash"), error_records)


@with_test_views
def test_crash_in_a_plain_view_under_api_is_json(error_records):
    client = SpaClient(raise_request_exception=False)

    assert_internal_error(client.get("/api/test/plain-crash"), error_records)


def test_service_unavailable_names_the_failed_check(client, monkeypatch):
    def database_down() -> None:
        raise OSError("connection refused")

    monkeypatch.setitem(health.CHECKS, "database", database_down)

    body = error_body(client.get("/api/v1/health/ready"), errors.SERVICE_UNAVAILABLE)
    assert body["details"]["checks"]["database"] != health.OK


# ---------------------------------------------------------------- outside any view


def test_request_rejected_by_django_before_any_view_is_json_under_api(client):
    # A Host header not in ALLOWED_HOSTS: Django refuses the request with a 400 before routing it.
    response = client.get(ME, HTTP_HOST="evil.example.com")

    error_body(response, errors.BAD_REQUEST)


def test_request_rejected_by_django_outside_the_api_is_djangos_page(client):
    response = client.get("/admin/login/", HTTP_HOST="evil.example.com")

    assert response.status_code == 400
    assert not response["Content-Type"].startswith("application/json")


@with_test_views
def test_permission_denied_in_a_plain_view_under_api_is_json(client):
    error_body(client.get("/api/test/plain-forbidden"), errors.PERMISSION_DENIED)


# ---------------------------------------------------------------- 503: the database or Redis did not answer


def assert_unavailable(response: Any) -> dict[str, Any]:
    body = error_body(response, errors.SERVICE_UNAVAILABLE)
    assert response["Retry-After"] == str(errors.RETRY_AFTER_UNAVAILABLE)
    for detail in ("127.0.0.1", "refused", "Traceback", "Error"):
        assert detail not in response.content.decode()
    return body


@with_test_views
@pytest.mark.parametrize("dependency", ["database", "redis"])
def test_an_unreachable_dependency_in_an_api_view_is_503(client, db, caplog, dependency):
    assert_unavailable(client.get(f"/api/test/dependency-down/{dependency}"))

    [warning] = [record for record in caplog.records if record.name == "core.errors"]
    assert warning.levelname == "WARNING"
    assert warning.getMessage().startswith("Service unavailable: ")


@with_test_views
@pytest.mark.parametrize("dependency", ["database", "redis"])
def test_an_unreachable_dependency_outside_drf_is_503_under_api(db, dependency):
    client = SpaClient(raise_request_exception=False)

    assert_unavailable(client.get(f"/api/test/plain-dependency-down/{dependency}"))


def nested(depth: int) -> str:
    """A login body whose arrays and objects nest `depth` levels (the body's object is the first)."""
    return '{"email": ' + "[" * (depth - 1) + "]" * (depth - 1) + ', "password": "x"}'


def test_json_nested_to_the_limit_reaches_validation(client, settings):
    response = client.post(LOGIN, nested(settings.JSON_MAX_DEPTH), content_type="application/json")

    assert "email" in error_body(response, errors.VALIDATION_ERROR)["details"]


@pytest.mark.parametrize("extra", [1, 1_000, 100_000])
def test_json_nested_past_the_limit_is_a_parse_error_that_never_reaches_the_parser(
    client, caplog, settings, monkeypatch, extra
):
    parsed = []

    def load(*args, **kwargs):
        parsed.append(args)
        return {}

    monkeypatch.setattr("rest_framework.parsers.json.load", load)

    response = client.post(LOGIN, nested(settings.JSON_MAX_DEPTH + extra), content_type="application/json")

    body = error_body(response, errors.PARSE_ERROR)
    assert body["message"] == (
        f"JSON parse error - nested too deeply (more than {settings.JSON_MAX_DEPTH} levels)."
    )
    assert parsed == []
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ('"[[[["', 0),
        ("[]", 1),
        ('{"a": [{"b": []}]}', 4),
        ("[[], [[]], []]", 3),
        (r'["]]]", ["\\"]]', 2),
        (r'["\\", "[[[[[[", [[]]]', 3),
        (r'["a\"[[["]', 1),
        ("[" * 10 + "]" * 10, 10),
    ],
)
def test_nesting_is_counted_outside_strings(text, depth):
    assert json.loads(text) is not None
    assert not nesting_exceeds(text, depth)
    if depth:
        assert nesting_exceeds(text, depth - 1)


def test_nesting_after_a_syntax_error_still_counts():
    assert nesting_exceeds('{"a": x' + "[" * 10 + "]" * 10 + "}", 4)


def test_brackets_in_strings_do_not_count(client, db):
    response = client.post(LOGIN, {"email": "[" * 200, "password": '"]\\' + "{" * 1_000})

    error_body(response, errors.INVALID_CREDENTIALS)


def test_a_body_that_is_not_utf8_is_a_parse_error(client):
    response = client.post(LOGIN, b'{"email": "\xff", "password": "x"}', content_type="application/json")

    error_body(response, errors.PARSE_ERROR)
