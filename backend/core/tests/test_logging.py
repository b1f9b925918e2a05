"""core.logging: the JSON and text formats, the request id on each record, and no secrets in the log."""

import json
import logging
import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core import mail

from core import background, request_context
from core.logging import JsonFormatter, RequestContextFilter, TextFormatter, formatter_from_settings

REQUEST_ID = "req-0123456789"


class Captured:
    """A logger whose records go, through the given formatter and the request-context filter, to a
    string."""

    def __init__(self, formatter: logging.Formatter) -> None:
        self.stream = StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.addFilter(RequestContextFilter())
        self.handler.setFormatter(formatter)
        self.logger = logging.getLogger(f"core.tests.logging.{uuid.uuid4().hex}")
        self.logger.propagate = False
        self.logger.setLevel(logging.DEBUG)
        self.logger.addHandler(self.handler)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()

    def entries(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines()]

    def close(self) -> None:
        self.logger.removeHandler(self.handler)


@pytest.fixture
def json_log() -> Iterator[Captured]:
    captured = Captured(JsonFormatter())
    yield captured
    captured.close()


@pytest.fixture
def text_log() -> Iterator[Captured]:
    captured = Captured(TextFormatter())
    yield captured
    captured.close()


@pytest.fixture
def in_request() -> Iterator[str]:
    token = request_context.request_id.set(REQUEST_ID)
    yield REQUEST_ID
    request_context.request_id.reset(token)


# ---------------------------------------------------------------- JSON


def test_json_record_is_one_object_with_the_standard_fields(json_log, in_request):
    json_log.logger.warning("hello %s", "world")

    [entry] = json_log.entries()
    assert entry["level"] == "WARNING"
    assert entry["logger"] == json_log.logger.name
    assert entry["message"] == "hello world"
    assert entry["request_id"] == REQUEST_ID
    assert datetime.fromisoformat(entry["time"]).utcoffset() is not None


def test_json_record_outside_a_request_has_a_null_request_id(json_log):
    json_log.logger.info("at start-up")

    [entry] = json_log.entries()
    assert entry["request_id"] is None


def test_json_record_carries_the_access_fields(json_log, in_request):
    fields = {
        "method": "POST",
        "path": "/api/v1/auth/login",
        "status": 400,
        "duration_ms": 12.5,
        "user_id": 42,
        "client_ip": "203.0.113.7",
        "hostname": "3f2a9c1d7e5b",
    }

    json_log.logger.info("access", extra=fields)

    [entry] = json_log.entries()
    assert {name: entry[name] for name in fields} == fields


def test_json_record_turns_other_values_into_strings(json_log):
    user_id = uuid.uuid4()

    json_log.logger.info("access", extra={"user_id": user_id})

    [entry] = json_log.entries()
    assert entry["user_id"] == str(user_id)


def test_json_record_with_newlines_stays_on_one_line(json_log):
    json_log.logger.info("first line\nsecond line")

    [entry] = json_log.entries()
    assert entry["message"] == "first line\nsecond line"


def test_json_record_carries_the_traceback(json_log, in_request):
    try:
        raise ValueError("bad value")
    except ValueError:
        json_log.logger.exception("it failed")

    [entry] = json_log.entries()
    assert entry["level"] == "ERROR"
    assert entry["message"] == "it failed"
    assert entry["exc_info"].startswith("Traceback")
    assert "ValueError: bad value" in entry["exc_info"]
    assert entry["request_id"] == REQUEST_ID


def test_json_record_without_exception_has_no_exc_info(json_log):
    json_log.logger.error("no exception here")

    [entry] = json_log.entries()
    assert "exc_info" not in entry


# ---------------------------------------------------------------- text and the LOG_FORMAT setting


def test_text_record_shows_the_request_id(text_log, in_request):
    text_log.logger.warning("hello %s", "world")

    [line] = text_log.lines()
    assert f"[{REQUEST_ID}]" in line
    assert "WARNING" in line
    assert text_log.logger.name in line
    assert line.endswith("hello world")


@pytest.mark.parametrize("control", ["\n", "\r", "\r\n", "\x1b[2J", "\x85", "\u2028", "\x00"])
def test_text_record_escapes_control_characters(text_log, control):
    text_log.logger.warning("GET /api/v1/x%s2026-01-01 00:00:00,000 ERROR forged [-] line", control)

    [line] = text_log.stream.getvalue().removesuffix("\n").split("\n")
    assert "forged" in line
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", line)
    assert "\\x" in line or "\\u" in line


def test_a_forged_line_in_a_path_stays_in_the_access_line(client, settings):
    captured = Captured(TextFormatter())
    logging.getLogger("core.access").addHandler(captured.handler)
    try:
        client.get("/api/v1/auth/me%0a2026-01-01 00:00:00,000 INFO core.access [-] GET /admin/ 200")
    finally:
        logging.getLogger("core.access").removeHandler(captured.handler)

    [line] = captured.lines()
    assert "/api/v1/auth/me\\x0a2026-01-01" in line


