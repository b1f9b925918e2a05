"""Clients that keep calling the API through nginx while a test changes the stack under them (a deploy, a
rollback, a certificate reload), and what they saw: every request that did not get its expected answer,
and every write the API acknowledged.

Each client is a logged-in user of its own that loops over GET auth/me, PATCH auth/me (a new first name
each time) and, now and then, POST auth/signup of a new user from an anonymous session, over HTTP/1.1
with keepalive. A request fails when it raises (connection error, timeout) or gets any status other
than the one the API promises.

One retry is allowed, the one browsers make. A graceful nginx reload (a deploy's switch, a new
certificate) closes the idle client connections of its old workers, and a request sent at that instant
on such a connection meets the close before any response byte: nginx closed it without reading the
request (RFC 9112, 9.3.1). Chromium and Firefox send such a request again on a new connection, POST
included; httpx does not, so these clients do it once, and count each retry apart from the failures.

Not HTTP/2: there, nginx's GOAWAY names the last stream it took and answers it before closing, and
browsers read that answer; Python's h2 (4.x) refuses every frame after a GOAWAY, so httpx would report
a request nginx answered as failed. (test_prod.py checks HTTP/2 itself.) Nor a browser: Chromium on the
Docker host aborts the requests in flight with ERR_NETWORK_CHANGED whenever Docker adds a network
interface, as a deploy's new containers do, which no browser elsewhere sees.
"""

import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from .api import PASSWORD, csrf_headers, new_email, signup
from .stacks import Stack


@dataclass
class Request:
    started: float
    ended: float
    what: str
    failure: str | None
    # Why it was sent a second time (a browser's retry on a closed keep-alive connection), or None.
    retried: str | None = None


@dataclass
class Load:
    requests: list[Request] = field(default_factory=list)
    # The last first name the API acknowledged for each client's user, and every acknowledged signup.
    first_names: dict[str, str] = field(default_factory=dict)
    signups: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: Request) -> None:
        with self.lock:
            self.requests.append(request)

    def answered_between(self, start: float, end: float) -> list[Request]:
        with self.lock:
            return [request for request in self.requests if start <= request.ended <= end]

    def failures(self) -> list[str]:
        with self.lock:
            return [f"{request.what}: {request.failure}" for request in self.requests if request.failure]

    def retries(self) -> list[str]:
        with self.lock:
            return [f"{request.what}: {request.retried}" for request in self.requests if request.retried]


# What httpx raises when the server closed a reused connection before answering on it.
CLOSED_BEFORE_ANSWERING = "Server disconnected without sending a response."


class Client:
    """An httpx client that knows whether its next request goes out on a connection already used."""

    def __init__(self, origin: str, context: ssl.SSLContext) -> None:
        self.http = httpx.Client(
            base_url=origin,
            transport=httpx.HTTPTransport(verify=context, local_address="127.0.0.1"),
            timeout=20,
        )
        # Answers since the connection was opened: httpx keeps one connection per client while it is
        # used sequentially, and opens a new one after an error.
        self.answered = 0

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError:
            self.answered = 0
            raise
        self.answered += 1
        return response


def call(load: Load, client: Client, what: str, expected: int, **kwargs) -> httpx.Response | None:
    method, path = what.split(" ", 1)
    started = time.monotonic()
    failure = retried = None
    response = None
    try:
        try:
            reused = client.answered > 0
            response = client.request(method, path, **kwargs)
        except httpx.RemoteProtocolError as error:
            if not reused or str(error) != CLOSED_BEFORE_ANSWERING:
                raise
            retried = str(error)
            response = client.request(method, path, **kwargs)
        if response.status_code != expected:
            failure = f"{response.status_code} {response.text[:200]}"
    except httpx.HTTPError as error:
        failure = f"{type(error).__name__}: {error}"
    load.record(Request(started, time.monotonic(), what, failure, retried))
    return None if failure else response


def client_loop(
    load: Load, origin: str, context: ssl.SSLContext, pause: float, signup_every: int, ready, stop
) -> None:
    email = new_email()
    user, anonymous = Client(origin, context), Client(origin, context)
    with user.http, anonymous.http:
        response = signup(user.http, origin, email)
        assert response.status_code == 201, response.text
        user.answered = 2
        with load.lock:
            load.first_names[email] = ""
        ready.release()
        turn = 0
        while not stop.is_set():
            turn += 1
            if turn % 2:
                call(load, user, "GET /api/v1/auth/me", 200)
            else:
                first_name = f"turn {turn}"
                response = call(
                    load,
                    user,
                    "PATCH /api/v1/auth/me",
                    200,
                    json={"first_name": first_name},
                    headers=csrf_headers(user.http, origin),
                )
                if response is not None:
                    with load.lock:
                        load.first_names[email] = first_name
            if turn % signup_every == 0:
                # A new visitor: a fresh anonymous session (the connection stays), its CSRF cookie, signup.
                anonymous.http.cookies.clear()
                new_user = new_email()
                if call(load, anonymous, "GET /api/v1/auth/csrf", 200) is not None:
                    response = call(
                        load,
                        anonymous,
                        "POST /api/v1/auth/signup",
                        201,
                        json={"email": new_user, "password": PASSWORD},
                        headers=csrf_headers(anonymous.http, origin),
                    )
                    if response is not None:
                        with load.lock:
                            load.signups.add(new_user)
            stop.wait(pause)


@contextmanager
def api_load(
    origin: str, context: ssl.SSLContext, *, clients: int = 16, pause: float = 0.2, signup_every: int = 10
) -> Iterator[Load]:
    """`clients` clients calling the API until the block ends, each pausing `pause` seconds between its
    requests and signing a new user up every `signup_every` turns; yields once each has signed up."""
    load = Load()
    ready = threading.Semaphore(0)
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=client_loop,
            args=(load, origin, context, pause, signup_every, ready, stop),
            daemon=True,
        )
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in threads:
            assert ready.acquire(timeout=60), "a load client could not sign up"
        yield load
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)


@contextmanager
def under_load(stack: Stack, context: ssl.SSLContext | None = None) -> Iterator[tuple[Load, list[float]]]:
    """16 clients (load.py) before, during and after the block; yields the load and, once the block ends,
    its start and end."""
    window: list[float] = []
    with api_load(stack.origin, context or stack.tls_context()) as load:
        time.sleep(2)
        window.append(time.monotonic())
        yield load, window
        window.append(time.monotonic())
        time.sleep(2)


def assert_no_failed_request(load: Load) -> None:
    failures = load.failures()
    assert failures == [], f"{len(failures)} failed: {failures[:20]}"
    # Each client has two connections; a reload closes each at most once under a request.
    assert len(load.retries()) <= 2 * 16 * 2, load.retries()
