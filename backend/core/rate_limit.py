"""Fixed-window counters in the shared cache, for throttles and per-account limits.

The counter is incremented atomically (INCR in Redis), so concurrent requests in several processes cannot
slip past a limit the way DRF's read-modify-write history list can.
"""

import time

from django.core.cache import cache

from core.rates import Rate

__all__ = ["Rate", "hit", "reset"]


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
