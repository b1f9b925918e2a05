"""config/gunicorn.py: the default number of workers follows the container's CPU quota; the requests
gunicorn refuses itself are answered in the API's error shape."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
from gunicorn import util
from gunicorn.http import errors as http_errors
from gunicorn.workers.base import Worker

from config import gunicorn
from config.env import BACKEND_DIR


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_caps_the_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu.max", "150000 100000\n")

    assert gunicorn.cpu_quota(tmp_path) == 1.5
    assert gunicorn.available_cpus(tmp_path) == 2


def test_cgroup_v1_quota_caps_the_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")

    assert gunicorn.available_cpus(tmp_path) == 3


@pytest.mark.parametrize(
    "files",
    [
        {"cpu.max": "max 100000\n"},
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
        {},
    ],
)
def test_no_quota_means_every_cpu_of_the_set(tmp_path, eight_cpus, files):
    for name, text in files.items():
        write(tmp_path / name, text)

    assert gunicorn.cpu_quota(tmp_path) is None
    assert gunicorn.available_cpus(tmp_path) == 8


def test_a_quota_above_the_cpu_set_does_not_add_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu.max", "1600000 100000\n")

    assert gunicorn.available_cpus(tmp_path) == 8


@pytest.mark.parametrize(("value", "expected"), [("3", "workers=3"), ("0", "GUNICORN_WORKERS")])
def test_gunicorn_workers_from_the_environment_or_a_clear_error(value, expected):
    """Loaded as gunicorn loads it, in a fresh process; a bad value names the variable."""
    result = subprocess.run(
        [sys.executable, "-c", "import config.gunicorn as g; print(f'workers={g.workers}')"],
        cwd=BACKEND_DIR,
        env={"PATH": os.environ["PATH"], "GUNICORN_WORKERS": value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert expected in result.stdout + result.stderr
    assert (result.returncode == 0) is (value != "0")


def test_the_master_freezes_what_it_loaded_before_forking_workers():
    import gc

    gc.unfreeze()
    try:
        gunicorn.when_ready(object())

        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()


def refused_by_gunicorn(exc: Exception) -> tuple[str, dict[str, str], dict[str, object]]:
    """What a client reads when gunicorn's worker refuses a request with ``exc``, through gunicorn's own
    error handling, after the worker hook of config/gunicorn.py ran."""
    server, client = socket.socketpair()
    worker = SimpleNamespace(log=SimpleNamespace(warning=lambda *args: None, exception=lambda *args: None))
    Worker.handle_error(worker, None, server, ("203.0.113.9", 50000), exc)
    server.close()
    raw = b"".join(iter(lambda: client.recv(65536), b""))
    client.close()
    head, body = raw.decode().split("\r\n\r\n", 1)
    status_line, *header_lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    assert int(headers["Content-Length"]) == len(body.encode())
    return status_line, headers, json.loads(body)


@pytest.fixture
def json_server_errors(monkeypatch):
    monkeypatch.setattr(util, "write_error", util.write_error)  # restored after the test
    gunicorn.post_worker_init(None)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (http_errors.LimitRequestHeaders("limit request headers fields"), 431, "REQUEST_HEADERS_TOO_LARGE"),
        (http_errors.LimitRequestLine(9000, 8190), 414, "URI_TOO_LONG"),
        (http_errors.InvalidHeader("X-A"), 400, "BAD_REQUEST"),
        (http_errors.InvalidSchemeHeaders(), 400, "BAD_REQUEST"),
        (http_errors.ExpectationFailed("nothing"), 400, "BAD_REQUEST"),
        (RuntimeError("a bug"), 500, "INTERNAL_ERROR"),
    ],
)
def test_requests_gunicorn_refuses_get_the_api_error_shape(json_server_errors, exc, status, code):
    line, headers, body = refused_by_gunicorn(exc)

    assert line.split()[:2] == ["HTTP/1.1", str(status)]
    assert headers["Content-Type"] == "application/json"
    assert headers["Connection"] == "close"
    assert body["code"] == code
    assert set(body) == {"message", "code", "details"}


def test_gunicorn_writes_html_without_the_hook():
    """Guards the test above: gunicorn's own page is what the hook replaces."""
    server, client = socket.socketpair()
    util.write_error(server, 400, "Bad Request", "x")
    server.close()
    assert b"Content-Type: text/html" in client.recv(65536)
    client.close()


def served(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


@pytest.mark.parametrize("delay", [0, 2])
def test_after_sigterm_gunicorn_serves_for_the_stop_delay_then_stops(tmp_path, delay):
    """A real gunicorn with this configuration and a one-line app: with GUNICORN_STOP_DELAY it answers
    as usual for that long after SIGTERM, then stops; without, it stops answering at once."""
    (tmp_path / "hello.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Length', '2')])\n"
        "    return [b'ok']\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = ["gunicorn", "--config", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    server = subprocess.Popen(  # noqa: S603 (the test's own command)
        [sys.executable, "-m", *command, "--threads", "1", "--worker-tmp-dir", str(tmp_path), "hello:app"],
        cwd=BACKEND_DIR,
        # The suite's settings: the worker hook reads DRF's.
        env={**os.environ, "PYTHONPATH": f"{tmp_path}:{BACKEND_DIR}", "GUNICORN_STOP_DELAY": str(delay)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not served(port):
            assert server.poll() is None, server.communicate()[0]
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.05)
        stopped_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        time.sleep(0.5)

        assert served(port) is bool(delay)
        if delay:
            time.sleep(delay - 1)
            assert served(port)
        server.wait(timeout=delay + 10)
        assert time.monotonic() - stopped_at >= delay
    finally:
        server.kill()
        server.communicate()
