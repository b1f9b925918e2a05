"""Faults injected into the running production stack under a write load, one at a time: PostgreSQL, Redis
and the backend killed (SIGKILL to the container's process; Docker's restart policy brings it back), and
Redis stopped, frozen (docker pause) and cut off (disconnected from the data network).

Checked: no acknowledged write is lost (every 201 signup and every 200 PATCH is in PostgreSQL
afterwards), each fault's window of failed requests (5xx or no answer) is not much longer than the fault,
the API answers again within seconds of the fault's end, and while Redis is down the security limits
hold (wrong passwords for one account get 429 past the limit) and a logout stays a logout (503, nothing
changed, or a real logout whose cookie never works again). The figures are printed as a table.
"""

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from stack.api import csrf_headers, logout, me, new_email, signup
from stack.stacks import FIGURES, REPO, Stack, clean_environment, docker_inspect, run

pytestmark = pytest.mark.usefixtures("fault_stack")

WRITERS = 4
READERS = 2
GUNICORN_WORKERS = 2  # stacks.prod_env_file
# config/settings/base.py: THROTTLE_LOGIN_FAILURES, counted in each gunicorn worker while Redis is down.
LOGIN_FAILURES_LIMIT = 5
# How long each Redis outage lasts (the checks made meanwhile may make it longer).
OUTAGE_SECONDS = 6.0
# A fault's failures may outlast it by this much (a restarted service warming up, a connection retried).
WINDOW_GRACE_SECONDS = 10.0
# The API answers again within this after the fault ended.
RECOVERY_SECONDS = 10.0


