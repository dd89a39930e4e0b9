"""Hostile classroom benchmark: one session tries the worst settings the page allows while other sessions train.

Run: `python bench/hostile.py` (2 default sessions of a 2,000-step Bayes by Backprop fit; --sessions, --steps,
--training-limit-s, --json FILE). It starts `streamlit run app.py` (bench/server.py) and, on it:

1. the default sessions alone (bench/load_test.py's websocket driver, bench/ws_session.py): their time from Run to
   all finished;
2. the same default sessions again while one hostile session opens each link of HOSTILE_LINKS one after another
   (over the same websocket protocol, as a student pasting links): each page's first run, then Run when the page
   offers it, until the fit ends or the server's training limit (BAYESDEMO_MAX_TRAINING_S, set to
   --training-limit-s) stops it.

It reports the server's peak memory (summed RSS over the server and every process under it, bench/load_test.py's
sampler, over both phases), every exception a page showed, whether each refused link said why and what to lower,
whether the default sessions finished, matched their solo runs and took at most twice their time alone.

The explore tabs and the file uploader are widgets the websocket driver does not operate, so the refusals that need
them (the gradient-noise tab's button, CSV uploads) are checked in-process with Streamlit's AppTest on the same page
(`apptest_refusals`): those run in this process, not the server, and their memory is not in the server's figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayesdemo.data import MAX_CSV_BYTES  # noqa: E402
from bench.load_test import MemorySampler, drive_websocket_sessions, plan_sessions  # noqa: E402
from bench.server import streamlit_server  # noqa: E402
from bench.ws_session import ProtocolSession  # noqa: E402

# The largest values a link may carry (bayesdemo/share.py, bayesdemo/data.py, bayesdemo/methods): each is refused with
# a reason or runs within the server's limits. The markup link puts Markdown link and image syntax where the method
# name goes; the page must show it as text.
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
GRADIENT_NOISE_LINK = {"n": "1000000", "k": "1024"}  # then the Gradient noise tab's button
HUGE_Y_CSV = b"x,y\n0,1e8\n1,-1e8\n2,1e8\n"  # three rows, y = +-1e8
RSS_BOUND_MIB = 6 * 1024  # the server and its workers: 2 running fits at 1 GiB budget each (x2 headroom) plus pages
SLOWDOWN_BOUND = 2.0  # default sessions under the hostile one: at most twice their time alone
PAGE_RUN_TIMEOUT_S = 300.0  # a first page run on a busy machine (generating 1,000,000 points, drawing the figures)


def says_what_to_lower(text: str) -> bool:
    """Whether a refusal names a setting to lower (every budget refusal ends "lower ..." / "Lower ...")."""
    return "lower" in text.lower()


def shows_markup_as_text(text: str) -> bool:
    """Whether a message quoting MARKUP_METHOD escapes its link and image syntax (no bare `](` or `![`)."""
    return "](" not in text and "![" not in text


async def hostile_link(base_url: str, query: dict[str, str], limit_s: float, running: asyncio.Event) -> dict:
    """Open one link, press Run if the page offers it (then set `running`), wait for the fit's end; what it showed."""
    client = ProtocolSession(base_url, query)
    started = time.monotonic()
    async with client.connected():
        await asyncio.wait_for(client.first_run_done.wait(), PAGE_RUN_TIMEOUT_S)
        ran = bool(client.record.run_button_id) and not client.record.run_disabled
        if ran:
            await client.click_run()
            running.set()
            deadline = time.monotonic() + limit_s + PAGE_RUN_TIMEOUT_S
            while time.monotonic() < deadline and client.record.state not in ("Finished", "Stopped"):
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the page run after the end draws its messages
    record = client.record
    return {
        "query": query,
        "ran": ran,
        "ended": record.state,
        "seconds": round(time.monotonic() - started, 1),
        "exceptions": [error for error in record.errors if not error.startswith("error box:")],
        "alerts": [f"{kind}: {text[:300]}" for kind, text in record.alerts],
    }


