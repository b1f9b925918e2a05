"""Clients that keep calling the API through nginx while a test changes the stack under them (a deploy, a
rollback, a Swarm update, a certificate reload), and what they saw: every request that did not get its
expected answer, and every write the API acknowledged.

Each client is a logged-in user of its own that loops over GET auth/me, PATCH auth/me (a new first name
each time) and, now and then, POST auth/signup of a new user from an anonymous session, over HTTP/1.1
with keepalive. A request fails when it raises (a connection error, a timeout, anything) or gets any
status other than the one the API promises. Nothing is retried, whatever a browser would do: `requests`,
httpx, OkHttp for a POST or PATCH, and most API clients and server-to-server callers send a request
once, so a kept-alive connection closed under a request is a failed request (issue 21).

Not HTTP/2: there, nginx's GOAWAY names the last stream it took and answers it before closing, and
browsers read that answer; Python's h2 (4.x) refuses every frame after a GOAWAY, so httpx would report
a request nginx answered as failed. (test_prod.py checks HTTP/2 itself.) Nor a browser: Chromium on the
Docker host aborts the requests in flight with ERR_NETWORK_CHANGED whenever Docker adds a network
interface, as a deploy's new containers do, which no browser elsewhere sees.
"""

import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from .api import PASSWORD, csrf_headers, new_email, signup
from .stacks import FIGURES, Stack


@dataclass
class Request:
    started: float
    ended: float
    what: str
    failure: str | None


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


def http_client(origin: str, context: ssl.SSLContext) -> httpx.Client:
    """Keep-alive over HTTP/1.1, no retries (httpx's default)."""
    return httpx.Client(
        base_url=origin, transport=httpx.HTTPTransport(verify=context, local_address="127.0.0.1"), timeout=20
    )


def call(load: Load, client: httpx.Client, what: str, expected: int, **kwargs) -> httpx.Response | None:
    method, path = what.split(" ", 1)
    started = time.monotonic()
    failure = None
    try:
        response = client.request(method, path, **kwargs)
        if response.status_code != expected:
            failure = f"{response.status_code} {response.text[:200]}"
    except Exception as error:
        failure = f"{type(error).__name__}: {error}"
    load.record(Request(started, time.monotonic(), what, failure))
    return None if failure else response


def client_loop(
    load: Load, origin: str, context: ssl.SSLContext, pause: float, signup_every: int, ready, stop
) -> None:
    email = new_email()
    with http_client(origin, context) as user, http_client(origin, context) as anonymous:
        response = signup(user, origin, email)
        assert response.status_code == 201, response.text
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
                    headers=csrf_headers(user, origin),
                )
                if response is not None:
                    with load.lock:
                        load.first_names[email] = first_name
            if turn % signup_every == 0:
                # A new visitor: a fresh anonymous session (the connection stays), its CSRF cookie, signup.
                anonymous.cookies.clear()
                new_user = new_email()
                if call(load, anonymous, "GET /api/v1/auth/csrf", 200) is not None:
                    response = call(
                        load,
                        anonymous,
                        "POST /api/v1/auth/signup",
                        201,
                        json={"email": new_user, "password": PASSWORD},
                        headers=csrf_headers(anonymous, origin),
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


def lost_writes(stack: Stack, load: Load) -> list[str]:
    """The writes the API acknowledged that PostgreSQL does not hold: a first name other than the last one
    acknowledged, a signed-up user who is not there."""
    # As JSON: the fuzz test before this one leaves names with "|" and line breaks in them.
    (names,) = stack.sql("SELECT coalesce(json_object_agg(email, first_name), '{}') FROM accounts_user")
    rows = json.loads(names)
    lost = [
        f"PATCH {email}: {first_name!r}, not {rows.get(email)!r}"
        for email, first_name in load.first_names.items()
        if rows.get(email) != first_name
    ]
    return lost + [f"signup {email}" for email in sorted(load.signups - set(rows))]


def assert_served_everything(
    stack: Stack, load: Load, window: list[float], what: str, note: str = ""
) -> None:
    """Records the operation's figures (printed at the end of the run), then fails on any failed request or
    lost write."""
    failures, lost = load.failures(), lost_writes(stack, load)
    FIGURES.append(
        f"{what}: {len(load.answered_between(*window))} requests answered in {window[1] - window[0]:.1f} s "
        f"by 16 clients, {len(failures)} failed, {len(lost)} writes lost" + (f"; {note}" if note else "")
    )
    assert failures == [], f"{len(failures)} failed: {failures[:20]}"
    assert lost == [], lost
