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


@functools.cache
def _networks(allowed: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in allowed if item != "*")


def in_networks(address: str, allowed: list[str]) -> bool:
    """Whether an address lies in one of the addresses or networks listed ("*": all)."""
    if "*" in allowed:
        return True
    try:
        peer = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(peer in network for network in _networks(tuple(allowed)))


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
