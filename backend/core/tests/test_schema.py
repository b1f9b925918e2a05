"""The OpenAPI schema states what the API enforces (core.schema), so a client built from it, or a fuzzer,
sends what the API accepts and expects every status it answers."""

from typing import Any

import pytest
from django.conf import settings
from drf_spectacular.generators import SchemaGenerator

from testing import assert_error

UNSAFE = {"post", "put", "patch", "delete"}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    generated: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    return generated


def operations(schema):
    return [(method, path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def request_schema(schema, op):
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_input_body_refuses_unknown_fields(schema):
    bodies = [request_schema(schema, op) for _, _, op in operations(schema) if "requestBody" in op]

    assert len(bodies) == 6
    assert all(body["additionalProperties"] is False for body in bodies)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/auth/signup", "password"),
        ("/api/v1/auth/password/change", "new_password"),
        ("/api/v1/auth/password/reset/confirm", "new_password"),
    ],
)
def test_new_passwords_state_their_rules(schema, path, field):
    password = request_schema(schema, schema["paths"][path]["post"])["properties"][field]

    assert password["minLength"] == settings.PASSWORD_MIN_LENGTH == 10
    assert password["maxLength"] == settings.PASSWORD_MAX_LENGTH == 256
    assert password["pattern"] == r"\D"


def test_passwords_to_check_have_no_rules_but_a_sane_length(schema):
    login = request_schema(schema, schema["paths"]["/api/v1/auth/login"]["post"])

    assert "pattern" not in login["properties"]["password"]
    assert login["properties"]["password"]["minLength"] == 1


def test_every_operation_documents_the_errors_it_can_answer(schema):
    for method, path, op in operations(schema):
        statuses = set(op["responses"])
        # nginx's limits per client address (429) and an unreachable backend (503) apply to every one.
        assert {"406", "429", "503"} <= statuses, (method, path)
        if path == "/api/v1/health/live":
            assert statuses == {"200", "406", "429", "503"}
            continue
        if method in UNSAFE:
            assert "403" in statuses, (method, path)
        if "requestBody" in op:
            assert {"400", "413", "415"} <= statuses, (method, path)


def test_endpoints_that_need_a_session_document_401(schema):
    needs_session = {(m, p) for m, p, op in operations(schema) if "401" in op["responses"]}

    assert needs_session == {
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("patch", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/password/change"),
    }


def test_error_responses_have_the_error_body(schema):
    op = schema["paths"]["/api/v1/auth/login"]["post"]

    throttled = op["responses"]["429"]
    assert throttled["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert throttled["description"] == "THROTTLED"


def test_trace_is_not_allowed(client):
    response = client.generic("TRACE", "/api/v1/auth/csrf")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "TRACE" not in response["Allow"]
