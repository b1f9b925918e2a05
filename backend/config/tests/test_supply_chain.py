"""The supply chain: base images pinned to full versions, Renovate pointed at the real files, the
CHANGELOG's version the package's, and scripts/audit.py (`make audit`), which fails on a finding that
the ignore file does not accept, and fails distinctly when no vulnerability database answers."""

import datetime
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from config.env import BACKEND_DIR

REPO = BACKEND_DIR.parent
DOCKERFILES = ["backend/Dockerfile", "nginx/Dockerfile", "postgres/Dockerfile", "maildev/Dockerfile"]
# A release, not a branch: MAJOR.MINOR.PATCH, or MAJOR.MINOR for PostgreSQL, whose minor releases are
# the patch releases; then an optional variant (-slim-trixie) and digest.
RELEASE = {
    "postgres": r"\d+\.\d+",
    "python": r"\d+\.\d+\.\d+",
    "nginx": r"\d+\.\d+\.\d+",
    "redis": r"\d+\.\d+\.\d+",
}


def load_audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit", REPO / "scripts" / "audit.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


audit = load_audit()


# ---------------------------------------------------------------- base images


def base_images() -> dict[str, str]:
    """Where each base image is named, and the image: the ARG defaults the FROM lines use, and compose's
    `image:` lines of services that pull their image (with `build:`, `image:` names what is built)."""
    images = {}
    for dockerfile in DOCKERFILES:
        text = (REPO / dockerfile).read_text()
        defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, re.MULTILINE))
        for reference in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
            name = reference.removeprefix("${").removesuffix("}")
            if name in defaults:
                images[f"{dockerfile} {name}"] = defaults[name]
    # compose.swarm.yaml names only the images scripts/swarm builds (${SWARM_...}).
    for compose in ("compose.yaml", "compose.prod.yaml"):
        for service, definition in yaml.safe_load((REPO / compose).read_text())["services"].items():
            if "image" in definition and "build" not in definition and "${" not in definition["image"]:
                images[f"{compose} {service}"] = definition["image"]
    return images


def test_every_base_image_is_found():
    assert {image.split(":")[0] for image in base_images().values()} == {
        "python",
        "nginx",
        "postgres",
        "redis",
    }


@pytest.mark.parametrize(("where", "image"), sorted(base_images().items()))
def test_base_image_is_pinned_to_a_release(where, image):
    name = image.split(":")[0]
    pinned = rf"^{name}:{RELEASE[name]}(-[a-z0-9.-]+)?(@sha256:[0-9a-f]{{64}})?$"
    assert re.match(pinned, image), f"{where}: {image} is not pinned to a release"


def test_the_mail_catcher_builds_on_the_backends_python_image():
    python = {where: image for where, image in base_images().items() if image.startswith("python:")}
    assert set(python) == {"backend/Dockerfile PYTHON_IMAGE", "maildev/Dockerfile PYTHON_IMAGE"}
    assert len(set(python.values())) == 1, python


def test_every_stack_runs_the_same_redis():
    redis = {where: image for where, image in base_images().items() if image.startswith("redis:")}
    # compose.swarm.yaml runs compose.prod.yaml's.
    assert set(redis) == {"compose.yaml redis", "compose.prod.yaml redis"}
    assert len(set(redis.values())) == 1, redis


# ---------------------------------------------------------------- Renovate


def renovate_config() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((REPO / ".github" / "renovate.json").read_text())
    return loaded


def renovate_regex(pattern: str) -> re.Pattern[str]:
    assert pattern.startswith("/"), pattern
    assert pattern.endswith("/"), pattern
    return re.compile(pattern[1:-1])


def test_renovate_updates_both_python_locks():
    [pattern] = renovate_config()["pip-compile"]["managerFilePatterns"]
    locks = sorted(str(path.relative_to(REPO)) for path in (BACKEND_DIR / "requirements").glob("*.txt"))
    assert locks == [
        "backend/requirements/dev.txt",
        "backend/requirements/prod.txt",
        "backend/requirements/stack-test.txt",
    ]
    for lock in locks:
        assert renovate_regex(pattern).search(lock), lock


def test_the_locks_record_the_command_make_lock_runs():
    """Renovate re-runs the command in a lock's header; it must be the Makefile's, options with "="."""
    makefile = (REPO / "Makefile").read_text()
    for lock in ("prod.txt", "dev.txt", "stack-test.txt"):
        header = (BACKEND_DIR / "requirements" / lock).read_text().splitlines()[1]
        command = header.removeprefix("#    ")
        assert command.startswith("uv pip compile pyproject.toml"), header
        assert f"--output-file=requirements/{lock}" in command
        for option in command.split()[3:]:
            assert option in makefile, option


def test_renovate_keeps_nginx_on_the_stable_branch():
    [rule] = [
        rule for rule in renovate_config()["packageRules"] if rule.get("matchPackageNames") == ["nginx"]
    ]
    allowed = renovate_regex(rule["allowedVersions"])
    [nginx] = [image for image in base_images().values() if image.startswith("nginx:")]
    assert allowed.match(nginx.split(":")[1].split("@")[0])
    assert not allowed.match("1.31.10-trixie"), "a mainline release"
    assert allowed.match("1.32.0-trixie")


# ---------------------------------------------------------------- CHANGELOG and version


def test_the_changelog_starts_with_unreleased_then_the_packages_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", changelog, re.MULTILINE)
    assert headings[0] == ("Unreleased", "")
    version = tomllib.loads((BACKEND_DIR / "pyproject.toml").read_text())["project"]["version"]
    assert headings[1][0] == version, "pyproject.toml's version is the newest release in CHANGELOG.md"
    for _, date in headings[1:]:
        datetime.date.fromisoformat(date)


