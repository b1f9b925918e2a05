"""Rate limits: the rate grammar ('10/m', '5/15m'), the configured rate of each scope, and fixed-window
counters in the shared cache. The DRF throttles (core.throttling) and the per-account login limits of
accounts.services count with these.

The counter is incremented atomically (INCR in Redis), so concurrent requests in several processes cannot
slip past a limit the way DRF's read-modify-write history list can.

While Redis is unavailable (core.cache), a security limit is counted in this process instead, so it
still holds, per process; only the general anon and user rates (``fail_open=True``) let requests
through.
"""

import functools
import ipaddress
import logging
import re
import time
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache

from core.cache import CacheUnavailableError, strict

logger = logging.getLogger(__name__)

# The scopes of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; each one's rate comes from THROTTLE_<SCOPE>.
ANON = "anon"
USER = "user"
AUTH = "auth"
LOGIN_FAILURES = "login_failures"
LOGIN_FAILURES_ACCOUNT = "login_failures_account"
PASSWORD_RESET_MAIL = "password_reset_mail"  # noqa: S105 (a scope name)
SCOPES = (ANON, USER, AUTH, LOGIN_FAILURES, LOGIN_FAILURES_ACCOUNT, PASSWORD_RESET_MAIL)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Where security limits are counted while the shared cache is unavailable: this process's memory.
_local = LocMemCache("rate-limit-fallback", {"OPTIONS": {"MAX_ENTRIES": 100_000}})
# The last time a fallback was logged, per scope: one WARNING a minute, not one per request.
_fallback_logged: dict[str, float] = {}
FALLBACK_LOG_INTERVAL = 60.0


@dataclass(frozen=True)
class Rate:
    limit: int
    period: int  # seconds

    @classmethod
    @functools.cache
    def parse(cls, text: str) -> "Rate":
        """'10/m', '100/h', '5/15m' (five per fifteen minutes)."""
        match = re.fullmatch(r"(\d+)/([1-9]\d*)?([smhd])", text)
        if not match:
            raise ValueError(f"Malformed rate {text!r}: expected e.g. 10/m, 100/h or 5/15m.")
        limit, multiple, unit = match.groups()
        return cls(limit=int(limit), period=int(multiple or 1) * _UNITS[unit])


def variable_for(scope: str) -> str:
    """The environment variable that sets a scope's rate (base.py reads it)."""
    return f"THROTTLE_{scope.upper()}"


def configured_rate(scope: str) -> Rate:
    """The scope's rate from settings; check core.E004 has already refused a malformed one at start-up."""
    rates = cast(dict[str, str], settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    return Rate.parse(rates[scope])


def throttle_key(scope: str, ident: str) -> str:
    """The counter of a DRF throttle scope for one client; the admin login counts into the same one."""
    return f"throttle:{scope}:{ident}"


def address_bucket(address: str) -> str:
    """What a per-address limit counts: the address for IPv4, its /64 for IPv6 (one subscriber usually
    holds a whole /64, so counting single IPv6 addresses would give each client 2^64 buckets)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _window_start(now: float, rate: Rate) -> int:
    return int(now // rate.period * rate.period)


def _window_key(key: str, window_start: int) -> str:
    return f"rate:{key}:{window_start}"


def _scope_of(key: str) -> str:
    return key.split(":", 2)[1] if key.startswith("throttle:") else key.split(":", 1)[0]


def _note_fallback(key: str) -> None:
    scope = _scope_of(key)
    now = time.time()
    if now - _fallback_logged.get(scope, -FALLBACK_LOG_INTERVAL) >= FALLBACK_LOG_INTERVAL:
        _fallback_logged[scope] = now
        logger.warning("Shared cache unavailable: counting the %s limit in this process", scope)


def hit(key: str, rate: Rate, *, fail_open: bool = False) -> float | None:
    """Count one event for ``key``; return the seconds to wait if that went over the limit, else None.

    If the shared cache is unavailable, the event is counted in this process, or allowed when
    ``fail_open`` (for limits whose only purpose is fairness, not security).
    """
    now = time.time()
    window_start = _window_start(now, rate)
    window_key = _window_key(key, window_start)
    try:
        count = strict(cache).count(window_key, rate.period + 1)
    except CacheUnavailableError:
        if fail_open:
            return None
        _note_fallback(key)
        count = strict(_local).count(window_key, rate.period + 1)
    if count <= rate.limit:
        return None
    return window_start + rate.period - now


def unhit(key: str, rate: Rate) -> None:
    """Take back one event that hit() counted for ``key`` in the current window (a request then refused
    for another reason, before it did what the limit counts)."""
    window_key = _window_key(key, _window_start(time.time(), rate))
    try:
        try:
            strict(cache).incr(window_key, -1)
        except CacheUnavailableError:
            _note_fallback(key)
            _local.decr(window_key)
    except ValueError:  # expired meanwhile: nothing left to take back
        pass


def current(key: str, rate: Rate) -> int:
    """The events counted for ``key`` in the current window (the local count while the cache is down)."""
    window_key = _window_key(key, _window_start(time.time(), rate))
    try:
        return int(strict(cache).get(window_key) or 0)
    except CacheUnavailableError:
        return int(_local.get(window_key) or 0)


def reset(key: str, rate: Rate) -> None:
    """Forget the events of ``key`` in the current window."""
    window_key = _window_key(key, _window_start(time.time(), rate))
    _local.delete(window_key)
    try:
        strict(cache).delete(window_key)
    except CacheUnavailableError:
        _note_fallback(key)


def take_turn(key: str, interval: int) -> float | None:
    """One event per ``interval`` seconds for ``key`` (fixed windows, like the counters): None when this
    caller got the window's turn, else the seconds until the next window."""
    now = time.time()
    window_start = int(now // interval * interval)
    turn_key = f"turn:{key}:{window_start}"
    try:
        taken = strict(cache).add(turn_key, 1, interval + 1)
    except CacheUnavailableError:
        _note_fallback(key)
        taken = _local.add(turn_key, 1, interval + 1)
    return None if taken else window_start + interval - now


def forget_local_counts() -> None:
    """Empty this process's fallback counters (tests)."""
    _local.clear()
    _fallback_logged.clear()
