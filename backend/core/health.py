"""Readiness checks: does the database answer, does Redis answer, within a deadline."""

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout

from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"
TIMEOUT = "timeout"


def _check_database() -> None:
    # Runs in a worker thread with its own connection, closed here so none is left behind.
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connections["default"].close()


def _check_cache() -> None:
    if settings.CACHES["default"]["BACKEND"] != "django_redis.cache.RedisCache":
        return  # local memory: nothing to reach
    from django_redis import get_redis_connection

    # The raw client, not the cache API: the cache is configured to swallow Redis errors.
    get_redis_connection("default").ping()


CHECKS: dict[str, Callable[[], None]] = {"database": _check_database, "redis": _check_cache}


def run_checks(timeout: float | None = None) -> dict[str, str]:
    """Run every check in parallel; each result is 'ok', 'unavailable' or 'timeout'.

    A hung dependency costs at most ``timeout`` seconds: its thread is left to finish on its own.
    """
    deadline = settings.HEALTH_CHECK_TIMEOUT if timeout is None else timeout
    ends_at = time.monotonic() + deadline
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    futures = {name: executor.submit(check) for name, check in CHECKS.items()}
    results: dict[str, str] = {}
    try:
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
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return results
