"""core.background: jobs after the response, with the request's context, failures logged not raised."""

import logging
import threading
import time

from core import background, request_context


def test_job_runs_in_another_thread_with_the_submitting_requests_id():
    seen: list[tuple[str | None, str]] = []

    def job(label: str) -> None:
        seen.append((request_context.request_id.get(), f"{label} in {threading.current_thread().name}"))

    token = request_context.request_id.set("request-one-1234")
    try:
        background.submit(job, "first")
    finally:
        request_context.request_id.reset(token)
    # The request is over (its id unbound) before the job is sure to have run.
    background.drain()

    assert len(seen) == 1
    request_id, where = seen[0]
    assert request_id == "request-one-1234"
    assert where.startswith("first in background")


def test_each_job_keeps_the_id_of_its_own_request():
    seen: list[str | None] = []
    release = threading.Event()

    def job() -> None:
        release.wait(timeout=5)
        seen.append(request_context.request_id.get())

    for request_id in ("request-aaaa-1", "request-bbbb-2", "request-cccc-3"):
        token = request_context.request_id.set(request_id)
        try:
            background.submit(job)
        finally:
            request_context.request_id.reset(token)
    background.submit(job)  # outside any request
    release.set()
    background.drain()

    assert sorted(seen, key=str) == [None, "request-aaaa-1", "request-bbbb-2", "request-cccc-3"]
    assert request_context.request_id.get() is None


def test_drain_waits_for_every_job_submitted():
    done: list[int] = []

    def slow_job(number: int) -> None:
        time.sleep(0.05)
        done.append(number)

    for number in range(5):  # more jobs than worker threads
        background.submit(slow_job, number)
    background.drain()

    assert sorted(done) == [0, 1, 2, 3, 4]


def test_drain_gives_up_after_its_timeout():
    release = threading.Event()
    finished = threading.Event()

    def stuck_job() -> None:
        release.wait(timeout=5)
        finished.set()

    background.submit(stuck_job)
    background.drain(timeout=0.05)

    assert not finished.is_set()
    release.set()
    background.drain()
    assert finished.is_set()


def test_a_failing_job_is_logged_and_does_not_raise(caplog):
    ran: list[str] = []

    def failing_job() -> None:
        raise RuntimeError("the mail server said no")

    with caplog.at_level(logging.ERROR, logger="core.background"):
        background.submit(failing_job)
        background.drain()
        # The pool survives a failure: later jobs still run.
        background.submit(ran.append, "next")
        background.drain()

    assert ran == ["next"]
    [record] = [record for record in caplog.records if record.name == "core.background"]
    assert record.levelno == logging.ERROR
    assert "failing_job" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


def test_a_failing_job_is_logged_with_its_requests_id():
    ids_in_log: list[str | None] = []

    class RecordRequestId(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            ids_in_log.append(request_context.request_id.get())

    handler = RecordRequestId(level=logging.ERROR)
    logging.getLogger("core.background").addHandler(handler)
    try:
        token = request_context.request_id.set("request-fail-99")
        try:
            background.submit(int, "not a number")
        finally:
            request_context.request_id.reset(token)
        background.drain()
    finally:
        logging.getLogger("core.background").removeHandler(handler)

    assert ids_in_log == ["request-fail-99"]
