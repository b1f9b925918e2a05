"""The contract of every endpoint, checked on every operation of the OpenAPI schema, which has every route
of the URLconf: a new endpoint gets these checks without a test edit.

- Anonymous: 401 NOT_AUTHENTICATED exactly where the schema documents 401 (every view not public).
- An unsafe method without X-CSRFToken: 403 CSRF_FAILED.
- A method the path lacks: 405 METHOD_NOT_ALLOWED, with Allow naming the methods it has.
- A form body: 415 UNSUPPORTED_MEDIA_TYPE; an unknown field: 400 VALIDATION_ERROR naming it.
- A path parameter naming no object: 404 NOT_FOUND (input is checked first: a valid body is sent).
- A logged-in GET, with nothing made yet: a status the schema documents for it.
"""

import json
import re
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from testing import SpaClient, api_routes, assert_error

pytestmark = pytest.mark.django_db

SCHEMA: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
OPERATIONS = [
    (method.upper(), path, op) for path, ops in SCHEMA["paths"].items() for method, op in ops.items()
]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
UNKNOWN_FIELD = "no_such_field"


def ids(operations: list[tuple[str, str, Any]]) -> list[str]:
    return [f"{method} {path}" for method, path, _ in operations]


def url(path: str) -> str:
    """The path with each parameter naming no object."""
    return re.sub(r"\{\w+\}", str(2**31 - 1), path)


def request_body_schema(op: dict[str, Any]) -> dict[str, Any]:
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body: dict[str, Any] = SCHEMA["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return body


def example_value(name: str, field: dict[str, Any]) -> Any:
    if "enum" in field:
        return field["enum"][0]
    kind = field.get("type")
    if kind == "string" and field.get("pattern") in (None, r"^[^\u0000]*$"):
        return "x" * max(1, field.get("minLength", 1))
    if kind in ("integer", "number"):
        return field.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    raise AssertionError(f"no example value for the required field {name} {field}: teach example_value one")


def valid_body(op: dict[str, Any]) -> dict[str, Any]:
    """A body with only the required fields, each with a simple valid value."""
    if "requestBody" not in op:
        return {}
    body = request_body_schema(op)
    return {name: example_value(name, body["properties"][name]) for name in body.get("required", [])}


def send(client: SpaClient, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = "" if body is None else json.dumps(body)
    return client.generic(method, path, data, content_type="application/json")


def test_every_api_route_is_in_the_schema():
    documented = set(SCHEMA["paths"])
    routes = {
        path
        for path, view in api_routes()
        if not issubclass(view, SpectacularAPIView | SpectacularSwaggerView)
    }
    assert {"/api/v1/auth/me", "/api/v1/health/live"} <= routes, "the walk over the URLconf found too little"
    assert routes == documented


@pytest.mark.parametrize(("method", "path", "op"), OPERATIONS, ids=ids(OPERATIONS))
def test_anonymous_requests_are_401_exactly_where_the_schema_says(client, method, path, op):
    response = send(client, method, url(path), {} if method in UNSAFE else None)

    if "401" in op["responses"]:
        assert_error(response, 401, "NOT_AUTHENTICATED")
        assert response["WWW-Authenticate"] == 'Session realm="api"'
    else:
        assert response.status_code != 401, response.content


UNSAFE_OPERATIONS = [(method, path, op) for method, path, op in OPERATIONS if method in UNSAFE]


@pytest.mark.parametrize(("method", "path", "op"), UNSAFE_OPERATIONS, ids=ids(UNSAFE_OPERATIONS))
def test_an_unsafe_request_without_the_csrf_header_is_refused(user_client, method, path, op):
    response = user_client.generic(method, url(path), "{}", content_type="application/json", csrf=False)

    assert_error(response, 403, "CSRF_FAILED")


MISSING_METHODS = [
    (method, path, sorted(ops))
    for path, ops in SCHEMA["paths"].items()
    for method in METHODS
    if method.lower() not in ops
]


@pytest.mark.parametrize(
    ("method", "path", "allowed"), MISSING_METHODS, ids=[f"{m} {p}" for m, p, _ in MISSING_METHODS]
)
def test_a_method_the_path_lacks_is_405_with_allow(user_client, method, path, allowed):
    response = send(user_client, method, url(path), {} if method in UNSAFE else None)

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    expected = (
        {method.upper() for method in allowed} | {"OPTIONS"} | ({"HEAD"} if "get" in allowed else set())
    )
    assert set(response["Allow"].split(", ")) == expected


WITH_BODY = [(method, path, op) for method, path, op in OPERATIONS if "requestBody" in op]


@pytest.mark.parametrize(("method", "path", "op"), WITH_BODY, ids=ids(WITH_BODY))
def test_a_form_body_is_415(user_client, method, path, op):
    response = user_client.generic(
        method, url(path), "first_name=Mallory", content_type="application/x-www-form-urlencoded"
    )

    assert_error(response, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize(("method", "path", "op"), WITH_BODY, ids=ids(WITH_BODY))
def test_an_unknown_field_is_a_validation_error_naming_it(user_client, method, path, op):
    response = send(user_client, method, url(path), {UNKNOWN_FIELD: "x"})

    details = assert_error(response, 400, "VALIDATION_ERROR")["details"]
    assert UNKNOWN_FIELD in details


WITH_PARAMETER = [(method, path, op) for method, path, op in OPERATIONS if "{" in path]


@pytest.mark.parametrize(("method", "path", "op"), WITH_PARAMETER, ids=ids(WITH_PARAMETER))
def test_a_parameter_naming_no_object_is_404(user_client, method, path, op):
    response = send(user_client, method, url(path), valid_body(op) if method in UNSAFE else None)

    assert_error(response, 404, "NOT_FOUND")


GETS = [(method, path, op) for method, path, op in OPERATIONS if method == "GET"]


@pytest.mark.parametrize(("method", "path", "op"), GETS, ids=ids(GETS))
def test_a_logged_in_get_answers_a_status_the_schema_documents(user_client, method, path, op):
    response = send(user_client, method, url(path))

    assert str(response.status_code) in op["responses"], response.content
