"""Hostile classroom benchmark: one session tries the worst settings the page allows while other sessions train.

Run: `python bench/hostile.py` (2 default sessions of a 2,000-step Bayes by Backprop fit; --sessions, --steps,
--training-limit-s, --json FILE; `--page-cpu [--before CHECKOUT]` measures instead what the page's runs for the
1,000,000-point links and parsing the worst CSV cost the server's CPU, see PAGE_CPU_SCRIPT). It starts
`streamlit run app.py` (bench/server.py) and, on it:

1. the default sessions alone (bench/load_test.py's websocket driver, bench/ws_session.py): their time from Run to
   all finished;
2. the hostile session, over the same websocket protocol as a browser, one request after another: each link of
   HOSTILE_LINKS (Run pressed wherever the page offers it, the fit left to its end or to the server's training limit,
   BAYESDEMO_MAX_TRAINING_S = --training-limit-s); widget extremes typed into the sidebar (2^53 + 1 into every
   whole-number field, then the largest n, samples, steps and speed with Run); a CSV one byte over the upload limit,
   then the worst CSV allowed (the most rows, as many bytes as allowed, y = +-1e8) with Run; then every explore tab on
   those data with its fields at their largest and its button pressed where the page offers it. Meanwhile the default
   sessions train again and again, one round after another, until the hostile session ends.

It reports the server's peak memory (summed RSS over the server and every process under it, bench/load_test.py's
sampler, over both phases), every exception a page showed, whether each refusal said why and what to lower (or the
field's range), whether any Markdown a link carried was shown as markup, and whether every default round finished,
matched its solo runs and took at most twice the time alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from streamlit.proto.Common_pb2 import StringArray  # noqa: E402

from bayesdemo.core.data import MAX_CSV_BYTES, MAX_POINTS  # noqa: E402
from bayesdemo.page.explore import EXPLORE_TABS  # noqa: E402
from bayesdemo.references.basis import BASIS_LABELS  # noqa: E402
from bench.load_test import MemorySampler, drive_websocket_sessions, plan_sessions  # noqa: E402
from bench.server import streamlit_server  # noqa: E402
from bench.ws_session import ProtocolSession  # noqa: E402

# The largest values a link may carry (bayesdemo/core/share.py, bayesdemo/core/data.py, bayesdemo/methods): each is
# refused with a reason or runs within the server's limits. The markup link puts Markdown link and image syntax where
# the method name goes; the page must show it as text.
MARKUP_METHOD = "![x](http://example.com/x.png)[y](http://example.com)"
HOSTILE_LINKS = (
    ("noise injection, 1,024 samples x 1,000,000 points", {"m": "noise", "k": "1024", "n": "1000000"}),
    ("default method, 1,024 samples x 1,000,000 points", {"n": "1000000", "k": "1024"}),
    (
        "1,000,000 steps on 1,000,000 points at full speed, local reparameterisation",
        {"t": "1000000", "n": "1000000", "lrp": "1", "v": "0"},
    ),
    ("slope 1,000,000, prior sd 1e-9, noise sd 0.001", {"w": "1000000", "pws": "1e-9", "s": "0.001"}),
    ("Markdown link and image syntax as the method", {"m": MARKUP_METHOD}),
)
# Every whole-number field of the sidebar: key, label on screen and a valid value to set back. 2^53 + 1 is the first
# integer a float64 cannot hold; each must be refused with the field's range.
WHOLE_NUMBER_FIELDS = (
    ("data_n", "Data points n", 100),
    ("data_seed", "Seed", 0),
    ("fit_steps", "Steps", 300),
    ("fit_samples", "Samples per step", 8),
    ("fit_batch_size", "Batch size", 0),
    ("fit_seed", "Seed", 0),
    ("snapshot_every", "Snapshot every", 10),
)
# The largest settings the sidebar allows, typed in one after another (key, widget value), then Run.
WIDGET_EXTREMES = (
    ("data_n", {"double_value": float(MAX_POINTS)}),
    ("fit_samples", {"double_value": 1024.0}),
    ("fit_steps", {"double_value": 1_000_000.0}),
    ("snapshot_every", {"double_value": 1.0}),
    ("speed", {"string_array_value": StringArray(data=["max"])}),
)
# Each explore tab's fields at their largest (key, widget value) and the button that starts its computation.
EXPLORE_EXTREMES: dict[str, tuple[tuple[tuple[str, dict], ...], str]] = {
    "Parameter space": ((), ""),
    "Sequential updating": ((), ""),
    "MCMC reference": (
        (("explore_mcmc_warmup", {"double_value": 100_000.0}), ("explore_mcmc_samples", {"double_value": 100_000.0})),
        "explore_mcmc_run",
    ),
    "Unknown noise sd": ((), "explore_noise_run"),
    "Other priors": ((), "explore_priors_run"),
    "Gradient noise": ((), "explore_gradient_run"),
    "Basis functions": (
        (
            ("explore_basis_family", {"string_value": BASIS_LABELS["rbf"]}),
            ("explore_basis_size", {"double_value": 100.0}),
            ("explore_basis_max", {"double_value": 100.0}),
        ),
        "",
    ),
    "Calibration": (
        (
            ("explore_calibration_datasets", {"double_value": 100_000.0}),
            ("explore_calibration_n", {"double_value": 100_000.0}),
            ("explore_calibration_bbb", {"bool_value": True}),
        ),
        "explore_calibration_run",
    ),
}
QUICK_LINKS = (4,)  # the CI's subset: the markup link (its page runs a fit)
QUICK_TABS = ("Gradient noise", "Calibration")  # and two explore tabs
RSS_BOUND_MIB = 6 * 1024  # the server and its workers: 2 running fits at 1 GiB budget each (x2 headroom) plus pages
SLOWDOWN_BOUND = 2.0  # default sessions under the hostile one: at most twice their time alone
CSV_ROW_BYTES = 19  # bytes per row of the worst CSV: MAX_POINTS rows of 19 bytes fit in MAX_CSV_BYTES
PAGE_RUN_TIMEOUT_S = 300.0  # a first page run on a busy machine (generating 1,000,000 points, drawing the figures)


def worst_csv(rows: int, max_bytes: int = MAX_CSV_BYTES) -> bytes:
    """A CSV of `rows` rows, each as long as `max_bytes` allows, y = +-1e8 written with many digits: with rows =
    MAX_POINTS the most a student may upload, for the parser, the exact reference and every figure."""
    width = (max_bytes - len(b"x,y\n")) // rows  # bytes per row, its newline included
    lines = [b"x,y"]
    for row in range(rows):
        x, sign = str(row % 100_000), "-" if row % 2 else ""
        digits = max(1, width - len(x) - len(sign) - len(",1.e8\n"))
        lines.append(f"{x},{sign}{1 + (row % 9973) / 9973:.{digits}f}e8".encode())
    return b"\n".join(lines) + b"\n"


@dataclass
class Step:
    """What one hostile request showed: exceptions, alert boxes, and whether it ran or was refused."""

    what: str
    query: dict[str, str] = field(default_factory=dict)
    ran: bool = False
    ended: str = ""
    seconds: float = 0.0
    exceptions: list[str] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    expect: str = ""  # "refused": a refusal with a reason is expected; "range: LABEL": the field's range is expected
    started: float = 0.0  # time.monotonic() when the request was made
    finished: float = 0.0  # and when its page settled (or its fit ended)


async def step(client: ProtocolSession, what: str, action: Callable[[], Awaitable[object]], timeout_s: float) -> Step:
    """Run `action` on the page, wait until the page settles; what it showed meanwhile."""
    record = client.record
    alerts_before, errors_before = len(record.alerts), len(record.errors)
    started, runs = time.monotonic(), record.page_runs
    await action()
    settled = await client.settle(timeout_s, after=runs)
    seconds = round(time.monotonic() - started, 1)
    print(f"hostile: {what}: {seconds} s{'' if settled else ' (did not settle)'}", file=sys.stderr, flush=True)
    return Step(
        what,
        seconds=seconds,
        started=started,
        finished=time.monotonic(),
        exceptions=[error for error in record.errors[errors_before:] if not error.startswith("error box:")],
        alerts=[f"{kind}: {text[:300]}" for kind, text in record.alerts[alerts_before:]],
    )


async def run_to_end(client: ProtocolSession, result: Step, limit_s: float, running: asyncio.Event) -> None:
    """Press Run if the page offers it, then wait for the fit's end (or the training limit); note it in `result`."""
    record = client.record
    result.ran = bool(record.run_button_id) and not record.run_disabled
    if not result.ran:
        return
    alerts_before = len(record.alerts)
    result.started = result.started or time.monotonic()
    await client.click_run()
    running.set()
    deadline = time.monotonic() + limit_s + PAGE_RUN_TIMEOUT_S
    while time.monotonic() < deadline and record.state not in ("Finished", "Stopped"):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)  # the page run after the end draws its messages
    result.ended = record.state
    result.finished = time.monotonic()
    result.alerts += [f"{kind}: {text[:300]}" for kind, text in record.alerts[alerts_before:]]


