"""config/gunicorn.py: the default number of workers follows the container's CPU quota."""

import os
import subprocess
import sys

import pytest

from config import gunicorn
from config.env import BACKEND_DIR


@pytest.fixture
def eight_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota_caps_the_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu.max", "150000 100000\n")

    assert gunicorn.cpu_quota(tmp_path) == 1.5
    assert gunicorn.available_cpus(tmp_path) == 2


def test_cgroup_v1_quota_caps_the_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "300000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")

    assert gunicorn.available_cpus(tmp_path) == 3


@pytest.mark.parametrize(
    "files",
    [
        {"cpu.max": "max 100000\n"},
        {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
        {},
    ],
)
def test_no_quota_means_every_cpu_of_the_set(tmp_path, eight_cpus, files):
    for name, text in files.items():
        write(tmp_path / name, text)

    assert gunicorn.cpu_quota(tmp_path) is None
    assert gunicorn.available_cpus(tmp_path) == 8


def test_a_quota_above_the_cpu_set_does_not_add_cpus(tmp_path, eight_cpus):
    write(tmp_path / "cpu.max", "1600000 100000\n")

    assert gunicorn.available_cpus(tmp_path) == 8


@pytest.mark.parametrize(("value", "expected"), [("3", "workers=3"), ("0", "GUNICORN_WORKERS")])
def test_gunicorn_workers_from_the_environment_or_a_clear_error(value, expected):
    """Loaded as gunicorn loads it, in a fresh process; a bad value names the variable."""
    result = subprocess.run(
        [sys.executable, "-c", "import config.gunicorn as g; print(f'workers={g.workers}')"],
        cwd=BACKEND_DIR,
        env={"PATH": os.environ["PATH"], "GUNICORN_WORKERS": value},
        capture_output=True,
        text=True,
        check=False,
    )
    assert expected in result.stdout + result.stderr
    assert (result.returncode == 0) is (value != "0")


def test_the_master_freezes_what_it_loaded_before_forking_workers():
    import gc

    gc.unfreeze()
    try:
        gunicorn.when_ready(object())

        assert gc.get_freeze_count() > 1000
    finally:
        gc.unfreeze()
