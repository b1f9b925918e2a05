"""`manage.py makeapp NAME MODEL` (`make app NAME=notes MODEL=Note`): a new app in the house pattern, from
the app template beside core (core/app_template, rendered by Django's startapp), listed in INSTALLED_APPS
and routed under /api/v1/NAME, with an owner-only CRUD resource for MODEL and its tests
(docs/extending.md). Running it again for an app already listed adds nothing twice."""

import os
import re
import shutil
import subprocess
import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.templates import TemplateCommand
from django.urls import Resolver404, resolve

from config.env import BACKEND_DIR

TEMPLATE = BACKEND_DIR / "core" / "app_template"
SETTINGS = BACKEND_DIR / "config" / "settings" / "base.py"
URLS = BACKEND_DIR / "config" / "urls.py"


class Command(TemplateCommand):
    help = "Make a new app from the project's app template: make app NAME=notes MODEL=Note."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="the app: lower_case, its package and its URLs' /api/v1/<name>")
        parser.add_argument("model", help="its first model, CamelCase, e.g. Note")

    def handle(self, *args: Any, **options: Any) -> None:
        name, model = options.pop("name"), options.pop("model")
        check_names(name, model)
        snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", model).lower()
        os.chdir(BACKEND_DIR)  # startapp makes the app in the working directory
        super().handle(
            "app",
            name,
            template=str(TEMPLATE),
            extensions=["py"],
            files=[],
            model=model,
            model_snake=snake,
            model_lower=model.lower(),
            **options,
        )
        add_line(SETTINGS, "INSTALLED_APPS", f'    "{name}",\n')
        add_line(URLS, "api_v1", f'    path("", include("{name}.urls")),\n')
        format_code(BACKEND_DIR / name)
        self.stdout.write(
            f"Made {name}/ with {model}: /api/v1/{name} and /api/v1/{name}/<id>, in INSTALLED_APPS and "
            f"config/urls.py.\nNext: its migration, `cd backend && .venv/bin/python manage.py makemigrations "
            f'{name}` (or `make manage ARGS="makemigrations {name}"` in the dev stack); then make lint '
            "and make test. docs/extending.md says what to change next."
        )


def check_names(name: str, model: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise CommandError(f"NAME={name!r}: an app is lower_case letters, digits and _ (e.g. notes)")
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", model):
        raise CommandError(f"MODEL={model!r}: a model is a CamelCase class name (e.g. Note)")
    if name in {config.label for config in apps.get_app_configs()}:
        raise CommandError(f"NAME={name!r}: an installed app is called that already")
    try:
        match = resolve(f"/api/v1/{name}")
    except Resolver404:
        match = None
    if match is not None and match.url_name is not None:
        raise CommandError(f"NAME={name!r}: /api/v1/{name} is an endpoint already ({match.url_name})")
    # startapp refuses the name of a module that exists (e.g. json), and a directory that does.


def add_line(path: Path, list_name: str, line: str) -> None:
    """Adds ``line`` as the last item of the list ``list_name = [...]`` in ``path``, unless it is there."""
    text = path.read_text()
    block = re.search(rf"^{list_name} = \[\n(.*?)^\]", text, re.MULTILINE | re.DOTALL)
    if block is None:
        raise CommandError(f"{path}: no `{list_name} = [` list to add {line.strip()} to; add it by hand")
    if line not in block.group(1):
        path.write_text(text[: block.end(1)] + line + text[block.end(1) :])


def format_code(app: Path) -> None:
    """ruff sorts the imports and formats the code, whose order and line lengths depend on the names."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        return  # not installed here (the production image): make lint formats it where it runs
    for command in (
        [ruff, "check", "--select=I", "--fix", "--quiet", str(app)],
        [ruff, "format", "--quiet", str(app)],
    ):
        subprocess.run(command, cwd=BACKEND_DIR, check=True)  # noqa: S603 (ruff, on our own files)
