"""config.env: every helper's default, required and malformed cases, and that errors name the variable."""

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    REQUIRED,
    env_bool,
    env_choice,
    env_int,
    env_list,
    env_origins,
    env_secret,
    env_secret_lines,
    env_str,
    env_url,
    missing,
    require,
)

NAME = "CORE_TEST_VARIABLE"


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (NAME, f"{NAME}_FILE", "CORE_TEST_OTHER", "CORE_TEST_THIRD", "CORE_TEST_THIRD_FILE"):
        monkeypatch.delenv(name, raising=False)


def error_of(call, *args, **kwargs) -> str:
    with pytest.raises(ImproperlyConfigured) as caught:
        call(*args, **kwargs)
    return str(caught.value)


# ---------------------------------------------------------------- common to all helpers


@pytest.mark.parametrize(
    ("helper", "args"),
    [
        (env_str, ()),
        (env_bool, ()),
        (env_int, ()),
        (env_list, ()),
        (env_origins, ()),
        (env_choice, (("a", "b"),)),
        (env_url, (("redis",),)),
    ],
)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_required_variable_unset_or_blank_names_it(monkeypatch, helper, args, value):
    if value is not None:
        monkeypatch.setenv(NAME, value)

    message = error_of(helper, NAME, *args)

    assert NAME in message
    assert "required" in message


def test_default_is_required():
    assert NAME in error_of(env_str, NAME, REQUIRED)


def test_blank_value_falls_back_to_the_default(monkeypatch):
    monkeypatch.setenv(NAME, "  ")

    assert env_str(NAME, "fallback") == "fallback"
    assert env_int(NAME, 7) == 7
    assert env_bool(NAME, True) is True
    assert env_list(NAME, ["x"]) == ["x"]


# ---------------------------------------------------------------- env_str


def test_str_is_read_and_stripped(monkeypatch):
    monkeypatch.setenv(NAME, "  value  ")

    assert env_str(NAME) == "value"


def test_str_default_when_unset():
    assert env_str(NAME, "fallback") == "fallback"


def test_str_validation_failure_names_variable_and_expectation(monkeypatch):
    monkeypatch.setenv(NAME, "nope")

    message = error_of(env_str, NAME, validate=lambda value: None if value == "ok" else "the word ok")

    assert NAME in message
    assert "the word ok" in message


def test_str_validation_passes_good_value(monkeypatch):
    monkeypatch.setenv(NAME, "ok")

    assert env_str(NAME, validate=lambda value: None if value == "ok" else "the word ok") == "ok"


