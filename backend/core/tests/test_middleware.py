"""core.middleware.RequestMiddleware: the X-Request-ID of every response and log record, the one access
line per request, the Host check, no-store for the API, and health/live answered first."""

import json
import logging
import re
import socket
from typing import Any

import pytest

from core.middleware import access_logger
from testing import SpaClient, assert_error

LIVE = "/api/v1/health/live"
ME = "/api/v1/auth/me"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


def access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == access_logger.name]


@pytest.fixture
def access_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger=access_logger.name)
    return caplog


# ---------------------------------------------------------------- X-Request-ID


def test_request_id_is_generated_when_the_request_has_none(client):
    first = client.get(LIVE)["X-Request-ID"]
    second = client.get(LIVE)["X-Request-ID"]

    assert GENERATED_ID.fullmatch(first)
    assert GENERATED_ID.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "incoming",
    [
        "0123456789abcdef0123456789abcdef",
        "3f2b1c9e-7a1d-4c2e-9b1f-2a3c4d5e6f70",
        "edge.proxy_42-abc",
        "a" * 128,
    ],
)
def test_a_well_formed_incoming_request_id_is_kept(client, incoming):
    assert client.get(LIVE, HTTP_X_REQUEST_ID=incoming)["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 129,
        "has spaces in it",
        "abcdefgh\ninjected log line",
        "abcdefgh\r\nX-Injected: 1",
        "short",
        "",
        "abcdefgh;rm",
        "abcdéfghij",
    ],
)
def test_a_malformed_incoming_request_id_is_replaced(client, incoming):
    outgoing = client.get(LIVE, HTTP_X_REQUEST_ID=incoming)["X-Request-ID"]

    assert GENERATED_ID.fullmatch(outgoing)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "status"),
    [(LIVE, 200), (ME, 401), ("/api/nothing-here", 404), ("/admin/login/", 200), ("/nothing-here", 404)],
)
def test_every_response_carries_the_request_id(client, path, status):
    response = client.get(path, HTTP_X_REQUEST_ID="0123456789abcdef")

    assert response.status_code == status
    assert response["X-Request-ID"] == "0123456789abcdef"


def test_every_log_record_of_a_request_carries_its_request_id(client, db, app_log):
    client.csrf_token()
    app_log.truncate(0)
    app_log.seek(0)

    response = client.post(
        "/api/v1/auth/signup", {"email": "new@example.com", "password": "a fine passphrase"}
    )

    assert response.status_code == 201, response.content
    records = [json.loads(line) for line in app_log.getvalue().splitlines()]
    loggers = {record["logger"] for record in records}
    assert {"accounts.services", "core.access"} <= loggers
    assert {record["request_id"] for record in records} == {response["X-Request-ID"]}


# ---------------------------------------------------------------- access log


def test_one_access_record_per_request_with_its_facts(client, access_log):
    response = client.get(f"{ME}?token=secret-in-query&x=1", REMOTE_ADDR="198.51.100.23")

    [record] = access_records(access_log)
    assert record.levelno == logging.INFO
    fields: dict[str, Any] = record.__dict__
    assert fields["method"] == "GET"
    assert fields["path"] == ME
    assert fields["status"] == response.status_code == 401
    assert isinstance(fields["duration_ms"], float)
    assert fields["duration_ms"] >= 0
    assert fields["client_ip"] == "198.51.100.23"
    assert fields["user_id"] is None
    # Which container (a Swarm replica, one of several compose containers) served it.
    assert fields["hostname"] == socket.gethostname()
    assert "secret-in-query" not in record.getMessage()


def test_access_record_of_an_unsafe_request(client, db, access_log):
    client.csrf_token()
    access_log.clear()

    response = client.post(
        "/api/v1/auth/login", {"email": "nobody@example.com", "password": "wrong password"}
    )

    [record] = access_records(access_log)
    assert (record.method, record.path, record.status) == ("POST", "/api/v1/auth/login", 400)  # type: ignore[attr-defined]
    assert response.status_code == 400


def test_access_record_names_the_logged_in_user(user_client, user, access_log):
    access_log.clear()

    user_client.get(ME)

    [record] = access_records(access_log)
    assert record.user_id == user.pk  # type: ignore[attr-defined]


def test_successful_health_probes_are_logged_at_debug_only(client, db, caplog):
    caplog.set_level(logging.DEBUG, logger=access_logger.name)

    client.get(LIVE)
    client.get("/api/v1/health/ready")

    records = access_records(caplog)
    assert [(record.path, record.levelno) for record in records] == [  # type: ignore[attr-defined]
        (LIVE, logging.DEBUG),
        ("/api/v1/health/ready", logging.DEBUG),
    ]


@pytest.mark.urls("core.tests.urls")
def test_access_record_of_a_server_error_is_an_error(access_log):
    SpaClient(raise_request_exception=False).get("/api/test/plain-crash")

    [record] = access_records(access_log)
    assert record.status == 500  # type: ignore[attr-defined]
    assert record.levelno == logging.ERROR


