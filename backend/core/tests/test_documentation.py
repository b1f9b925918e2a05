"""The documentation lists every environment variable the settings read."""

import re

import pytest

from config.env import BACKEND_DIR

REPO = BACKEND_DIR.parent
SETTINGS_DIR = BACKEND_DIR / "config" / "settings"


def variables_read_by_settings() -> set[str]:
    names: set[str] = set()
    for module in SETTINGS_DIR.glob("*.py"):
        names |= set(re.findall(r'\benv_\w+\(\s*"([A-Z][A-Z0-9_]*)"', module.read_text()))
    return names


def test_settings_read_the_variables_we_expect_to_find():
    # Guards the regex above: if it stopped matching, the tests below would pass vacuously.
    assert {"SECRET_KEY", "DB_HOST", "REDIS_URL", "CORS_ALLOWED_ORIGINS"} <= variables_read_by_settings()


@pytest.mark.parametrize("name", sorted(variables_read_by_settings()))
def test_env_example_lists_variable(name):
    assert re.search(rf"^{name}=", (REPO / ".env.example").read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", sorted(variables_read_by_settings()))
def test_readme_documents_variable(name):
    assert f"`{name}`" in (REPO / "README.md").read_text()
