"""The project's URLs plus views that exist only to make errors happen, for
``@pytest.mark.urls("core.tests.urls")``."""

from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, RequestDataTooBig, ValidationError
from django.db.utils import ConnectionHandler
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django_redis.cache import RedisCache
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from config import urls as project_urls
from core import filters
from core.cache import strict
from core.pagination import paginated_response
from testing import closed_port, redis_cache_at

CRASH_MESSAGE = "kaboom: internal detail that must not reach the client"

DJANGO_EXCEPTIONS: dict[str, Exception] = {
    "http404": Http404("no such thing"),
    "permission-denied": PermissionDenied("nope"),
    "data-too-big": RequestDataTooBig("too big"),
    "validation-plain": ValidationError("Something about the request as a whole is wrong."),
    "validation-non-field": ValidationError({NON_FIELD_ERRORS: ["These fields do not go together."]}),
    "validation-field": ValidationError({"email": ["This email is not allowed."]}),
}


class CrashApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError(CRASH_MESSAGE)


class AdminOnlyApi(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request: Request) -> Response:
        return Response({"ok": True})


class DjangoExceptionApi(APIView):
    """Raises the Django exception named in the URL, as a service or selector would."""

    permission_classes = [AllowAny]

    def get(self, request: Request, name: str) -> Response:
        raise DJANGO_EXCEPTIONS[name]


class UserRowSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email"]


class UserListApi(APIView):
    """A list as the app template makes them: filters, search, order, pages."""

    class FilterSerializer(filters.FilterSerializer):
        q = serializers.CharField(required=False, max_length=50)
        ordering = filters.ordering_field("email", "date_joined", default="email")

    @extend_schema(parameters=[FilterSerializer], responses={200: UserRowSerializer(many=True)})
    def get(self, request: Request) -> Response:
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        users = User.objects.filter(email__icontains=query.validated_data.get("q", ""))
        return paginated_response(
            view=self,
            request=request,
            queryset=filters.ordered(users, query.validated_data["ordering"]),
            serializer_class=UserRowSerializer,
        )


class UserDetailApi(APIView):
    @extend_schema(responses={200: UserRowSerializer})
    def get(self, request: Request, user_id: int) -> Response:
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise Http404
        return Response(UserRowSerializer(user).data)


class UnorderedListApi(APIView):
    def get(self, request: Request) -> Response:
        return paginated_response(
            view=self, request=request, queryset=User.objects.all(), serializer_class=UserRowSerializer
        )


def _query_an_unreachable_database() -> None:
    """Really fails: a PostgreSQL connection to a port nothing listens on."""
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "HOST": "127.0.0.1",
                "PORT": closed_port(),
                "NAME": "unreachable",
                "USER": "nobody",
                "PASSWORD": "unused",
            }
        }
    )
    with handler["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _ask_an_unreachable_redis() -> None:
    """Really fails: a strict read from a Redis cache on a port nothing listens on."""
    config = redis_cache_at(closed_port())["default"]
    strict(RedisCache(config["LOCATION"], config)).get("anything")


DEPENDENCY_FAILURES = {"database": _query_an_unreachable_database, "redis": _ask_an_unreachable_redis}


class DependencyDownApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request: Request, name: str) -> Response:
        DEPENDENCY_FAILURES[name]()
        return Response({"ok": True})


def plain_dependency_down_view(request: HttpRequest, name: str) -> HttpResponse:
    DEPENDENCY_FAILURES[name]()
    return JsonResponse({"ok": True})


def plain_post_view(request: HttpRequest) -> HttpResponse:
    """A plain Django view: CSRF is checked by CsrfViewMiddleware, not by DRF."""
    return JsonResponse({"ok": True})


def plain_crash_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(CRASH_MESSAGE)


def plain_forbidden_view(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not for you")


urlpatterns = [
    path("api/test/crash", CrashApi.as_view()),
    path("api/test/users", UserListApi.as_view()),
    path("api/test/users/<int:user_id>", UserDetailApi.as_view()),
    path("api/test/unordered", UnorderedListApi.as_view()),
    path("api/test/admin-only", AdminOnlyApi.as_view()),
    path("api/test/django-exception/<str:name>", DjangoExceptionApi.as_view()),
    path("api/test/plain-post", plain_post_view),
    path("api/test/plain-crash", plain_crash_view),
    path("api/test/plain-forbidden", plain_forbidden_view),
    path("api/test/dependency-down/<str:name>", DependencyDownApi.as_view()),
    path("api/test/plain-dependency-down/<str:name>", plain_dependency_down_view),
    # Last: the project's catch-all for /api/ would shadow the views above.
    *project_urls.urlpatterns,
]

handler400 = project_urls.handler400
handler403 = project_urls.handler403
handler404 = project_urls.handler404
handler500 = project_urls.handler500
