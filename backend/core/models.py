"""core has no models. The module exists because Django sends post_migrate only to apps with one, and
core.database_roles grants the runtime role its rights after every migrate (core.apps)."""
