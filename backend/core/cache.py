"""Redis, made to fail fast: one slow or dead Redis must not multiply its timeout per request.

redis-py 8 retries a failed command ten times with backoff, and a request makes several cache calls, so
a paused Redis cost seconds per request. Here (CONNECTION_POOL_CLASS in base.py):

- no retries, and short socket timeouts (base.py);
- a per-process circuit breaker per Redis server: after a failure, every command fails at once for
  REDIS_BREAKER_SECONDS; then one command probes, and its success closes the breaker;
- name resolution bounded by the connect timeout: a stopped container's name can stall the resolver
  for seconds.

Most callers use the cache API, which swallows the errors (IGNORE_EXCEPTIONS) and degrades: sessions
are read from the database, anon/user throttles let requests through. Callers that must know whether
Redis answered (ending a session, counting a security limit) use ``strict``, which raises
CacheUnavailableError instead.

The breaker logs one WARNING when it opens and one INFO when Redis answers again, with the number of
commands it skipped, so an outage shows in the log as two lines per process, not one per request.
"""

import hashlib
import ipaddress
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Any

import redis
from django.conf import settings
from django.core.cache import BaseCache
from django_redis.exceptions import ConnectionInterrupted
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

_FAILURES = (RedisConnectionError, RedisTimeoutError)


class CacheUnavailableError(Exception):
    """The shared cache did not answer (or its breaker is open): the operation may not have happened."""


# ---------------------------------------------------------------- the circuit breaker