def says_what_to_lower(text: str) -> bool:
    """Whether a refusal names a setting to lower (every budget refusal ends "lower ..." / "Lower ...")."""
    return "lower" in text.lower()


def shows_markup_as_text(text: str) -> bool:
    """Whether a message quoting MARKUP_METHOD escapes its link and image syntax (no bare `](` or `![`)."""
    return "](" not in text and "![" not in text


async def hostile_link(
    base_url: str, label: str, query: dict[str, str], limit_s: float, running: asyncio.Event
) -> Step:
    """Open one link, press Run if the page offers it (then set `running`), wait for the fit's end; what it showed."""
    client = ProtocolSession(base_url, query)
    started = time.monotonic()
    async with client.connected():
        await asyncio.wait_for(client.first_run_done.wait(), PAGE_RUN_TIMEOUT_S)
        await client.settle(PAGE_RUN_TIMEOUT_S)
        record = client.record
        result = Step(label, query=query, expect="refused")
        await run_to_end(client, result, limit_s, running)
    result.seconds = round(time.monotonic() - started, 1)
    result.started, result.finished = started, time.monotonic()
    result.exceptions = [error for error in record.errors if not error.startswith("error box:")]
    result.alerts = [f"{kind}: {text[:300]}" for kind, text in record.alerts]
    return result


