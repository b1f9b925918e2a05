import pytest

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory
from testing import ME, assert_error, logged_in_id

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"


@pytest.mark.django_db
def test_signup_creates_the_user_and_logs_the_client_in(client):
    response = client.post(
        SIGNUP,
        {"email": "grace@example.com", "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    user = User.objects.get(email="grace@example.com")
    assert set(body) == {"id", "email", "first_name", "last_name", "date_joined"}
    assert body["id"] == user.pk
    assert body["email"] == "grace@example.com"
    assert (body["first_name"], body["last_name"]) == ("Grace", "Hopper")
    assert body["date_joined"]
    assert user.check_password(PASSWORD)
    assert PASSWORD not in response.content.decode()
    assert user.password not in response.content.decode()
    me = client.get(ME)
    assert me.status_code == 200
    assert me.json() == body


@pytest.mark.django_db
def test_signup_without_names_leaves_them_blank(client):
    response = client.post(SIGNUP, {"email": "nameless@example.com", "password": PASSWORD})

    assert response.status_code == 201, response.content
    assert (response.json()["first_name"], response.json()["last_name"]) == ("", "")


@pytest.mark.django_db
def test_signup_stores_the_email_lower_cased(client):
    response = client.post(SIGNUP, {"email": "Grace.Hopper@Example.COM", "password": PASSWORD})

    assert response.status_code == 201, response.content
    assert response.json()["email"] == "grace.hopper@example.com"
    assert list(User.objects.values_list("email", flat=True)) == ["grace.hopper@example.com"]


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["ada@example.com", "ADA@example.com", "Ada@Example.Com"])
def test_signup_with_a_taken_email_in_any_case_is_refused(client, email):
    UserFactory(email="ada@example.com")

    response = client.post(SIGNUP, {"email": email, "password": PASSWORD})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"email"}
    assert User.objects.count() == 1
    assert logged_in_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["not-an-email", "ada@", "@example.com", "", "a" * 250 + "@example.com"])
def test_signup_with_an_invalid_email_is_refused(client, email):
    response = client.post(SIGNUP, {"email": email, "password": PASSWORD})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"email"}
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Xk9#qT2!m", "This password is too short. It must contain at least 10 characters."),
        ("qwertyuiop", "This password is too common."),
        ("8203917465023", "This password is entirely numeric."),
        ("sebastian.kowalski", "The password is too similar to the email address."),
    ],
    ids=["too-short", "common", "numeric", "similar-to-email"],
)
def test_signup_with_a_weak_password_is_refused(client, password, message):
    response = client.post(SIGNUP, {"email": "sebastian.kowalski@example.com", "password": password})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {"password"}
    assert message in details["password"]
    assert not User.objects.exists()
    assert logged_in_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("length", [128, 256])
def test_signup_accepts_long_passwords(client, length):
    password = ("long passphrase " * 20)[:length]

    response = client.post(SIGNUP, {"email": "long@example.com", "password": password})

    assert response.status_code == 201, response.content
    assert User.objects.get(email="long@example.com").check_password(password)


@pytest.mark.django_db
def test_signup_refuses_a_password_over_256_characters(client):
    password = ("long passphrase " * 20)[:257]

    response = client.post(SIGNUP, {"email": "long@example.com", "password": password})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert details["password"] == ["This password is too long. It must contain at most 256 characters."]
    assert not User.objects.exists()


@pytest.mark.django_db
def test_signup_does_not_trim_the_password(client):
    password = f"  {PASSWORD}  "
    signup = client.post(SIGNUP, {"email": "spaces@example.com", "password": password})
    assert signup.status_code == 201, signup.content

    trimmed = client.post(LOGIN, {"email": "spaces@example.com", "password": PASSWORD})
    exact = client.post(LOGIN, {"email": "spaces@example.com", "password": password})

    assert_error(trimmed, 400, "INVALID_CREDENTIALS")
    assert exact.status_code == 200, exact.content


@pytest.mark.django_db
@pytest.mark.parametrize(
    "extra",
    [{"is_staff": True}, {"is_superuser": True}, {"is_active": False}, {"emial": "typo@example.com"}],
)
def test_signup_refuses_unknown_fields_and_creates_nobody(client, extra):
    response = client.post(SIGNUP, {"email": "eve@example.com", "password": PASSWORD, **extra})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == set(extra)
    assert not User.objects.exists()
    assert logged_in_id(client) is None


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["first_name", "last_name", "email", "password"])
@pytest.mark.parametrize("value", [0, 1.5, True, ["x"], {"x": 1}])
def test_signup_refuses_a_string_field_of_another_type(client, field, value):
    """The schema says string; DRF's CharField would take a number and store "0"."""
    body = {"email": "eve@example.com", "password": PASSWORD, field: value}

    response = client.post(SIGNUP, body)

    assert assert_error(response, 400, "VALIDATION_ERROR")["details"] == {field: ["Not a valid string."]}
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["email", "password"])
def test_signup_requires_email_and_password(client, missing):
    body = {"email": "grace@example.com", "password": PASSWORD}
    del body[missing]

    response = client.post(SIGNUP, body)

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {missing}
    assert not User.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_signup_refuses_names_over_150_characters(client, field):
    response = client.post(SIGNUP, {"email": "grace@example.com", "password": PASSWORD, field: "x" * 151})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert set(details) == {field}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_signup_while_logged_in_switches_to_the_new_account(user_client, user):
    response = user_client.post(SIGNUP, {"email": "second@example.com", "password": PASSWORD})

    assert response.status_code == 201, response.content
    assert logged_in_id(user_client) == response.json()["id"] != user.pk
