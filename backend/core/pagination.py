"""Pagination for every list: ``?limit=`` and ``?offset=``, checked like any other input.

REST_FRAMEWORK["DEFAULT_PAGINATION_CLASS"] names LimitOffsetPagination below; an APIView that returns a list
calls ``paginated_response`` (a view may set its own ``pagination_class``), and the OpenAPI schema
describes the page and its two parameters for every GET whose 200 is a list (core.schema).
"""

from typing import Any, cast

from django.db.models import QuerySet
from rest_framework import pagination, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from core.serializers import output

# The largest offset taken: every database's OFFSET holds it, and no client pages that far by offset.
MAX_OFFSET = 2**31 - 1


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    """DRF's limit/offset pagination, but strict: a ``limit`` that is not a whole number from 1 to
    max_limit, or an ``offset`` below 0, is a 400 VALIDATION_ERROR naming the parameter, where DRF
    silently uses its default or clamps, so a client asking for 500 rows would get 100 and not know it.
    """

    default_limit = 20
    max_limit = 100

    def get_limit(self, request: Request) -> int:
        return self._parameter(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return self._parameter(request, self.offset_query_param, 0, 0, MAX_OFFSET)

    def _parameter(self, request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        field = serializers.IntegerField(min_value=minimum, max_value=maximum)
        try:
            value: int = field.run_validation(raw)
        except serializers.ValidationError as error:
            raise serializers.ValidationError({name: error.detail}) from None
        return value

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        }
        for parameter in parameters:
            parameter["schema"].update(bounds[parameter["name"]])
        return parameters

    def paginate_queryset(
        self, queryset: Any, request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        # Pages of an unordered query may repeat or skip rows: the database may return them in any order.
        if isinstance(queryset, QuerySet) and not queryset.ordered:
            raise TypeError(f"{queryset.model.__name__} rows are paginated without an order_by()")
        page: list[Any] | None = super().paginate_queryset(queryset, request, view)
        return page


def pagination_class_of(view: APIView) -> type[pagination.BasePagination]:
    """The view's own pagination_class, else the project's default."""
    return cast(
        type[pagination.BasePagination],
        getattr(view, "pagination_class", None) or api_settings.DEFAULT_PAGINATION_CLASS,
    )


def paginated_response(
    *,
    view: APIView,
    request: Request,
    queryset: Any,
    serializer_class: type[serializers.BaseSerializer],  # type: ignore[type-arg]
) -> Response:
    """One page of ``queryset`` as the view's paginator shapes it ({count, next, previous, results}), each
    result rendered by ``serializer_class`` (core.serializers.output).

    The page costs one query for the count and one for the rows. Whatever the serializer reads beyond a
    row's own columns has to come with the queryset (select_related, prefetch_related in the selector),
    or it costs one query per row.
    """
    paginator = pagination_class_of(view)()
    page: list[Any] | None = paginator.paginate_queryset(queryset, request, view=view)
    if page is None:  # a paginator may decline to paginate (DRF's own do without a limit)
        return Response([output(serializer_class, item) for item in queryset])
    return paginator.get_paginated_response([output(serializer_class, item) for item in page])
