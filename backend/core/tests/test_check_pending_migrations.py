"""check_pending_migrations, run on real migrations: each test writes a migrations package for the test app
(pending_migrations_app), applies its 0001 as the running version would have it, and checks 0002."""

import json
import re
import uuid
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.management.commands.check_pending_migrations import BREAKING_EXIT_STATUS

pytestmark = pytest.mark.django_db(transaction=True)

APP = "pending_migrations_app"
BOOK = f"{APP}_book"
INITIAL = """
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.CreateModel("Author", [
            ("id", models.BigAutoField(primary_key=True)),
            ("name", models.CharField(max_length=100)),
        ]),
        migrations.CreateModel("Book", [
            ("id", models.BigAutoField(primary_key=True)),
            ("title", models.CharField(max_length=100)),
            ("subtitle", models.CharField(max_length=100, blank=True)),
            ("author", models.ForeignKey("pending_migrations_app.Author", on_delete=models.CASCADE)),
            ("readers", models.ManyToManyField("pending_migrations_app.Author", related_name="read")),
        ]),
    ]
"""
CHANGE = """
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("pending_migrations_app", "0001_initial")]
    operations = [{operations}]
"""
# What the running version's models use after 0001, as core/management/models_in_use.py prints it.
RUNNING = {
    f"{APP}_author": ["id", "name"],
    BOOK: ["author_id", "id", "subtitle", "title"],
    f"{APP}_book_readers": ["author_id", "book_id", "id"],
}


@pytest.fixture
def pending(tmp_path, monkeypatch, settings):
    """pending(operations) installs the test app with 0001 applied and a pending 0002 made of `operations`
    (source text); pending() without 0002."""
    package = f"pending_migrations_{uuid.uuid4().hex}"
    monkeypatch.syspath_prepend(str(tmp_path))
    applied = []

    def install(*operations: str) -> None:
        directory = tmp_path / package
        directory.mkdir()
        (directory / "__init__.py").write_text("")
        (directory / "0001_initial.py").write_text(INITIAL)
        if operations:
            (directory / "0002_change.py").write_text(CHANGE.format(operations=", ".join(operations)))
        settings.INSTALLED_APPS = [*settings.INSTALLED_APPS, f"core.tests.{APP}"]
        settings.MIGRATION_MODULES = {APP: package}
        call_command("migrate", APP, "0001", verbosity=0)
        applied.append(APP)

    yield install
    if applied:
        call_command("migrate", APP, "zero", verbosity=0)


