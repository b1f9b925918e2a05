"""compose.swarm.yaml is what Docker Swarm changes in compose.prod.yaml (scripts/swarm renders the two with
compose): it resets each setting Swarm ignores or refuses that a service uses, hands each service its
secrets readable by its own user only, and keeps the backend's tasks serving until nginx stopped sending
them requests."""

import re
from typing import Any

import pytest
import yaml

from config import gunicorn
from config.env import BACKEND_DIR

REPO = BACKEND_DIR.parent


class OverlayLoader(yaml.SafeLoader):
    """compose's merge tags as values: !reset VALUE and !override VALUE load as ("!reset", VALUE)."""


def tagged(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[str, Any]:
    if isinstance(node, yaml.MappingNode):
        return node.tag, loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return node.tag, loader.construct_sequence(node, deep=True)
    return node.tag, loader.construct_scalar(node)  # type: ignore[arg-type]


OverlayLoader.add_constructor("!reset", tagged)
OverlayLoader.add_constructor("!override", tagged)

PROD: dict[str, Any] = yaml.safe_load((REPO / "compose.prod.yaml").read_text())
SWARM: dict[str, Any] = yaml.load((REPO / "compose.swarm.yaml").read_text(), Loader=OverlayLoader)  # noqa: S506
# What `docker stack deploy` ignores (with a warning) or what would conflict with the overlay's own
# settings: each must be reset where compose.prod.yaml uses it.
IGNORED_BY_SWARM = ("build", "restart", "security_opt", "shm_size", "tmpfs", "depends_on")
USERS = {"db": "999", "backup": "999", "redis": "999", "backend": "10001", "migrate": "10001"}


def test_the_overlay_changes_only_what_compose_prod_defines():
    assert set(SWARM["services"]) == set(PROD["services"])
    assert set(SWARM["secrets"]) == set(PROD["secrets"])
    assert set(SWARM["networks"]) == set(PROD["networks"])


@pytest.mark.parametrize("service", sorted(PROD["services"]), ids=lambda service: f"{service} service")
def test_what_swarm_ignores_is_reset(service):
    prod, swarm = PROD["services"][service], SWARM["services"][service]
    for key in IGNORED_BY_SWARM:
        if key in prod:
            assert swarm.get(key, ("", None))[0] == "!reset", (service, key)
    # An image scripts/swarm built (or the one compose.prod.yaml names), and a restart policy in place
    # of `restart`.
    assert "image" in swarm or "build" not in prod, service
    assert swarm["deploy"]["restart_policy"]["condition"] == ("none" if service == "migrate" else "any")


@pytest.mark.parametrize("service", sorted(USERS), ids=lambda service: f"{service} service")
def test_secret_files_are_readable_by_the_service_user_only(service):
    tag, secrets = SWARM["services"][service]["secrets"]
    assert tag == "!override"
    # The same secrets as in compose, where the files are mounted as they are.
    assert [secret["source"] for secret in secrets] == PROD["services"][service].get(
        "secrets", PROD["x-backend"]["secrets"]
    )
    for secret in secrets:
        assert (secret["uid"], secret["gid"], secret["mode"]) == (USERS[service], USERS[service], 0o400)


def test_every_secret_is_a_docker_secret_scripts_swarm_makes():
    for name, (tag, secret) in SWARM["secrets"].items():
        assert tag == "!override"
        assert secret == {"external": True, "name": f"${{SWARM_SECRET_{name.upper()}:?set by scripts/swarm}}"}


def test_the_backend_serves_until_nginx_stopped_sending_it_requests():
    """Swarm takes a stopping task out of the DNS 2 s before SIGTERM, and nginx asks the DNS again every
    `valid` + 1 s. The task serves on for GUNICORN_STOP_DELAY, then gunicorn's graceful shutdown has its
    time before Swarm kills it."""
    backend = SWARM["services"]["backend"]
    delay = int(backend["environment"]["GUNICORN_STOP_DELAY"])
    site = (REPO / "nginx" / "templates" / "default.conf.template").read_text()
    [valid] = re.findall(r"^\s*resolver 127\.0\.0\.11 valid=(\d+)s", site, re.MULTILINE)
    assert delay > int(valid) + 1
    assert int(backend["stop_grace_period"].removesuffix("s")) > delay + gunicorn.graceful_timeout
    assert SWARM["services"]["nginx"]["environment"]["BACKEND_ADDRESS"] == "backend:8000 resolve"


def test_rolling_updates_start_first_and_roll_back():
    backend = SWARM["services"]["backend"]["deploy"]
    assert (backend["endpoint_mode"], backend["update_config"]["order"]) == ("dnsrr", "start-first")
    assert backend["update_config"]["failure_action"] == "rollback"
    assert backend["rollback_config"]["order"] == "start-first"
    assert SWARM["services"]["migrate"]["deploy"]["mode"] == "replicated-job"
    # Published on the node itself, so nginx and the throttles see the clients' addresses.
    tag, ports = SWARM["services"]["nginx"]["ports"]
    assert tag == "!override"
    assert {port["mode"] for port in ports} == {"host"}
