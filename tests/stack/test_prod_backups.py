"""Backups of the production stack: what a dump holds and records, backup-verify, a restore's effect on
sessions, and the backup service's schedule, pruning and configuration errors (postgres/backup*).

Runs after test_prod.py on the same stack; the backup service is recreated with short schedules and put
back as it was."""

import json
import os
import re
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .api import login, logout, me, new_email, signup
from .load import api_load
from .stacks import FIGURES, Stack

pytestmark = pytest.mark.usefixtures("prod_stack")

SERIES = re.compile(r"app-(\d{8})T\d{6}Z\.dump")
POSTGRES_UID = 999


def json_line(output: str, event: str) -> dict[str, Any]:
    """The (last) JSON line of a backup script's output for an event."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    matching = [line for line in lines if line.get("event") == event]
    assert matching, output
    return matching[-1]


def backups(stack: Stack) -> set[str]:
    return set(stack.exec("db", "ls", "-A", "/backups").stdout.split())


def in_backups(stack: Stack, script: str, *args: str) -> None:
    """A shell script run in /backups of the db container."""
    stack.exec("db", "sh", "-c", f"cd /backups && {script}", "sh", *args)


# ---------------------------------------------------------------- a dump and what it records


def test_a_dump_taken_under_load_has_no_sessions_and_the_row_counts_of_its_snapshot(prod_stack):
    with api_load(prod_stack.origin, prod_stack.tls_context(), clients=8, pause=0.02, signup_every=2) as load:
        time.sleep(1)
        started = time.monotonic()
        backup = json_line(prod_stack.make("backup", "NAME=under-load.dump").stdout, "backup")
        ended = time.monotonic()
        time.sleep(0.5)
    assert load.failures() == []
    signups = [
        request for request in load.answered_between(started, ended) if request.what.startswith("POST")
    ]
    assert signups, "users signed up while the dump was taken"
    assert backup["result"] == "ok"
    assert backup["file"] == "/backups/under-load.dump"
    assert backup["size_bytes"] > 0
    assert backup["pruned"] == [], "a dump given a name leaves the series alone"

    # The users' sessions were in the database, but not in the dump.
    assert int(prod_stack.sql("SELECT count(*) FROM django_session")[0]) >= 8
    contents = prod_stack.exec("db", "pg_restore", "--list", "/backups/under-load.dump").stdout
    assert re.search(r"TABLE DATA public accounts_user ", contents)
    assert re.search(r"TABLE public django_session ", contents), "the table is there, empty"
    assert not re.search(r"TABLE DATA public django_session ", contents)

    counts = prod_stack.exec("db", "cat", "/backups/under-load.counts").stdout
    recorded = dict(line.split("\t") for line in counts.splitlines() if not line.startswith("#"))
    assert int(recorded["public.accounts_user"]) > 8
    assert "public.django_session" not in recorded

    # The rows counted are those dumped, though users kept signing up meanwhile: one snapshot.
    verify = prod_stack.make("backup-verify", "FILE=under-load.dump")
    verified = json_line(verify.stdout, "verify")
    assert verified["result"] == "ok"
    assert (verified["tables"], verified["rows"]) == (backup["tables"], backup["rows"])
    in_backups(prod_stack, "rm under-load.dump under-load.counts")
    FIGURES.append(
        f"backup: {backup['rows']} rows in {backup['tables']} tables dumped in {backup['duration_s']} s "
        f"with {len(signups)} signups under way; backup-verify took {verified['duration_s']} s"
    )


def test_a_restore_brings_back_no_session(prod_stack):
    """Neither one logged out after the dump (it has no sessions) nor one made after it (the restore empties
    the cache, which held it)."""
    email = new_email()
    with prod_stack.client() as before:
        assert signup(before, prod_stack.origin, email).status_code == 201
        logged_out_later = dict(before.cookies)
        prod_stack.make("backup", "NAME=sessions.dump")
        assert logout(before, prod_stack.origin).status_code == 204
    with prod_stack.client() as after:
        assert login(after, prod_stack.origin, email).status_code == 200
        assert me(after).status_code == 200

        restored = prod_stack.make("restore", "FILE=sessions.dump")

        assert "db-restore: emptied the cache" in restored.stdout
        assert me(after).status_code == 401
    with prod_stack.client(cookies=logged_out_later) as replayed:
        assert me(replayed).status_code == 401
        # The account itself was in the dump.
        assert login(replayed, prod_stack.origin, email).status_code == 200
    in_backups(prod_stack, "rm sessions.dump sessions.counts app-before-restore-*")


# ---------------------------------------------------------------- backup-verify


def test_backup_verify_passes_and_fails_on_a_changed_truncated_or_miscounted_dump(prod_stack):
    made = json_line(prod_stack.make("backup").stdout, "backup")
    newest = Path(made["file"]).name

    verified = prod_stack.make("backup-verify")
    result = json_line(verified.stdout, "verify")
    assert result["result"] == "ok", verified.stdout
    assert result["file"] == made["file"], "the newest dump by default"
    assert f"backup-verify: {made['file']} restores with the {made['rows']} rows" in result["message"]

    counts = newest.removesuffix(".dump") + ".counts"
    cases = {
        # One byte changed in the middle.
        "changed": (
            'cp "$1" broken.dump && cp "$2" broken.counts && '
            'size=$(stat -c %s broken.dump) && printf "\\377" | '
            "dd of=broken.dump bs=1 seek=$((size / 2)) conv=notrunc status=none",
            "broken.dump changed since it was written: its SHA-256 is not the one recorded",
        ),
        # Cut short, with a checksum that matches the cut file: only a restore can tell.
        "truncated": (
            'head -c $(($(stat -c %s "$1") * 2 / 3)) "$1" > broken.dump && '
            'sed "s/^# sha256 .*/# sha256 $(sha256sum broken.dump | cut -d" " -f1)/" "$2" > broken.counts',
            "pg_restore could not restore /backups/broken.dump",
        ),
        # Intact, but recorded with a user more than it holds.
        "miscounted": (
            'cp "$1" broken.dump && '
            "awk -F'\\t' -v OFS='\\t' '$1 == \"public.accounts_user\" { $2 += 1 } 1' \"$2\" > broken.counts",
            "public.accounts_user: recorded",
        ),
    }
    for case, (script, message) in cases.items():
        in_backups(prod_stack, script, newest, counts)

        failed = prod_stack.make("backup-verify", "FILE=broken.dump", check=False)

        assert failed.returncode != 0, case
        assert message in failed.stderr, (case, failed.stderr)
        result = json_line(failed.stdout, "verify")
        assert result["result"] == "failed", case
        assert message in result["message"], (case, result)
    # The scratch database is dropped whatever happened.
    assert prod_stack.sql("SELECT datname FROM pg_database WHERE datname LIKE '%verify%'") == []
    in_backups(prod_stack, "rm broken.dump broken.counts")


# ---------------------------------------------------------------- the backup service


def kept_by_retention(names: list[str], keep_daily: int, keep_weekly: int) -> set[str]:
    """The newest dump of each of the last keep_daily days and keep_weekly ISO weeks that have one."""
    days: dict[date, str] = {}
    weeks: dict[tuple[int, int], str] = {}
    for name in sorted(names, reverse=True):
        match = SERIES.fullmatch(name)
        assert match, name
        day = datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()
        days.setdefault(day, name)
        weeks.setdefault(day.isocalendar()[:2], name)
    newest_days = sorted(days, reverse=True)[:keep_daily]
    newest_weeks = sorted(weeks, reverse=True)[:keep_weekly]
    return {days[day] for day in newest_days} | {weeks[week] for week in newest_weeks}


def backup_log_since(stack: Stack, since: str) -> list[dict[str, Any]]:
    output = stack.compose("logs", "--no-color", "--no-log-prefix", "--since", since, "backup").stdout
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_the_backup_service_dumps_prunes_and_verifies_on_its_schedule(prod_stack):
    today = datetime.now(UTC).date()
    planted = [
        f"app-{(today - timedelta(days=days_ago)):%Y%m%d}T{time_of_day}Z.dump"
        for days_ago in (1, 2, 3, 6, 9, 10, 17, 24, 40)
        for time_of_day in ("010000", "230000")
    ]
    others = ["app-before-restore-20200101T000000Z.dump", "notes.txt"]
    in_backups(
        prod_stack,
        'for name; do echo planted > "$name"; echo "# planted" > "${name%.dump}.counts"; done',
        *planted,
        *others,
    )
    schedule = {
        "BACKUP_SCHEDULE": "@every 5s",
        "BACKUP_VERIFY_SCHEDULE": "@every 7s",
        "BACKUP_KEEP_DAILY": "3",
        "BACKUP_KEEP_WEEKLY": "2",
    }
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prod_stack.compose("up", "--detach", "--no-deps", "--wait", "backup", env=schedule)
    try:
        deadline = time.monotonic() + 90
        while True:
            lines = backup_log_since(prod_stack, since)
            runs = {line.get("event"): line for line in lines if line.get("result")}
            if {"backup", "verify"} <= set(runs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert {"backup", "verify"} <= set(runs), lines
        [started] = [line for line in lines if "backup_schedule" in line]
        assert started["backup_schedule"] == "@every 5s"
        assert (started["keep_daily"], started["keep_weekly"]) == (3, 2)
        backup, verify = runs["backup"], runs["verify"]
        assert backup["result"] == "ok", backup
        assert backup["size_bytes"] > 0
        assert set(backup) >= {"time", "level", "logger", "message", "file", "duration_s"}
        assert verify["result"] == "ok", verify
        pruned = {name for line in lines if line.get("event") == "backup" for name in line["pruned"]}

        remaining = backups(prod_stack)
        series = [name for name in remaining if SERIES.fullmatch(name)]
        todays = [name for name in series if name.startswith(f"app-{today:%Y%m%d}T")]
        expected = kept_by_retention([*planted, *todays], keep_daily=3, keep_weekly=2)
        assert set(series) == expected
        assert len(todays) == 1, "one dump a day: the newest"
        assert set(planted) - expected <= pruned
        for name in series:
            assert name.removesuffix(".dump") + ".counts" in remaining, name
        for name in set(planted) - expected:
            assert name.removesuffix(".dump") + ".counts" not in remaining, name
        assert set(others) <= remaining, "files outside the series are left alone"
        FIGURES.append(
            f"backup service: planted {len(planted)} older dumps, kept {len(expected)} "
            f"(3 daily, 2 weekly): {', '.join(sorted(expected))}"
        )

        stopping = time.monotonic()
        prod_stack.compose("stop", "backup")
        assert time.monotonic() - stopping < 10, "the scheduler stops at once on SIGTERM"
        assert backup_log_since(prod_stack, since)[-1]["message"] == "backup-scheduler: stopped"
    finally:
        in_backups(
            prod_stack, 'rm -f "$@"', *planted, *[n.removesuffix(".dump") + ".counts" for n in planted]
        )
        in_backups(prod_stack, 'rm -f "$@"', *others, "app-before-restore-20200101T000000Z.counts")
        prod_stack.compose("up", "--detach", "--no-deps", "--wait", "backup")


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("15 3 * * *", "2025-01-01T03:15:00Z", ["2025-01-02T03:15:00Z", "2025-01-03T03:15:00Z"]),
        ("45 4 * * 0", "2025-01-01T00:00:00Z", ["2025-01-05T04:45:00Z", "2025-01-12T04:45:00Z"]),
        ("*/20 9-10 * * mon-fri", "2025-01-03T10:50:00Z", ["2025-01-06T09:00:00Z", "2025-01-06T09:20:00Z"]),
        # Both day fields restricted: either one.
        ("0 12 1,15 * fri", "2025-01-01T12:00:00Z", ["2025-01-03T12:00:00Z", "2025-01-10T12:00:00Z"]),
        ("0 0 29 feb *", "2025-01-01T00:00:00Z", ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]),
        ("@daily", "2025-12-31T23:59:59Z", ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"]),
        ("@every 90s", "2025-01-01T00:00:00Z", ["2025-01-01T00:01:30Z", "2025-01-01T00:03:00Z"]),
    ],
)
def test_schedules_run_when_cron_would(prod_stack, schedule, after, expected):
    epoch = int(datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    times = prod_stack.exec("backup", "backup-scheduler", "--next", schedule, str(epoch)).stdout.split()
    assert times[:2] == expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BACKUP_SCHEDULE", "61 * * * *", "BACKUP_SCHEDULE='61 * * * *' is not a schedule"),
        ("BACKUP_VERIFY_SCHEDULE", "0 0 31 2 *", "BACKUP_VERIFY_SCHEDULE='0 0 31 2 *' is not a schedule"),
        ("BACKUP_KEEP_DAILY", "0", "BACKUP_KEEP_DAILY must be a whole number of days, at least 1, not '0'"),
    ],
)
def test_a_malformed_setting_stops_the_backup_service_naming_it(prod_stack, variable, value, message):
    result = prod_stack.compose(
        "run", "--rm", "--no-deps", "--env", f"{variable}={value}", "backup", check=False, timeout=120
    )
    assert result.returncode != 0
    [line] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert line["level"] == "ERROR"
    assert message in line["message"]


def test_backup_dir_puts_the_dumps_in_a_host_directory_which_must_be_writable(prod_stack, workdir):
    host_directory = workdir / "prod" / "off-the-volume"
    host_directory.mkdir()
    elsewhere = {"BACKUP_DIR": str(host_directory)}

    refused = prod_stack.compose(
        "run", "--rm", "--no-deps", "backup", env=elsewhere, check=False, timeout=120
    )
    assert refused.returncode != 0
    assert (
        f"/backups is not writable by uid {POSTGRES_UID} (postgres): BACKUP_DIR={host_directory} must be"
        in refused.stdout
    )

    os.chown(host_directory, POSTGRES_UID, POSTGRES_UID)
    made = prod_stack.compose("run", "--rm", "--no-deps", "backup", "backup", env=elsewhere, timeout=120)
    name = Path(json_line(made.stdout, "backup")["file"]).name
    dump = host_directory / name
    assert dump.stat().st_size > 0
    assert dump.stat().st_mode & 0o777 == 0o600, "dumps hold password hashes"
    assert (host_directory / name.replace(".dump", ".counts")).exists()
    assert name not in backups(prod_stack)
