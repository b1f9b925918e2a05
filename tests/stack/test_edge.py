"""The production stack's edge: what nginx and gunicorn answer themselves under /api/ is in the API's error
shape, nginx refuses floods of the auth endpoints, and one address holding thousands of slow connections
(slowloris) neither starves other clients nor keeps its connections past the timeouts.

Raw HTTP/1.1 and HTTP/2 clients, because the requests are the malformed ones a library would refuse to
send; the slow clients run in a container on the stack's edge network (slow_clients.py), so that nginx
sees them as one address that is not the test's own."""

import contextlib
import json
import select
import socket
import ssl
import time
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

import h2.config
import h2.connection
import h2.events
import httpx
import pytest

from .api import SECURITY_HEADERS, csrf_headers, me, new_email, signup
from .stacks import FIGURES, REPO, Stack, clean_environment, docker_inspect, run

pytestmark = pytest.mark.usefixtures("prod_stack")

TWO_MIB = 2 * 1024 * 1024
# Nothing that nginx refuses itself should take longer than this (the body timeout is 10 s).
AT_ONCE_SECONDS = 2.0


@dataclass
class Answer:
    status: int
    headers: dict[str, list[str]]
    body: bytes
    seconds: float

    def header(self, name: str) -> str:
        [value] = self.headers[name.lower()]
        return value


