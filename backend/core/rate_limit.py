"""Rate limits: the rate grammar ('10/m', '5/15m'), the configured rate of each scope, and fixed-window
counters in the shared cache. The DRF throttles (core.throttling) and the per-account limits of
accounts.services count with these.

The counter is incremented atomically (INCR in Redis), so concurrent requests in several processes cannot
slip past a limit the way DRF's read-modify-write history list can.
"""

import functools
import re
import time
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.core.cache import cache

# The scopes of REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]; each one's rate comes from THROTTLE_<SCOPE>.
ANON = "anon"
USER = "user"
AUTH = "auth"
LOGIN_FAILURES = "login_failures"
PASSWORD_RESET_MAIL = "password_reset_mail"  # noqa: S105 (a scope name)
SCOPES = (ANON, USER, AUTH, LOGIN_FAILURES, PASSWORD_RESET_MAIL)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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


def _window_start(now: float, rate: Rate) -> int:
    return int(now // rate.period * rate.period)


def _window_key(key: str, window_start: int) -> str:
    return f"rate:{key}:{window_start}"


def hit(key: str, rate: Rate) -> float | None:
    """Count one event for ``key``; return the seconds to wait if that went over the limit, else None.

    If the cache is down the event is allowed (and the cache error logged): an outage of Redis must not
    lock everyone out.
    """
    now = time.time()
    window_start = _window_start(now, rate)
    window_key = _window_key(key, window_start)
    cache.add(window_key, 0, timeout=rate.period + 1)
    try:
        count = cache.incr(window_key)
    except ValueError:  # expired between add() and incr()
        cache.set(window_key, 1, timeout=rate.period + 1)
        count = 1
    if count is None or count <= rate.limit:
        return None
    return window_start + rate.period - now


def reset(key: str, rate: Rate) -> None:
    """Forget the events of ``key`` in the current window."""
    cache.delete(_window_key(key, _window_start(time.time(), rate)))
