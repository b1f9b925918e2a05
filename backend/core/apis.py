"""The API views of core: health checks, the API docs, and the 404 for unmatched paths under /api/."""

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework import exceptions, serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors, health
from core.errors import ApplicationError
from core.schema import error_responses

# ---------------------------------------------------------------- health: public, unthrottled, cheap


class HealthLiveApi(APIView):
    """200 as long as the process can serve a request; depends on nothing else.

    GET and HEAD are answered by core.middleware.RequestMiddleware, first in the chain, before sessions,
    CSRF, CORS and DRF run: a liveness probe says the process answers, and costing what an API call costs
    made it the slowest way to say so. This view gives the endpoint its route and its place in the
    schema, and answers other methods (405).
    """

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    # Container health checks poll it: core.middleware logs its successes at DEBUG.
    polled = True

    @extend_schema(responses={200: inline_serializer("HealthLive", {"status": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        return Response(health.LIVE_BODY)


class HealthReadyApi(APIView):
    """200 when the database and Redis answer within HEALTH_CHECK_TIMEOUT, else 503 naming the failure."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []
    polled = True

    @extend_schema(
        responses={
            200: inline_serializer(
                "HealthReady",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
            **error_responses(503),
        }
    )
    def get(self, request: Request) -> Response:
        checks = health.run_checks()
        failed = [name for name, result in checks.items() if result != health.OK]
        if failed:
            raise ApplicationError(
                "Not ready: " + ", ".join(failed) + " not answering.",
                code=errors.SERVICE_UNAVAILABLE,
                details={"checks": checks},
            )
        return Response({"status": "ok", "checks": checks})


# ---------------------------------------------------------------- the OpenAPI schema and its docs page


class ApiDocsPermission(BasePermission):
    """The API_DOCS setting: 'public', 'staff' (logged-in staff users) or 'off' (404)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if settings.API_DOCS == "off":
            raise exceptions.NotFound()
        if settings.API_DOCS == "staff":
            return bool(request.user and request.user.is_staff)
        return True


class _JsonErrorsMixin:
    """For views rendering something other than plain JSON: their errors (401, 403, 404) get the API's
    JSON body and Content-Type like every other endpoint."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc, no-any-return]


class SchemaApi(_JsonErrorsMixin, SpectacularJSONAPIView):
    permission_classes = [ApiDocsPermission]


class DocsApi(_JsonErrorsMixin, SpectacularSwaggerView):
    permission_classes = [ApiDocsPermission]


# ---------------------------------------------------------------- everything else under /api/


class NotFoundApi(APIView):
    """Every path under /api/ that no endpoint matches: 404 in the API's shape, for any method, also when
    DEBUG would show Django's HTML page."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound()
