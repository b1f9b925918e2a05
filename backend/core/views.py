"""Views for what happens outside the API views proper: errors Django raises itself, unmatched URLs under
/api/, and the API docs. Each error here has the API's JSON body under /api/ and Django's page elsewhere
(the admin)."""

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import csrf as django_csrf
from django.views import defaults
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors
from core.exceptions import django_error_response, internal_error_body


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: CsrfViewMiddleware's rejections, for views not checked by DRF."""
    if _is_api(request):
        return django_error_response(
            f"CSRF verification failed: {reason}", errors.CSRF_FAILED, {"reason": reason}
        )
    return django_csrf.csrf_failure(request, reason)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Requests Django refuses before any view (a Host not in ALLOWED_HOSTS, other suspicious input)."""
    if _is_api(request):
        return django_error_response("Bad request.", errors.BAD_REQUEST)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return django_error_response(
            "You do not have permission to perform this action.", errors.PERMISSION_DENIED
        )
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return django_error_response("Not found.", errors.NOT_FOUND)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(internal_error_body(), status=errors.INTERNAL_ERROR.status)
    return defaults.server_error(request)


class ApiNotFoundApi(APIView):
    """Every path under /api/ that no endpoint matches: 404 in the API's shape, for any method, also when
    DEBUG would show Django's HTML page."""

    authentication_classes = []
    permission_classes = [AllowAny]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound()


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


class ApiSchemaApi(_JsonErrorsMixin, SpectacularJSONAPIView):
    permission_classes = [ApiDocsPermission]


class ApiDocsView(_JsonErrorsMixin, SpectacularSwaggerView):
    permission_classes = [ApiDocsPermission]
