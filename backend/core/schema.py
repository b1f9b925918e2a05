"""OpenAPI helpers, so the schema shows the error body next to each endpoint's success response."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from core.serializers import ErrorSerializer

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR, PARSE_ERROR or an endpoint-specific code",
    401: "NOT_AUTHENTICATED: no valid session",
    403: "CSRF_FAILED or PERMISSION_DENIED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "THROTTLED; Retry-After says when to try again",
    503: "SERVICE_UNAVAILABLE",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {
        status: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[status]) for status in statuses
    }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents core.authentication.SessionAuthentication as the session cookie it reads."""

    target_class = "core.authentication.SessionAuthentication"
    name = "sessionCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
