"""docker/healthcheck, the image's HEALTHCHECK: healthy only when health/live answers 200, asked with the
first name of ALLOWED_HOSTS as Host."""

import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from config.env import BACKEND_DIR

SCRIPT = str(BACKEND_DIR / "docker" / "healthcheck")


class Recorder(BaseHTTPRequestHandler):
    status = 200
    seen: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:
        Recorder.seen.append((self.path, self.headers.get("Host")))
        self.send_response(Recorder.status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server() -> Iterator[int]:
    Recorder.seen = []
    httpd = HTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def check(port: int, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [SCRIPT, str(port)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True, timeout=10
    )


def test_healthy_when_health_live_answers_200_asked_as_the_first_allowed_host(server):
    result = check(server, ALLOWED_HOSTS=" .api.example.com, localhost")

    assert result.returncode == 0, result.stderr
    assert Recorder.seen == [("/api/v1/health/live", "api.example.com")]


def test_without_allowed_hosts_it_asks_as_localhost(server):
    assert check(server).returncode == 0
    assert Recorder.seen == [("/api/v1/health/live", "localhost")]


def test_unhealthy_when_health_live_answers_anything_else(server):
    Recorder.status = 503
    try:
        result = check(server)
    finally:
        Recorder.status = 200

    assert result.returncode == 1
    assert "503" in result.stderr


def test_unhealthy_when_nothing_listens():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    assert check(port).returncode != 0
