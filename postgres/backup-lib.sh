# Sourced by backup, backup-prune, backup-verify and backup-scheduler: what they share.
#
# They run in the db container (`make backup`, over the local socket) and in the backup service (over
# the network: PGHOST, PGPASSWORD), as POSTGRES_USER on POSTGRES_DB, with the dumps in /backups.

BACKUPS=/backups
# Swarm gives the password as a Docker secret, a file: libpq reads PGPASSWORD.
if [ -n "${PGPASSWORD_FILE:-}" ]; then
  PGPASSWORD=$(<"$PGPASSWORD_FILE")
  export PGPASSWORD
fi
# Dumps hold password hashes and personal data: readable by their owner only.
umask 077
DATABASE=$POSTGRES_DB
# Dumps of the series: $POSTGRES_DB-<UTC time>.dump. Pruning and backup-verify consider only these;
# other files in /backups (a restore's safety dump, a dump given a name) are left alone.
SERIES_PATTERN="^${DATABASE}-[0-9]{8}T[0-9]{6}Z\\.dump\$"
# Tables whose rows are not dumped: a restore must not bring back sessions that were logged out.
# backup-verify expects them empty.
EXCLUDED_TABLE_DATA=(django_session)

psql_on() {  # psql_on DATABASE [PSQL ARGS...]: unaligned, no headers, stop at the first error
  local database=$1
  shift
  PGOPTIONS="-c client_min_messages=warning" psql --no-psqlrc --quiet --tuples-only --no-align --set ON_ERROR_STOP=1 \
    --username "$POSTGRES_USER" --dbname "$database" "$@"
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

counts_file_of() {  # the row counts recorded next to a dump: app-20250102T031500Z.counts
  echo "${1%.dump}.counts"
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
    if [[ $field =~ ^[a-z_]+:= ]]; then
      line+=",$(json_string "${field%%:=*}"):${field#*:=}"
    else
      line+=",$(json_string "${field%%=*}"):$(json_string "${field#*=}")"
    fi
  done
  echo "$line}"
}
