"""The Makefile. `make run` on a fresh machine: when the virtualenv cannot be made, it says what the
machine needs (Debian/Ubuntu's python3-venv, a Python 3.11+ and PYTHON= on macOS, WSL on Windows)
instead of leaving the reader with Python's own error. What a command line or the environment gives
(NAME, FILE, ARGS...) reaches the recipe's command as text, never as shell or make syntax."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import BACKEND_DIR

REPO = BACKEND_DIR.parent


def make_venv(
    tmp_path: Path, python: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (the project's Makefile)
        ["make", "--no-print-directory", "venv", f"PYTHON={python}", f"VENV={tmp_path / 'venv'}"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_says_what_a_fresh_machine_needs(stderr: str) -> None:
    assert "Debian/Ubuntu: sudo apt install python3 python3-venv" in stderr
    assert "macOS: a Python 3.11+" in stderr
    assert "PYTHON=python3.13" in stderr
    assert "Windows: use WSL" in stderr


def test_a_python_without_a_working_venv_module_gets_the_platform_steps(tmp_path):
    # Debian and Ubuntu ship python3 without ensurepip until python3-venv is installed, and `python3 -m
    # venv` then stops with this message. The same failure, from a venv module earlier on the path.
    shadow = tmp_path / "debian-without-python3-venv" / "venv"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    debian_says = (
        "The virtual environment was not created successfully because ensurepip is not available. "
        "On Debian/Ubuntu systems, you need to install the python3-venv package"
    )
    (shadow / "__main__.py").write_text(f"raise SystemExit({debian_says!r})\n")

    result = make_venv(tmp_path, sys.executable, env={"PYTHONPATH": str(shadow.parent)})

    assert result.returncode != 0
    assert f"Could not create {tmp_path / 'venv'}." in result.stderr
    assert_says_what_a_fresh_machine_needs(result.stderr)
    assert not (tmp_path / "venv").exists(), "a half-made virtualenv would hide the problem next time"


def test_a_missing_python_gets_the_platform_steps(tmp_path):
    result = make_venv(tmp_path, "python3.11-that-is-not-installed")

    assert result.returncode != 0
    assert "python3.11-that-is-not-installed was not found." in result.stderr
    assert_says_what_a_fresh_machine_needs(result.stderr)


HOSTILE = ["x.dump; touch /tmp/pwned", 'a"; id; echo "', "it's `id` $(id) $$HOME"]


def make_dry_run(*arguments: str, env: dict[str, str] | None = None) -> str:
    """What `make -n` would run, with a clean environment but for `env`."""
    result = subprocess.run(  # noqa: S603 (the project's Makefile)
        ["make", "--no-print-directory", "-n", *arguments],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )
    return result.stdout


def command_words(output: str, marker: str) -> list[str]:
    """The shell words of the one line of `make -n` output that runs `marker`."""
    [line] = [line for line in output.splitlines() if marker in line]
    return shlex.split(line)


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize(
    ("target", "variable", "marker"),
    [
        ("backup", "NAME", "db backup"),
        ("backup-verify", "FILE", "db backup-verify"),
        ("restore", "FILE", "scripts/db-restore"),
        ("trust-ca", "CA_FILE", "scripts/trust-ca"),
        ("certs", "CERTS_DIR", "nginx/local-cert"),
        ("logs", "SERVICE", "logs --follow"),
    ],
)
@pytest.mark.parametrize("given_in", ["the command line", "the environment"])
def test_a_value_reaches_the_command_as_one_argument(target, variable, marker, value, given_in):
    if given_in == "the command line":
        output = make_dry_run(target, f"{variable}={value}")
    else:
        output = make_dry_run(target, env={variable: value})

    assert value in command_words(output, marker)


@pytest.mark.parametrize(
    ("target", "variable", "marker"),
    [
        ("manage", "ARGS", "manage.py"),
        ("deploy", "ARGS", "scripts/deploy"),
        ("swarm-update", "ARGS", "scripts/swarm"),
        ("certs", "CERT_NAMES", "nginx/local-cert"),
    ],
)
def test_several_words_are_several_arguments_and_no_shell_syntax(target, variable, marker):
    value = 'makemigrations accounts; touch /tmp/pwned $(id) `id` "a b"'

    words = command_words(make_dry_run(target, f"{variable}={value}"), marker)

    assert words[-len(value.split()) :] == value.split()


def test_make_does_not_expand_a_given_value(tmp_path):
    planted = tmp_path / "made-by-make"

    output = make_dry_run("backup", f"NAME=$(shell touch {planted})")

    assert not planted.exists()
    assert f"$(shell touch {planted})" in command_words(output, "db backup")


def test_a_hostile_ca_file_runs_nothing(tmp_path):
    planted = tmp_path / "made-by-the-shell"

    result = subprocess.run(  # noqa: S603 (the project's Makefile)
        ["make", "--no-print-directory", "trust-ca", f"CA_FILE=`touch {planted}`; touch {planted}"],  # noqa: S607
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert result.returncode != 0
    assert "is not a PEM certificate" in result.stderr
    assert not planted.exists()


def test_only_install_on_the_command_line_installs():
    in_the_environment = make_dry_run("trust-ca", env={"INSTALL": "/usr/bin/install"})
    on_the_command_line = make_dry_run("trust-ca", "INSTALL=1")

    assert "--install" not in command_words(in_the_environment, "scripts/trust-ca")
    assert "--install" in command_words(on_the_command_line, "scripts/trust-ca")


def test_every_target_help_lists_is_phony():
    """A file of a target's name (a `test` or `lint` in the checkout) must not make make skip it."""
    database = make_dry_run("--print-data-base", "help")
    [phony] = [line.split()[1:] for line in database.splitlines() if line.startswith(".PHONY:")]
    listed = re.findall(r"^([a-zA-Z0-9_-]+):.*## ", (REPO / "Makefile").read_text(), re.MULTILINE)
    assert "help" in listed
    assert sorted(phony) == sorted(listed)
