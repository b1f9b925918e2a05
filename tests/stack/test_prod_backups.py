"""Backups of the production stack: what a dump holds and records, backup-verify, a restore's effect on
sessions, what whoever may write the backups cannot do (plant a dump, prune the new ones), and the backup
service's schedule, pruning and configuration errors (postgres/backup*).

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
# Signs broken.counts again with BACKUP_KEY, in /backups: as only the key's holder can.
RESIGN = (
    """bash -c '. /usr/local/lib/backup/backup-lib.sh && sed -i "$ d" "$1" && sign_manifest "$1"' """
    "x broken.counts"
)


def json_line(output: str, event: str) -> dict[str, Any]:
    """The (last) JSON line of a backup script's output for an event."""
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    matching = [line for line in lines if line.get("event") == event]
    assert matching, output
    return matching[-1]


def backups(stack: Stack) -> set[str]:
    return set(stack.exec("db", "ls", "-A", "/backups").stdout.split())


def user_count(stack: Stack) -> int:
    return int(stack.sql("SELECT count(*) FROM accounts_user")[0])


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
        # Cut short, with a checksum that matches the cut file, but no new signature: refused.
        "unsigned": (
            'head -c $(($(stat -c %s "$1") * 2 / 3)) "$1" > broken.dump && '
            'sed "s/^# sha256 .*/# sha256 $(sha256sum broken.dump | cut -d" " -f1)/" "$2" > broken.counts',
            "/backups/broken.dump is refused: its manifest /backups/broken.counts is not signed with this "
            "BACKUP_KEY",
        ),
        # The same, signed with the key: only a restore can tell.
        "truncated": (
            'head -c $(($(stat -c %s "$1") * 2 / 3)) "$1" > broken.dump && '
            'sed "s/^# sha256 .*/# sha256 $(sha256sum broken.dump | cut -d" " -f1)/" "$2" > broken.counts && '
            + RESIGN,
            "pg_restore could not restore /backups/broken.dump",
        ),
        # Intact, but recorded (and signed) with a user more than it holds.
        "miscounted": (
            'cp "$1" broken.dump && '
            "awk -F'\\t' -v OFS='\\t' '$1 == \"public.accounts_user\" { $2 += 1 } 1' \"$2\" > broken.counts"
            " && " + RESIGN,
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


# ---------------------------------------------------------------- whoever may write the backups

# In the db container: a dump made elsewhere, whose table's CHECK runs a program as whoever restores its
# row, named as the newest of the series, with a manifest of its own SHA-256 and row count, as anyone who
# may write the backups (a network share, a sync target) can make. Prints its name.
PLANT = r"""
set -o errexit
psql --quiet --username "$POSTGRES_USER" --dbname postgres --command "CREATE DATABASE planted"
psql --quiet --username "$POSTGRES_USER" --dbname planted <<'SQL'
CREATE FUNCTION pwn(i int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN EXECUTE 'COPY (SELECT current_user) TO PROGRAM ''id > /tmp/pwned'''; RETURN true; END $f$;
CREATE TABLE t (i int CHECK (pwn(i)));
INSERT INTO t VALUES (1);
SQL
rm /tmp/pwned
name=app-$(date -u +%Y%m%dT%H%M%SZ).dump
pg_dump --username "$POSTGRES_USER" --format=custom --file "/backups/$name" planted
psql --quiet --username "$POSTGRES_USER" --dbname postgres --command "DROP DATABASE planted"
printf '# %s: planted\n# sha256 %s\npublic.t\t1\n' "$name" "$(sha256sum <"/backups/$name" | cut -d' ' -f1)" \
  >"/backups/${name%.dump}.counts"
echo "$name"
"""


def program_ran(stack: Stack) -> bool:
    """Whether the planted SQL wrote its file, in the db container."""
    return stack.exec("db", "test", "-e", "/tmp/pwned", check=False).returncode == 0  # noqa: S108


def test_a_planted_dump_is_never_restored_and_its_sql_never_runs_as_the_superuser(prod_stack):
    made = json_line(prod_stack.make("backup").stdout, "backup")
    users = user_count(prod_stack)
    planted = prod_stack.exec("db", "bash", "-c", PLANT).stdout.strip()
    assert SERIES.fullmatch(planted), planted
    assert not program_ran(prod_stack)
    try:
        # The scheduled verify's choice: the newest dump this service signed, not the newest name.
        verified = json_line(prod_stack.make("backup-verify").stdout, "verify")
        assert (verified["result"], verified["file"]) == ("ok", made["file"])

        refused = prod_stack.make("backup-verify", f"FILE={planted}", check=False)
        assert refused.returncode != 0
        message = json_line(refused.stdout, "verify")["message"]
        assert f"/backups/{planted} is refused: its manifest" in message
        restore = prod_stack.exec("db", "restore", planted, check=False)
        assert restore.returncode != 0
        assert "restore: refused; app is unchanged" in restore.stderr
        assert not program_ran(prod_stack)
        assert user_count(prod_stack) == users

        # Even signed with the key (a stolen one), its SQL runs as app_verify, which may run no program.
        counts = planted.removesuffix(".dump") + ".counts"
        in_backups(prod_stack, f"bash -c '. /usr/local/lib/backup/backup-lib.sh && sign_manifest {counts}'")
        signed = prod_stack.make("backup-verify", f"FILE={planted}", check=False)
        assert signed.returncode != 0
        assert "permission denied to COPY to or from an external program" in signed.stderr
        assert json_line(signed.stdout, "verify")["result"] == "failed"
        assert not program_ran(prod_stack)
        roles = prod_stack.sql(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
            "WHERE rolname IN ('app_backup', 'app_verify') ORDER BY rolname"
        )
        assert roles == ["app_backup|f|f|f", "app_verify|f|f|f"]
    finally:
        in_backups(prod_stack, 'rm -f "$1" "${1%.dump}.counts"', planted)


def test_names_in_the_future_make_no_dump_prune_itself(prod_stack):
    # Seven days in seven ISO weeks, each newer than any dump: they would be the 7 daily dumps kept.
    days = ("0101", "0108", "0115", "0122", "0129", "0205", "0212")
    future = [f"app-2999{day}T000000Z.dump" for day in days]
    in_backups(prod_stack, 'for name; do : > "$name"; done', *future)
    try:
        made = json_line(prod_stack.make("backup").stdout, "backup")
        name = Path(made["file"]).name
        assert made["result"] == "ok"
        assert made["size_bytes"] > 0
        assert name not in made["pruned"]
        assert {name, name.removesuffix(".dump") + ".counts", *future} <= backups(prod_stack)
    finally:
        in_backups(prod_stack, 'rm -f "$@"', *future)


def test_backup_refuses_a_name_outside_the_backups_and_logs_any_other_in_json(prod_stack):
    for name in ("/../escaped.dump", "../escaped.dump", "sub/escaped.dump", "escaped.counts"):
        result = prod_stack.exec("db", "backup", name, check=False)
        assert result.returncode == 2, name
        line = json_line(result.stdout, "backup")
        assert line["result"] == "failed"
        refusal = f"NAME must be a file name in /backups ending in .dump, without / or ..: '{name}'"
        assert refusal in line["message"]
    listing = prod_stack.exec("db", "sh", "-c", "ls / /var/lib/postgresql | grep escaped", check=False)
    assert listing.stdout == ""
    odd = 'a "quoted"\tname.dump'
    made = json_line(prod_stack.exec("db", "backup", odd).stdout, "backup")
    assert (made["file"], made["result"]) == (f"/backups/{odd}", "ok")
    in_backups(prod_stack, 'rm -f "$1" "${1%.dump}.counts"', odd)


def test_db_restore_never_overwrites_a_dump_of_the_same_name(prod_stack, workdir):
    prod_stack.make("backup", "NAME=taken.dump")
    before = prod_stack.exec("db", "sha256sum", "/backups/taken.dump").stdout
    other = workdir / "prod" / "taken.dump"
    other.write_bytes(b"another file of the same name")

    result = prod_stack.make("restore", f"FILE={other}", check=False)

    assert result.returncode != 0
    assert "the backups volume already holds a different taken.dump" in result.stderr
    assert prod_stack.exec("db", "sha256sum", "/backups/taken.dump").stdout == before
    in_backups(prod_stack, "rm taken.dump taken.counts")


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
    # The next whole minute at least 5 s away, and its day of the week: a dump then, and a verify.
    run_at = (datetime.now(UTC) + timedelta(seconds=65)).replace(second=0, microsecond=0)
    today = run_at.date()
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
        "BACKUP_TIME": f"{run_at:%H:%M}",
        "BACKUP_VERIFY_DAY": f"{run_at:%a}".lower(),
        "BACKUP_KEEP_DAILY": "3",
        "BACKUP_KEEP_WEEKLY": "2",
    }
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    prod_stack.compose("up", "--detach", "--no-deps", "--wait", "backup", env=schedule)
    try:
        deadline = time.monotonic() + 150
        while True:
            lines = backup_log_since(prod_stack, since)
            runs = {line.get("event"): line for line in lines if line.get("result")}
            if {"backup", "verify"} <= set(runs) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert {"backup", "verify"} <= set(runs), lines
        [started] = [line for line in lines if "backup_time" in line]
        assert (started["backup_time"], started["verify_day"]) == (
            schedule["BACKUP_TIME"],
            f"{run_at:%a}".lower(),
        )
        assert started["next_backup"] == f"{run_at:%Y-%m-%dT%H:%M:%SZ}"
        assert (started["keep_daily"], started["keep_weekly"]) == (3, 2)
        backup, verify = runs["backup"], runs["verify"]
        assert backup["result"] == "ok", backup
        assert backup["time"] >= f"{run_at:%Y-%m-%dT%H:%M:%S}", "not before its time"
        assert backup["size_bytes"] > 0
        assert set(backup) >= {"time", "level", "logger", "message", "file", "duration_s"}
        assert verify["result"] == "ok", verify
        assert verify["file"] == backup["file"], "the dump just made, the newest signed one"
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
    ("time_of_day", "verify_day", "after", "expected"),
    [
        # 2025-01-01 is a Wednesday.
        ("03:15", "sun", "2025-01-01T03:15:00Z", "2025-01-02T03:15:00Z backup"),
        ("03:15", "sun", "2025-01-04T12:00:00Z", "2025-01-05T03:15:00Z backup, verify"),
        ("23:59", "wed", "2025-01-01T00:00:00Z", "2025-01-01T23:59:00Z backup, verify"),
        ("00:00", "thu", "2025-12-31T23:59:59Z", "2026-01-01T00:00:00Z backup, verify"),
    ],
)
def test_the_schedule_is_a_time_of_day_and_a_verify_day(prod_stack, time_of_day, verify_day, after, expected):
    epoch = int(datetime.strptime(after, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp())
    next_run = prod_stack.exec(
        "backup",
        "backup-scheduler",
        "--next",
        str(epoch),
        env={"BACKUP_TIME": time_of_day, "BACKUP_VERIFY_DAY": verify_day},
    ).stdout
    assert next_run.strip() == expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("BACKUP_TIME", "24:00", "BACKUP_TIME='24:00' is not a time of day: HH:MM, in UTC"),
        ("BACKUP_VERIFY_DAY", "sunday", "BACKUP_VERIFY_DAY='sunday' is not a day: mon, tue, wed"),
        # The retired cron schedules: still set in an old .env, they would be silently ignored.
        ("BACKUP_SCHEDULE", "15 3 * * *", "BACKUP_SCHEDULE is no longer read: remove it from .env"),
        (
            "BACKUP_VERIFY_SCHEDULE",
            "@weekly",
            "BACKUP_VERIFY_SCHEDULE is no longer read: remove it from .env",
        ),
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
