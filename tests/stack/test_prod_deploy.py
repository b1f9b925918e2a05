"""Updating the running production stack (scripts/deploy, scripts/nginx-reload, scripts/install-certificate)
while clients keep calling the API: a deploy of a new commit, a deploy that fails its health check, one
that a migration stops, a rollback, a new certificate, and `make up` on a running stack.

The stack runs from a git repository of its own (conftest.py), to which these tests commit changes; each
test leaves the stack healthy and its checkout without the test's commits, except the first deploy's,
which the rollback then undoes. Runs after test_prod.py and test_prod_backups.py."""

import fcntl
import re
import secrets
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .api import assert_an_owned_resource_serves
from .load import assert_served_everything, under_load
from .stacks import (
    REPO,
    Stack,
    commit,
    committed,
    docker_inspect,
    git_environment,
    make_app,
    run,
    set_site_header,
    site_header,
)

pytestmark = pytest.mark.usefixtures("prod_stack")

# The admin's site header before the first deploy here, which the rollback brings back.
ORIGINAL: dict[str, str] = {}


def backends(stack: Stack) -> dict[str, str]:
    """The running backend containers' names and image ids."""
    containers = {}
    for container_id in backend_ids(stack):
        details = docker_inspect(container_id)
        containers[details["Name"].lstrip("/")] = details["Image"]
    return containers


def backend_ids(stack: Stack) -> set[str]:
    return set(stack.compose("ps", "--quiet", "--status", "running", "backend").stdout.split())


def image_id(stack: Stack, tag: str, service: str = "backend") -> str | None:
    result = run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", f"{stack.project}-{service}:{tag}"],
        cwd=REPO,
        env=stack.env,
        check=False,
    )
    return result.stdout.strip() if result.returncode == 0 else None


def nginx_backend_servers(stack: Stack) -> list[str]:
    servers = stack.exec("nginx", "cat", "/etc/nginx/conf.d/backend.servers").stdout
    return re.findall(r"^server ([^:]+):8000;$", servers, re.MULTILINE)


