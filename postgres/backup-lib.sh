# Sourced by backup, backup-prune, backup-verify, restore and backup-scheduler: what they share.
# They run in the db container (`make backup`, over the local socket) and in the backup service (over
# the network: PGHOST, PGPASSWORD). Dumps are read as app_backup and restored as app_verify, never as
# the superuser; each manifest is signed with BACKUP_KEY, which never lives in /backups, so whoever
# writes there cannot get a dump of theirs restored (docs/operations.md, Backups).

BACKUPS=/backups
# Swarm gives the password as a Docker secret, a file: libpq reads PGPASSWORD.
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD=$(<"$PGPASSWORD_FILE")
  export PGPASSWORD
fi
# Dumps hold password hashes and personal data: readable by their owner only.
umask 077
DATABASE=$POSTGRES_DB
BACKUP_ROLE=app_backup
VERIFY_ROLE=app_verify
# Dumps of the series, the only ones pruned or verified by default: $POSTGRES_DB-<UTC time>.dump.
SERIES_PATTERN="^${DATABASE}-[0-9]{8}T[0-9]{6}Z\\.dump\$"
# Tables whose rows are not dumped: a restore must not bring back sessions that were logged out.
EXCLUDED_TABLE_DATA=(django_session)

# hmac: the HMAC-SHA256 of stdin keyed with BACKUP_KEY, in hex. The key is read from its file
# (/run/secrets/backup_key; the dev stack gives BACKUP_KEY itself), never passed as an argument.
hmac() {
  perl -MDigest::SHA=hmac_sha256_hex -e '
    my $key = $ENV{BACKUP_KEY} // "";
    if ($key eq "" && open(my $file, "<", "/run/secrets/backup_key")) { local $/; $key = <$file>; chomp $key; }
    die "BACKUP_KEY is not set: it signs and checks every dump (docs/operations.md, Backups)\n" if $key eq "";
    local $/; print hmac_sha256_hex(<STDIN> // "", $key), "\n";'
}

role_password() { printf 'postgres role %s' "$1" | hmac; }  # app_backup's, app_verify's: from BACKUP_KEY
# as_role ROLE COMMAND...: COMMAND connecting as ROLE.
as_role() {
  local role=$1 password
  shift
  if [ "$role" = "$POSTGRES_USER" ]; then
    "$@"
  else
    password=$(role_password "$role")
    PGPASSWORD=$password "$@"
  fi
}

psql_as() {  # psql_as ROLE DATABASE [PSQL ARGS...]: unaligned, no headers, stop at the first error
  local role=$1 database=$2
  shift 2
  PGOPTIONS="-c client_min_messages=warning" as_role "$role" psql --no-psqlrc --quiet --tuples-only --no-align \
    --set ON_ERROR_STOP=1 --username "$role" --dbname "$database" "$@"
}
psql_on() { psql_as "$POSTGRES_USER" "$@"; }  # psql_on DATABASE [PSQL ARGS...]: as the superuser

# Made, or put back as they should be, by the superuser before each run: neither may do more than this.
ensure_roles() {
  local role
  for role in "$BACKUP_ROLE" "$VERIFY_ROLE"; do
    echo "SELECT 'CREATE ROLE $role' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role')"
    echo '\gexec'
    echo "ALTER ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS" \
      "PASSWORD '$(role_password "$role")';"
  done | psql_on postgres
  psql_on postgres --command "GRANT pg_read_all_data TO $BACKUP_ROLE"
}
require_key() { hmac </dev/null >/dev/null; }  # fails, saying so, without BACKUP_KEY

usage() {  # the script's header comment, on stderr, then exit 2
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0" >&2
  exit 2
}

# hold_errors: from here on messages go to $work/errors, shown again on failure by log_failure.
hold_errors() {
  started=$(now_seconds)
  work=$(mktemp -d)
  exec {stderr}>&2 2>"$work/errors"
}
# log_failure STATUS EVENT MESSAGE [FIELD...]: if STATUS is not 0, the held messages and a JSON line
# whose message ends with the last of them. Removes $work.
log_failure() {
  local status=$1 event=$2 message=$3 reason
  shift 3
  if [ "$status" -ne 0 ]; then
    cat "$work/errors" >&"$stderr"
    reason=$(tail -n 1 "$work/errors")
    log_json ERROR "$message: ${reason:-exit status $status}" event="$event" "$@" \
      duration_s:="$(seconds_since "$started")" result=failed
  fi
  rm -rf "$work"
}

# restore_into DATABASE DUMP: DUMP restored, as app_verify, into a new DATABASE which that role owns.
# Without the grants: they name roles app_verify may not act for (migrate grants the backend's again).
# Fails, saying why, also where errexit is off (an `if`).
restore_into() {
  psql_on postgres --command "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" || return
  psql_on postgres --command "CREATE DATABASE \"$1\" OWNER $VERIFY_ROLE" || return
  as_role "$VERIFY_ROLE" pg_restore --exit-on-error --no-owner --no-acl --username "$VERIFY_ROLE" \
    --dbname "$1" "$2" || { echo "pg_restore could not restore $2 (its messages are above)" >&2; return 1; }
}

# SQL that prints "schema.table<TAB>rows" for every table whose rows are dumped, sorted; run it in the
# transaction whose snapshot pg_dump dumps, or on a restored copy.
table_counts_sql() {
  local excluded
  excluded=$(printf "'%s'," "${EXCLUDED_TABLE_DATA[@]}")
  cat <<SQL
SELECT format('SELECT %L || chr(9) || count(*) FROM %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_%' AND c.relname NOT IN (${excluded%,})
ORDER BY n.nspname, c.relname
\gexec
SQL
}

# How many dumps of the series backup-prune keeps: the newest of each of this many days and ISO weeks.
read_retention() {
  KEEP_DAILY=${BACKUP_KEEP_DAILY:-7}
  KEEP_WEEKLY=${BACKUP_KEEP_WEEKLY:-4}
  if [[ ! $KEEP_DAILY =~ ^[0-9]+$ ]] || ((10#$KEEP_DAILY < 1)); then
    echo "BACKUP_KEEP_DAILY must be a whole number of days, at least 1, not '$KEEP_DAILY'" >&2
    return 1
  fi
  if [[ ! $KEEP_WEEKLY =~ ^[0-9]+$ ]]; then
    echo "BACKUP_KEEP_WEEKLY must be a whole number of weeks, not '$KEEP_WEEKLY'" >&2
    return 1
  fi
  KEEP_DAILY=$((10#$KEEP_DAILY)) KEEP_WEEKLY=$((10#$KEEP_WEEKLY))
}

dump_path() { if [ -f "$1" ]; then echo "$1"; else echo "$BACKUPS/$1"; fi; }  # a path, or a name in /backups
counts_file_of() { echo "${1%.dump}.counts"; }  # a dump's manifest, its row counts and signature
# count_rows FILE: "TABLES ROWS" of FILE's "schema.table<TAB>rows" lines
count_rows() { awk -F'\t' '{ sum += $2 } END { print NR, sum + 0 }' "$1"; }

sign_manifest() { echo "# hmac-sha256 $(hmac <"$1")" >>"$1"; }  # sign_manifest FILE: appends its HMAC

# check_dump DUMP: its manifest is signed with BACKUP_KEY (this service wrote it) and the dump is the
# one the manifest records (its SHA-256). Says why not, and fails, otherwise.
check_dump() {
  local dump=$1 manifest recorded
  manifest=$(counts_file_of "$dump")
  if [ ! -f "$manifest" ]; then
    echo "no manifest for $dump (expected $manifest): not a dump this service wrote" >&2
    return 1
  fi
  recorded=$(tail -n 1 "$manifest" | sed -n 's/^# hmac-sha256 //p')
  if [ -z "$recorded" ] || [ "$(sed '$d' "$manifest" | hmac)" != "$recorded" ]; then
    echo "$dump is refused: its manifest $manifest is not signed with this BACKUP_KEY" \
      "(a dump this service did not write, or a manifest changed since)" >&2
    return 1
  fi
  if [ "$(sha256sum <"$dump" | cut -d' ' -f1)" != "$(sed -n 's/^# sha256 //p' "$manifest")" ]; then
    echo "$dump changed since it was written: its SHA-256 is not the one recorded in $manifest" >&2
    return 1
  fi
}

# series: the names of the series' dumps, newest first, but for names in the future (not this service's).
series() {
  find "$BACKUPS" -maxdepth 1 -type f -printf '%f\n' | grep -E "$SERIES_PATTERN" | sort -r |
    awk -v now="$DATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump" '$0 <= now'
}

require_writable_backups() {
  if [ ! -w "$BACKUPS" ]; then
    echo "$BACKUPS is not writable by uid $(id -u) ($(id -un)): BACKUP_DIR=${BACKUP_DIR:-db-backups} must be," \
      "e.g. chown $(id -u):$(id -g) on the host" >&2
    return 1
  fi
}

now_seconds() { date +%s.%N; }
seconds_since() { awk -v start="$1" -v end="$(now_seconds)" 'BEGIN { printf "%.1f", end - start }'; }

json_string() {
  local value=$1
  value=${value//\\/\\\\}
  value=${value//\"/\\\"}
  value=${value//$'\n'/\\n}
  value=${value//$'\r'/\\r}
  value=${value//$'\t'/\\t}
  # Any other control character would make the line invalid JSON.
  value=${value//[[:cntrl:]]/?}
  printf '"%s"' "$value"
}

# log_json LEVEL MESSAGE [NAME=STRING | NAME:=JSON ...]: one JSON object on stdout, in the shape of the
# backend's and nginx's log lines (time, level, logger, message).
log_json() {
  local level=$1 message=$2 field line
  shift 2
  line="{\"time\":\"$(date -u +%Y-%m-%dT%H:%M:%S.%3N+00:00)\",\"level\":\"$level\",\"logger\":\"backup\""
  line+=",\"message\":$(json_string "$message")"
  for field in "$@"; do
    if [[ $field =~ ^[a-z_]+:=(-?[0-9.]+|\[.*\])$ ]]; then
      line+=",$(json_string "${field%%:=*}"):${field#*:=}"
    elif [[ $field =~ ^[a-z_]+:= ]]; then
      line+=",$(json_string "${field%%:=*}"):null"
    else
      line+=",$(json_string "${field%%=*}"):$(json_string "${field#*=}")"
    fi
  done
  echo "$line}"
}