async def hostile_session(base_url: str, limit_s: float, running: asyncio.Event) -> list[dict]:
    """Every hostile link, one after another; `running` is set once the first hostile fit starts."""
    pages = [await hostile_link(base_url, query, limit_s, running) for _, query in HOSTILE_LINKS]
    running.set()
    return pages


def judge_link(label: str, page: dict) -> list[str]:
    """Problems with what one hostile link showed: an exception, a refusal without a reason, unescaped markup."""
    problems = [f"{label}: {error}" for error in page["exceptions"]]
    refusals = [text for text in page["alerts"] if text.startswith("error:")]
    if not page["ran"] and not any(says_what_to_lower(text) for text in refusals):
        problems.append(f"{label}: refused without saying what to lower: {page['alerts']}")
    if page["query"].get("m") == MARKUP_METHOD and not all(shows_markup_as_text(text) for text in page["alerts"]):
        problems.append(f"{label}: link markup shown as markup: {page['alerts']}")
    return problems


def apptest_refusals(timeout_s: float = 120.0) -> list[dict]:
    """The refusals behind explore buttons and uploads, through AppTest: (what, messages shown, problems) per case."""
    from streamlit.testing.v1 import AppTest

    from bayesdemo.ui_explore import TAB_KEY

    def opened(params: dict[str, str]) -> AppTest:
        page = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout_s)
        page.query_params.update(params)
        page.run()
        return page

    def shown(page: AppTest) -> list[str]:
        return [f"{kind}: {box.value}" for kind in ("error", "warning") for box in getattr(page, kind)]

    cases = []
    page = opened(GRADIENT_NOISE_LINK)
    page.session_state[TAB_KEY] = "Gradient noise"
    page.run()
    button = page.button(key="explore_gradient_run")
    if not button.disabled:  # a browser cannot press a disabled button: a refused one stays as it is
        button.click().run()
    messages = shown(page)
    problems = [str(error.value)[:300] for error in page.exception]
    if not button.disabled or not any(says_what_to_lower(text) for text in messages):
        problems.append(f"the gradient-noise button was not refused with a reason: {messages}")
    what = "gradient noise at 1,024 samples x 1,000,000 points"
    cases.append({"what": what, "shown": messages, "problems": problems})
    for what, name, content, refused in (
        ("3-row CSV with y = 1e8", "huge.csv", HUGE_Y_CSV, False),
        (f"CSV of {MAX_CSV_BYTES + 1:,} bytes", "big.csv", b"x,y\n" + b"1" * (MAX_CSV_BYTES - 3), True),
    ):
        page = opened({})
        page.file_uploader(key="upload").set_value((name, content, "text/csv")).run()
        if not refused and not page.button(key="run").disabled:
            page.button(key="run").click().run()  # the fit starts; its figures draw at least once
            page.run()
        job = page.session_state.get("job")
        if job is not None:
            job.stop()
            job.join(10.0)
        messages = shown(page)
        problems = [str(error.value)[:300] for error in page.exception]
        if refused and not any("CSV upload" in text and "MB" in text for text in messages):
            problems.append(f"the oversized CSV was not refused with its limit: {messages}")
        cases.append({"what": what, "shown": messages, "problems": problems})
    return cases


async def both_phases(base_url: str, sessions: int, steps: int, limit_s: float, sampler) -> dict:
    """The default sessions alone, then again beside the hostile session; their times and what each page showed."""
    # A short untimed fit first: the server's first fit starts its worker pool and imports (not a cost of the class).
    await drive_websocket_sessions(base_url, plan_sessions(1, "bbb", 50), 50, PAGE_RUN_TIMEOUT_S, sampler)
    alone = plan_sessions(sessions, "bbb", steps)
    times_alone = await drive_websocket_sessions(base_url, alone, steps, PAGE_RUN_TIMEOUT_S, sampler)
    loaded = plan_sessions(sessions, "bbb", steps)
    running = asyncio.Event()
    hostile = asyncio.get_running_loop().create_task(hostile_session(base_url, limit_s, running))
    await running.wait()  # the class presses Run while the hostile session's first allowed fit trains
    times_loaded = await drive_websocket_sessions(base_url, loaded, steps, PAGE_RUN_TIMEOUT_S + limit_s, sampler)
    pages = await hostile
    return {"alone": (alone, times_alone), "loaded": (loaded, times_loaded), "hostile": pages}


