"""The admin site: HTML forms, so a plain django.test.Client (which does not enforce CSRF by default)."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User
from accounts.tests.factories import PASSWORD

ADMIN_LOGIN = "/admin/login/?next=/admin/"


def admin_login(browser, email, password):
    return browser.post(ADMIN_LOGIN, {"username": email, "password": password})


def logged_in_pk(browser):
    session = browser.session
    return int(session[SESSION_KEY]) if SESSION_KEY in session else None


@pytest.mark.django_db
@pytest.mark.parametrize("transform", [str, str.upper])
def test_staff_user_logs_in_with_their_email(staff_user, transform):
    browser = Client()

    response = admin_login(browser, transform(staff_user.email), PASSWORD)

    assert response.status_code == 302, response.content
    assert response["Location"] == "/admin/"
    assert logged_in_pk(browser) == staff_user.pk
    assert browser.get("/admin/").status_code == 200


@pytest.mark.django_db
def test_wrong_password_is_refused(staff_user):
    browser = Client()

    response = admin_login(browser, staff_user.email, "not the password at all")

    assert response.status_code == 200
    assert b"Please enter the correct email address and password" in response.content
    assert logged_in_pk(browser) is None


@pytest.mark.django_db
def test_user_who_is_not_staff_is_refused(user):
    browser = Client()

    response = admin_login(browser, user.email, PASSWORD)

    assert response.status_code == 200
    assert logged_in_pk(browser) is None


@pytest.mark.django_db
def test_user_changelist_lists_and_searches_users(superuser, user, other_user):
    browser = Client()
    browser.force_login(superuser)

    listing = browser.get("/admin/accounts/user/")
    search = browser.get("/admin/accounts/user/", {"q": user.email})

    assert listing.status_code == 200
    for account in (superuser, user, other_user):
        assert account.email.encode() in listing.content
    assert search.status_code == 200
    assert user.email.encode() in search.content
    assert other_user.email.encode() not in search.content


@pytest.mark.django_db
def test_user_change_form_shows_the_user(superuser, user):
    browser = Client()
    browser.force_login(superuser)

    response = browser.get(f"/admin/accounts/user/{user.pk}/change/")

    assert response.status_code == 200
    assert user.email.encode() in response.content


@pytest.mark.django_db
def test_add_user_form_creates_the_user(superuser):
    browser = Client()
    browser.force_login(superuser)
    assert browser.get("/admin/accounts/user/add/").status_code == 200

    response = browser.post(
        "/admin/accounts/user/add/",
        {"email": "New.Person@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302, response.content
    created = User.objects.get(email="new.person@example.com")
    assert response["Location"] == f"/admin/accounts/user/{created.pk}/change/"
    assert created.check_password(PASSWORD)
    assert (created.is_staff, created.is_superuser) == (False, False)


@pytest.mark.django_db
def test_add_user_form_refuses_a_taken_email_in_another_case(superuser, user):
    browser = Client()
    browser.force_login(superuser)

    response = browser.post(
        "/admin/accounts/user/add/",
        {"email": user.email.upper(), "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 200
    assert b"already exists" in response.content
    assert User.objects.filter(email__iexact=user.email).count() == 1


@pytest.mark.django_db
def test_user_who_is_not_staff_cannot_see_the_user_admin(user):
    browser = Client()
    browser.force_login(user)

    response = browser.get("/admin/accounts/user/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
