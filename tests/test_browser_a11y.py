"""Accessibility in headless Chromium: axe-core (WCAG 2.1 A and AA rules) finds no serious or critical violation on
the main page, each explore tab, projector mode light and dark, and a lesson step; the fits stay apart under a
deuteranopia emulation; Run, Pause and Stop work from the keyboard with a visible focus ring; on a 390x844 phone the
title clears the header and the sidebar closes after Run. The projector screenshots go to a temporary folder, or to
$BAYESDEMO_SCREENSHOT_DIR when set: `bash scripts/screenshots` regenerates the README's pictures that way.

axe-core comes from npm: `npm install --prefix .cache/axe axe-core@4` (scripts/test does it).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bayesdemo.page.explore import EXPLORE_TABS
from bayesdemo.page.page_style import PROJECTOR_TEXT_PX, RUN_PAUSE_SHORTCUT
from bench.first_chart import wait_for_progress
from bench.server import CHROMIUM, CHROMIUM_ARGS, LIVE_CHART
from tests.support.pages import query

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent.parent / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]  # WCAG 2.1 levels A and AA
RUN_AXE = "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})"
SIDEBAR = '[data-testid="stSidebar"]'
CHART_LINE = f"{LIVE_CHART} path.js-line"  # a drawn line of the first live chart
PAGE_LOAD_MS = 60_000  # a busy 2-core machine took up to 45 s to show a page while other suites ran
SHORT_COMPARE = {"all": "1", "t": "1500", "v": "0"}  # every method for 1,500 steps at full speed: seconds
SCREENSHOT_DIR_VARIABLE = "BAYESDEMO_SCREENSHOT_DIR"  # where projector-light.png and projector-dark.png go (unset: tmp)
# Far longer than the test (Bayes by Backprop runs at about 50,000 steps/s), so it still trains when looked at.
LONG_RUN = {"t": "1000000", "v": "0"}


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """One headless Chromium for the module's pages."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(browser, url: str, width: int = 1280, height: int = 800, scheme: str = "light", phone: bool = False):
    """A new page at `url` in its own context, once the exact posterior and the first chart's lines are drawn."""
    context = browser.new_context(
        viewport={"width": width, "height": height}, color_scheme=scheme, is_mobile=phone, has_touch=phone
    )
    page = context.new_page()
    page.goto(url)
    page.locator('[data-testid="stMain"] [data-testid="stMetric"]').first.wait_for(timeout=PAGE_LOAD_MS)
    if not phone:  # on a phone the first chart is below the fold, and live charts draw only on screen
        page.locator(CHART_LINE).first.wait_for(state="attached", timeout=PAGE_LOAD_MS)
    return page


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical WCAG 2.1 A/AA violations on the page, one line each with where they are."""
    assert AXE.is_file(), f"axe-core is missing: run `npm install --prefix .cache/axe axe-core@4` ({AXE})"
    # Streamlit fades the elements of a page run still in progress (stale): judged once the run has drawn them.
    page.wait_for_function("document.querySelectorAll('[data-stale=\"true\"]').length === 0", timeout=30_000)
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE, AXE_TAGS)
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + "; ".join(f"{' '.join(node['target'])} ({node['failureSummary']})" for node in violation["nodes"][:4])
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def choose(page, label: str, option: str, attempts: int = 3) -> None:
    """Pick `option` in the sidebar's selectbox `label` (its list, opened during a page run, may close again)."""
    for attempt in range(attempts):
        page.locator(SIDEBAR).get_by_role("combobox", name=label).click(timeout=10_000)
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")