def test_access_record_takes_the_client_address_from_the_trusted_proxy(client, settings, access_log):
    settings.TRUSTED_PROXY_COUNT = 1

    client.get(ME, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.99, 203.0.113.7")

    [record] = access_records(access_log)
    assert record.client_ip == "203.0.113.7"  # type: ignore[attr-defined]


def test_access_log_does_not_load_the_session_to_name_the_user(user_client, user, access_log, session_loads):
    access_log.clear()

    # Django's 404 page never looks at the user. (API views always do: DRF authenticates each request.)
    user_client.get("/nothing-here")

    [record] = access_records(access_log)
    assert record.user_id is None  # type: ignore[attr-defined]
    assert session_loads == []

    user_client.get(ME)  # one that does: now the session is loaded, by the view

    assert session_loads == [user_client.session_key]
    assert access_records(access_log)[-1].user_id == user.pk  # type: ignore[attr-defined]


# ---------------------------------------------------------------- a foreign Host


@pytest.mark.parametrize("debug", [False, True])
def test_a_foreign_host_under_the_api_is_the_json_400_also_with_debug(client, settings, caplog, debug):
    settings.DEBUG = debug

    response = client.get("/api/v1/auth/me", HTTP_HOST="evil.example.com")

    assert_error(response, 400, "BAD_REQUEST")
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert record.levelname == "WARNING"
    assert record.exc_info is None
    assert "evil.example.com" in record.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_foreign_host_outside_the_api_is_djangos_plain_400_also_with_debug(client, settings, caplog):
    settings.DEBUG = True

    response = client.get("/admin/login/", HTTP_HOST="evil.example.com")

    assert response.status_code == 400
    assert b"Traceback" not in response.content
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# ---------------------------------------------------------------- caching


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api/v1/auth/csrf", 200), ("/api/v1/health/live", 200), ("/api/v1/nothing", 404)],
)
def test_api_responses_are_not_stored_by_any_cache(client, path, status):
    response = client.get(path)

    assert response.status_code == status
    assert response["Cache-Control"] == "no-store"


def test_the_user_is_not_stored_by_any_cache(user_client):
    response = user_client.get("/api/v1/auth/me")

    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"


# ---------------------------------------------------------------- health/live, before the rest of the chain


class ChainSpy:
    """A middleware placed right after RequestMiddleware: records the paths that reach the rest."""

    paths: list[str] = []

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        ChainSpy.paths.append(request.path)
        return self.get_response(request)


@pytest.fixture
def chain_spy(settings):
    ChainSpy.paths = []
    first, *rest = settings.MIDDLEWARE
    settings.MIDDLEWARE = [first, f"{__name__}.ChainSpy", *rest]
    return ChainSpy.paths


def test_health_live_is_answered_before_the_rest_of_the_chain(
    client, db, chain_spy, django_assert_num_queries
):
    with django_assert_num_queries(0):
        live = client.get(LIVE)
        head = client.head(LIVE)
    other = client.get("/api/v1/auth/csrf")

    assert (live.status_code, live["Content-Type"], live.json()) == (
        200,
        "application/json",
        {"status": "ok"},
    )
    assert live["Cache-Control"] == "no-store"
    assert GENERATED_ID.fullmatch(live["X-Request-ID"])
    assert head.status_code == 200
    assert other.status_code == 200
    assert chain_spy == ["/api/v1/auth/csrf"]


@pytest.mark.parametrize(
    ("method", "accept", "status"), [("post", "application/json", 405), ("get", "text/html", 406)]
)
def test_what_health_live_does_not_answer_first_goes_to_its_view(client, chain_spy, method, accept, status):
    # csrf=False: the view is reached without a CSRF token (health/live has no authentication).
    response = client.generic(method.upper(), LIVE, HTTP_ACCEPT=accept, csrf=False)

    assert response.status_code == status
    assert chain_spy == [LIVE]


def test_a_foreign_host_is_refused_before_health_live_answers(client):
    response = client.get(LIVE, HTTP_HOST="evil.example.com")

    assert_error(response, 400, "BAD_REQUEST")


# ---------------------------------------------------------------- the CSRF cookie's former name


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/auth/csrf", "/admin/login/"])
def test_a_browser_holding_the_former_csrf_cookie_is_told_to_drop_it(client, path):
    client.cookies["__Host-csrftoken"] = "a" * 32

    response = client.get(path)

    dropped = response.cookies["__Host-csrftoken"]
    assert (dropped.value, dropped["max-age"], dropped["path"]) == ("", 0, "/")
    assert dropped["secure"] is True  # a browser takes a __Host- cookie, and so its deletion, only so


@pytest.mark.django_db
def test_a_browser_without_it_gets_no_deletion(client):
    assert "__Host-csrftoken" not in client.get("/api/v1/auth/csrf").cookies


# ---------------------------------------------------------------- X-Forwarded-* only from nginx

CSRF = "/api/v1/auth/csrf"
NGINX_NETWORK = "172.16.253.0/24"


@pytest.fixture
def behind_nginx(settings):
    """prod.py's proxy settings, with nginx's network the only trusted one."""
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.SECURE_SSL_REDIRECT = True
    settings.TRUSTED_PROXY_COUNT = 1
    settings.FORWARDED_ALLOW_IPS = [NGINX_NETWORK]
    return settings


def test_a_peer_past_nginx_cannot_claim_https_or_an_address(client, behind_nginx, access_log):
    forged = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "6.6.6.6"}

    response = client.get(CSRF, REMOTE_ADDR="10.11.0.3", **forged)

    # Plain HTTP, as it really came: redirected to HTTPS, not served as if nginx had terminated TLS.
    assert response.status_code == 301
    [record] = access_records(access_log)
    assert record.client_ip == "10.11.0.3"  # type: ignore[attr-defined]


def test_nginx_is_believed(client, behind_nginx, access_log):
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 203.0.113.7"}

    response = client.get(CSRF, REMOTE_ADDR="172.16.253.4", **forwarded)

    assert response.status_code == 200
    [record] = access_records(access_log)
    assert record.client_ip == "203.0.113.7"  # type: ignore[attr-defined]
