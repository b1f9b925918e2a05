"""Settings for scripts/bench/db_connections.py: local settings on PostgreSQL, with the connection
handling named by BENCH_DB_MODE (none, persistent or pool)."""

from config.env import env_choice
from config.settings.local import *

DEBUG = False  # DEBUG keeps every query in memory; measure what production does

_mode = env_choice("BENCH_DB_MODE", ("none", "persistent", "pool"))
_db = DATABASES["default"]
if _mode == "none":
    _db["CONN_MAX_AGE"] = 0
elif _mode == "persistent":
    _db["CONN_MAX_AGE"] = 60
else:
    # Django 5.1+: psycopg's pool per process; Django requires CONN_MAX_AGE = 0 with it.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {**_db["OPTIONS"], "pool": {"min_size": 2, "max_size": 4, "timeout": 5}}
