"""Pure functions returning plotly figures of fits against the exact posterior; fixed axes keep live redraws still."""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from bayesdemo.data import Dataset
from bayesdemo.exact import ExactPosterior, Gaussian, predictive
from bayesdemo.methods.config import GUIDE_LABELS, METHOD_LABELS
from bayesdemo.priors import PARAMETER_NAMES
from bayesdemo.runner import Snapshot
from bayesdemo.scenario import has_likelihood_loss, has_mse_loss

MAX_POINTS = 2000  # most points drawn per scatter (redraw cost on a projector laptop)
TRAJECTORY_POINTS = 400  # most points per live trajectory: about one per pixel of a half-width chart's plot area
Z95 = 1.959963984540054  # two-sided 95% normal quantile
EXACT_COLOUR = "#222222"  # the exact posterior: the reference every fit is judged against
MEAN_FIELD_COLOUR = "#7f7f7f"  # the mean-field optimum: where diagonal guides must stop
TRUTH_COLOUR = "#2ca02c"  # the line the data were simulated from
PALETTE = ("#d62728", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
KNOWN_COLOURS = {
    METHOD_LABELS["noise"]: "#d62728",
    METHOD_LABELS["bbb"]: "#1f77b4",
    f"{METHOD_LABELS['svi']}, {GUIDE_LABELS['normal']}": "#ff7f0e",
    f"{METHOD_LABELS['svi']}, {GUIDE_LABELS['mvn']}": "#9467bd",
    f"{METHOD_LABELS['svi']}, {GUIDE_LABELS['tutorial']}": "#8c564b",
}
FONT_SIZE = 14  # ticks and legend: readable from the back of a classroom, long legends still fit
TITLE_SIZE = 19  # px, chart titles
GRID_COLOUR = "#EBF0F8"  # light grid lines, as in plotly_white
PLOT_AREA_HEIGHT = 230  # px between the title and the x axis: two charts side by side fit a 1280x800 projector
TOP_MARGIN = 60  # px, room for the title
BELOW_PLOT_AREA = 62  # px under the plot area for the tick labels and the x-axis title, before the legend
LEGEND_ROW_HEIGHT = 22  # px per legend entry at FONT_SIZE
LEGEND_TRACE_TYPES = ("scatter", "bar")  # the trace types drawn here that show in the legend by default
AXIS_LIMIT = 1e300  # values beyond this size are drawn at it: spans and round steps of larger ones overflow float64
MIN_RELATIVE_SPAN = 1e-9  # narrowest axis span, relative to the values' size: 201 grid points on it stay distinct

Traces = Sequence[tuple[str, Sequence[Snapshot]]]
Builder = TypeVar("Builder", bound=Callable[..., go.Figure])


def never_warns(builder: Builder) -> Builder:
    """`builder` with numpy's floating-point warnings off: an overflow to inf or a 0/0 is drawn as a gap, never raised.

    Every figure builder is wrapped in it: data near float64's limits must give a chart, not a traceback.
    """

    @functools.wraps(builder)
    def quiet(*args: Any, **kwargs: Any) -> go.Figure:
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
    """One stable colour per fit label (the same across reruns and processes: crc32, not the salted hash())."""
    if label in KNOWN_COLOURS:
        return KNOWN_COLOURS[label]
    return PALETTE[zlib.crc32(label.encode("utf-8")) % len(PALETTE)]


def _rgba(colour: str, alpha: float) -> str:
    """'#rrggbb' as an rgba() string with the given opacity."""
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def downsample_indices(count: int, max_points: int = MAX_POINTS) -> np.ndarray:
    """At most `max_points` evenly spaced indices into `count` items, always keeping the first and the last."""
    if count <= max_points:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, max_points).round().astype(int))


