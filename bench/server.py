"""Start `streamlit run app.py` on a free port and headless Chromium settings: shared by the tests and the load test."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path

from deploy.serve import free_port, streamlit_command, wait_for_health

REPOSITORY = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Many pages in one browser: keep the ones not in front from being throttled like background tabs.
UNTHROTTLED_ARGS = [
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
VIEWPORT = {"width": 1280, "height": 800}
LIVE_CHART = '[data-testid="stMain"] .st-key-chart_mean_slope'  # the first live chart on the page: the slope's mean
PROGRESS = '[data-testid="stMain"] [data-testid="stProgress"]'  # the live progress bar
SERVER_START_TIMEOUT_S = 60.0


@contextlib.contextmanager
def streamlit_server(
    log_path: Path, environment: Mapping[str, str] | None = None, tree: Path = REPOSITORY
) -> Iterator[tuple[str, int]]:
    """Run `streamlit run app.py` in `tree` (extra `environment` variables, output to `log_path`); yield (base URL,
    pid)."""
    port = free_port()
    env = {**os.environ, "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", **(environment or {})}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(streamlit_command(port), cwd=tree, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_health(f"http://127.0.0.1:{port}/_stcore/health", server, SERVER_START_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}", server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
