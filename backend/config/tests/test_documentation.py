"""One home per fact: where a fact has to be written in two places (a variable in the code and in
.env.example, a timeout in gunicorn and in nginx, a path in a script and in the URLconf), these tests
check that the places agree. Also: the README's error table is the error codes of core.errors, and the
frontend guide's snippets are the test SPA's code."""

import ast
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.conf import settings
from django.urls import reverse
from rest_framework.views import APIView

from config import gunicorn
from config.env import BACKEND_DIR
from config.settings import base
from config.tests.variables import GUNICORN, SETTINGS_MODULES, env_calls, variable_name, variables_read_by
from core import errors, rate_limit
from testing import api_routes

REPO = BACKEND_DIR.parent
SETTINGS_DIR = BACKEND_DIR / "config" / "settings"
ENV_EXAMPLE = (REPO / ".env.example").read_text()
NGINX_SITE = (REPO / "nginx" / "templates" / "default.conf.template").read_text()
NGINX_MAIN = (REPO / "nginx" / "nginx.conf").read_text()
EDGE_LIMITS_SCRIPT = REPO / "nginx" / "entrypoint.d" / "15-edge-limits.envsh"
VARIABLE = r"[A-Z][A-Z0-9_]*"


def variables_of_the_compose_files() -> set[str]:
    """${NAME}, ${NAME:-default} and ${NAME:?message} in the compose files, but for the SWARM_* names that
    scripts/swarm sets for compose.swarm.yaml (its images, secrets and sizes) and the SECRET_VERSION_* that
    scripts/compose sets; and the secrets scripts/compose reads for compose.prod.yaml (`value NAME`)."""
    names: set[str] = set()
    for file in ("compose.yaml", "compose.prod.yaml", "compose.swarm.yaml"):
        names |= set(re.findall(rf"\$\{{({VARIABLE})", (REPO / file).read_text()))
    names |= set(re.findall(rf"\$\(value ({VARIABLE})\)", (REPO / "scripts" / "compose").read_text()))
    return {name for name in names if not name.startswith(("SWARM_", "SECRET_VERSION_"))}


def compose_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / name).read_text())
    return loaded


# Set by the stacks themselves, not by an operator: the trusted proxy network of gunicorn and Django
# (from EDGE_SUBNET), the file `make`/scripts/compose hand to compose.prod.yaml (ENV_FILE, the .env
# itself) and the directory it writes the secret files of that file into (SECRETS_DIR), the project name
# compose itself provides (COMPOSE_PROJECT_NAME, which names the backend image), and the extra backend
# containers of Swarm's rolling update (BACKEND_UPDATE_SURGE, its update parallelism).
SET_BY_THE_STACK = {
    "FORWARDED_ALLOW_IPS",
    "ENV_FILE",
    "SECRETS_DIR",
    "COMPOSE_PROJECT_NAME",
    "BACKEND_UPDATE_SURGE",
}
VARIABLES = sorted(variables_read_by(*SETTINGS_MODULES, GUNICORN) | variables_of_the_compose_files())


def test_the_variables_we_expect_are_found():
    # Guards the parsing above: if it stopped finding names, the tests below would pass vacuously.
    assert {"SECRET_KEY", "DB_HOST", "REDIS_URL", "CORS_ALLOWED_ORIGINS"} <= variables_read_by(
        *SETTINGS_MODULES
    )
    assert {"GUNICORN_WORKERS", "GUNICORN_THREADS", "FORWARDED_ALLOW_IPS"} <= variables_read_by(GUNICORN)
    assert {"SECRET_KEY", "SERVER_NAME", "REDIS_PASSWORD", "TLS_CERT_FILE", "HTTPS_PORT"} <= (
        variables_of_the_compose_files()
    )


# ---------------------------------------------------------------- variables: .env.example is the reference