# ---------------------------------------------------------------- env_bool


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On"])
def test_bool_true_spellings(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    assert env_bool(NAME, False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF"])
def test_bool_false_spellings(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    assert env_bool(NAME, True) is False


def test_bool_default_when_unset():
    assert env_bool(NAME, True) is True
    assert env_bool(NAME, False) is False


def test_bool_malformed_names_variable_and_expectation(monkeypatch):
    monkeypatch.setenv(NAME, "maybe")

    message = error_of(env_bool, NAME, False)

    assert NAME in message
    assert "true/false" in message


# ---------------------------------------------------------------- env_int


def test_int_is_parsed(monkeypatch):
    monkeypatch.setenv(NAME, " 42 ")

    assert env_int(NAME, 1) == 42


def test_int_default_when_unset():
    assert env_int(NAME, 5432) == 5432


@pytest.mark.parametrize("raw", ["abc", "4.5", "1e3", "0x10"])
def test_int_malformed_names_variable_and_expectation(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    message = error_of(env_int, NAME, 1)

    assert NAME in message
    assert "an integer" in message


@pytest.mark.parametrize("raw", ["1", "65535"])
def test_int_within_bounds_is_accepted(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    assert env_int(NAME, 5, min_value=1, max_value=65535) == int(raw)


@pytest.mark.parametrize("raw", ["0", "65536", "-1"])
def test_int_out_of_bounds_names_variable_and_bounds(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    message = error_of(env_int, NAME, 5, min_value=1, max_value=65535)

    assert NAME in message
    assert "between 1 and 65535" in message


def test_int_below_minimum_without_maximum(monkeypatch):
    monkeypatch.setenv(NAME, "-1")

    message = error_of(env_int, NAME, 5, min_value=0)

    assert NAME in message
    assert ">= 0" in message


def test_int_above_maximum_without_minimum_states_the_maximum(monkeypatch):
    monkeypatch.setenv(NAME, "11")

    message = error_of(env_int, NAME, 5, max_value=10)

    assert NAME in message
    assert "10" in message
    assert "None" not in message


# ---------------------------------------------------------------- env_list


def test_list_splits_on_commas_and_drops_blanks(monkeypatch):
    monkeypatch.setenv(NAME, " a.example.com, b.example.com ,,c.example.com, ")

    assert env_list(NAME) == ["a.example.com", "b.example.com", "c.example.com"]


def test_list_default_when_unset():
    assert env_list(NAME, ["localhost"]) == ["localhost"]


def test_list_item_validation_names_variable_item_and_expectation(monkeypatch):
    monkeypatch.setenv(NAME, "good,bad-one,good")

    message = error_of(env_list, NAME, validate=lambda item: None if item == "good" else "only the word good")

    assert NAME in message
    assert "bad-one" in message
    assert "only the word good" in message


# ---------------------------------------------------------------- env_choice


def test_choice_accepts_a_listed_value(monkeypatch):
    monkeypatch.setenv(NAME, "staff")

    assert env_choice(NAME, ("public", "staff", "off"), "public") == "staff"


def test_choice_default_when_unset():
    assert env_choice(NAME, ("public", "staff", "off"), "off") == "off"


@pytest.mark.parametrize("raw", ["bogus", "Staff"])
def test_choice_rejects_unlisted_value_naming_variable_and_choices(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    message = error_of(env_choice, NAME, ("public", "staff", "off"), "public")

    assert NAME in message
    assert "public, staff, off" in message


# ---------------------------------------------------------------- env_origins


def test_origins_accepts_scheme_host_and_port(monkeypatch):
    monkeypatch.setenv(NAME, "https://app.example.com, http://localhost:5173")

    assert env_origins(NAME) == ["https://app.example.com", "http://localhost:5173"]


def test_origins_default_when_unset():
    assert env_origins(NAME, []) == []


@pytest.mark.parametrize(
    "origin",
    [
        "https://app.example.com/",
        "https://app.example.com/app",
        "app.example.com",
        "ftp://app.example.com",
        "https://user@app.example.com",
        "https://app.example.com?x=1",
    ],
)
def test_origins_rejects_anything_but_scheme_and_host(monkeypatch, origin):
    monkeypatch.setenv(NAME, f"https://ok.example.com,{origin}")

    message = error_of(env_origins, NAME, [])

    assert NAME in message
    assert "no path" in message


# ---------------------------------------------------------------- env_url


def test_url_accepts_listed_schemes(monkeypatch):
    monkeypatch.setenv(NAME, "rediss://:pw@cache.example.com:6380/1")

    assert env_url(NAME, ("redis", "rediss")) == "rediss://:pw@cache.example.com:6380/1"


def test_url_default_when_unset():
    assert env_url(NAME, ("redis",), "") == ""


def test_url_can_come_from_a_file(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "redis_url"
    secret_file.write_text("redis://:pw@cache:6379/0\n")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file))

    assert env_url(NAME, ("redis",)) == "redis://:pw@cache:6379/0"


@pytest.mark.parametrize(
    "raw",
    [
        "http://:hunter2-secret@cache:6379/0",
        "redis//:hunter2-secret@cache:6379/0",
        "redis://",
        ":hunter2-secret",
    ],
)
def test_url_malformed_names_variable_and_schemes_but_never_echoes_the_value(monkeypatch, raw):
    monkeypatch.setenv(NAME, raw)

    message = error_of(env_url, NAME, ("redis", "rediss"))

    assert NAME in message
    assert "redis://" in message
    assert "rediss://" in message
    assert "hunter2" not in message


# ---------------------------------------------------------------- env_secret


def test_secret_from_the_variable(monkeypatch):
    monkeypatch.setenv(NAME, "s3cret")

    assert env_secret(NAME) == "s3cret"


def test_secret_from_the_file_named_by_name_file(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file\n")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file))

    assert env_secret(NAME) == "from-the-file"


def test_secret_file_wins_over_a_blank_variable(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file")
    monkeypatch.setenv(NAME, "")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file))

    assert env_secret(NAME) == "from-the-file"


def test_secret_default_when_neither_is_set():
    assert env_secret(NAME, "fallback") == "fallback"


def test_secret_required_names_both_ways_to_set_it():
    message = error_of(env_secret, NAME)

    assert NAME in message
    assert f"{NAME}_FILE" in message


def test_secret_set_twice_is_an_error(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-the-file")
    monkeypatch.setenv(NAME, "from-the-variable")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file))

    message = error_of(env_secret, NAME)

    assert NAME in message
    assert f"{NAME}_FILE" in message
    assert "from-the-variable" not in message
    assert "from-the-file" not in message


def test_secret_unreadable_file_names_name_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "does-not-exist"))

    message = error_of(env_secret, NAME)

    assert f"{NAME}_FILE" in message
    assert "does-not-exist" in message


def test_secret_file_that_is_a_directory_names_name_file(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path))

    assert f"{NAME}_FILE" in error_of(env_secret, NAME)


def test_secret_shorter_than_min_length_is_refused_without_echoing_it(monkeypatch):
    monkeypatch.setenv(NAME, "short-secret")

    message = error_of(env_secret, NAME, min_length=50)

    assert NAME in message
    assert "50" in message
    assert "short-secret" not in message


def test_secret_from_file_shorter_than_min_length_names_name_file(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("short-secret")
    monkeypatch.setenv(f"{NAME}_FILE", str(secret_file))

    message = error_of(env_secret, NAME, min_length=50)

    assert f"{NAME}_FILE" in message
    assert "short-secret" not in message


def test_secret_of_min_length_is_accepted(monkeypatch):
    monkeypatch.setenv(NAME, "x" * 50)

    assert env_secret(NAME, min_length=50) == "x" * 50


# ---------------------------------------------------------------- env_secret_lines


def test_secret_lines_are_the_current_value_then_the_ones_it_replaced(monkeypatch, tmp_path: Path):
    (tmp_path / "secret").write_text("current-key\n\nprevious-key\n")
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "secret"))

    assert env_secret_lines(NAME) == ["current-key", "previous-key"]


def test_secret_lines_of_one_value_have_no_others(monkeypatch):
    monkeypatch.setenv(NAME, "only-key")

    assert env_secret_lines(NAME) == ["only-key"]


def test_secret_lines_default_when_unset():
    assert env_secret_lines(NAME, "fallback") == ["fallback"]


def test_secret_lines_refuse_a_short_line_without_echoing_it(monkeypatch, tmp_path: Path):
    (tmp_path / "secret").write_text("x" * 50 + "\nshort-secret\n")
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "secret"))

    message = error_of(env_secret_lines, NAME, min_length=50)

    assert "malformed" in message
    assert f"{NAME}_FILE" in message
    assert "short-secret" not in message


