"""The OpenAPI schema states what the API enforces (core.schema), so a client built from it, or a fuzzer,
sends what the API accepts and expects every status it answers."""

import re
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from drf_spectacular.generators import SchemaGenerator

from core.schema import EMAIL_ADDRESS, NO_NUL_CHARACTER
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
    bodies = {
        (method, path): request_schema(schema, op)
        for method, path, op in operations(schema)
        if "requestBody" in op
    }

    assert {("post", "/api/v1/auth/signup"), ("patch", "/api/v1/auth/me")} <= set(bodies)
    for key, body in bodies.items():
        assert body["additionalProperties"] is False, key


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
    # Not only digits, and no NUL character.
    pattern = re.compile(password["pattern"])
    assert pattern.search("correct horse 42")
    assert not pattern.search("1234567890")
    assert not pattern.search("correct horse\x0042")


def test_every_string_of_an_input_body_refuses_nul_characters(schema):
    strings = [
        (path, name, prop)
        for _, path, op in operations(schema)
        if "requestBody" in op
        for name, prop in request_schema(schema, op)["properties"].items()
        if prop.get("type") == "string"
    ]
    assert len(strings) >= 10
    for path, name, prop in strings:
        assert not re.search(prop["pattern"], "a\x00b"), (path, name)


def test_passwords_to_check_have_no_rules_but_a_sane_length(schema):
    login = request_schema(schema, schema["paths"]["/api/v1/auth/login"]["post"])

    assert login["properties"]["password"]["pattern"] == NO_NUL_CHARACTER
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
    """From the view's permissions; the contract tests check that the API answers as documented."""
    needs_session = {(m, p) for m, p, op in operations(schema) if "401" in op["responses"]}

    assert {("get", "/api/v1/auth/me"), ("post", "/api/v1/auth/logout")} <= needs_session
    assert not {("post", "/api/v1/auth/login"), ("get", "/api/v1/health/live")} & needs_session


@pytest.mark.urls("core.tests.urls")
def test_paths_with_a_parameter_document_404_and_others_do_not():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "404" in schema["paths"]["/api/test/users/{user_id}"]["get"]["responses"]
    for method, path, op in operations(schema):
        assert ("404" in op["responses"]) is ("{" in path), (method, path)


@pytest.mark.urls("core.tests.urls")
def test_query_parameters_are_documented_with_their_400():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "400" in schema["paths"]["/api/test/users"]["get"]["responses"]
    for method, path, op in operations(schema):
        if any(parameter["in"] == "query" for parameter in op.get("parameters", [])):
            assert "400" in op["responses"], (method, path)
        elif "requestBody" not in op:
            assert "400" not in op["responses"], (method, path)


@pytest.mark.urls("core.tests.urls")
def test_a_permission_beyond_logging_in_documents_403_on_every_method():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/test/admin-only"]["get"]

    assert {"401", "403"} <= set(operation["responses"])
    assert "403" not in schema["paths"]["/api/v1/auth/me"]["get"]["responses"]


def test_error_responses_have_the_error_body(schema):
    op = schema["paths"]["/api/v1/auth/login"]["post"]

    throttled = op["responses"]["429"]
    assert throttled["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert throttled["description"] == "THROTTLED"


def test_trace_is_not_allowed(client):
    response = client.generic("TRACE", "/api/v1/auth/csrf")

    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "TRACE" not in response["Allow"]


def test_email_addresses_are_described_as_the_api_checks_them_in_requests_and_responses(schema):
    emails: list[dict[str, Any]] = []

    def visit(node):
        if isinstance(node, dict):
            assert node.get("format") != "email", node
            emails.extend(value for key, value in node.items() if key == "email" and isinstance(value, dict))
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    patterns = [email["pattern"] for email in emails if email.get("type") == "string"]
    # Signup, password reset, the user in responses; login takes any string and says it is wrong.
    assert patterns.count(EMAIL_ADDRESS) >= 3
    assert set(patterns) == {EMAIL_ADDRESS, NO_NUL_CHARACTER}


@pytest.mark.parametrize(
    "address",
    [
        "ada@example.com",
        "a.b+c@mail.example.co.uk",
        "ada@localhost",
        "ada@münchen.de",
        "ada@xn--mnchen-3ya.de",
        "0@0.a",
        "0@0.a1",
        "a..b@example.com",
        ".a@example.com",
        "a@-b.example.com",
        "a@b-.example.com",
        "a@example.c-",
        "a@example",
        "a b@example.com",
        "a@b@example.com",
        "a@exa_mple.com",
    ],
)
def test_the_email_pattern_accepts_what_django_accepts(schema, address):
    signup = request_schema(schema, schema["paths"]["/api/v1/auth/signup"]["post"])
    pattern = signup["properties"]["email"]["pattern"]
    try:
        EmailValidator()(address)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert bool(re.search(pattern, address)) is accepted