def assert_api_error(answer: Answer, status: int, code: str) -> dict[str, Any]:
    """The API's error body, JSON, with nginx's security headers and the request id exactly once."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.header("content-type").startswith("application/json"), answer.headers
    body = json.loads(answer.body)
    assert set(body) == {"message", "code", "details"}, body
    assert body["code"] == code, body
    for name, value in SECURITY_HEADERS.items():
        assert answer.headers.get(name) == [value], (name, answer.headers)
    assert len(answer.header("x-request-id")) == 32
    return body


def from_httpx(response: httpx.Response, seconds: float = 0.0) -> Answer:
    headers: dict[str, list[str]] = {}
    for name, value in response.headers.multi_items():
        headers.setdefault(name.lower(), []).append(value)
    return Answer(response.status_code, headers, response.content, seconds)


def tls_socket(stack: Stack, protocol: str) -> ssl.SSLSocket:
    context = stack.tls_context()
    context.set_alpn_protocols([protocol])
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=15)
    return context.wrap_socket(raw, server_hostname="localhost")


def http1(stack: Stack, request: bytes, *, tls: bool = True) -> Answer:
    """Send raw bytes over one HTTP/1.1 connection and read the one response, until the server closes
    the connection or the body is complete."""
    started = time.monotonic()
    if tls:
        connection: socket.socket = tls_socket(stack, "http/1.1")
    else:
        connection = socket.create_connection(("127.0.0.1", stack.https_port), timeout=15)
    received = b""
    with connection:
        # Refused before nginx read everything: the answer is waiting all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLError):
            connection.sendall(request)
        while True:
            try:
                chunk = connection.recv(65536)
            except (ConnectionResetError, ssl.SSLError):
                chunk = b""
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            if not chunk:
                break
            if _ and b"content-length:" in head.lower():
                length = int(BytesHeaderParser().parsebytes(head.split(b"\r\n", 1)[1])["content-length"])
                if len(body) >= length:
                    break
    status_line, _, header_block = head.partition(b"\r\n")
    headers: dict[str, list[str]] = {}
    for name, value in BytesHeaderParser().parsebytes(header_block).items():
        headers.setdefault(name.lower(), []).append(value)
    return Answer(int(status_line.split()[1]), headers, body, time.monotonic() - started)


def http2_post(stack: Stack, path: str, body: bytes, *, content_length: bool) -> Answer:
    """A POST over HTTP/2 that sends its body as fast as flow control allows, read until the response ends
    (or the stream or connection is reset, which fails the calling test: no HTTP answer)."""
    started = time.monotonic()
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    with tls_socket(stack, "h2") as sock:
        connection.initiate_connection()
        stream = connection.get_next_available_stream_id()
        headers = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", f"localhost:{stack.https_port}"),
            (":path", path),
            ("content-type", "application/json"),
        ]
        if content_length:
            headers.append(("content-length", str(len(body))))
        connection.send_headers(stream, headers)
        sent, status, answer_headers, data, ended = 0, 0, {}, b"", False
        while not ended and time.monotonic() - started < 15:
            if sent < len(body) and not connection.streams[stream].closed:
                window = min(connection.local_flow_control_window(stream), connection.max_outbound_frame_size)
                if window > 0:
                    chunk = body[sent : sent + window]
                    sent += len(chunk)
                    connection.send_data(stream, chunk, end_stream=sent == len(body))
            sock.sendall(connection.data_to_send())
            if not select.select([sock], [], [], 0.05)[0] and not sock.pending():
                continue
            received = sock.recv(65536)
            assert received, "the connection was closed without an answer"
            for event in connection.receive_data(received):
                if isinstance(event, h2.events.ResponseReceived):
                    answer_headers = dict(event.headers)
                    status = int(answer_headers.pop(":status"))
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    connection.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.StreamReset | h2.events.ConnectionTerminated):
                    assert status, f"reset without an answer: {event}"
                    assert ended, f"reset before the answer was complete: {event}"
        sock.sendall(connection.data_to_send())
    assert ended, "no complete answer within 15 s"
    return Answer(
        status,
        {name: [value] for name, value in answer_headers.items()},
        data,
        time.monotonic() - started,
    )


# ---------------------------------------------------------------- errors nginx and gunicorn answer themselves

GET_ME = b"GET /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\n"


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /api/v1/auth/me HTTP/1.1 extra\r\nHost: localhost\r\n\r\n", id="request line"),
        pytest.param(b"GET /api/v1/auth/me HTTP/3.0\r\nHost: localhost\r\n\r\n", id="HTTP version"),
        pytest.param(b"GET /api/v1/auth/me HTTP/1.1\r\nHost: a b\r\n\r\n", id="host"),
        pytest.param(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            id="two content lengths",
        ),
        pytest.param(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            id="chunk size",
        ),
        pytest.param(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n",
            id="transfer coding",
        ),
    ],
)
def test_malformed_requests_get_a_json_400(prod_stack, request_bytes):
    assert_api_error(http1(prod_stack, request_bytes), 400, "BAD_REQUEST")


def test_plain_http_to_the_https_port_gets_a_json_400(prod_stack):
    answer = http1(prod_stack, GET_ME + b"\r\n", tls=False)
    assert answer.status == 400
    assert json.loads(answer.body)["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"X-Control: a\x01b\r\n", id="control character"),
        pytest.param(
            b"Content-Type: application/json\r\nContent-Type: text/plain\r\n", id="content type twice"
        ),
    ],
)
def test_requests_gunicorn_refuses_get_a_json_400_through_nginx(prod_stack, header):
    """nginx forwards these; gunicorn's parser refuses them before Django sees them (its own answer,
    config/gunicorn.py)."""
    assert_api_error(http1(prod_stack, GET_ME + header + b"\r\n"), 400, "BAD_REQUEST")


@pytest.mark.parametrize(
    "header",
    [
        # gunicorn would weigh it against nginx's X-Forwarded-Proto and refuse the request.
        pytest.param(b"X-Forwarded-Ssl: off\r\n", id="X-Forwarded-Ssl"),
        # gunicorn answers an expectation other than 100-continue with 417.
        pytest.param(b"Expect: something\r\n", id="Expect"),
        # gunicorn's default limit is 100 header fields.
        pytest.param(b"".join(b"X-Many-%d: x\r\n" % n for n in range(150)), id="150 headers"),
    ],
)
def test_headers_gunicorn_would_refuse_reach_the_api(prod_stack, header):
    assert_api_error(http1(prod_stack, GET_ME + header + b"\r\n"), 401, "NOT_AUTHENTICATED")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Cookie: big=" + b"c" * 20_000 + b"\r\n", id="20 KB cookie"),
        pytest.param(b"".join(b"X-Many-%05d: x\r\n" % n for n in range(6000)), id="6000 headers"),
    ],
)
def test_headers_over_nginx_buffers_get_a_json_431(prod_stack, header):
    assert_api_error(http1(prod_stack, GET_ME + header + b"\r\n"), 431, "REQUEST_HEADERS_TOO_LARGE")


def test_trace_gets_a_json_405_with_allow(prod_stack):
    answers = [http1(prod_stack, b"TRACE /api/v1/auth/me HTTP/1.1\r\nHost: localhost\r\n\r\n")]
    with prod_stack.client() as client:
        answers.append(from_httpx(client.request("TRACE", "/api/v1/auth/csrf")))
    for answer in answers:
        assert_api_error(answer, 405, "METHOD_NOT_ALLOWED")
        assert "GET" in answer.header("allow")
        assert "TRACE" not in answer.header("allow")


def test_a_uri_over_8_kib_gets_a_json_414_over_http1_and_http2(prod_stack):
    long_path = "/api/v1/auth/me?q=" + "a" * 16 * 1024
    answers = [http1(prod_stack, f"GET {long_path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())]
    with prod_stack.client() as client:
        response = client.get(long_path)
        assert response.http_version == "HTTP/2"
        answers.append(from_httpx(response))
        # Up to 8 KiB, the API answers.
        assert client.get("/api/v1/auth/me?q=" + "a" * 8000).status_code == 401
    for answer in answers:
        assert_api_error(answer, 414, "URI_TOO_LONG")


def test_a_2_mib_body_gets_the_json_413_at_once(prod_stack):
    body = b"{" + b" " * (TWO_MIB - 2) + b"}"
    answers = []
    with prod_stack.client(http2=False) as client:
        headers = {"Content-Type": "application/json", **csrf_headers(client, prod_stack.origin)}
        started = time.monotonic()
        response = client.post("/api/v1/auth/login", content=body, headers=headers)
        answers.append(from_httpx(response, time.monotonic() - started))
    chunked = b"".join(b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024) for _ in range(32)) + b"0\r\n\r\n"
    answers.append(
        http1(
            prod_stack,
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
        )
    )
    answers.append(http2_post(prod_stack, "/api/v1/auth/login", body, content_length=True))
    answers.append(http2_post(prod_stack, "/api/v1/auth/login", body, content_length=False))
    for answer in answers:
        assert_api_error(answer, 413, "REQUEST_TOO_LARGE")
        assert answer.seconds < AT_ONCE_SECONDS, answer.seconds


# ---------------------------------------------------------------- the auth endpoints at the edge


def recreate_nginx(stack: Stack, **environment: str) -> None:
    """nginx again, with THROTTLE_AUTH and the like from the shell, which win over the .env file."""
    stack.env.update(environment)
    try:
        stack.compose("up", "--detach", "--wait", "--no-deps", "--force-recreate", "nginx", timeout=300)
    finally:
        for name in environment:
            del stack.env[name]


def test_nginx_refuses_a_flood_of_auth_requests_at_the_api_rate(prod_stack):
    recreate_nginx(prod_stack, THROTTLE_AUTH="5/m")
    try:
        statuses = []
        with prod_stack.client() as client:
            # GET: Django answers 405 at once, so the flood costs no password hashing.
            for _ in range(11):
                statuses.append(client.get("/api/v1/auth/login").status_code)
            refused = [client.get("/api/v1/auth/login"), client.get("/admin/login/")]
            other = client.get("/api/v1/auth/me")
        # Twice the API's limit at once (its fixed window can let that many through), then one per 12 s.
        assert statuses == [405] * 11
        for response in refused:
            body = assert_api_error(from_httpx(response), 429, "THROTTLED")
            assert response.headers["retry-after"] == "12"
            assert body["details"] == {"wait": 12}
        # Only the auth endpoints (and the admin login, counted with them).
        assert other.status_code == 401
    finally:
        recreate_nginx(prod_stack)


# ---------------------------------------------------------------- one address, thousands of slow connections

SLOW_HEADERS = 2100
SLOW_BODIES = 2100
SLOW_HANDSHAKES = 100
# nginx's timeouts (nginx/nginx.conf) and its limit of requests in progress per address (the site).
TIMEOUT_SECONDS = 10
PER_ADDRESS = 100


def established_https_connections(stack: Stack) -> int:
    """Established TCP connections on nginx's port 8443, from inside its container."""
    tables = stack.exec("nginx", "sh", "-c", "cat /proc/net/tcp /proc/net/tcp6 2>/dev/null").stdout
    return sum(
        1
        for line in tables.splitlines()[1:]
        if len(fields := line.split()) > 3 and fields[1].endswith(":20FB") and fields[3] == "01"
    )


