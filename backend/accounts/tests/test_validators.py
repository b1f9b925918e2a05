import pytest
from django.contrib.auth.password_validation import password_validators_help_texts, validate_password
from django.core.exceptions import ValidationError

from accounts.validators import MaximumLengthValidator


@pytest.mark.parametrize("max_length", [1, 20, 256])
def test_passwords_up_to_the_maximum_pass(max_length):
    validator = MaximumLengthValidator(max_length=max_length)

    validator.validate("")
    validator.validate("x" * max_length)


@pytest.mark.parametrize("max_length", [1, 20, 256])
def test_longer_passwords_are_refused(max_length):
    with pytest.raises(ValidationError) as raised:
        MaximumLengthValidator(max_length=max_length).validate("x" * (max_length + 1))

    assert raised.value.code == "password_too_long"
    assert raised.value.params == {"max_length": max_length}
    assert str(max_length) in raised.value.messages[0]


def test_message_uses_the_singular_for_one_character():
    with pytest.raises(ValidationError) as raised:
        MaximumLengthValidator(max_length=1).validate("xx")

    assert raised.value.messages == ["This password is too long. It must contain at most 1 character."]


def test_default_maximum_is_256():
    MaximumLengthValidator().validate("x" * 256)
    with pytest.raises(ValidationError):
        MaximumLengthValidator().validate("x" * 257)


def test_help_text_names_the_maximum():
    assert "42" in MaximumLengthValidator(max_length=42).get_help_text()


def test_configured_in_the_password_validators():
    validate_password("a perfectly fine passphrase " + "x" * 228)
    with pytest.raises(ValidationError) as raised:
        validate_password("a perfectly fine passphrase " + "x" * 229)

    assert [error.code for error in raised.value.error_list] == ["password_too_long"]
    assert MaximumLengthValidator().get_help_text() in password_validators_help_texts()
