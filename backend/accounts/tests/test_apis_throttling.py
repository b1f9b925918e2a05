"""The `auth` throttle: signup, login and the password endpoints, per client address."""

import pytest

from accounts.models import User
from accounts.tests.factories import PASSWORD
from core.rate_limit import configured_rate
from testing import SpaClient, assert_throttled

ADDRESS = "198.51.100.7"
OTHER_ADDRESS = "198.51.100.8"


def signup(n, address):
    return SpaClient().post(
        "/api/v1/auth/signup", {"email": f"new{n}@example.com", "password": PASSWORD}, REMOTE_ADDR=address
    )


def login(n, address):
    # A different (unknown) account each time, so the per-account limit is not what stops it.
    return SpaClient().post(
        "/api/v1/auth/login", {"email": f"guess{n}@example.com", "password": PASSWORD}, REMOTE_ADDR=address
    )


def reset(n, address):
    return SpaClient().post(
        "/api/v1/auth/password/reset", {"email": f"x{n}@example.com"}, REMOTE_ADDR=address
    )


ENDPOINTS = {"signup": (signup, 201), "login": (login, 400), "password-reset": (reset, 202)}


@pytest.mark.django_db
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_auth_requests_over_the_rate_from_one_address_are_throttled(endpoint):
    request, allowed_status = ENDPOINTS[endpoint]
    rate = configured_rate("auth")
    for n in range(rate.limit):
        assert request(n, ADDRESS).status_code == allowed_status

    assert_throttled(request(rate.limit, ADDRESS), period=rate.period)
    assert request(rate.limit + 1, OTHER_ADDRESS).status_code == allowed_status


@pytest.mark.django_db
def test_throttled_signup_creates_nobody():
    rate = configured_rate("auth")
    for n in range(rate.limit):
        signup(n, ADDRESS)

    assert_throttled(signup(rate.limit, ADDRESS), period=rate.period)

    assert not User.objects.filter(email=f"new{rate.limit}@example.com").exists()


@pytest.mark.django_db
def test_signup_and_login_share_the_budget_of_an_address():
    rate = configured_rate("auth")
    for n in range(rate.limit):
        (signup if n % 2 else login)(n, ADDRESS)

    assert_throttled(login(rate.limit, ADDRESS), period=rate.period)
