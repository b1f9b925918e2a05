"""The /api/v1/auth/ endpoints. Each view validates its input, calls one service, and returns the output
serializer's data; errors are raised and shaped by core.exceptions."""

from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import services
from accounts.models import User
from core import rate_limit
from core.serializers import StrictInputSerializer, output

# Long enough for any existing password (one set before the current rules, or imported).
PASSWORD_FIELD_MAX = 4096


def password_field() -> serializers.CharField:
    """A password to check. Never trimmed: leading and trailing spaces are part of the password."""
    return serializers.CharField(
        trim_whitespace=False, max_length=PASSWORD_FIELD_MAX, style={"input_type": "password"}
    )


class NewPasswordField(serializers.CharField):
    """A password to set. AUTH_PASSWORD_VALIDATORS check it (accounts.services), with the messages users
    see; the schema states the rules that a schema can: the length limits, not only digits, and no NUL
    character (refused in every string, core.schema). Not a common password, not like the email or
    name, it cannot."""

    openapi_schema = {
        "format": "password",
        "minLength": settings.PASSWORD_MIN_LENGTH,
        "maxLength": settings.PASSWORD_MAX_LENGTH,
        "pattern": r"^[^\u0000]*[^\u0000\d][^\u0000]*$",
    }

    def __init__(self) -> None:
        super().__init__(
            trim_whitespace=False, max_length=PASSWORD_FIELD_MAX, style={"input_type": "password"}
        )


class UserOutputSerializer(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "date_joined"]


class AuthCsrfApi(APIView):
    """Sets the csrftoken cookie and returns the same token. Call it first, and again after login, signup
    and logout, which rotate the token. A SPA on another site cannot read the cookie and uses the body.

    The token belongs to the browser's cookie, not to a session, so the view does not look at the
    session: no session or user is loaded (a SPA on another site calls it before every unsafe request),
    and it is counted per client address under the anon rate, logged in or not.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(responses={200: inline_serializer("CsrfToken", {"csrf_token": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        # get_token marks the cookie for CsrfViewMiddleware to set, as ensure_csrf_cookie would, without
        # the second pass of the CSRF middleware (and second masked token) that decorator runs.
        return Response({"csrf_token": get_token(request._request)})


class AuthSignupApi(APIView):
    permission_classes = [AllowAny]
    throttle_scope = rate_limit.AUTH

    class InputSerializer(StrictInputSerializer):
        email = serializers.EmailField(max_length=254)
        password = NewPasswordField()
        first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
        last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: UserOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_create(**serializer.validated_data)
        services.session_start(request=request._request, user=user)
        response = Response(output(UserOutputSerializer, user), status=status.HTTP_201_CREATED)
        services.login_device_remember(request=request._request, response=response, user=user)
        return response


class AuthLoginApi(APIView):
    permission_classes = [AllowAny]
    throttle_scope = rate_limit.AUTH

    class InputSerializer(StrictInputSerializer):
        email = serializers.CharField(max_length=254)
        password = password_field()

    @extend_schema(
        request=InputSerializer,
        responses={200: UserOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.session_login(request=request._request, **serializer.validated_data)
        response = Response(output(UserOutputSerializer, user))
        services.login_device_remember(request=request._request, response=response, user=user)
        return response


class AuthLogoutApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        services.session_logout(request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserMeApi(APIView):
    class UpdateInputSerializer(StrictInputSerializer):
        first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
        last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)

    # The session check a SPA makes on load also sets the csrftoken cookie when the browser has none,
    # whatever the answer (a 401 included): a SPA that follows the API contract (GET auth/me on load,
    # then the cookie's value in X-CSRFToken) can make its first POST without knowing auth/csrf.
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        http_request: HttpRequest = request._request
        if "CSRF_COOKIE" not in http_request.META:  # no valid cookie came with the request
            get_token(http_request)
        super().initial(request, *args, **kwargs)

    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request: Request) -> Response:
        return Response(output(UserOutputSerializer, cast(User, request.user)))

    @extend_schema(
        request=UpdateInputSerializer,
        responses={200: UserOutputSerializer},
    )
    def patch(self, request: Request) -> Response:
        serializer = self.UpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = services.user_update(user=cast(User, request.user), data=serializer.validated_data)
        return Response(output(UserOutputSerializer, user))


class PasswordChangeApi(APIView):
    throttle_scope = rate_limit.AUTH

    class InputSerializer(StrictInputSerializer):
        current_password = password_field()
        new_password = NewPasswordField()

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.user_password_change(
            request=request._request,
            user=cast(User, request.user),
            **serializer.validated_data,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordResetApi(APIView):
    """202 whatever the email: the response does not tell whether an account exists."""

    permission_classes = [AllowAny]
    throttle_scope = rate_limit.AUTH

    class InputSerializer(StrictInputSerializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=InputSerializer, responses={202: None})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_request(**serializer.validated_data)
        return Response(status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmApi(APIView):
    permission_classes = [AllowAny]
    throttle_scope = rate_limit.AUTH

    class InputSerializer(StrictInputSerializer):
        uid = serializers.CharField(max_length=64)
        token = serializers.CharField(max_length=128)
        new_password = NewPasswordField()

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.password_reset_confirm(**serializer.validated_data)
        return Response(status=status.HTTP_204_NO_CONTENT)