def _thin(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """The snapshots to draw: at most TRAJECTORY_POINTS, first and last kept."""
    return [snapshots[i] for i in downsample_indices(len(snapshots), TRAJECTORY_POINTS)]


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


def finite_values(values: Iterable[float]) -> list[float]:
    """The finite values as floats, clipped to +-AXIS_LIMIT so sums and spans of them cannot overflow."""
    kept = []
    for value in values:
        number = float(value)
        if math.isfinite(number):
            kept.append(min(max(number, -AXIS_LIMIT), AXIS_LIMIT))
    return kept


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


def stable_range(reference: Sequence[float], seen: Sequence[float], reach: float = 20.0) -> list[float]:
    """Axis range covering finite `reference` and `seen` values, snapped outward to a round grid.

    It only grows as new values are seen and moves in round steps, so live redraws rarely jump; `seen` values
    farther than `reach` reference spans from the reference are clipped (a diverging fit must not flatten the chart).
    Non-finite values are left out; with no finite reference the seen values (or [0, 1]) stand in. The result is
    always two finite numbers, low < high, whatever the inputs' size.
    """
    finite_reference, finite_seen = finite_values(reference), finite_values(seen)
    if not finite_reference:
        finite_reference, finite_seen = finite_seen or [0.0, 1.0], []
    low, high = min(finite_reference), max(finite_reference)
    # Below 1e-12 of the values' size (and below float spacing) a span cannot be drawn: widen it to that.
    span = max(high - low, 1e-12 * max(1.0, abs(low), abs(high)))
    if finite_seen:
        low = max(min(low, *finite_seen), low - reach * span)
        high = min(max(high, *finite_seen), high + reach * span)
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


# A small white template: the stock "plotly_white" is deep-copied on every use and cost ~10 ms per figure, the
# largest part of a live redraw (six figures four times a second).
LIGHT_TEMPLATE = go.layout.Template(
    layout={
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "xaxis": {"gridcolor": GRID_COLOUR, "zerolinecolor": GRID_COLOUR, "linecolor": GRID_COLOUR},
        "yaxis": {"gridcolor": GRID_COLOUR, "zerolinecolor": GRID_COLOUR, "linecolor": GRID_COLOUR},
        "hovermode": "closest",
    }
)


def legend_below(
    traces: Sequence[BaseTraceType], plot_area_height: int = PLOT_AREA_HEIGHT, right_margin: int = 30
) -> dict[str, Any]:
    """Layout with one legend entry per row under the x-axis title, the figure as tall as the plot area needs.

    The legend sits in a bottom margin sized for its entries, so a long legend never covers the axis and the plot
    area keeps its height whether one method or all of them are drawn.
    """
    entries = sum(1 for trace in traces if trace.type in LEGEND_TRACE_TYPES and trace.showlegend is not False)
    bottom = BELOW_PLOT_AREA + LEGEND_ROW_HEIGHT * entries
    return {
        "height": TOP_MARGIN + plot_area_height + bottom,
        "margin": {"l": 70, "r": right_margin, "t": TOP_MARGIN, "b": bottom},
        "legend": {"orientation": "v", "yref": "container", "yanchor": "bottom", "y": 0.0, "x": 0.0},
    }


def _figure(
    traces: Sequence[go.Scatter],
    title: str,
    x_title: str,
    y_title: str,
    x_range: list[float],
    yaxis: dict | None = None,
    right_margin: int = 30,
    **layout: object,
) -> go.Figure:
    """The traces on the shared projector-friendly layout: big fonts, legend below, fixed x range, no transitions.

    Built in one go: adding traces and layout one call at a time re-checks the whole figure each time (3x slower).
    """
    return go.Figure(
        data=list(traces),
        layout={
            "template": LIGHT_TEMPLATE,
            "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": TITLE_SIZE}},
            "font": {"size": FONT_SIZE},
            **legend_below(traces, right_margin=right_margin),
            "uirevision": "bayesdemo",
            "xaxis": {"title": {"text": x_title}, "range": x_range, "autorange": False},
            "yaxis": {"title": {"text": y_title}, "autorange": False, **(yaxis or {})},
            **layout,
        },
    )


def _reference_line(value: float, total_steps: int, name: str, colour: str, dash: str) -> go.Scatter:
    """A horizontal reference line across the whole run, named in the legend."""
    return go.Scatter(
        x=[0, total_steps], y=[value, value], mode="lines", name=name, line={"color": colour, "dash": dash, "width": 3}
    )


def _check_parameter(parameter: int) -> str:
    """The parameter's name, or ValueError naming the index."""
    if parameter not in (0, 1):
        raise ValueError(f"parameter must be 0 (slope) or 1 (intercept), got {parameter!r}")
    return PARAMETER_NAMES[parameter]


