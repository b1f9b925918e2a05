"""The hot path against a floor, in one run: how fast the project's endpoints are next to a bare Django view.

Usage: backend/.venv/bin/python scripts/bench/hot_path.py [--stack native|prod] [--rounds N] [--seconds S]
       (`make bench`, `make bench STACK=prod`, `make bench BENCH_ARGS="--rounds 5"`)

Targets, each through one nginx over TLS with a keepalive upstream, measured with wrk (32 connections):
  floor  a bare Django JsonResponse view, no middleware (scripts/bench/floor.py)
  live   GET /api/v1/health/live
  csrf   GET /api/v1/auth/csrf
  me     GET /api/v1/auth/me, logged in
  nginx  nginx's own `return 200`
Both apps run under gunicorn with the backend's config (config/gunicorn.py) and the same
GUNICORN_WORKERS x GUNICORN_THREADS; the backend with production settings on a real PostgreSQL and Redis.
The targets take turns in every round (interleaved, in a new order each round), so the machine's noise
hits all of them alike; each figure is the median over the rounds, each ratio the median of the rounds'
own ratios to the floor. Then the backend's memory is read.

--stack native (the default) runs everything as processes on this machine: a throwaway PostgreSQL and
Redis (scripts/test-services), the two gunicorns and Debian's nginx; with 2+ CPUs the two apps share CPU
0 and everything else (nginx, wrk, PostgreSQL, Redis) CPU 1, so the apps are what is measured.
--stack prod boots compose.prod.yaml (project bench-prod, built images) with the floor app and nginx's
bench server added by scripts/bench/compose.bench.yaml; the containers keep their compose CPU limits.
It also times the cold start (`up --wait` of built images) and the idle stack's memory.
Needs wrk (apt-get install wrk) and, for native, nginx (apt-get install nginx-light).
"""

import argparse
import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BACKEND = ROOT / "backend"
PYTHON = BACKEND / ".venv" / "bin" / "python"
PASSWORD = "correct horse battery staple 42"  # noqa: S105 (a throwaway account's)
WORKERS, THREADS = "3", "2"
CONNECTIONS = 32
# The throttles would answer the load with 429s.
UNTHROTTLED = {"THROTTLE_ANON": "100000000/m", "THROTTLE_USER": "100000000/m"}
# Required with production settings (check core.E009); no mail is sent.
RESET_URL = "https://app.example.com/reset-password?uid={uid}&token={token}"
# Ports of the native run, and of the prod stack's published nginx.
NATIVE_HTTPS, BACKEND_PORT, FLOOR_PORT = 31443, 31800, 31801
PG_PORT, REDIS_PORT = 31432, 31379
PROD_PROJECT = "bench-prod"
PROD_HTTPS, PROD_HTTP, PROD_BENCH_HTTPS = 32443, 32080, 32444


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


def run(args: list[str], **kwargs: Any) -> str:
    """The command's output; a failure stops the benchmark with what the command said."""
    result: subprocess.CompletedProcess[str] = subprocess.run(
        args, capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def pinned(cpu: str) -> list[str]:
    return ["taskset", "--cpu-list", cpu] if cpu else []


# ---------------------------------------------------------------- wrk


def wrk_command(url: str, seconds: int, threads: int, connections: int, *options: str) -> list[str]:
    limits = [f"--threads={threads}", f"--connections={connections}", f"--duration={seconds}s"]
    return ["wrk", *limits, *options, url]


def milliseconds(text: str) -> float:
    found = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if found is None:
        sys.exit(f"bench: wrk printed a latency of {text!r}")
    return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[found[2]]


def wrk(url: str, seconds: int, headers: dict[str, str], cpu: str) -> Result:
    options = [
        "--latency",
        "--timeout=10s",
        *(f"--header={name}: {value}" for name, value in headers.items()),
    ]
    output = run([*pinned(cpu), *wrk_command(url, seconds, 2, CONNECTIONS, *options)])
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", output, re.MULTILINE))
    if rps is None or set(percentiles) != {"50", "99"}:
        sys.exit(f"bench: wrk gave no rate or latency distribution for {url}:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout|responses:) (\d+)", output))
    return Result(float(rps[1]), milliseconds(percentiles["50"]), milliseconds(percentiles["99"]), errors)


