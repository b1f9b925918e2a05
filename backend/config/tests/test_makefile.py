"""`make run` on a fresh machine: when the virtualenv cannot be made, the Makefile says what the machine
needs (Debian/Ubuntu's python3-venv, a Python 3.11+ and PYTHON= on macOS, WSL on Windows) instead of
leaving the reader with Python's own error."""

import os
import subprocess
import sys
from pathlib import Path

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
