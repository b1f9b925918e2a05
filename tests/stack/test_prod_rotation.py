"""Rotating secrets in the running production stack (`make rotate-secret`, scripts/deploy --rotate-secret)
while clients keep calling the API: SECRET_KEY twice, then DB_APP_PASSWORD; and the secrets' versions
(scripts/compose), which say nothing about a value without the key kept beside the secret files.

SECRET_KEY: the file scripts/compose writes holds the new key, then the one it replaced, which the
backend keeps verifying (SECRET_KEY_FALLBACKS). So a session or a reset link made before a rotation
still works after it, a session made after it is signed with the new key, and the next rotation drops
the oldest key. Runs after test_prod_deploy.py."""

import hashlib
import json
import secrets
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from .api import csrf_headers, me, new_email, signup
from .load import assert_served_everything, under_load
from .stacks import Stack, run

pytestmark = pytest.mark.usefixtures("prod_stack")

NEW_PASSWORD = "another horse battery staple 43"  # noqa: S105 (a test account)


def secrets_dir(stack: Stack) -> Path:
    """Where scripts/compose writes the env file's secrets (its default, SECRETS_DIR unset)."""
    assert stack.env_file is not None
    return stack.env_file.with_name(stack.env_file.name + ".secrets")


def secret_keys(stack: Stack) -> list[str]:
    return (secrets_dir(stack) / "secret_key").read_text().splitlines()


def rotate(stack: Stack, secret: str) -> subprocess.CompletedProcess[str]:
    return stack.make("rotate-secret", f"SECRET={secret}", check=False, timeout=600)


def rotation_figures(output: str) -> str:
    """What scripts/deploy says it took."""
    lines = [line.removeprefix("deploy: ") for line in output.splitlines() if "switch took" in line]
    return lines[-1] if lines else ""


def logged_in_client(stack: Stack) -> tuple[httpx.Client, str]:
    """A client with a session of a new user, signed with the key that signs now."""
    client = stack.client(http2=False)
    email = new_email()
    response = signup(client, stack.origin, email)
    assert response.status_code == 201, response.text
    assert me(client).status_code == 200
    return client, email


def reset_link(stack: Stack, email: str) -> dict[str, str]:
    """The uid and token of the link the backend would mail for a password reset now."""
    code = (
        "from accounts.models import User; from accounts.services import password_reset_link; "
        f"print(password_reset_link(user=User.objects.get(email={email!r})))"
    )
    link = stack.exec("backend", "python", "manage.py", "shell", "--verbosity", "0", "--command", code)
    query = parse_qs(urlsplit(link.stdout.strip()).query)
    return {"uid": query["uid"][0], "token": query["token"][0]}


def connects_with(stack: Stack, role: str, password: str) -> bool:
    """Whether the role logs in with the password, over the data network (the image trusts connections
    over loopback and the local socket without one)."""
    query = ["psql", "--host", "db", "--username", role, "--dbname", "app", "--command", "SELECT 1"]
    return stack.exec("db", *query, env={"PGPASSWORD": password}, check=False).returncode == 0


def rotated_under_load(stack: Stack, secret: str, what: str) -> None:
    """`make rotate-secret SECRET=...` under load: it succeeds, no request fails and no write is lost."""
    with under_load(stack) as (load, window):
        rotated = rotate(stack, secret)

    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert_served_everything(stack, load, window, what, rotation_figures(rotated.stdout))


def test_secret_versions_are_keyed_hashes(prod_stack, workdir):
    """N-7: a secret's version (a label, and the Docker secret's name on Swarm) is a hash keyed with a
    random key kept in SECRETS_DIR, so it tells nothing of the value: the same value has another version
    under another key, and the version is no unkeyed hash of it."""
    assert prod_stack.env_file is not None
    value = prod_stack.env_values()["DB_APP_PASSWORD"]
    versions = {}
    for name in ("one", "two"):
        directory = workdir / "versions" / name
        rendered = run(
            ["scripts/compose", "prod", "config", "--format", "json"],
            cwd=prod_stack.directory,
            env={**prod_stack.env, "ENV_FILE": str(prod_stack.env_file), "SECRETS_DIR": str(directory)},
        )
        labels = json.loads(rendered.stdout)["services"]["backend"]["labels"]["secrets"].split()
        key = (directory / ".key").read_bytes()
        keyed = hashlib.sha256(key + b"\0db_app_password\0" + value.encode()).hexdigest()[:16]
        assert labels[-1] == keyed, "SECRET_VERSION_DB_APP_PASSWORD is the last of the backend's"
        versions[name] = keyed
    assert versions["one"] != versions["two"]
    unkeyed = hashlib.sha256(value.encode()).hexdigest()
    assert not any(unkeyed.startswith(version) for version in versions.values())


