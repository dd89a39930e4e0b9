"""First view: how long a freshly opened page takes to draw every chart, and to show training steps once Run is pressed.

Run: `python bench/first_chart.py` (5 runs; --runs, --wait-s, --bundles, --before REF, --json FILE). Each run starts
its own `streamlit run app.py` and opens two fresh headless Chromium pages at 1280x1800 (tall enough that the six
charts of the main area are all on screen: live charts draw only on screen). The first page is cold (the first after
the server started: the page's modules load then, and torch in the background); the second, opened once the server
and its workers are idle (under a fifth of a core over 1 s: its warm-up done), is warm. For each it times, in the
page's own clock from navigation start, the exact posterior's metrics, the first chart drawn and every chart drawn.
On the warm page (a 100,000-step Bayes by Backprop scenario), shrunk to 1280x800, it then waits `--wait-s` (0: press
Run at once, as a teacher who just opened the page), presses Run, and times the first redraw of the slope-mean chart
whose fit line has more than one point, then reads the steps per second the page shows over 3 s of training while it
draws.

`--bundles basic full` measures the plotly.js bundle the page ships (plotly-basic.min.js: bar, pie and scatter
traces) and the installed plotly package's full plotly.min.js (copied beside it, served in its place to the
browser), alternating which comes first from one run to the next; each run records the load average.

`--before REF` measures instead the page as it was at git commit REF ("before": that commit's whole tree) against the
working tree ("after": its files that git tracks or would track), each copied once into a folder of its own and run
from there, alternating which comes first from one run to the next.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plotly
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chart_cpu import copy_tree  # noqa: E402
from bench.server import CHROMIUM, CHROMIUM_ARGS, LIVE_CHART, PROGRESS, VIEWPORT, streamlit_server  # noqa: E402
from bench.ws_session import STEP  # noqa: E402

WEB_DIR = ROOT / "bayesdemo" / "web"
SHIPPED_BUNDLE = "plotly-basic.min.js"  # the bundle bayesdemo/web/live_chart.js loads
FULL_BUNDLE = "plotly.min.js"  # the installed plotly package's, copied into WEB_DIR to be served in its place
BUNDLES = ("basic", "full")
TREES = ("before", "after")  # with --before: the page at a git commit, and the working tree
PAGE_VIEWPORT = {"width": 1280, "height": 1800}  # every chart of the main area on screen
MAIN_CHARTS = (
    "chart_mean_slope",
    "chart_sd_slope",
    "chart_mean_intercept",
    "chart_sd_intercept",
    "chart_loss",
    "chart_data",
)
# Records, in page time from navigation start, when the metrics and each main chart are first drawn (plotly's SVG).
WATCH_PAGE_OPEN = """
(() => {
  const marks = (window.__pageOpen = {charts: {}});
  const charts = CHARTS;
  const look = () => {
    const now = performance.now();
    if (marks.metrics === undefined && document.querySelector('[data-testid="stMain"] [data-testid="stMetric"]')) {
      marks.metrics = now;
    }
    for (const key of charts) {
      const drawn = document.querySelector(`[data-testid="stMain"] .st-key-${key} .main-svg`);
      if (marks.charts[key] === undefined && drawn) marks.charts[key] = now;
    }
    if (Object.keys(marks.charts).length < charts.length) requestAnimationFrame(look); else marks.done = now;
  };
  look();
})();
""".replace("CHARTS", json.dumps(list(MAIN_CHARTS)))
LONG_RUN = "/?t=1000000&v=0"  # far longer than a run here at full speed, so the fit is still training when measured
# Records, in page time, each moment the first chart gets a new trajectory, with the points of the fit's line, and
# counts the times its plot is replaced by a new one rather than updated in place.
WATCH_CHART = """
(LIVE_CHART) => {
  window.__chartUpdates = [];
  const signature = () => {
    const chart = document.querySelector(LIVE_CHART);
    if (!chart) return '';
    return Array.from(chart.querySelectorAll('path.js-line')).map(p => p.getAttribute('d')).join('|');
  };
  // Points in the fit's trajectory, the third line after the exact band and mean: none before Run, one at step 0.
  const fitPoints = () => {
    const lines = document.querySelectorAll(LIVE_CHART + ' path.js-line');
    return lines.length > 2 ? (lines[2].getAttribute('d') || '').split('L').length : 0;
  };
  window.__chartFitPoints = [];
  let last = signature();
  const plotElement = () => document.querySelector(LIVE_CHART + ' .js-plotly-plot');
  let plot = plotElement();
  window.__chartRemounts = 0;
  window.__chartSignature = signature;
  window.__chartWatcher = setInterval(() => {
    const current = plotElement();
    if (current && current !== plot) { window.__chartRemounts++; plot = current; }
    const now = signature();
    if (now !== last && now !== '') {
      window.__chartUpdates.push(performance.now());
      window.__chartFitPoints.push(fitPoints());
      last = now;
    }
  }, 10);
}
"""
# Seconds from the click recorded by click_and_time("__runClickedAt") to the first redraw showing training steps.
FIRST_TRAINED_CHART_S = (
    "(window.__chartUpdates[window.__chartFitPoints.findIndex(points => points > 1)] - window.__runClickedAt) / 1000"
)


def click_and_time(button, mark: str) -> None:
    """Click `button` from inside the page, recording the page time in window[mark].

    A JavaScript click is dispatched at once, so the latencies measured from it are the page's own (Playwright's
    actionability checks wait for animation frames, which a busy page delays by seconds on a 2-core machine).
    """
    button.wait_for(timeout=10_000)
    button.evaluate(f"(element) => {{ window.{mark} = performance.now(); element.click(); }}")


def wait_for_first_trained_chart(page, timeout_ms: int = 20_000) -> float:
    """Seconds from the Run click to the first chart redraw whose fit line has more than one point."""
    page.wait_for_function("window.__chartFitPoints.some(points => points > 1)", timeout=timeout_ms)
    return page.evaluate(FIRST_TRAINED_CHART_S)


def wait_for_progress(page, word: str, timeout_ms: int) -> None:
    """Wait until the live progress bar's text contains `word` (Running, Paused, Stopped, Finished)."""
    page.wait_for_function(f"document.querySelector('{PROGRESS}')?.innerText.includes('{word}')", timeout=timeout_ms)