async def hostile_widgets(base_url: str, limit_s: float, running: asyncio.Event, quick: bool = False) -> list[Step]:
    """One page at the defaults: 2^53 + 1 typed into each whole-number field (and the field set back), then the
    largest settings the sidebar allows, one after another, and Run."""
    client = ProtocolSession(base_url, {})
    steps = []
    async with client.connected():
        await asyncio.wait_for(client.first_run_done.wait(), PAGE_RUN_TIMEOUT_S)
        await client.settle(PAGE_RUN_TIMEOUT_S)
        for key, label, valid in WHOLE_NUMBER_FIELDS[-2:] if quick else WHOLE_NUMBER_FIELDS:
            result = await step(
                client,
                f"2^53 + 1 typed into {label} ({key})",
                partial(client.set_widget, key, double_value=float(2**53 + 1)),
                PAGE_RUN_TIMEOUT_S,
            )
            result.expect = f"range: {label}"
            result.ran = not client.record.run_disabled
            steps.append(result)
            runs = client.record.page_runs
            await client.set_widget(key, double_value=float(valid))
            await client.settle(PAGE_RUN_TIMEOUT_S, after=runs)
        for key, value in () if quick else WIDGET_EXTREMES:
            steps.append(await step(client, f"{key} at its largest", partial(client.set_widget, key, **value), 60.0))
        if not quick:
            result = Step("Run at the largest settings", expect="refused")
            await run_to_end(client, result, limit_s, running)
            steps.append(result)
    return steps


