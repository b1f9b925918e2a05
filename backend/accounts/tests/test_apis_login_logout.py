from importlib import import_module

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session

from accounts.tests.factories import PASSWORD
from testing import ME, SpaClient, assert_error, logged_in_client, logged_in_id

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
WRONG_PASSWORD = "not the password at all"


def attempt(client, email, password, *, ip):
    # A different address per attempt where it matters, so the per-address `auth` throttle stays out of
    # the way of the per-account limit under test.
    return client.post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


def replay(session_key):
    """A fresh client presenting only this session cookie: the user id it is logged in as, or None."""
    client = SpaClient()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return logged_in_id(client)


def anonymous_session_key():
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store["planted"] = True
    store.create()
    return store.session_key


# ---------------------------------------------------------------- login


@pytest.mark.django_db
def test_login_returns_the_user_and_starts_a_session(client, user):
    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "email", "first_name", "last_name", "date_joined"}
    assert (body["id"], body["email"]) == (user.pk, user.email)
    assert (body["first_name"], body["last_name"]) == (user.first_name, user.last_name)
    assert client.session_key
    assert Session.objects.filter(session_key=client.session_key).exists()
    assert logged_in_id(client) == user.pk


@pytest.mark.django_db
def test_login_session_cookie_is_http_only_and_same_site_lax(client, user):
    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD})

    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


@pytest.mark.django_db
@pytest.mark.parametrize("transform", [str.upper, str.title, lambda email: f"  {email}  "])
def test_login_email_is_case_insensitive(client, user, transform):
    response = client.post(LOGIN, {"email": transform(user.email), "password": PASSWORD})

    assert response.status_code == 200, response.content
    assert logged_in_id(client) == user.pk


@pytest.mark.django_db
@pytest.mark.parametrize("previous", ["anonymous", "same_user", "other_user"])
def test_login_rotates_the_session_id(client, user, other_user, previous):
    if previous == "anonymous":
        # Session fixation: a session id planted before login must not become the logged-in one.
        client.cookies[settings.SESSION_COOKIE_NAME] = anonymous_session_key()
    else:
        client = logged_in_client(user if previous == "same_user" else other_user)
    old_key = client.session_key
    assert old_key

    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD})

    assert response.status_code == 200, response.content
    assert client.session_key
    assert client.session_key != old_key
    assert logged_in_id(client) == user.pk
    assert replay(old_key) is None
    assert not Session.objects.filter(session_key=old_key).exists()


@pytest.mark.django_db
def test_wrong_email_wrong_password_and_inactive_user_are_indistinguishable(user, inactive_user):
    attempts = {
        "unknown email": ("nobody@example.com", PASSWORD),
        "wrong password": (user.email, WRONG_PASSWORD),
        "inactive user": (inactive_user.email, PASSWORD),
    }
    responses = {}
    for name, (email, password) in attempts.items():
        client = SpaClient()
        responses[name] = attempt(client, email, password, ip="198.51.100.1")
        assert logged_in_id(client) is None, name

    assert_error(responses["unknown email"], 400, "INVALID_CREDENTIALS")
    bodies = {name: (response.status_code, response.json()) for name, response in responses.items()}
    assert bodies["wrong password"] == bodies["inactive user"] == bodies["unknown email"], bodies


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["email", "password"])
def test_login_requires_email_and_password(client, user, missing):
    body = {"email": user.email, "password": PASSWORD}
    del body[missing]

    details = assert_error(client.post(LOGIN, body), 400, "VALIDATION_ERROR")["details"]

    assert set(details) == {missing}


@pytest.mark.django_db
def test_login_refuses_unknown_fields(client, user):
    response = client.post(LOGIN, {"email": user.email, "password": PASSWORD, "remember_me": True})

    assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {"remember_me"}
    assert logged_in_id(client) is None


# ---------------------------------------------------------------- logout


@pytest.mark.django_db
def test_logout_deletes_the_session_server_side(user_client, user):
    session_key = user_client.session_key
    assert Session.objects.filter(session_key=session_key).exists()

    response = user_client.post(LOGOUT)

    assert response.status_code == 204, response.content
    assert response.content == b""
    assert not Session.objects.filter(session_key=session_key).exists()
    assert logged_in_id(user_client) is None
    # Someone who copied the cookie before logout gets nothing out of it.
    assert replay(session_key) is None
    assert_error(user_client.get(ME), 401, "NOT_AUTHENTICATED")


@pytest.mark.django_db
def test_logout_when_not_logged_in_is_401(client):
    assert_error(client.post(LOGOUT), 401, "NOT_AUTHENTICATED")
