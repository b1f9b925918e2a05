"""Facts about the request being served: its id (for log records and error bodies, in this thread or
task) and the client's address as the proxies in front of the app report it."""

import functools
import ipaddress
import re
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest

# Set by core.middleware.RequestMiddleware for the duration of a request; background jobs inherit it.
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# What we accept from the proxy: nginx's $request_id is 32 hex digits; UUIDs and similar ids also pass.
# Anything else (too long, odd characters) is replaced, so the header cannot inject into log lines.
_VALID_ID = re.compile(r"[A-Za-z0-9._-]{8,128}")


def request_id_from_header(value: str | None) -> str:
    if value and _VALID_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def in_networks(address: str, allowed: list[str]) -> bool:
    """Whether an address lies in one of the addresses or networks listed ("*": all)."""
    return _in_networks(address, tuple(allowed))


# Asked for every request (of the peer's address; of the client's under the admin): with the networks
# parsed once, parsing the address and comparing still took 12 µs a call; a cached answer takes 1.4 µs,
# settings lookup included (docs/decisions.md). Few distinct peers reach the backend: nginx's containers.
@functools.lru_cache(maxsize=4096)
def _in_networks(address: str, allowed: tuple[str, ...]) -> bool:
    if "*" in allowed:
        return True
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(item) for item in allowed)


def from_trusted_proxy(request: HttpRequest) -> bool:
    """Whether the peer that sent the request is one whose X-Forwarded-* headers are believed: an
    address in FORWARDED_ALLOW_IPS (nginx's network). Anyone else sends them as they please."""
    return in_networks(str(request.META.get("REMOTE_ADDR", "")), settings.FORWARDED_ALLOW_IPS)


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only from a trusted proxy (FORWARDED_ALLOW_IPS)
    and only as far as TRUSTED_PROXY_COUNT proxies.

    Each proxy appends the address it received the request from, so with N trusted proxies the client
    is the N-th entry from the right. Entries further left were sent by the client and are ignored: a
    forged header cannot move a client into a fresh throttle bucket.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    hops: int = settings.TRUSTED_PROXY_COUNT
    if hops == 0 or not from_trusted_proxy(request):
        return remote
    forwarded = [
        entry.strip() for entry in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if entry.strip()
    ]
    if not forwarded:
        return remote
    candidate = forwarded[-min(hops, len(forwarded))]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
