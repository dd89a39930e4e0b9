"""Pure functions returning plotly figures of fits against the exact posterior; fixed axes keep live redraws still."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from bayesdemo.charts.chart_style import (
    BAND_EDGE_COLOUR,
    DATA_COLOUR,
    EXACT_COLOUR,
    GRID_COLOUR,
    LIGHT_TEMPLATE,
    LIGHT_TEXT,
    MEAN_FIELD_COLOUR,
    TRUTH_COLOUR,
    method_style,
)
from bayesdemo.charts.chart_style import STANDARD_FONT_SIZE as FONT_SIZE
from bayesdemo.charts.chart_style import STANDARD_TITLE_SIZE as TITLE_SIZE
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian, predictive
from bayesdemo.core.priors import PARAMETER_NAMES
from bayesdemo.core.scenario import has_likelihood_loss, has_mse_loss
from bayesdemo.fitting.runner import Snapshot

__all__ = ["EXACT_COLOUR", "FONT_SIZE", "GRID_COLOUR", "LIGHT_TEMPLATE", "MEAN_FIELD_COLOUR", "TITLE_SIZE"]

MAX_POINTS = 2000  # most points drawn per scatter (redraw cost on a projector laptop)
TRAJECTORY_POINTS = 400  # most points per live trajectory: about one per pixel of a half-width chart's plot area
Z95 = 1.959963984540054  # two-sided 95% normal quantile
MARKERS_SHOWN = 8  # markers drawn along a fit's line (plotly's maxdisplayed): enough to read its symbol anywhere
MARKER_SIZE = 9  # px
FIT_LINE_WIDTH = 2.5  # px, a fit's line in the standard style
REFERENCE_LINE_WIDTH = 3  # px, the exact and mean-field reference lines in the standard style
PLOT_AREA_HEIGHT = 230  # px between the title and the x axis: two charts side by side fit a 1280x800 projector
TOP_MARGIN = 60  # px, room for the title
TITLE_HEIGHT = 40  # px of the top margin the title takes; a legend above the plot area starts below it
BELOW_PLOT_AREA = 62  # px under the plot area for the tick labels and the x-axis title, before the legend
LEGEND_ROW_HEIGHT = 22  # px per legend entry at FONT_SIZE
LEGEND_GAP = 10  # px between a legend above the plot area and the plot area's top tick label
LEGEND_TRACE_TYPES = ("scatter", "bar")  # the trace types drawn here that show in the legend by default
# A legend above the plot area: its rows are estimated for the narrowest chart it must fit, half of a 1280 px page
# beside the open sidebar.
LEGEND_WIDTH = 440  # px available to a legend above the plot area
LEGEND_CHAR_WIDTH = 0.55  # a character's mean width in units of the font size (Open Sans / Arial)
LEGEND_SYMBOL_WIDTH = 50  # px of an entry taken by its line sample and the gaps around it
NO_GROUP_GAP = {"tracegroupgap": 0}  # plotly's gap between legend groups would outgrow the room made for the rows
AXIS_TITLE_STANDOFF = 10  # px between the tick labels and an axis title
AXIS_LIMIT = 1e300  # values beyond this size are drawn at it: spans and round steps of larger ones overflow float64
MIN_RELATIVE_SPAN = 1e-9  # narrowest axis span, relative to the values' size: 201 grid points on it stay distinct
FOCUS_RATIO = 4.0  # beside other fits, the sd axis reaches this many times past the reference sds, no farther
MSE_PANEL_HEIGHT = 150  # px, the MSE panel under the negative-ELBO one when both kinds of loss are drawn
PANEL_GAP = 70  # px between the two loss panels: tick labels and the lower panel's heading
# Figures are built without plotly's check of every property, most of a live chart's cost (docs/performance.md, Server
# work per live redraw). tests/test_figures.py builds each figure both ways, awkward inputs included, and requires the
# same JSON, so the figures drawn are those plotly's checks pass.
VALIDATE = False

Traces = Sequence[tuple[str, Sequence[Snapshot]]]
# A scatter trace as its properties: go.Figure builds each trace object once from them (and checks them when VALIDATE);
# a go.Scatter built first would be built again from its properties by go.Figure.
Trace = dict[str, Any]
# A figure as its traces and layout, {"data": [Trace, ...], "layout": {...}}: what plotly's figure of it holds, without
# building the figure (go.Figure turns every property into objects and copies them: most of a live chart's cost).
# figure_of(spec) is the figure; the live charts send a spec's JSON as they would the figure's.
FigureSpec = dict[str, Any]
# The template as the plotly JSON it writes, made once: a figure built from a spec holds the same template.
LIGHT_TEMPLATE_JSON: dict[str, Any] = LIGHT_TEMPLATE.to_plotly_json()
Builder = TypeVar("Builder", bound=Callable[..., Any])


def never_warns(builder: Builder) -> Builder:
    """`builder` with numpy's floating-point warnings off: an overflow to inf or a 0/0 is drawn as a gap, never raised.

    Every figure builder (and figure spec builder) is wrapped in it: data near float64's limits must give a chart, not
    a traceback.
    """

    @functools.wraps(builder)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(all="ignore"):
            return builder(*args, **kwargs)

    return cast(Builder, quiet)


def safe_kl(exact: ExactPosterior, q: Gaussian) -> float:
    """KL(q || exact posterior), or inf when either covariance is not finite and positive definite."""
    try:
        return exact.kl_to_exact(q)
    except (np.linalg.LinAlgError, ValueError):
        return math.inf


def colour_for(label: str) -> str:
    """One stable colour per fit label on the light background (chart_style.method_style)."""
    return method_style(label).colour


def fit_line(label: str, width: float = FIT_LINE_WIDTH) -> dict[str, object]:
    """A fit's line: its method's colour and dash pattern (colour never tells methods apart alone)."""
    style = method_style(label)
    return {"color": style.colour, "dash": style.dash, "width": width}


def fit_marker(label: str) -> dict[str, object]:
    """A fit's markers along its line: its method's symbol, MARKERS_SHOWN of them."""
    style = method_style(label)
    return {"color": style.colour, "symbol": style.symbol, "size": MARKER_SIZE, "maxdisplayed": MARKERS_SHOWN}


def scatter(**properties: Any) -> Trace:
    """A scatter trace of these properties (Trace)."""
    return {"type": "scatter", **properties}


def trace_property(trace: BaseTraceType | Trace, name: str) -> Any:
    """A property of a trace object or of a Trace (None where it is not set; a Trace's type is scatter by default)."""
    if isinstance(trace, dict):
        return trace.get(name, "scatter" if name == "type" else None)
    return getattr(trace, name)


def fit_trace(x: Any, y: Any, label: str, name: str | None = None, **options: Any) -> Trace:
    """One fit's line with its method's colour, dash and markers; meta names the fit for text alternatives."""
    return scatter(
        x=x,
        y=y,
        mode="lines+markers",
        name=label if name is None else name,
        line=fit_line(label),
        marker=fit_marker(label),
        meta={"role": "fit", "label": label},
        **options,
    )


@functools.lru_cache(maxsize=64)
def _rgba(colour: str, alpha: float) -> str:
    """'#rrggbb' as an rgba() string with the given opacity."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def downsample_indices(count: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most `max_points` evenly spaced indices into `count` items, always keeping the first and the last."""
    if count <= max_points:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max_points).round().astype(int))