def progress_text(page) -> str:
    """The text of the live progress bar."""
    return page.locator(PROGRESS).inner_text(timeout=10_000)


def step_shown(page) -> int:
    """The step count the live progress bar shows (an error when it shows none)."""
    text = progress_text(page)
    match = STEP.search(text)
    if match is None:
        raise ValueError(f"the progress bar shows no step: {text!r}")
    return int(match.group(1).replace(",", ""))


def place_full_bundle() -> None:
    """Copy the installed plotly package's full plotly.min.js into WEB_DIR (git ignores it) unless it is there."""
    source = Path(plotly.__file__).resolve().parent / "package_data" / FULL_BUNDLE
    target = WEB_DIR / FULL_BUNDLE
    if not target.is_file() or target.stat().st_size != source.stat().st_size:
        shutil.copyfile(source, target)


def serve_bundle(page, bundle: str) -> None:
    """Give `page` the shipped plotly.js bundle ("basic") or the full one in its place ("full").

    Both go through the same request interception, so neither pays for it alone.
    """

    def route(request_route) -> None:
        if bundle == "full":
            request_route.continue_(url=request_route.request.url.replace(SHIPPED_BUNDLE, FULL_BUNDLE))
        else:
            request_route.continue_()

    page.route(f"**/{SHIPPED_BUNDLE}", route)


