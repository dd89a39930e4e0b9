"""Live charts that stay mounted while their figure changes (a Streamlit component on bayesdemo/web/live_chart.js).

st.plotly_chart gives each new figure a new element identity, so the browser builds a new plot on every live redraw
(about 0.1 s of a 2-core laptop's CPU per chart). The component keeps one plot per key and calls Plotly.react on
it with each new figure. It needs plotly.js beside its script: the copy shipped inside the installed plotly package
is placed there at first use. Where the component cannot be served (no asset directory: a non-editable install,
a read-only one, or no Streamlit server as under AppTest) charts fall back to st.plotly_chart.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import plotly
import plotly.io as pio
import streamlit as st

COMPONENT_NAME = "bayesdemo.live_chart"  # "<project>.<component name in pyproject.toml>"
WEB_DIR = Path(__file__).resolve().parent / "web"
PLOTLY_JS_SOURCE = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
PLOTLY_JS = WEB_DIR / "plotly.min.js"
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": False}  # plotly.js options: no toolbar over a live chart
PLOTLY_DEFAULT_HEIGHT = 450  # px, plotly.js's height for a figure that sets none

_LOGGER = logging.getLogger(__name__)
_mount: Any = None  # the component's mounting command once registered; False when it cannot be served


def ensure_plotly_js(source: Path = PLOTLY_JS_SOURCE, target: Path = PLOTLY_JS) -> bool:
    """Place the installed plotly package's plotly.min.js beside the component's script (atomic); False on failure."""
    try:
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            return True
        with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".plotly-", delete=False) as handle:
            temporary = Path(handle.name)
        try:
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)
        return True
    except OSError as error:
        _LOGGER.warning("live charts fall back to st.plotly_chart: cannot place plotly.js (%s)", error)
        return False


def _component() -> Any:
    """The registered component's mounting command, or None where it cannot be served (see the module docstring)."""
    global _mount
    if _mount is None:
        _mount = False
        if st.runtime.exists() and ensure_plotly_js():
            try:
                _mount = st.components.v2.component(COMPONENT_NAME, js="live_chart.js", isolate_styles=False)
            except st.errors.StreamlitAPIException as error:
                _LOGGER.warning("live charts fall back to st.plotly_chart: %s", error)
    return _mount or None


def live_chart(figure: Any, key: str) -> None:
    """Draw `figure` stretched to its column under `key`, updating the plot already there.

    The figure is drawn as built (fonts and legend from figures.py), also by the st.plotly_chart fallback.
    """
    mount = _component()
    if mount is None:
        st.plotly_chart(figure, width="stretch", key=key, config=PLOT_CONFIG, theme=None)
        return
    height = figure.layout.height or PLOTLY_DEFAULT_HEIGHT
    data = {"figure": pio.to_json(figure, validate=False), "config": PLOT_CONFIG, "name": key, "height": height}
    mount(data=data, key=key)
