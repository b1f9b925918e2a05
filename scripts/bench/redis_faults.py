"""How the API behaves while Redis is paused (frozen: it accepts connections and answers nothing) or
stopped (connections refused), next to a healthy Redis, in one run.

Usage: DB_HOST=... DB_PORT=... DB_NAME=... DB_USER=... DB_PASSWORD=... \\
       backend/.venv/bin/python scripts/bench/redis_faults.py [SECONDS] [CLIENTS]
       (or: make bench-redis-faults, which starts a throwaway PostgreSQL with scripts/test-services)

It starts a redis-server of its own on 127.0.0.1 and gunicorn (2 workers x 4 threads) with it as the
cache, logs one user in, then for each phase (healthy, paused with SIGSTOP, resumed, stopped with
SIGKILL) has CLIENTS threads (default 8) call GET /api/v1/auth/me for SECONDS (default 5), and times
logins one after the other (the Argon2 hash included). The first requests of a phase are in its
figures: they are the ones that meet the fault first. Prints requests per second, median, p99 and
worst latency, the throughput as a share of the healthy phase, and the login times.
"""

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
PYTHON = sys.executable
EMAIL, PASSWORD = "bench-redis@example.com", "correct horse battery staple"
LOGINS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def django_env(redis_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{BACKEND}{os.pathsep}{Path(__file__).parent}",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "BENCH_DB_MODE": "persistent",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "THROTTLE_ANON": "1000000/m",
        "THROTTLE_USER": "1000000/m",
        "THROTTLE_AUTH": "1000000/m",
        "LOG_LEVEL": "WARNING",
    }


def start_redis(port: int) -> subprocess.Popen[bytes]:
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return redis
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def request(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: str = ""
):
    conn.request(method, path, body=body or None, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def login(port: int) -> tuple[str, float]:
    """A new session for the bench user; its cookie header and the login POST's time in ms."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    response, body = request(conn, "GET", "/api/v1/auth/csrf", {})
    csrf_cookie = SimpleCookie(response.getheader("Set-Cookie"))["csrftoken"].value
    started = time.perf_counter()
    response, body = request(
        conn,
        "POST",
        "/api/v1/auth/login",
        {
            "Content-Type": "application/json",
            "X-CSRFToken": json.loads(body)["csrf_token"],
            "Cookie": f"csrftoken={csrf_cookie}",
        },
        json.dumps({"email": EMAIL, "password": PASSWORD}),
    )
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status == 200, body
    return f"sessionid={SimpleCookie(response.getheader('Set-Cookie'))['sessionid'].value}", elapsed


def load(port: int, cookie: str, seconds: float, clients: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, failed = [], 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response, _ = request(conn, "GET", "/api/v1/auth/me", {"Cookie": cookie})
            mine.append((time.perf_counter() - started) * 1000)
            failed += response.status != 200
        with lock:
            latencies.extend(mine)
            failures += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    redis_port, port = free_port(), free_port()
    redis = start_redis(redis_port)
    env = django_env(redis_port)
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=BACKEND, env=env, check=True)
    script = (
        "from accounts.models import User;"
        f"User.objects.filter(email='{EMAIL}').delete();"
        f"User.objects.create_user('{EMAIL}', '{PASSWORD}')"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-v0", "-c", script], cwd=BACKEND, env=env, check=True)
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
        ],
        cwd=BACKEND,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/api/v1/health/live")
                break
            except OSError:
                time.sleep(0.1)
        cookie, _ = login(port)
        load(port, cookie, 1.0, clients)  # warm-up
        print(
            f"GET /api/v1/auth/me, gunicorn 2 workers x 4 threads, {clients} clients, "
            f"{seconds:g} s per phase, {os.cpu_count()} CPUs; logins one after the other, {LOGINS} per phase"
        )
        print(
            f"{'phase':<9} {'req/s':>6} {'of healthy':>10} {'median':>9} {'p99':>9} {'worst':>9} "
            f"{'non-200':>7}   login median / worst"
        )
        healthy_rps = None
        phases = [
            ("healthy", lambda: None),
            ("paused", lambda: redis.send_signal(signal.SIGSTOP)),
            ("resumed", lambda: redis.send_signal(signal.SIGCONT)),
            ("stopped", lambda: redis.kill()),
        ]
        for name, enter in phases:
            enter()
            latencies, failures = load(port, cookie, seconds, clients)
            logins = [login(port)[1] for _ in range(LOGINS)]
            rps = len(latencies) / seconds
            healthy_rps = healthy_rps or rps
            p99 = statistics.quantiles(latencies, n=100)[-1]
            print(
                f"{name:<9} {rps:6.0f} {rps / healthy_rps:9.0%} {statistics.median(latencies):7.1f}ms "
                f"{p99:7.1f}ms {max(latencies):7.1f}ms {failures:7d}   "
                f"{statistics.median(logins):6.1f} / {max(logins):6.1f} ms"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        redis.send_signal(signal.SIGCONT)
        redis.kill()
        redis.wait()


if __name__ == "__main__":
    main()
