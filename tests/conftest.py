"""Torch on one thread; fixtures: a real `streamlit run app.py` server and a headless Chromium page at 1280x800."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from bench.server import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, streamlit_server
from tests.support.pages import fresh_page

# Torch on one thread, as the page's workers, its server process and the command line run it: on a busy machine its
# thread pool made a 2-second fit take a minute.
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def streamlit_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `streamlit run app.py` started for this module (stopped afterwards, log kept in tmp)."""
    log_path = tmp_path_factory.mktemp("streamlit") / "server.log"
    try:
        with streamlit_server(log_path) as (url, _):
            yield url
    finally:
        print(f"\nstreamlit log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}")


@pytest.fixture
def browser_page(streamlit_url: str):
    """A fresh Chromium page at 1280x800 (headless, no GPU)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            yield page
        finally:
            browser.close()


@pytest.fixture
def app():
    """A fresh page under AppTest after its first run (tests.support.pages.fresh_page)."""
    with fresh_page() as page:
        yield page
