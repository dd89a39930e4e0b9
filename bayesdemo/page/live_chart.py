"""Live charts that stay mounted while their figure changes (a Streamlit component on bayesdemo/web/live_chart.js).

st.plotly_chart gives each new figure a new element identity, so the browser builds a new plot on every live redraw
(about 0.1 s of a 2-core laptop's CPU per chart). The component keeps one plot per key and calls Plotly.react on
it with each new figure. It loads plotly.js's basic bundle shipped beside its script (bayesdemo/web/
plotly-basic.min.js: bar, pie and scatter traces, at the installed plotly's plotly.js version). Where the component
cannot be served (the bundle missing, or no Streamlit server as under AppTest) charts fall back to st.plotly_chart.

Each session sends a chart's whole figure once, then only what changed: while a fit trains, the points its traces
gained since the last update (`extend`), their last point replaced where it moved (figures.trajectory_indices). A
change to the layout, to the set of traces or to anything but appended points (a trajectory thinned at a doubled
stride, an axis range that grew) sends the whole figure again. Every message names its revision and, for an update,
the revision it applies to; a browser that does not hold that revision (a plot mounted afresh, an update it missed)
asks for the whole figure with the component's `resync` trigger.

The component receives each message as the bytes of its JSON (`payload`), the whole figure in it as plotly wrote it:
Streamlit forwards bytes as they are and hashes them once for the element's identity, where a dict of lists and
strings is walked, written as JSON twice (once with sorted keys) and hashed on every redraw.
"""

from __future__ import annotations

import base64
import functools
import itertools
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.io as pio
import streamlit as st
from _plotly_utils import utils as pio_utils  # type: ignore[import-untyped]

from bayesdemo.charts import figures
from bayesdemo.charts.chart_style import STANDARD
from bayesdemo.page import page_style

COMPONENT_NAME = "bayesdemo.live_chart"  # "<project>.<component name in pyproject.toml>", not the module path
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PLOTLY_JS = WEB_DIR / "plotly-basic.min.js"  # the plotly.js bundle live_chart.js loads
PLOT_CONFIG = {"displaylogo": False, "displayModeBar": False}  # plotly.js options: no toolbar over a live chart
PLOTLY_DEFAULT_HEIGHT = 450  # px, plotly.js's height for a figure that sets none
SENT_STATE = "bayesdemo.page.live_chart.sent"  # session-state key: what this session last sent each chart, by chart key
EXTENDED_KEYS = ("x", "y")  # the trace arrays an update may extend

_LOGGER = logging.getLogger(__name__)
_mount: Any = None  # the component's mounting command once registered; False when it cannot be served


def _component() -> Any:
    """The registered component's mounting command, or None where it cannot be served (see the module docstring)."""
    global _mount
    if _mount is None:
        _mount = False
        if not PLOTLY_JS.is_file():
            _LOGGER.warning("live charts fall back to st.plotly_chart: %s is missing", PLOTLY_JS)
        elif st.runtime.exists():
            try:
                _mount = st.components.v2.component(COMPONENT_NAME, js="live_chart.js", isolate_styles=False)
            except st.errors.StreamlitAPIException as error:
                _LOGGER.warning("live charts fall back to st.plotly_chart: %s", error)
    return _mount or None


def plain(value: Any) -> Any:
    """`value` as JSON's types: dicts, lists, numbers, strings, booleans and None.

    Numpy arrays, and plotly's base64 form of them ({"dtype", "bdata"[, "shape"]}), become (nested) lists.
    """
    if isinstance(value, dict):
        if _is_base64_array(value):
            return _decoded(value).tolist()
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_base64_array(value: Any) -> bool:
    """Whether `value` is plotly's base64 form of a numeric array."""
    return isinstance(value, dict) and value.keys() >= {"dtype", "bdata"} and isinstance(value["bdata"], str)


def _decoded(value: dict[str, Any]) -> np.ndarray:
    """Plotly's base64 form of an array as numpy, in its shape ("shape": "rows, columns" or a list)."""
    array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    shape = value.get("shape")
    if shape is None:
        return array
    sizes = [int(size) for size in (shape.split(",") if isinstance(shape, str) else shape)]
    return array.reshape(sizes)


def _array(value: Any) -> np.ndarray | None:
    """A trace's one-dimensional numeric array as numpy (from plotly's base64 form or a list); None for others."""
    if _is_base64_array(value):
        array = _decoded(value)
        return array if array.ndim == 1 else None
    if isinstance(value, list) and all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in value):
        return np.array(value)
    return None