async def hostile_uploads(
    base_url: str, worst: bytes, limit_s: float, running: asyncio.Event, quick: bool = False
) -> list[Step]:
    """A CSV one byte over the limit, then the worst CSV allowed and Run, then every explore tab on those data with
    its fields at their largest and its button pressed where the page offers it."""
    client = ProtocolSession(base_url, {})
    steps = []
    too_big = b"x,y\n" + b"1" * (MAX_CSV_BYTES - 3)
    rows = worst.count(b"\n") - 1
    async with client.connected():
        await asyncio.wait_for(client.first_run_done.wait(), PAGE_RUN_TIMEOUT_S)
        await client.settle(PAGE_RUN_TIMEOUT_S)
        result = await step(
            client, f"CSV of {len(too_big):,} bytes", lambda: client.upload("upload", "big.csv", too_big), 120.0
        )
        result.expect = "range: CSV upload"
        steps.append(result)
        result = await step(
            client,
            f"CSV of {rows:,} rows, {len(worst):,} bytes, y = +-1e8",
            lambda: client.upload("upload", "worst.csv", worst),
            PAGE_RUN_TIMEOUT_S,
        )
        await run_to_end(client, result, limit_s, running)
        result.expect = "refused"
        steps.append(result)
        for tab in QUICK_TABS if quick else EXPLORE_TABS:
            settings, button = EXPLORE_EXTREMES[tab]
            steps.append(await step(client, f"{tab} tab", partial(client.open_tab, tab), limit_s + 120.0))
            for key, value in settings:
                if key in client.record.widgets:
                    steps.append(
                        await step(
                            client,
                            f"{tab}: {key} at its largest",
                            partial(client.set_widget, key, **value),
                            120.0,
                        )
                    )
            if button and button in client.record.widgets:
                result = Step(f"{tab}: {button} pressed", expect="refused")
                if client.record.disabled.get(button, False):  # a browser cannot press it: the page says why
                    why = [text for text in client.record.last_texts if "Not run" in text]
                    result.alerts = [f"disabled: {text[:300]}" for text in why]
                else:
                    pressed = await step(client, result.what, partial(client.press, button), limit_s + 120.0)
                    result = Step(**{**pressed.__dict__, "ran": True})
                steps.append(result)
    return steps


async def hostile_session(
    base_url: str, worst: bytes, limit_s: float, running: asyncio.Event, quick: bool = False
) -> list[Step]:
    """Every hostile request, one after another (`quick`: QUICK_LINKS, two whole-number fields, no widget extremes,
    QUICK_TABS); `running` is set once the first hostile fit starts (or at the end)."""
    links = [HOSTILE_LINKS[index] for index in QUICK_LINKS] if quick else HOSTILE_LINKS
    results = [await hostile_link(base_url, label, query, limit_s, running) for label, query in links]
    results += await hostile_widgets(base_url, limit_s, running, quick)
    results += await hostile_uploads(base_url, worst, limit_s, running, quick)
    running.set()
    return results


def judge(page: dict) -> list[str]:
    """Problems with what one hostile request showed: an exception, a refusal without a reason or range, markup."""
    label = page["what"]
    problems = [f"{label}: {error}" for error in page["exceptions"]]
    shown = [text for text in page["alerts"] if text.startswith(("error:", "warning:", "disabled:"))]
    expect = page.get("expect", "refused")
    if expect.startswith("range: "):
        field_label = expect.removeprefix("range: ")
        if not any(field_label in text and ("between" in text or "at most" in text) for text in shown):
            problems.append(f"{label}: not refused with {field_label}'s range: {page['alerts']}")
    elif expect == "refused" and not page["ran"] and not any(says_what_to_lower(text) for text in shown):
        problems.append(f"{label}: refused without saying what to lower: {page['alerts']}")
    if page.get("query", {}).get("m") == MARKUP_METHOD and not all(shows_markup_as_text(t) for t in page["alerts"]):
        problems.append(f"{label}: link markup shown as markup: {page['alerts']}")
    return problems


