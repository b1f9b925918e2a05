"""The admin site: HTML forms, so a plain django.test.Client (which does not enforce CSRF by default)."""

import importlib

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import clear_url_caches

import config.urls
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


# ---------------------------------------------------------------- who may reach the admin (core.middleware)

SPA_ORIGIN = "https://app.example.com"  # in CSRF_TRUSTED_ORIGINS (config/settings/test.py)


def admin_login_with_token(browser, staff_user, origin):
    """A browser's login over HTTPS: the form's token from the page, then the POST with an Origin."""
    browser.get(ADMIN_LOGIN, secure=True)
    token = browser.cookies["csrftoken"].value
    return browser.post(
        ADMIN_LOGIN,
        {"username": staff_user.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        secure=True,
        headers={"Origin": origin},
    )


@pytest.mark.django_db
def test_the_admin_takes_a_post_from_its_own_origin(staff_user):
    browser = Client(enforce_csrf_checks=True)

    response = admin_login_with_token(browser, staff_user, "https://testserver")

    assert response.status_code == 302
    assert logged_in_pk(browser) == staff_user.pk


@pytest.mark.django_db
@pytest.mark.parametrize("origin", [SPA_ORIGIN, "https://evil.example", "null"])
def test_the_admin_refuses_posts_from_other_origins_the_spas_too(staff_user, origin):
    """CSRF_TRUSTED_ORIGINS lets the SPA post to the API; the admin takes its own forms only."""
    browser = Client(enforce_csrf_checks=True)

    response = admin_login_with_token(browser, staff_user, origin)

    assert response.status_code == 403
    assert logged_in_pk(browser) is None


@pytest.mark.django_db
def test_the_admin_refuses_a_referer_from_the_spa_without_an_origin(staff_user):
    browser = Client(enforce_csrf_checks=True)
    browser.get(ADMIN_LOGIN, secure=True)
    token = browser.cookies["csrftoken"].value

    response = browser.post(
        ADMIN_LOGIN,
        {"username": staff_user.email, "password": PASSWORD, "csrfmiddlewaretoken": token},
        secure=True,
        headers={"Referer": f"{SPA_ORIGIN}/somewhere"},
    )

    assert response.status_code == 403
    assert logged_in_pk(browser) is None


@pytest.mark.django_db
def test_outside_admin_allowed_networks_the_admin_is_not_there(settings, staff_user):
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24", "2001:db8::/32"]
    browser = Client()

    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR="192.0.2.7").status_code == 200
    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR="2001:db8::7").status_code == 200
    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR="203.0.113.9").status_code == 404
    assert browser.get("/admin/", REMOTE_ADDR="203.0.113.9").status_code == 404
    response = browser.post(
        ADMIN_LOGIN, {"username": staff_user.email, "password": PASSWORD}, REMOTE_ADDR="203.0.113.9"
    )
    assert response.status_code == 404
    assert logged_in_pk(browser) is None
    # The API is not the admin.
    assert browser.get("/api/v1/auth/csrf", REMOTE_ADDR="203.0.113.9").status_code == 200


@pytest.mark.django_db
def test_admin_allowed_networks_judge_the_address_nginx_forwards(settings):
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    settings.TRUSTED_PROXY_COUNT = 1
    nginx = "172.18.0.5"
    browser = Client()

    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR=nginx, HTTP_X_FORWARDED_FOR="192.0.2.7").status_code == 200
    forged = "192.0.2.7, 203.0.113.9"  # the client's own entry first, nginx's last
    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR=nginx, HTTP_X_FORWARDED_FOR=forged).status_code == 404
    # From outside nginx's network the header is not believed.
    outside = "203.0.113.50"
    assert browser.get(ADMIN_LOGIN, REMOTE_ADDR=outside, HTTP_X_FORWARDED_FOR="192.0.2.7").status_code == 404


@pytest.fixture
def admin_url(settings):
    """Set ADMIN_URL and load the URLs again, as a start with that setting would."""

    def move_to(path: str) -> None:
        settings.ADMIN_URL = path
        importlib.reload(config.urls)
        clear_url_caches()

    yield move_to
    settings.ADMIN_URL = "admin/"
    importlib.reload(config.urls)
    clear_url_caches()


@pytest.mark.django_db
def test_admin_url_moves_the_admin_and_its_rules(admin_url, settings, staff_user):
    admin_url("staff-7f3a/")
    settings.ADMIN_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    browser = Client()

    assert browser.get("/admin/login/", REMOTE_ADDR="192.0.2.7").status_code == 404
    login = "/staff-7f3a/login/?next=/staff-7f3a/"
    assert browser.get(login, REMOTE_ADDR="192.0.2.7").status_code == 200
    assert browser.get(login, REMOTE_ADDR="203.0.113.9").status_code == 404
    response = browser.post(
        login, {"username": staff_user.email, "password": PASSWORD}, REMOTE_ADDR="192.0.2.7"
    )
    assert response.status_code == 302
    assert response["Location"] == "/staff-7f3a/"