def check(tmp_path: Path, running: dict[str, list[str]] = RUNNING) -> tuple[str, str]:
    in_use = tmp_path / "in-use.json"
    in_use.write_text(json.dumps(running))
    stdout, stderr = StringIO(), StringIO()
    call_command("check_pending_migrations", in_use=str(in_use), stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


def refused(tmp_path: Path, running: dict[str, list[str]] = RUNNING) -> str:
    """The findings of a refused check, with the command's closing message."""
    stderr = StringIO()
    in_use = tmp_path / "in-use.json"
    in_use.write_text(json.dumps(running))
    with pytest.raises(CommandError) as error:
        call_command("check_pending_migrations", in_use=str(in_use), stdout=StringIO(), stderr=stderr)
    assert error.value.returncode == BREAKING_EXIT_STATUS
    assert "expand now, contract in a later release" in str(error.value)
    return stderr.getvalue()


@pytest.mark.parametrize(
    ("operation", "problem"),
    [
        ('migrations.RemoveField("book", "subtitle")', f"column {BOOK}.subtitle is dropped or renamed"),
        ('migrations.RenameField("book", "title", "heading")', f"column {BOOK}.title is dropped or renamed"),
        (
            'migrations.AlterField("book", "title", models.CharField(max_length=100, db_column="heading"))',
            f"column {BOOK}.title is dropped or renamed",
        ),
        ('migrations.RemoveField("book", "author")', f"column {BOOK}.author_id is dropped or renamed"),
        ('migrations.DeleteModel("book")', f"table {BOOK} is dropped or renamed"),
        ('migrations.RenameModel("book", "volume")', f"table {BOOK} is dropped or renamed"),
        ('migrations.AlterModelTable("book", "library_books")', f"table {BOOK} is dropped or renamed"),
        ('migrations.RemoveField("book", "readers")', f"table {BOOK}_readers is dropped or renamed"),
        (
            'migrations.AddField("book", "isbn", models.CharField(max_length=13, default=""))',
            f"column {BOOK}.isbn is added NOT NULL without db_default",
        ),
        (
            "migrations.SeparateDatabaseAndState(database_operations=["
            'migrations.RemoveField("book", "subtitle")])',
            f"column {BOOK}.subtitle is dropped or renamed",
        ),
    ],
)
def test_an_operation_that_breaks_the_running_version_is_refused_naming_it(
    pending, tmp_path, operation, problem
):
    pending(operation)

    findings = refused(tmp_path).splitlines()

    assert problem in findings[0]
    # Renaming a table renames its many-to-many tables too, each a finding of its own.
    for line in findings:
        assert line.startswith(f"{APP}.0002_change: ")
        assert line.endswith("(breaks the running version)")


def test_dropping_a_table_names_its_many_to_many_tables_too(pending, tmp_path):
    pending('migrations.DeleteModel("book")')

    findings = refused(tmp_path)

    assert re.findall(r"table (\S+) is dropped", findings) == [BOOK, f"{BOOK}_readers"]


@pytest.mark.parametrize(
    "operation",
    [
        'migrations.AddField("book", "isbn", models.CharField(max_length=13, null=True))',
        'migrations.AddField("book", "isbn", models.CharField(max_length=13, db_default=""))',
        'migrations.AlterField("book", "title", models.CharField(max_length=200))',
        'migrations.CreateModel("Shelf", [("id", models.BigAutoField(primary_key=True))])',
        # Only the model state forgets the column; the table keeps it.
        'migrations.SeparateDatabaseAndState(state_operations=[migrations.RemoveField("book", "subtitle")])',
    ],
)
def test_an_expanding_operation_passes(pending, tmp_path, operation):
    pending(operation)

    stdout, stderr = check(tmp_path)

    assert stderr == ""
    assert f"Pending migrations: {APP}.0002_change" in stdout
    assert "The running version keeps every table and column it uses." in stdout


def test_dropping_what_the_running_version_no_longer_uses_passes(pending, tmp_path):
    """The contract step: the release before stopped using the column; now it can go."""
    pending('migrations.RemoveField("book", "subtitle")')
    running = {**RUNNING, BOOK: ["author_id", "id", "title"]}

    stdout, stderr = check(tmp_path, running)

    assert stderr == ""
    assert "The running version keeps every table and column it uses." in stdout


def test_run_sql_is_a_warning_not_a_refusal(pending, tmp_path):
    pending('migrations.RunSQL("UPDATE pending_migrations_app_book SET subtitle = title")')

    stdout, stderr = check(tmp_path)

    assert stderr == ""
    assert "RunSQL: check by hand what it changes (warning)" in stdout


def test_without_pending_migrations_it_says_so(pending, tmp_path):
    pending()

    stdout, _ = check(tmp_path)

    assert stdout == "No pending migrations.\n"


@pytest.mark.parametrize("text", ["not json", '["a list"]', '{"table": "not a list"}'])
def test_malformed_input_is_an_error_not_a_refusal(tmp_path, text):
    in_use = tmp_path / "in-use.json"
    in_use.write_text(text)

    with pytest.raises(CommandError) as error:
        call_command("check_pending_migrations", in_use=str(in_use), stdout=StringIO())

    assert error.value.returncode == 1
    assert str(error.value).startswith("--in-use: ")


def test_models_in_use_prints_the_tables_and_columns_of_the_models(capsys):
    source = (Path(__file__).parents[1] / "management" / "models_in_use.py").read_text()

    call_command("shell", command=source)

    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("MODELS_IN_USE ")]
    in_use = json.loads(line.removeprefix("MODELS_IN_USE "))
    assert {"email", "first_name", "password", "id"} <= set(in_use["accounts_user"])
    # Many-to-many tables are used too, and proxy models have no table of their own.
    assert in_use["accounts_user_groups"] == ["group_id", "id", "user_id"]
    assert "django_session" in in_use


def test_what_models_in_use_prints_is_what_the_command_reads(capsys, tmp_path):
    source = (Path(__file__).parents[1] / "management" / "models_in_use.py").read_text()
    call_command("shell", command=source)
    line = capsys.readouterr().out.splitlines()[-1]
    in_use = tmp_path / "in-use.json"
    in_use.write_text(line.removeprefix("MODELS_IN_USE "))

    stdout = StringIO()
    call_command("check_pending_migrations", in_use=str(in_use), stdout=stdout)

    assert stdout.getvalue() == "No pending migrations.\n"
