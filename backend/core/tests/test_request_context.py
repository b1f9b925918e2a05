"""core.request_context.client_ip: X-Forwarded-For is trusted from FORWARDED_ALLOW_IPS only, and as far as
TRUSTED_PROXY_COUNT proxies."""

import pytest
from django.test import RequestFactory

from core.request_context import client_ip

PROXY = "172.18.0.5"  # the address nginx connects from


def ip(*, forwarded_for: str | None = None, remote_addr: str = PROXY) -> str:
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    return client_ip(RequestFactory().get("/", headers=headers, REMOTE_ADDR=remote_addr))


def test_without_proxies_the_socket_address_is_the_client(settings):
    settings.TRUSTED_PROXY_COUNT = 0

    assert ip(remote_addr="203.0.113.9") == "203.0.113.9"
    assert ip(forwarded_for="1.2.3.4", remote_addr="203.0.113.9") == "203.0.113.9"


def test_one_proxy_uses_the_entry_it_appended(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert ip(forwarded_for="203.0.113.9") == "203.0.113.9"
    # A client's own header comes first; nginx appends the real address after it.
    assert ip(forwarded_for="1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert ip(forwarded_for="1.2.3.4,5.6.7.8,203.0.113.9") == "203.0.113.9"


def test_two_proxies_use_the_second_entry_from_the_right(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    # client -> load balancer (appends the client) -> nginx (appends the load balancer) -> app
    assert ip(forwarded_for="1.2.3.4, 203.0.113.9, 10.0.0.7") == "203.0.113.9"
    assert ip(forwarded_for="203.0.113.9, 10.0.0.7") == "203.0.113.9"


def test_fewer_entries_than_proxies_uses_the_first_proxy_seen(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    assert ip(forwarded_for="203.0.113.9") == "203.0.113.9"


@pytest.mark.parametrize(
    "forwarded_for",
    [
        "",
        " , ,",
        "not-an-address",
        "1.2.3.4, not-an-address",
        "1.2.3.4, 203.0.113.9:4711",  # ports are not part of the address
        "1.2.3.4, 203.0.113.999",
        "1.2.3.4, <script>",
        "unknown, unknown",
    ],
)
def test_missing_or_garbage_entries_fall_back_to_the_socket_address(settings, forwarded_for):
    settings.TRUSTED_PROXY_COUNT = 1

    assert ip(forwarded_for=forwarded_for) == PROXY


def test_garbage_in_the_trusted_position_falls_back_with_two_proxies(settings):
    settings.TRUSTED_PROXY_COUNT = 2

    assert ip(forwarded_for="203.0.113.9, not-an-address, 10.0.0.7") == PROXY


def test_no_header_behind_a_proxy_falls_back_to_the_socket_address(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert ip() == PROXY


def test_ipv6_entries_are_normalised(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    assert ip(forwarded_for="1.2.3.4, 2001:DB8:0:0::1") == "2001:db8::1"


# ---------------------------------------------------------------- only from a trusted proxy


def test_forwarded_for_from_a_peer_outside_the_trusted_networks_is_not_believed(settings):
    """A container on the data network (or anything else that reaches gunicorn past nginx) cannot pick
    its address: only nginx's network is trusted."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.FORWARDED_ALLOW_IPS = ["172.16.253.0/24"]

    assert ip(forwarded_for="6.6.6.6", remote_addr="172.16.253.7") == "6.6.6.6"
    assert ip(forwarded_for="6.6.6.6", remote_addr="10.11.0.3") == "10.11.0.3"
    assert ip(forwarded_for="6.6.6.6", remote_addr="2001:db8::5") == "2001:db8::5"


def test_a_single_trusted_address_and_any_peer(settings):
    settings.TRUSTED_PROXY_COUNT = 1

    settings.FORWARDED_ALLOW_IPS = ["127.0.0.1", "::1"]
    assert ip(forwarded_for="6.6.6.6", remote_addr="::1") == "6.6.6.6"
    assert ip(forwarded_for="6.6.6.6", remote_addr="127.0.0.2") == "127.0.0.2"

    settings.FORWARDED_ALLOW_IPS = ["*"]
    assert ip(forwarded_for="6.6.6.6", remote_addr="203.0.113.9") == "6.6.6.6"