class CircuitBreaker:
    """Per process and per Redis server. Closed: commands go through. Open (for ``open_seconds`` after
    a failure): commands fail at once. Then half-open: one command at a time probes; success closes
    it, failure opens it again."""

    def __init__(self, server: str, open_seconds: float) -> None:
        self.server = server
        self.open_seconds = open_seconds
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0: closed
        self._probing_until = 0.0
        self._opened_at = 0.0
        # Counters for the log lines and for tests and benchmarks.
        self.openings = 0
        self.skipped = 0

    @property
    def is_closed(self) -> bool:
        return self._open_until == 0.0

    def allow(self) -> bool:
        """May a command go to Redis now? False counts as a skipped command."""
        if self._open_until == 0.0:  # closed: the common case, without the lock
            return True
        now = time.monotonic()
        with self._lock:
            if self._open_until == 0.0:
                return True
            if now < self._open_until or now < self._probing_until:
                self.skipped += 1
                return False
            # Half-open: this caller probes; the others keep skipping until it is done.
            self._probing_until = now + self.open_seconds
            return True

    def failed(self, error: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            was_closed = self._open_until == 0.0
            self._open_until = now + self.open_seconds
            self._probing_until = 0.0
            if was_closed:
                self.openings += 1
                self._opened_at = now
        if was_closed:
            logger.warning(
                "Redis at %s is unavailable (%s: %s); skipping it for %ss at a time until it answers",
                self.server,
                type(error).__name__,
                error,
                self.open_seconds,
            )

    def succeeded(self) -> None:
        if self._open_until == 0.0:
            return
        with self._lock:
            if self._open_until == 0.0:
                return
            outage = time.monotonic() - self._opened_at
            skipped, self.skipped = self.skipped, 0
            self._open_until = self._probing_until = 0.0
        logger.info(
            "Redis at %s answers again after %.1fs; %d commands skipped meanwhile",
            self.server,
            outage,
            skipped,
        )


_breakers: dict[str, CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker_for(server: str) -> CircuitBreaker:
    with _breakers_lock:
        if server not in _breakers:
            _breakers[server] = CircuitBreaker(server, settings.REDIS_BREAKER_SECONDS)
        return _breakers[server]


def reset_breakers() -> None:
    """Forget every breaker's state (tests)."""
    with _breakers_lock:
        _breakers.clear()


# ---------------------------------------------------------------- bounded name resolution

# Resolution in a small pool, so a stalled resolver holds at most these threads, not a request.
_resolver = ThreadPoolExecutor(max_workers=2, thread_name_prefix="redis-resolve")


def resolve(host: str, port: int, timeout: float | None) -> str:
    """The first address of ``host``, or OSError if the resolver has not answered within ``timeout``."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    future = _resolver.submit(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    try:
        addresses = future.result(timeout=timeout)
    except FuturesTimeout:
        raise OSError(f"resolving {host} took longer than {timeout}s") from None
    return str(addresses[0][4][0])


# ---------------------------------------------------------------- connections and the pool


class _BreakerMixin:
    """For redis-py connection classes: every command passes the breaker, every failure trips it."""

    breaker: CircuitBreaker

    def connect(self) -> None:
        # The pool calls connect() for every command, also on an already connected connection.
        if not self.breaker.allow():
            raise RedisConnectionError(f"Redis at {self.breaker.server} skipped: circuit open")
        try:
            super().connect()  # type: ignore[misc]
        except _FAILURES as error:
            self.breaker.failed(error)
            raise

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        try:
            super().send_packed_command(command, check_health)  # type: ignore[misc]
        except _FAILURES as error:
            self.breaker.failed(error)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            response = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except _FAILURES as error:
            self.breaker.failed(error)
            raise
        self.breaker.succeeded()
        return response


class Connection(_BreakerMixin, redis.Connection):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.breaker = breaker_for(f"{self.host}:{self.port}")

    def _connect(self) -> socket.socket:
        # redis-py resolves self.host itself, without a timeout; hand it an address instead.
        host = self.host
        self.host = resolve(host, self.port, self.socket_connect_timeout)
        try:
            return super()._connect()  # type: ignore[no-any-return, no-untyped-call]
        finally:
            self.host = host


class SSLConnection(_BreakerMixin, redis.SSLConnection):
    # Name resolution stays redis-py's here: TLS checks the certificate against the host name.

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.breaker = breaker_for(f"{self.host}:{self.port}")


class UnixDomainSocketConnection(_BreakerMixin, redis.UnixDomainSocketConnection):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]
        self.breaker = breaker_for(self.path)


_CONNECTION_CLASSES: dict[type, type] = {
    redis.Connection: Connection,
    redis.SSLConnection: SSLConnection,
    redis.UnixDomainSocketConnection: UnixDomainSocketConnection,
}


class ConnectionPool(redis.ConnectionPool):
    """django-redis's pool (CONNECTION_POOL_CLASS): breaker connections, and no retries."""

    def __init__(self, connection_class: type = redis.Connection, **kwargs: Any) -> None:
        kwargs["retry"] = Retry(NoBackoff(), 0)
        super().__init__(
            connection_class=_CONNECTION_CLASSES.get(connection_class, connection_class), **kwargs
        )


# ---------------------------------------------------------------- strict operations


def _uses_redis(cache: BaseCache) -> bool:
    return hasattr(cache, "client") and hasattr(cache.client, "get_client")


class strict:  # noqa: N801 (used like a function: strict(cache).delete(key))
    """The cache operations that must not be silent about failure: each raises CacheUnavailableError when
    Redis did not answer, where the cache API would return a default. Other caches (local memory) are
    called as they are."""

    def __init__(self, cache: BaseCache) -> None:
        self._cache = cache
        self._redis = _uses_redis(cache)

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        target = self._cache.client if self._redis else self._cache  # type: ignore[attr-defined]
        try:
            return getattr(target, name)(*args, **kwargs)
        except ConnectionInterrupted as error:
            raise CacheUnavailableError(str(error.__cause__ or error)) from error

    def get(self, key: str, default: Any = None) -> Any:
        return self._call("get", key, default=default)

    def add(self, key: str, value: Any, timeout: float | None) -> bool:
        return bool(self._call("add", key, value, timeout=timeout))

    def incr(self, key: str, delta: int = 1) -> int:
        return int(self._call("incr", key, delta))

    def delete(self, key: str) -> None:
        self._call("delete", key)

    def end(self, key: str, tombstone: str, timeout: int) -> None:
        """Delete ``key`` and set ``tombstone`` for ``timeout`` seconds, in one step on Redis (_END_SCRIPT):
        set_unless_ended then never writes ``key`` again while the tombstone lives."""
        if not self._redis:
            self._cache.set(tombstone, 1, timeout)
            self._cache.delete(key)
            return
        self._script(_END_SCRIPT, _END_SHA, [key, tombstone], [max(1, int(timeout))])

    def set_unless_ended(self, key: str, value: Any, timeout: float, tombstone: str) -> bool:
        """Set ``key`` for ``timeout`` seconds unless ``tombstone`` exists (end() has ended it); whether it
        was set. On Redis one step (_SET_UNLESS_ENDED_SCRIPT); elsewhere a check, then a set."""
        if not self._redis:
            if self._cache.get(tombstone) is not None:
                return False
            self._cache.set(key, value, timeout)
            return True
        args = [self._cache.client.encode(value), max(1, int(timeout))]  # type: ignore[attr-defined]
        return bool(self._script(_SET_UNLESS_ENDED_SCRIPT, _SET_UNLESS_ENDED_SHA, [key, tombstone], args))

    def _script(self, script: str, sha: str, keys: list[str], args: list[Any]) -> Any:
        client = self._cache.client  # type: ignore[attr-defined]
        redis_client = client.get_client(write=True)
        redis_keys = [client.make_key(key) for key in keys]
        try:
            try:
                return redis_client.evalsha(sha, len(keys), *redis_keys, *args)
            except NoScriptError:  # a Redis that has not run it since it started: EVAL loads it
                return redis_client.eval(script, len(keys), *redis_keys, *args)
        except _FAILURES as error:
            raise CacheUnavailableError(str(error)) from error

    def count(self, key: str, timeout: int) -> int:
        """Add one to the counter ``key`` (created at 1, expiring after ``timeout`` seconds); its new value.

        On Redis one command: a script of INCR, then EXPIRE NX (Redis 7+), which sets the expiry only on
        the key INCR has just created (_COUNT_SCRIPT). Elsewhere add() and incr().
        """
        if not self._redis:
            self._cache.add(key, 0, timeout)
            try:
                return int(self._cache.incr(key))
            except ValueError:  # expired between add() and incr()
                self._cache.add(key, 1, timeout)
                return 1
        return int(self._script(_COUNT_SCRIPT, _COUNT_SHA, [key], [timeout]))


# strict.count's one command. A script rather than a pipeline of INCR and EXPIRE: the same one round trip,
# and about 60 us less of redis-py's CPU per call (a pipeline's bookkeeping), on every throttled request.
_COUNT_SCRIPT = (
    "local count = redis.call('INCR', KEYS[1]) redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX') return count"
)
_COUNT_SHA = hashlib.sha1(_COUNT_SCRIPT.encode(), usedforsecurity=False).hexdigest()

# strict.end and strict.set_unless_ended (core.sessions: a logged-out session's copy is never written back
# by a request that read the session before the logout ended it).
_END_SCRIPT = "redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) redis.call('DEL', KEYS[1]) return 1"
_END_SHA = hashlib.sha1(_END_SCRIPT.encode(), usedforsecurity=False).hexdigest()
_SET_UNLESS_ENDED_SCRIPT = (
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1"
)
_SET_UNLESS_ENDED_SHA = hashlib.sha1(_SET_UNLESS_ENDED_SCRIPT.encode(), usedforsecurity=False).hexdigest()