@dataclass
class Outcome:
    kind: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer
    error: str = ""  # then what the client got instead

    @property
    def failed(self) -> bool:
        return self.status == 0 or self.status >= 500

    @property
    def good(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Load:
    """Signups, PATCH auth/me and GET auth/me from several threads, each with its own session, as long as
    the load runs. Every outcome is recorded, and every write the API acknowledged. Over HTTP/1.1: when
    nginx ends an HTTP/2 connection after its 1000th request (keepalive_requests), httpx sometimes fails
    the request it was sending instead of retrying it on a new connection, as browsers do."""

    stack: Stack
    outcomes: list[Outcome] = field(default_factory=list)
    signed_up: set[str] = field(default_factory=set)
    # Per account: the last PATCHed first_name acknowledged, and every one sent.
    acknowledged: dict[str, int] = field(default_factory=dict)
    attempted: dict[str, int] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def request(self, kind: str, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = send()
        except httpx.HTTPError as error:
            self.outcomes.append(Outcome(kind, started, time.monotonic(), 0, type(error).__name__))
            return None
        self.outcomes.append(Outcome(kind, started, time.monotonic(), response.status_code))
        return response

    def new_account(self, client: httpx.Client) -> str | None:
        client.cookies.clear()
        csrf = self.request("csrf", lambda: client.get("/api/v1/auth/csrf"))
        if csrf is None or csrf.status_code != 200:
            return None
        email = new_email().replace("stack-", "fault-")
        response = self.request("signup", lambda: signup(client, self.stack.origin, email))
        if response is not None and response.status_code == 201:
            self.signed_up.add(email)
            return email
        return None

    def writer(self) -> None:
        with self.stack.client(http2=False) as client:
            email, patches = None, 0
            while not self.stopping.is_set():
                if email is None or patches >= 40:
                    email, patches = self.new_account(client), 0
                    if email is None:
                        time.sleep(0.2)
                    continue
                patches += 1
                value = self.attempted[email] = self.attempted.get(email, 0) + 1
                response = self.request(
                    "patch",
                    lambda value=value: client.patch(  # type: ignore[misc]
                        "/api/v1/auth/me",
                        json={"first_name": str(value)},
                        headers=csrf_headers(client, self.stack.origin),
                    ),
                )
                if response is not None and response.status_code == 200:
                    self.acknowledged[email] = value
                elif response is not None and response.status_code in (401, 403):
                    email = None
                else:
                    time.sleep(0.1)

    def reader(self) -> None:
        with self.stack.client(http2=False) as client:
            email = None
            while not self.stopping.is_set():
                if email is None:
                    email = self.new_account(client)
                    if email is None:
                        time.sleep(0.2)
                    continue
                response = self.request("get", lambda: me(client))
                if response is not None and response.status_code == 401:
                    email = None
                elif response is None or response.status_code >= 500:
                    time.sleep(0.1)

    def start(self) -> None:
        for target in [self.writer] * WRITERS + [self.reader] * READERS:
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def between(self, start: float, end: float) -> list[Outcome]:
        return [outcome for outcome in list(self.outcomes) if start <= outcome.started < end]

    def wait_until_good(self, since: float, timeout: float = 60.0) -> float:
        """Seconds from ``since`` to the first good answer to a request sent after it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert any(thread.is_alive() for thread in self.threads), "the load stopped"
            good = [outcome.ended for outcome in self.between(since, float("inf")) if outcome.good]
            if good:
                return min(good) - since
            time.sleep(0.1)
        raise AssertionError(f"no good answer within {timeout} s")


@dataclass
class Fault:
    name: str
    injected: float
    lifted: float
    window: float
    failures: int
    requests: int
    recovery: float
    # What failed: "signup 503" and the like, with how many.
    failed_kinds: str = ""


# ---------------------------------------------------------------- injecting faults


def container(stack: Stack, service: str) -> str:
    return stack.container_ids()[service]


def kill(stack: Stack, service: str) -> None:
    """SIGKILL to the container's main process, as a crash or the OOM killer would send it; Docker's
    restart policy (unless-stopped) starts it again. `docker kill` would count as stopped by hand."""
    details = docker_inspect(container(stack, service))
    restarts = details["RestartCount"]
    os.kill(details["State"]["Pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:
        details = docker_inspect(details["Id"])
        if details["RestartCount"] > restarts and details["State"]["Running"]:
            return
        assert time.monotonic() < deadline, f"{service} was not restarted"
        time.sleep(0.1)


def docker(*args: str) -> None:
    run(["docker", *args], cwd=REPO, env=clean_environment({}))


@contextmanager
def redis_stopped(stack: Stack) -> Iterator[None]:
    stack.compose("stop", "redis")
    yield
    stack.compose("start", "redis")


@contextmanager
def redis_paused(stack: Stack) -> Iterator[None]:
    redis = container(stack, "redis")
    docker("pause", redis)
    yield
    docker("unpause", redis)


@contextmanager
def redis_cut_off(stack: Stack) -> Iterator[None]:
    """Off the data network: its address is gone and its name no longer resolves, like a partition."""
    redis = container(stack, "redis")
    network = f"{stack.project}_data"
    aliases = docker_inspect(redis)["NetworkSettings"]["Networks"][network]["Aliases"] or []
    docker("network", "disconnect", network, redis)
    yield
    docker("network", "connect", *(f"--alias={alias}" for alias in aliases), network, redis)


# ---------------------------------------------------------------- what must hold while Redis is down


def an_account(stack: Stack) -> tuple[httpx.Client, str]:
    """A client logged in to a new account, and its email (the caller closes the client)."""
    client = stack.client()
    # Between faults; the previous one may still be settling (a restarted worker, a probe of Redis).
    # A new email each time: a 503 may come after the account was created.
    deadline = time.monotonic() + 30
    while True:
        email = new_email().replace("stack-", "fault-check-")
        response = signup(client, stack.origin, email)
        if response.status_code != 503 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert response.status_code == 201, response.text
    return client, email


def wrong_logins_during_outage(stack: Stack, email: str) -> list[int]:
    """Wrong passwords for one account from one address, until the limit refuses them."""
    statuses = []
    with stack.client() as client:
        for _ in range(LOGIN_FAILURES_LIMIT * GUNICORN_WORKERS + 3):
            response = client.post(
                "/api/v1/auth/login",
                json={"email": email, "password": "not the password at all"},
                headers=csrf_headers(client, stack.origin),
            )
            statuses.append(response.status_code)
    return statuses


def assert_the_login_limit_held(statuses: list[int]) -> None:
    # Counted per gunicorn worker while Redis is down: at most the limit answered in each (without the
    # limit, every one would be a 400), the rest refused.
    assert statuses.count(400) <= LOGIN_FAILURES_LIMIT * GUNICORN_WORKERS, statuses
    assert set(statuses) == {400, 429}, statuses


def assert_the_logout_held(stack: Stack, client: httpx.Client, status: int) -> str:
    """After the outage: a logout that answered 503 changed nothing (and works now); one that answered
    204 ended the session for good. Either way the old cookie is refused in the end."""
    cookie = client.cookies[stack.session_cookie]
    if status == 503:
        assert me(client).status_code == 200, "a 503 logout must leave the session as it was"
        # As a client would: again after Retry-After, until the workers use Redis again (each one
        # probes it a few seconds after its last failure).
        deadline = time.monotonic() + 30
        while (response := logout(client, stack.origin)).status_code == 503:
            assert time.monotonic() < deadline, "logout still refused 30 s after the outage"
            time.sleep(int(response.headers["retry-after"]))
        assert response.status_code == 204, response.text
    else:
        assert status == 204, status
    with stack.client() as replay:
        replay.cookies.set(stack.session_cookie, cookie)
        assert me(replay).status_code == 401, "the logged-out session came back"
    return {503: "503, then 204 after", 204: "204"}[status]


# ---------------------------------------------------------------- the test


def test_faults_under_a_write_load(fault_stack):
    stack = fault_stack
    load = Load(stack)
    load.start()
    faults: list[Fault] = []
    outage_checks: list[str] = []

    def measured(
        name: str, inject: Callable[[], None], afterwards: Callable[[], None] = lambda: None
    ) -> None:
        time.sleep(3)  # some load before the fault
        injected = time.monotonic()
        inject()
        lifted = time.monotonic()
        recovery = load.wait_until_good(lifted)
        time.sleep(3)  # the load after it, counted in this fault's window
        outcomes = load.between(injected - 0.5, time.monotonic())
        failed = [outcome for outcome in outcomes if outcome.failed]
        window = (max(o.ended for o in failed) - min(o.started for o in failed)) if failed else 0.0
        kinds = Counter(f"{o.kind} {o.status or o.error}" for o in failed)
        failed_kinds = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items()))
        faults.append(
            Fault(name, injected, lifted, window, len(failed), len(outcomes), recovery, failed_kinds)
        )
        afterwards()

    def redis_outage(name: str, outage: Callable[[Stack], AbstractContextManager[None]]) -> None:
        """During the outage: wrong passwords for one account, and a logout; checked once Redis is back."""
        first, email = an_account(stack)
        first.close()
        logged_in, _ = an_account(stack)
        during: dict[str, Any] = {}

        def inject() -> None:
            with outage(stack):
                started = time.monotonic()
                during["statuses"] = wrong_logins_during_outage(stack, email)
                during["logout"] = logout(logged_in, stack.origin).status_code
                time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))

        def afterwards() -> None:
            statuses = during["statuses"]
            assert_the_login_limit_held(statuses)
            wait_for_redis(stack)
            logout_result = assert_the_logout_held(stack, logged_in, during["logout"])
            outage_checks.append(
                f"{name}: wrong logins {statuses.count(400)} x 400 then {statuses.count(429)} x 429; "
                f"logout {logout_result}"
            )
            logged_in.close()

        measured(name, inject, afterwards)

    try:
        measured("db: SIGKILL, restarted", lambda: kill(stack, "db"))
        measured("redis: SIGKILL, restarted", lambda: kill(stack, "redis"))
        measured("backend: SIGKILL, restarted", lambda: kill(stack, "backend"))
        redis_outage("redis: stopped", redis_stopped)
        redis_outage("redis: paused", redis_paused)
        redis_outage("redis: cut off", redis_cut_off)
        time.sleep(2)
    finally:
        load.stop()

    lost_signups, lost_patches = lost_writes(stack, load)
    report(faults, load, outage_checks, lost_signups, lost_patches)

    assert not lost_signups, f"acknowledged signups missing from PostgreSQL: {sorted(lost_signups)[:10]}"
    assert not lost_patches, f"acknowledged PATCHes missing from PostgreSQL: {lost_patches[:10]}"
    for fault in faults:
        duration = fault.lifted - fault.injected
        assert fault.window <= duration + WINDOW_GRACE_SECONDS, fault
        assert fault.recovery <= RECOVERY_SECONDS, fault
    assert len(load.signed_up) > 20
    assert len(load.acknowledged) > 20


def wait_for_redis(stack: Stack) -> None:
    """Until the backend reports Redis healthy again (its breaker probes every few seconds)."""
    deadline = time.monotonic() + 60
    with stack.client() as client:
        while client.get("/api/v1/health/ready").status_code != 200:
            assert time.monotonic() < deadline, "Redis did not come back"
            time.sleep(0.5)


def lost_writes(stack: Stack, load: Load) -> tuple[set[str], list[str]]:
    rows = stack.exec(
        "db",
        "sh",
        "-c",
        'psql --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --tuples-only --no-align '
        "--field-separator=' ' --command \"SELECT email, first_name FROM accounts_user "
        "WHERE email LIKE 'fault-%'\"",
    ).stdout
    stored = dict(line.split(" ", 1) if " " in line else (line, "") for line in rows.splitlines() if line)
    lost_signups = load.signed_up - set(stored)
    lost_patches = []
    for email, value in load.acknowledged.items():
        first_name = stored.get(email, "")
        # The last acknowledged value, or a later one whose answer got lost in the fault.
        if not (first_name.isdigit() and value <= int(first_name) <= load.attempted[email]):
            lost_patches.append(f"{email}: acknowledged {value}, stored {first_name!r}")
    return lost_signups, lost_patches


def report(
    faults: list[Fault], load: Load, outage_checks: list[str], lost_signups: set[str], lost_patches: list[str]
) -> None:
    columns = ("lasted", "5xx window", "failed", "requests", "recovered")
    FIGURES.append(
        f"{'fault':<30} {columns[0]:>7} {columns[1]:>11} {columns[2]:>7} {columns[3]:>9} {columns[4]:>10}"
    )
    for fault in faults:
        FIGURES.append(
            f"{fault.name:<30} {fault.lifted - fault.injected:>6.1f}s {fault.window:>10.1f}s "
            f"{fault.failures:>7} {fault.requests:>9} {fault.recovery:>9.2f}s  {fault.failed_kinds}"
        )
    FIGURES.extend(outage_checks)

    def answered(kind: str, status: int) -> int:
        return sum(1 for outcome in load.outcomes if outcome.kind == kind and outcome.status == status)

    FIGURES.append(
        f"acknowledged: {answered('signup', 201)} signups, {answered('patch', 200)} PATCHes; "
        f"{answered('get', 200)} reads answered; lost: {len(lost_signups)} signups, "
        f"{len(lost_patches)} PATCHes (checked: each account's last acknowledged value or a later one)"
    )