def memory_of(container: str) -> str:
    return run(
        ["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
        cwd=REPO,
        env=clean_environment({}),
    ).stdout.strip()


def test_a_normal_client_is_served_while_one_address_holds_thousands_of_slow_connections(prod_stack):
    containers = prod_stack.container_ids()
    image = docker_inspect(containers["backend"])["Config"]["Image"]
    attacker = f"{prod_stack.project}-slow-clients"
    environment = clean_environment({})
    run(["docker", "rm", "--force", attacker], cwd=REPO, env=environment, check=False)
    run(
        [
            "docker", "run", "--detach", "--name", attacker,
            "--network", f"{prod_stack.project}_edge",
            "--ulimit", "nofile=16384:16384",
            "--volume", f"{REPO / 'tests' / 'stack' / 'slow_clients.py'}:/slow_clients.py:ro",
            image, "python", "/slow_clients.py", "nginx", "8443",
            str(SLOW_HEADERS), str(SLOW_BODIES), str(SLOW_HANDSHAKES),
        ],
        cwd=REPO,
        env=environment,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while "holding" not in (
            output := run(["docker", "logs", attacker], cwd=REPO, env=environment).stdout
        ):
            assert time.monotonic() < deadline, output
            time.sleep(0.2)
        holding = json.loads(output.splitlines()[0])["holding"]

        # Meanwhile, another client is served at once.
        latencies = []
        with prod_stack.client() as client:
            for _ in range(5):
                started = time.monotonic()
                assert me(client).status_code == 401
                latencies.append(time.monotonic() - started)
            started = time.monotonic()
            assert signup(client, prod_stack.origin, new_email()).status_code == 201
            signup_seconds = time.monotonic() - started
        held = established_https_connections(prod_stack)
        nginx_memory = memory_of(containers["nginx"])
        FIGURES.append(
            f"slowloris: {holding['connections']} slow connections from one address held at once after "
            f"{holding['opened_in_seconds']} s; nginx then had {held} established HTTPS connections, using "
            f"{nginx_memory}; another client meanwhile: GET me {max(latencies) * 1000:.0f} ms at most, "
            f"signup {signup_seconds * 1000:.0f} ms"
        )
        assert holding["connections"] >= 2000
        # Counted a moment later, when nginx may have cut off the first ones already.
        assert held >= 1500
        assert max(latencies) < 2.0
        assert signup_seconds < 5.0

        run(["docker", "wait", attacker], cwd=REPO, env=environment, timeout=120)
        summary = json.loads(
            run(["docker", "logs", attacker], cwd=REPO, env=environment).stdout.splitlines()[-1]
        )
    finally:
        run(["docker", "rm", "--force", attacker], cwd=REPO, env=environment, check=False)

    done = summary["done"]
    FIGURES.append(f"slowloris: at most {done['peak_open']} of them open at once")
    for kind in ("header", "handshake"):
        cut_off = done[kind]["cut_off_after"]
        FIGURES.append(
            f"slowloris: unfinished {kind}s cut off by nginx {cut_off[0]}-{cut_off[-1]} s after the connect"
        )
        # Every one closed by nginx, none before the timeout: it starts at the accept, and the handshakes
        # wait in line behind the others (the later bound is loose for a busy machine).
        assert done[kind]["outcomes"] == {"closed": len(cut_off)}, done[kind]["outcomes"]
        assert cut_off[0] >= TIMEOUT_SECONDS - 1, cut_off
        assert cut_off[-1] <= 3 * TIMEOUT_SECONDS, cut_off
    bodies = done["body"]
    refused_after, cut_off = bodies["answered_after"], bodies["cut_off_after"]
    FIGURES.append(
        f"slowloris: slow bodies {bodies['outcomes']}: 429 within {refused_after[-1]} s, the others cut "
        f"off {cut_off[0]}-{cut_off[-1]} s after their last byte"
    )
    assert set(bodies["outcomes"]) == {"closed", "status 429"}, bodies["outcomes"]
    # Past the address's first requests in progress, refused with nginx's 429, before any timeout...
    assert len(refused_after) >= (SLOW_BODIES - PER_ADDRESS) * 0.8
    assert refused_after[-1] < TIMEOUT_SECONDS
    # ...and the ones held are cut off once the body has stalled for the timeout.
    assert len(cut_off) >= PER_ADDRESS
    assert cut_off[0] >= TIMEOUT_SECONDS - 1, cut_off
    assert cut_off[-1] <= 3 * TIMEOUT_SECONDS, cut_off
    head, _, body = bodies["answers"]["status 429"].partition("\r\n\r\n")
    assert "\r\nRetry-After: 1\r\n" in head + "\r\n"
    assert json.loads(body) == {
        "message": "Too many requests. Try again in 1 seconds.",
        "code": "THROTTLED",
        "details": {"wait": 1},
    }


# ---------------------------------------------------------------- behind a load balancer: REAL_IP_FROM

# A load balancer on the edge network: sends a request to an nginx over HTTPS with the X-Forwarded-For it
# would add, and prints nginx's request id.
BALANCED_REQUEST = """
import http.client, ssl, sys
connection = http.client.HTTPSConnection(sys.argv[1], 8443, timeout=10,
                                         context=ssl._create_unverified_context())
connection.request("GET", "/api/v1/auth/csrf", headers={"Host": "localhost", "X-Forwarded-For": "6.6.6.6"})
response = connection.getresponse()
print(response.status, response.getheader("X-Request-ID"))
"""


def test_real_ip_from_takes_the_client_from_a_trusted_balancer_only(prod_stack):
    """With REAL_IP_FROM naming the balancer, nginx counts and forwards the address the balancer
    reports; without it (the stack's nginx, the default), the header sender's own address."""
    containers = prod_stack.container_ids()
    nginx_image = docker_inspect(containers["nginx"])["Config"]["Image"]
    backend_image = docker_inspect(containers["backend"])["Config"]["Image"]
    network = f"{prod_stack.project}_edge"
    balanced = f"{prod_stack.project}-real-ip-nginx"
    environment = clean_environment({})
    assert prod_stack.certificate is not None
    certificates = prod_stack.certificate.parent
    edge_subnet = prod_stack.env_values()["EDGE_SUBNET"]
    run(["docker", "rm", "--force", balanced], cwd=REPO, env=environment, check=False)
    run(
        [
            "docker", "run", "--detach", "--name", balanced, "--network", network,
            "--env", "SERVER_NAME=localhost", "--env", "BACKEND_ADDRESS=backend:8000",
            "--env", "PUBLIC_HTTPS_PORT=443", "--env", f"REAL_IP_FROM={edge_subnet}",
            "--volume", f"{certificates / 'fullchain.pem'}:/etc/nginx/certs/fullchain.pem:ro",
            "--volume", f"{certificates / 'privkey.pem'}:/etc/nginx/certs/privkey.pem:ro",
            nginx_image,
        ],
        cwd=REPO,
        env=environment,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while docker_inspect(balanced)["State"]["Health"]["Status"] != "healthy":
            assert time.monotonic() < deadline, run(["docker", "logs", balanced], cwd=REPO, env=environment)
            time.sleep(0.5)

        def through(nginx: str) -> tuple[str, str]:
            output = run(
                ["docker", "run", "--rm", "--network", network, backend_image, "python", "-c",
                 BALANCED_REQUEST, nginx],
                cwd=REPO,
                env=environment,
            ).stdout  # fmt: skip
            status, request_id = output.split()
            [line] = [line for line in prod_stack.logs("backend") if line.get("request_id") == request_id]
            return status, line["client_ip"]

        assert through(balanced) == ("200", "6.6.6.6")
        status, client = through("nginx")
        assert status == "200"
        assert client != "6.6.6.6"
        assert client.startswith(edge_subnet.rsplit(".", 2)[0])
    finally:
        run(["docker", "rm", "--force", balanced], cwd=REPO, env=environment, check=False)
