"""The production stack on Docker Swarm (compose.swarm.yaml, scripts/swarm) on a one-node swarm, deployed by
`make swarm-deploy` from a clean checkout (conftest.py's swarm_stack): every service healthy with its
secrets as files, the API through nginx, requests spread over every replica of a scaled backend, a
deploy over the connection budget refused, `make swarm-update` rolled out under load with no failed
request, and a killed replica costing at most the requests it had in flight while the service heals.
The tests run in file order and share the stack."""

import collections
import json
import secrets
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright

from .api import login, logout, me, new_email, signup
from .browser import SPA_DIRECTORY, chromium_trusting, serve
from .load import Request, assert_served_everything, under_load
from .spec_client import assert_the_spec_contract_holds
from .stacks import FIGURES, PROD_SPA_PORT, SwarmStack, commit, set_site_header, site_header

pytestmark = pytest.mark.usefixtures("swarm_stack")

SERVICES = ("db", "redis", "backend", "nginx", "backup")
SECRETS = ("SECRET_KEY", "DB_PASSWORD", "DB_APP_PASSWORD", "REDIS_PASSWORD", "BACKUP_KEY")


def served_by(stack: SwarmStack, request_ids: set[str]) -> dict[str, str]:
    """The host name in the backend's access line of each request."""
    deadline = time.monotonic() + 20
    while True:
        hosts = {
            line["request_id"]: line["hostname"]
            for line in stack.logs("backend", since="10m")
            if line.get("logger") == "core.access" and line.get("request_id") in request_ids
        }
        if len(hosts) == len(request_ids) or time.monotonic() > deadline:
            return hosts
        time.sleep(1)


def spread(stack: SwarmStack, requests: int) -> collections.Counter[str]:
    """How many of `requests` GET auth/me each backend container served."""
    with stack.client() as client:
        ids = set()
        for _ in range(requests):
            response = me(client)
            assert response.status_code == 401, response.text
            ids.add(response.headers["x-request-id"])
    hosts = served_by(stack, ids)
    assert len(hosts) == requests
    return collections.Counter(hosts.values())


def wait_until_nginx_sends_to(stack: SwarmStack, containers: set[str]) -> None:
    """nginx asks Docker's DNS for the backend's tasks every 2 s (`resolve`, no reload): until it sends
    requests to exactly these containers."""
    deadline = time.monotonic() + 30
    while set(spread(stack, 2 * len(containers) + 3)) != containers:
        assert time.monotonic() < deadline, containers
        time.sleep(1)


# ---------------------------------------------------------------- the deploy


def test_every_service_runs_healthy_with_its_secrets_as_files(swarm_stack):
    for service in SERVICES:
        assert len(swarm_stack.wait_for(service, 1)) == 1, service
    # migrate ran as a job, once per step that ran it, and completed.
    states = swarm_stack.docker(
        "service", "ps", "--format", "{{.CurrentState}}", swarm_stack.service("migrate")
    ).stdout.split("\n")
    assert states[0].startswith("Complete"), states
    assert "swarm: migrated in" in swarm_stack.deploy_output
    # No secret's value is in a service's or a container's definition (environment, command, labels).
    values = swarm_stack.env_values()
    for service in (*SERVICES, "migrate"):
        spec = swarm_stack.docker("service", "inspect", swarm_stack.service(service)).stdout
        containers = swarm_stack.running_containers(service).values()
        inspected = swarm_stack.docker("inspect", *containers).stdout if containers else ""
        for name in SECRETS:
            assert values[name] not in spec, (service, name)
            assert values[name] not in inspected, (service, name)
    # The backend reads them from files only its user may read.
    listing = swarm_stack.exec("backend", "ls", "-ln", "/run/secrets").stdout
    files = {line.split()[-1]: line.split()[:3] for line in listing.splitlines()[1:]}
    assert set(files) == {"secret_key", "redis_url", "email_host_password", "db_app_password"}
    assert {tuple(mode) for mode in files.values()} == {("-r--------", "1", "10001")}
    environment = swarm_stack.exec("backend", "env").stdout
    assert "SECRET_KEY_FILE=/run/secrets/secret_key" in environment.splitlines()
    assert "SECRET_KEY=" not in environment


def test_signup_me_logout_through_nginx(swarm_stack):
    email = new_email()
    with swarm_stack.client() as client:
        assert signup(client, swarm_stack.origin, email).status_code == 201
        assert set(client.cookies) >= {"__Host-sessionid", "csrftoken"}
        response = me(client)
        assert response.status_code == 200
        assert response.json()["email"] == email
        assert logout(client, swarm_stack.origin).status_code == 204
        response = me(client)
        assert response.status_code == 401
        assert response.json()["code"] == "NOT_AUTHENTICATED"
    with swarm_stack.client() as client:
        assert login(client, swarm_stack.origin, email).status_code == 200


@pytest.fixture(scope="module")
def browser(playwright: Playwright, swarm_stack: SwarmStack) -> Iterator[Browser]:
    yield from chromium_trusting(playwright, swarm_stack)


