"""compose.swarm.yaml runs the services of compose.prod.yaml: the values the two files share agree, and
what Swarm takes differently (secrets as files, no build, no depends_on) is what it should be."""

from typing import Any

import pytest
import yaml

from config import gunicorn
from config.env import BACKEND_DIR

REPO = BACKEND_DIR.parent


def services(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / name).read_text())["services"]
    return loaded


PROD = services("compose.prod.yaml")
SWARM = services("compose.swarm.yaml")
# What reaches the backend and migrate as a Docker secret in Swarm, as a value in compose.
SECRETS = {"SECRET_KEY", "DB_PASSWORD", "DB_APP_PASSWORD", "REDIS_URL", "PGPASSWORD"}


def test_the_same_services():
    assert set(SWARM) == set(PROD)


# Ids that are not the marker names "redis" and "postgresql", which would skip them without a Redis.
@pytest.mark.parametrize("service", sorted(PROD), ids=lambda service: f"{service} service")
def test_a_service_has_the_same_limits_logging_and_stop_time(service):
    prod, swarm = PROD[service], SWARM[service]
    assert swarm["deploy"]["resources"] == prod["deploy"]["resources"]
    assert swarm["logging"] == prod["logging"]
    assert swarm.get("stop_grace_period") == prod.get("stop_grace_period")
    assert swarm.get("user") == prod.get("user")
    assert swarm["read_only"] is prod["read_only"] is True
    assert swarm["cap_drop"] == prod["cap_drop"] == ["ALL"]
    assert swarm["networks"] == prod["networks"]
    assert swarm.get("command") == prod.get("command") or service == "redis"
    assert swarm.get("healthcheck") == prod.get("healthcheck") or service == "redis"


def test_redis_runs_the_same_image_and_settings():
    assert SWARM["redis"]["image"] == PROD["redis"]["image"]
    # Its password from the secret file rather than the environment; the rest of the command the same.
    prod_command = PROD["redis"]["command"][-1].split('"$$REDIS_PASSWORD"')[1]
    assert prod_command.strip() in " ".join(SWARM["redis"]["command"][-1].split())
    prod_check, swarm_check = PROD["redis"]["healthcheck"], SWARM["redis"]["healthcheck"]
    assert {key: value for key, value in swarm_check.items() if key != "test"} == {
        key: value for key, value in prod_check.items() if key != "test"
    }


@pytest.mark.parametrize(
    "service", ["db", "backend", "migrate", "nginx", "backup"], ids=lambda service: f"{service} service"
)
def test_every_variable_of_compose_reaches_the_service_in_swarm(service):
    """Each variable compose sets is set in Swarm too, or its secret's file (NAME_FILE) is; the backend's
    and migrate's others come from .env by the env file scripts/swarm writes."""
    prod = PROD[service].get("environment", {})
    swarm = SWARM[service].get("environment", {})
    for name, value in prod.items():
        if name in SECRETS and value == "" and service == "backend":
            # Blanked in compose (the backend must not have migrate's role); absent in Swarm.
            assert name not in swarm, (service, name)
            assert f"{name}_FILE" not in swarm, (service, name)
        elif name in SECRETS or name == "POSTGRES_PASSWORD":
            assert f"{name}_FILE" in swarm, (service, name)
            assert name not in swarm, (service, name)
        elif name == "ALLOWED_HOSTS":
            # scripts/swarm adds it to the env file, from SERVER_NAME, as compose does.
            assert "env_file" in SWARM[service]
        elif name == "BACKEND_REPLICAS" and service == "backend":
            # Only migrate's budget check reads it, and a new count must not restart the backend.
            assert name not in swarm
        else:
            assert swarm.get(name) == value, (service, name)


def test_secret_files_are_readable_by_the_service_user_only():
    uids = {"db": "999", "backup": "999", "redis": "999", "backend": "10001", "migrate": "10001"}
    for service, uid in uids.items():
        for secret in SWARM[service]["secrets"]:
            assert (secret["uid"], secret["mode"]) == (uid, 0o400), (service, secret)
            # Where the service's *_FILE variable points.
            files = [
                value
                for name, value in SWARM[service].get("environment", {}).items()
                if name.endswith("_FILE")
            ]
            if service != "redis":
                assert f"/run/secrets/{secret['target']}" in files, (service, secret)


def test_the_backend_stops_after_its_stop_delay_and_graceful_shutdown():
    """Swarm kills the task only after the stop delay and gunicorn's graceful shutdown had their time."""
    backend = SWARM["backend"]
    delay = int(backend["environment"]["GUNICORN_STOP_DELAY"])
    assert delay >= 3, "longer than nginx's poll of the DNS and its reload (nginx/backend-watch)"
    assert int(backend["stop_grace_period"].removesuffix("s")) > delay + gunicorn.graceful_timeout


def test_swarm_replaces_what_it_ignores():
    for service, definition in SWARM.items():
        for ignored in ("build", "restart", "security_opt", "depends_on", "shm_size", "tmpfs"):
            assert ignored not in definition, (service, ignored)
        assert "image" in definition, service
        assert definition["deploy"]["restart_policy"]["condition"] == (
            "none" if service == "migrate" else "any"
        ), service
    assert SWARM["migrate"]["deploy"]["mode"] == "replicated-job"
    backend = SWARM["backend"]["deploy"]
    assert backend["update_config"]["order"] == "start-first"
    assert backend["update_config"]["failure_action"] == "rollback"
    assert backend["rollback_config"]["order"] == "start-first"
    # Published on the node itself, so nginx and the throttles see the clients' addresses.
    assert {port["mode"] for port in SWARM["nginx"]["ports"]} == {"host"}