def default_plan(sessions: int, steps: int, speed: str) -> list:
    """The default sessions' pages: Bayes by Backprop for `steps` at `speed` steps/s in the link ("0": full speed;
    "": no speed in the link, so the page's own default speed, as a class runs it)."""
    plan = plan_sessions(sessions, "bbb", steps)
    for session in plan:
        if speed:
            session.query["v"] = speed
        else:
            session.query.pop("v", None)
    return plan


async def default_rounds(
    base_url: str, sessions: int, steps: int, limit_s: float, sampler, done: asyncio.Event, speed: str
):
    """Rounds of the default sessions (each presses Run in fresh pages and trains to the end), one after another
    until `done` is set; each round's plan and times."""
    rounds = []
    while not done.is_set():
        plan = default_plan(sessions, steps, speed)
        times = await drive_websocket_sessions(base_url, plan, steps, PAGE_RUN_TIMEOUT_S + limit_s, sampler)
        rounds.append((plan, times))
    return rounds


async def both_phases(
    base_url: str,
    sessions: int,
    steps: int,
    worst: bytes,
    limit_s: float,
    sampler,
    quick: bool = False,
    speed: str = "0",
) -> dict:
    """The default sessions alone, then round after round beside the hostile session; what every page showed."""
    # A short untimed fit first: the server's first fit starts its worker pool and imports (not a cost of the class).
    await drive_websocket_sessions(base_url, plan_sessions(1, "bbb", 50), 50, PAGE_RUN_TIMEOUT_S, sampler)
    alone = default_plan(sessions, steps, speed)
    times_alone = await drive_websocket_sessions(base_url, alone, steps, PAGE_RUN_TIMEOUT_S, sampler)
    running, done = asyncio.Event(), asyncio.Event()
    hostile = asyncio.get_running_loop().create_task(hostile_session(base_url, worst, limit_s, running, quick))
    await running.wait()  # the class presses Run while the hostile session's first allowed fit trains
    rounds = asyncio.get_running_loop().create_task(
        default_rounds(base_url, sessions, steps, limit_s, sampler, done, speed)
    )
    try:
        pages = await hostile
    finally:
        done.set()
    return {"alone": (alone, times_alone), "rounds": await rounds, "hostile": pages}


def run_hostile(
    sessions: int, steps: int, training_limit_s: float, rows: int = MAX_POINTS, quick: bool = False, speed: str = "0"
) -> dict:
    """Both phases on one server (job cap: the core count); the figures as a dict. `quick`: the CI's subset; `speed`:
    the default sessions' steps/s in their links (see default_plan)."""
    environment = {"BAYESDEMO_MAX_TRAINING_S": f"{training_limit_s:g}"}
    log_path = Path(tempfile.mkdtemp(prefix="bayesdemo-hostile-")) / "server.log"
    started = time.monotonic()
    worst = worst_csv(rows, min(MAX_CSV_BYTES, CSV_ROW_BYTES * rows + len(b"x,y\n")))  # built before the class starts
    with streamlit_server(log_path, environment) as (base_url, server_pid):
        sampler = MemorySampler(server_pid)
        sampler.start()
        try:
            phases = asyncio.run(both_phases(base_url, sessions, steps, worst, training_limit_s, sampler, quick, speed))
        finally:
            sampler.done.set()
            sampler.join()
    alone, times_alone = phases["alone"]
    alone_s = times_alone["all_done"] - times_alone["run_clicked"]
    round_s = [times["all_done"] - times["run_clicked"] for _, times in phases["rounds"]]
    slowdowns = [seconds / alone_s for seconds in round_s]
    plans = [alone] + [plan for plan, _ in phases["rounds"]]
    pages = [page.__dict__ for page in phases["hostile"]]
    rounds = [  # each round of the default sessions and the hostile requests it overlapped
        {
            "seconds": round(times["all_done"] - times["run_clicked"], 1),
            "beside": [
                page["what"]
                for page in pages
                if page["started"] < times["all_done"] and page["finished"] > times["run_clicked"]
            ],
        }
        for _, times in phases["rounds"]
    ]
    problems = [problem for page in pages for problem in judge(page)]
    default_errors = [f"session {s.index}: {e}" for plan in plans for s in plan for e in s.errors]
    return {
        "sessions": sessions,
        "steps_per_fit": steps,
        "training_limit_s": training_limit_s,
        "csv_rows": rows,
        "server_peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1),
        "server_peak_pss_mib": round(sampler.peak_pss_kib / 1024, 1),
        "server_peak_processes": sampler.peak_processes,
        "rss_bound_mib": RSS_BOUND_MIB,
        "default_seconds_alone": round(alone_s, 1),
        "default_rounds_beside_hostile": len(round_s),
        "default_seconds_beside_hostile": [round(seconds, 1) for seconds in round_s],
        "default_rounds": rounds,
        "slowdown": round(max(slowdowns), 2) if slowdowns else float("nan"),
        "median_slowdown": round(statistics.median(slowdowns), 2) if slowdowns else float("nan"),
        "default_all_finished": all(s.finished for plan in plans for s in plan),
        "default_all_equal_to_solo": all(s.equal_to_solo for plan in plans for s in plan),
        "default_errors": default_errors,
        "hostile_pages": pages,
        "problems": problems,
        "seconds": round(time.monotonic() - started, 1),
        "load_average_after": os.getloadavg(),
        "server_log": str(log_path),
    }


