"""gunicorn settings for the prod image: `gunicorn --config config/gunicorn.py config.wsgi`.

The timeouts below fit nginx/templates/default.conf.template and compose.prod.yaml, and
config/tests/test_documentation.py checks that they still do:

- `timeout` restarts a worker silent for as long as nginx waits for a response (proxy_read_timeout).
- `keepalive` is longer than nginx keeps idle upstream connections (the upstream's keepalive_timeout), so
  gunicorn never closes a connection that nginx is about to reuse.
- On SIGTERM the workers get `graceful_timeout` (the longest request nginx waits for) to finish; compose's
  `stop_grace_period` is longer, so `docker compose stop` never kills a request midway. With
  GUNICORN_STOP_DELAY (Swarm), the backend first keeps serving as usual for that many seconds.

Access lines come from nginx (bytes, upstream time) and from Django (core.middleware: user id, time in
Django); gunicorn writes none of its own, only its error log, as JSON.
"""

import gc
import math
import os
import time
from pathlib import Path

from config.env import env_int, env_networks

CGROUP = Path("/sys/fs/cgroup")


def cpu_quota(cgroup: Path = CGROUP) -> float | None:
    """The CPU quota of this container's cgroup (compose `cpus:`), in CPUs; None when unlimited."""
    try:  # cgroup v2
        quota, period = (cgroup / "cpu.max").read_text().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 else quota_us / period_us


def available_cpus(cgroup: Path = CGROUP) -> int:
    """CPUs this container may use: its CPU set, capped by its CPU quota."""
    cpus = len(os.sched_getaffinity(0))
    quota = cpu_quota(cgroup)
    return cpus if quota is None else max(1, min(cpus, math.ceil(quota)))


bind = "0.0.0.0:8000"
# gthread: a few processes with threads each. Requests mostly wait on PostgreSQL and Redis, and the
# Argon2 hash releases the GIL, so threads serve them well at a fraction of the memory of processes.
worker_class = "gthread"
# Two per CPU, at most 8 (each worker holds about 40 MiB; compose.prod.yaml gives the backend 1 GiB).
workers = env_int("GUNICORN_WORKERS", min(2 * available_cpus(), 8), min_value=1, max_value=64)
threads = env_int("GUNICORN_THREADS", 4, min_value=1, max_value=64)

# Load Django once in the master: a configuration error stops start-up with one message instead of
# one per worker, and the workers share the loaded code's memory.
preload_app = True


# Seconds the backend goes on serving after SIGTERM before its graceful stop begins: the time whatever
# sends it requests needs to notice that it is stopping. In Swarm (compose.swarm.yaml), a stopping task
# leaves Docker's DNS 2 s before its SIGTERM, and nginx asks the DNS again every 2 s (`resolve`); until
# it has, a request it sends on a kept-alive connection would meet gunicorn closing it, and nginx does
# not retry a POST elsewhere. 0 under compose, where `make deploy` takes a container out of nginx before
# it stops it.
stop_delay = env_int("GUNICORN_STOP_DELAY", 0, min_value=0, max_value=60)


def when_ready(server: object) -> None:
    """Before the first worker is forked: move everything loaded so far out of the garbage collector's
    sight (gc.freeze). Django, DRF and the app are some 100,000 objects that live as long as the
    process; without this, every full collection in every worker walks them again, and by writing to
    their headers copies the memory pages the workers would otherwise share with the master.

    With a stop delay, the master's SIGTERM handler waits that long first (gunicorn looks its handlers
    up on the arbiter at each signal); the workers serve meanwhile."""
    gc.collect()
    gc.freeze()
    if stop_delay:
        stop = server.handle_term  # type: ignore[attr-defined]

        def handle_term() -> None:
            server.log.info(  # type: ignore[attr-defined]
                "SIGTERM: serving %s s more before stopping (GUNICORN_STOP_DELAY)", stop_delay
            )
            time.sleep(stop_delay)
            stop()

        server.handle_term = handle_term  # type: ignore[attr-defined]


timeout = 30
graceful_timeout = 30
keepalive = 75

# Recycle workers now and then, at different times, so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200

# Heartbeat files on tmpfs: a worker blocked on a slow disk write is not mistaken for a hung one.
worker_tmp_dir = "/dev/shm"  # noqa: S108 (a private tmpfs in the container)

# Only nginx may set X-Forwarded-Proto (gunicorn ignores it from anyone else). compose.prod.yaml puts
# nginx and the backend on their own network with this subnet. Django reads the same variable, with the
# same default, for the headers it believes (config/settings/base.py, core.middleware).
forwarded_allow_ips = ",".join(env_networks("FORWARDED_ALLOW_IPS", ["127.0.0.1", "::1"]))

# nginx refuses oversized requests itself, in the API's error shape (URIs over 8 KiB with 414, headers over
# its buffers with 431: large_client_header_buffers, 16 KiB a field and 64 KiB in all). gunicorn's limits
# sit above whatever nginx forwards, so they never decide: no limit on the request line (nginx's 414
# does), a header field may be as large as all of nginx's buffers together (HTTP/2 joins the cookie
# crumbs into one), and as many fields as gunicorn allows at most (nginx's 64 KiB hold fewer).
limit_request_line = 0
limit_request_field_size = 64 * 1024 + 1024
limit_request_fields = 32768
# Only the scheme header nginx sets (it clears the others); by default gunicorn also weighs
# X-Forwarded-Ssl and X-Forwarded-Protocol, and refuses a request whose scheme headers disagree.
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}

# ---------------------------------------------------------------- logs: JSON lines on stdout

# No access log (see above); the error log through the same JSON formatter as Django's records.
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "core.logging.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"}
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["stdout"], "level": "INFO"},
}


def post_worker_init(worker: object) -> None:
    """A request gunicorn's parser refuses (malformed, or over a limit) is answered by gunicorn itself,
    with an HTML page by default; in the API's error shape instead, like every other error. gunicorn has
    no setting for that body, so its writer is replaced, in each worker once Django is loaded."""
    from gunicorn import util

    from core.exceptions import write_server_error

    util.write_error = write_server_error


# Shown in `ps` and `docker top`.
proc_name = "backend"
# No gunicornc control socket: nothing uses it, and the root filesystem is read-only.
control_socket_disable = True
