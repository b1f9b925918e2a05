"""manage.py makeapp (make app): the names it refuses, and wiring that adds a line once. The app it makes
is checked whole by scripts/check-app-template (lint, tests and fuzz on it, in CI)."""

import pytest
from django.core.management import CommandError, call_command

from core.management.commands.makeapp import add_line


@pytest.mark.parametrize(
    ("name", "model", "message"),
    [
        ("Notes", "Note", "an app is lower_case"),
        ("my-notes", "Note", "an app is lower_case"),
        ("notes", "note", "a model is a CamelCase class name"),
        ("notes", "Note_Item", "a model is a CamelCase class name"),
        ("accounts", "Note", "an installed app is called that already"),
        ("auth", "Note", "an installed app is called that already"),
        ("json", "Note", "conflicts with the name of an existing Python module"),
    ],
)
def test_a_bad_or_taken_name_is_refused_before_anything_is_written(name, model, message):
    with pytest.raises(CommandError, match=message):
        call_command("makeapp", name, model)


def test_wiring_adds_the_line_to_the_end_of_the_list_once(tmp_path):
    settings = tmp_path / "base.py"
    settings.write_text('X = 1\nINSTALLED_APPS = [\n    "core",\n]\nY = [\n]\n')

    add_line(settings, "INSTALLED_APPS", '    "notes",\n')
    add_line(settings, "INSTALLED_APPS", '    "notes",\n')

    assert settings.read_text() == 'X = 1\nINSTALLED_APPS = [\n    "core",\n    "notes",\n]\nY = [\n]\n'


def test_wiring_without_the_list_says_to_do_it_by_hand(tmp_path):
    urls = tmp_path / "urls.py"
    urls.write_text("urlpatterns = []\n")

    with pytest.raises(CommandError, match="no `api_v1 = \\[` list"):
        add_line(urls, "api_v1", '    path("", include("notes.urls")),\n')
