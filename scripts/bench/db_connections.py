"""Compare the database connection strategies under gunicorn: a new connection per request, persistent
connections (CONN_MAX_AGE, what the project uses) and psycopg's connection pool.

Usage: DB_HOST=... DB_PORT=... DB_NAME=... DB_USER=... DB_PASSWORD=... REDIS_URL=... \\
       backend/.venv/bin/python scripts/bench/db_connections.py [SECONDS] [CLIENTS] [ROUNDS]
       (or: make bench-db, which starts a throwaway PostgreSQL and Redis with scripts/test-services)

For each strategy it starts gunicorn (2 workers x 4 threads) on 127.0.0.1, logs one user in, then
CLIENTS threads (default 8) call GET /api/v1/auth/me (session from Redis, user from PostgreSQL) over
keep-alive connections for SECONDS (default 10). The strategies take turns for ROUNDS rounds (default
3), so a noisy neighbour on a shared machine hits them all alike. Prints each run and then, per
strategy, the median of the runs: requests per second, median and p99 latency, and how many server
connections the app held afterwards.
"""

import http.client
import json
import os
import signal
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
PORT = 18765
EMAIL, PASSWORD = "bench-db@example.com", "correct horse battery staple"


def django_env(mode: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{BACKEND}{os.pathsep}{Path(__file__).parent}",
        "DJANGO_SETTINGS_MODULE": "bench_settings",
        "BENCH_DB_MODE": mode,
        "THROTTLE_ANON": "1000000/m",
        "THROTTLE_USER": "1000000/m",
        "THROTTLE_AUTH": "1000/m",
        "LOG_LEVEL": "WARNING",
    }


def prepare() -> None:
    env = django_env("persistent")
    subprocess.run([PYTHON, "manage.py", "migrate", "-v0"], cwd=BACKEND, env=env, check=True)
    script = (
        "from accounts.models import User;"
        f"User.objects.filter(email='{EMAIL}').delete();"
        f"User.objects.create_user('{EMAIL}', '{PASSWORD}')"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-v0", "-c", script], cwd=BACKEND, env=env, check=True)


def request(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict[str, str], body: str = ""
):
    conn.request(method, path, body=body or None, headers=headers)
    response = conn.getresponse()
    return response, response.read()


def login() -> str:
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    response, body = request(conn, "GET", "/api/v1/auth/csrf", {})
    cookies = SimpleCookie(response.getheader("Set-Cookie"))
    token = json.loads(body)["csrf_token"]
    response, body = request(
        conn,
        "POST",
        "/api/v1/auth/login",
        {
            "Content-Type": "application/json",
            "X-CSRFToken": token,
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
        },
        json.dumps({"email": EMAIL, "password": PASSWORD}),
    )
    assert response.status == 200, body
    session = SimpleCookie(response.getheader("Set-Cookie"))["sessionid"].value
    return f"sessionid={session}"


def server_connections() -> int:
    script = (
        "from django.db import connection;c=connection.cursor();"
        "c.execute(\"SELECT count(*) FROM pg_stat_activity WHERE application_name='backend' "
        'AND pid <> pg_backend_pid()");print(c.fetchone()[0])'
    )
    env = django_env("none")
    out = subprocess.run(
        [PYTHON, "manage.py", "shell", "-v0", "-c", script],
        cwd=BACKEND,
        env=env,
        check=True,
        capture_output=True,
    )
    return int(out.stdout.decode().strip().splitlines()[-1])


def load(cookie: str, seconds: float, clients: int) -> list[float]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
        mine = []
        while time.monotonic() < deadline:
            started = time.perf_counter()
            response, _ = request(conn, "GET", "/api/v1/auth/me", {"Cookie": cookie})
            mine.append((time.perf_counter() - started) * 1000)
            assert response.status == 200, response.status
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run(mode: str, seconds: float, clients: int) -> tuple[float, float, float, int]:
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{PORT}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
        ],
        cwd=BACKEND,
        env=django_env(mode),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/api/v1/health/live")
                break
            except OSError:
                time.sleep(0.1)
        cookie = login()
        load(cookie, 1.0, clients)  # warm-up: workers import everything, pools fill
        latencies = load(cookie, seconds, clients)
        held = server_connections()
        return (
            len(latencies) / seconds,
            statistics.median(latencies),
            statistics.quantiles(latencies, n=100)[-1],
            held,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def line(mode: str, rps: float, median: float, p99: float, held: float) -> str:
    return (
        f"{mode:<11} {rps:6.0f} req/s   median {median:6.2f} ms   p99 {p99:6.2f} ms   "
        f"connections held {held:g}"
    )


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    prepare()
    print(
        f"GET /api/v1/auth/me, gunicorn 2 workers x 4 threads, {clients} clients, {seconds:g} s per run, "
        f"{rounds} rounds, {os.cpu_count()} CPUs"
    )
    modes = ("none", "persistent", "pool")
    results: dict[str, list[tuple[float, float, float, int]]] = {mode: [] for mode in modes}
    for round_number in range(1, rounds + 1):
        for mode in modes:
            results[mode].append(run(mode, seconds, clients))
            print(f"round {round_number}  " + line(mode, *results[mode][-1]))
    print("\nmedian of the rounds")
    for mode in modes:
        print(line(mode, *(statistics.median(column) for column in zip(*results[mode], strict=True))))


if __name__ == "__main__":
    main()