# One process per checkout and round (bench/hostile.py --page-cpu): CPU of the page's script thread for the hostile
# 1,000,000-point links, through Streamlit's AppTest (no browser, no websocket), and of parsing the worst CSV.
PAGE_CPU_SCRIPT = r"""
import json, os, statistics, sys, tempfile, time
root = sys.argv[1]
sys.path.insert(0, root)
os.chdir(root)
from streamlit.testing.v1 import AppTest
log = tempfile.mktemp(prefix="bayesdemo-page-cpu-")
wrapper = "\n".join((
    "import runpy, time",
    "start = time.thread_time()",
    "try:",
    "    runpy.run_path(%r, run_name='__main__')" % os.path.join(root, "app.py"),
    "finally:",
    "    open(%r, 'a').write(str(time.thread_time() - start) + ' ')" % log,
))
def opened(query):
    page = AppTest.from_string(wrapper, default_timeout=300)
    page.query_params.update(query)
    page.run()
    assert not page.exception, [error.value for error in page.exception]
    return page
def last():
    return float(open(log).read().split()[-1])
opened({}).run()  # imports and Streamlit's first-run work, not a cost of any link
result = {}
page = opened({"n": "1000000", "k": "1024"})
result["1,000,000-point link, first page run"] = last()
later = []
for _ in range(5):
    page.run()
    later.append(last())
result["the same page, later runs (median of 5)"] = statistics.median(later)
opened({"t": "1000000", "n": "1000000", "lrp": "1", "v": "0"})
result["another session, a link with the same data, first run"] = last()
opened({"n": "1000000", "s": "0.2"})
result["a link with other data of 1,000,000 points, first run"] = last()
opened({})
result["the default link, first run"] = last()
page = opened({"n": "1000000", "k": "1024", "t": "1000000", "se": "1", "v": "0"})
page.button(key="run").click().run()
result["the largest sidebar settings, the page run of Run"] = last()
job = page.session_state["job"] if "job" in page.session_state else None
if job is not None:
    job.stop()
    job.join(10.0)
from bayesdemo.core.data import parse_csv
from bench.hostile import worst_csv
content = worst_csv(1_000_000, 19_000_004)
start = time.process_time()
parse_csv(content)
result["parsing the worst CSV allowed"] = time.process_time() - start
print(json.dumps(result))
"""