def page_open(browser, url: str, bundle: str = "basic", timeout_ms: int = 300_000, context=None):
    """A fresh page at `url` and its first view: seconds from navigation start to the metrics, the first chart and
    every main chart drawn, and to the plotly.js bundle fetched; and from the metrics to every chart.

    In a browser context of its own (an empty cache), or with `context` a new tab of that context (its cache holds
    what an earlier page of the context fetched: Streamlit's scripts, the charts' script and plotly.js).
    """
    page = (context or browser.new_context(viewport=PAGE_VIEWPORT)).new_page()
    serve_bundle(page, bundle)
    page.add_init_script(WATCH_PAGE_OPEN)
    page.goto(url)
    page.wait_for_function("window.__pageOpen && window.__pageOpen.done !== undefined", timeout=timeout_ms)
    marks = page.evaluate("window.__pageOpen")
    fetched = page.evaluate(
        f"performance.getEntriesByType('resource').filter(e => e.name.endsWith('/{SHIPPED_BUNDLE}'))"
        ".map(e => e.responseEnd)"
    )
    return page, {
        "metrics_s": marks["metrics"] / 1000,
        "plotly_fetched_s": min(fetched) / 1000,
        "first_chart_drawn_s": min(marks["charts"].values()) / 1000,
        "all_charts_drawn_s": marks["done"] / 1000,
        # The part the plotly.js bundle weighs on: its fetch, parsing and the six first draws after the metrics.
        "charts_after_metrics_s": (marks["done"] - marks["metrics"]) / 1000,
    }


def cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process `pid` and its living descendants (Linux /proc)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        process = int(stat.parent.name)
        parents[process] = int(fields[1])
        used[process] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    tree, grown = {pid}, True
    while grown:
        children = {process for process, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(used.get(process, 0.0) for process in tree)


def wait_until_idle(pid: int, timeout_s: float = 60.0, window_s: float = 1.0, busy_share: float = 0.2) -> float:
    """Wait until server `pid` and its workers use under `busy_share` of a core over `window_s` (its warm-up done:
    torch, the forkserver); the seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < timeout_s:
        time.sleep(window_s)
        now = cpu_seconds(pid)
        if now - before < busy_share * window_s:
            break
        before = now
    return time.monotonic() - started


def place_tree(target: Path, commit: str | None) -> None:
    """Into `target`: the whole tree at git commit `commit`, or with None the working tree's tracked files."""
    target.mkdir(parents=True)
    if commit is None:
        copy_tree(target, None, ())
        return
    archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)


def measure_once(wait_s: float, log_path: Path, bundle: str = "basic", tree: Path = ROOT) -> dict[str, float]:
    """One fresh server run from `tree`: a cold and a warm page's first view with `bundle` (serve_bundle), then on the
    warm page the seconds to the first chart with training steps after Run, and the steps/s while drawing."""
    with streamlit_server(log_path, tree=tree) as (base_url, pid), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            load_before = os.getloadavg()[0]
            cold_page, cold = page_open(browser, base_url + LONG_RUN, bundle)
            cold_page.close()
            # A later page, as a class opens it: after the server's warm-up (torch, the forkserver) is done.
            settle_s = wait_until_idle(pid)
            page, warm = page_open(browser, base_url + LONG_RUN, bundle)
            # A second tab of the warm page's browser: a page opened again, its static files in the browser's cache.
            settle_s += wait_until_idle(pid)
            revisit_page, revisit = page_open(browser, base_url + LONG_RUN, bundle, context=page.context)
            revisit_page.close()
            page.set_viewport_size(VIEWPORT)  # Run is timed at the projector's 1280x800, as before
            time.sleep(wait_s)
            page.evaluate(WATCH_CHART, LIVE_CHART)
            run = page.locator('[data-testid="stSidebar"]').get_by_role("button", name="Run", exact=True)
            click_and_time(run, "__runClickedAt")
            first_chart_s = wait_for_first_trained_chart(page)
            wait_for_progress(page, "Running", 30_000)
            time.sleep(0.5)
            early, early_at = step_shown(page), time.monotonic()
            time.sleep(3.0)
            late, late_at = step_shown(page), time.monotonic()
            return {
                **{f"cold_{name}": value for name, value in cold.items()},
                **{f"warm_{name}": value for name, value in warm.items()},
                **{f"cached_{name}": value for name, value in revisit.items()},
                "page_shown_s": warm["first_chart_drawn_s"],
                "first_chart_s": first_chart_s,
                "steps_per_second_while_drawing": (late - early) / (late_at - early_at),
                "load_average": (load_before + os.getloadavg()[0]) / 2,
                "settle_s": settle_s,
            }
        finally:
            browser.close()


