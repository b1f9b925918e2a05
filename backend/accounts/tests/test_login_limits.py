"""Limits on password guesses (accounts.services): a hard limit per (account, client address), a ceiling per
account that slows guessing instead of locking the account, the `auth` rate on the admin login, and
`manage.py unlock_login`. Nobody can lock someone else out of their account from another address."""

import json
import time
from io import StringIO
from types import SimpleNamespace

import pytest
from django.conf import settings as dj_settings
from django.core import signing
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


# ---------------------------------------------------------------- known devices

NGINX = "172.18.0.2"
# The audit's attackers (N-2): two addresses, each taking the account's turn as a window starts.
TURN_TAKERS = ("203.0.113.1", "203.0.113.2")


@pytest.fixture
def behind_nginx(settings):
    """Client addresses from X-Forwarded-For, as nginx sends them in the stacks (TRUSTED_PROXY_COUNT=1)."""
    settings.TRUSTED_PROXY_COUNT = 1


def forwarded(client, path, data, *, ip):
    return client.post(path, data, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=ip)


def forwarded_login(email, password, *, ip, client=None):
    return forwarded(client or SpaClient(), LOGIN, {"email": email, "password": password}, ip=ip)


def spread_failures(email):
    """The attack's first part: 30 wrong guesses from 6 addresses, 5 each, so each address is at its own
    limit and the account at its ceiling; the addresses."""
    addresses = [f"192.0.2.{n}" for n in range(account_ceiling() // pair_limit())]
    for address in addresses:
        for _ in range(pair_limit()):
            assert_error(forwarded_login(email, WRONG, ip=address), 400, "INVALID_CREDENTIALS")
    return addresses


def next_turn(clock, settings):
    """Move the clock to the start of the next LOGIN_SLOW_INTERVAL window."""
    interval = settings.LOGIN_SLOW_INTERVAL
    clock.now = (clock.now // interval + 1) * interval


def take_the_turn(email, attacker):
    assert_error(forwarded_login(email, WRONG, ip=attacker), 400, "INVALID_CREDENTIALS")


def an_attack_holds_the_turn(email, clock, settings):
    """The attack as the audit ran it: the failures spread over 6 addresses, then, at the start of the
    next window, one of the turn takers spends the account's turn."""
    spread_failures(email)
    next_turn(clock, settings)
    take_the_turn(email, TURN_TAKERS[0])


def device_cookie(client) -> str:
    value: str = client.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME].value
    return value


def known_device(user) -> SpaClient:
    """The owner's browser after an earlier successful login: it holds the known-device cookie."""
    client = SpaClient()
    response = forwarded_login(user.email, PASSWORD, ip=OWNER, client=client)
    assert response.status_code == 200, response.content
    cookie = response.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == dj_settings.LOGIN_DEVICE_COOKIE_AGE
    return client


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_the_owner_with_a_known_device_logs_in_while_a_distributed_attack_takes_every_turn(
    user, clock, settings
):
    """The audit's reproduction (N-2): 30 wrong guesses from 6 addresses, then 2 addresses taking each
    5-second turn. Before, the owner's correct password got 429 eight times in eight."""
    owner = known_device(user)
    spread_failures(user.email)

    answers = []
    for turn in range(8):
        next_turn(clock, settings)
        take_the_turn(user.email, TURN_TAKERS[turn % 2])
        answers.append(forwarded_login(user.email, PASSWORD, ip=OWNER, client=owner).status_code)

    assert answers == [200] * 8
    assert logged_in_id(owner) == user.pk


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_the_browser_that_signed_up_is_a_known_device_of_the_new_account(clock, settings):
    browser = SpaClient()
    email = "new-owner@example.com"
    signed_up = forwarded(browser, "/api/v1/auth/signup", {"email": email, "password": PASSWORD}, ip=OWNER)
    assert signed_up.status_code == 201, signed_up.content
    assert signed_up.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME]["httponly"] is True
    an_attack_holds_the_turn(email, clock, settings)

    assert forwarded_login(email, PASSWORD, ip=OWNER, client=browser).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate", "redis_unreachable")
def test_while_redis_is_down_the_limits_hold_per_process_and_the_known_device_still_gets_in(
    user, clock, settings
):
    owner = known_device(user)
    # Its session has ended since (ending one while Redis is down is a 503); the device cookie stays.
    del owner.cookies[dj_settings.SESSION_COOKIE_NAME]
    an_attack_holds_the_turn(user.email, clock, settings)

    assert_throttled(forwarded_login(user.email, PASSWORD, ip=OWNER), period=settings.LOGIN_SLOW_INTERVAL)
    assert forwarded_login(user.email, PASSWORD, ip=OWNER, client=owner).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_without_a_known_device_the_owner_waits_for_a_turn_like_anyone(user, clock, settings):
    an_attack_holds_the_turn(user.email, clock, settings)

    wait = assert_throttled(
        forwarded_login(user.email, PASSWORD, ip=OWNER), period=settings.LOGIN_SLOW_INTERVAL
    )

    clock.now += wait
    assert forwarded_login(user.email, PASSWORD, ip=OWNER).status_code == 200


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_a_request_the_address_limit_refuses_does_not_take_the_accounts_turn(user, clock, settings):
    """Before, the turn was taken before the per-address limit was checked, so an address already over
    its limit still spent it."""
    limited = spread_failures(user.email)
    next_turn(clock, settings)

    assert_throttled(forwarded_login(user.email, WRONG, ip=limited[0]), period=15 * 60)
    response = forwarded_login(user.email, PASSWORD, ip=OWNER)

    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_a_request_refused_for_want_of_a_turn_is_not_counted_against_its_address(user, clock, settings):
    """The per-address limit is counted before the turn is asked for; a request then refused by the turn
    checked no password, and gives its count back."""
    an_attack_holds_the_turn(user.email, clock, settings)
    for _ in range(pair_limit() + 1):
        assert_throttled(forwarded_login(user.email, PASSWORD, ip=OWNER), period=settings.LOGIN_SLOW_INTERVAL)

    next_turn(clock, settings)

    assert forwarded_login(user.email, PASSWORD, ip=OWNER).status_code == 200


def tampered(value: str) -> str:
    payload, rest = value.split(":", 1)
    return ("A" if payload[0] != "A" else "B") + payload[1:] + ":" + rest


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
@pytest.mark.parametrize(
    "kind", ["tampered", "other-account", "after-a-password-change", "expired", "unsigned"]
)
def test_a_device_cookie_that_is_not_this_accounts_current_one_gives_no_way_past_the_turn(
    user, other_user, clock, settings, monkeypatch, kind
):
    owner = known_device(user)
    cookie = device_cookie(owner)
    if kind == "tampered":
        cookie = tampered(cookie)
    elif kind == "other-account":
        cookie = device_cookie(known_device(other_user))
    elif kind == "after-a-password-change":
        user.set_password("a completely different passphrase")
        user.save()
        user.set_password(PASSWORD)  # the same password again: a new hash, so still a change
        user.save()
    elif kind == "expired":
        now = time.time()
        monkeypatch.setattr(
            signing, "time", SimpleNamespace(time=lambda: now + dj_settings.LOGIN_DEVICE_COOKIE_AGE + 2)
        )
    elif kind == "unsigned":
        cookie = json.dumps({"user": user.pk, "device": "x"})
    an_attack_holds_the_turn(user.email, clock, settings)
    browser = SpaClient()
    browser.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME] = cookie

    response = forwarded_login(user.email, PASSWORD, ip=OWNER, client=browser)

    assert_throttled(response, period=settings.LOGIN_SLOW_INTERVAL)


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_a_known_device_gets_its_own_few_guesses_then_waits_for_the_turn(user, clock, settings):
    """A stolen device cookie is worth the failures of one more address, not a way around the slow-down."""
    owner = known_device(user)
    an_attack_holds_the_turn(user.email, clock, settings)
    for n in range(pair_limit()):
        response = forwarded_login(user.email, WRONG, ip=f"198.51.100.{100 + n}", client=owner)
        assert_error(response, 400, "INVALID_CREDENTIALS")

    response = forwarded_login(user.email, PASSWORD, ip="198.51.100.200", client=owner)

    assert_throttled(response, period=settings.LOGIN_SLOW_INTERVAL)


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_a_password_change_from_a_known_device_does_not_wait_for_the_turn(user, clock, settings):
    """The current_password of a password change shares the limits of the login, and so the device's."""
    known = logged_in_client(user)
    unknown = logged_in_client(user)
    del unknown.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME]
    an_attack_holds_the_turn(user.email, clock, settings)
    new_password = {"current_password": PASSWORD, "new_password": "a completely different passphrase"}

    assert_throttled(forwarded(unknown, CHANGE, new_password, ip=OWNER), period=settings.LOGIN_SLOW_INTERVAL)
    response = forwarded(known, CHANGE, new_password, ip=OWNER)

    assert response.status_code == 204, response.content


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_the_admin_login_from_a_known_device_does_not_wait_for_the_turn(staff_user, clock, settings):
    owner = known_device(staff_user)
    an_attack_holds_the_turn(staff_user.email, clock, settings)
    unknown, known = Client(), Client()
    known.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME] = device_cookie(owner)
    form = {"username": staff_user.email, "password": PASSWORD}

    refused = unknown.post(ADMIN_LOGIN, form, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=OWNER)
    response = known.post(ADMIN_LOGIN, form, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=OWNER)

    assert TOO_MANY in refused.content
    assert response.status_code == 302
    assert "_auth_user_id" in known.session


@pytest.mark.django_db
@pytest.mark.usefixtures("behind_nginx", "generous_auth_rate")
def test_the_browser_of_a_successful_admin_login_is_a_known_device(staff_user, clock, settings):
    browser = Client()
    form = {"username": staff_user.email, "password": PASSWORD}
    first = browser.post(ADMIN_LOGIN, form, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=OWNER)
    assert first.status_code == 302
    assert first.cookies[dj_settings.LOGIN_DEVICE_COOKIE_NAME]["httponly"] is True
    assert browser.post("/admin/logout/").status_code == 200
    an_attack_holds_the_turn(staff_user.email, clock, settings)

    response = browser.post(ADMIN_LOGIN, form, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=OWNER)

    assert response.status_code == 302
    assert "_auth_user_id" in browser.session