# ---------------------------------------------------------------- a session, from the outside


def local_client(**options: Any) -> httpx.Client:
    """A client of the benchmark's nginx on 127.0.0.1, which accepts its throwaway certificate."""
    transport = httpx.HTTPTransport(verify=False, local_address="127.0.0.1")
    return httpx.Client(transport=transport, **options)


def session_headers(origin: str) -> dict[str, str]:
    """Signs a benchmark user up through nginx; the Cookie header of its session, and the CSRF header."""
    with local_client(base_url=origin, timeout=30) as client:
        token = client.get("/api/v1/auth/csrf").json()["csrf_token"]
        email = f"bench-{secrets.token_hex(4)}@example.com"
        response = client.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD},
            headers={"X-CSRFToken": token, "Origin": origin},
        )
        response.raise_for_status()
        cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
        csrf = next(value for name, value in client.cookies.items() if "csrftoken" in name)
        return {"Cookie": cookie, "X-CSRFToken": csrf, "Origin": origin}


# ---------------------------------------------------------------- measuring


def measure(
    targets: dict[str, str], headers: dict[str, str], rounds: int, seconds: int, cpu: str
) -> dict[str, list[Result]]:
    results: dict[str, list[Result]] = {name: [] for name in targets}
    say(f"warming up every target for 2 s, then {rounds} rounds of {seconds} s per target, in turns")
    for url in targets.values():
        wrk(url, 2, headers, cpu)
    for round_number in range(1, rounds + 1):
        for name in random.sample(list(targets), len(targets)):
            results[name].append(wrk(targets[name], seconds, headers, cpu))
        say(
            f"round {round_number}: "
            + ", ".join(f"{name} {runs[-1].rps:.0f}/s" for name, runs in results.items())
        )
    return results


def median(results: list[Result], field: str) -> float:
    return statistics.median(float(getattr(result, field)) for result in results)


def round_ratio(runs: list[Result], floor: list[Result], field: str) -> float:
    """The median over the rounds of each round's ratio to the floor of the same round: the targets of
    a round ran minutes apart at most, so a busy spell of the machine cancels within it."""
    return statistics.median(
        float(getattr(run, field) / getattr(base, field)) for run, base in zip(runs, floor, strict=True)
    )


def report(results: dict[str, list[Result]]) -> None:
    floor = results["floor"]
    print(f"\n{'target':<10} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'p99/floor':>9} errors")
    for name, runs in results.items():
        print(
            f"{name:<10} {median(runs, 'rps'):>9.0f} {round_ratio(runs, floor, 'rps'):>6.2f}"
            f" {median(runs, 'p50_ms'):>8.1f} {median(runs, 'p99_ms'):>8.1f}"
            f" {round_ratio(runs, floor, 'p99_ms'):>9.2f} {sum(result.errors for result in runs):>7}"
        )


def measure_all(origin: str, bench_origin: str, args: argparse.Namespace, cpu: str) -> None:
    """Every target in turns."""
    say(f"gunicorn: {WORKERS} workers x {THREADS} threads (gthread) for both apps")
    say(f"wrk: 2 threads, {CONNECTIONS} connections per target")
    headers = session_headers(origin)
    cookie_only = {"Cookie": headers["Cookie"]}
    targets = {
        "floor": f"{bench_origin}/floor",
        "live": f"{origin}/api/v1/health/live",
        "csrf": f"{origin}/api/v1/auth/csrf",
        "me": f"{origin}/api/v1/auth/me",
        "nginx": f"{bench_origin}/nginx",
    }
    report(measure(targets, cookie_only, args.rounds, args.seconds, cpu))


# ---------------------------------------------------------------- native: processes on this machine


NGINX_CONF = """
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    upstream backend {{ server 127.0.0.1:{backend}; keepalive 16; keepalive_timeout 60s; }}
    upstream floor {{ server 127.0.0.1:{floor}; keepalive 16; keepalive_timeout 60s; }}
    server {{
        listen 127.0.0.1:{https} ssl http2;
        ssl_certificate {dir}/fullchain.pem;
        ssl_certificate_key {dir}/privkey.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Request-ID $request_id;
        location /api/ {{ proxy_pass http://backend; }}
        location = /floor {{ proxy_pass http://floor; }}
        location = /nginx {{ default_type application/json; return 200 '{{"status":"ok"}}'; }}
    }}
}}
"""


