"""compose.yaml as a developer gets it: a fresh checkout without .env, `docker compose up`, the API at
https://localhost:<port>/api/v1/ with a certificate made on the first start, code reloaded on change."""

import json
import time

import httpx

from .api import login, logout, me, new_email, set_cookies, signup
from .stacks import Stack, docker_inspect


def test_the_api_answers_over_https_with_the_generated_certificate(dev_stack):
    certificate = dev_stack.ca_file.read_text()
    assert "BEGIN CERTIFICATE" in certificate

    with dev_stack.client() as client:
        response = client.get("/api/v1/auth/me")
    assert response.status_code == 401
    assert response.json()["code"] == "NOT_AUTHENTICATED"
    assert "strict-transport-security" not in response.headers, "HSTS would pin every localhost port"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers["x-request-id"]) == 32


def test_http_redirects_to_the_https_port(dev_stack):
    with dev_stack.plain_http_client() as client:
        response = client.get("/api/v1/auth/me")
    assert response.status_code == 308
    assert response.headers["location"] == f"https://localhost:{dev_stack.https_port}/api/v1/auth/me"


def test_migrations_ran_and_the_session_flow_works_through_nginx(dev_stack):
    email = new_email()
    with dev_stack.client() as client:
        signed_up = signup(client, dev_stack.origin, email)
        assert signed_up.status_code == 201, signed_up.text
        cookie = set_cookies(signed_up)[dev_stack.session_cookie]
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert me(client).json()["email"] == email
        assert logout(client, dev_stack.origin).status_code == 204
        assert me(client).status_code == 401
        assert login(client, dev_stack.origin, email).status_code == 200


def test_the_admin_and_its_static_files_are_served(dev_stack):
    with dev_stack.client() as client:
        page = client.get("/admin/login/")
        css = client.get("/static/admin/css/base.css")
    assert page.status_code == 200
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


def live_body_within(stack: Stack, expected: dict[str, object], seconds: float = 60) -> object:
    """GET health/live until it answers `expected` (the dev server restarts after an edit)."""
    deadline = time.monotonic() + seconds
    body = None
    while time.monotonic() < deadline:
        try:
            with stack.client() as client:
                body = client.get("/api/v1/health/live").json()
        except (httpx.HTTPError, json.JSONDecodeError):
            body = None  # the dev server is restarting
        if body == expected:
            break
        time.sleep(1)
    return body


def test_the_dev_server_reloads_changed_code(dev_stack):
    apis = dev_stack.directory / "backend" / "core" / "apis.py"
    source = apis.read_text()
    unchanged = 'return Response({"status": "ok"})'
    assert unchanged in source
    apis.write_text(source.replace(unchanged, 'return Response({"status": "ok", "edited": True})'))
    try:
        assert live_body_within(dev_stack, {"status": "ok", "edited": True}) == {
            "status": "ok",
            "edited": True,
        }
    finally:
        # Back to the code as committed, for the tests after this one.
        apis.write_text(source)
        assert live_body_within(dev_stack, {"status": "ok"}) == {"status": "ok"}


def test_every_container_runs_as_non_root(dev_stack):
    containers = dev_stack.container_ids()
    assert set(containers) == {"db", "redis", "backend", "nginx"}
    for service in containers:
        assert "0" not in dev_stack.process_uids(service), service


def test_every_service_is_healthy(dev_stack):
    health = {service: entry["Health"] for service, entry in dev_stack.containers().items()}
    assert health == dict.fromkeys(("db", "redis", "backend", "nginx"), "healthy")


def test_ports_are_published_on_loopback_as_configured(dev_stack):
    ports = docker_inspect(dev_stack.container_ids()["nginx"])["NetworkSettings"]["Ports"]
    assert ports["8443/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dev_stack.https_port)}]
    assert ports["8080/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": str(dev_stack.http_port)}]