def deploy(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return stack.make("deploy", f"ARGS={' '.join(args)}", check=False, timeout=900, env=env)


def edge_addresses(stack: Stack, names: list[str]) -> set[str]:
    """The containers' addresses on the network nginx reaches them through."""
    return {
        docker_inspect(name)["NetworkSettings"]["Networks"][f"{stack.project}_edge"]["IPAddress"]
        for name in names
    }


def switch_time(output: str) -> str:
    switch = re.search(r"switch took ([\d.]+) s", output)
    return f"the switch took {switch.group(1)} s" if switch else ""


# ---------------------------------------------------------------- deploy


def test_deploy_switches_to_the_new_commit_with_no_failed_request(prod_stack):
    before = backends(prod_stack)
    ORIGINAL["site header"] = site_header(prod_stack)
    header = f"Deployed by the stack test {secrets.token_hex(4)}"
    sha = commit(prod_stack, "A new site header", set_site_header(header))

    # Two containers instead of one: scaled up by the same switch.
    with under_load(prod_stack) as (load, window):
        deployed = deploy(prod_stack, env={"BACKEND_REPLICAS": "2"})

    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    # No request failed, and every write the API acknowledged is there.
    assert_served_everything(prod_stack, load, window, "deploy", switch_time(deployed.stdout))
    # The new commit's code serves, from new containers of the image tagged with the commit, and the old
    # image is kept for a rollback.
    assert site_header(prod_stack) == header
    after = backends(prod_stack)
    assert len(after) == 2
    assert set(after).isdisjoint(before)
    assert set(after.values()) == {image_id(prod_stack, sha)} == {image_id(prod_stack, "latest")}
    assert image_id(prod_stack, "latest", "migrate") == image_id(prod_stack, sha), (
        "migrate runs the same code"
    )
    assert {image_id(prod_stack, "previous")} == set(before.values())
    assert sorted(nginx_backend_servers(prod_stack)) == sorted(after)
    assert f"deploy: serving {prod_stack.project}-backend:{sha} in 2 container(s)" in deployed.stdout
    # nginx balances over both.
    recent = [line for line in prod_stack.logs("nginx") if line.get("logger") == "nginx.access"][-200:]
    assert {line["upstream_addr"].split(":")[0] for line in recent[-100:]} == edge_addresses(
        prod_stack, list(after)
    )


def test_a_deploy_whose_backend_never_gets_healthy_leaves_the_old_one_serving(prod_stack):
    before, header = backends(prod_stack), site_header(prod_stack)
    latest, migrate = image_id(prod_stack, "latest"), image_id(prod_stack, "latest", "migrate")

    def break_the_health_check(checkout: Path) -> None:
        healthcheck = checkout / "backend" / "docker" / "healthcheck"
        source = healthcheck.read_text()
        healthy = '  "HTTP/1."?" 200 "*) exit 0 ;;'
        assert healthy in source
        healthcheck.write_text(source.replace(healthy, healthy.replace("exit 0", "exit 1")))

    with committed(prod_stack, "A health check that fails", break_the_health_check) as sha:
        with under_load(prod_stack) as (load, window):
            deployed = deploy(prod_stack, "--health-timeout 20")

        assert deployed.returncode != 0
        assert "is not healthy" in deployed.stderr
        assert "nothing was switched and the old version keeps serving" in deployed.stderr
        assert_served_everything(prod_stack, load, window, "deploy with a failing health check")
        assert backends(prod_stack) == before
        assert len(prod_stack.compose("ps", "--all", "--quiet", "backend").stdout.split()) == len(before)
        assert image_id(prod_stack, "latest") == latest
        assert image_id(prod_stack, "latest", "migrate") == migrate
        assert image_id(prod_stack, sha) is None
        assert site_header(prod_stack) == header


def add_migration(name: str, operation: str) -> Callable[[Path], None]:
    def change(checkout: Path) -> None:
        migrations = checkout / "backend" / "accounts" / "migrations"
        latest = max(path.stem for path in migrations.glob("[0-9][0-9][0-9][0-9]_*.py"))
        (migrations / f"{name}.py").write_text(
            "from django.db import migrations\n\n\n"
            "class Migration(migrations.Migration):\n"
            f"    dependencies = [('accounts', {latest!r})]\n"
            f"    operations = [{operation}]\n"
        )

    return change


def applied_migrations(stack: Stack) -> list[str]:
    return stack.sql("SELECT name FROM django_migrations WHERE app = 'accounts'")


def test_a_migration_that_drops_a_column_the_running_version_uses_is_refused(prod_stack):
    before, migrations = backends(prod_stack), applied_migrations(prod_stack)
    change = add_migration("9999_drop_first_name", "migrations.RemoveField('user', 'first_name')")

    with committed(prod_stack, "Drop a column still in use", change):
        deployed = deploy(prod_stack)

    assert deployed.returncode != 0
    assert (
        "accounts.9999_drop_first_name: Remove field first_name from user: column accounts_user.first_name "
        "is dropped or renamed, and the running version uses it" in deployed.stderr
    )
    assert "deploy: refused" in deployed.stderr
    assert applied_migrations(prod_stack) == migrations
    assert backends(prod_stack) == before


def test_a_failing_migration_stops_the_deploy_before_the_switch(prod_stack):
    before, header = backends(prod_stack), site_header(prod_stack)
    change = add_migration("9999_fails", "migrations.RunSQL('SELECT 1 / 0')")

    with committed(prod_stack, "A migration that fails", change):
        deployed = deploy(prod_stack)

    assert deployed.returncode != 0
    assert "RunSQL: check by hand what it changes (warning)" in deployed.stdout
    assert "division by zero" in deployed.stdout + deployed.stderr
    assert "deploy: migrate failed" in deployed.stderr
    assert "9999_fails" not in applied_migrations(prod_stack)
    assert backends(prod_stack) == before
    assert site_header(prod_stack) == header


def test_a_second_deploy_is_refused_while_one_runs(prod_stack):
    lock = prod_stack.directory / ".cache" / "deploy.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        deployed = deploy(prod_stack)
    assert deployed.returncode != 0
    assert "another deploy or nginx reload is running" in deployed.stderr


# ---------------------------------------------------------------- rollback


def test_rollback_brings_back_the_previous_image_with_no_failed_request(prod_stack):
    deployed, previous = image_id(prod_stack, "latest"), image_id(prod_stack, "previous")
    assert site_header(prod_stack) != ORIGINAL["site header"]

    with under_load(prod_stack) as (load, window):
        rolled_back = prod_stack.make("rollback", check=False, timeout=600)

    assert rolled_back.returncode == 0, rolled_back.stdout + rolled_back.stderr
    assert_served_everything(prod_stack, load, window, "rollback", switch_time(rolled_back.stdout))
    assert site_header(prod_stack) == ORIGINAL["site header"]
    assert set(backends(prod_stack).values()) == {previous} == {image_id(prod_stack, "latest")}
    assert image_id(prod_stack, "previous") == deployed
    # What serves now is what the checkout holds again.
    run(["git", "reset", "--quiet", "--hard", "HEAD~1"], cwd=prod_stack.directory, env=git_environment())


# ---------------------------------------------------------------- your own endpoints


def test_an_app_made_by_make_app_deploys_and_serves(prod_stack):
    """docs/extending.md's path to production: `make app`, its migration, a commit, `make deploy`."""
    with committed(prod_stack, "make app NAME=notes MODEL=Note", make_app):
        deployed = deploy(prod_stack)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
        assert prod_stack.sql("SELECT name FROM django_migrations WHERE app = 'notes'") == ["0001_initial"]
        assert_an_owned_resource_serves(prod_stack.origin, prod_stack.client)


# ---------------------------------------------------------------- certificates and `make up`


def served_certificate(stack: Stack) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", stack.https_port), timeout=10)
    with context.wrap_socket(raw, server_hostname="localhost") as connection:
        certificate = connection.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def local_certificate(stack, directory, *names):
    """A new certificate for the names from the stack's local CA (nginx/local-cert), in directory."""
    directory.mkdir(parents=True)
    for name in ("ca.pem", "ca-key.pem"):
        shutil.copy2(stack.ca_file.with_name(name), directory / name)
    run(["nginx/local-cert", str(directory), *names], cwd=REPO, env=stack.env)
    return directory


def test_a_renewed_certificate_is_served_after_a_reload_with_no_failed_request(prod_stack, workdir):
    # A new certificate from the stack's CA, as a renewal brings one (the clients trust the CA).
    assert prod_stack.ca_file is not None
    assert prod_stack.certificate is not None
    renewed = local_certificate(
        prod_stack, workdir / "prod" / "renewed", "localhost", "api.example.com", "app.example.com"
    )
    certificate = (renewed / "fullchain.pem").read_text()
    old = served_certificate(prod_stack)
    context = prod_stack.tls_context()
    install = ["scripts/install-certificate", str(renewed)]
    env = {**prod_stack.env, "ENV_FILE": str(prod_stack.env_file), "COMPOSE_PROJECT_NAME": prod_stack.project}

    with under_load(prod_stack, context) as (load, window):
        installed = run(install, cwd=prod_stack.directory, env=env, check=False)

    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert_served_everything(prod_stack, load, window, "certificate reload")
    new = served_certificate(prod_stack)
    assert new != old
    assert new == ssl.PEM_cert_to_DER_cert(certificate)
    # In place, so the stack's files (and the other tests' trust) follow.
    assert prod_stack.certificate.read_text() == certificate

    # A key that is not the certificate's is refused, and nothing changes.
    mismatched = local_certificate(prod_stack, workdir / "prod" / "mismatched", "localhost")
    (mismatched / "privkey.pem").write_text((renewed / "privkey.pem").read_text())
    refused = run(
        ["scripts/install-certificate", str(mismatched)], cwd=prod_stack.directory, env=env, check=False
    )
    assert refused.returncode != 0
    assert "is not the key of" in refused.stderr
    assert served_certificate(prod_stack) == new


def test_make_up_on_the_running_stack_leaves_nginx_following_the_backends(prod_stack):
    before = backend_ids(prod_stack)
    assert prod_stack.env_file is not None
    # A setting that changes nothing but the backend's configuration, so compose recreates it, and a
    # second container: both at addresses nginx has not seen.
    with prod_stack.env_file.open("a") as env_file:
        env_file.write("PASSWORD_RESET_TIMEOUT=3600\n")

    prod_stack.make("up", timeout=900, env={"BACKEND_REPLICAS": "2"})

    after = backends(prod_stack)
    assert len(after) == 2
    assert backend_ids(prod_stack).isdisjoint(before)
    assert sorted(nginx_backend_servers(prod_stack)) == sorted(after)
    with prod_stack.client() as client:
        for _ in range(20):
            assert client.get("/api/v1/auth/csrf").status_code == 200
    recent = [line for line in prod_stack.logs("nginx") if line.get("logger") == "nginx.access"][-20:]
    assert {line["upstream_addr"].split(":")[0] for line in recent} == edge_addresses(prod_stack, list(after))
