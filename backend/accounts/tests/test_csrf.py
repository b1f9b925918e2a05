"""CSRF protection of every unsafe auth endpoint, for anonymous and logged-in clients alike."""

from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import mail
from django.middleware.csrf import REASON_BAD_ORIGIN, REASON_CSRF_TOKEN_MISSING, REASON_NO_CSRF_COOKIE
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from accounts.tests.factories import PASSWORD
from core import background
from testing import (
    ME,
    SpaClient,
    assert_error,
    assert_throttled,
    logged_in_client,
    logged_in_id,
    with_throttle_rates,
)

CSRF = "/api/v1/auth/csrf"
LOGIN = "/api/v1/auth/login"
UNTRUSTED_ORIGIN = "https://evil.example"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    needs_login: bool
    success_status: int

    def body(self, user: User, other_user: User) -> dict[str, Any]:
        user.refresh_from_db()
        return {
            "/api/v1/auth/signup": {"email": "mallory@example.com", "password": PASSWORD},
            # Logging the victim in as someone else (login CSRF).
            "/api/v1/auth/login": {"email": other_user.email, "password": PASSWORD},
            "/api/v1/auth/logout": {},
            "/api/v1/auth/password/change": {
                "current_password": PASSWORD,
                "new_password": "chosen by the attacker",
            },
            "/api/v1/auth/password/reset": {"email": user.email},
            "/api/v1/auth/password/reset/confirm": {
                "uid": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
                "new_password": "chosen by the attacker",
            },
            ME: {"first_name": "Mallory"},
        }[self.path]


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/signup", needs_login=False, success_status=201),
    Endpoint("POST", "/api/v1/auth/login", needs_login=False, success_status=200),
    Endpoint("POST", "/api/v1/auth/logout", needs_login=True, success_status=204),
    Endpoint("POST", "/api/v1/auth/password/change", needs_login=True, success_status=204),
    Endpoint("POST", "/api/v1/auth/password/reset", needs_login=False, success_status=202),
    Endpoint("POST", "/api/v1/auth/password/reset/confirm", needs_login=False, success_status=204),
    Endpoint("PATCH", ME, needs_login=True, success_status=200),
]
ENDPOINT_IDS = [f"{endpoint.method} {endpoint.path.removeprefix('/api/v1/auth/')}" for endpoint in ENDPOINTS]


def state(client: SpaClient) -> dict[str, Any]:
    """Everything a forged request could change: who the client is logged in as, with which session, the
    users and their passwords and names, and the mail sent."""
    background.drain()
    return {
        "logged_in_as": logged_in_id(client),
        "session": client.session_key,
        "users": list(
            User.objects.order_by("pk").values_list("email", "password", "first_name", "last_name")
        ),
        "mail": len(mail.outbox),
    }


def persona_client(persona: str, user: User) -> SpaClient:
    if persona == "logged_in":
        return logged_in_client(user)
    client = SpaClient()
    client.csrf_token()  # has the cookie, so only the header is missing
    return client


def send(client: SpaClient, endpoint: Endpoint, body: dict[str, Any], **extra: Any) -> Any:
    return getattr(client, endpoint.method.lower())(endpoint.path, body, **extra)


def forge(client: SpaClient, endpoint: Endpoint, body: dict[str, Any], attack: str) -> Any:
    if attack == "no_header":
        return send(client, endpoint, body, csrf=False)
    if attack == "no_cookie":
        del client.cookies[settings.CSRF_COOKIE_NAME]
        return send(client, endpoint, body, csrf=False)
    if attack == "wrong_token":
        # A well-formed token, but another client's: what a cross-site attacker could obtain.
        return send(client, endpoint, body, HTTP_X_CSRFTOKEN=SpaClient().csrf_token())
    assert attack == "untrusted_origin"
    return send(client, endpoint, body, HTTP_ORIGIN=UNTRUSTED_ORIGIN)