def test_main_page_and_every_explore_tab_pass_axe(browser, streamlit_url):
    page = open_page(browser, streamlit_url)
    problems = {"main page": serious_violations(page)}
    choose(page, "Focus on", "Sd of the slope")
    focused, hidden = page.locator(".st-key-chart_sd_slope"), page.locator(".st-key-chart_mean_slope")
    hidden.wait_for(state="hidden", timeout=30_000)
    main_width = page.locator('[data-testid="stMain"] .block-container').bounding_box()["width"]
    assert focused.bounding_box()["width"] > 0.9 * main_width  # the whole width, not half of it
    problems["focus view"] = serious_violations(page)
    tabs = page.locator('[data-testid="stMain"] [role="tab"]')
    for name in EXPLORE_TABS:
        tab = tabs.filter(has_text=name).first
        tab.click(timeout=10_000)
        page.wait_for_function(
            "(name) => document.querySelector('[data-testid=stMain] [role=tab][aria-selected=true]')"
            "?.innerText.includes(name)",
            arg=name,
            timeout=20_000,
        )
        page.locator('[data-testid="stMain"] [role="tabpanel"]').first.wait_for(timeout=20_000)
        problems[f"explore tab {name}"] = serious_violations(page)
    page.context.close()
    assert not any(problems.values()), problems


def assert_apart_under_deuteranopia(page) -> None:
    """Bayes by Backprop's and the full-covariance guide's legend entries in the first chart, as a deuteranope sees
    them (Chromium's emulation), differ in colour and in shape."""
    page.locator(LIVE_CHART).scroll_into_view_if_needed()  # live charts draw only on screen
    page.locator(f"{LIVE_CHART} g.traces").filter(has_text="full covariance").first.wait_for(timeout=30_000)
    client = page.context.new_cdp_session(page)
    client.send("Emulation.setEmulatedVisionDeficiency", {"type": "deuteranopia"})
    page.wait_for_timeout(300)
    crops = {}
    for label in ("Bayes by Backprop", "full covariance"):
        entry = page.locator(f"{LIVE_CHART} g.traces").filter(has_text=label).first
        symbol = entry.locator("g.legendsymbols")
        crops[label] = np.asarray(Image.open(io.BytesIO(symbol.screenshot())).convert("RGB"))
    client.send("Emulation.setEmulatedVisionDeficiency", {"type": "none"})
    (bbb_mask, bbb_colour), (mvn_mask, mvn_colour) = (ink(crop) for crop in crops.values())
    # Apart in colour as a deuteranope sees it: 80 (of 441, black to white) is about the distance between two of the
    # Okabe-Ito colours that stay apart under the emulation; blue and purple, which merge, are under 40 apart.
    assert np.linalg.norm(bbb_colour - mvn_colour) > 80, (bbb_colour, mvn_colour)
    # And apart in shape (dash or marker), so colour is never the only difference: under 85% of the drawn pixels shared.
    size = min(bbb_mask.shape[0], mvn_mask.shape[0]), min(bbb_mask.shape[1], mvn_mask.shape[1])
    first, second = bbb_mask[: size[0], : size[1]], mvn_mask[: size[0], : size[1]]
    assert (first & second).sum() / max((first | second).sum(), 1) < 0.85


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_projector_mode_is_large_passes_axe_and_keeps_fits_apart(browser, streamlit_url, scheme, tmp_path):
    page = open_page(browser, streamlit_url + query({"projector": "1", **SHORT_COMPARE}), 1920, 1080, scheme)
    page.locator(SIDEBAR).get_by_role("button", name="Run", exact=True).click()
    wait_for_progress(page, "Finished", 120_000)
    page.wait_for_timeout(500)  # the last redraw of the charts
    sizes = page.evaluate(
        """() => ({
          root: parseFloat(getComputedStyle(document.documentElement).fontSize),
          text: parseFloat(getComputedStyle(document.querySelector('[data-testid=stMain] p')).fontSize),
          chart: Math.min(...Array.from(document.querySelectorAll('LIVE_CHART .main-svg text'))
            .filter(t => t.textContent.trim()).map(t => parseFloat(t.style.fontSize || getComputedStyle(t).fontSize))),
          background: getComputedStyle(document.querySelector('.stApp')).backgroundColor,
        })""".replace("LIVE_CHART", LIVE_CHART)
    )
    assert sizes["root"] >= PROJECTOR_TEXT_PX and sizes["text"] >= PROJECTOR_TEXT_PX, sizes
    assert sizes["chart"] >= PROJECTOR_TEXT_PX, sizes  # every tick label, axis title, legend entry and title
    channels = [int(part) for part in sizes["background"].strip("rgba()").split(",")[:3]]
    assert (sum(channels) / 3 < 64) == (scheme == "dark"), sizes  # the page follows the browser's preference
    assert serious_violations(page) == []
    page.mouse.move(1910, 1070)  # no hover highlight in the picture
    folder = Path(os.environ.get(SCREENSHOT_DIR_VARIABLE) or tmp_path)
    page.screenshot(path=str(folder / f"projector-{scheme}.png"))
    if scheme == "light":  # one compare-all run serves the colour-vision check too
        assert_apart_under_deuteranopia(page)
    page.context.close()


