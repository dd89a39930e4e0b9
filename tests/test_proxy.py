"""Several replicas behind nginx (scripts/serve): sessions upload, train and download through the proxy as if alone,
and without session affinity a request that reaches a replica not holding its session fails."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import urllib.request

import pytest
import requests

from bayesdemo.core.data import parse_csv
from bayesdemo.workers.jobs import usable_cores
from bench.load_test import MemorySampler, plan_sessions, solo_trajectory
from bench.proxy_load import drive, run_proxy_load, upload_csv
from bench.server import CHROMIUM, CHROMIUM_ARGS, LIVE_CHART, PROGRESS, VIEWPORT
from deploy.serve import (
    AFFINITY_COOKIE,
    Replica,
    ServeError,
    check_replicas,
    free_port,
    max_upload_mib,
    proxy_in_front,
    replica_environment,
    replicas_running,
)

pytestmark = pytest.mark.proxy

SESSIONS = 3
REPLICAS = 2
STEPS = 500  # a short Bayes by Backprop fit: starting the replicas dominates the test's time


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Two replicas for the module (each test puts its own nginx in front): they take most of its time to start."""
    with replicas_running(
        REPLICAS, tmp_path_factory.mktemp("replicas"), cores=max(usable_cores(), REPLICAS)
    ) as running:
        yield running


def test_sessions_through_the_proxy_upload_train_and_download_as_if_alone(replicas):
    with proxy_in_front(*replicas) as served:
        report = run_proxy_load(sessions=SESSIONS, replicas=REPLICAS, steps=STEPS, timeout_s=120.0, served=served)
    print({key: value for key, value in report.items() if key != "per_session"})
    assert report["errors"] == 0, report["error_messages"]
    assert report["finished"] == SESSIONS
    assert report["equal_to_solo"] == SESSIONS, "every download equals the engine's solo run on the uploaded CSV"
    assert report["pages_that_reconnected"] == 0
    # New browsers go to each replica in turn, so three sessions land on both.
    assert sorted(report["sessions_per_replica"].values()) == [1, 2]
    assert report["job_cap_per_replica"] == [max(usable_cores(), REPLICAS)] * REPLICAS, "one cap, shared"
    # The uploaded data are not the link's simulated data: an upload the page ignored would not match its solo run.
    query = plan_sessions(1, "bbb", STEPS)[0].query
    assert solo_trajectory(query, parse_csv(upload_csv(0))) != solo_trajectory(query)


def test_without_affinity_uploads_and_downloads_reach_a_replica_without_the_session_and_fail(replicas):
    with proxy_in_front(*replicas, affinity=False) as served:
        # The largest file Streamlit accepts passes the proxy: Streamlit itself answers (no such session), not nginx
        # with 413, as it would at nginx's default limit of 1 MB.
        with requests.Session() as http:
            http.get(served.url + "/_stcore/health", timeout=30)  # sets the XSRF cookie an upload must echo
            answer = http.put(
                served.url + "/_stcore/upload_file/no-such-session/no-such-file",
                files={"file": ("big.csv", b"x" * max_upload_mib() * 2**20, "text/csv")},
                headers={"X-Xsrftoken": http.cookies.get("_streamlit_xsrf", "")},
                timeout=60,
            )
        # Streamlit refuses it (400, "Invalid session_id"); when it answers before nginx has sent the whole body,
        # nginx reports the closed connection as 502. Either way the upload fails, and not at nginx's size limit (413).
        refused = answer.status_code == 400 and "Invalid session_id" in answer.text
        assert refused or answer.status_code == 502, (answer.status_code, answer.text[:200])
        # A plain round-robin proxy sends each request to the next replica: one session's requests alternate between
        # the two, and the ones that reach the replica not holding its websocket fail.
        plan = plan_sessions(1, "bbb", STEPS)
        samplers = [MemorySampler(pid) for pid in served.replica_pids]
        asyncio.run(drive(served.url, plan, STEPS, 60.0, samplers))
    # The download is the next request after the upload's PUT, which reached the session's replica: it goes to the other
    # replica, which holds no such file.
    assert plan[0].errors == ["download failed: HTTP Error 404: Not Found"]


def test_a_browser_whose_replica_is_down_is_served_by_another(replicas):
    running, processes = replicas
    down = Replica("r9", free_port(), 1)  # nothing listens on its port
    with proxy_in_front((*running, down), processes) as served:
        request = urllib.request.Request(served.url + "/_stcore/health", headers={"Cookie": f"{AFFINITY_COOKIE}=r9"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200 and response.read() == b"ok"


@pytest.mark.browser
def test_a_browser_page_through_the_proxy_connects_trains_and_finishes(replicas):
    # A browser's websocket sends an Origin header, which Streamlit checks against the Host it was sent to: the
    # proxy must pass the browser's Host on. The websocket driver sends no Origin and cannot show this.
    from playwright.sync_api import sync_playwright

    with proxy_in_front(*replicas) as served, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(f"{served.url}/?m=bbb&t={STEPS}&v=0")
            page.locator(f"{LIVE_CHART} path.js-line").first.wait_for(state="attached", timeout=90_000)
            page.locator(PROGRESS).filter(has_text="Ready").wait_for(timeout=60_000)
            page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run", exact=True).click()
            page.locator(PROGRESS).filter(has_text="Finished").wait_for(timeout=60_000)
            cookies = {cookie["name"]: cookie["value"] for cookie in context.cookies()}
        finally:
            browser.close()
    assert cookies["bayesdemo_replica"] in {replica.name for replica in served.replicas}


# A replica's process as workers.scheduler sees it: it takes as many core slots as it can (of 3 tries) from the cap
# and slot folder of its environment, says how many, and holds them until killed.
REPLICA_TAKING_SLOTS = """
import time
from bayesdemo.workers.scheduler import SlotFiles, max_running_jobs_from_environment, slot_dir_from_environment
files = SlotFiles(slot_dir_from_environment(), "core")
taken = [files.take(max_running_jobs_from_environment()) for _ in range(3)]
print(sum(slot is not None for slot in taken), flush=True)
time.sleep(600)
"""


def test_the_replicas_share_one_job_cap_so_together_they_train_at_most_one_full_speed_fit_per_core(tmp_path):
    cores = 2
    replicas = [Replica(f"r{index}", free_port(), cores) for index in (1, 2)]
    environments = [replica_environment(replica, tmp_path / "slots") for replica in replicas]
    processes: list[subprocess.Popen] = []
    try:
        taken = []
        for environment in environments:  # one after the other: the first takes both slots, the second finds none
            process = subprocess.Popen(
                [sys.executable, "-c", REPLICA_TAKING_SLOTS], env=environment, stdout=subprocess.PIPE, text=True
            )
            processes.append(process)
            assert process.stdout is not None
            taken.append(int(process.stdout.readline()))
        assert taken == [cores, 0]
    finally:
        for process in processes:
            process.kill()
            process.wait(10)
            if process.stdout is not None:
                process.stdout.close()
    assert check_replicas(3) == 3, "more replicas than cores is fine: the cap is shared, not shared out"
    with pytest.raises(ServeError, match="--replicas must be at least 1"):
        check_replicas(0)