def page_cpu(trees: list[Path], rounds: int) -> dict:
    """Median CPU seconds of each PAGE_CPU_SCRIPT figure per checkout, the checkouts interleaved round by round."""
    runs: dict[str, list[dict]] = {str(tree): [] for tree in trees}
    load_before = os.getloadavg()
    for round_index in range(rounds):
        for tree in trees if round_index % 2 == 0 else trees[::-1]:
            output = subprocess.run(
                [sys.executable, "-c", PAGE_CPU_SCRIPT, str(tree)], capture_output=True, text=True, check=True
            ).stdout
            runs[str(tree)].append(json.loads(output.strip().splitlines()[-1]))
    medians = {
        tree: {key: round(statistics.median(run[key] for run in tree_runs), 3) for key in tree_runs[0]}
        for tree, tree_runs in runs.items()
    }
    after = os.getloadavg()
    return {"rounds": rounds, "medians": medians, "load_average_before": load_before, "load_average_after": after}


def passed(report: dict, slowdown_bound: float = SLOWDOWN_BOUND) -> bool:
    """Whether the run met every bound: memory, no problem on any page, every default fit finished and on time."""
    return (
        report["server_peak_rss_mib"] < report["rss_bound_mib"]
        and not report["problems"]
        and not report["default_errors"]
        and report["default_rounds_beside_hostile"] > 0
        and report["default_all_finished"]
        and report["default_all_equal_to_solo"]
        and report["slowdown"] <= slowdown_bound
    )


def main() -> None:
    """Parse arguments, run the benchmark, print the figures (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=2, help="default sessions beside the hostile one (default 2)")
    parser.add_argument("--steps", type=int, default=2000, help="steps of each default fit (default 2000)")
    parser.add_argument("--training-limit-s", type=float, default=30.0, help="the server's training limit (default 30)")
    parser.add_argument("--rows", type=int, default=MAX_POINTS, help="rows of the worst CSV (default the most allowed)")
    parser.add_argument(
        "--speed",
        default="",
        help="the default sessions' steps/s (default: none in their links, so the page's default speed, as a class "
        "runs it; 0: full speed)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    parser.add_argument(
        "--page-cpu",
        action="store_true",
        help="instead: the CPU of the page's runs for the 1,000,000-point links and of parsing the worst CSV, in "
        "AppTest (no server)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="with --page-cpu: another checkout measured too, interleaved with this one round by round",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --page-cpu: rounds (default 3)")
    arguments = parser.parse_args()
    if arguments.page_cpu:
        trees = [ROOT] + ([arguments.before.resolve()] if arguments.before else [])
        figures = page_cpu(trees, arguments.rounds)
        for tree, medians in figures["medians"].items():
            print(tree)
            for key, seconds in medians.items():
                print(f"    {key}: {seconds} s")
        print(
            f"rounds: {figures['rounds']}; load average before {figures['load_average_before']}, after "
            f"{figures['load_average_after']}"
        )
        if arguments.json:
            arguments.json.write_text(json.dumps(figures, indent=2) + "\n")
        return
    report = run_hostile(
        arguments.sessions, arguments.steps, arguments.training_limit_s, arguments.rows, speed=arguments.speed
    )
    for page in report["hostile_pages"]:
        ended = f"ran, {page['ended'] or 'no end seen'}" if page["ran"] else "refused"
        print(f"{page['what']}: {ended} ({page['seconds']} s)")
        for alert in page["alerts"][-3:]:
            print(f"    {alert[:160]}")
    for key in (
        "server_peak_rss_mib",
        "server_peak_pss_mib",
        "server_peak_processes",
        "rss_bound_mib",
        "default_seconds_alone",
        "default_rounds_beside_hostile",
        "default_seconds_beside_hostile",
        "slowdown",
        "median_slowdown",
        "default_all_finished",
        "default_all_equal_to_solo",
        "seconds",
        "load_average_after",
    ):
        print(f"{key}: {report[key]}")
    for round_ in sorted(report["default_rounds"], key=lambda r: -r["seconds"])[:5]:
        print(f"slowest rounds: {round_['seconds']} s beside {'; '.join(round_['beside']) or 'nothing'}")
    for problem in report["problems"] + report["default_errors"]:
        print("problem:", problem)
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
    sys.exit(0 if passed(report) else 1)


if __name__ == "__main__":
    main()
