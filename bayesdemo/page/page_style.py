"""How the page looks: its CSS (focus ring, phone layout, projector mode), the display settings, each chart's style.

Projector mode (the sidebar's switch, or `projector=1` in the link) sets the page's text to PROJECTOR_TEXT_PX and every
chart to chart_style.ChartStyle(projector=True): large type, thick lines, strong reference lines. The page follows the
browser's light or dark preference (Streamlit's theme, .streamlit/config.toml sets no base); charts are drawn dark
when the page is. The focus view shows one chart the full width of the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from bayesdemo.charts.chart_style import STANDARD, ChartStyle, apply_style

PROJECTOR_KEY = "projector"  # session-state key of the projector switch, and the link's key for it
FOCUS_KEY = "focus_chart"  # session-state key of the focus view's chart (ALL_CHARTS: every chart)
RESTORED_KEY = "display_restored"  # set once a session has read its display settings from the link
ALL_CHARTS = "All charts"
# The focus view's choices: the label in the sidebar and the chart's key (the key live_chart draws it under).
FOCUS_CHARTS = {
    "Mean of the slope": "chart_mean_slope",
    "Sd of the slope": "chart_sd_slope",
    "Mean of the intercept": "chart_mean_intercept",
    "Sd of the intercept": "chart_sd_intercept",
    "Loss": "chart_loss",
    "Data and predictive bands": "chart_data",
}
FOCUS_HEIGHT_SCALE = 1.6  # the focused chart is this much taller than drawn beside another
PROJECTOR_TEXT_PX = 24  # root font size in projector mode: Streamlit sizes its text in rem, so every text scales
RUN_PAUSE_SHORTCUT = "k"  # the key that runs a fit, then pauses and resumes it, as in video players
PHONE_MAX_PX = 768  # Streamlit's own breakpoint: at most this wide, the sidebar covers the page when open

# Every view. The main area's top padding leaves room for Streamlit's header only when the header shows something
# (the button that opens a closed sidebar); otherwise the title sits higher so the live charts fit a 1280x800
# projector. Captions and disabled controls are drawn darker than Streamlit's (contrast at least 4.5:1, WCAG 2.1
# 1.4.3), and every focused control gets a thick ring (2.4.7).
BASE_CSS = """
  .block-container { padding: 1.5rem 2rem 2rem 2rem; }
  .stApp:has([data-testid="stExpandSidebarButton"]) .block-container { padding-top: 4.5rem; }
  [data-testid="stSidebarHeader"] { height: 1.5rem; min-height: 1.5rem; padding-top: 0.5rem; }
  [data-testid="stSidebarUserContent"] { padding-top: 0; }
  h1 { padding-top: 0.2rem; }
  @media (max-width: %(phone)dpx) { .block-container { padding-left: 1rem; padding-right: 1rem; } }
  [data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: %(muted)s; opacity: 1; }
  button:disabled, button:disabled p { color: %(muted)s !important; opacity: 1; }
  :is(button, a, input, textarea, select, summary, [role="button"], [role="tab"], [role="slider"],
      [role="switch"], [role="combobox"], [tabindex]):focus-visible {
    outline: 3px solid %(ring)s !important; outline-offset: 2px !important; box-shadow: none !important;
  }
"""
# Projector mode: every rem-sized text at PROJECTOR_TEXT_PX, the page's text at full contrast, a wider sidebar.
PROJECTOR_CSS = """
  html { font-size: %(text_px)dpx !important; }
  .stApp, :is(.stApp p, .stApp li, .stApp label, .stApp h1, .stApp h2, .stApp h3, .stApp summary):not(button *),
  [data-testid="stMetricValue"], [data-testid="stMetricLabel"] p { color: %(text)s; }
  [data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: %(text)s; font-size: 1rem; }
  [data-testid="stMetric"] { border-width: 2px; border-color: %(text)s; }
  [data-testid="stMetricValue"] { font-size: 1.5rem; }
  [data-testid="stSidebar"] { min-width: 26rem; }
"""
FOCUS_CSS = """
  [data-testid="stHorizontalBlock"]:has([class*="st-key-chart_"]):not(:has(.st-key-%(key)s)) { display: none; }
  [data-testid="stColumn"]:has([class*="st-key-chart_"]):not(:has(.st-key-%(key)s)) { display: none; }
  [data-testid="stColumn"]:has(.st-key-%(key)s) { flex: 1 1 100%% !important; width: 100%% !important;
    max-width: 100%% !important; }
"""
# Clicks the sidebar's close button on a narrow screen (Streamlit keeps a sidebar the viewer opened open).
CLOSE_SIDEBAR_SCRIPT = """<script>
  if (window.innerWidth <= PHONE_MAX_PX) {
    const close = window.parent.document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (close) close.click();
  }
