"""The OpenAPI schema says what the API enforces, so a client generated from it (or a fuzzer) sends what
the API accepts and expects every status it can get:

- every error status an operation can answer, derived from the view (its body, CSRF, session,
  throttles, the database and Redis behind it, nginx in front of it), next to the statuses the view
  declares itself;
- input bodies refuse unknown fields (additionalProperties: false, core.serializers.StrictInputSerializer)
  and NUL characters in strings;
- new passwords carry the rules a schema can state (accounts.apis.NewPasswordField).
"""

from typing import Any

from django.conf import settings
from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension, OpenApiSerializerExtension
from drf_spectacular.utils import Direction, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated

from core.errors import ALL_CODES
from core.pagination import pagination_class_of
from core.serializers import ErrorSerializer

UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# DRF's string fields refuse NUL characters (PostgreSQL cannot store them); a field with a pattern of its
# own states that in it.
NO_NUL_CHARACTER = r"^[^\u0000]*$"
# What Django's EmailValidator accepts (its user and domain patterns, spelt without its case-insensitive
# flag): email_addresses_as_checked below. Quoted local parts and address literals, which it takes too,
# are left out: no client needs them.
_EMAIL_LOCAL = r"[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*"
_EMAIL_DOMAIN = (
    r"[a-zA-Z\u00a1-\uffff0-9](?:[a-zA-Z\u00a1-\uffff0-9-]{0,61}[a-zA-Z\u00a1-\uffff0-9])?"
    r"(?:\.(?!-)[a-zA-Z\u00a1-\uffff0-9-]{1,63}(?<!-))*"
    r"\.(?!-)(?:[a-zA-Z\u00a1-\uffff-]{2,63}|xn--[a-zA-Z0-9]{1,59})(?<!-)"
)
EMAIL_ADDRESS = rf"^{_EMAIL_LOCAL}@(?:{_EMAIL_DOMAIN}|localhost)$"


def _error_response(status: int) -> OpenApiResponse:
    """The error body, described by the codes this status can carry."""
    return OpenApiResponse(
        ErrorSerializer,
        description=" or ".join(code.code for code in ALL_CODES if code.status == status),
    )


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """For a view that answers an error status the view itself decides (e.g. health/ready's 503)."""
    return {status: _error_response(status) for status in statuses}


class AutoSchema(openapi.AutoSchema):
    """Every operation documents the errors it can answer, derived from the operation and its view, so
    no view lists them and a new endpoint gets them right:

    - 406 (every view negotiates JSON), 429 and 503 (nginx's limits per client address and an
      unreachable backend, nginx/templates/default.conf.template; the throttles and the database and
      Redis behind the view) for every operation;
    - 400 for an operation with query parameters or a body, 413 and 415 for a body;
    - 404 for a path with a parameter: an object that does not exist, or is not the caller's;
    - 401 unless every permission of the view is AllowAny, 403 for a permission beyond logging in
      (PERMISSION_DENIED) and for every unsafe method of a view that reads the session (CSRF_FAILED).

    405 has no operation to go on: it answers the methods a path lacks (the contract tests,
    core/tests/test_contract.py, check it on every path). A view declares the statuses only it decides,
    e.g. health/ready's 503, with error_responses.
    """

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for status in sorted(self._error_statuses(operation)):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    _error_response(status), str(status)
                )
        operation["responses"] = dict(sorted(responses.items()))
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter["in"] == "query" and schema.get("type") == "string" and "pattern" not in schema:
                schema["pattern"] = NO_NUL_CHARACTER  # as in bodies: DRF's string fields refuse NUL
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> set[int]:
        view, method = self.view, self.method
        statuses = {406, 429, 503}
        locations = {parameter["in"] for parameter in operation.get("parameters", [])}
        if "query" in locations:
            statuses.add(400)
        if "path" in locations:
            statuses.add(404)
        if "requestBody" in operation:
            statuses |= {400, 413, 415}
        if view.authentication_classes and method in UNSAFE_METHODS:
            statuses.add(403)  # CSRF, checked by core.authentication.SessionAuthentication
        # Permissions composed with & | ~ are instances, not classes: taken as more than logging in.
        classes = [
            permission if isinstance(permission, type) else None for permission in view.permission_classes
        ]
        if not all(permission and issubclass(permission, AllowAny) for permission in classes):
            # No session, or without an authenticator none can be presented: DRF's 403 then.
            statuses.add(401 if view.authentication_classes else 403)
        if not all(
            permission and issubclass(permission, (AllowAny, IsAuthenticated)) for permission in classes
        ):
            statuses.add(403)
        return statuses

    def _get_paginator(self) -> Any:
        """The paginator of a list on any APIView: its own pagination_class or the project's default
        (core.pagination), as core.pagination.paginated_response uses it."""
        return pagination_class_of(self.view)()


class StrictInputSerializerExtension(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    """Unknown fields are a VALIDATION_ERROR, so the schema does not allow them. A field's rules that
    its validators enforce and drf-spectacular cannot see come from its ``openapi_schema``."""

    target_class = "core.serializers.StrictInputSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: openapi.AutoSchema, direction: Direction) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(  # type: ignore[no-untyped-call]
            self.target, direction, bypass_extensions=True
        )
        schema["additionalProperties"] = False
        if not type(self.target).__dict__.get("__doc__"):
            schema.pop("description", None)  # StrictInputSerializer's own, which says nothing to a client
        for name, field in self.target.fields.items():
            if name not in schema["properties"]:
                continue
            field_schema = schema["properties"][name]
            if isinstance(field, serializers.CharField) and "pattern" not in field_schema:
                field_schema["pattern"] = NO_NUL_CHARACTER
            field_schema.update(getattr(field, "openapi_schema", {}))
        return schema


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents core.authentication.SessionAuthentication as the session cookie it reads."""

    target_class = "core.authentication.SessionAuthentication"
    name = "sessionCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}


def email_addresses_as_checked(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """A postprocessing hook (SPECTACULAR_SETTINGS): every email address, in requests and responses, as
    the API checks it (Django's EmailValidator, EMAIL_ADDRESS), not as the "email" format, which takes
    addresses Django refuses (a one-letter top-level domain) and refuses some it takes (international
    domain names), so a client or fuzzer following the format would be wrong both ways."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("format") == "email":
                del node["format"]
                node["pattern"] = EMAIL_ADDRESS
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(result)
    return result
