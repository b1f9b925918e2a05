"""Health endpoints: public, unthrottled, and cheap enough for a check every few seconds."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core import errors, health
from core.errors import ApplicationError
from core.serializers import ErrorSerializer


class HealthLiveApi(APIView):
    """200 as long as the process can serve a request; depends on nothing else."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(responses={200: inline_serializer("HealthLive", {"status": serializers.CharField()})})
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class HealthReadyApi(APIView):
    """200 when the database and Redis answer within HEALTH_CHECK_TIMEOUT, else 503 naming the failure."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = []

    @extend_schema(
        responses={
            200: inline_serializer(
                "HealthReady",
                {"status": serializers.CharField(), "checks": serializers.DictField()},
            ),
            503: ErrorSerializer,
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
