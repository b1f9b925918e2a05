"""accounts.backends.EmailBackend: the user of a session looked up with one prepared SELECT, the same user
the ORM gives, and a wrong password hashed once although two backends are configured."""

from typing import cast

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.hashers import MD5PasswordHasher

from accounts.backends import EmailBackend
from accounts.models import User
from accounts.selectors import user_get_for_session
from accounts.tests.factories import PASSWORD, UserFactory
from testing import ME, SpaClient

pytestmark = pytest.mark.django_db


def test_the_session_lookup_gives_every_field_the_orm_gives(user):
    found = user_get_for_session(pk=user.pk)

    expected = User.objects.get(pk=user.pk)
    assert found is not None
    assert {field.attname: getattr(found, field.attname) for field in User._meta.concrete_fields} == {
        field.attname: getattr(expected, field.attname) for field in User._meta.concrete_fields
    }
    assert found._state.adding is False
    assert found._state.db == "default"


def test_the_session_lookup_of_a_missing_user_is_none(user):
    assert user_get_for_session(pk=user.pk + 1000) is None


def test_the_session_lookup_is_one_query(user, django_assert_num_queries):
    with django_assert_num_queries(1):
        user_get_for_session(pk=user.pk)


@pytest.mark.parametrize("user_id", ["", "abc", None, "1.5"])
def test_a_malformed_user_id_in_a_session_is_nobody(user_id):
    assert EmailBackend().get_user(user_id) is None


def test_a_deactivated_user_is_nobody():
    user = cast(User, UserFactory(is_active=False))

    assert EmailBackend().get_user(user.pk) is None


def test_a_wrong_password_is_hashed_once(user, monkeypatch):
    verified = []
    original = MD5PasswordHasher.verify

    def counting(self, password, encoded):
        verified.append(password)
        return original(self, password, encoded)

    monkeypatch.setattr(MD5PasswordHasher, "verify", counting)

    assert authenticate(None, email=user.email, password="not the password") is None
    assert verified == ["not the password"]


def test_a_session_made_by_the_previous_backend_still_works(user):
    """Sessions name the backend that logged them in; those from before EmailBackend name ModelBackend."""
    client = SpaClient()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")

    response = client.get(ME)

    assert response.status_code == 200
    assert response.json()["id"] == user.pk


def test_a_login_names_the_email_backend_in_the_session(client, user):
    response = client.post("/api/v1/auth/login", {"email": user.email, "password": PASSWORD})
    assert response.status_code == 200

    assert client.session["_auth_user_backend"] == "accounts.backends.EmailBackend"
