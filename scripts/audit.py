"""Known vulnerabilities in the locked dependencies: pip-audit on each hashed Python lock
(backend/requirements/*.txt) and `npm audit --omit=dev` on the npm locks (tests/spa, the test SPA, and
maildev, the dev stack's mail catcher).

Usage: backend/.venv/bin/python scripts/audit.py [--ignore-file FILE]    (or: make audit)

A finding fails the audit unless the ignore file (default scripts/audit-ignore.toml) lists its id, or one
of its aliases, with the reason it does not apply. Exit status: 0 no finding left, 1 findings, 2 a bad
ignore file, 3 the audit could not run (no vulnerability database answered), so nothing was checked.
pip-audit asks PyPI's vulnerability data first and OSV if PyPI does not answer; --strict makes a
package it could not look up an error instead of a silent skip.
"""

import argparse
import datetime
import json
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PYTHON_LOCKS = sorted((REPO / "backend" / "requirements").glob("*.txt"))
NPM_LOCKS = [REPO / "tests" / "spa" / "package-lock.json", REPO / "maildev" / "package-lock.json"]
IGNORE_FILE = REPO / "scripts" / "audit-ignore.toml"
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
# pip-audit's vulnerability services, in the order they are tried.
SERVICES = {"pypi": "PyPI", "osv": "OSV"}

FINDINGS, BAD_IGNORE_FILE, COULD_NOT_RUN = 1, 2, 3


class AuditError(Exception):
    """The audit could not run: what it could not reach, and what the tool said."""


class IgnoreFileError(Exception):
    pass


@dataclass(frozen=True)
class Finding:
    where: str
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixed_in: str

    def names(self) -> set[str]:
        return {self.id, *self.aliases}

    def __str__(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fix = f", fixed in {self.fixed_in}" if self.fixed_in else ", no fixed version yet"
        return f"{self.where}: {self.package} {self.version}: {self.id}{aliases}{fix}"


@dataclass(frozen=True)
class Ignore:
    id: str
    reason: str
    until: datetime.date | None


def load_ignores(path: Path) -> list[Ignore]:
    """The [[ignore]] entries of the file; each needs an id and a reason, and may have an until date."""
    try:
        entries = tomllib.loads(path.read_text()).get("ignore", [])
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise IgnoreFileError(f"{path}: {error}") from error
    ignores = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}: [[ignore]] number {number}"
        if not isinstance(entry, dict) or set(entry) - {"id", "reason", "until"}:
            raise IgnoreFileError(f"{where}: only id, reason and until are known")
        if not isinstance(entry.get("id"), str) or not entry["id"].strip():
            raise IgnoreFileError(f"{where}: needs an id (the advisory id the audit printed)")
        if not isinstance(entry.get("reason"), str) or not entry["reason"].strip():
            raise IgnoreFileError(f"{where} ({entry['id']}): needs a reason why it does not apply here")
        until = entry.get("until")
        if until is not None and type(until) is not datetime.date:
            raise IgnoreFileError(f"{where} ({entry['id']}): until must be a date, e.g. until = 2027-03-01")
        ignores.append(Ignore(entry["id"].strip(), entry["reason"].strip(), until))
    return ignores


def pip_audit_findings(report: dict[str, Any], where: str) -> list[Finding]:
    """The vulnerabilities in pip-audit's JSON report (--format json)."""
    return [
        Finding(
            where=where,
            package=dependency["name"],
            version=dependency.get("version", "?"),
            id=vulnerability["id"],
            aliases=tuple(vulnerability.get("aliases", [])),
            fixed_in=", ".join(vulnerability.get("fix_versions", [])),
        )
        for dependency in report["dependencies"]
        for vulnerability in dependency.get("vulns", [])
    ]


