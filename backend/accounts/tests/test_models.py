from typing import cast

import pytest
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory


@pytest.mark.django_db
@pytest.mark.parametrize("email", ["a@x.com", "A@x.com", "a@X.COM"])
def test_email_is_unique_in_the_database_whatever_its_case(email):
    User.objects.create(email="a@x.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email=email)

    assert User.objects.count() == 1


@pytest.mark.django_db
def test_different_emails_can_coexist():
    User.objects.create(email="a@x.com")
    User.objects.create(email="b@x.com")

    assert User.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("transform", [str, str.upper, str.title, lambda email: f" {email} "])
def test_get_by_natural_key_ignores_case(transform):
    user = cast(User, UserFactory(email="grace.hopper@example.com"))

    assert User.objects.get_by_natural_key(transform("grace.hopper@example.com")) == user


@pytest.mark.django_db
def test_get_by_natural_key_raises_for_an_unknown_email():
    UserFactory(email="grace.hopper@example.com")

    with pytest.raises(User.DoesNotExist):
        User.objects.get_by_natural_key("ada@example.com")


@pytest.mark.django_db
def test_create_user_normalizes_the_email_and_hashes_the_password():
    user = User.objects.create_user(" Grace@Example.COM ", PASSWORD)

    user.refresh_from_db()
    assert user.email == "grace@example.com"
    assert user.password != PASSWORD
    assert user.check_password(PASSWORD)
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, False, False)


@pytest.mark.django_db
def test_create_user_without_a_password_cannot_log_in_with_one():
    user = User.objects.create_user("grace@example.com")

    assert not user.has_usable_password()


@pytest.mark.django_db
def test_create_superuser_sets_the_flags():
    user = User.objects.create_superuser("Root@Example.com", PASSWORD)

    user.refresh_from_db()
    assert user.email == "root@example.com"
    assert (user.is_active, user.is_staff, user.is_superuser) == (True, True, True)
    assert user.check_password(PASSWORD)
    assert user.has_perm("accounts.delete_user")


@pytest.mark.django_db
def test_clean_lower_cases_the_email():
    user = User(email="Grace@Example.com")

    user.clean()

    assert user.email == "grace@example.com"


def test_names():
    user = User(email="grace@example.com", first_name="Grace", last_name="Hopper")

    assert str(user) == "grace@example.com"
    assert user.get_full_name() == "Grace Hopper"
    assert user.get_short_name() == "Grace"
    assert User(email="x@example.com", last_name="Hopper").get_full_name() == "Hopper"
