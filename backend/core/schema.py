"""OpenAPI helpers, so the schema shows the error body next to each endpoint's success response."""

from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse

from core.errors import ALL_CODES
from core.serializers import ErrorSerializer


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """The error body for each status, described by the codes that status can carry."""
    return {
        status: OpenApiResponse(
            ErrorSerializer,
            description=" or ".join(code.code for code in ALL_CODES if code.status == status),
        )
        for status in statuses
    }


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Documents core.authentication.SessionAuthentication as the session cookie it reads."""

    target_class = "core.authentication.SessionAuthentication"
    name = "sessionCookie"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