@contextlib.contextmanager
def native_stack(directory: Path, app_cpu: str, other_cpu: str) -> Iterator[tuple[str, int]]:
    """PostgreSQL, Redis, the backend's and the floor's gunicorn, and nginx; yields the origin and the
    backend's pid."""
    services = directory / "services"
    service_ports = {**os.environ, "TEST_PG_PORT": str(PG_PORT), "TEST_REDIS_PORT": str(REDIS_PORT)}
    run(
        [*pinned(other_cpu), str(ROOT / "scripts" / "test-services"), "start", str(services)],
        env=service_ports,
    )
    processes: list[subprocess.Popen[bytes]] = []
    log = (directory / "servers.log").open("w")
    try:
        env = {
            **{name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "LANG")},
            **dict(line.split("=", 1) for line in (services / "env").read_text().split()),
            **UNTHROTTLED,
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "localhost",
            "PASSWORD_RESET_URL": RESET_URL,
            "TRUSTED_PROXY_COUNT": "1",
            "FORWARDED_ALLOW_IPS": "127.0.0.1",
            "GUNICORN_WORKERS": WORKERS,
            "GUNICORN_THREADS": THREADS,
            "LOG_LEVEL": "WARNING",
        }
        run([str(PYTHON), "manage.py", "migrate", "--no-input"], cwd=BACKEND, env=env)
        run([str(ROOT / "nginx" / "local-cert"), str(directory), "localhost"])
        (directory / "nginx.conf").write_text(
            NGINX_CONF.format(dir=directory, backend=BACKEND_PORT, floor=FLOOR_PORT, https=NATIVE_HTTPS)
        )
        gunicorn = [*pinned(app_cpu), str(PYTHON), "-m", "gunicorn", "--config=config/gunicorn.py"]
        floor = ["--pythonpath", str(ROOT / "scripts" / "bench"), "floor:application"]
        nginx = ["nginx", "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
        for command in (
            [*gunicorn, f"--bind=127.0.0.1:{BACKEND_PORT}", "config.wsgi"],
            [*gunicorn, f"--bind=127.0.0.1:{FLOOR_PORT}", *floor],
            [*pinned(other_cpu), *nginx],
        ):
            processes.append(subprocess.Popen(command, cwd=BACKEND, env=env, stdout=log, stderr=log))
        origin = f"https://localhost:{NATIVE_HTTPS}"
        wait_until_up(f"{origin}/api/v1/health/live", f"{origin}/floor", log=directory / "servers.log")
        yield origin, processes[0].pid
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=40)
        log.close()
        run([str(ROOT / "scripts" / "test-services"), "stop", str(services)], env=service_ports)