def npm_audit_findings(report: dict[str, Any], where: str) -> list[Finding]:
    """The advisories in `npm audit --json` (lockfile v2+ format): each vulnerable package's own
    advisories; entries that only name another vulnerable package are that package's findings."""
    findings = []
    for name, vulnerability in report["vulnerabilities"].items():
        fix = vulnerability.get("fixAvailable")
        fixed_in = fix.get("version", "") if isinstance(fix, dict) else ("yes" if fix else "")
        for via in vulnerability.get("via", []):
            if not isinstance(via, dict):
                continue
            url = via.get("url", "")
            ghsa = re.search(r"GHSA(-[0-9a-z]{4}){3}", url)
            advisory_id = ghsa.group(0) if ghsa else str(via.get("source", url))
            aliases = (str(via["source"]),) if "source" in via and ghsa else ()
            findings.append(Finding(where, name, via.get("range", "?"), advisory_id, aliases, fixed_in))
    return findings


def run_tool(command: list[str], cwd: Path = REPO) -> tuple[dict[str, Any], str]:
    """The JSON report a tool printed ({} if none), and the last line of what it wrote on stderr."""
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        report = {}
    errors = result.stderr.strip().splitlines()
    return report, errors[-1].strip() if errors else "(no output)"


def run_pip_audit(lock: Path) -> list[Finding]:
    where = str(lock.relative_to(REPO))
    failures = []
    for service, name in SERVICES.items():
        command = [str(PIP_AUDIT), f"--requirement={lock}", "--require-hashes", "--disable-pip", "--strict"]
        command += ["--format=json", "--progress-spinner=off", f"--vulnerability-service={service}"]
        report, said = run_tool(command)
        if "dependencies" in report:
            return pip_audit_findings(report, f"{where} ({name})")
        failures.append(f"{name}: {said}")
    raise AuditError(
        f"pip-audit could not check {where} against any vulnerability database:\n" + "\n".join(failures)
    )


def run_npm_audit(lock: Path) -> list[Finding]:
    where = str(lock.relative_to(REPO))
    npm = shutil.which("npm")
    if npm is None:
        raise AuditError(f"npm audit could not check {where}: npm is not installed (Node.js brings it)")
    report, said = run_tool([npm, "audit", "--omit=dev", "--json"], cwd=lock.parent)
    if "vulnerabilities" not in report:
        said = report.get("message") or report.get("error", {}).get("summary") or said
        raise AuditError(f"npm audit could not check {where}: {said}")
    return npm_audit_findings(report, f"{where} (npm registry)")


def judge(
    findings: list[Finding], ignores: list[Ignore], today: datetime.date
) -> tuple[list[Finding], list[tuple[Finding, Ignore]]]:
    """The findings that fail the audit, and those an ignore entry accepts (by id or alias, until its
    date has passed)."""
    failing, ignored = [], []
    for finding in findings:
        match = next((ignore for ignore in ignores if ignore.id in finding.names()), None)
        if match is not None and (match.until is None or today <= match.until):
            ignored.append((finding, match))
        else:
            failing.append(finding)
    return failing, ignored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    arguments = parser.parse_args()
    try:
        ignores = load_ignores(arguments.ignore_file)
    except IgnoreFileError as error:
        print(f"audit: {error}", file=sys.stderr)
        return BAD_IGNORE_FILE

    findings: list[Finding] = []
    not_checked = []
    for lock in PYTHON_LOCKS + NPM_LOCKS:
        try:
            findings += run_pip_audit(lock) if lock.suffix == ".txt" else run_npm_audit(lock)
        except AuditError as error:
            not_checked.append(str(error))

    failing, ignored = judge(findings, ignores, datetime.datetime.now(tz=datetime.UTC).date())
    for finding, ignore in ignored:
        print(f"audit: ignored: {finding}\n       because: {ignore.reason}")
    for finding in failing:
        print(f"audit: VULNERABLE: {finding}")
    if not_checked:
        for message in not_checked:
            print(f"audit: NOT CHECKED: {message}", file=sys.stderr)
        print(
            "audit: the audit could not run completely: no vulnerability database answered", file=sys.stderr
        )
        return COULD_NOT_RUN
    if failing:
        print(
            f"audit: {len(failing)} known vulnerabilities: upgrade (make lock, docs/operations.md) or, "
            f"where one does not apply, list it with the reason in {arguments.ignore_file}"
        )
        return FINDINGS
    print(
        f"audit: no known vulnerability in {', '.join(str(lock.relative_to(REPO)) for lock in PYTHON_LOCKS)} "
        "and the npm projects' runtime packages"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
