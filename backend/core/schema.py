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
from rest_framework.permissions import AllowAny

from core.errors import ALL_CODES
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
    def _error_statuses(self) -> set[int]:
        view, method = self.view, self.method
        # Every view negotiates JSON (406). nginx answers any request 429 past its limits per client
        # address and 503 while the backend cannot be reached (nginx/templates/default.conf.template).
        statuses = {406, 429, 503}
        has_body = method in UNSAFE_METHODS and self.get_request_serializer() is not None
        if has_body:
            statuses |= {400, 413, 415}
        if view.authentication_classes:
            # The session is read from Redis or the database (503 above).
            if method in UNSAFE_METHODS:
                statuses.add(403)  # CSRF
            public = all(
                isinstance(permission, type) and issubclass(permission, AllowAny)
                for permission in view.permission_classes
            )
            if not public:
                statuses.add(401)
        return statuses

    def _get_response_bodies(self, direction: Direction = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for status in sorted(self._error_statuses()):
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    _error_response(status), str(status), direction=direction
                )
        return dict(sorted(responses.items()))


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