@pytest.mark.parametrize("name", [name for name in VARIABLES if name not in SET_BY_THE_STACK])
def test_env_example_describes_variable(name):
    match = re.search(rf"((?:^#.*\n)+)((?:^{VARIABLE}=\n)*)^{name}=(.*)$", ENV_EXAMPLE, re.MULTILINE)
    assert match, f"{name} is not in .env.example, under a comment saying what it means"
    assert match.group(3) == "", f"{name} has a value in .env.example: a copy would pin it"


# Whose .env.example entry describes the default in words: a key not to be written down anywhere.
DEFAULT_IN_WORDS = {"SECRET_KEY"}


def constant(node: ast.expr) -> Any:
    """The value of a constant expression ("5/15m", 60 * 60, ["localhost"]); ValueError for anything
    that names something (another setting, a function)."""
    if any(isinstance(child, ast.Name | ast.Call | ast.Attribute) for child in ast.walk(node)):
        raise ValueError(ast.unparse(node))
    return eval(compile(ast.Expression(node), "<default>", "eval"), {"__builtins__": {}})  # noqa: S307


def literal_defaults() -> dict[str, str]:
    """Each variable whose default in base.py or gunicorn.py is a constant, as .env.example writes it."""
    defaults = {}
    for path in (SETTINGS_DIR / "base.py", GUNICORN):
        for call in env_calls(path):
            name = variable_name(call)
            # env_choice and env_url take the choices or schemes before the default.
            default_at = 2 if call.func.id in ("env_choice", "env_url") else 1  # type: ignore[attr-defined]
            if len(call.args) <= default_at or name in SET_BY_THE_STACK | DEFAULT_IN_WORDS:
                continue
            try:
                value = constant(call.args[default_at])
            except ValueError:
                continue
            if isinstance(value, bool):
                defaults[name] = str(value).lower()
            elif isinstance(value, list) and value:
                defaults[name] = ",".join(value)
            elif isinstance(value, str | int) and value != "":
                defaults[name] = str(value)
    return defaults


def test_the_defaults_are_found():
    assert {
        "THROTTLE_ANON",
        "DB_CONN_MAX_AGE",
        "ALLOWED_HOSTS",
        "EMAIL_USE_TLS",
        "PASSWORD_RESET_TIMEOUT",
    } <= set(literal_defaults())


@pytest.mark.parametrize(("name", "default"), sorted(literal_defaults().items()))
def test_env_example_states_the_default_of_the_code(name, default):
    comment = re.search(rf"((?:^#.*\n)+)(?:^{VARIABLE}=\n)*^{name}=$", ENV_EXAMPLE, re.MULTILINE)
    assert comment, name
    assert f"Default: `{default}`" in comment.group(1).replace("\n# ", " "), name


def script_defaults() -> dict[str, str]:
    """${NAME:-default} in the backup scripts (postgres/) and scripts/swarm, which read their variables
    themselves."""
    defaults: dict[str, str] = {}
    for script in sorted((REPO / "postgres").iterdir()):
        if script.name != "Dockerfile":
            defaults.update(re.findall(r"\$\{(BACKUP_[A-Z0-9_]+):-([^}]+)\}", script.read_text()))
    swarm = (REPO / "scripts" / "swarm").read_text()
    defaults.update(re.findall(r"\$\{(SWARM_[A-Z0-9_]+):-([^}]+)\}", swarm))
    return defaults


def test_the_script_defaults_are_found():
    assert {
        "BACKUP_TIME",
        "BACKUP_VERIFY_DAY",
        "BACKUP_KEEP_DAILY",
        "BACKUP_KEEP_WEEKLY",
        "SWARM_STACK",
    } <= set(script_defaults())


@pytest.mark.parametrize(("name", "default"), sorted(script_defaults().items()))
def test_env_example_states_the_default_of_the_scripts(name, default):
    comment = re.search(rf"((?:^#.*\n)+)(?:^{VARIABLE}=\n)*^{name}=$", ENV_EXAMPLE, re.MULTILINE)
    assert comment, name
    assert f"`{default}`" in comment.group(1).replace("\n# ", " "), name


