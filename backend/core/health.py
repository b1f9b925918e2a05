"""Readiness checks: does the database answer, does Redis answer, within a deadline.

health/ready is public and unthrottled (container and load-balancer checks poll it), so it must be
cheap whatever calls it: a process answers from its last result for HEALTH_CHECK_CACHE_SECONDS, callers
that arrive while a check runs wait for that one instead of starting their own, and each check runs in
a thread of its own that keeps its database connection (CONN_MAX_AGE) instead of opening one per call.
A flood of calls therefore costs at most one check per process and second.
"""

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"

# health/live's answer: the process serves requests. core.middleware gives it, first in the chain.
LIVE_BODY = {"status": OK}


def _check_database() -> None:
    # Runs in this check's own thread, whose connection is reused from call to call like a request's.
    connection = connections["default"]
    connection.close_if_unusable_or_obsolete()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:
        connection.close()  # a broken connection is not reused
        raise


def _check_cache() -> None:
    if settings.CACHES["default"]["BACKEND"] != "django_redis.cache.RedisCache":
        return  # local memory: nothing to reach
    from django_redis import get_redis_connection

    # The raw client, not the cache API: the cache is configured to swallow Redis errors.
    get_redis_connection("default").ping()


CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "redis": _check_cache}

_lock = threading.Lock()
# One thread per check, made on first use (so each gunicorn worker, forked after import, has its own).
# A hung dependency holds its thread; the next calls time out waiting for it instead of adding threads.
_executors: dict[str, ThreadPoolExecutor] = {}
_in_flight: dict[str, Future[None]] = {}
_last: tuple[float, dict[str, str]] | None = None
_running: Future[dict[str, str]] | None = None


def _submit(name: str) -> Future[None]:
    """The running call of a check, or a new one."""
    with _lock:
        future = _in_flight.get(name)
        if future is None or future.done():
            if name not in _executors:
                _executors[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"health-{name}")
            future = _executors[name].submit(CHECKS[name])
            _in_flight[name] = future
        return future


def _run_all(deadline: float) -> dict[str, str]:
    ends_at = time.monotonic() + deadline
    futures = {name: _submit(name) for name in CHECKS}
    results: dict[str, str] = {}
    for name, future in futures.items():
        try:
            future.result(timeout=max(0.0, ends_at - time.monotonic()))
            results[name] = OK
        except FuturesTimeout:
            logger.warning("Health check %s did not answer within %ss", name, deadline)
            results[name] = TIMEOUT
        except Exception as exc:
            logger.warning("Health check %s failed: %s", name, type(exc).__name__)
            results[name] = UNAVAILABLE
    return results


def run_checks(timeout: float | None = None) -> dict[str, str]:
    """Every check's result, 'ok', 'unavailable' or 'timeout', at most HEALTH_CHECK_CACHE_SECONDS old.

    A hung dependency costs a caller at most ``timeout`` seconds.
    """
    global _last, _running
    deadline = settings.HEALTH_CHECK_TIMEOUT if timeout is None else timeout
    with _lock:
        if _last is not None and time.monotonic() - _last[0] < settings.HEALTH_CHECK_CACHE_SECONDS:
            return dict(_last[1])
        running = _running
        leader = running is None
        if running is None:
            running = _running = Future()
    if not leader:
        return dict(running.result())
    try:
        results = _run_all(deadline)
    except BaseException as exc:
        with _lock:
            _running = None
        running.set_exception(exc)
        raise
    with _lock:
        _last = (time.monotonic(), results)
        _running = None
    running.set_result(results)
    return dict(results)


def forget() -> None:
    """Start afresh (tests): no last result, and the check threads closed with their connections."""
    global _last
    with _lock:
        _last = None
        executors = list(_executors.values())
        _executors.clear()
        _in_flight.clear()
    for executor in executors:
        closed = executor.submit(connections.close_all)
        # A thread still waiting on a hung dependency closes its connection when that call ends.
        with contextlib.suppress(FuturesTimeout):
            closed.result(timeout=2)
        executor.shutdown(wait=False)