def spread(values: list[float]) -> dict[str, float]:
    """Min, median and max."""
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def measure(runs: int, wait_s: float, bundles: tuple[str, ...] = ("basic",), before: str | None = None) -> dict:
    """`runs` fresh-server measurements per variant, alternating which variant goes first, and their range.

    The variants are the `bundles`, or with `before` (a git commit) the page at that commit and the working tree,
    each with the shipped bundle.
    """
    if "full" in bundles:
        place_full_bundle()
    variants = TREES if before else bundles
    results: dict[str, list[dict[str, float]]] = {variant: [] for variant in variants}
    with tempfile.TemporaryDirectory(prefix="bayesdemo-first-chart-") as folder:
        trees = {variant: ROOT for variant in variants}
        if before:
            trees = {variant: Path(folder) / variant for variant in TREES}
            place_tree(trees["before"], before)
            place_tree(trees["after"], None)
        for index in range(runs):
            for variant in variants if index % 2 == 0 else variants[::-1]:
                log_path = Path(folder) / f"server-{index}-{variant}.log"
                bundle = "basic" if before else variant
                results[variant].append(measure_once(wait_s, log_path, bundle, trees[variant]))
    return {
        "runs": runs,
        "wait_s": wait_s,
        "viewport": PAGE_VIEWPORT,
        "before": before,
        "variants": {variant: summary(variant_results) for variant, variant_results in results.items()},
    }


def summary(results: list[dict[str, float]]) -> dict:
    """The range of the first chart after Run and of each page-open time over `results`, and the results."""
    first = [result["first_chart_s"] for result in results]
    return {
        "first_chart_s_min": min(first),
        "first_chart_s_median": statistics.median(first),
        "first_chart_s_max": max(first),
        "page_open": {
            name: spread([result[name] for result in results])
            for name in results[0]
            if name.startswith(("cold_", "warm_", "cached_"))
        },
        "load_average": spread([result["load_average"] for result in results]),
        "per_run": results,
    }


def main() -> None:
    """Measure, print a table per bundle, optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh servers and pages per bundle (default 5)")
    parser.add_argument("--wait-s", type=float, default=0.0, help="seconds between the page appearing and Run")
    parser.add_argument(
        "--bundles", nargs="+", choices=BUNDLES, default=["basic"], help="plotly.js bundles to alternate (basic)"
    )
    parser.add_argument("--before", help="git commit whose page to alternate with the working tree's (basic bundle)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    report = measure(args.runs, args.wait_s, tuple(args.bundles), args.before)
    for bundle, bundle_report in report["variants"].items():
        print(
            f"{bundle:>6} {'cold: metrics':>14} {'all charts':>11} {'warm: metrics':>14} {'plotly.js':>10} "
            f"{'all charts':>11} {'cached: all charts':>18} {'Run to chart':>13} {'steps/s drawing':>16} {'load':>5}"
        )
        for index, result in enumerate(bundle_report["per_run"]):
            print(
                f"{index:>6} {result['cold_metrics_s']:13.2f}s {result['cold_all_charts_drawn_s']:10.2f}s "
                f"{result['warm_metrics_s']:13.2f}s {result['warm_plotly_fetched_s']:9.2f}s "
                f"{result['warm_all_charts_drawn_s']:10.2f}s {result['cached_all_charts_drawn_s']:17.2f}s "
                f"{result['first_chart_s']:12.2f}s "
                f"{result['steps_per_second_while_drawing']:16,.0f} {result['load_average']:5.1f}"
            )
        for name, values in bundle_report["page_open"].items():
            print(
                f"{bundle}: page open to {name}: {values['min']:.2f} to {values['max']:.2f} s "
                f"(median {values['median']:.2f} s)"
            )
        print(
            f"{bundle}: first chart after Run: {bundle_report['first_chart_s_min']:.2f} to "
            f"{bundle_report['first_chart_s_max']:.2f} s (median {bundle_report['first_chart_s_median']:.2f} s) over "
            f"{args.runs} runs, Run pressed {args.wait_s:g} s after the page appeared; load average "
            f"{bundle_report['load_average']['min']:.1f} to {bundle_report['load_average']['max']:.1f}"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
