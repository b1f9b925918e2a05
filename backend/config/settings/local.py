"""Local development on a laptop or in the dev compose stack: DEBUG on, mail printed to the console
unless EMAIL_DELIVERY=smtp (the dev stack's mail catcher).

The database is SQLite (backend/db.sqlite3) unless DB_HOST is set; the cache is in process memory
unless REDIS_URL is set (see base.py).
"""

from config.env import env_choice, env_origins

from .base import *

DEBUG = True

# The usual frontend dev-server origins (Create React App/Next.js, Vite).
CORS_ALLOWED_ORIGINS = env_origins("CORS_ALLOWED_ORIGINS", ["http://localhost:3000", "http://localhost:5173"])
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS", CORS_ALLOWED_ORIGINS)

API_DOCS = env_choice("API_DOCS", ("public", "staff", "off"), "public")

EMAIL_BACKEND = EMAIL_BACKENDS[env_choice("EMAIL_DELIVERY", tuple(EMAIL_BACKENDS), "console")]
