"""Pure figure builders of the teaching views: parameter space, sequential updating, MCMC, basis functions, calibration.

Same conventions as figures.py: go.Scatter / go.Bar only (never Scattergl), the light template, fixed axis ranges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.basedatatypes import BaseTraceType

from bayesdemo.charts.chart_style import BBB_LABEL, DARKER_ORANGE, FAINT_COLOUR, OKABE_ITO, method_style
from bayesdemo.charts.chart_style import (
    MEAN_FIELD_LABEL as MEAN_FIELD_LABEL,  # a fit label drawn in the mean-field grey
)
from bayesdemo.charts.figures import (
    DATA_COLOUR,
    EXACT_COLOUR,
    FONT_SIZE,
    LIGHT_TEMPLATE,
    MEAN_FIELD_COLOUR,
    PLOT_AREA_HEIGHT,
    REFERENCE_LINE_WIDTH,
    TRUTH_COLOUR,
    Z95,
    _band,
    _rgba,
    axis,
    colour_for,
    covering_range,
    downsample_indices,
    finite_values,
    fit_line,
    fit_marker,
    legend_below,
    never_warns,
    stable_range,
    title_layout,
)
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import Gaussian, predictive
from bayesdemo.core.priors import PARAMETER_NAMES, ParameterPrior
from bayesdemo.references.basis import BasisPosterior, EvidenceCurve
from bayesdemo.references.calibration import CalibrationResult
from bayesdemo.references.parameter_space import ellipse_points, has_ellipse

EXPLORE_PLOT_AREA_HEIGHT = PLOT_AREA_HEIGHT + 60  # px: taller plot areas, e.g. a rounder parameter space
PRIOR_COLOUR = TRUTH_COLOUR  # the prior, before any data (always dotted)
VI_COLOUR = method_style(BBB_LABEL).colour  # Bayes by Backprop on the same points
MCMC_COLOUR = DARKER_ORANGE  # NUTS draws
SEEN_COLOUR = OKABE_ITO["vermillion"]  # the points used so far, and the model size shown
DENSITY_POINTS = 201  # grid points of a drawn density
EVIDENCE_WINDOW = 40.0  # nats below the best log evidence shown; worse models fall off the bottom of the chart
PRIOR_REACH_SDS = 5.0  # a marginal chart spans the exact mean +- this many exact sds (and each fit's +- 4 sds)
CALIBRATION_NAMES = {"exact": "exact posterior", "mean_field": "mean-field optimum", "bbb": "Bayes by Backprop"}

# The live parameter-space figure is built without plotly's check of every property, as figures.VALIDATE;
# tests/test_figures_explore.py builds it both ways, awkward inputs included, and requires the same JSON.
VALIDATE = False

Named = Sequence[tuple[str, Gaussian]]


def _fit_curve(x: np.ndarray, y: np.ndarray, label: str, name: str) -> go.Scatter:
    """A fit's density or curve: its method's colour, dash pattern and marker symbol."""
    return go.Scatter(
        x=x,
        y=y,
        mode="lines+markers",
        name=name,
        line=fit_line(label),
        marker=fit_marker(label),
        meta={"role": "fit", "label": label},
    )


def _new_figure() -> go.Figure:
    """An empty figure on the light template."""
    return go.Figure(layout={"template": LIGHT_TEMPLATE})


def _exact_curve(x: np.ndarray, density: np.ndarray, name: str) -> go.Scatter:
    """The exact reference density as a thick dark line."""
    return go.Scatter(
        x=x,
        y=density,
        mode="lines",
        name=name,
        line={"color": EXACT_COLOUR, "width": REFERENCE_LINE_WIDTH},
        meta={"role": "reference"},
    )


def _layout_options(traces: Sequence[BaseTraceType], title: str, x_title: str, y_title: str) -> dict[str, Any]:
    """Projector-friendly layout shared by these views: big fonts, legend below, no transitions."""
    return {
        "title": title_layout(title),
        "font": {"size": FONT_SIZE},
        **legend_below(traces, EXPLORE_PLOT_AREA_HEIGHT),
        "uirevision": "bayesdemo-explore",
        "xaxis": axis(x_title),
        "yaxis": axis(y_title),
    }


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    """`figure` given the layout shared by these views (_layout_options)."""
    figure.update_layout(**_layout_options(figure.data, title, x_title, y_title))
    return figure


def _shown_of(shown: int, total: int) -> str:
    """' (s of t shown)' when a scatter was thinned, else ''."""
    return "" if shown == total else f" ({shown:,} of {total:,} shown)"


def _ellipse(
    q: Gaussian,
    level: float,
    name: str,
    colour: str,
    dash: str = "solid",
    group: str = "",
    fit: str = "",
    validate: bool = True,
) -> go.Scatter:
    """The level-sd ellipse of q as a closed line (no points when q's covariance is not positive definite).

    A fit's ellipse (`fit` its label) takes its method's colour, dash and markers; a reference's is a plain line.
    `validate`: plotly checks every property (see VALIDATE).
    """
    points = ellipse_points(q, level) if has_ellipse(q) else np.empty((0, 2))
    width = REFERENCE_LINE_WIDTH if level == 1.0 else 1.5
    if fit:
        return go.Scatter(
            _validate=validate,
            x=points[:, 0],
            y=points[:, 1],
            mode="lines+markers",
            name=name,
            line=fit_line(fit, width),
            marker=fit_marker(fit),
            legendgroup=group or name,
            hoverinfo="skip",
            meta={"role": "fit", "label": fit},
        )
    return go.Scatter(
        _validate=validate,
        x=points[:, 0],
        y=points[:, 1],
        mode="lines",
        name=name,
        line={"color": colour, "dash": dash, "width": width},
        legendgroup=group or name,
        hoverinfo="skip",
        meta={"role": "reference"},
    )


def _centre(q: Gaussian, name: str, colour: str, symbol: str = "x", validate: bool = True) -> go.Scatter:
    """q's mean as a marker (`validate`: see _ellipse)."""
    return go.Scatter(
        _validate=validate,
        x=[q.mean[0]],
        y=[q.mean[1]],
        mode="markers",
        name=name,
        marker={"color": colour, "symbol": symbol, "size": 11},
    )


def _plane_range(gaussians: Sequence[Gaussian], index: int) -> list[float]:
    """Axis `index`'s range covering the 2-sd boxes of the given Gaussians (the first is the reference)."""
    reference = [
        gaussians[0].mean[index] - 2.3 * gaussians[0].sd[index],
        gaussians[0].mean[index] + 2.3 * gaussians[0].sd[index],
    ]
    seen = [
        value for q in gaussians[1:] for value in (q.mean[index] - 2.3 * q.sd[index], q.mean[index] + 2.3 * q.sd[index])
    ]
    return stable_range(reference, seen, reach=5.0)


def _plane_ranges(figure: go.Figure, gaussians: Sequence[Gaussian]) -> None:
    """Fix both axes to cover the 2-sd boxes of the given Gaussians (the first is the reference)."""
    figure.update_xaxes(range=_plane_range(gaussians, 0))
    figure.update_yaxes(range=_plane_range(gaussians, 1))


@never_warns
def fig_parameter_space(
    exact: Gaussian,
    mean_field: Gaussian,
    fits: Named = (),
    paths: Sequence[tuple[str, np.ndarray]] = (),
    title: str = "Parameter space: (slope, intercept)",
) -> go.Figure:
    """Exact posterior's 1 and 2 sd ellipses, the mean-field optimum's axis-aligned 1 sd ellipse, each fit's 1 sd
    ellipse and the path its mean took (paths: label -> means (steps, 2)) (docs/MATH.md, PRML 10.12-10.13).

    Redrawn live while fits train, so built in one go and without plotly's checks: see VALIDATE.
    """
    traces = [
        _ellipse(exact, 1.0, "exact posterior, 1 sd", EXACT_COLOUR, group="exact", validate=VALIDATE),
        _ellipse(exact, 2.0, "exact posterior, 2 sd", EXACT_COLOUR, group="exact", validate=VALIDATE),
        _ellipse(mean_field, 1.0, "mean-field optimum, 1 sd", MEAN_FIELD_COLOUR, dash="dash", validate=VALIDATE),
        _centre(exact, "posterior mean", EXACT_COLOUR, validate=VALIDATE),
    ]
    for label, means in paths:
        means = np.asarray(means, dtype=np.float64).reshape(-1, 2)
        traces.append(
            go.Scatter(
                _validate=VALIDATE,
                x=means[:, 0],
                y=means[:, 1],
                mode="lines",
                name=f"{label}: path of the mean",
                line={"color": colour_for(label), "width": 1.5},
                opacity=0.7,
                legendgroup=label,
                meta={"role": "path", "label": label},
            )
        )
    for label, q in fits:
        traces.append(
            _ellipse(q, 1.0, f"{label}: q, 1 sd", colour_for(label), group=label, fit=label, validate=VALIDATE)
        )
    gaussians = [exact, *(q for _, q in fits)]
    layout = {
        "template": LIGHT_TEMPLATE,
        **_layout_options(traces, title, "slope", "intercept"),
    }
    layout["xaxis"]["range"] = _plane_range(gaussians, 0)
    layout["yaxis"]["range"] = _plane_range(gaussians, 1)
    return go.Figure(_validate=VALIDATE, data=traces, layout=layout)


@never_warns
def fig_sequential_plane(
    prior: Gaussian, posterior: Gaussian, k: int, vi: Gaussian | None = None, truth: tuple[float, float] | None = None
) -> go.Figure:
    """Prior and posterior-after-k-points 1 and 2 sd ellipses (PRML 3.49-3.51), with a VI fit on the same k points."""
    figure = _new_figure()
    figure.add_trace(_ellipse(prior, 1.0, "prior, 1 sd", PRIOR_COLOUR, dash="dot", group="prior"))
    figure.add_trace(_ellipse(posterior, 1.0, f"posterior after {k}, 1 sd", EXACT_COLOUR, group="posterior"))
    figure.add_trace(_ellipse(posterior, 2.0, f"posterior after {k}, 2 sd", EXACT_COLOUR, group="posterior"))
    if vi is not None:
        figure.add_trace(_ellipse(vi, 1.0, f"Bayes by Backprop on {k}, 1 sd", VI_COLOUR, fit=BBB_LABEL))
    if truth is not None:
        figure.add_trace(
            go.Scatter(
                x=[truth[0]],
                y=[truth[1]],
                mode="markers",
                name="true (slope, intercept)",
                marker={"color": TRUTH_COLOUR, "symbol": "star", "size": 14},
            )
        )
    _layout(figure, f"(slope, intercept) after {k} point{'s' if k != 1 else ''}", "slope", "intercept")
    _plane_ranges(figure, [posterior])
    return figure


@never_warns
def fig_sequential_data(
    dataset: Dataset,
    k: int,
    posterior: Gaussian,
    noise_sd: float,
    lines: np.ndarray,
    vi: Gaussian | None = None,
    y_range: Sequence[float] | None = None,
) -> go.Figure:
    """The first k points (the rest faint), lines drawn from the posterior, its 95% band for new y (PRML 3.59)."""
    k = min(max(int(k), 0), dataset.n)
    low, high = float(dataset.x.min()), float(dataset.x.max())
    margin = 0.05 * (high - low)
    grid = np.linspace(low - margin, high + margin, 101)
    mean, _, obs_sd = predictive(posterior, grid, noise_sd)
    figure = _new_figure()
    figure.add_trace(_band(grid, mean - Z95 * obs_sd, mean + Z95 * obs_sd, EXACT_COLOUR, 0.12, "exact 95% for new y"))
    if vi is not None:
        vi_mean, _, vi_obs_sd = predictive(vi, grid, noise_sd)
        figure.add_trace(
            _band(
                grid,
                vi_mean - Z95 * vi_obs_sd,
                vi_mean + Z95 * vi_obs_sd,
                VI_COLOUR,
                0.0,
                "Bayes by Backprop 95% for new y",
                VI_COLOUR,
                dash=method_style(BBB_LABEL).dash,
            )
        )
    # Each line from the first to the last grid point, then a gap (nan): one trace draws them all, none for no lines.
    lines = np.asarray(lines, dtype=np.float64).reshape(-1, 2)
    ends = grid[[0, -1]]
    line_x = np.tile(np.append(ends, np.nan), len(lines))
    line_y = np.column_stack([lines[:, :1] * ends + lines[:, 1:], np.full(len(lines), np.nan)]).reshape(-1)
    figure.add_trace(
        go.Scatter(
            x=line_x,
            y=line_y,
            mode="lines",
            name=f"{len(lines)} lines drawn from the posterior",
            line={"color": _rgba(EXACT_COLOUR, 0.25), "width": 1},
            hoverinfo="skip",
        )
    )
    # At most MAX_POINTS markers per trace: a million points would stall every redraw.
    to_come = k + downsample_indices(dataset.n - k)
    seen = downsample_indices(k)
    figure.add_trace(
        go.Scatter(
            x=dataset.x[to_come],
            y=dataset.y[to_come],
            mode="markers",
            name="points still to come" + _shown_of(to_come.size, dataset.n - k),
            marker={"color": FAINT_COLOUR, "size": 6, "opacity": 0.5},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=dataset.x[seen],
            y=dataset.y[seen],
            mode="markers",
            name=f"first {k} points" + _shown_of(seen.size, k),
            marker={"color": SEEN_COLOUR, "size": 9},
        )
    )
    _layout(figure, f"Data seen: {k} of {dataset.n}", "x", "y")
    figure.update_xaxes(range=[float(grid[0]), float(grid[-1])])
    if y_range is None or len(finite_values(y_range)) != 2 or not y_range[0] < y_range[1]:
        y_range = stable_range([float(dataset.y.min()), float(dataset.y.max())], [])
    figure.update_yaxes(range=[float(value) for value in y_range])
    return figure


def _positive_or_nan(value: float) -> float:
    """`value` when finite and > 0 (drawable on a log axis), else nan (a gap)."""
    number = float(value)
    return number if math.isfinite(number) and number > 0 else math.nan


def _gaussian_density(grid: np.ndarray, mean: float, sd: float) -> np.ndarray:
    """N(grid | mean, sd^2)."""
    return np.exp(-0.5 * ((grid - mean) / sd) ** 2) / (sd * np.sqrt(2.0 * np.pi))


@never_warns
def fig_mcmc_histogram(samples: np.ndarray, exact: Gaussian, fits: Named, parameter: int, bins: int = 40) -> go.Figure:
    """NUTS draws of one parameter as a density histogram (counts in customdata) beside the exact marginal density
    and each fit's Gaussian marginal (docs/MATH.md: exact posterior, PRML 3.49-3.51)."""
    name = PARAMETER_NAMES[parameter]
    values = np.asarray(samples, dtype=np.float64)[:, parameter]
    values = values[np.isfinite(values)]  # a diverged chain's inf or nan has no bin
    centre, spread = float(exact.mean[parameter]), float(exact.sd[parameter])
    extremes = [float(values.min()), float(values.max())] if values.size else []
    low, high = covering_range([centre - 4.0 * spread, centre + 4.0 * spread, *extremes])
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    widths = np.diff(edges)
    figure = _new_figure()
    figure.add_trace(
        go.Bar(
            x=0.5 * (edges[:-1] + edges[1:]),
            y=counts / (values.size * widths),
            width=widths,
            customdata=counts,
            name=f"NUTS, {values.size} draws",
            marker={"color": _rgba(MCMC_COLOUR, 0.55)},
            hovertemplate="%{customdata} draws<extra></extra>",
        )
    )
    grid = np.linspace(low, high, DENSITY_POINTS)
    figure.add_trace(_exact_curve(grid, _gaussian_density(grid, centre, spread), "exact posterior"))
    for label, q in fits:
        density = _gaussian_density(grid, float(q.mean[parameter]), float(q.sd[parameter]))
        figure.add_trace(_fit_curve(grid, density, label, label))
    _layout(figure, f"{name.capitalize()}: NUTS draws against the exact density", name, "density")
    figure.update_layout(bargap=0.0)
    figure.update_xaxes(range=[low, high])
    return figure


@never_warns
def fig_basis_fit(dataset: Dataset, fit: BasisPosterior, title: str) -> go.Figure:
    """Data with the basis model's predictive mean and 95% bands for the function and for new y (PRML 3.57-3.59)."""
    low, high = float(dataset.x.min()), float(dataset.x.max())
    margin = 0.05 * (high - low)
    grid = np.linspace(low - margin, high + margin, 201)
    mean, line_sd, obs_sd = fit.predictive(grid)
    figure = _new_figure()
    figure.add_trace(_band(grid, mean - Z95 * obs_sd, mean + Z95 * obs_sd, EXACT_COLOUR, 0.08, "95% for new y"))
    figure.add_trace(
        _band(grid, mean - Z95 * line_sd, mean + Z95 * line_sd, EXACT_COLOUR, 0.25, "95% for the function")
    )
    chosen = downsample_indices(dataset.n)
    figure.add_trace(
        go.Scatter(
            x=dataset.x[chosen],
            y=dataset.y[chosen],
            mode="markers",
            name="data" + _shown_of(chosen.size, dataset.n),
            marker={"color": DATA_COLOUR, "size": 7, "opacity": 0.7},
        )
    )
    figure.add_trace(
        go.Scatter(x=grid, y=mean, mode="lines", name="predictive mean", line={"color": EXACT_COLOUR, "width": 3})
    )
    _layout(figure, title, "x", "y")
    figure.update_xaxes(range=[float(grid[0]), float(grid[-1])])
    y_low, y_high = covering_range([float(dataset.y.min()), float(dataset.y.max())])
    spread = y_high - y_low
    figure.update_yaxes(range=[y_low - 0.3 * spread, y_high + 0.3 * spread])
    return figure


@never_warns
def fig_evidence(curve: EvidenceCurve, chosen: int | None = None) -> go.Figure:
    """log p(y) against model size (PRML 3.86, 3.4): it peaks where the data stop paying for more weights."""
    figure = _new_figure()
    figure.add_trace(
        go.Scatter(
            x=curve.sizes,
            y=curve.log_evidence,
            mode="lines+markers",
            name="log evidence",
            line={"color": EXACT_COLOUR, "width": 3},
        )
    )
    log_evidence = np.asarray(curve.log_evidence, dtype=np.float64)
    finite = np.isfinite(log_evidence)  # a model whose evidence overflowed has no point and cannot be the best
    if finite.any():
        best = int(np.argmax(np.where(finite, log_evidence, -np.inf)))
        figure.add_trace(
            go.Scatter(
                x=[curve.sizes[best]],
                y=[log_evidence[best]],
                mode="markers",
                name="best",
                marker={"color": TRUTH_COLOUR, "size": 14, "symbol": "star"},
            )
        )
    if chosen is not None and chosen in set(curve.sizes.tolist()):
        index = int(np.flatnonzero(curve.sizes == chosen)[0])
        figure.add_trace(
            go.Scatter(
                x=[chosen],
                y=[curve.log_evidence[index]],
                mode="markers",
                name="shown",
                marker={"color": SEEN_COLOUR, "size": 12, "symbol": "circle-open", "line": {"width": 3}},
            )
        )
    size_name = "degree" if curve.family == "polynomial" else "number of centres"
    _layout(figure, f"Log evidence against model complexity ({size_name})", size_name, "log p(y)")
    shown = log_evidence[finite]
    if shown.size and (float(np.min(shown)) < float(np.max(shown)) - EVIDENCE_WINDOW or not finite.all()):
        # A model that misses badly (degree 0 on a line) sits thousands of nats down and would flatten the rest.
        top = float(np.max(shown))
        figure.update_yaxes(range=list(covering_range([top - EVIDENCE_WINDOW, top + 0.1 * EVIDENCE_WINDOW])))
    return figure


@never_warns
def fig_calibration(result: CalibrationResult) -> go.Figure:
    """Coverage of each method's central intervals per nominal level and parameter, with the nominal level and its
    binomial +-2 se band: exact = nominal, mean-field under-covers (docs/MATH.md, Checking inference). A trained fit's
    bar counts only the fits that reached their target, and its name says how many did."""
    figure = _new_figure()
    levels = result.config.levels
    categories = [f"{name} {level:.0%}" for level in levels for name in PARAMETER_NAMES]
    nominal = [level for level in levels for _ in PARAMETER_NAMES]
    for name, method in result.methods.items():
        coverage = method.coverage_at_target  # (levels, 2); every dataset for a closed form
        label = CALIBRATION_NAMES.get(name, name)
        if method.statuses is not None:
            label += f" ({method.datasets_at_target} of {method.datasets} fits at target)"
        figure.add_trace(
            go.Bar(
                x=categories,
                y=coverage.reshape(-1),
                name=label,
                marker={"color": {"exact": EXACT_COLOUR, "mean_field": MEAN_FIELD_COLOUR}.get(name, VI_COLOUR)},
            )
        )
    first = next(iter(result.methods.values()), None)
    se = np.zeros(len(nominal)) if first is None else np.repeat(first.coverage_standard_error(), len(PARAMETER_NAMES))
    figure.add_trace(
        go.Scatter(
            x=categories,
            y=nominal,
            mode="markers",
            name="nominal (±2 se)",
            marker={
                "color": TRUTH_COLOUR,
                "symbol": "line-ew",
                "size": 30,
                "line": {"width": 3, "color": TRUTH_COLOUR},
            },
            error_y={"type": "data", "array": 2 * se, "color": TRUTH_COLOUR},
        )
    )
    datasets = first.datasets if first is not None else 0
    _layout(figure, f"Coverage over {datasets} datasets from the prior", "interval", "fraction covered")
    figure.update_layout(barmode="group")
    figure.update_yaxes(range=[0.0, 1.05])
    return figure


@never_warns
def fig_gradient_variance(estimators: Sequence[tuple[str, np.ndarray]]) -> go.Figure:
    """Variance of one draw of d loss / d mu per estimator (label, variances (2,)), log axis (docs/MATH.md, Local
    reparameterization): each bar is how noisy one optimiser step's direction is."""
    figure = _new_figure()
    labels = [label for label, _ in estimators]
    for parameter, name in enumerate(PARAMETER_NAMES):
        figure.add_trace(
            go.Bar(
                x=[_positive_or_nan(variance[parameter]) for _, variance in estimators],
                y=labels,
                orientation="h",
                name=f"{name}: variance of d loss / d mean",
                marker={"color": (VI_COLOUR, MCMC_COLOUR)[parameter]},
            )
        )
    _layout(figure, "Gradient noise of Bayes by Backprop's estimators", "variance (log scale)", "")
    figure.update_layout(barmode="group", height=figure.layout.height + 40 * len(estimators), margin={"l": 260})
    figure.update_xaxes(type="log", exponentformat="power")
    figure.update_yaxes(autorange="reversed")  # the first estimator on top, as in the table
    return figure


def _mass_window(grid: np.ndarray, density: np.ndarray, tail: float = 1e-4) -> tuple[float, float]:
    """The stretch of an increasing grid (n,) that leaves `tail` of the density's mass (n,) out at each end.

    When the density cannot be integrated (non-finite, nowhere positive, fewer than 2 points) the whole finite grid.
    """
    mass = np.zeros(grid.size)
    if grid.size >= 2 and np.all(np.isfinite(grid)):
        mass = np.cumsum(np.where(np.isfinite(density) & (density > 0), density, 0.0) * np.gradient(grid))
    if not (grid.size and math.isfinite(mass[-1]) and mass[-1] > 0):
        return covering_range(grid)
    mass /= mass[-1]
    low = float(grid[max(int(np.searchsorted(mass, tail)) - 1, 0)])
    high = float(grid[min(int(np.searchsorted(mass, 1.0 - tail)) + 1, grid.size - 1)])
    return covering_range([low, high])


@never_warns
def fig_noise_sd(
    noise_sd_grid: np.ndarray,
    density: np.ndarray,
    fits: Sequence[tuple[str, float, float]] = (),
    true_noise_sd: float | None = None,
) -> go.Figure:
    """Exact p(s | y) by quadrature (docs/MATH.md, Unknown noise sd) beside each fit's log-normal q(s), given as
    (label, mean of s, sd of s), and the true s when known."""
    grid = np.asarray(noise_sd_grid, dtype=np.float64).reshape(-1)
    exact_density = np.asarray(density, dtype=np.float64).reshape(-1)
    low, high = _mass_window(grid, exact_density)
    shown = (grid >= low) & (grid <= high)
    figure = _new_figure()
    figure.add_trace(_exact_curve(grid[shown], exact_density[shown], "exact p(s | y), quadrature"))
    noise_axis = np.linspace(low, high, DENSITY_POINTS)
    for label, mean, sd in fits:
        # q(log s) = N(m, v) with mean exp(m + v / 2) and sd mean sqrt(exp(v) - 1); q(s) = N(log s | m, v) / s.
        log_var = float(np.log1p((sd / mean) ** 2))
        log_mean, log_sd = float(np.log(mean)) - 0.5 * log_var, float(np.sqrt(log_var))
        density = _gaussian_density(np.log(noise_axis), log_mean, log_sd) / noise_axis
        figure.add_trace(_fit_curve(noise_axis, density, label, f"{label}: q(s)"))
    if true_noise_sd is not None:
        figure.add_trace(
            go.Scatter(
                x=[true_noise_sd, true_noise_sd],
                y=[0.0, max(finite_values(exact_density[shown]), default=1.0) * 1.05],
                mode="lines",
                name=f"true s = {true_noise_sd:.3g}",
                line={"color": TRUTH_COLOUR, "dash": "dot", "width": 2},
            )
        )
    _layout(figure, "Noise sd s: exact posterior and the fits' q(s)", "noise sd s", "density")
    figure.update_xaxes(range=[low, high])
    return figure


@never_warns
def fig_prior_marginal(
    axis: np.ndarray,
    density: np.ndarray,
    prior: ParameterPrior,
    fits: Named,
    parameter: int,
    exact_label: str = "exact posterior, grid",
) -> go.Figure:
    """One parameter's exact marginal on a sorted axis (docs/MATH.md, Grid reference; Mixture posterior) beside its
    prior
    density and each fit's Gaussian marginal q, given as (label, Gaussian over (slope, intercept))."""
    name = PARAMETER_NAMES[parameter]
    grid = np.asarray(axis, dtype=np.float64).reshape(-1)
    exact_density = np.asarray(density, dtype=np.float64).reshape(-1)
    # Trapezoid sums: the axis joins a spike's fine points to a slab's coarse ones.
    centre = float(np.trapezoid(grid * exact_density, grid)) if grid.size >= 2 else math.nan
    spread = float(np.sqrt(np.trapezoid((grid - centre) ** 2 * exact_density, grid))) if grid.size >= 2 else math.nan
    if not (math.isfinite(centre) and math.isfinite(spread) and spread > 0):
        centre, spread = prior.location, prior.scale  # a density that cannot be integrated: the prior stands in
    reach = [centre - PRIOR_REACH_SDS * spread, centre + PRIOR_REACH_SDS * spread]
    for _, q in fits:
        reach += [float(q.mean[parameter] - 4.0 * q.sd[parameter]), float(q.mean[parameter] + 4.0 * q.sd[parameter])]
    low, high = covering_range(reach)
    shown = (grid >= low) & (grid <= high)
    figure = _new_figure()
    figure.add_trace(_exact_curve(grid[shown], exact_density[shown], exact_label))
    points = np.linspace(low, high, DENSITY_POINTS)
    figure.add_trace(
        go.Scatter(
            x=points,
            y=np.exp(prior.log_density(points)),
            mode="lines",
            name="prior",
            line={"color": PRIOR_COLOUR, "dash": "dot", "width": 2},
        )
    )
    for label, q in fits:
        density = _gaussian_density(points, float(q.mean[parameter]), float(q.sd[parameter]))
        figure.add_trace(_fit_curve(points, density, label, label))
    _layout(figure, f"{name.capitalize()}: exact marginal, prior and the fits' q", name, "density")
    figure.update_xaxes(range=[low, high])
    return figure