def figure_json(figure: Any) -> dict[str, Any]:
    """A plotly figure (or a figures.FigureSpec) as {"data": [trace, ...], "layout": {...}}, as plotly writes it
    (arrays in base64; a spec's keys in its own order, tests/test_live_chart.py requires the JSON plotly writes of the
    checked figure).

    Read from the figure's own dicts without plotly's deep copy and array conversion (a few ms a figure, a large
    share of a live redraw); tests/test_live_chart.py requires the JSON of figure.to_plotly_json() exactly.
    """
    if isinstance(figure, dict):  # a figures.FigureSpec: its template is plotly's JSON already, shared, kept as it is
        layout = figure["layout"]
        copied = {name: item if name == "template" else _json_copy(item, name) for name, item in layout.items()}
        return {"data": [_json_copy(trace) for trace in figure["data"]], "layout": copied}
    return {"data": [_json_copy(trace) for trace in figure._data], "layout": _json_copy(figure._layout)}


# plotly's keys whose numeric lists stay lists (plotly's is_skipped_key), and its short names of numeric dtypes.
NOT_TYPED_ARRAY_KEYS = frozenset({"geojson", "layer", "layers", "range"})
SHORT_DTYPES = {"int8": "i1", "uint8": "u1", "int16": "i2", "uint16": "u2", "int32": "i4", "uint32": "u4"}
SHORT_DTYPES |= {"float32": "f4", "float64": "f8"}
NARROWER_INTEGERS = {"int64": ("int8", "int16", "int32"), "uint64": ("uint8", "uint16", "uint32")}


def _typed_array(array: np.ndarray) -> Any:
    """A numpy array in plotly's base64 form, as plotly's to_typed_array_spec writes it; other arrays as they are."""
    if array.size == 0:
        return array
    dtype = str(array.dtype)
    if dtype in NARROWER_INTEGERS:
        low, high = array.min(), array.max()
        narrower = [
            kind for kind in NARROWER_INTEGERS[dtype] if np.iinfo(kind).min <= low and high <= np.iinfo(kind).max
        ]
        if not narrower:
            return array
        array = array.astype(narrower[0])
        dtype = narrower[0]
    if dtype not in SHORT_DTYPES:
        return pio_utils.to_typed_array_spec(array)
    typed = {"dtype": SHORT_DTYPES[dtype], "bdata": base64.b64encode(array.tobytes()).decode("ascii")}
    if array.ndim > 1:
        typed["shape"] = str(array.shape)[1:-1]
    return typed


def _json_copy(value: Any, key: str = "") -> Any:
    """`value` (a figure's dict, list or leaf) copied, numpy arrays in plotly's base64 form (as plotly's to_dict)."""
    if isinstance(value, dict):
        return {name: _json_copy(item, name) for name, item in value.items()}
    if isinstance(value, np.ndarray) and key not in NOT_TYPED_ARRAY_KEYS:
        return _typed_array(value)
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_json_copy(item) for item in value)
    return value


def appended_points(old: dict[str, Any], new: dict[str, Any]) -> list[list[Any]] | None:
    """[[trace index, x added, y added(, kept)], ...] turning figure `old` into `new` (figure_json); None where `new`
    is not.

    `new` must have `old`'s layout and traces, each trace equal but for its x and y arrays, which start with
    `old`'s (equal lengths), or with all of `old`'s points but the last (then `kept`, the points kept before those
    added, is given), and may be longer; the points added must be finite (JSON carries no NaN). Traces that did not
    change are left out.
    """
    try:
        if old["layout"] != new["layout"] or len(old["data"]) != len(new["data"]):
            return None
        added = []
        for index, (before, after) in enumerate(zip(old["data"], new["data"], strict=True)):
            if before == after:
                continue
            if before.keys() != after.keys() or any(before[k] != after[k] for k in before if k not in EXTENDED_KEYS):
                return None
            arrays = [_array(trace.get(k)) for trace in (before, after) for k in EXTENDED_KEYS]
            x_before, y_before, x_after, y_after = arrays
            if x_before is None or y_before is None or x_after is None or y_after is None:
                return None
            shown = len(x_before)
            if len(y_before) != shown or len(x_after) != len(y_after):
                return None
            kept = shown
            if not _starts_with(x_after, y_after, x_before, y_before, kept):
                kept = shown - 1  # the last point replaced (figures.trajectory_indices)
                if kept < 0 or not _starts_with(x_after, y_after, x_before, y_before, kept):
                    return None
            x_added, y_added = x_after[kept:], y_after[kept:]
            numeric = all(array.dtype.kind in "iuf" for array in (x_added, y_added))
            if not numeric or not (np.isfinite(x_added).all() and np.isfinite(y_added).all()):
                return None
            added.append([index, x_added.tolist(), y_added.tolist(), *([kept] if kept < shown else [])])
    except ValueError:  # values that do not compare (numpy arrays left in a hand-made figure)
        return None
    return added


def _starts_with(
    x_after: np.ndarray, y_after: np.ndarray, x_before: np.ndarray, y_before: np.ndarray, kept: int
) -> bool:
    """Whether the new arrays start with the first `kept` points of the old ones."""
    return (
        len(x_after) >= kept
        and np.array_equal(x_after[:kept], x_before[:kept])
        and np.array_equal(y_after[:kept], y_before[:kept])
    )


