"""core.throttling through the API: the anon, user and auth rates, the 429 they answer, and which client
address they count (core.request_context.client_ip behind nginx)."""

import pytest

from testing import assert_throttled, logged_in_client, with_throttle_rates

CSRF = "/api/v1/auth/csrf"  # anonymous, no scope: only the anon rate applies
ME = "/api/v1/auth/me"
PASSWORD_RESET = "/api/v1/auth/password/reset"  # scope "auth"

NGINX = "172.18.0.5"
CLIENT = "203.0.113.9"
OTHER_CLIENT = "198.51.100.7"


@pytest.fixture
def rates(settings):
    """Set some throttle rates for this test; the others stay high enough not to interfere."""

    def set_rates(**overrides: str) -> None:
        with_throttle_rates(settings, **{"anon": "1000/m", "user": "1000/m", "auth": "1000/m", **overrides})

    return set_rates


def reset_request(client, n: int, **extra: str):
    return client.post(PASSWORD_RESET, {"email": f"nobody{n}@example.com"}, **extra)


# ---------------------------------------------------------------- which rate applies to whom


def test_anon_rate_per_client_address(client, rates):
    rates(anon="2/m")

    assert [client.get(CSRF, REMOTE_ADDR=CLIENT).status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get(CSRF, REMOTE_ADDR=CLIENT), period=60)
    assert client.get(CSRF, REMOTE_ADDR=OTHER_CLIENT).status_code == 200


def test_user_rate_per_user(user_client, other_user, rates):
    other_client = logged_in_client(other_user)
    rates(user="2/m")

    assert [user_client.get(ME).status_code for _ in range(2)] == [200, 200]
    assert_throttled(user_client.get(ME), period=60)
    # Same address, different account: its own bucket.
    assert other_client.get(ME).status_code == 200


def test_logged_in_requests_do_not_count_against_the_anon_rate(user_client, client, rates):
    rates(anon="2/m", user="10/m")

    assert [user_client.get(ME, REMOTE_ADDR=CLIENT).status_code for _ in range(5)] == [200] * 5
    # An anonymous client from the same address still has its whole allowance.
    assert [client.get(CSRF, REMOTE_ADDR=CLIENT).status_code for _ in range(2)] == [200, 200]
    assert_throttled(client.get(CSRF, REMOTE_ADDR=CLIENT), period=60)


def test_anonymous_requests_do_not_count_against_the_user_rate(user_client, client, rates):
    rates(user="2/m")

    assert [client.get(CSRF).status_code for _ in range(5)] == [200] * 5
    assert [user_client.get(ME).status_code for _ in range(2)] == [200, 200]
    assert_throttled(user_client.get(ME), period=60)


def test_auth_rate_per_client_address(client, db, rates):
    rates(auth="3/m")

    assert [reset_request(client, n, REMOTE_ADDR=CLIENT).status_code for n in range(3)] == [202] * 3
    assert_throttled(reset_request(client, 3, REMOTE_ADDR=CLIENT), period=60)
    assert reset_request(client, 4, REMOTE_ADDR=OTHER_CLIENT).status_code == 202


# Every view with throttle_scope = "auth", with a body it answers without a 429 while under the rate. A new
# email each time, so the per-account limits (login_failures, password_reset_mail) are not what stops it.
AUTH_ENDPOINTS = {
    "signup": ("/api/v1/auth/signup", lambda n: {"email": f"new{n}@example.com", "password": "short"}, 400),
    "login": ("/api/v1/auth/login", lambda n: {"email": f"nobody{n}@example.com", "password": "x"}, 400),
    "password change": (
        "/api/v1/auth/password/change",
        lambda n: {"current_password": f"wrong{n}", "new_password": "another long passphrase"},
        400,
    ),
    "password reset": (PASSWORD_RESET, lambda n: {"email": f"nobody{n}@example.com"}, 202),
    "password reset confirm": (
        "/api/v1/auth/password/reset/confirm",
        lambda n: {"uid": "MQ", "token": f"bad-{n}", "new_password": "another long passphrase"},
        400,
    ),
}


