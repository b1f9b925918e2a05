"""core.rate_limit: fixed-window counters in the shared cache."""

import threading
import uuid
from typing import Any

import pytest
from django.core.cache import caches

from core import rate_limit
from core.rate_limit import Rate


@pytest.fixture
def key() -> str:
    return f"test:{uuid.uuid4().hex}"


def hits(key: str, rate: Rate, times: int) -> list[float | None]:
    return [rate_limit.hit(key, rate) for _ in range(times)]


# ---------------------------------------------------------------- Rate.parse


@pytest.mark.parametrize(
    ("text", "limit", "period"),
    [
        ("10/m", 10, 60),
        ("100/h", 100, 3600),
        ("5/15m", 5, 900),
        ("3/d", 3, 86400),
        ("2/s", 2, 1),
        ("7/30s", 7, 30),
        ("1/2h", 1, 7200),
    ],
)
def test_parse(text, limit, period):
    assert Rate.parse(text) == Rate(limit=limit, period=period)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "10",
        "10/",
        "/m",
        "m",
        "ten/m",
        "-1/m",
        "1.5/m",
        "10/x",
        "10/min",
        "10/mm",
        "10/1.5m",
        "10/m ",
        " 10/m",
        "10 / m",
        "10 per minute",
        "5/15",
        # A window of zero seconds is no window at all (hit() would divide by zero).
        "5/0m",
        "1/0s",
    ],
)
def test_parse_rejects_malformed_rates(text):
    with pytest.raises(ValueError, match=r"(?i)rate"):
        Rate.parse(text)


# ---------------------------------------------------------------- hit and reset


def test_allows_exactly_the_limit_per_window_then_says_how_long_to_wait(clock, key):
    rate = Rate(limit=3, period=60)

    assert hits(key, rate, 3) == [None, None, None]
    # 10.5 s into a 60 s window: the rest of the window.
    assert rate_limit.hit(key, rate) == pytest.approx(49.5)
    clock.now += 40
    assert rate_limit.hit(key, rate) == pytest.approx(9.5)


@pytest.mark.parametrize("text", ["1/s", "5/m", "5/15m", "2/h", "3/d"])
def test_wait_is_positive_and_at_most_the_period(clock, key, text):
    rate = Rate.parse(text)
    hits(key, rate, rate.limit)

    wait = rate_limit.hit(key, rate)

    assert wait is not None
    assert 0 < wait <= rate.period


def test_a_new_window_starts_a_new_count(clock, key):
    rate = Rate(limit=2, period=60)
    hits(key, rate, 3)

    clock.now += 60

    assert hits(key, rate, 3)[:2] == [None, None]


def test_windows_are_per_key(clock, key):
    rate = Rate(limit=2, period=60)
    hits(key, rate, 3)

    assert hits(f"{key}:other", rate, 2) == [None, None]
    assert rate_limit.hit(key, rate) is not None


def test_reset_forgets_the_current_window(clock, key):
    rate = Rate(limit=2, period=60)
    hits(key, rate, 3)

    rate_limit.reset(key, rate)

    assert hits(key, rate, 3) == [None, None, pytest.approx(49.5)]


def test_reset_leaves_other_keys_alone(clock, key):
    rate = Rate(limit=1, period=60)
    hits(key, rate, 1)
    hits(f"{key}:other", rate, 1)

    rate_limit.reset(f"{key}:other", rate)

    assert rate_limit.hit(key, rate) is not None


# ---------------------------------------------------------------- concurrency and several processes


def concurrent_allowed(key: str, rate: Rate, threads: int) -> int:
    """Hit ``key`` from ``threads`` threads released at the same moment; return how many were allowed."""
    barrier = threading.Barrier(threads)
    results: list[float | None] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        wait = rate_limit.hit(key, rate)
        with lock:
            results.append(wait)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert len(results) == threads
    return sum(wait is None for wait in results)


def test_concurrent_hits_allow_exactly_the_limit_locmem(settings, clock, key):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "test-rate-limit-concurrency",
        }
    }

    assert concurrent_allowed(key, Rate(limit=5, period=60), threads=30) == 5


