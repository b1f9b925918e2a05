"""The documentation is true to the code: the README and .env.example list every environment variable the
settings, gunicorn and the compose files read, and the README's frontend snippets are the test SPA's code."""

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


def variables_of_the_compose_files() -> set[str]:
    """${NAME}, ${NAME:-default} and ${NAME:?message} in compose.yaml and compose.prod.yaml."""
    names: set[str] = set()
    for file in ("compose.yaml", "compose.prod.yaml"):
        names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (REPO / file).read_text()))
    return names


def variables_read_by_gunicorn() -> set[str]:
    return set(
        re.findall(r'\benv_\w+\(\s*"([A-Z][A-Z0-9_]*)"', (BACKEND_DIR / "config" / "gunicorn.py").read_text())
    )


# Set by compose.prod.yaml itself (from EDGE_SUBNET), not by an operator.
SET_BY_COMPOSE = {"FORWARDED_ALLOW_IPS"}
DOCUMENTED = sorted(
    variables_read_by_settings() | variables_of_the_compose_files() | variables_read_by_gunicorn()
)


def test_the_variables_we_expect_are_found():
    # Guards the regexes above: if they stopped matching, the tests below would pass vacuously.
    assert {"SECRET_KEY", "DB_HOST", "REDIS_URL", "CORS_ALLOWED_ORIGINS"} <= variables_read_by_settings()
    assert {"SECRET_KEY", "SERVER_NAME", "REDIS_PASSWORD", "TLS_CERT_FILE", "HTTPS_PORT"} <= (
        variables_of_the_compose_files()
    )
    assert {"GUNICORN_WORKERS", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"} <= variables_read_by_gunicorn()


@pytest.mark.parametrize("name", [name for name in DOCUMENTED if name not in SET_BY_COMPOSE])
def test_env_example_lists_variable(name):
    assert re.search(rf"^{name}=", (REPO / ".env.example").read_text(), re.MULTILINE)


@pytest.mark.parametrize("name", DOCUMENTED)
def test_readme_documents_variable(name):
    assert f"`{name}`" in (REPO / "README.md").read_text()


def readme_section(title: str) -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index(f"\n## {title}\n")
    end = readme.find("\n## ", start + 1)
    return readme[start : end if end != -1 else len(readme)]


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced blocks of a language, indented ones (in a list item) with their indent removed."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```$", markdown, re.S | re.M)
    return [re.sub(rf"^{indent}", "", block, flags=re.M) for indent, block in blocks]


FRONTEND_SNIPPETS = code_blocks(readme_section("Connecting a frontend"), "js")


def test_the_frontend_guide_has_snippets():
    # Guards the regex: without snippets the test below would pass vacuously.
    assert len(FRONTEND_SNIPPETS) == 5


@pytest.mark.parametrize("snippet", FRONTEND_SNIPPETS, ids=lambda snippet: snippet.splitlines()[0][:40])
def test_frontend_snippet_is_the_code_the_browser_test_runs(snippet):
    """Each js block of "Connecting a frontend" is copied, unchanged, from the test SPA in tests/spa."""
    sources = [path.read_text() for path in (REPO / "tests" / "spa").glob("*.js")]
    assert any(snippet in source for source in sources), snippet