@pytest.mark.parametrize("endpoint", AUTH_ENDPOINTS.values(), ids=AUTH_ENDPOINTS.keys())
def test_auth_rate_applies_to_every_auth_endpoint(user_client, rates, endpoint):
    path, body, status = endpoint
    rates(auth="2/m")

    # From another address than the login of the fixture, which counted under "auth" too.
    responses = [user_client.post(path, body(n), REMOTE_ADDR=CLIENT) for n in range(3)]

    assert [response.status_code for response in responses[:2]] == [status, status]
    assert_throttled(responses[2], period=60)


def test_auth_endpoints_also_count_against_the_anon_rate(client, db, rates):
    rates(anon="3/m", auth="100/m")

    assert [client.get(CSRF).status_code for _ in range(2)] == [200, 200]
    assert reset_request(client, 0).status_code == 202
    assert_throttled(reset_request(client, 1), period=60)


# ---------------------------------------------------------------- client address behind nginx


def test_forwarded_for_is_ignored_without_trusted_proxies(client, settings, rates):
    settings.TRUSTED_PROXY_COUNT = 0
    rates(anon="2/m")

    statuses = [
        client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=forwarded).status_code
        for forwarded in (CLIENT, OTHER_CLIENT)
    ]

    assert statuses == [200, 200]
    # A third address in the header is still the same socket address: the same bucket.
    assert_throttled(client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR="192.0.2.1"), period=60)
    assert client.get(CSRF, REMOTE_ADDR="192.0.2.1").status_code == 200


def test_a_spoofed_forwarded_for_does_not_get_a_fresh_bucket(client, settings, rates):
    settings.TRUSTED_PROXY_COUNT = 1
    rates(anon="2/m")

    def via_nginx(forwarded_for: str) -> int:
        return int(client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=forwarded_for).status_code)

    assert [via_nginx(CLIENT), via_nginx(CLIENT)] == [200, 200]
    assert via_nginx(CLIENT) == 429
    # The client sends its own X-Forwarded-For; nginx appends the address it really came from.
    assert via_nginx(f"1.2.3.4, {CLIENT}") == 429
    assert via_nginx(f"{OTHER_CLIENT}, {CLIENT}") == 429
    # Another client behind the same nginx has its own bucket.
    assert via_nginx(OTHER_CLIENT) == 200


def test_two_trusted_proxies_count_the_second_entry_from_the_right(client, settings, rates):
    settings.TRUSTED_PROXY_COUNT = 2
    rates(anon="1/m")
    load_balancer = "10.0.0.7"

    assert (
        client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=f"{CLIENT}, {load_balancer}").status_code
        == 200
    )
    spoofed = f"1.2.3.4, {CLIENT}, {load_balancer}"
    assert_throttled(client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=spoofed), period=60)
    other = f"{OTHER_CLIENT}, {load_balancer}"
    assert client.get(CSRF, REMOTE_ADDR=NGINX, HTTP_X_FORWARDED_FOR=other).status_code == 200


def test_a_peer_past_nginx_gets_one_bucket_whatever_it_forwards(client, settings, rates):
    """Only nginx's network may name the client (FORWARDED_ALLOW_IPS): a peer elsewhere (a container on
    the data network) that sends a new X-Forwarded-For with each request is still counted as itself."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.FORWARDED_ALLOW_IPS = ["172.16.253.0/24"]
    rates(anon="2/m")
    past_nginx = "10.11.0.3"

    statuses = [
        client.get(CSRF, REMOTE_ADDR=past_nginx, HTTP_X_FORWARDED_FOR=forged).status_code
        for forged in (CLIENT, OTHER_CLIENT)
    ]

    assert statuses == [200, 200]
    assert_throttled(client.get(CSRF, REMOTE_ADDR=past_nginx, HTTP_X_FORWARDED_FOR="192.0.2.1"), period=60)