def run_hostile(sessions: int, steps: int, training_limit_s: float, check_uploads: bool = True) -> dict:
    """Both phases on one server (job cap: the core count), then the AppTest cases; the figures as a dict."""
    environment = {"BAYESDEMO_MAX_TRAINING_S": f"{training_limit_s:g}"}
    log_path = Path(tempfile.mkdtemp(prefix="bayesdemo-hostile-")) / "server.log"
    with streamlit_server(log_path, environment) as (base_url, server_pid):
        sampler = MemorySampler(server_pid)
        sampler.start()
        try:
            phases = asyncio.run(both_phases(base_url, sessions, steps, training_limit_s, sampler))
        finally:
            sampler.done.set()
            sampler.join()
    started = time.monotonic()
    cases = apptest_refusals() if check_uploads else []
    apptest_s = time.monotonic() - started
    (alone, times_alone), (loaded, times_loaded) = phases["alone"], phases["loaded"]
    alone_s = times_alone["all_done"] - times_alone["run_clicked"]
    loaded_s = times_loaded["all_done"] - times_loaded["run_clicked"]
    pages = [{"what": label, **page} for (label, _), page in zip(HOSTILE_LINKS, phases["hostile"], strict=True)]
    problems = [problem for page in pages for problem in judge_link(page["what"], page)]
    problems += [f"{case['what']}: {problem}" for case in cases for problem in case["problems"]]
    default_errors = [f"session {s.index}: {e}" for plan in (alone, loaded) for s in plan for e in s.errors]
    return {
        "sessions": sessions,
        "steps_per_fit": steps,
        "training_limit_s": training_limit_s,
        "server_peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1),
        "server_peak_pss_mib": round(sampler.peak_pss_kib / 1024, 1),
        "server_peak_processes": sampler.peak_processes,
        "rss_bound_mib": RSS_BOUND_MIB,
        "default_seconds_alone": round(alone_s, 1),
        "default_seconds_beside_hostile": round(loaded_s, 1),
        "slowdown": round(loaded_s / alone_s, 2),
        "default_all_finished": all(s.finished for plan in (alone, loaded) for s in plan),
        "default_all_equal_to_solo": all(s.equal_to_solo for plan in (alone, loaded) for s in plan),
        "default_errors": default_errors,
        "hostile_pages": pages,
        "apptest_cases": cases,
        "apptest_seconds": round(apptest_s, 1),
        "problems": problems,
        "load_average_after": os.getloadavg(),
        "server_log": str(log_path),
    }


def passed(report: dict, slowdown_bound: float = SLOWDOWN_BOUND) -> bool:
    """Whether the run met every bound: memory, no problem on any page, the default fits finished and on time."""
    return (
        report["server_peak_rss_mib"] < report["rss_bound_mib"]
        and not report["problems"]
        and not report["default_errors"]
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
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    arguments = parser.parse_args()
    report = run_hostile(arguments.sessions, arguments.steps, arguments.training_limit_s)
    for page in report["hostile_pages"]:
        ended = f"ran, {page['ended'] or 'no end seen'}" if page["ran"] else "refused"
        print(f"link: {page['what']}: {ended} ({page['seconds']} s)")
        for alert in page["alerts"]:
            print(f"    {alert[:160]}")
    for case in report["apptest_cases"]:
        print(f"AppTest: {case['what']}")
        for message in case["shown"]:
            print(f"    {message[:160]}")
    for key in (
        "server_peak_rss_mib",
        "server_peak_pss_mib",
        "server_peak_processes",
        "rss_bound_mib",
        "default_seconds_alone",
        "default_seconds_beside_hostile",
        "slowdown",
        "default_all_finished",
        "default_all_equal_to_solo",
        "load_average_after",
    ):
        print(f"{key}: {report[key]}")
    for problem in report["problems"] + report["default_errors"]:
        print("problem:", problem)
    if arguments.json:
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")
    sys.exit(0 if passed(report) else 1)


if __name__ == "__main__":
    main()