def test_the_production_stack_passes_the_env_file_to_the_backend_and_migrate():
    services = compose_file("compose.prod.yaml")["services"]
    read = variables_read_by(*SETTINGS_MODULES, GUNICORN)
    for service in ("backend", "migrate"):
        assert services[service]["env_file"] == "${ENV_FILE:-.env}", service
        # What compose sets itself is what the settings or gunicorn read (a secret also as the file
        # NAME_FILE names), nothing stray; and .env's Redis password and backup key, secrets of the
        # stack, blanked.
        environment = services[service]["environment"]
        blanked = {"REDIS_PASSWORD", "BACKUP_KEY"}
        assert set(environment) <= read | {f"{name}_FILE" for name in read} | blanked
        assert {name: environment[name] for name in blanked} == dict.fromkeys(blanked, "")


# ---------------------------------------------------------------- facts written in two places


def nginx_directives(name: str) -> list[str]:
    return [str(value) for value in re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_SITE, re.MULTILINE)]


def nginx_directive(name: str) -> str:
    [value] = nginx_directives(name)
    return value


def nginx_seconds(name: str) -> int:
    return int(nginx_directive(name).removesuffix("s"))


def upstream_keepalive_timeout() -> int:
    upstream = re.search(r"upstream backend \{(.*?)\n\}", NGINX_SITE, re.DOTALL)
    assert upstream
    [value] = re.findall(r"keepalive_timeout\s+(\d+)s;", upstream.group(1))
    return int(value)


def test_the_body_limit_is_djangos_in_nginx_and_in_the_docs():
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    mebibytes = limit // (1024 * 1024)
    assert limit == mebibytes * 1024 * 1024
    # The site's, and none for nginx's own error pages, which read no body.
    assert nginx_directives("client_max_body_size") == [f"{mebibytes}m", "0"]
    assert f"The request body is larger than {mebibytes} MiB." in NGINX_SITE
    readme = (REPO / "README.md").read_text()
    assert f"at most {mebibytes} MiB" in readme
    assert f"The body is over {mebibytes} MiB." in readme


def test_gunicorn_nginx_and_compose_timeouts_fit_together():
    # A worker silent for as long as nginx waits is restarted; nginx gives up at the same moment.
    assert gunicorn.timeout == nginx_seconds("proxy_read_timeout")
    # On SIGTERM, in-flight requests get as long as nginx would wait for them.
    assert gunicorn.graceful_timeout >= nginx_seconds("proxy_read_timeout")
    # gunicorn never closes an idle upstream connection that nginx might still reuse.
    assert gunicorn.keepalive > upstream_keepalive_timeout()
    # docker stops the backend only after gunicorn's graceful shutdown had its time.
    grace = compose_file("compose.prod.yaml")["services"]["backend"]["stop_grace_period"]
    assert int(grace.removesuffix("s")) > gunicorn.graceful_timeout


def test_the_container_health_check_asks_health_live_with_the_default_host():
    healthcheck = (BACKEND_DIR / "docker" / "healthcheck").read_text()
    [path] = re.findall(r"^LIVE_PATH=(\S+)$", healthcheck, re.MULTILINE)
    [host] = re.findall(r"^DEFAULT_HOST=(\S+)$", healthcheck, re.MULTILINE)
    assert path == reverse("health-live")
    assert host == literal_defaults()["ALLOWED_HOSTS"].split(",")[0]


def test_only_the_health_endpoints_skip_the_https_redirect_of_production():
    prod = (SETTINGS_DIR / "prod.py").read_text()
    [exempt] = re.findall(r'^SECURE_REDIRECT_EXEMPT = \[r"([^"]+)"\]$', prod, re.MULTILINE)
    # Django matches the pattern against the path without its leading slash.
    for name in ("health-live", "health-ready"):
        assert re.search(exempt, reverse(name).lstrip("/")), name
    for name in ("auth-me", "auth-login", "schema"):
        assert not re.search(exempt, reverse(name).lstrip("/")), name


