"""Facts about the client of a request that depend on the proxies in front of the app."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only as far as TRUSTED_PROXY_COUNT proxies.

    Each proxy appends the address it received the request from, so with N trusted proxies the client
    is the N-th entry from the right. Entries further left were sent by the client and are ignored: a
    forged header cannot move a client into a fresh throttle bucket.
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    hops: int = settings.TRUSTED_PROXY_COUNT
    if hops == 0:
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