def wait_until_up(*urls: str, log: Path, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    with local_client(timeout=5) as client:
        for url in urls:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    sys.exit(
                        f"bench: {url} did not answer 200 within {seconds:.0f} s\n{log.read_text()[-3000:]}"
                    )
                time.sleep(0.5)


def process_tree_pss_mib(pid: int) -> float:
    """The memory of a process and its children (gunicorn's master and workers), as PSS: pages the
    workers share with the master (preload_app) are counted once, not once per process."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    total_kib = 0
    for each in [pid, *map(int, children.read_text().split() if children.exists() else [])]:
        with contextlib.suppress(OSError):
            rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
            total_kib += sum(int(kib) for kib in re.findall(r"^Pss:\s+(\d+) kB", rollup, re.MULTILINE))
    return total_kib / 1024


# ---------------------------------------------------------------- prod: the compose stack


def compose(env_file: Path, *args: str) -> str:
    """`docker compose` of the production stack with the benchmark's floor and nginx server added, through
    scripts/compose, which writes the stack's secret files from the env file."""
    files = ["--file=scripts/bench/compose.bench.yaml"]
    return run(
        ["scripts/compose", "prod", f"--project-name={PROD_PROJECT}", *files, *args],
        cwd=ROOT,
        env={**os.environ, "ENV_FILE": str(env_file)},
    )


def container_memory_mib(env_file: Path) -> dict[str, float]:
    ids = compose(env_file, "ps", "--quiet").split()
    output = run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids])
    units = {"B": 1 / 1024**2, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    return {
        name: float(value) * units[unit]
        for name, value, unit in re.findall(r"^(\S+) ([\d.]+)([KMG]?i?B) ", output, re.MULTILINE)
    }


@contextlib.contextmanager
def prod_stack(directory: Path) -> Iterator[Path]:
    """compose.prod.yaml booted with an operator's .env of fresh secrets for localhost, a certificate from
    nginx/local-cert and ports on 127.0.0.1; the env file. Times the cold start and reads the idle memory."""
    run([str(ROOT / "nginx" / "local-cert"), str(directory), "localhost"])
    (directory / "acme").mkdir()
    values = {
        "SERVER_NAME": "localhost",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "PASSWORD_RESET_URL": RESET_URL,
        **{
            name: secrets.token_hex(16)
            for name in ("DB_PASSWORD", "DB_APP_PASSWORD", "REDIS_PASSWORD", "BACKUP_KEY")
        },
        "TLS_CERT_FILE": f"{directory}/fullchain.pem",
        "TLS_KEY_FILE": f"{directory}/privkey.pem",
        "ACME_WEBROOT": f"{directory}/acme",
        "PUBLISH_ADDRESS": "127.0.0.1",
        "HTTPS_PORT": str(PROD_HTTPS),
        "HTTP_PORT": str(PROD_HTTP),
        "EDGE_SUBNET": "172.16.250.0/24",
        "BENCH_HTTPS_PORT": str(PROD_BENCH_HTTPS),
        "GUNICORN_WORKERS": WORKERS,
        "GUNICORN_THREADS": THREADS,
        **UNTHROTTLED,
    }
    env_file = directory / "bench.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    compose(env_file, "down", "--volumes", "--remove-orphans")
    try:
        say("building the images and starting the stack once")
        compose(env_file, "up", "--detach", "--build", "--wait")
        compose(env_file, "down")
        started = time.monotonic()
        compose(env_file, "up", "--detach", "--wait")
        say(f"cold start of the built images (up --wait, volumes kept): {time.monotonic() - started:.1f} s")
        time.sleep(10)
        # The production services only: the floor app is the benchmark's.
        idle = {name: mib for name, mib in container_memory_mib(env_file).items() if "-floor-" not in name}
        listed = ", ".join(f"{name} {mib:.0f} MiB" for name, mib in sorted(idle.items()))
        say(f"idle memory of the production services: {listed}; in all {sum(idle.values()):.0f} MiB")
        yield env_file
    finally:
        compose(env_file, "down", "--volumes", "--remove-orphans")


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--stack", choices=("native", "prod"), default="native")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    needed = {
        "wrk": "wrk",
        **({"nginx": "nginx-light"} if args.stack == "native" else {"docker": "docker.io"}),
    }
    for tool, package in needed.items():
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (Debian: apt-get install {package})")

    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="bench-") as name:
        directory = Path(name)
        directory.chmod(0o711)  # PostgreSQL, run as its own user, keeps its data below
        if args.stack == "prod":
            say(f"{cpus} CPUs, shared by wrk and the containers within their compose CPU limits")
            with prod_stack(directory) as env_file:
                origin = f"https://localhost:{PROD_HTTPS}"
                measure_all(origin, f"https://localhost:{PROD_BENCH_HTTPS}", args, cpu="")
                memory = container_memory_mib(env_file)
                backend = sum(mib for name, mib in memory.items() if "-backend-" in name)
                print(f"backend container memory after the load: {backend:.0f} MiB")
            return
        app_cpu, other_cpu = ("0", "1") if cpus >= 2 and shutil.which("taskset") else ("", "")
        say(
            f"{cpus} CPUs: both gunicorns on CPU 0; nginx, wrk, PostgreSQL and Redis on CPU 1"
            if app_cpu
            else "1 CPU (or no taskset), shared by every part"
        )
        with native_stack(directory, app_cpu, other_cpu) as (origin, backend_pid):
            measure_all(origin, origin, args, other_cpu)
            pss = process_tree_pss_mib(backend_pid)
            print(f"backend memory after the load (PSS of gunicorn's master and workers): {pss:.0f} MiB")


if __name__ == "__main__":
    main()