def test_only_the_production_image_sets_the_settings_module():
    """manage.py defaults to local settings and wsgi.py to prod; the one other place is the prod image,
    for manage.py there. The compose files and the dev image leave it to those defaults."""
    dockerfile = (BACKEND_DIR / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", dockerfile, flags=re.MULTILINE)
    setting = [stage.split()[2] for stage in stages if "ENV DJANGO_SETTINGS_MODULE=" in stage]
    assert setting == ["prod"]
    assert "ENV DJANGO_SETTINGS_MODULE=config.settings.prod" in stages[-1]
    for file in ("compose.yaml", "compose.prod.yaml", "compose.swarm.yaml"):
        assert "DJANGO_SETTINGS_MODULE" not in (REPO / file).read_text(), file


# ---------------------------------------------------------------- the README and the frontend guide


def markdown_section(path: Path, title: str) -> str:
    text = path.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_readme_error_table_is_every_code_with_its_status():
    errors_section = markdown_section(REPO / "README.md", "Errors")
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", errors_section, re.MULTILINE)
    assert rows == [(code.code, str(code.status)) for code in errors.ALL_CODES]


def test_the_readme_api_table_is_the_api_of_the_apps_in_its_layout():
    """Every endpoint of the apps the README's Layout lists (core, accounts), each with its method, and
    nothing else: an app made with `make app` is documented by the OpenAPI schema, not here."""
    readme = REPO / "README.md"
    rows = re.findall(r"^\| `([A-Z]+) ([^`]+)` \|", markdown_section(readme, "The API"), re.MULTILINE)
    laid_out = set(re.findall(r"^  (\w+)/ ", markdown_section(readme, "Layout"), re.MULTILINE))
    endpoints = [
        (method.upper(), path.removeprefix("/api/v1/"))
        for path, view in api_routes()
        if view.__module__.split(".")[0] in laid_out
        for method in ("get", "post", "put", "patch", "delete")
        if hasattr(view, method)
    ]
    assert {"core", "accounts"} <= laid_out
    assert sorted(rows) == sorted(endpoints)


def code_blocks(markdown: str, language: str) -> list[str]:
    """The fenced blocks of a language, indented ones (in a list item) with their indent removed."""
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```$", markdown, re.S | re.M)
    return [re.sub(rf"^{indent}", "", block, flags=re.M) for indent, block in blocks]


FRONTEND_SNIPPETS = code_blocks(
    markdown_section(REPO / "docs" / "frontend.md", "Connecting a frontend"), "js"
)


def test_the_frontend_guide_has_snippets():
    # Guards the regex: without snippets the test below would pass vacuously.
    assert len(FRONTEND_SNIPPETS) == 5


@pytest.mark.parametrize("snippet", FRONTEND_SNIPPETS, ids=lambda snippet: snippet.splitlines()[0][:40])
def test_frontend_snippet_is_the_code_the_browser_test_runs(snippet):
    """Each js block of docs/frontend.md's "Connecting a frontend" is copied, unchanged, from the test SPA."""
    sources = [path.read_text() for path in (REPO / "tests" / "spa").glob("*.js")]
    assert any(snippet in source for source in sources), snippet


# ---------------------------------------------------------------- log rotation


def test_the_log_rotation_keeps_a_day_at_the_rate_the_decision_states():
    """compose.prod.yaml's rotation for the services that log each request holds a day at the rate
    docs/decisions.md sizes it for, at the bytes per request measured there."""
    decision = markdown_section(REPO / "docs" / "decisions.md", "Log rotation: a day of traffic on the host")
    [rate] = re.findall(r"a day at (\d+) requests per second", decision)
    measured = dict(re.findall(r"^ +(nginx|backend) +(\d+) +\d+$", decision, re.MULTILINE))
    assert set(measured) == {"nginx", "backend"}
    services = compose_file("compose.prod.yaml")["services"]
    for service, bytes_per_request in measured.items():
        options = services[service]["logging"]["options"]
        assert options["max-size"].endswith("m"), options
        kept = int(options["max-size"].removesuffix("m")) * 1000 * 1000 * int(options["max-file"])
        assert kept >= int(bytes_per_request) * int(rate) * 86_400, (service, options)
        assert options["compress"] == "true", service


# ---------------------------------------------------------------- nginx: the edge limits and its own errors


def nginx_main_directive(name: str) -> str:
    [value] = re.findall(rf"^\s*{name}\s+([^;]+);", NGINX_MAIN, re.MULTILINE)
    return str(value)


def edge_limits(throttle_auth: str | None) -> dict[str, str]:
    """What nginx's entrypoint script makes of a THROTTLE_AUTH value, run as the image runs it (sh)."""
    env = {"PATH": "/usr/bin:/bin"} | ({"THROTTLE_AUTH": throttle_auth} if throttle_auth is not None else {})
    result = subprocess.run(  # noqa: S603 (the project's script)
        ["sh", "-c", f'. "{EDGE_LIMITS_SCRIPT}" >/dev/null && env'],  # noqa: S607
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(re.findall(r"^(EDGE_AUTH_[A-Z]+)=(.*)$", result.stdout, re.MULTILINE))


@pytest.mark.parametrize("throttle_auth", ["10/m", "1000/m", "5/15m", "3/h", "100/s", "7/30s"])
def test_nginx_never_refuses_what_the_api_auth_throttle_allows(throttle_auth):
    """nginx's rate is at least the API's; its burst holds the most the API's fixed window lets through
    at once (its limit at the end of one window and again at the start of the next)."""
    rate = rate_limit.Rate.parse(throttle_auth)
    limits = edge_limits(throttle_auth)
    per_minute = int(limits["EDGE_AUTH_RATE"].removesuffix("r/m"))
    assert per_minute * rate.period >= rate.limit * 60
    assert (per_minute - 1) * rate.period < rate.limit * 60, "rounded up to the next whole request, no more"
    assert int(limits["EDGE_AUTH_BURST"]) == 2 * rate.limit
    # Retry-After: the time to nginx's next free slot.
    assert int(limits["EDGE_AUTH_WAIT"]) == -(-60 // per_minute)


def test_nginx_and_the_api_default_to_the_same_auth_rate():
    default = literal_defaults()[rate_limit.variable_for(rate_limit.AUTH)]  # base.py's
    assert edge_limits(None) == edge_limits(default) == edge_limits("")


def test_nginx_refuses_a_malformed_auth_rate_naming_the_variable():
    result = subprocess.run(  # noqa: S603 (the project's script)
        ["sh", "-c", f'. "{EDGE_LIMITS_SCRIPT}"'],  # noqa: S607
        env={"PATH": "/usr/bin:/bin", "THROTTLE_AUTH": "10 per minute"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "THROTTLE_AUTH" in result.stderr


def test_nginx_limits_exactly_the_endpoints_under_the_auth_throttle():
    [pattern] = re.findall(r"^\s*location ~ (\^/api/\S+\$) \{", NGINX_SITE, re.MULTILINE)
    auth_paths = {
        path for path, view in api_routes() if getattr(view, "throttle_scope", None) == rate_limit.AUTH
    }
    assert auth_paths, "the walk over the URLconf found no auth endpoints"
    assert {path for path, _ in api_routes() if re.search(pattern, path)} == auth_paths
    # The admin login counts into the same `auth` limit of the API (accounts.admin), wherever ADMIN_URL
    # puts it.
    assert re.search(r"location = /\$\{ADMIN_URL\}login/ \{\s*limit_req zone=auth ", NGINX_SITE)


def test_nginx_serves_the_admin_where_the_backend_does():
    """ADMIN_URL reaches both from .env; without it, the nginx image's default is the backend's."""
    dockerfile = (REPO / "nginx" / "Dockerfile").read_text()
    assert re.findall(r'^ENV ADMIN_URL="([^"]*)"$', dockerfile, re.MULTILINE) == [base.ADMIN_URL]
    assert re.search(r"^\s*location /\$\{ADMIN_URL\} \{", NGINX_SITE, re.MULTILINE)
    assert "/admin/" not in NGINX_SITE
    assert "ADMIN_URL: ${ADMIN_URL:-" + base.ADMIN_URL + "}" in (REPO / "compose.prod.yaml").read_text()


def test_nginx_405_allows_every_method_an_api_view_may_take():
    """nginx refuses TRACE itself, for any path, and names in Allow every method DRF lets a view take
    (all but TRACE), so no new endpoint needs an edit of the template."""
    [allowed] = re.findall(r'"405:"\s+"([^"]+)";', NGINX_SITE)
    may_take = {method.upper() for method in APIView.http_method_names} - {"TRACE"}
    assert set(allowed.split(", ")) == may_take
    for path, view in api_routes():
        assert {method.upper() for method in view.http_method_names if hasattr(view, method)} <= may_take, (
            path
        )


def test_nginx_asks_for_the_same_retry_after_as_the_api_when_unavailable():
    [seconds] = re.findall(r'"~\^503::"\s+"(\d+)";', NGINX_SITE)
    assert int(seconds) == errors.RETRY_AFTER_UNAVAILABLE


def test_nginx_error_bodies_use_the_api_codes_and_statuses():
    bodies = re.findall(r"^\s*return (\d{3}) '(\{.*\})\\n';$", NGINX_SITE, re.MULTILINE)
    assert len(bodies) >= 9
    statuses = {code.code: code.status for code in errors.ALL_CODES}
    for status, body in bodies:
        [code] = re.findall(r'"code":"([A-Z_]+)"', body)
        assert statuses[code] == int(status), body
        assert re.fullmatch(r'\{"message":"[^"]+","code":"[A-Z_]+","details":\{.*\}\}', body), body
    [throttled] = [body for status, body in bodies if status == "429"]
    message = errors.throttled(7).message.replace("7", "$edge_retry_after")
    assert f'"message":"{message}"' in throttled


def test_the_edge_limits_in_the_readme_are_nginx_s():
    readme = markdown_section(REPO / "README.md", "Errors")
    [uri_limit] = re.findall(r'"~\^\.\{(\d+)\}" 1;', NGINX_SITE)
    assert int(uri_limit) == 8 * 1024 + 1
    assert "The URL (path and query string) is over 8 KiB." in readme
    count, size = nginx_directive("large_client_header_buffers").split()
    field_kib = int(size.removesuffix("k"))
    assert f"over {field_kib} KiB, or all of them over {int(count) * field_kib} KiB" in readme


def test_gunicorn_limits_are_above_what_nginx_forwards():
    count, size = nginx_directive("large_client_header_buffers").split()
    buffers = int(count) * int(size.removesuffix("k")) * 1024
    assert gunicorn.limit_request_line == 0, "nginx's 414 bounds the URI"
    assert gunicorn.limit_request_field_size > buffers
    # gunicorn's maximum; nginx's buffers hold fewer fields ("a: b" and its CRLF are 6 bytes each).
    assert gunicorn.limit_request_fields == 32768 > buffers // 6


def test_nginx_may_open_the_files_its_connections_need():
    connections = int(nginx_main_directive("worker_connections"))
    files = int(nginx_main_directive("worker_rlimit_nofile"))
    assert files >= 2 * connections, "a proxied request holds a client and a backend connection"
    # compose.swarm.yaml keeps compose.prod.yaml's.
    for name in ("compose.yaml", "compose.prod.yaml"):
        nofile = compose_file(name)["services"]["nginx"]["ulimits"]["nofile"]
        assert nofile == {"soft": files, "hard": files}, name