def test_a_spa_written_from_the_spec_works_against_the_swarm_stack(context, swarm_stack):
    """The same checks as against the dev and production stacks (test_spa_dev.py, test_spa_prod.py),
    from a page on another port of the API's host (an origin CORS_ALLOWED_ORIGINS lists)."""
    assert swarm_stack.certificate is not None
    certificate = {
        "certificate": swarm_stack.certificate,
        "key": swarm_stack.certificate.with_name("privkey.pem"),
    }
    with serve(SPA_DIRECTORY, PROD_SPA_PORT, **certificate) as spa_origin:
        assert_the_spec_contract_holds(context, f"{spa_origin}/spec.html?api={swarm_stack.origin}")


def test_a_backup_by_hand_in_the_db_task_then_backup_verify(swarm_stack):
    """docs/operations.md's command for a dump on the data node, and the check of the dump it made."""
    dumped = swarm_stack.exec("db", "backup", "by-hand.dump")
    line = json.loads(dumped.stdout.strip().splitlines()[-1])
    assert line["result"] == "ok", line
    assert line["file"] == "/backups/by-hand.dump"
    verified = swarm_stack.exec("db", "backup-verify", "by-hand.dump", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr


# ---------------------------------------------------------------- scaling


def test_a_scaled_backend_serves_requests_from_every_replica(swarm_stack):
    swarm_stack.docker("service", "scale", "--detach", f"{swarm_stack.service('backend')}=3")
    containers = set(swarm_stack.wait_for("backend", 3).values())
    wait_until_nginx_sends_to(swarm_stack, containers)

    counts = spread(swarm_stack, 60)

    assert set(counts) == containers
    assert min(counts.values()) >= 10, counts
    FIGURES.append(
        "swarm, scaled to 3 replicas: 60 requests served by "
        + ", ".join(f"{host} {count}" for host, count in sorted(counts.items()))
        + " (the access lines' host names)"
    )


# ---------------------------------------------------------------- the connection budget


def test_a_deploy_whose_connections_postgresql_cannot_hold_is_refused(swarm_stack):
    before = swarm_stack.running_containers("backend")

    deployed = swarm_stack.make("swarm-deploy", check=False, timeout=900, env={"BACKEND_REPLICAS": "40"})

    assert deployed.returncode != 0
    assert "core.E008" in deployed.stderr
    assert "41 backend containers (BACKEND_REPLICAS 40, plus 1 while an update replaces them)" in (
        deployed.stderr
    )
    assert "stopped before the backend was updated: the running version keeps serving" in deployed.stderr
    assert swarm_stack.running_containers("backend") == before


# ---------------------------------------------------------------- updates and failures under load


def test_a_rolling_update_under_load_fails_no_request(swarm_stack):
    header = f"Rolled out by the stack test {secrets.token_hex(4)}"
    sha = commit(swarm_stack, "A new site header", set_site_header(header))
    before = swarm_stack.running_containers("backend")

    with under_load(swarm_stack) as (load, window):
        updated = swarm_stack.make("swarm-update", check=False, timeout=900)

    assert updated.returncode == 0, updated.stdout[-4000:] + updated.stderr[-4000:]
    # No request failed, and every write the API acknowledged is there.
    assert_served_everything(swarm_stack, load, window, "swarm, rolling update of 3 replicas")
    # Three new tasks of the image tagged with the commit, each serving the new code.
    after = swarm_stack.wait_for("backend", 3)
    assert set(after).isdisjoint(before)
    images = {task["Spec"]["ContainerSpec"]["Image"] for task in swarm_stack.tasks("backend")}
    assert images == {f"{swarm_stack.project}-backend:{sha}"}
    wait_until_nginx_sends_to(swarm_stack, set(after.values()))
    assert {site_header(swarm_stack) for _ in range(9)} == {header}


def test_a_killed_replica_fails_at_most_its_requests_in_flight_and_the_service_heals(swarm_stack):
    before = swarm_stack.wait_for("backend", 3)
    victim = sorted(before.values())[0]

    with under_load(swarm_stack) as (load, window):
        # It dies between these two moments: docker kill returns once SIGKILL is sent.
        kill_started = time.monotonic()
        swarm_stack.docker("kill", victim)
        killed = time.monotonic()
        healed = swarm_stack.wait_for("backend", 3)
        healed_at = time.monotonic()
        wait_until_nginx_sends_to(swarm_stack, set(healed.values()))

    def was_in_flight(request: Request) -> bool:
        return request.started <= killed and request.ended >= kill_started

    failed = [request for request in load.requests if request.failure]
    in_flight = [request for request in load.requests if was_in_flight(request)]
    # Only requests that were under way when it died; each answered by nginx in the API's error shape.
    assert all(was_in_flight(request) for request in failed), (kill_started, killed, failed)
    assert len(failed) <= len(in_flight)
    assert all("SERVICE_UNAVAILABLE" in (request.failure or "") for request in failed), failed
    # A new task took its place, and serves.
    assert victim not in healed.values()
    assert set(before.values()) - {victim} <= set(healed.values())
    counts = spread(swarm_stack, 30)
    assert set(counts) == set(healed.values())
    FIGURES.append(
        f"swarm, one of 3 replicas killed under 16 clients: {len(failed)} of the {len(in_flight)} requests "
        f"in flight failed, {len(load.answered_between(*window))} answered in {window[1] - window[0]:.0f} s; "
        f"a new task served {healed_at - kill_started:.0f} s after the kill ({killed - kill_started:.2f} s)"
    )