def test_rotating_the_secret_key_keeps_sessions_and_reset_links_and_drops_the_oldest_key(prod_stack):
    first_keys = secret_keys(prod_stack)
    # Sessions and a reset link from before: one session used again after each rotation, one left
    # until after the second.
    used, _ = logged_in_client(prod_stack)
    idle, _ = logged_in_client(prod_stack)
    resetting, email = logged_in_client(prod_stack)
    link = reset_link(prod_stack, email)

    # Every load client's session (made before) stayed logged in through the switch.
    rotated_under_load(prod_stack, "SECRET_KEY", "SECRET_KEY rotation")
    second_keys = secret_keys(prod_stack)
    assert second_keys[1:] == first_keys[:1], "the key it replaced stays, as the one fallback"
    assert second_keys[0] not in first_keys
    assert f"SECRET_KEY={second_keys[0]}" in prod_stack.env_file.read_text()  # type: ignore[union-attr]
    assert me(used).status_code == 200
    # The link mailed before the rotation still sets a new password.
    confirmed = resetting.post(
        "/api/v1/auth/password/reset/confirm",
        json={**link, "new_password": NEW_PASSWORD},
        headers=csrf_headers(resetting, prod_stack.origin),
    )
    assert confirmed.status_code == 204, confirmed.text
    after, _ = logged_in_client(prod_stack)

    rotated_under_load(prod_stack, "SECRET_KEY", "SECRET_KEY rotation, again")
    third_keys = secret_keys(prod_stack)
    assert third_keys[1:] == second_keys[:1], "the oldest key is gone"
    # Signed with the first key, unused since: logged out now that the first key is dropped.
    assert me(idle).status_code == 401
    # Signed with the second key (made after the first rotation), or signed again with it on its first
    # request after that rotation: still logged in. Neither would be, had the first rotation gone on
    # signing with the first key.
    assert me(after).status_code == 200
    assert me(used).status_code == 200
    for client in (used, idle, resetting, after):
        client.close()


def test_a_rotation_that_stops_before_the_switch_puts_the_old_value_back(prod_stack):
    assert prod_stack.env_file is not None
    env_before, keys_before = prod_stack.env_file.read_text(), secret_keys(prod_stack)
    serving = prod_stack.compose("ps", "--quiet", "--status", "running", "backend").stdout.split()
    client, _ = logged_in_client(prod_stack)

    # New containers that are given no time to get healthy.
    with under_load(prod_stack) as (load, window):
        stopped = prod_stack.make(
            "deploy", "ARGS=--rotate-secret SECRET_KEY --health-timeout 0", check=False, timeout=600
        )

    assert stopped.returncode != 0
    assert "nothing was switched and the old version keeps serving" in stopped.stderr
    assert_served_everything(prod_stack, load, window, "SECRET_KEY rotation stopped before the switch")
    assert prod_stack.env_file.read_text() == env_before
    assert secret_keys(prod_stack) == keys_before
    assert prod_stack.compose("ps", "--quiet", "--status", "running", "backend").stdout.split() == serving
    assert me(client).status_code == 200
    client.close()


def test_rotating_the_runtime_roles_password_drops_no_request(prod_stack):
    old = prod_stack.env_values()["DB_APP_PASSWORD"]

    rotated_under_load(prod_stack, "DB_APP_PASSWORD", "DB_APP_PASSWORD rotation")
    new = prod_stack.env_values()["DB_APP_PASSWORD"]
    assert new != old
    assert (secrets_dir(prod_stack) / "db_app_password").read_text() == new

    assert connects_with(prod_stack, "app_runtime", new)
    assert not connects_with(prod_stack, "app_runtime", old)
    # A new user's signup and session work on the backends that connect with the new password.
    with prod_stack.client(http2=False) as client:
        assert signup(client, prod_stack.origin, new_email()).status_code == 201
        assert me(client).status_code == 200


def test_the_owners_password_rotates_by_the_documented_steps_with_no_failed_request(prod_stack):
    """docs/operations.md's steps for DB_PASSWORD: the role first, over the db container's socket, then
    .env and the backup service; db is not recreated, and migrate (as `make deploy` runs it) and the
    backups log in with the new password."""
    assert prod_stack.env_file is not None
    old, new = prod_stack.env_values()["DB_PASSWORD"], secrets.token_hex(32)
    db = prod_stack.container_ids()["db"]
    env = {
        **prod_stack.env,
        "ENV_FILE": str(prod_stack.env_file),
        "COMPOSE_PROJECT_NAME": prod_stack.project,
        "new": new,
    }
    steps = f"""
        echo "ALTER ROLE app PASSWORD '$new'" | scripts/compose prod exec -T db psql -U app -d app
        sed -i "s/^DB_PASSWORD=.*/DB_PASSWORD=$new/" {prod_stack.env_file}
        scripts/compose prod up --detach --no-deps backup
    """

    with under_load(prod_stack) as (load, window):
        run(["bash", "-o", "errexit", "-c", steps], cwd=prod_stack.directory, env=env)

    assert_served_everything(prod_stack, load, window, "DB_PASSWORD rotation by hand")
    assert connects_with(prod_stack, "app", new)
    assert not connects_with(prod_stack, "app", old)
    # As the next `make deploy` runs it.
    prod_stack.compose("run", "--rm", "--no-deps", "--no-TTY", "migrate")
    assert prod_stack.container_ids()["db"] == db
    # The recreated backup service logs in with the new password.
    login = (
        'PGPASSWORD="$(cat "$PGPASSWORD_FILE")" psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT 1"'
    )
    assert prod_stack.exec("backup", "sh", "-c", login).stdout.strip() == "1"
