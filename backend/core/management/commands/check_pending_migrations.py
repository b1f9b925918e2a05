"""Refuses the pending migrations that would break the version still serving while they run.

A deploy migrates while the old code serves (docs/operations.md, "Migrations during a deploy"): expand
now, contract in a later release. This command walks the plan `migrate` would run and reports each
operation that takes away a table or column the running version uses (a drop or a rename: RemoveField,
RenameField, DeleteModel, RenameModel, AlterModelTable, a changed db_column, ...) or adds a NOT NULL
column without a database default to a table it writes (its INSERTs would leave the column out). It
cannot see into RunSQL, so it warns about that.

What the running version uses comes from core/management/models_in_use.py, run in the old container:
    python manage.py check_pending_migrations --in-use models.json    ('-' reads standard input)
Exit status: 0 when nothing breaks (warnings are printed), 3 when something does, 1 on an error.
"""

import json
import sys
from dataclasses import dataclass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.operations import AddField, RunSQL, SeparateDatabaseAndState
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState, StateApps
from django.db.models import NOT_PROVIDED

# Distinct from CommandError's 1, so a deploy can tell "refused" from "could not check".
BREAKING_EXIT_STATUS = 3

Tables = dict[str, set[str]]


@dataclass(frozen=True)
class Finding:
    migration: str
    operation: str
    problem: str
    breaking: bool

    def __str__(self) -> str:
        kind = "breaks the running version" if self.breaking else "warning"
        return f"{self.migration}: {self.operation}: {self.problem} ({kind})"


def tables_of(state: ProjectState) -> Tables:
    """The tables the models of a migration state have in the database, with their columns. Rendered
    afresh: the state's cached apps keep the many-to-many tables of a model removed from it."""
    tables: Tables = {}
    for model in StateApps(sorted(state.real_apps), state.models).get_models(include_auto_created=True):
        options = model._meta
        if options.managed and not options.proxy:
            tables[options.db_table] = {
                field.column for field in options.local_concrete_fields if field.column is not None
            }
    return tables


def removed(before: Tables, after: Tables, in_use: Tables) -> list[str]:
    """What the running version uses that was there before an operation and is gone after it."""
    problems = []
    for table, columns in sorted(in_use.items()):
        if table not in before:
            continue
        if table not in after:
            problems.append(f"table {table} is dropped or renamed, and the running version uses it")
            continue
        for column in sorted(columns & (before[table] - after[table])):
            problems.append(f"column {table}.{column} is dropped or renamed, and the running version uses it")
    return problems


def new_not_null_columns(
    operation: AddField, app_label: str, state: ProjectState, in_use: Tables
) -> list[str]:
    """A NOT NULL column without a database default, added to a table the running version uses: its
    INSERTs leave the column out and fail. (Django drops a Python `default` from the table once the
    column is filled; `db_default` stays.)"""
    model = state.apps.get_model(app_label, operation.model_name)
    field = model._meta.get_field(operation.name)
    table = model._meta.db_table
    if table not in in_use or not field.concrete or field.null or field.db_default is not NOT_PROVIDED:
        return []
    return [
        f"column {table}.{field.column} is added NOT NULL without db_default, and the running version "
        f"inserts into {table} without it (give it db_default= or null=True for this release)"
    ]


def operation_findings(
    operation: Operation, app_label: str, state: ProjectState, in_use: Tables, migration: str
) -> list[Finding]:
    """What one operation breaks; moves `state` past it."""
    described = operation.describe()
    if isinstance(operation, SeparateDatabaseAndState):
        # The database sees database_operations; the model state follows state_operations.
        database_state = state.clone()
        findings = []
        for inner in operation.database_operations:
            findings += operation_findings(inner, app_label, database_state, in_use, migration)
        for inner in operation.state_operations:
            inner.state_forwards(app_label, state)
        return findings
    if isinstance(operation, RunSQL):
        operation.state_forwards(app_label, state)
        return [Finding(migration, described, "RunSQL: check by hand what it changes", breaking=False)]

    before = tables_of(state)
    operation.state_forwards(app_label, state)
    problems = removed(before, tables_of(state), in_use)
    if isinstance(operation, AddField):
        problems += new_not_null_columns(operation, app_label, state, in_use)
    return [Finding(migration, described, problem, breaking=True) for problem in problems]


def pending_migration_findings(database: str, in_use: Tables) -> tuple[list[str], list[Finding]]:
    """The migrations `migrate` would apply, and what each of their operations breaks."""
    connection = connections[database]
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    findings: list[Finding] = []
    for migration, _backwards in plan:
        name = f"{migration.app_label}.{migration.name}"
        # The state with everything this migration depends on applied, as sqlmigrate builds it.
        state = executor.loader.project_state((migration.app_label, migration.name), at_end=False)
        for operation in migration.operations:
            findings += operation_findings(operation, migration.app_label, state, in_use, name)
    return [f"{migration.app_label}.{migration.name}" for migration, _ in plan], findings


def parse_in_use(text: str) -> Tables:
    try:
        loaded: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--in-use: not JSON ({error})") from error
    if not isinstance(loaded, dict) or not all(
        isinstance(columns, list) and all(isinstance(column, str) for column in columns)
        for columns in loaded.values()
    ):
        raise CommandError('--in-use: expected {"table": ["column", ...], ...}')
    return {str(table): set(columns) for table, columns in loaded.items()}


class Command(BaseCommand):
    help = (
        "Check that the pending migrations leave the running version's tables and columns in place "
        f"(exit status {BREAKING_EXIT_STATUS} when they do not)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--in-use",
            required=True,
            metavar="FILE",
            help="JSON {table: [column, ...]} of the running version (models_in_use.py); - for stdin",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["in_use"]
        if source == "-":
            text = sys.stdin.read()
        else:
            try:
                with open(source) as file:
                    text = file.read()
            except OSError as error:
                raise CommandError(f"--in-use: {error}") from error
        in_use = parse_in_use(text)

        pending, findings = pending_migration_findings(options["database"], in_use)
        if not pending:
            self.stdout.write("No pending migrations.")
            return
        self.stdout.write(f"Pending migrations: {', '.join(pending)}")
        for finding in findings:
            (self.stderr if finding.breaking else self.stdout).write(str(finding))
        breaking = [finding for finding in findings if finding.breaking]
        if breaking:
            raise CommandError(
                f"{len(breaking)} operation(s) would break the running version: expand now, contract in a "
                "later release (docs/operations.md, Migrations during a deploy)",
                returncode=BREAKING_EXIT_STATUS,
            )
        self.stdout.write("The running version keeps every table and column it uses.")
