"""CORS for a SPA on another origin: credentials allowed for the configured origins, under /api/ only.

The test settings allow exactly https://app.example.com."""

import pytest

ALLOWED = "https://app.example.com"
OTHER = "https://evil.example.com"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/auth/me"


def header_items(response, name: str) -> set[str]:
    return {item.strip().lower() for item in response.get(name, "").split(",") if item.strip()}


def preflight(client, path: str, origin: str):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type, x-csrftoken",
    )


def test_preflight_from_an_allowed_origin_allows_credentials_and_the_csrf_header(client):
    response = preflight(client, LOGIN, ALLOWED)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert {"x-csrftoken", "content-type"} <= header_items(response, "Access-Control-Allow-Headers")
    assert "post" in header_items(response, "Access-Control-Allow-Methods")


def test_preflight_from_another_origin_is_not_allowed(client):
    response = preflight(client, LOGIN, OTHER)

    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Allow-Credentials" not in response


def test_request_from_an_allowed_origin_may_read_the_response_and_its_request_id(client):
    response = client.get("/api/v1/auth/csrf", HTTP_ORIGIN=ALLOWED)

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert {"x-request-id", "retry-after"} <= header_items(response, "Access-Control-Expose-Headers")
    assert "origin" in header_items(response, "Vary")


def test_error_responses_are_readable_by_an_allowed_origin(client):
    response = client.get(ME, HTTP_ORIGIN=ALLOWED)

    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == ALLOWED
    assert response["Access-Control-Allow-Credentials"] == "true"


def test_request_from_another_origin_gets_no_cors_headers(client):
    response = client.get("/api/v1/auth/csrf", HTTP_ORIGIN=OTHER)

    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Expose-Headers" not in response


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["options", "get"])
def test_no_cors_outside_the_api(client, method):
    if method == "options":
        response = preflight(client, "/admin/login/", ALLOWED)
    else:
        response = client.get("/admin/login/", HTTP_ORIGIN=ALLOWED)

    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
