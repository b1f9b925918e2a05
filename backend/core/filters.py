"""Filtering, search and ordering of a list: a filter serializer for the query parameters (HackSoft's
pattern), plain ORM in the selector. Why not django-filter: docs/decisions.md, "Lists: pagination,
filtering and ordering"."""

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import QueryDict
from rest_framework import serializers

from core.pagination import LimitOffsetPagination
from core.serializers import StrictInputSerializer

_M = TypeVar("_M", bound=Model)

# Read by the paginator (core.pagination), not by a filter serializer.
PAGINATION_PARAMETERS = (LimitOffsetPagination.limit_query_param, LimitOffsetPagination.offset_query_param)


class FilterSerializer(StrictInputSerializer):
    """The query parameters of a list, as ``<View>.FilterSerializer``: validated like a body, so a bad
    value is a 400 VALIDATION_ERROR naming the parameter, and an unknown one is refused too (a misspelt
    ``?serach=`` would otherwise list everything). Give it to ``@extend_schema(parameters=[...])`` and
    the schema describes each field as a query parameter."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, QueryDict):
            # A plain mapping, not the QueryDict: DRF reads an empty value in a QueryDict as a form's
            # field left blank, and would take ``?ordering=`` for no ordering at all, not a bad one.
            lists = (serializers.ListField, serializers.MultipleChoiceField)
            data = {
                name: data.getlist(name) if isinstance(self.fields.get(name), lists) else data[name]
                for name in data
                if name not in PAGINATION_PARAMETERS
            }
        return super().to_internal_value(data)


def ordering_field(*fields: str, default: str) -> serializers.ChoiceField:
    """``?ordering=``: one of ``fields``, ascending, or descending with a "-" before it."""
    return serializers.ChoiceField(
        choices=[order for field in fields for order in (field, f"-{field}")],
        default=default,
        help_text=f'A field to sort by, "-" before it for descending. Default: {default}.',
    )


def ordered(queryset: QuerySet[_M], ordering: str) -> QuerySet[_M]:
    """``queryset`` in ``ordering`` (a field name, "-" first for descending), then by primary key in the
    same direction: rows equal in the field keep one order, so pages neither repeat nor skip them."""
    return queryset.order_by(ordering, "-pk" if ordering.startswith("-") else "pk")
