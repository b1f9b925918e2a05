"""Limits on password guesses (accounts.services): a hard limit per (account, client address), a ceiling per
account that slows guessing instead of locking the account, the `auth` rate on the admin login, and
`manage.py unlock_login`. Nobody can lock someone else out of their account from another address."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.tests.factories import PASSWORD
from core.rate_limit import configured_rate
from testing import (
    SpaClient,
    assert_error,
    assert_throttled,
    logged_in_client,
    logged_in_id,
    with_throttle_rates,
)

LOGIN = "/api/v1/auth/login"
CHANGE = "/api/v1/auth/password/change"
ADMIN_LOGIN = "/admin/login/?next=/admin/"
WRONG = "not the password at all"
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.10"
TOO_MANY = b"Too many"


def login(email, password, *, ip, client=None):
    return (client or SpaClient()).post(LOGIN, {"email": email, "password": password}, REMOTE_ADDR=ip)


def admin_login(email, password, *, ip, browser=None):
    return (browser or Client()).post(ADMIN_LOGIN, {"username": email, "password": password}, REMOTE_ADDR=ip)


def fail_from(email, ip, times):
    for _ in range(times):
        assert_error(login(email, WRONG, ip=ip), 400, "INVALID_CREDENTIALS")


def pair_limit() -> int:
    return configured_rate("login_failures").limit


def account_ceiling() -> int:
    return configured_rate("login_failures_account").limit


def reach_the_account_ceiling(email, already=0):
    """Failures spread over addresses, each under the per-address limit, up to the per-account ceiling."""
    for n in range(account_ceiling() - already):
        assert_error(login(email, WRONG, ip=f"192.0.2.{n}"), 400, "INVALID_CREDENTIALS")


# ---------------------------------------------------------------- per (account, address): the hard limit


@pytest.mark.django_db
def test_failures_from_one_address_lock_that_address_out_of_the_account(user):
    fail_from(user.email, ATTACKER, pair_limit())
    client = SpaClient()

    assert_throttled(login(user.email, PASSWORD, ip=ATTACKER, client=client), period=15 * 60)
    assert logged_in_id(client) is None


@pytest.mark.django_db
def test_failures_from_another_address_do_not_lock_the_owner_out(user):
    """The lockout weapon: an attacker's failures must not refuse the owner's right password."""
    fail_from(user.email, ATTACKER, pair_limit())
    assert_throttled(login(user.email, WRONG, ip=ATTACKER), period=15 * 60)

    response = login(user.email, PASSWORD, ip=OWNER)

    assert response.status_code == 200, response.content


@pytest.mark.django_db
def test_failures_count_whatever_the_case_of_the_email(user):
    for n in range(pair_limit()):
        email = user.email.upper() if n % 2 else user.email
        assert_error(login(email, WRONG, ip=ATTACKER), 400, "INVALID_CREDENTIALS")

    assert_throttled(login(user.email.title(), PASSWORD, ip=ATTACKER), period=15 * 60)


@pytest.mark.django_db
@pytest.mark.usefixtures("generous_auth_rate")
def test_successes_are_not_counted_and_clear_the_failures_of_the_address(user):
    for _ in range(pair_limit() + 1):
        assert login(user.email, PASSWORD, ip=OWNER).status_code == 200
    fail_from(user.email, OWNER, pair_limit() - 1)
    assert login(user.email, PASSWORD, ip=OWNER).status_code == 200

    # Without the reset, the second of these would already be refused.
    fail_from(user.email, OWNER, pair_limit())
    assert_throttled(login(user.email, PASSWORD, ip=OWNER), period=15 * 60)


@pytest.mark.django_db
@pytest.mark.usefixtures("generous_auth_rate")
def test_an_unknown_email_is_limited_exactly_like_an_existing_account(user):
    def responses_for(email):
        results = [login(email, WRONG, ip=ATTACKER) for _ in range(pair_limit() + 2)]
        return [(response.status_code, response.json(), response.get("Retry-After")) for response in results]

    existing = responses_for(user.email)
    unknown = responses_for("nobody@example.com")

    assert [status for status, _, _ in unknown] == [400] * pair_limit() + [429, 429]
    assert unknown == existing


@pytest.mark.django_db
def test_ipv6_addresses_of_one_64_share_a_limit(user):
    for n in range(pair_limit()):
        assert_error(login(user.email, WRONG, ip=f"2001:db8:1:2::{n + 1:x}"), 400, "INVALID_CREDENTIALS")

    assert_throttled(login(user.email, PASSWORD, ip="2001:db8:1:2:ffff::1"), period=15 * 60)
    assert login(user.email, PASSWORD, ip="2001:db8:1:3::1").status_code == 200


# ---------------------------------------------------------------- per account: slowed, not locked


@pytest.mark.django_db
def test_over_the_ceiling_the_account_gets_one_guess_per_interval(user, settings, clock):
    reach_the_account_ceiling(user.email)

    first = login(user.email, WRONG, ip="203.0.113.1")
    second = login(user.email, PASSWORD, ip="203.0.113.2")

    assert_error(first, 400, "INVALID_CREDENTIALS")
    wait = assert_throttled(second, period=settings.LOGIN_SLOW_INTERVAL)
    clock.now += wait
    assert login(user.email, PASSWORD, ip="203.0.113.2").status_code == 200


@pytest.mark.django_db
def test_below_the_ceiling_guesses_from_many_addresses_are_not_slowed(user):
    for n in range(account_ceiling() - 1):
        assert_error(login(user.email, WRONG, ip=f"192.0.2.{n}"), 400, "INVALID_CREDENTIALS")

    assert login(user.email, PASSWORD, ip=OWNER).status_code == 200
    assert login(user.email, PASSWORD, ip=OWNER).status_code == 200


# ---------------------------------------------------------------- the admin login


@pytest.mark.django_db
def test_admin_login_is_under_the_auth_rate_of_its_address(staff_user):
    rate = configured_rate("auth")
    for n in range(rate.limit):
        response = admin_login(f"nobody{n}@example.com", WRONG, ip=ATTACKER)
        assert response.status_code == 200
        assert TOO_MANY not in response.content

    browser = Client()
    refused = admin_login(staff_user.email, PASSWORD, ip=ATTACKER, browser=browser)

    assert refused.status_code == 200
    assert b"Too many login attempts from your address" in refused.content
    assert "_auth_user_id" not in browser.session
    assert admin_login(staff_user.email, PASSWORD, ip=OWNER).status_code == 302


@pytest.mark.django_db
def test_admin_and_api_logins_share_the_auth_rate_of_an_address(staff_user):
    rate = configured_rate("auth")
    for n in range(rate.limit):
        if n % 2:
            admin_login(f"nobody{n}@example.com", WRONG, ip=ATTACKER)
        else:
            login(f"nobody{n}@example.com", WRONG, ip=ATTACKER)

    assert_throttled(login("nobody@example.com", WRONG, ip=ATTACKER), period=rate.period)
    assert TOO_MANY in admin_login(staff_user.email, PASSWORD, ip=ATTACKER).content


@pytest.mark.django_db
def test_bad_admin_logins_do_not_lock_the_victim_out_of_the_api(staff_user):
    """The issue's reproduction: six bad admin logins for a victim, then the victim's own API login."""
    for _ in range(pair_limit() + 1):
        admin_login(staff_user.email, WRONG, ip=ATTACKER)
    assert TOO_MANY in admin_login(staff_user.email, PASSWORD, ip=ATTACKER).content

    assert login(staff_user.email, PASSWORD, ip=OWNER).status_code == 200
    assert admin_login(staff_user.email, PASSWORD, ip=OWNER).status_code == 302


@pytest.mark.django_db
def test_admin_and_api_count_failures_together(staff_user):
    for n in range(pair_limit()):
        if n % 2:
            admin_login(staff_user.email, WRONG, ip=ATTACKER)
        else:
            login(staff_user.email, WRONG, ip=ATTACKER)

    assert TOO_MANY in admin_login(staff_user.email, PASSWORD, ip=ATTACKER).content
    assert_throttled(login(staff_user.email, PASSWORD, ip=ATTACKER), period=15 * 60)


@pytest.mark.django_db
def test_a_successful_admin_login_clears_the_failures_of_the_address(staff_user):
    for _ in range(pair_limit() - 1):
        admin_login(staff_user.email, WRONG, ip=OWNER)
    assert admin_login(staff_user.email, PASSWORD, ip=OWNER).status_code == 302

    for _ in range(pair_limit() - 1):
        admin_login(staff_user.email, WRONG, ip=OWNER)
    assert admin_login(staff_user.email, PASSWORD, ip=OWNER).status_code == 302


# ---------------------------------------------------------------- current_password of a password change


@pytest.fixture
def generous_auth_rate(settings):
    """The per-address `auth` rate out of the way of the limits under test."""
    with_throttle_rates(settings, auth="1000/m")


def change(client, current, *, ip):
    return client.post(
        CHANGE,
        {"current_password": current, "new_password": "a completely different passphrase"},
        REMOTE_ADDR=ip,
    )


@pytest.mark.django_db
@pytest.mark.usefixtures("generous_auth_rate")
def test_wrong_current_passwords_are_counted_like_failed_logins(user):
    client = logged_in_client(user)
    for _ in range(pair_limit()):
        assert_error(change(client, WRONG, ip=ATTACKER), 400, "VALIDATION_ERROR")

    assert_throttled(change(client, PASSWORD, ip=ATTACKER), period=15 * 60)
    # Counted against the account: a login guess from that address is refused too.
    assert_throttled(login(user.email, PASSWORD, ip=ATTACKER), period=15 * 60)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
@pytest.mark.usefixtures("generous_auth_rate")
def test_current_password_guesses_from_many_addresses_are_slowed(user):
    client = logged_in_client(user)
    statuses = [change(client, WRONG, ip=f"192.0.2.{n}").status_code for n in range(account_ceiling() + 2)]

    assert statuses[: account_ceiling()] == [400] * account_ceiling()
    assert statuses[account_ceiling() :] == [400, 429]


# ---------------------------------------------------------------- manage.py unlock_login


@pytest.mark.django_db
def test_unlock_login_lifts_the_limits_of_every_address(user, clock):
    fail_from(user.email, ATTACKER, pair_limit())
    fail_from(user.email, OWNER, pair_limit())
    reach_the_account_ceiling(user.email, already=2 * pair_limit())
    assert_throttled(login(user.email, PASSWORD, ip=OWNER), period=15 * 60)
    out = StringIO()

    call_command("unlock_login", user.email.upper(), stdout=out)

    assert out.getvalue() == f"Login limits of {user.email} lifted.\n"
    assert login(user.email, PASSWORD, ip=OWNER).status_code == 200
    assert login(user.email, PASSWORD, ip=ATTACKER).status_code == 200
    # The ceiling is lifted too: two guesses in one interval.
    assert login(user.email, PASSWORD, ip="203.0.113.7").status_code == 200


@pytest.mark.django_db
def test_unlock_login_leaves_other_accounts_alone(user, other_user):
    fail_from(other_user.email, ATTACKER, pair_limit())

    call_command("unlock_login", user.email, stdout=StringIO())

    assert_throttled(login(other_user.email, PASSWORD, ip=ATTACKER), period=15 * 60)
