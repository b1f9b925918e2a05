"""Work done after the response, in a small thread pool of the serving process.

For work whose duration must not show in the response time: the password-reset mail is sent only for
existing accounts, so sending it inline would tell an attacker which addresses have one. Jobs run with
the request's context (its request id in their log lines); failures are logged, not raised.
"""

import contextvars
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from threading import Lock
from typing import Any

logger = logging.getLogger(__name__)

_lock = Lock()
_executor: ThreadPoolExecutor | None = None
_pending: set[Future[None]] = set()


def _get_executor() -> ThreadPoolExecutor:
    # Created on first use, so each gunicorn worker (forked after import) gets its own threads.
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="background")
        return _executor


def _run(job: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        job(*args)
    except Exception:
        logger.exception("Background job %s failed", getattr(job, "__qualname__", job))


def submit(job: Callable[..., Any], *args: Any) -> None:
    context = contextvars.copy_context()
    future = _get_executor().submit(context.run, _run, job, args)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future[None]) -> None:
    with _lock:
        _pending.discard(future)


def drain(timeout: float = 10.0) -> None:
    """Wait for the jobs submitted so far (the tests call it after each test)."""
    with _lock:
        pending = set(_pending)
    wait(pending, timeout=timeout)
