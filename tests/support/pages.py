"""The page under test: a fresh AppTest page, its exception check, its job, and a link's query string."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bayesdemo.workers.jobs import Job

APP = str(Path(__file__).resolve().parent.parent.parent / "app.py")
TIMEOUT_S = 60  # AppTest's default of 3 s is too short for a first run that imports torch and pyro
GOOD_CSV = b"x,y\n0,1.0\n0.5,2.4\n1,4.1\n1.5,5.4\n2,7.1\n"  # five points near a line, for uploads


def page_at(query: dict[str, str] | None = None) -> AppTest:
    """A new session opened with `query` in its address, after its first run, which raised nothing."""
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.query_params.update(query or {})
    page.run()
    no_exception(page)
    return page


def stop_job(page: AppTest) -> None:
    """Stop the page's job, if any."""
    job = page.session_state.get("job")
    if job is not None:
        job.stop()
        job.join(5.0)


@contextmanager
def fresh_page() -> Iterator[AppTest]:
    """A fresh page after its first run; any job it started is stopped afterwards."""
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.run()
    yield page
    stop_job(page)


def no_exception(page: AppTest) -> None:
    """Fail with the page's exception messages, if any."""
    assert not page.exception, [e.value for e in page.exception]


def job_of(page: AppTest) -> Job | None:
    """The page's job, if one is kept in session state."""
    return page.session_state.get("job")


def rerun_until_finished(page: AppTest, timeout_s: float = 30.0) -> Job:
    """Re-run the script (as the live fragment would) until the page has drawn its job's end."""
    deadline = time.monotonic() + timeout_s
    while True:
        job = job_of(page)
        assert job is not None
        ended = job.state in ("finished", "stopped") or time.monotonic() > deadline
        page.run()
        no_exception(page)
        if ended:
            return job
        time.sleep(0.2)


def rerun_until_computed(page: AppTest, timeout_s: float = 300.0) -> None:
    """Re-run the script (as the explore views' polling would) until no explore computation waits or runs."""
    deadline = time.monotonic() + timeout_s
    while True:
        entries = page.session_state.get("explore_jobs") or {}
        busy = any(entry.job.active for entry in entries.values())
        page.run()
        no_exception(page)
        if not busy:
            return
        assert time.monotonic() < deadline, f"an explore computation still runs after {timeout_s:g} s"
        time.sleep(0.1)


def query(params: dict[str, str]) -> str:
    """`params` as a link's query string, for a real browser."""
    return "/?" + "&".join(f"{key}={value}" for key, value in params.items())