def test_secret_lines_refuse_a_file_of_blank_lines(monkeypatch, tmp_path: Path):
    (tmp_path / "secret").write_text("\n \n")
    monkeypatch.setenv(f"{NAME}_FILE", str(tmp_path / "secret"))

    assert "malformed" in error_of(env_secret_lines, NAME)


# ---------------------------------------------------------------- require / missing


def test_require_names_every_missing_variable_at_once(monkeypatch):
    monkeypatch.setenv("CORE_TEST_OTHER", "set")

    message = error_of(require, [NAME, "CORE_TEST_OTHER"], secrets=["CORE_TEST_THIRD"])

    assert NAME in message
    assert "CORE_TEST_THIRD" in message
    assert "CORE_TEST_OTHER" not in message


def test_require_accepts_secrets_given_as_files(monkeypatch, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s3cret")
    monkeypatch.setenv(NAME, "set")
    monkeypatch.setenv("CORE_TEST_THIRD_FILE", str(secret_file))

    require([NAME], secrets=["CORE_TEST_THIRD"])


def test_missing_counts_blank_as_unset(monkeypatch):
    monkeypatch.setenv(NAME, " ")
    monkeypatch.setenv("CORE_TEST_OTHER", "set")

    assert missing([NAME, "CORE_TEST_OTHER"], secrets=["CORE_TEST_THIRD"]) == [NAME, "CORE_TEST_THIRD"]