EXPECTED_REASON = {
    "no_header": lambda reason: reason == REASON_CSRF_TOKEN_MISSING,
    "no_cookie": lambda reason: reason == REASON_NO_CSRF_COOKIE,
    "wrong_token": lambda reason: "X-Csrftoken" in reason and "incorrect" in reason,
    "untrusted_origin": lambda reason: reason == REASON_BAD_ORIGIN % UNTRUSTED_ORIGIN,
}


@pytest.mark.django_db
@pytest.mark.parametrize("attack", list(EXPECTED_REASON))
@pytest.mark.parametrize("persona", ["anonymous", "logged_in"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_forged_request_is_refused_without_side_effects(user, other_user, endpoint, persona, attack):
    client = persona_client(persona, user)
    body = endpoint.body(user, other_user)
    before = state(client)

    response = forge(client, endpoint, body, attack)

    details = assert_error(response, 403, "CSRF_FAILED")["details"]
    assert EXPECTED_REASON[attack](details["reason"]), details
    assert state(client) == before


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["anonymous", "logged_in"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=ENDPOINT_IDS)
def test_same_request_with_the_token_goes_through(user, other_user, endpoint, persona):
    """The counterpart of the test above: the same bodies are accepted with a valid token, so the 403s
    there come from the CSRF check alone (and state() would have seen the change)."""
    client = persona_client(persona, user)
    body = endpoint.body(user, other_user)
    before = state(client)

    response = send(client, endpoint, body)

    if endpoint.needs_login and persona == "anonymous":
        assert_error(response, 401, "NOT_AUTHENTICATED")
        assert state(client) == before
    else:
        assert response.status_code == endpoint.success_status, response.content
        assert state(client) != before


@pytest.mark.django_db
def test_trusted_origin_is_accepted(client, user):
    response = client.post(
        LOGIN,
        {"email": user.email, "password": PASSWORD},
        HTTP_ORIGIN=settings.CSRF_TRUSTED_ORIGINS[0],
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_csrf_endpoint_sets_a_cookie_the_spa_can_read(client):
    response = client.get(CSRF)

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"csrf_token"}
    cookie = response.cookies[settings.CSRF_COOKIE_NAME]
    assert cookie.value
    assert not cookie["httponly"]
    assert cookie["samesite"] == "Lax"


@pytest.mark.django_db
def test_token_from_the_csrf_endpoint_body_works_as_header(client, user):
    token = client.get(CSRF).json()["csrf_token"]

    response = client.post(
        LOGIN, {"email": user.email, "password": PASSWORD}, csrf=False, HTTP_X_CSRFTOKEN=token
    )

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_token_from_the_csrf_endpoint_is_tied_to_its_cookie(client, user):
    token = client.get(CSRF).json()["csrf_token"]
    stranger = SpaClient()
    stranger.csrf_token()

    response = stranger.post(
        LOGIN, {"email": user.email, "password": PASSWORD}, csrf=False, HTTP_X_CSRFTOKEN=token
    )

    assert_error(response, 403, "CSRF_FAILED")
    assert logged_in_id(stranger) is None


@pytest.mark.django_db
def test_the_csrf_endpoint_does_not_load_the_session_or_the_user(
    user_client, session_loads, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = user_client.get(CSRF)

    assert response.status_code == 200
    assert session_loads == []


@pytest.mark.django_db
def test_the_csrf_endpoint_is_counted_per_address_under_the_anon_rate_logged_in_or_not(
    user_client, settings, clock
):
    clock.now += 60  # a new window: logging in counted under the anon rate too
    with_throttle_rates(settings, anon="2/m")
    anonymous = SpaClient()

    statuses = [user_client.get(CSRF).status_code, anonymous.get(CSRF).status_code]
    refused = user_client.get(CSRF)

    assert statuses == [200, 200]
    assert_throttled(refused, period=60)


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/mixed"]
)
def test_a_malformed_form_body_is_an_unsupported_media_type_not_a_crash(content_type):
    """The CSRF check reads form bodies for a csrfmiddlewaretoken field; a multipart body without a
    valid boundary made Django's parser raise, and the API answer 500."""
    client = SpaClient()

    response = client.generic("POST", LOGIN, b'{"email": "a@example.com"}', content_type=content_type)

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")
