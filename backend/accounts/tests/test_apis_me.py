import pytest
from django.conf import settings

from accounts.models import User
from testing import ME, SpaClient, assert_error


@pytest.mark.django_db
def test_me_returns_the_logged_in_user(user_client, user):
    response = user_client.get(ME)

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"id", "email", "first_name", "last_name", "date_joined"}
    assert (body["id"], body["email"]) == (user.pk, user.email)
    assert (body["first_name"], body["last_name"]) == (user.first_name, user.last_name)


@pytest.mark.django_db
def test_me_when_not_logged_in_is_401_with_www_authenticate(client):
    response = client.get(ME)

    assert_error(response, 401, "NOT_AUTHENTICATED")
    assert response["WWW-Authenticate"]


@pytest.mark.django_db
def test_the_session_check_sets_the_csrf_cookie_a_first_post_needs(user):
    """The API contract's flow with nothing else: GET auth/me on load (401), then the csrftoken cookie's
    value in X-CSRFToken; auth/csrf is never called."""
    client = SpaClient()
    assert_error(client.get(ME), 401, "NOT_AUTHENTICATED")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post(
        "/api/v1/auth/login", {"email": user.email, "password": "x"}, HTTP_X_CSRFTOKEN=token
    )

    assert_error(response, 400, "INVALID_CREDENTIALS")


@pytest.mark.django_db
def test_the_session_check_leaves_a_valid_csrf_cookie_alone(user_client):
    token = user_client.csrf_token()

    response = user_client.get(ME)

    assert response.status_code == 200
    assert settings.CSRF_COOKIE_NAME not in response.cookies
    assert user_client.cookies[settings.CSRF_COOKIE_NAME].value == token


@pytest.mark.django_db
def test_a_logged_in_session_check_without_the_csrf_cookie_gets_one(user_client):
    del user_client.cookies[settings.CSRF_COOKIE_NAME]

    response = user_client.get(ME)

    assert response.status_code == 200
    assert response.cookies[settings.CSRF_COOKIE_NAME].value


@pytest.mark.django_db
def test_me_is_401_once_the_user_is_deactivated(user_client, user):
    User.objects.filter(pk=user.pk).update(is_active=False)

    assert_error(user_client.get(ME), 401, "NOT_AUTHENTICATED")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [{"first_name": "Grace"}, {"last_name": "Hopper"}, {"first_name": "Grace", "last_name": "Hopper"}],
)
def test_patch_me_updates_the_names_given(user_client, user, changes):
    before = {"first_name": user.first_name, "last_name": user.last_name}

    response = user_client.patch(ME, changes)

    assert response.status_code == 200, response.content
    expected = {**before, **changes}
    assert {name: response.json()[name] for name in expected} == expected
    user.refresh_from_db()
    assert {"first_name": user.first_name, "last_name": user.last_name} == expected
    assert {name: user_client.get(ME).json()[name] for name in expected} == expected


@pytest.mark.django_db
def test_patch_me_can_blank_a_name(user_client, user):
    response = user_client.patch(ME, {"last_name": ""})

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.last_name == ""


@pytest.mark.django_db
@pytest.mark.parametrize(
    "changes",
    [
        {"email": "new@example.com"},
        {"email": "new@example.com", "first_name": "Grace"},
        {"is_staff": True},
        {"password": "a brand new passphrase"},
        {"id": 999},
    ],
)
def test_patch_me_refuses_fields_other_than_the_names(user_client, user, changes):
    before = User.objects.values().get(pk=user.pk)

    response = user_client.patch(ME, changes)

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == set(changes) - {"first_name"}
    assert User.objects.values().get(pk=user.pk) == before


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_patch_me_refuses_names_over_150_characters(user_client, user, field):
    before = getattr(user, field)

    response = user_client.patch(ME, {field: "x" * 151})

    assert set(assert_error(response, 400, "VALIDATION_ERROR")["details"]) == {field}
    user.refresh_from_db()
    assert getattr(user, field) == before


@pytest.mark.django_db
def test_patch_me_accepts_names_of_150_characters(user_client, user):
    response = user_client.patch(ME, {"first_name": "x" * 150})

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.first_name == "x" * 150


@pytest.mark.django_db
def test_patch_me_when_not_logged_in_is_401(client):
    assert_error(client.patch(ME, {"first_name": "Grace"}), 401, "NOT_AUTHENTICATED")


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["put", "delete", "post"])
def test_me_refuses_other_methods(user_client, user, method):
    response = getattr(user_client, method)(ME, {"first_name": "Grace"})

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "PATCH" in response["Allow"]
    assert User.objects.filter(pk=user.pk).exists()
    user.refresh_from_db()
    assert user.first_name != "Grace"