def test_text_record_keeps_the_traceback_on_lines_of_its_own(text_log):
    try:
        raise ValueError("boom")
    except ValueError:
        text_log.logger.exception("failed")

    lines = text_log.lines()
    assert lines[0].endswith("failed")
    assert lines[1] == "Traceback (most recent call last):"


def test_text_record_outside_a_request_shows_a_dash(text_log):
    text_log.logger.info("at start-up")

    [line] = text_log.lines()
    assert "[-]" in line


@pytest.mark.parametrize(("log_format", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_formatter_follows_the_log_format_setting(settings, log_format, formatter):
    settings.LOG_FORMAT = log_format

    assert type(formatter_from_settings()) is formatter


# ---------------------------------------------------------------- no secrets


class Flow:
    """The SPA's requests, remembering every secret that passed between it and the server."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.secrets: dict[str, set[str]] = {"password": set(), "session": set(), "csrf": set()}
        self.requests = 0

    def request(self, method: str, path: str, data: Any = None, status: int = 200) -> Any:
        if method == "post":
            self.secrets["csrf"].add(self.client.csrf_token())  # sent as X-CSRFToken
        response = getattr(self.client, method)(path, data)
        self.requests += 1
        assert response.status_code == status, response.content
        for name, kind in [(settings.SESSION_COOKIE_NAME, "session"), (settings.CSRF_COOKIE_NAME, "csrf")]:
            if self.client.cookies.get(name) and self.client.cookies[name].value:
                self.secrets[kind].add(self.client.cookies[name].value)
        return response

    def password(self, label: str) -> str:
        password = f"{label} {uuid.uuid4().hex[:12]}"
        self.secrets["password"].add(password)
        return password


@pytest.mark.django_db(transaction=True)
def test_no_secret_reaches_the_log(client, app_log):
    flow = Flow(client)
    email = "secretive@example.com"
    first, wrong, second, third = (flow.password(label) for label in ("first", "wrong", "second", "third"))

    flow.secrets["csrf"].add(flow.request("get", "/api/v1/auth/csrf").json()["csrf_token"])
    flow.request("post", "/api/v1/auth/signup", {"email": email, "password": first}, 201)
    flow.request("get", "/api/v1/auth/me")
    flow.request("post", "/api/v1/auth/logout", status=204)
    flow.request("post", "/api/v1/auth/login", {"email": email, "password": wrong}, 400)
    flow.request("post", "/api/v1/auth/login", {"email": email, "password": first})
    flow.request(
        "post", "/api/v1/auth/password/change", {"current_password": first, "new_password": second}, 204
    )
    flow.request("get", "/api/v1/auth/me")
    flow.request("post", "/api/v1/auth/logout", status=204)
    flow.request("post", "/api/v1/auth/password/reset", {"email": email}, 202)
    background.drain()
    [message] = mail.outbox
    link = re.search(r"uid=(?P<uid>[\w-]+)&token=(?P<token>[\w-]+)", str(message.body))
    assert link, message.body
    uid, token = link["uid"], link["token"]
    flow.request(
        "post",
        "/api/v1/auth/password/reset/confirm",
        {"uid": uid, "token": token, "new_password": third},
        204,
    )
    flow.request("post", "/api/v1/auth/login", {"email": email, "password": third})
    flow.request("get", "/api/v1/auth/me")
    flow.request("post", "/api/v1/auth/logout", status=204)

    logged = app_log.getvalue()
    entries = [json.loads(line) for line in logged.splitlines()]
    # The capture saw the requests (and would have seen a secret in them).
    assert len([entry for entry in entries if entry["logger"] == "core.access"]) >= flow.requests
    assert all(flow.secrets.values())
    leaked = [
        (kind, secret) for kind, values in flow.secrets.items() for secret in values if secret in logged
    ]
    assert leaked == []
    assert token not in logged
    # The uid is short (the user id in base64), so only a standalone occurrence counts.
    assert not re.search(rf"(?<![\w-]){re.escape(uid)}(?![\w-])", logged)


def handlers_of(name: str) -> list[logging.Handler]:
    """Every handler a record of this logger reaches, walking up while loggers propagate (pytest's own
    capturing handlers aside)."""
    found: list[logging.Handler] = []
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        found += [
            handler for handler in logger.handlers if not type(handler).__module__.startswith("_pytest")
        ]
        logger = logger.parent if logger.propagate else None
    return found


@pytest.mark.parametrize("name", ["django.security.DisallowedHost", "django.request", "django.template"])
def test_django_records_reach_only_the_stdout_handler(name):
    """Django's own console handler (DEBUG on) would write each record a second time, unformatted."""
    assert [handler.name for handler in handlers_of(name)] == ["stdout"]
