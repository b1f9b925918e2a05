"""What one request costs inside the backend, without HTTP: the WSGI application called in a loop.

Usage: backend/.venv/bin/python scripts/bench/request_cost.py [--profile NAME] [--calls N]
       (`make bench-request`; needs DB_* and REDIS_URL of a PostgreSQL and Redis, which the make target
       starts with scripts/test-services)

With production settings, for GET health/live, GET auth/csrf and GET auth/me (logged in), it prints the
median time per call over rounds of N calls, and the round trips each call makes to PostgreSQL and
Redis. --profile me prints a cProfile of `me` sorted by cumulative time. The floor (scripts/bench/floor.py,
a bare Django view) and its bounds for `csrf` and `me` (the floor plus only the round trips and checks
each needs) are measured in a child process, since it configures Django differently; its rounds take
turns with the backend's, so a busy spell of the machine hits both.
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
sys.path.insert(0, str(BACKEND))

# The child that serves the floor app: it warms up, prints each target's round trips, then measures one
# round each time it reads a line, so its rounds take turns with the backend's.
FLOOR = """
import io, json, sys, time
sys.path.insert(0, {bench!r})
from floor import application
def start_response(status, headers, exc_info=None):
    if not status.startswith("200"):
        raise AssertionError(status)
def caller(environ):
    environ = {{**environ, "wsgi.errors": sys.stderr}}
    return lambda: b"".join(application({{**environ, "wsgi.input": io.BytesIO(b"")}}, start_response))
targets = {{name: caller(environ) for name, environ in {targets!r}.items()}}
from django.db import connections
from request_cost import count_round_trips
print(json.dumps(count_round_trips(targets, connections["default"])), flush=True)
for call in targets.values():
    for _ in range(200):
        call()
for _ in sys.stdin:
    costs = {{}}
    for name, call in targets.items():
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range({calls}):
            call()
        wall, used = time.perf_counter() - started, time.process_time() - started_cpu
        costs[name] = [wall / {calls}, used / {calls}]
    print(json.dumps(costs), flush=True)
