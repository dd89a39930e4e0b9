"""The page under Streamlit's AppTest: a fresh page after its first run, and its exception check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent.parent / "app.py")
TIMEOUT_S = 60  # AppTest's default of 3 s is too short for a first run that imports torch and pyro


@contextmanager
def fresh_page() -> Iterator[AppTest]:
    """A fresh page after its first run; any job it started is stopped afterwards."""
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.run()
    yield page
    job = page.session_state.get("job")
    if job is not None:
        job.stop()
        job.join(5.0)


def no_exception(page: AppTest) -> None:
    """Fail with the page's exception messages, if any."""
    assert not page.exception, [e.value for e in page.exception]
