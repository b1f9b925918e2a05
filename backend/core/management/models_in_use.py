"""Prints the tables and columns the models of this code use, as one line: `MODELS_IN_USE {json}`.

scripts/deploy runs it in the running (old) backend with `manage.py shell -c`, before the new image's
`check_pending_migrations --in-use` reads the line. It is sent as text, not imported, because the old
image need not have this file; so it uses nothing but Django. The marker finds the line among log
records that may be written to stdout too.
"""

import json

from django.apps import apps

print(  # noqa: T201 (the output is the point)
    "MODELS_IN_USE",
    json.dumps(
        {
            model._meta.db_table: sorted(field.column for field in model._meta.local_concrete_fields)
            for model in apps.get_models(include_auto_created=True)
            if not model._meta.proxy
        },
        sort_keys=True,
    ),
)