def test_lesson_step_passes_axe(browser, streamlit_url):
    page = open_page(browser, streamlit_url + query({"lesson": "forum-question", "step": "1"}))
    assert serious_violations(page) == []
    page.context.close()


def ink(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of an RGB crop that differ from its most common (background) colour: their mask and mean colour."""
    flat = image.reshape(-1, 3)
    colours, counts = np.unique(flat, axis=0, return_counts=True)
    background = colours[counts.argmax()].astype(float)
    mask = np.abs(image.astype(float) - background).sum(axis=2) > 60
    return mask, image[mask].astype(float).mean(axis=0)


def focus_ring(page) -> dict:
    """The focused element's label and its outline."""
    return page.evaluate(
        """() => { const e = document.activeElement, s = getComputedStyle(e);
          return {text: e.innerText || e.getAttribute('aria-label') || '', style: s.outlineStyle,
                  width: parseFloat(s.outlineWidth)}; }"""
    )


def tab_to(page, name: str, presses: int = 40) -> dict:
    """Press Tab until the focus is on the sidebar button whose text starts with `name`; its focus ring."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        ring = focus_ring(page)
        if ring["text"].strip().startswith(name):
            return ring
    raise AssertionError(f"{name} was not reached in {presses} presses of Tab")


def test_run_pause_stop_by_keyboard_with_a_visible_focus_ring(browser, streamlit_url):
    page = open_page(browser, streamlit_url + query(LONG_RUN))
    ring = tab_to(page, "Run")
    assert ring["style"] != "none" and ring["width"] >= 2, ring
    page.keyboard.press("Enter")
    wait_for_progress(page, "Running", 30_000)
    page.evaluate("document.activeElement.blur()")  # the key works wherever the focus is, outside a text field
    page.keyboard.press(RUN_PAUSE_SHORTCUT)
    wait_for_progress(page, "Paused", 30_000)
    page.keyboard.press(RUN_PAUSE_SHORTCUT)
    wait_for_progress(page, "Running", 30_000)
    # Back from Reset by Shift+Tab: Stop comes before it.
    page.locator(SIDEBAR).get_by_role("button", name="Reset", exact=True).focus()
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
        if focus_ring(page)["text"].strip().startswith("Stop"):
            break
    ring = focus_ring(page)
    assert ring["text"].strip().startswith("Stop") and ring["style"] != "none" and ring["width"] >= 2, ring
    page.keyboard.press("Space")
    wait_for_progress(page, "Stopped", 30_000)
    page.context.close()


def test_phone_title_clears_the_header_and_the_sidebar_closes_after_run(browser, streamlit_url):
    page = open_page(browser, streamlit_url + query(LONG_RUN), 390, 844, phone=True)
    title = page.get_by_role("heading", name="Bayesian linear regression, live")
    header = page.locator('[data-testid="stHeader"]')
    assert title.bounding_box()["y"] >= header.bounding_box()["y"] + header.bounding_box()["height"] - 1
    page.locator('[data-testid="stExpandSidebarButton"]').tap()
    run = page.locator(SIDEBAR).get_by_role("button", name="Run", exact=True)
    run.tap(timeout=10_000)
    wait_for_progress(page, "Running", 30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=stSidebar]').getBoundingClientRect().right <= 1", timeout=10_000
    )
    page.context.close()