@never_warns
def fig_mean(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> go.Figure:
    """q's mean of one parameter vs step, over the exact posterior mean m_N and its +-1 sd band (PRML 3.49-3.51)."""
    name = _check_parameter(parameter)
    mean, sd = float(exact.mean[parameter]), float(exact.sd[parameter])
    traces = [
        go.Scatter(
            x=[0, total_steps, total_steps, 0, 0],
            y=[mean - sd, mean - sd, mean + sd, mean + sd, mean - sd],
            fill="toself",
            mode="lines",
            line={"width": 0},
            fillcolor=_rgba(EXACT_COLOUR, 0.12),
            name="exact ±1 sd",
            hoverinfo="skip",
        ),
        _reference_line(mean, total_steps, f"exact mean {mean:.4g}", EXACT_COLOUR, "dash"),
    ]
    seen: list[float] = []
    for label, snapshots in fits:
        steps, values = _trajectory(snapshots, lambda s: s.mean[parameter])
        seen.extend(values.tolist())
        traces.append(go.Scatter(x=steps, y=values, mode="lines", name=label, line={"color": colour_for(label)}))
    y_axis = {"range": stable_range([mean - 4 * sd, mean + 4 * sd], seen)}
    return _figure(traces, f"Mean of the {name}", "step", f"q's mean of the {name}", [0, total_steps], y_axis)


@never_warns
def fig_sd(fits: Traces, exact: ExactPosterior, parameter: int, total_steps: int) -> go.Figure:
    """q's sd of one parameter vs step (log axis) against the exact sd and mean-field optimum (PRML 10.12-10.13)."""
    name = _check_parameter(parameter)
    exact_sd = float(exact.sd[parameter])
    mean_field_sd = float(exact.mean_field_sd[parameter])
    traces = [
        _reference_line(exact_sd, total_steps, f"exact sd {exact_sd:.3g}", EXACT_COLOUR, "dash"),
        _reference_line(
            mean_field_sd, total_steps, f"mean-field optimum {mean_field_sd:.3g}", MEAN_FIELD_COLOUR, "dot"
        ),
    ]
    seen: list[float] = []
    for label, snapshots in fits:
        steps, values = _trajectory(snapshots, lambda s: s.sd[parameter])
        seen.extend(values.tolist())
        traces.append(go.Scatter(x=steps, y=values, mode="lines", name=label, line={"color": colour_for(label)}))
    y_axis = {"type": "log", "range": _log_range([exact_sd, mean_field_sd], seen)}
    return _figure(traces, f"Sd of the {name} (log scale)", "step", f"q's sd of the {name}", [0, total_steps], y_axis)


@never_warns
def fig_loss(fits: Traces, exact: ExactPosterior, total_steps: int) -> go.Figure:
    """Loss (negative ELBO estimate) vs step above -log p(y): the gap is KL(q || exact) (docs/MATH.md, ELBO).

    Noise injection's loss (and BBB's MSE notch) is an MSE, not a negative ELBO: it goes on a right-hand log axis.
    """
    floor = -float(exact.log_evidence)
    mean_field_gap = safe_kl(exact, exact.mean_field)
    traces = [
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
    mse_seen: list[float] = []
    has_mse = False
    for label, snapshots in fits:
        steps, losses = _trajectory(snapshots, lambda s: s.loss)
        finite = np.isfinite(losses)
        steps, losses = steps[finite], losses[finite]
        if has_mse_loss(label):
            has_mse = True
            mse_seen.extend(losses.tolist())
            traces.append(
                go.Scatter(
                    x=steps,
                    y=losses,
                    mode="lines",
                    name=f"{label}: MSE, right axis (not an ELBO)",
                    line={"color": colour_for(label), "dash": "dashdot"},
                    yaxis="y2",
                )
            )
        else:
            name = f"{label}: −log-likelihood (not an ELBO)" if has_likelihood_loss(label) else label
            traces.append(go.Scatter(x=steps, y=losses, mode="lines", name=name, line={"color": colour_for(label)}))
    # Zoomed on the gap: early losses (thousands) leave the top of the chart, the KL that remains is what matters.
    y_range = stable_range([floor - 2.0, floor + max(10.0, 5.0 * mean_field_gap)], [], reach=0.0)
    mse_axis: dict[str, object] = {}
    if has_mse:
        mse_axis = {
            "yaxis2": {
                "title": {"text": "MSE (noise injection, no KL)"},
                "overlaying": "y",
                "side": "right",
                "type": "log",
                "autorange": False,
                "range": _log_range([exact.model.noise_sd**2], mse_seen),
                "dtick": 1,  # one tick per decade: 0.001, 0.01, ... rather than unrounded values
                "exponentformat": "power",
                "showgrid": False,
            },
        }
    title = "Loss: negative ELBO (zoomed near −log p(y))"
    y_axis = {"range": y_range}
    right_margin = 80 if has_mse else 30  # room for the MSE axis
    return _figure(traces, title, "step", "loss = −ELBO estimate", [0, total_steps], y_axis, right_margin, **mse_axis)


@never_warns
def fig_data(
    dataset: Dataset,
    exact: ExactPosterior,
    fits: Sequence[tuple[str, Gaussian]],
    noise_sd: float,
    true_line: tuple[float, float] | None,
) -> go.Figure:
    """Data, true line, exact predictive mean with 95% line and observation bands, each fit's 95% line band.

    Bands follow PRML 3.57-3.59: line sd sqrt(phi^T S phi), observation sd sqrt(s^2 + phi^T S phi).
    """
    low, high = float(dataset.x.min()), float(dataset.x.max())
    margin = 0.05 * (high - low)
    grid = np.linspace(low - margin, high + margin, 101)
    mean, line_sd, obs_sd = exact.predictive(grid)
    traces = [
        _band(grid, mean - Z95 * obs_sd, mean + Z95 * obs_sd, EXACT_COLOUR, 0.07, "exact 95% for new y"),
        _band(grid, mean - Z95 * line_sd, mean + Z95 * line_sd, EXACT_COLOUR, 0.2, "exact 95% for the line"),
    ]
    chosen = (
        np.sort(np.random.default_rng(0).choice(dataset.n, MAX_POINTS, replace=False))
        if dataset.n > MAX_POINTS
        else np.arange(dataset.n)
    )
    traces.append(
        go.Scatter(
            x=dataset.x[chosen],
            y=dataset.y[chosen],
            mode="markers",
            name="data" if chosen.size == dataset.n else f"data ({chosen.size} of {dataset.n} shown)",
            marker={"color": "#555555", "size": 7, "opacity": 0.7},
        )
    )
    traces.append(
        go.Scatter(x=grid, y=mean, mode="lines", name="exact posterior mean", line={"color": EXACT_COLOUR, "width": 3})
    )
    if true_line is not None:
        slope, intercept = true_line
        traces.append(
            go.Scatter(
                x=grid,
                y=slope * grid + intercept,
                mode="lines",
                name=f"true line y = {slope:g} x + {intercept:g}",
                line={"color": TRUTH_COLOUR, "dash": "dash", "width": 2},
            )
        )
    for label, q in fits:
        fit_mean, fit_line_sd, _ = predictive(q, grid, noise_sd)
        colour = colour_for(label)
        traces.append(
            _band(
                grid, fit_mean - Z95 * fit_line_sd, fit_mean + Z95 * fit_line_sd, colour, 0.25, f"{label} 95%", colour
            )
        )
    y_values = [float(dataset.y.min()), float(dataset.y.max())]
    y_values += [float(np.min(mean - Z95 * obs_sd)), float(np.max(mean + Z95 * obs_sd))]
    y_axis = {"range": stable_range(y_values, [])}
    return _figure(traces, "Data and 95% bands of the line", "x", "y", [float(grid[0]), float(grid[-1])], y_axis)


def _band(
    x: np.ndarray, lower: np.ndarray, upper: np.ndarray, colour: str, alpha: float, name: str, edge: str | None = None
) -> go.Scatter:
    """A filled band between `lower` and `upper` over `x`, drawn as one closed polygon (upper out, lower back)."""
    return go.Scatter(
        x=np.concatenate([x, x[::-1]]),
        y=np.concatenate([upper, lower[::-1]]),
        fill="toself",
        mode="lines",
        fillcolor=_rgba(colour, alpha),
        line={"color": edge or "rgba(0,0,0,0)", "width": 1},
        name=name,
        hoverinfo="skip",
    )
