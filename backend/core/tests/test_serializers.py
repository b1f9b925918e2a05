"""core.serializers.output: a serializer's data, from one instance of the serializer per class."""

import pytest
from rest_framework import serializers

from accounts.apis import UserOutputSerializer
from core.serializers import output

pytestmark = pytest.mark.django_db


def test_output_is_what_the_serializer_gives(user):
    assert output(UserOutputSerializer, user) == UserOutputSerializer(user).data


def test_output_builds_the_fields_of_a_serializer_class_once(user, other_user, monkeypatch):
    built = []
    original = serializers.ModelSerializer.get_fields

    def counting(self):
        built.append(type(self))
        return original(self)

    monkeypatch.setattr(serializers.ModelSerializer, "get_fields", counting)

    class CountedSerializer(UserOutputSerializer):
        pass

    first = output(CountedSerializer, user)
    second = output(CountedSerializer, other_user)

    assert built == [CountedSerializer]
    assert (first["id"], second["id"]) == (user.pk, other_user.pk)