def trajectory_indices(count: int, max_points: int = TRAJECTORY_POINTS) -> np.ndarray:
    """At most `max_points` indices into `count` items: every stride-th from the first, then the last.

    The stride is the least power of two that fits (more than max_points / 2 indices are kept), so while items are
    appended the indices already chosen stay chosen, all but the last: a live chart gains points and replaces its
    last one, and is drawn anew only when the stride doubles.
    """
    if count <= max_points:
        return np.arange(count)
    stride = 1
    while -(-(count - 1) // stride) + 1 > max_points:
        stride *= 2
    return np.append(np.arange(0, count - 1, stride), count - 1)


def _thin(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The snapshots to draw: at most TRAJECTORY_POINTS, evenly spaced, first and last kept (trajectory_indices)."""
    return [snapshots[i] for i in trajectory_indices(len(snapshots))]


def _trajectory(snapshots: Sequence[Snapshot], value: Callable[[Snapshot], float]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values of the thinned snapshots as arrays (plotly checks an array at once, a list item by item)."""
    shown = _thin(snapshots)
    steps = np.fromiter((s.step for s in shown), dtype=np.int64, count=len(shown))
    return steps, np.fromiter((value(s) for s in shown), dtype=np.float64, count=len(shown))


def _nice_step(span: float) -> float:
    """A round grid step (1, 2 or 5 times a power of ten) of about span / 8."""
    raw = max(span, 1e-300) / 8.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(multiple * power for multiple in (1.0, 2.0, 5.0, 10.0) if multiple * power >= raw)


def _finite_array(values: Iterable[float] | np.ndarray) -> np.ndarray:
    """The finite values as float64, clipped to +-AXIS_LIMIT so sums and spans of them cannot overflow."""
    numbers = np.array(values if isinstance(values, np.ndarray) else list(values), dtype=np.float64).ravel()
    return np.clip(numbers[np.isfinite(numbers)], -AXIS_LIMIT, AXIS_LIMIT)


def finite_values(values: Iterable[float] | np.ndarray) -> list[float]:
    """The finite values as floats, clipped to +-AXIS_LIMIT so sums and spans of them cannot overflow."""
    return _finite_array(values).tolist()


def covering_range(values: Iterable[float], fallback: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float]:
    """(low, high) of the finite values (`fallback` when none is), widened about its middle to a drawable width.

    The width is at least MIN_RELATIVE_SPAN of the values' size (1 around 0), so grids laid on it keep distinct points.
    """
    finite = finite_values(values) or list(fallback)
    low, high = min(finite), max(finite)
    least = MIN_RELATIVE_SPAN * max(abs(low), abs(high)) or 1.0
    if high - low < least:
        middle = 0.5 * low + 0.5 * high
        low, high = middle - 0.5 * least, middle + 0.5 * least
    return low, high


def stable_range(
    reference: Sequence[float] | np.ndarray, seen: Sequence[float] | np.ndarray, reach: float = 20.0
) -> list[float]:
    """Axis range covering finite `reference` and `seen` values, snapped outward to a round grid.

    It only grows as new values are seen and moves in round steps, so live redraws rarely jump; `seen` values
    farther than `reach` reference spans from the reference are clipped (a diverging fit must not flatten the chart).
    Non-finite values are left out; with no finite reference the seen values (or [0, 1]) stand in. The result is
    always two finite numbers, low < high, whatever the inputs' size.
    """
    finite_reference, finite_seen = _finite_array(reference), _finite_array(seen)
    if not finite_reference.size:
        finite_reference, finite_seen = finite_seen if finite_seen.size else np.array([0.0, 1.0]), finite_seen[:0]
    low, high = float(finite_reference.min()), float(finite_reference.max())
    # Below 1e-12 of the values' size (and below float spacing) a span cannot be drawn: widen it to that.
    span = max(high - low, 1e-12 * max(1.0, abs(low), abs(high)))
    if finite_seen.size:
        low = max(min(low, float(finite_seen.min())), low - reach * span)
        high = min(max(high, float(finite_seen.max())), high + reach * span)
    step = _nice_step(max(high - low, span))
    snapped = [math.floor(low / step - 0.25) * step, math.ceil(high / step + 0.25) * step]
    return [max(snapped[0], -2.0 * AXIS_LIMIT), min(snapped[1], 2.0 * AXIS_LIMIT)]


def _log_range(reference: Sequence[float], seen: Sequence[float]) -> list[float]:
    """Log10 axis range covering positive finite `reference` and `seen` values, snapped outward to whole decades.

    Values that are not finite and positive are left out; with none at all the range is one decade either side of 1.
    """
    positive_reference = [v for v in finite_values(reference) if v > 0]
    values = positive_reference + [v for v in finite_values(seen) if v > 0]
    if not values:
        return [-1, 1]
    low = min(values)
    if positive_reference:  # a sd collapsing to 1e-300 must not squash the chart
        low = max(low, min(positive_reference) * 1e-4)
    return [math.floor(math.log10(low) - 0.1), math.ceil(math.log10(max(values)) + 0.1)]


def _snap_125(value: float, up: bool) -> float:
    """log10 of the nearest 1, 2 or 5 times a power of ten at or beyond `value` (> 0), upward when `up`."""
    exponent = math.floor(math.log10(value))
    candidates = [multiple * 10.0**power for power in (exponent - 1, exponent, exponent + 1) for multiple in (1, 2, 5)]
    chosen = (
        min(c for c in candidates if c >= value * (1 - 1e-12))
        if up
        else max(c for c in candidates if c <= value * (1 + 1e-12))
    )
    return math.log10(chosen)


def sd_log_range(
    reference: Sequence[float] | np.ndarray, seen: Sequence[float] | np.ndarray, focus: bool = False
) -> list[float]:
    """Log10 axis range covering positive finite `reference` and `seen` values, snapped outward to 1, 2 or 5 times a
    power of ten (so a live redraw rarely moves it).

    With `focus`, seen values more than FOCUS_RATIO times beyond the reference values are left outside; without it
    only a sd collapsing below 1e-4 of the smallest reference is. With no positive value at all: 0.1 to 10.
    """
    finite_reference, finite_seen = _finite_array(reference), _finite_array(seen)
    positive_reference = finite_reference[finite_reference > 0]
    values = np.concatenate([positive_reference, finite_seen[finite_seen > 0]])
    if not values.size:
        return [-1.0, 1.0]
    low, high = float(values.min()), float(values.max())
    if positive_reference.size:
        reach_below = FOCUS_RATIO if focus else 1e4
        low = max(low, float(positive_reference.min()) / reach_below)
        if focus:
            high = min(high, float(positive_reference.max()) * FOCUS_RATIO)
    low_log, high_log = _snap_125(low * 0.9, up=False), _snap_125(high * 1.1, up=True)
    return [low_log, max(high_log, low_log + math.log10(2.0))]


def legend_below(
    traces: Sequence[BaseTraceType | Trace], plot_area_height: int = PLOT_AREA_HEIGHT, right_margin: int = 30
) -> dict[str, Any]:
    """Layout with one legend entry per row under the x-axis title, the figure as tall as the plot area needs.

    The legend sits in a bottom margin sized for its entries, so a long legend never covers the axis and the plot
    area keeps its height whether one method or all of them are drawn.
    """
    entries = sum(1 for trace in traces if _in_legend(trace))
    bottom = BELOW_PLOT_AREA + LEGEND_ROW_HEIGHT * entries
    return {
        "height": TOP_MARGIN + plot_area_height + bottom,
        "margin": {"l": 70, "r": right_margin, "t": TOP_MARGIN, "b": bottom},
        "legend": {
            "orientation": "v",
            "yref": "container",
            "yanchor": "bottom",
            "y": 0.0,
            "x": 0.0,
            **NO_GROUP_GAP,
        },
    }


def legend_rows(names: Sequence[str], width: float = LEGEND_WIDTH, font_size: float = FONT_SIZE) -> int:
    """Rows a horizontal legend of these entry names takes in `width` px (an estimate).

    plotly.js lays a legend that does not fit one row out in columns as wide as its widest entry.
    """
    if not names:
        return 0
    entries = [LEGEND_SYMBOL_WIDTH + LEGEND_CHAR_WIDTH * font_size * len(name) for name in names]
    if sum(entries) <= width:
        return 1
    columns = max(1, int(width // max(entries)))
    return math.ceil(len(entries) / columns)


def _in_legend(trace: BaseTraceType | Trace) -> bool:
    """Whether the trace has an entry in the legend."""
    return trace_property(trace, "type") in LEGEND_TRACE_TYPES and trace_property(trace, "showlegend") is not False


def legend_above(traces: Sequence[BaseTraceType | Trace], plot_area_height: int = PLOT_AREA_HEIGHT) -> dict[str, Any]:
    """Layout with the legend in rows between the title and the plot area: on screen whenever the chart's top is.

    The top margin is sized for the title and the rows the entries take in LEGEND_WIDTH px, so the legend never
    covers the title or the plot.
    """
    names = [str(trace_property(trace, "name") or "") for trace in traces if _in_legend(trace)]
    top = TITLE_HEIGHT + LEGEND_ROW_HEIGHT * legend_rows(names) + LEGEND_GAP + 6
    height = top + plot_area_height + BELOW_PLOT_AREA
    return {
        "height": height,
        "margin": {"l": 70, "r": 30, "t": top, "b": BELOW_PLOT_AREA},
        # Anchored on the plot area's top edge, growing up into the top margin: it stays there when the figure is
        # drawn taller (a focus view) or with larger type.
        "legend": {
            "orientation": "h",
            "yref": "paper",
            "yanchor": "bottom",
            "y": 1.0 + LEGEND_GAP / plot_area_height,  # paper units: the plot area's height is 1
            "x": 0.0,
            **NO_GROUP_GAP,
        },
    }


def title_layout(title: str) -> dict[str, Any]:
    """A chart title at the top left, above a legend placed under it."""
    return {
        "text": title,
        "x": 0.0,
        "xanchor": "left",
        "yref": "container",
        "y": 1.0,
        "yanchor": "top",
        "pad": {"t": 10},
        "font": {"size": TITLE_SIZE},
    }


def axis(title: str, **options: Any) -> dict[str, Any]:
    """An axis with its title set off from the tick labels (automargin places it below them, never on them)."""
    return {"title": {"text": title, "standoff": AXIS_TITLE_STANDOFF}, "automargin": True, **options}


def _figure_spec(
    traces: Sequence[Trace],
    title: str,
    x_title: str,
    y_title: str,
    x_range: list[float],
    yaxis: dict | None = None,
    plot_area_height: int = PLOT_AREA_HEIGHT,
    **layout: object,
) -> FigureSpec:
    """The traces on the shared projector-friendly layout: big fonts, legend above, fixed x range, no transitions."""
    return {
        "data": list(traces),
        "layout": {
            "template": LIGHT_TEMPLATE_JSON,
            "title": title_layout(title),
            "font": {"size": FONT_SIZE},
            **legend_above(traces, plot_area_height),
            "uirevision": "bayesdemo",
            "xaxis": axis(x_title, range=x_range, autorange=False),
            "yaxis": axis(y_title, autorange=False, **(yaxis or {})),
            **layout,
        },
    }


def figure_of(spec: FigureSpec) -> go.Figure:
    """The plotly figure of `spec`, built in one go (adding traces and layout one call at a time re-checks the whole
    figure each time: 3x slower); each trace object is built, and checked when VALIDATE, once from its Trace."""
    return go.Figure(_validate=VALIDATE, data=spec["data"], layout=spec["layout"])


def _reference_line(value: float, total_steps: int, name: str, colour: str, dash: str) -> Trace:
    """A horizontal reference line across the whole run, named in the legend."""
    return scatter(
        x=[0, total_steps],
        y=[value, value],
        mode="lines",
        name=name,
        line={"color": colour, "dash": dash, "width": REFERENCE_LINE_WIDTH},
        meta={"role": "reference"},
    )


def tick_text(value: float) -> str:
    """A log-axis tick's full value: 0.02 or 5,000, never a bare mantissa digit; 3×10⁻⁷ far from 1."""
    if 1e-4 <= value < 1e6:
        return f"{value:,.6g}"
    exponent = math.floor(math.log10(value))
    mantissa = round(value / 10.0**exponent, 6)
    power = f"10<sup>{exponent}</sup>"
    return power if mantissa == 1 else f"{mantissa:g}×{power}"


def log_ticks(log_range: Sequence[float]) -> dict[str, Any]:
    """Tick values and full-value labels of a log axis spanning `log_range` (log10 of its ends).

    Up to 3 decades: 1, 2 and 5 times each power of ten; beyond, the decades alone (at most about 12 ticks).
    """
    low, high = math.floor(log_range[0]), math.ceil(log_range[1])
    decades = high - low
    multiples = (1.0, 2.0, 5.0) if decades <= 3 else (1.0,)
    every = max(1, math.ceil(decades / 12))
    values = [
        multiple * 10.0**exponent
        for exponent in range(low, high + 1, every if multiples == (1.0,) else 1)
        for multiple in multiples
        if log_range[0] - 1e-9 <= math.log10(multiple) + exponent <= log_range[1] + 1e-9
    ]
    return {"tickmode": "array", "tickvals": values, "ticktext": [tick_text(value) for value in values]}


def _check_parameter(parameter: int) -> str:
    """The parameter's name, or ValueError naming the index."""
    if parameter not in (0, 1):
        raise ValueError(f"parameter must be 0 (slope) or 1 (intercept), got {parameter!r}")
    return PARAMETER_NAMES[parameter]


@never_warns
def mean_spec(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> FigureSpec:
    """q's mean of one parameter vs step, over the exact posterior mean m_N and its +-1 sd band (PRML 3.49-3.51)."""
    name = _check_parameter(parameter)
    mean, sd = float(exact.mean[parameter]), float(exact.sd[parameter])
    traces = [
        scatter(
            x=[0, total_steps, total_steps, 0, 0],
            y=[mean - sd, mean - sd, mean + sd, mean + sd, mean - sd],
            fill="toself",
            mode="lines",
            line={"color": BAND_EDGE_COLOUR, "width": 1.5, "dash": "dot"},  # edges readable where the fill is faint
            fillcolor=_rgba(EXACT_COLOUR, 0.12),
            name="exact ±1 sd",
            hoverinfo="skip",
            meta={"role": "reference"},
        ),
        _reference_line(mean, total_steps, f"exact mean {mean:.4g}", EXACT_COLOUR, "dash"),
    ]
    seen: list[np.ndarray] = []
    for label, snapshots in fits:
        steps, values = _trajectory(snapshots, lambda s: s.mean[parameter])
        seen.append(values)
        traces.append(fit_trace(steps, values, label))
    y_axis = {"range": stable_range([mean - 4 * sd, mean + 4 * sd], np.concatenate([np.empty(0), *seen]))}
    return _figure_spec(traces, f"Mean of the {name}", "step", f"q's mean of the {name}", [0, total_steps], y_axis)


def _latest(values: np.ndarray) -> float:
    """The last finite value of a trajectory, nan when none is."""
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else math.nan


def off_scale_note(label: str, value: float, above: bool) -> dict[str, Any]:
    """An annotation at the plot area's top (or bottom) edge naming a fit drawn off the chart and its latest sd."""
    arrow, where = ("↑", "above") if above else ("↓", "below")
    return {
        "text": f"{arrow} {label}: sd {value:.3g}, {where} the chart",
        "xref": "paper",
        "yref": "paper",
        "x": 0.01,
        "y": 0.98 if above else 0.02,
        "xanchor": "left",
        "yanchor": "top" if above else "bottom",
        "showarrow": False,
        "font": {"color": LIGHT_TEXT},
        "bgcolor": "rgba(255,255,255,0.85)",
        "bordercolor": colour_for(label),
        "borderwidth": 2,
    }


@never_warns
def sd_spec(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> FigureSpec:
    """q's sd of one parameter vs step (log axis) against the exact sd and mean-field optimum (PRML 10.12-10.13).

    Beside other fits the axis reaches at most FOCUS_RATIO times past the reference sds, so the fits near them keep
    the chart's height; a fit whose latest sd lies beyond (noise injection's sds stay far above the posterior's) is
    named at the chart's edge with its latest sd.
    """
    name = _check_parameter(parameter)
    exact_sd = float(exact.sd[parameter])
    mean_field_sd = float(exact.mean_field_sd[parameter])
    references = [exact_sd, mean_field_sd]
    traces = [
        _reference_line(exact_sd, total_steps, f"exact sd {exact_sd:.3g}", EXACT_COLOUR, "dash"),
        _reference_line(
            mean_field_sd, total_steps, f"mean-field optimum {mean_field_sd:.3g}", MEAN_FIELD_COLOUR, "dot"
        ),
    ]
    drawn = []
    for label, snapshots in fits:
        steps, values = _trajectory(snapshots, lambda s: s.sd[parameter])
        drawn.append((label, values))
        traces.append(fit_trace(steps, values, label))
    seen = np.concatenate([np.empty(0), *(values for _, values in drawn)])
    log_range = sd_log_range(references, seen, focus=len(drawn) > 1)
    notes = []
    for label, values in drawn:
        latest = _latest(values)
        if len(drawn) > 1 and math.isfinite(latest) and latest > 0:
            if math.log10(latest) > log_range[1]:
                notes.append(off_scale_note(label, latest, above=True))
            elif math.log10(latest) < log_range[0]:
                notes.append(off_scale_note(label, latest, above=False))
    y_axis = {"type": "log", "range": log_range, **log_ticks(log_range)}
    title = f"Sd of the {name} (log scale)"
    # No annotations key without notes: plotly's checks drop an empty list, and the JSON must be theirs.
    notes_layout: dict[str, Any] = {"annotations": notes} if notes else {}
    return _figure_spec(traces, title, "step", f"q's sd of the {name}", [0, total_steps], y_axis, **notes_layout)


def _loss_name(label: str) -> str:
    """A loss trace's legend name: the fit's label, saying what its loss is when it is not a negative ELBO."""
    if has_mse_loss(label):
        return f"{label}: MSE (not an ELBO)"
    if has_likelihood_loss(label):
        return f"{label}: −log-likelihood (not an ELBO)"
    return label


@never_warns
def loss_spec(fits: Traces, exact: ExactPosterior, total_steps: int) -> FigureSpec:
    """Loss (negative ELBO estimate) vs step above -log p(y): the gap is KL(q || exact) (docs/MATH.md, ELBO).

    An MSE (noise injection, BBB's MSE notch) is not a negative ELBO and has no floor at -log p(y): it gets a panel
    of its own (log axis, y axis 2, under the ELBO panel), or the whole chart when no fit has an ELBO-like loss.
    """
    floor = -float(exact.log_evidence)
    mean_field_gap = safe_kl(exact, exact.mean_field)
    noise_variance = float(exact.model.noise_sd) ** 2
    elbo_traces: list[Trace] = [
        _reference_line(
            floor,
            total_steps,
            f"−log p(y) = {floor:.4g}: loss above it = KL(q ‖ exact) on average",
            EXACT_COLOUR,
            "dash",
        ),
        _reference_line(
            floor + mean_field_gap,
            total_steps,
            f"best mean-field loss (KL {mean_field_gap:.3g})",
            MEAN_FIELD_COLOUR,
            "dot",
        ),
    ]
    mse_traces: list[Trace] = []
    mse_seen: list[float] = []
    elbo_fits = 0
    for label, snapshots in fits:
        steps, losses = _trajectory(snapshots, lambda s: s.loss)
        finite = np.isfinite(losses)
        steps, losses = steps[finite], losses[finite]
        if has_mse_loss(label):
            mse_seen.extend(losses.tolist())
            mse_traces.append(fit_trace(steps, losses, label, _loss_name(label)))
        else:
            elbo_fits += 1
            elbo_traces.append(fit_trace(steps, losses, label, _loss_name(label)))
    mse_reference = _reference_line(
        noise_variance, total_steps, f"s² = {noise_variance:.3g}: the true line's MSE on average", TRUTH_COLOUR, "dash"
    )
    mse_range = _log_range([noise_variance], mse_seen)
    mse_axis = {"type": "log", "range": mse_range, **log_ticks(mse_range)}
    if mse_traces and not elbo_fits:
        title = "Loss: MSE (no prior, no KL: not an ELBO)"
        return _figure_spec([mse_reference, *mse_traces], title, "step", "MSE (log scale)", [0, total_steps], mse_axis)
    # Zoomed on the gap: early losses (thousands) leave the top of the chart, the KL that remains is what matters.
    y_range = stable_range([floor - 2.0, floor + max(10.0, 5.0 * mean_field_gap)], [], reach=0.0)
    y_axis = {"range": y_range}
    if not mse_traces:
        title = "Loss: negative ELBO (zoomed near −log p(y))"
        return _figure_spec(elbo_traces, title, "step", "loss = −ELBO estimate", [0, total_steps], y_axis)
    # Two panels on one step axis: the negative ELBO above, the MSE below, each with its own title and y axis.
    for trace in (mse_reference, *mse_traces):
        trace["yaxis"] = "y2"
    plot_area = PLOT_AREA_HEIGHT + PANEL_GAP + MSE_PANEL_HEIGHT
    mse_top = MSE_PANEL_HEIGHT / plot_area
    elbo_bottom = (MSE_PANEL_HEIGHT + PANEL_GAP) / plot_area
    spec = _figure_spec(
        [*elbo_traces, mse_reference, *mse_traces],
        "Loss: negative ELBO (upper panel), MSE (lower panel)",
        "step",
        "loss = −ELBO estimate",
        [0, total_steps],
        {**y_axis, "domain": [elbo_bottom, 1.0]},
        plot_area,
        yaxis2=axis("MSE (log)", autorange=False, domain=[0.0, mse_top], **mse_axis),
        annotations=[
            {
                "text": "MSE: not an ELBO, no floor at −log p(y)",
                "xref": "paper",
                "yref": "paper",
                "x": 0.0,
                "y": mse_top + 12 / plot_area,  # clear of the lower panel's top tick label
                "xanchor": "left",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"color": LIGHT_TEXT},
            }
        ],
    )
    spec["layout"]["xaxis"]["anchor"] = "y2"  # the step axis under the lower panel
    spec["layout"]["yaxis"]["anchor"] = "x"
    spec["layout"]["yaxis2"]["anchor"] = "x"
    return spec


@never_warns
def data_spec(
    dataset: Dataset,
    exact: ExactPosterior,
    fits: Sequence[tuple[str, Gaussian]],
    noise_sd: float,
    true_line: tuple[float, float] | None,
) -> FigureSpec:
    """Data, true line, exact predictive mean with 95% line and observation bands, each fit's 95% line band.

    Bands follow PRML 3.57-3.59: line sd sqrt(phi^T S phi), observation sd sqrt(s^2 + phi^T S phi).
    """
    low, high = float(dataset.x.min()), float(dataset.x.max())
    margin = 0.05 * (high - low)
    grid = np.linspace(low - margin, high + margin, 101)
    mean, line_sd, obs_sd = exact.predictive(grid)
    traces = [
        _band(grid, mean - Z95 * obs_sd, mean + Z95 * obs_sd, EXACT_COLOUR, 0.07, "exact 95% for new y", dash="dot"),
        _band(grid, mean - Z95 * line_sd, mean + Z95 * line_sd, EXACT_COLOUR, 0.2, "exact 95% for the line"),
    ]
    chosen = (
        np.sort(np.random.default_rng(0).choice(dataset.n, MAX_POINTS, replace=False))
        if dataset.n > MAX_POINTS
        else np.arange(dataset.n)
    )
    traces.append(
        scatter(
            x=dataset.x[chosen],
            y=dataset.y[chosen],
            mode="markers",
            name="data" if chosen.size == dataset.n else f"data ({chosen.size} of {dataset.n} shown)",
            marker={"color": DATA_COLOUR, "size": 7, "opacity": 0.7},
        )
    )
    traces.append(
        scatter(
            x=grid,
            y=mean,
            mode="lines",
            name="exact posterior mean",
            line={"color": EXACT_COLOUR, "width": REFERENCE_LINE_WIDTH},
            meta={"role": "reference"},
        )
    )
    if true_line is not None:
        slope, intercept = true_line
        traces.append(
            scatter(
                x=grid,
                y=slope * grid + intercept,
                mode="lines",
                name=f"true line y = {slope:g} x + {intercept:g}",
                line={"color": TRUTH_COLOUR, "dash": "dash", "width": 2.5},
                meta={"role": "reference"},
            )
        )
    for label, q in fits:
        fit_mean, fit_line_sd, _ = predictive(q, grid, noise_sd)
        band = _band(
            grid,
            fit_mean - Z95 * fit_line_sd,
            fit_mean + Z95 * fit_line_sd,
            colour_for(label),
            0.15,
            f"{label} 95%",
            colour_for(label),
            dash=method_style(label).dash,
        )
        band["line"]["width"] = FIT_LINE_WIDTH
        band["meta"] = {"role": "fit", "label": label}
        traces.append(band)
    y_values = [float(dataset.y.min()), float(dataset.y.max())]
    y_values += [float(np.min(mean - Z95 * obs_sd)), float(np.max(mean + Z95 * obs_sd))]
    y_axis = {"range": stable_range(y_values, [])}
    return _figure_spec(traces, "Data and 95% bands of the line", "x", "y", [float(grid[0]), float(grid[-1])], y_axis)


def _band(
    x: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    colour: str,
    alpha: float,
    name: str,
    edge: str | None = None,
    dash: str = "dash",
) -> Trace:
    """A filled band between `lower` and `upper` over `x`, drawn as one closed polygon (upper out, lower back).

    Its edge is drawn in `edge` (BAND_EDGE_COLOUR by default: a pale fill alone washes out on a projector).
    """
    return scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([upper, lower[::-1]]),
        fill="toself",
        mode="lines",
        fillcolor=_rgba(colour, alpha),
        line={"color": edge or BAND_EDGE_COLOUR, "width": 1.5, "dash": dash},
        name=name,
        hoverinfo="skip",
        meta={"role": "reference"},
    )


@never_warns
def fig_mean(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> go.Figure:
    """The figure of mean_spec."""
    return figure_of(mean_spec(fits, exact, parameter, total_steps))


@never_warns
def fig_sd(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> go.Figure:
    """The figure of sd_spec."""
    return figure_of(sd_spec(fits, exact, parameter, total_steps))


@never_warns
def fig_loss(fits: Traces, exact: ExactPosterior, total_steps: int) -> go.Figure:
    """The figure of loss_spec."""
    return figure_of(loss_spec(fits, exact, total_steps))


@never_warns
def fig_data(
    dataset: Dataset,
    exact: ExactPosterior,
    fits: Sequence[tuple[str, Gaussian]],
    noise_sd: float,
    true_line: tuple[float, float] | None,
) -> go.Figure:
    """The figure of data_spec."""
    return figure_of(data_spec(dataset, exact, fits, noise_sd, true_line))