@pytest.mark.redis
def test_concurrent_hits_allow_exactly_the_limit_redis(clock, key):
    assert concurrent_allowed(key, Rate(limit=5, period=60), threads=30) == 5


@pytest.mark.redis
def test_separate_cache_clients_share_the_counts(monkeypatch, clock, key):
    """Two gunicorn workers each have their own Redis client; the limit is for both together."""
    from django_redis.pool import ConnectionFactory

    workers: list[Any] = []
    for _ in range(2):
        # A fresh pool registry per client, so the two do not even share a connection pool.
        monkeypatch.setattr(ConnectionFactory, "_pools", {})
        worker_cache: Any = caches.create_connection("default")
        worker_cache.client.get_client(write=True).ping()
        workers.append(worker_cache)
    first, second = (worker.client.get_client(write=True) for worker in workers)
    assert first.connection_pool is not second.connection_pool

    rate = Rate(limit=4, period=60)
    results = []
    for attempt in range(8):
        monkeypatch.setattr(rate_limit, "cache", workers[attempt % 2])
        results.append(rate_limit.hit(key, rate))

    assert [wait is None for wait in results] == [True] * 4 + [False] * 4
    for connection in (first, second):
        connection.connection_pool.disconnect()


# ---------------------------------------------------------------- while Redis is unavailable


@pytest.mark.usefixtures("redis_unreachable")
def test_a_security_limit_is_counted_in_this_process_while_redis_is_unreachable(clock, key, caplog):
    rate = Rate(limit=3, period=60)

    assert hits(key, rate, 5) == [None, None, None, pytest.approx(49.5), pytest.approx(49.5)]
    assert "Shared cache unavailable: counting the test limit in this process" in caplog.messages


@pytest.mark.usefixtures("redis_unreachable")
def test_a_fail_open_limit_lets_everything_through_while_redis_is_unreachable(clock, key):
    rate = Rate(limit=1, period=60)

    assert [rate_limit.hit(key, rate, fail_open=True) for _ in range(5)] == [None] * 5


@pytest.mark.usefixtures("redis_unreachable")
def test_the_fallback_is_logged_once_a_minute_per_scope(clock, key, caplog):
    hits(key, Rate(limit=100, period=60), 20)

    fallbacks = [message for message in caplog.messages if message.startswith("Shared cache unavailable")]
    assert len(fallbacks) == 1


@pytest.mark.usefixtures("redis_unreachable")
def test_turns_are_taken_in_this_process_while_redis_is_unreachable(clock, key):
    assert rate_limit.take_turn(key, 5) is None
    assert rate_limit.take_turn(key, 5) == pytest.approx(5 - 0.5)
    clock.now += 5
    assert rate_limit.take_turn(key, 5) is None


# ---------------------------------------------------------------- address buckets


@pytest.mark.parametrize(
    ("address", "bucket"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:0db8:0001:0002:ffff::", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("not an address", "not an address"),
    ],
)
def test_address_bucket(address, bucket):
    assert rate_limit.address_bucket(address) == bucket


@pytest.mark.redis
def test_a_counter_is_one_command_and_always_expires(clock, key):
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    rate = Rate(limit=5, period=60)
    rate_limit.hit(f"{key}-first", rate)  # loads the script, if this Redis has not run it yet

    def calls() -> dict[str, int]:
        stats = client.info("commandstats")
        return {
            name: stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval", "incr")
        }

    before = calls()
    rate_limit.hit(key, rate)
    after = calls()

    # One EVALSHA from the client; the INCR is the script's.
    assert {name: after[name] - before[name] for name in after} == {"evalsha": 1, "eval": 0, "incr": 1}
    [redis_key] = client.keys(f"*rate:{key}:*")
    assert 0 < client.ttl(redis_key) <= rate.period + 1


@pytest.mark.redis
def test_a_counter_still_counts_after_redis_forgot_the_script(clock, key):
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    rate = Rate(limit=2, period=60)
    first = rate_limit.hit(key, rate)
    client.script_flush()  # as after a restart of Redis

    assert [first, rate_limit.hit(key, rate), rate_limit.hit(key, rate)] == [None, None, pytest.approx(49.5)]
