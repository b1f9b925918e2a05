"""Which environment variables the code reads, found in its source: for the tests that start the settings
from a controlled environment (test_settings.py) and that check .env.example (test_documentation.py)."""

import ast
from pathlib import Path

from config.env import BACKEND_DIR

SETTINGS_MODULES = sorted((BACKEND_DIR / "config" / "settings").glob("*.py"))
GUNICORN = BACKEND_DIR / "config" / "gunicorn.py"


def env_calls(path: Path) -> list[ast.Call]:
    """The config.env helper calls of a module with a literal variable name: env_str("NAME", ...)."""
    return [
        node
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ]


def variable_name(call: ast.Call) -> str:
    return str(call.args[0].value)  # type: ignore[attr-defined]


def variables_read_by(*paths: Path) -> set[str]:
    names = {variable_name(call) for path in paths for call in env_calls(path)}
    # Guards the parsing: if it stopped finding names, tests built on it would pass vacuously.
    assert names, paths
    return names
