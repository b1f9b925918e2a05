"""Serializer pieces shared by the apps."""

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers


class StrictInputSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """An input serializer that rejects fields it does not know.

    DRF drops unknown fields silently; a client sending {"emial": ...} or a read-only field would think
    it had changed something. Here it gets VALIDATION_ERROR naming the field, as it does for a string
    field sent as another type.

    Nested as ``<View>.InputSerializer``, each gets its schema component name from the view's name.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        owner = cls.__qualname__.split(".")[0].removesuffix("Api")
        name = cls.__name__.removesuffix("Serializer")
        extend_schema_serializer(component_name=f"{owner}{name}")(cls)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {name: ["Unknown field."] for name in sorted(set(data) - set(self.fields))}
            # DRF's CharField takes a number too and stores it as a string; the schema says string, so a
            # number is refused like any other type.
            errors |= {
                name: [str(serializers.CharField.default_error_messages["invalid"])]
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField)
                and data.get(name) is not None
                and not isinstance(data[name], str)
            }
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class ErrorSerializer(serializers.Serializer):  # type: ignore[type-arg]
    """The body of every error response (for the OpenAPI schema)."""

    message = serializers.CharField()
    code = serializers.CharField()
    details = serializers.DictField()


# One instance per serializer class, made at its first use.
_prototypes: dict[type, serializers.BaseSerializer] = {}  # type: ignore[type-arg]


def output(serializer_class: type[serializers.BaseSerializer], instance: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    """``serializer_class(instance).data``, from one instance of the serializer per class.

    DRF builds a serializer's fields for every instance (a ModelSerializer from the model's metadata:
    about 0.5 ms for the user, on every request that returns one). Its to_representation only reads
    those fields, so one instance, made at the first call, serves every call and every thread. For
    output serializers that take no context.
    """
    prototype = _prototypes.get(serializer_class)
    if prototype is None:
        # Two threads may both make one at first; either serves.
        prototype = _prototypes.setdefault(serializer_class, serializer_class())
    data: dict[str, Any] = prototype.to_representation(instance)
    return data