def apply_update(figure: dict[str, Any] | None, message: dict[str, Any]) -> dict[str, Any]:
    """The figure a browser holds after `message` (in JSON's types): its whole figure, or `figure` extended."""
    if "figure" in message:  # plotly's JSON text (chart_message), or the object the payload carries
        figure_text = message["figure"]
        whole = plain(json.loads(figure_text) if isinstance(figure_text, str) else figure_text)
        return {"data": whole.get("data", []), "layout": whole.get("layout", {})}
    assert figure is not None, "an update applies to a figure held"
    updated = {"data": [dict(trace) for trace in figure["data"]], "layout": figure["layout"]}
    for index, x_added, y_added, *replacing in message["extend"]:
        trace = updated["data"][index]
        kept = replacing[0] if replacing else len(trace["x"])
        trace["x"], trace["y"] = [*trace["x"][:kept], *x_added], [*trace["y"][:kept], *y_added]
    return updated


def payload(message: dict[str, Any]) -> bytes:
    """`message` as the component receives it: the UTF-8 bytes of its JSON, a whole figure (plotly's JSON text) as
    the object it writes, not as a string of it."""
    if "figure" not in message:
        return json.dumps(message, allow_nan=False).encode()
    head = json.dumps({name: value for name, value in message.items() if name != "figure"})
    return f'{head[:-1]}, "figure": {message["figure"]}}}'.encode()


@dataclass
class SentChart:
    """What a session last sent one chart: the figure (figure_json), the message and its payload, and whether the
    browser asked for the whole figure again."""

    figure: dict[str, Any]
    message: dict[str, Any]
    wants_whole: bool = False
    payload: bytes = b""

    def __post_init__(self) -> None:
        """The message's payload, written once for every redraw that sends it."""
        if not self.payload:
            self.payload = payload(self.message)


_stream_numbers = itertools.count(1)  # one per chart stream in this process, so revisions never repeat


def _revision(previous: dict[str, Any] | None) -> str:
    """The revision after `previous` message: its stream's next number, or a new stream's first."""
    if previous is None:
        return f"{uuid.uuid4().hex[:8]}{next(_stream_numbers)}-1"
    stream, number = previous["revision"].rsplit("-", 1)
    return f"{stream}-{int(number) + 1}"


def chart_message(figure: Any, key: str, sent: SentChart | None) -> SentChart:
    """What to send chart `key` now that it shows `figure` (a plotly figure or a figures.FigureSpec), after `sent`
    (None: nothing yet); see the module docstring.

    The message carries "name" (the key), "height" (px), "config" (plotly.js options), "revision", and either
    "figure" (the whole figure in plotly's JSON: numeric arrays in base64) or "base" (the revision it applies to)
    and "extend" (appended_points).
    """
    height = (
        figure["layout"].get("height") if isinstance(figure, dict) else figure.layout.height
    ) or PLOTLY_DEFAULT_HEIGHT
    shown = figure_json(figure)
    head = {"name": key, "height": height, "config": PLOT_CONFIG}
    if sent is not None and not sent.wants_whole and sent.message["height"] == height:
        try:
            unchanged = shown == sent.figure
        except ValueError:
            unchanged = False
        if unchanged:
            return sent  # the same message again: the browser draws nothing new
        added = appended_points(sent.figure, shown)
        if added is not None:
            base = sent.message["revision"]
            return SentChart(shown, {**head, "revision": _revision(sent.message), "base": base, "extend": added})
    whole = pio.to_json(shown, validate=False)
    return SentChart(shown, {**head, "revision": _revision(sent.message if sent else None), "figure": whole})


def _want_whole(key: str) -> None:
    """The browser asked for chart `key`'s whole figure (the component's `resync` trigger)."""
    sent = st.session_state.get(SENT_STATE, {}).get(key)
    if sent is not None:
        sent.wants_whole = True


def live_chart(figure: Any, key: str) -> None:
    """Draw `figure` (a plotly figure, or a figures.FigureSpec) stretched to its column under `key`, updating the plot
    already there.

    The figure is drawn as built (fonts and legend from figures.py) in the session's style (page_style.styled:
    projector, dark, focus view), also by the st.plotly_chart fallback. A spec is sent as it is where that style
    leaves the figure unchanged (the standard style, not the focused chart), without building its plotly figure.
    """
    mount = _component()
    if isinstance(figure, dict):
        if mount is not None and page_style.current_style() == STANDARD and key != page_style.focused_chart():
            _send(mount, figure, key)
            return
        figure = figures.figure_of(figure)
    figure = page_style.styled(figure, key)
    if mount is None:
        st.plotly_chart(figure, width="stretch", key=key, config=PLOT_CONFIG, theme=None)
        return
    _send(mount, figure, key)


def _send(mount: Any, figure: Any, key: str) -> None:
    """Mount chart `key` with the message that brings it to `figure` (chart_message)."""
    charts = st.session_state.setdefault(SENT_STATE, {})
    charts[key] = chart_message(figure, key, charts.get(key))
    mount(data=charts[key].payload, key=key, on_resync_change=functools.partial(_want_whole, key))
