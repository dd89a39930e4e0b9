"""Load test: N real sessions train at once against one `streamlit run app.py`.

Run: `python bench/load_test.py` (20 sessions of a 2,000-step Bayes by Backprop fit; --sessions, --steps,
--max-running-jobs, --driver, --json FILE). It starts its own server, opens every session, clicks Run in each, and
waits until every page shows "Finished". Two drivers: `browser` (default) opens headless Chromium pages, which draw
everything on this machine's cores beside the server; `websocket` (bench/ws_session.py) speaks Streamlit's websocket
protocol as each page's frontend does and draws nothing, so the figures are the server's, as a class whose browsers
run on their own laptops sees it. It reports: sessions finished, errors (tracebacks, error boxes, page errors,
timeouts), whether each session's trajectory (downloaded from the page as CSV, full precision) equals the engine's
solo `run_to_end` of the same scenario, the chart-update intervals a page saw while its fit trained (median and
worst), the queue positions pages showed, steps per second per session, the server's peak memory (sum of RSS and of
PSS over the server and every process under it, sampled from /proc) and the CPU time of the server process and of
the training processes under it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayesdemo.core.data import Dataset, generate  # noqa: E402
from bayesdemo.core.share import decode  # noqa: E402
from bayesdemo.fitting.runner import RunConfig, run_to_end  # noqa: E402
from bayesdemo.methods import make_method  # noqa: E402
from bayesdemo.workers import jobs  # noqa: E402
from bench.server import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LIVE_CHART,
    PROGRESS,
    UNTHROTTLED_ARGS,
    VIEWPORT,
    streamlit_server,
)
from bench.ws_session import PageRecord, ProtocolSession  # noqa: E402

MEMORY_EVERY_S = 0.25  # how often the server's memory and CPU time are sampled
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
DRIVERS = ("browser", "websocket")
# Records in each page, in its own time: the moments the slope-mean chart gets a new trajectory (and the step
# shown then), when the progress bar first says Queued / Running / Finished / Stopped, and each queue position.
WATCH = """
() => {
  const record = { updates: [], steps: [], states: {}, queue: [] };
  window.__load = record;
  const chartSignature = () => {
    const chart = document.querySelector('[data-testid="stMain"] .st-key-chart_mean_slope');
    if (!chart) return '';
    return Array.from(chart.querySelectorAll('path.js-line')).map(p => p.getAttribute('d')).join('|');
  };
  let last = chartSignature();
  setInterval(() => {
    const now = performance.now();
    const bar = document.querySelector('PROGRESS');
    const text = bar ? bar.innerText : '';
    for (const word of ['Queued', 'Running', 'Finished', 'Stopped']) {
      if (text.includes(word) && !(word in record.states)) record.states[word] = now;
    }
    const queued = text.match(/number (\\d+) in the queue/);
    if (queued) record.queue.push(parseInt(queued[1], 10));
    const signature = chartSignature();
    if (signature !== last && signature !== '') {
      const step = text.match(/Step ([\\d,]+) of/);
      record.updates.push(now);
      record.steps.push(step ? parseInt(step[1].replace(/,/g, ''), 10) : -1);
      last = signature;
    }
  }, 25);
}
""".replace("PROGRESS", PROGRESS)
ERROR_ELEMENTS = '[data-testid="stException"], [data-testid="stMain"] [data-testid="stAlertContentError"]'


@dataclass
class Session:
    """One browser session: its link, what it recorded, and how it ended."""

    index: int
    query: dict[str, str]
    errors: list[str] = field(default_factory=list)
    finished: bool = False
    equal_to_solo: bool = False
    update_intervals_s: list[float] = field(default_factory=list)
    queue_positions: list[int] = field(default_factory=list)
    steps_per_second: float = float("nan")  # steps / wall time from Running to Finished as the page showed them
    training_steps_per_second: float = float("nan")  # steps / seconds inside the method's steps (the CSV's seconds)
    shown_slope_mean: str = ""
    connections: int = 0  # websocket connections the page opened (more than 1: it lost its connection and came back)


# ---- server memory --------------------------------------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    """`root` and every process under it (children from /proc/PID/task/*/children)."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            with contextlib.suppress(OSError):
                queue.extend(int(child) for child in (task / "children").read_text().split())
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of one process in KiB; (0, 0) once it has gone."""
    try:
        rss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("VmRSS:")
        )
        pss = next(
            int(line.split()[1])
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
            if line.startswith("Pss:")
        )
    except (OSError, StopIteration):
        return 0, 0
    return rss, pss


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of one process so far; None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


class MemorySampler(threading.Thread):
    """Samples the summed RSS and PSS of a process tree until stopped; keeps the peaks and each process's CPU time."""

    def __init__(self, root: int):
        super().__init__(name="memory-sampler", daemon=True)
        self.root = root
        self.peak_rss_kib = 0
        self.peak_pss_kib = 0
        self.peak_processes = 0
        self.cpu_s: dict[int, float] = {}  # the last CPU time seen per process (short-lived ones: up to a sample less)
        self.done = threading.Event()

    def sample(self) -> None:
        """One sample of memory and CPU time."""
        pids = process_tree(self.root)
        totals = [memory_kib(pid) for pid in pids]
        self.peak_rss_kib = max(self.peak_rss_kib, sum(rss for rss, _ in totals))
        self.peak_pss_kib = max(self.peak_pss_kib, sum(pss for _, pss in totals))
        self.peak_processes = max(self.peak_processes, len(pids))
        for pid in pids:
            seconds = cpu_seconds(pid)
            if seconds is not None:
                self.cpu_s[pid] = seconds

    def run(self) -> None:
        """Sample every MEMORY_EVERY_S until `done` is set, and once more then."""
        while not self.done.is_set():
            self.sample()
            self.done.wait(MEMORY_EVERY_S)
        self.sample()

    def cpu_now(self) -> tuple[float, float]:
        """(CPU seconds of the server process, of every process under it: training workers and their starter)."""
        self.sample()
        cpu_s = dict(self.cpu_s)
        return cpu_s.get(self.root, 0.0), sum(seconds for pid, seconds in cpu_s.items() if pid != self.root)


# ---- solo reference -------------------------------------------------------------------------------------------------


def solo_trajectory(query: dict[str, str], dataset: Dataset | None = None) -> list[tuple]:
    """(step, slope mean, intercept mean, slope sd, intercept sd) per snapshot of the engine's solo run of `query`
    (on `dataset`, an upload, when given; else on the link's simulated data)."""
    scenario, problems = decode(query)
    assert not problems, problems
    (config,) = scenario.fit_configs()
    method = make_method(generate(scenario.data) if dataset is None else dataset, scenario.model, config)
    run = run_to_end(method, config.steps, RunConfig(snapshot_every=scenario.snapshot_every))
    return [(s.step, float(s.mean[0]), float(s.mean[1]), float(s.sd[0]), float(s.sd[1])) for s in run.snapshots]


def page_trajectory(csv_text: str) -> list[tuple[int, float, float, float, float]]:
    """The same tuples from the page's trajectory download (export.TRAJECTORY_COLUMNS)."""
    rows = csv.DictReader(io.StringIO(csv_text))
    return [
        (
            int(row["step"]),
            float(row["slope_mean"]),
            float(row["intercept_mean"]),
            float(row["slope_sd"]),
            float(row["intercept_sd"]),
        )
        for row in rows
    ]


def training_seconds(csv_text: str) -> float:
    """Seconds the fit spent inside its steps, from the last row of the trajectory download."""
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    return float(rows[-1]["seconds"])


# ---- driving the pages ----------------------------------------------------------------------------------------------


def open_session(browser, base_url: str, session: Session):
    """A new context and page navigating to the session's link (not waiting for the page to draw)."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.on("pageerror", lambda error: session.errors.append(f"page error: {error}"))
    page.on("websocket", lambda _: setattr(session, "connections", session.connections + 1))
    page.goto(base_url + "/?" + "&".join(f"{key}={value}" for key, value in session.query.items()), wait_until="commit")
    return page


def wait_until_drawn(page) -> None:
    """Wait for the page's first chart and Ready, then install the watcher."""
    # Attached, not visible: Playwright calls a horizontal line (no height) hidden.
    page.locator(f"{LIVE_CHART} path.js-line").first.wait_for(state="attached", timeout=180_000)
    page.locator(PROGRESS).filter(has_text="Ready").wait_for(timeout=60_000)
    page.evaluate(WATCH)


def click_run(page) -> None:
    """Click Run from inside the page (dispatched at once, no actionability wait)."""
    button = page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run", exact=True)
    button.wait_for(timeout=30_000)
    button.evaluate("(element) => element.click()")


def try_click_run(page, session: Session) -> None:
    """click_run, recording a Run button that never shows up as the session's error instead of ending the test."""
    try:
        click_run(page)
    except PlaywrightTimeout:
        session.errors.append("the Run button did not show within 30 s")


def wait_until_started(page, timeout_s: float) -> bool:
    """Wait until the progress bar leaves Ready (the job is queued or running); False if it never does."""
    try:
        page.locator(PROGRESS).filter(has_not_text="Ready").wait_for(timeout=timeout_s * 1000)
    except PlaywrightTimeout:
        return False
    return True


def download_trajectory(page) -> str:
    """The page's trajectory CSV, through its download button (in the Share and export expander)."""
    page.locator('[data-testid="stExpander"] summary').filter(has_text="Share and export").click()
    button = page.get_by_role("button", name="Download trajectory (CSV)")
    button.wait_for(timeout=30_000)
    # Enabled once the page's last run (started when the fit ended) has drawn; the locator is resolved afresh on each
    # check, as the page may replace the button's element. Clicked from inside the page, so a layout shift from that
    # run's charts cannot move the button from under a pointer click.
    expect(button).to_be_enabled(timeout=60_000)
    try:
        with page.expect_download(timeout=60_000) as download:
            button.evaluate("(element) => element.click()")
    except PlaywrightTimeout:
        shown = page.locator('[data-testid="stDownloadButtonError"]').all_inner_texts()
        raise RuntimeError(f"no download within 60 s; the button shows: {shown or 'no error'}") from None
    failure = download.value.failure()
    if failure is not None:
        status = page.request.get(download.value.url).status
        raise RuntimeError(f"download {failure}: {download.value.url} answers HTTP {status} now")
    return Path(download.value.path()).read_text()


def record_progress(
    session: Session, states_s: dict[str, float], updates_s: list[tuple[float, int]], queue: list[int], steps: int
) -> None:
    """What a page showed, in seconds: how it ended, its queue places, its speed and its chart-update intervals."""
    session.finished = "Finished" in states_s and "Stopped" not in states_s
    session.queue_positions = sorted(set(queue))
    running_at, finished_at = states_s.get("Running"), states_s.get("Finished")
    if running_at is not None and finished_at is not None and finished_at > running_at:
        session.steps_per_second = steps / (finished_at - running_at)
        # Chart updates while training: from the first that shows a trained step to the finished one.
        times = [moment for moment, step in updates_s if step > 0]
        session.update_intervals_s = [later - earlier for earlier, later in itertools.pairwise(times)]


def collect(page, session: Session, steps: int) -> None:
    """Read what the page recorded and showed into `session`."""
    record = page.evaluate("window.__load")  # in page time (ms)
    states_s = {state: moment / 1000 for state, moment in record["states"].items()}
    updates_s = [(moment / 1000, step) for moment, step in zip(record["updates"], record["steps"], strict=True)]
    record_progress(session, states_s, updates_s, record["queue"], steps)
    for element in page.locator(ERROR_ELEMENTS).all():
        session.errors.append(f"on page: {element.inner_text()[:200]}")
    table = page.locator('[data-testid="stMain"] [data-testid="stTable"]')
    if table.count():
        session.shown_slope_mean = table.first.locator("tbody tr").first.locator("td").nth(2).inner_text()


def drive_browsers(
    base_url: str, plan: list[Session], steps: int, timeout_s: float, sampler: MemorySampler
) -> dict[str, Any]:
    """Open a Chromium page per session, click Run in each, wait for the ends, download; return the phases' times."""
    times: dict[str, Any] = {"started": time.monotonic()}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + UNTHROTTLED_ARGS)
        try:
            pages = [open_session(browser, base_url, session) for session in plan]  # all load at once
            for page in pages:
                wait_until_drawn(page)
            times["run_clicked"] = time.monotonic()
            times["cpu_at_run"] = [sampler.cpu_now()]
            for session, page in zip(plan, pages, strict=True):
                try_click_run(page, session)
            for session, page in zip(plan, pages, strict=True):
                # A click that lands while the page's first run is still drawing can be lost: click again, once,
                # only if the page still shows Ready (a second click on a started job would restart it).
                if not wait_until_started(page, 30.0):
                    session.errors.append("Run click was not taken within 30 s; clicked again")
                    try_click_run(page, session)
            deadline = times["run_clicked"] + timeout_s
            pending = list(range(len(plan)))
            while pending and time.monotonic() < deadline:
                time.sleep(0.5)
                pending = [
                    i
                    for i in pending
                    if not pages[i].evaluate("'Finished' in window.__load.states || 'Stopped' in window.__load.states")
                ]
            times["all_done"] = time.monotonic()
            times["cpu_at_done"] = [sampler.cpu_now()]
            for session, page in zip(plan, pages, strict=True):
                collect(page, session, steps)
                if not session.finished:
                    shown = page.locator(f'{PROGRESS}, [data-testid="stMain"] [data-testid="stAlertContentInfo"]')
                    texts = " | ".join(text[:160] for text in shown.all_inner_texts())
                    ending = " in time" if session.index in pending else ""
                    session.errors.append(f"did not finish{ending}; the page shows: {texts}")
                    continue
                try:
                    compare_with_solo(session, download_trajectory(page), steps)
                except Exception as error:  # a failed download is reported as the session's error
                    session.errors.append(f"download failed: {error}")
        finally:
            browser.close()
    return times


def matches_solo(page_rows: list[tuple], solo_rows: list[tuple]) -> bool:
    """Whether a page's trajectory is the solo run's: the same rows, or past jobs.MAX_SNAPSHOTS an even thinning.

    A thinned trajectory keeps the first and the last snapshot, and every row it keeps is the solo run's at that step.
    """
    if len(solo_rows) <= jobs.MAX_SNAPSHOTS:
        return page_rows == solo_rows
    solo_at_step = {row[0]: row for row in solo_rows}
    steps = [row[0] for row in page_rows]
    return (
        len(page_rows) <= jobs.MAX_SNAPSHOTS + 1  # the kept snapshots and the latest
        and page_rows[0] == solo_rows[0]
        and page_rows[-1] == solo_rows[-1]
        and steps == sorted(set(steps))
        and all(solo_at_step.get(row[0]) == row for row in page_rows)
    )


def compare_with_solo(session: Session, downloaded: str, steps: int, dataset: Dataset | None = None) -> None:
    """Record whether the page's trajectory download equals the solo run (on `dataset`, an upload, when given), and
    the worker's training speed."""
    session.training_steps_per_second = steps / training_seconds(downloaded)
    session.equal_to_solo = matches_solo(page_trajectory(downloaded), solo_trajectory(session.query, dataset))


def collect_record(record: PageRecord, session: Session, steps: int) -> None:
    """Read what a websocket session's messages showed into `session` (as `collect` reads a page)."""
    record_progress(session, record.states, record.updates, record.queue, steps)
    session.connections = record.connections
    session.errors.extend(record.errors)


Client = TypeVar("Client", bound=ProtocolSession)  # the websocket session each driven page is


async def drive_protocol_sessions(
    clients: list[Client],
    plan: list[Session],
    steps: int,
    timeout_s: float,
    samplers: list[MemorySampler],
    fetch: Callable[[Client, Session], None],
    prepare: Callable[[dict[str, Any]], Awaitable[list[str]]] | None = None,
) -> dict[str, Any]:
    """The browserless driver: every client connects at once and waits for its first page run; `prepare` (if given)
    readies each one (a problem it returns is that session's error, and the session sits out); the ready ones press
    Run and train to the end, and each finished one's trajectory is fetched and checked by `fetch` (run in a thread).
    `prepare` gets the times dict to add its own figures to. Returns the phases' times (time.monotonic) and, per
    sampler, its (server, under it) CPU seconds at Run and at the end."""
    times: dict[str, Any] = {"started": time.monotonic()}
    ready = [True] * len(clients)
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:  # all connect at once, as pages that load together
            await stack.enter_async_context(client.connected())
        await asyncio.wait_for(asyncio.gather(*(client.first_run_done.wait() for client in clients)), 180.0)
        if prepare is not None:
            problems = await prepare(times)
            for session, problem in zip(plan, problems, strict=True):
                if problem:
                    session.errors.append(problem)
            ready = [not problem for problem in problems]
        active = [client for client, ok in zip(clients, ready, strict=True) if ok]
        times["run_clicked"] = time.monotonic()
        times["cpu_at_run"] = [sampler.cpu_now() for sampler in samplers]
        for client in active:
            await client.click_run()
        deadline = times["run_clicked"] + timeout_s
        while time.monotonic() < deadline and not all(c.record.state in ("Finished", "Stopped") for c in active):
            await asyncio.sleep(0.05)
        times["all_done"] = time.monotonic()
        times["cpu_at_done"] = [sampler.cpu_now() for sampler in samplers]
        download_deadline = time.monotonic() + 60.0  # the page run that follows a fit's end opens its download
        while time.monotonic() < download_deadline and any(
            client.record.state == "Finished" and not client.record.download_url for client in active
        ):
            await asyncio.sleep(0.05)
    for client, session, ok in zip(clients, plan, ready, strict=True):
        if not ok:
            continue
        collect_record(client.record, session, steps)
        if not session.finished:
            session.errors.append(f"did not finish in time; the page shows: {client.record.state or 'nothing'}")
        elif not client.record.download_url:
            session.errors.append("download failed: the trajectory download did not open within 60 s")
        else:
            try:
                await asyncio.to_thread(fetch, client, session)
            except Exception as error:  # a failed download is reported as the session's error
                session.errors.append(f"download failed: {error}")
    return times


async def drive_websocket_sessions(
    base_url: str, plan: list[Session], steps: int, timeout_s: float, sampler: MemorySampler
) -> dict[str, Any]:
    """drive_protocol_sessions against one server: one websocket session per plan entry, each pressing Run and
    training to the end; its download must equal the solo run of its link."""

    def fetch(client: ProtocolSession, session: Session) -> None:
        """Download the trajectory straight from the server and compare it with the solo run."""
        with urllib.request.urlopen(base_url + client.record.download_url, timeout=60) as response:
            compare_with_solo(session, response.read().decode(), steps)

    clients = [ProtocolSession(base_url, session.query) for session in plan]
    return await drive_protocol_sessions(clients, plan, steps, timeout_s, [sampler], fetch)


def plan_sessions(sessions: int, method: str, steps: int) -> list[Session]:
    """One session per fit seed 0, 1, ...: the same method and steps at full speed (v=0), each with its own link."""
    return [Session(i, {"m": method, "t": str(steps), "fs": str(i), "v": "0"}) for i in range(sessions)]


def session_totals(plan: list[Session]) -> dict[str, Any]:
    """How the sessions ended, summed: finished, errors (and each one's message), downloads equal to the solo run."""
    return {
        "finished": sum(session.finished for session in plan),
        "errors": sum(len(session.errors) for session in plan),
        "error_messages": [f"session {s.index}: {e}" for s in plan for e in s.errors],
        "equal_to_solo": sum(session.equal_to_solo for session in plan),
    }


def print_report(report: dict, table_text: str, json_path: Path | None) -> None:
    """Print the table and every session's error, and write the full report as JSON to `json_path` when given."""
    print(table_text)
    for message in report["error_messages"]:
        print("error:", message)
    if json_path:
        json_path.write_text(json.dumps(report, indent=2) + "\n")


def run_load_test(
    sessions: int,
    steps: int,
    method: str,
    max_running_jobs: int | None,
    timeout_s: float,
    driver: str = "browser",
) -> dict:
    """Drive `sessions` concurrent sessions to the end of their fits with `driver`; return the figures as a dict."""
    if driver not in DRIVERS:
        raise ValueError(f"driver must be one of {DRIVERS}, not {driver!r}")
    cores = jobs.usable_cores()
    cap = max_running_jobs or cores
    environment = {"BAYESDEMO_MAX_RUNNING_JOBS": str(cap)}
    plan = plan_sessions(sessions, method, steps)
    log_path = Path(tempfile.mkdtemp(prefix="bayesdemo-load-")) / "server.log"
    with streamlit_server(log_path, environment) as (base_url, server_pid):
        sampler = MemorySampler(server_pid)
        sampler.start()
        try:
            if driver == "browser":
                times = drive_browsers(base_url, plan, steps, timeout_s, sampler)
            else:
                times = asyncio.run(drive_websocket_sessions(base_url, plan, steps, timeout_s, sampler))
        finally:
            sampler.done.set()
            sampler.join()
    opened_s = times["run_clicked"] - times["started"]
    all_done_s = times["all_done"] - times["run_clicked"]
    ((server_at_run, others_at_run),), ((server_at_done, others_at_done),) = times["cpu_at_run"], times["cpu_at_done"]
    intervals = [interval for session in plan for interval in session.update_intervals_s]
    rates = [session.steps_per_second for session in plan if np.isfinite(session.steps_per_second)]
    training = [s.training_steps_per_second for s in plan if np.isfinite(s.training_steps_per_second)]
    return {
        "driver": driver,
        "sessions": sessions,
        "steps_per_fit": steps,
        "method": method,
        "cores": cores,
        "job_cap": cap,
        "all_finished": all(session.finished for session in plan),
        **session_totals(plan),
        "all_equal_to_solo": all(session.equal_to_solo for session in plan),
        "chart_update_interval_median_s": statistics.median(intervals) if intervals else None,
        "chart_update_interval_worst_s": max(intervals) if intervals else None,
        "chart_updates_seen": len(intervals) + sum(1 for s in plan if s.update_intervals_s),
        "steps_per_second_per_session_median": statistics.median(rates) if rates else None,
        "steps_per_second_per_session_min": min(rates) if rates else None,
        "steps_per_second_per_session_max": max(rates) if rates else None,
        "sessions_seen_running": len(rates),  # a fit that trains between two polls of a queued page is never seen
        "training_steps_per_second_per_session_median": statistics.median(training) if training else None,
        "queue_positions_seen": sorted({position for session in plan for position in session.queue_positions}),
        "sessions_that_queued": sum(bool(session.queue_positions) for session in plan),
        "pages_that_reconnected": sum(session.connections > 1 for session in plan),
        "server_peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1),
        "server_peak_pss_mib": round(sampler.peak_pss_kib / 1024, 1),
        "server_peak_processes": sampler.peak_processes,
        "seconds_to_open_all_pages": round(opened_s, 1),
        "seconds_from_run_to_all_finished": round(all_done_s, 1),
        # From Run to all finished: CPU cores the server process used on average, and the training processes.
        "server_process_cores_while_training": round((server_at_done - server_at_run) / all_done_s, 2),
        "training_processes_cores_while_training": round((others_at_done - others_at_run) / all_done_s, 2),
        "load_average_after": os.getloadavg(),
        "server_log": str(log_path),
        "per_session": [asdict(session) for session in plan],
    }


def table(report: dict) -> str:
    """The headline figures as a two-column text table."""

    def number(value, digits: int = 3) -> str:
        return "–" if value is None else f"{value:.{digits}g}"

    rate_median, rate_min, rate_max = (
        report[f"steps_per_second_per_session_{name}"] for name in ("median", "min", "max")
    )
    rows = [
        (
            "sessions (concurrent)",
            f"{report['sessions']} × {report['method']} {report['steps_per_fit']} steps ({report['driver']} driver)",
        ),
        ("job cap (cores)", f"{report['job_cap']} ({report['cores']} cores)"),
        ("all finished", f"{report['all_finished']} ({report['finished']}/{report['sessions']})"),
        ("errors", str(report["errors"])),
        ("pages that lost their connection and came back", str(report["pages_that_reconnected"])),
        ("equal to solo run", f"{report['all_equal_to_solo']} ({report['equal_to_solo']}/{report['sessions']})"),
        ("chart update interval, median", f"{number(report['chart_update_interval_median_s'])} s"),
        ("chart update interval, worst", f"{number(report['chart_update_interval_worst_s'])} s"),
        (
            "steps/s per session, Running to Finished on the page (median, min-max)",
            f"{number(rate_median, 4)} ({number(rate_min, 4)}-{number(rate_max, 4)}; "
            f"{report['sessions_seen_running']} pages saw their fit run)",
        ),
        (
            "training steps/s per session (in the worker)",
            f"{number(report['training_steps_per_second_per_session_median'], 4)} (median)",
        ),
        (
            "queue positions seen",
            f"{report['queue_positions_seen'] or 'none'} ({report['sessions_that_queued']} sessions queued)",
        ),
        (
            "server peak memory, sum RSS / PSS",
            f"{report['server_peak_rss_mib']:.0f} / {report['server_peak_pss_mib']:.0f} MiB "
            f"({report['server_peak_processes']} processes)",
        ),
        ("run to all finished", f"{report['seconds_from_run_to_all_finished']} s"),
        (
            "CPU cores used meanwhile: server process / training processes",
            f"{report['server_process_cores_while_training']} / {report['training_processes_cores_while_training']}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    """Parse arguments, run the load test, print the table (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=20, help="concurrent browser sessions (default 20)")
    parser.add_argument("--steps", type=int, default=2000, help="steps of each session's fit (default 2000)")
    parser.add_argument("--method", default="bbb", help="fit method of every session (default bbb)")
    parser.add_argument("--max-running-jobs", type=int, default=None, help="job cap (default: the core count)")
    parser.add_argument(
        "--driver",
        choices=DRIVERS,
        default="browser",
        help="browser: headless Chromium pages (default); websocket: the page's protocol without drawing",
    )
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up waiting after this long")
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    arguments = parser.parse_args()
    report = run_load_test(
        arguments.sessions,
        arguments.steps,
        arguments.method,
        arguments.max_running_jobs,
        arguments.timeout_s,
        arguments.driver,
    )
    print_report(report, table(report), arguments.json)
    sys.exit(0 if report["all_finished"] and report["errors"] == 0 and report["all_equal_to_solo"] else 1)


if __name__ == "__main__":
    main()