</script>"""
# RUN_PAUSE_SHORTCUT clicks Pause / Resume while it is enabled, else Run (never while typing in a field, nor with a
# modifier key held). A script of its own, not st.button's shortcut: that adds the key to the button's name on screen
# and for screen readers ("Run Shortcut K").
SHORTCUT_SCRIPT = """<script>
  if (!window.bayesdemoShortcut) {
    window.bayesdemoShortcut = true;
    document.addEventListener("keydown", (event) => {
      if (event.key.toLowerCase() !== "KEY" || event.ctrlKey || event.metaKey || event.altKey) return;
      const target = event.target;
      if (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
      const enabled = (key) => document.querySelector(`[data-testid="stSidebar"] .st-key-${key} button:not(:disabled)`);
      const button = enabled("pause") || enabled("run");
      if (button) { event.preventDefault(); button.click(); }
    });
  }
</script>"""
# Colours of the page's own text in each theme (contrast on Streamlit's light #ffffff and dark #171614 backgrounds).
LIGHT = {"text": "#000000", "muted": "#4d4d4d", "ring": "#0b3d91"}  # muted 8.5:1, ring 10:1 on white
DARK = {"text": "#ffffff", "muted": "#c8c8c8", "ring": "#ffbf47"}  # muted 10.8:1, ring 11:1 on the dark background


def dark_theme() -> bool:
    """Whether the page shows Streamlit's dark theme (the browser prefers dark)."""
    return st.context.theme.type == "dark"


def current_style() -> ChartStyle:
    """The chart style of this session: projector mode from the sidebar, dark with the page's theme."""
    return ChartStyle(projector=bool(st.session_state.get(PROJECTOR_KEY)), dark=dark_theme())


def focused_chart() -> str | None:
    """The key of the chart the focus view shows, or None when every chart is shown."""
    return FOCUS_CHARTS.get(st.session_state.get(FOCUS_KEY) or ALL_CHARTS)


def page_css(projector: bool, dark: bool, focus: str | None) -> str:
    """The page's <style> element: BASE_CSS, then PROJECTOR_CSS in projector mode and FOCUS_CSS for a chart key."""
    colours = {**(DARK if dark else LIGHT), "phone": PHONE_MAX_PX, "text_px": PROJECTOR_TEXT_PX}
    parts = [BASE_CSS % colours]
    if projector:
        parts.append(PROJECTOR_CSS % colours)
    if focus is not None:
        parts.append(FOCUS_CSS % {"key": focus})
    return "<style>" + "".join(parts) + "</style>"


def draw_page_style() -> None:
    """Emit the page's CSS for this session's display settings and the Run / Pause key (call first in the script)."""
    st.html(page_css(bool(st.session_state.get(PROJECTOR_KEY)), dark_theme(), focused_chart()))
    st.html(SHORTCUT_SCRIPT.replace("KEY", RUN_PAUSE_SHORTCUT), unsafe_allow_javascript=True)


def link_wants_projector(params: Mapping[str, str | list[str]]) -> bool:
    """Whether the link's query asks for projector mode (`projector=1` or `projector=true`)."""
    raw = params.get(PROJECTOR_KEY)
    if isinstance(raw, list | tuple):
        raw = raw[-1] if raw else None
    return str(raw).strip().lower() in ("1", "true") if raw is not None else False


def restore_from_link() -> None:
    """On a session's first run: turn projector mode on when the link asks for it."""
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[PROJECTOR_KEY] = link_wants_projector(st.query_params.to_dict())
    st.session_state[RESTORED_KEY] = True


def link_params() -> dict[str, str]:
    """The display settings the address bar keeps beside the scenario: projector=1 while projector mode is on."""
    return {PROJECTOR_KEY: "1"} if st.session_state.get(PROJECTOR_KEY) else {}


def draw_display_settings(container: Any) -> None:
    """The sidebar's Display section: the projector switch and the focus view's chart."""
    with container.expander("Display", expanded=True):
        st.toggle(
            "Projector mode",
            key=PROJECTOR_KEY,
            help=f"Large type ({PROJECTOR_TEXT_PX} px), thick lines and strong reference lines, for the back of a "
            "lecture hall. The page follows the browser's light or dark setting. Link: add projector=1.",
        )
        st.selectbox(
            "Focus on",
            [ALL_CHARTS, *FOCUS_CHARTS],
            key=FOCUS_KEY,
            help="Show one chart the full width of the page, for the moment the class looks at one thing.",
        )
        st.caption(f"Key **{RUN_PAUSE_SHORTCUT.upper()}** runs a fit, then pauses and resumes it.")


def styled(figure: go.Figure, key: str) -> go.Figure:
    """`figure` in this session's chart style, taller when it is the focused chart (the standard style: unchanged)."""
    style = current_style()
    if key == focused_chart():
        figure = go.Figure(figure)
        figure.update_layout(height=round((figure.layout.height or 450) * FOCUS_HEIGHT_SCALE))
    return figure if style == STANDARD else apply_style(figure, style)


def close_sidebar_on_phone() -> None:
    """Close the sidebar once, on a screen at most PHONE_MAX_PX wide, where it covers the charts (after Run)."""
    st.html(CLOSE_SIDEBAR_SCRIPT.replace("PHONE_MAX_PX", str(PHONE_MAX_PX)), unsafe_allow_javascript=True)
