"""The explore tabs in headless Chromium: the parameter space follows a live fit and the centre-x toggle, and
sequential updating steps and plays through the data with the exact numbers of the first k points.

Prints how long each step took to show; asserts only generous bounds.
"""

from __future__ import annotations

import re
import time

import pytest

from bayesdemo.core.data import generate
from bayesdemo.core.share import decode
from bayesdemo.page.explore import fmt
from bayesdemo.references.sequential import posterior_after
from bench.first_chart import progress_text, wait_for_progress
from tests.support.pages import query

pytestmark = pytest.mark.browser

LONG_RUN = {"t": "100000"}  # a run far longer than the test, so it is still training when we look at it
PANEL = '[data-testid="stMain"] [role="tabpanel"]'  # the open explore tab (the page has no other tabs)
# Its charts: live charts updated in place, or plain plotly charts where the component is not served.
CHARTS = f'{PANEL} [data-testid="stPlotlyChart"], {PANEL} .bayesdemo-chart'
# The 'd' attributes of every line in the open tab's index-th chart: changes whenever the chart is redrawn differently.
CHART_SIGNATURE = """
(index) => {
  const charts = document.querySelectorAll(`CHARTS`);
  if (charts.length <= index) return '';
  return Array.from(charts[index].querySelectorAll('path.js-line')).map(p => p.getAttribute('d')).join('|');
}
""".replace("CHARTS", CHARTS)


def signature(page, index: int = 0) -> str:
    """The open tab's index-th chart, as the shapes of its lines."""
    return page.evaluate(CHART_SIGNATURE, index)


def wait_for_change(page, before: str, index: int = 0, timeout_s: float = 15.0) -> float:
    """Wait until the open tab's index-th chart differs from `before` (and is drawn); the seconds it took."""
    started = time.monotonic()
    page.wait_for_function(
        f"(before) => {{ const now = ({CHART_SIGNATURE})({index}); return now !== '' && now !== before; }}",
        arg=before,
        timeout=timeout_s * 1000,
    )
    return time.monotonic() - started


def scroll_to_charts(page, timeout_s: float) -> None:
    """Scroll the open tab's charts on screen, as a student does: live charts draw only on screen."""
    page.locator(CHARTS).first.scroll_into_view_if_needed(timeout=timeout_s * 1000)


def panel_text(page) -> str:
    """The text of the open explore tab."""
    return page.locator(PANEL).inner_text(timeout=10_000)


def points_seen(page) -> int:
    """The number of data points the sequential view says it has used."""
    match = re.search(r"Points seen: (\d+) of", panel_text(page))
    assert match, panel_text(page)
    return int(match.group(1))


def click_button(page, name: str) -> None:
    """Click the open tab's button named `name` (a role locator: Streamlit also renders a hidden copy to measure)."""
    page.locator(PANEL).get_by_role("button", name=name, exact=True).click(timeout=10_000)


def test_parameter_space_and_sequential_updating_in_a_real_browser(browser_page, streamlit_url):
    page = browser_page
    timings: dict[str, float] = {}
    page.goto(streamlit_url + query(LONG_RUN))
    sidebar = page.locator('[data-testid="stSidebar"]')
    scenario, problems = decode(LONG_RUN)
    assert not problems
    dataset = generate(scenario.data)

    # Parameter space is the open tab: its chart is there, and it follows a running fit.
    scroll_to_charts(page, 45)
    page.locator(CHARTS).locator("path.js-line").first.wait_for(state="attached", timeout=45_000)
    assert "Posterior correlation of slope and intercept: -0.875" in panel_text(page)
    idle = signature(page)
    sidebar.get_by_role("button", name="Run", exact=True).click()
    wait_for_progress(page, "Running", 15_000)
    timings["first live redraw"] = wait_for_change(page, idle)
    live = signature(page)
    timings["next live redraw"] = wait_for_change(page, live)
    legend = page.locator(PANEL).locator("text.legendtext")
    assert any(": path of the mean" in text for text in legend.evaluate_all("all => all.map(t => t.textContent)"))
    sidebar.get_by_role("button", name="Stop", exact=True).click()
    wait_for_progress(page, "Stopped", 10_000)

    # Centre x: the correlation reads 0 and the ellipses are redrawn.
    before = signature(page)
    page.locator(".st-key-explore_centre_x label").click()
    page.get_by_text("Posterior correlation of slope and intercept: 0.000").wait_for(timeout=15_000)
    timings["centre x"] = wait_for_change(page, before)
    assert "slope 1, intercept 1" in panel_text(page)

    # Sequential updating: step forward; the count, the numbers and both charts change.
    started = time.monotonic()
    page.get_by_role("tab", name="Sequential updating").click()
    page.get_by_text("Points seen: 0 of 100").wait_for(timeout=15_000)
    scroll_to_charts(page, 15)
    page.locator(CHARTS).locator("path.js-line").first.wait_for(state="attached", timeout=15_000)
    timings["open sequential"] = time.monotonic() - started
    plane, data = signature(page, 0), signature(page, 1)
    started = time.monotonic()
    click_button(page, "+1")
    page.get_by_text("Points seen: 1 of 100").wait_for(timeout=15_000)
    wait_for_change(page, plane, 0)
    wait_for_change(page, data, 1)  # each chart draws on its own animation frame: the data chart may come a frame later
    timings["step +1"] = time.monotonic() - started
    plane = signature(page, 0)
    started = time.monotonic()
    click_button(page, "+10")
    page.get_by_text("Points seen: 11 of 100").wait_for(timeout=15_000)
    wait_for_change(page, plane, 0)
    timings["step +10 (with a BBB fit)"] = time.monotonic() - started
    exact = posterior_after(dataset, scenario.model, 11)
    page.locator(f"{PANEL} [data-testid='stTable']").get_by_text("Bayes by Backprop on 11").wait_for(timeout=15_000)
    table = page.locator(f"{PANEL} [data-testid='stTable']").inner_text(timeout=10_000)
    assert "exact after 11" in table and fmt(exact.sd[0]) in table and fmt(exact.mean[1]) in table
    assert "Bayes by Backprop on 11" in table

    # Play adds a point a second by itself; Pause holds the count.
    click_button(page, "Play")
    started = time.monotonic()
    page.wait_for_function(
        f"() => /Points seen: (1[3-9]|[2-9]\\d) of/.test(document.querySelector('{PANEL}').innerText)",
        timeout=20_000,
    )
    timings["play to 13 points"] = time.monotonic() - started
    click_button(page, "Pause")
    page.locator(PANEL).get_by_role("button", name="Play", exact=True).wait_for(timeout=15_000)
    held = points_seen(page)
    time.sleep(2.5)
    assert points_seen(page) == held and "Stopped" in progress_text(page)
    shown = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items())
    print(f"\nexplore views in the browser: {shown}")
    assert timings["step +1"] < 10 and timings["centre x"] < 10