"""


def wsgi_environ(path: str, cookie: str = "") -> dict[str, Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "172.16.253.10",
        "HTTP_HOST": "localhost",
        "HTTP_X_FORWARDED_FOR": "203.0.113.7",
        "HTTP_X_FORWARDED_PROTO": "https",
        "HTTP_ACCEPT": "application/json",
        "wsgi.url_scheme": "https",
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.version": (1, 0),
        "wsgi.errors": sys.stderr,
    }
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--profile", choices=("live", "csrf", "me"))
    parser.add_argument("--sort", default="cumulative", help="pstats sort key, e.g. tottime")
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        metavar="MIDDLEWARE",
        help="what-if: leave this middleware (dotted path, or its last part) out of MIDDLEWARE",
    )
    args = parser.parse_args()

    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.prod",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="localhost",
        TRUSTED_PROXY_COUNT="1",
        THROTTLE_ANON="100000000/m",
        THROTTLE_USER="100000000/m",
        LOG_LEVEL="INFO",
    )
    os.environ.setdefault("DB_APP_PASSWORD", os.environ.get("DB_PASSWORD", ""))
    # The access line goes to a file, not the terminal: its cost is counted, its output is not shown.
    log = open(os.devnull, "w")  # noqa: SIM115
    sys.stdout = log

    import django
    from django.conf import settings
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command

    if args.without:
        settings.MIDDLEWARE = [
            path for path in settings.MIDDLEWARE if not any(path.endswith(name) for name in args.without)
        ]
    django.setup()
    call_command("migrate", verbosity=0)
    from django.db import connections
    from django.test import Client

    client = Client(HTTP_HOST="localhost", HTTP_X_FORWARDED_PROTO="https", secure=True)
    response = client.get("/api/v1/auth/csrf")
    assert response.status_code == 200, response.content
    token = client.cookies[next(name for name in client.cookies if "csrftoken" in name)].value
    response = client.post(
        "/api/v1/auth/signup",
        {"email": f"cost-{secrets.token_hex(4)}@example.com", "password": "correct horse battery staple 42"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
        HTTP_ORIGIN="https://localhost",
    )
    assert response.status_code == 201, response.content
    cookie = "; ".join(f"{name}={morsel.value}" for name, morsel in client.cookies.items())

    application = WSGIHandler()

    def caller(path: str) -> Callable[[], None]:
        environ = wsgi_environ(path, cookie)

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            if not status.startswith("200"):
                raise AssertionError(f"{path}: {status}")

        def call() -> None:
            b"".join(application({**environ, "wsgi.input": io.BytesIO(b"")}, start_response))

        return call

    targets = {
        "live": caller("/api/v1/health/live"),
        "csrf": caller("/api/v1/auth/csrf"),
        "me": caller("/api/v1/auth/me"),
    }
    round_trips = count_round_trips(targets, connections["default"])
    for call in targets.values():
        for _ in range(200):
            call()

    # The floor and its bounds (floor.py: the floor plus only what `csrf` and `me` cannot leave out), in a
    # child with this process's environment: the same PostgreSQL, Redis, SECRET_KEY and cookies.
    floor_targets = {
        "floor": {**wsgi_environ("/floor"), "wsgi.errors": None},
        "csrf-bound": {**wsgi_environ("/floor/csrf-bound", cookie), "wsgi.errors": None},
        "me-bound": {**wsgi_environ("/floor/me-bound", cookie), "wsgi.errors": None},
    }
    floor_code = FLOOR.format(bench=str(ROOT / "scripts" / "bench"), targets=floor_targets, calls=args.calls)
    child = subprocess.Popen(
        [sys.executable, "-c", floor_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None
    assert child.stdout is not None
    round_trips = {**json.loads(child.stdout.readline()), **round_trips}
    costs: dict[str, list[float]] = {name: [] for name in [*floor_targets, *targets]}
    cpu: dict[str, list[float]] = {name: [] for name in costs}
    for _ in range(5):
        for name, call in targets.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                call()
            costs[name].append((time.perf_counter() - started) / args.calls)
            cpu[name].append((time.process_time() - started_cpu) / args.calls)
        child.stdin.write("\n")
        child.stdin.flush()
        for name, (wall, used) in json.loads(child.stdout.readline()).items():
            costs[name].append(wall)
            cpu[name].append(used)
    child.stdin.close()
    child.wait()

    sys.stdout = sys.__stdout__
    print(f"{'target':<10} {'wall':>9} {'CPU':>9} {'PostgreSQL':>11} {'Redis':>6}")
    for name, values in costs.items():
        queries, redis_calls = round_trips[name]
        wall, used = statistics.median(values), statistics.median(cpu[name])
        print(f"{name:<10} {wall * 1e6:>7.0f}us {used * 1e6:>7.0f}us {queries:>11} {redis_calls:>6}")

    if args.profile:
        profiler = cProfile.Profile(time.process_time)
        call = targets[args.profile]
        profiler.enable()
        for _ in range(args.calls):
            call()
        profiler.disable()
        output = io.StringIO()
        pstats.Stats(profiler, stream=output).sort_stats(args.sort).print_stats(45)
        print(output.getvalue())


def count_round_trips(targets: dict[str, Callable[[], None]], connection: Any) -> dict[str, tuple[int, int]]:
    """The PostgreSQL queries (health-check pings included) and Redis commands of one call of each."""
    import redis
    from django.db.backends.utils import CursorWrapper

    commands: list[str] = []
    original = redis.Connection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        commands.append("x")
        original(self, command, check_health)

    redis.Connection.send_packed_command = counting  # type: ignore[method-assign]
    queries: list[str] = []
    original_execute = CursorWrapper.execute

    def counting_execute(self: Any, sql: str, params: Any = None) -> Any:
        queries.append(sql)
        return original_execute(self, sql, params)

    CursorWrapper.execute = counting_execute  # type: ignore[method-assign]
    # CONN_HEALTH_CHECKS pings through is_usable(), which bypasses the cursor wrapper.
    wrapper_class = type(connection)
    original_is_usable = wrapper_class.is_usable

    def counting_is_usable(self: Any) -> bool:
        queries.append("ping")
        return bool(original_is_usable(self))

    wrapper_class.is_usable = counting_is_usable
    try:
        counts = {}
        for name, call in targets.items():
            call()  # once to warm up, then counted
            commands.clear()
            queries.clear()
            # The health-check ping runs when the connection was used by an earlier request.
            call()
            counts[name] = (len(queries), len(commands))
        return counts
    finally:
        redis.Connection.send_packed_command = original  # type: ignore[method-assign]
        CursorWrapper.execute = original_execute  # type: ignore[method-assign]
        wrapper_class.is_usable = original_is_usable


if __name__ == "__main__":
    main()