def test_the_licence_is_the_one_pyproject_names():
    assert tomllib.loads((BACKEND_DIR / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


# ---------------------------------------------------------------- scripts/audit.py

# The JSON the tools print, in the shape their documentation gives (pip-audit --format json,
# npm audit --json with a lockfile v2+).
PIP_AUDIT_REPORT = {
    "dependencies": [
        {"name": "django", "version": "4.2.0", "vulns": [
            {"id": "PYSEC-2023-100", "fix_versions": ["4.2.2"],
             "aliases": ["CVE-2023-36053", "GHSA-jh3w-4vvf-mjgr"]},
        ]},
        {"name": "sqlparse", "version": "0.4.3", "vulns": [
            {"id": "GHSA-rrm6-wvj7-cwh2", "fix_versions": ["0.4.4"], "aliases": []},
        ]},
        {"name": "asgiref", "version": "3.8.1", "vulns": []},
    ],
    "fixes": [],
}  # fmt: skip
NPM_AUDIT_REPORT = {
    "auditReportVersion": 2,
    "vulnerabilities": {
        "axios": {
            "name": "axios",
            "severity": "high",
            "via": [{"source": 1097679, "name": "axios", "title": "SSRF",
                     "url": "https://github.com/advisories/GHSA-8hc4-vh64-cxmj", "range": "<1.8.2"}],
            "fixAvailable": {"name": "axios", "version": "1.8.2"},
        },
        "form-data": {"name": "form-data", "severity": "high", "via": ["axios"], "fixAvailable": True},
    },
}  # fmt: skip


def write_ignores(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "audit-ignore.toml"
    path.write_text(text)
    return path


def test_the_shipped_ignore_file_loads():
    assert audit.load_ignores(audit.IGNORE_FILE) == []


def test_findings_are_read_from_pip_audit_and_npm_reports():
    pip = audit.pip_audit_findings(PIP_AUDIT_REPORT, "prod.txt")
    npm = audit.npm_audit_findings(NPM_AUDIT_REPORT, "package-lock.json")
    assert [(finding.package, finding.id, finding.fixed_in) for finding in pip + npm] == [
        ("django", "PYSEC-2023-100", "4.2.2"),
        ("sqlparse", "GHSA-rrm6-wvj7-cwh2", "0.4.4"),
        ("axios", "GHSA-8hc4-vh64-cxmj", "1.8.2"),
    ]
    assert "GHSA-jh3w-4vvf-mjgr" in pip[0].names()


def test_a_finding_fails_unless_ignored_by_id_or_alias_with_a_reason_and_in_date(tmp_path):
    today = datetime.date(2026, 12, 1)
    findings = audit.pip_audit_findings(PIP_AUDIT_REPORT, "prod.txt") + audit.npm_audit_findings(
        NPM_AUDIT_REPORT, "package-lock.json"
    )
    ignores = audit.load_ignores(
        write_ignores(
            tmp_path,
            '[[ignore]]\nid = "GHSA-jh3w-4vvf-mjgr"\nreason = "An alias of the django finding."\n'
            '[[ignore]]\nid = "GHSA-8hc4-vh64-cxmj"\nreason = "Ran out."\nuntil = 2026-11-30\n',
        )
    )
    failing, ignored = audit.judge(findings, ignores, today)
    assert [finding.package for finding in failing] == ["sqlparse", "axios"]
    assert [(finding.package, ignore.reason) for finding, ignore in ignored] == [
        ("django", "An alias of the django finding.")
    ]


@pytest.mark.parametrize(
    ("entry", "complaint"),
    [
        ('id = "GHSA-1234-5678-9abc"', "needs a reason"),
        ('id = "GHSA-1234-5678-9abc"\nreason = "  "', "needs a reason"),
        ('reason = "No id."', "needs an id"),
        ('id = "X"\nreason = "r"\nuntil = "soon"', "until must be a date"),
        ('id = "X"\nreason = "r"\nexpires = 2027-01-01', "only id, reason and until"),
    ],
)
def test_a_bad_ignore_entry_stops_the_audit_naming_it(tmp_path, entry, complaint):
    result = run_audit("--ignore-file", str(write_ignores(tmp_path, f"[[ignore]]\n{entry}\n")))
    assert result.returncode == audit.BAD_IGNORE_FILE
    assert complaint in result.stderr


def run_audit(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (this interpreter and the project's script)
        [sys.executable, str(REPO / "scripts" / "audit.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_without_a_reachable_database_the_audit_fails_distinctly_and_says_what_was_not_checked():
    # Every request goes to a proxy that refuses the connection: nothing can be looked up.
    refused = "http://127.0.0.1:9"
    result = run_audit(
        env={"HTTPS_PROXY": refused, "https_proxy": refused, "npm_config_https_proxy": refused}
    )
    assert result.returncode == audit.COULD_NOT_RUN, result.stdout + result.stderr
    for lock in (
        "backend/requirements/prod.txt",
        "backend/requirements/dev.txt",
        "backend/requirements/stack-test.txt",
        "tests/spa/package-lock.json",
        "maildev/package-lock.json",
    ):
        assert (
            f"NOT CHECKED: {'pip-audit' if lock.endswith('.txt') else 'npm audit'} could not check {lock}"
            in (result.stderr)
        )
    assert "no known vulnerability" not in result.stdout
