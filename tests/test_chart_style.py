"""Charts that cannot be misread: methods told apart without colour, readable projector and dark styles, contrast."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from bayesdemo.charts import figures_explore as explore
from bayesdemo.charts.chart_style import BBB_LABEL, MEAN_FIELD_LABEL, STANDARD, ChartStyle, apply_style, method_style
from bayesdemo.charts.figures import fig_data, fig_loss, fig_mean, fig_sd
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting.runner import Snapshot
from bayesdemo.methods import FitConfig
from bayesdemo.references.sequential import line_draws, posterior_after
from tests.support import figure_inputs as inputs
from tests.support.figure_inputs import DATA, EXACT, MODEL

FULL_COVARIANCE_LABEL = FitConfig(method="svi", guide="mvn").label
# Every fit label the page can draw: each method, guide and objective.
LABELS = [
    FitConfig(method="noise").label,
    *(FitConfig(method="bbb", objective=objective).label for objective in ("elbo", "mse", "likelihood")),
    *(FitConfig(method="svi", guide=guide).label for guide in ("normal", "mvn", "tutorial")),
]


def run(count: int, sd: float, seed: int) -> list[Snapshot]:
    """`count` made-up snapshots around the exact mean whose sds shrink towards `sd`."""
    rng = np.random.default_rng(seed)
    return [
        Snapshot.of(
            10 * i,
            0.0,
            -EXACT.log_evidence + 1.0 + rng.random(),
            Gaussian.diagonal(EXACT.mean + 0.01 * rng.standard_normal(2), [sd * (1 + 2 / (i + 1))] * 2),
        )
        for i in range(count)
    ]


def method_figures(labels: list[str]) -> dict[str, go.Figure]:
    """Every figure builder that draws methods, each drawing one fit per label."""
    traces = [(label, run(60, 0.05, seed)) for seed, label in enumerate(labels)]
    gaussians = [(label, snapshots[-1].gaussian) for label, snapshots in traces]
    grid, noise = inputs.grid_reference(), inputs.noise_reference()
    return {
        "mean": fig_mean(traces, EXACT, 0, 600),
        "sd": fig_sd(traces, EXACT, 1, 600),
        "loss": fig_loss(traces, EXACT, 600),
        "data": fig_data(DATA, EXACT, gaussians, MODEL.noise_sd, (3.0, 1.0)),
        "parameter space": explore.fig_parameter_space(EXACT.posterior, EXACT.mean_field, gaussians),
        "mcmc": explore.fig_mcmc_histogram(inputs.mcmc_samples(300), EXACT.posterior, gaussians, 0),
        "noise sd": explore.fig_noise_sd(noise.noise_sd_grid, noise.density, [(label, 0.1, 0.01) for label in labels]),
        "prior": explore.fig_prior_marginal(
            grid.slope_axis, grid.marginal_densities()[0], inputs.SLOPE_PRIOR, gaussians, 0
        ),
    }


def all_figures() -> dict[str, go.Figure]:
    """One figure of every builder, those drawing methods with every method and the mean-field optimum."""
    figures = method_figures([*LABELS, MEAN_FIELD_LABEL])
    figures["loss, MSE only"] = fig_loss([(LABELS[0], run(60, 0.5, 1))], EXACT, 600)
    after = posterior_after(DATA, MODEL, 5)
    figures["sequential plane"] = explore.fig_sequential_plane(
        inputs.PLANE_PRIOR, after, 5, vi=EXACT.mean_field, truth=(3.0, 1.0)
    )
    draws = line_draws(after, 20, seed=0)
    figures["sequential data"] = explore.fig_sequential_data(DATA, 5, after, MODEL.noise_sd, draws, vi=EXACT.mean_field)
    figures["basis"] = explore.fig_basis_fit(inputs.CURVED, inputs.basis_fit(), "degree 2")
    figures["evidence"] = explore.fig_evidence(inputs.evidence_curve(), 2)
    figures["calibration"] = explore.fig_calibration(inputs.calibration_result())
    estimators = [("weight sampling", np.array([8e3, 2e4])), ("local", np.ones(2))]
    figures["gradients"] = explore.fig_gradient_variance(estimators)
    return figures


@pytest.fixture(scope="module")
def figures() -> dict[str, go.Figure]:
    return all_figures()


# ---- WCAG 2.1 contrast, written out here (independent of chart_style's helpers) -----------------------------------


def rgb(colour: str) -> tuple[tuple[float, float, float], float]:
    """('#rrggbb' | 'rgb(...)' | 'rgba(...)') as channels in [0, 1] and its opacity."""
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)), 1.0  # type: ignore[return-value]
    numbers = [float(n) for n in re.findall(r"[\d.]+", colour)]
    alpha = numbers[3] if len(numbers) == 4 else 1.0
    return (numbers[0] / 255, numbers[1] / 255, numbers[2] / 255), alpha


def over(colour: str, background: str) -> tuple[float, float, float]:
    """`colour` composited over the opaque `background`."""
    (front, alpha), (back, _) = rgb(colour), rgb(background)
    return tuple(alpha * f + (1 - alpha) * b for f, b in zip(front, back, strict=True))  # type: ignore[return-value]


def luminance(channels: tuple[float, float, float]) -> float:
    """WCAG 2.1 relative luminance."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(colour: str, background: str) -> float:
    """WCAG 2.1 contrast ratio of `colour` (composited) against `background`."""
    first, second = luminance(over(colour, background)), luminance(rgb(background)[0])
    return (max(first, second) + 0.05) / (min(first, second) + 0.05)


def background_of(figure: go.Figure) -> str:
    """The plot area's colour: the figure's own, else its template's."""
    return figure.layout.plot_bgcolor or figure.layout.template.layout.plot_bgcolor


def text_colour_of(figure: go.Figure) -> str:
    """The chart text's colour: the figure's own, else its template's."""
    return figure.layout.font.color or figure.layout.template.layout.font.color


def drawn_lines(figure: go.Figure):
    """(trace, line colour) of every trace that draws a visible line (a band's transparent outline is not one)."""
    for trace in figure.data:
        if trace.type != "scatter" or "lines" not in (trace.mode or "lines"):
            continue
        width = trace.line.width if trace.line.width is not None else 2
        if width > 0 and trace.line.color and rgb(trace.line.color)[1] > 0:
            yield trace, trace.line.color


# ---- Methods told apart without colour ---------------------------------------------------------------------------


def test_every_method_line_differs_from_every_other_in_dash_or_marker_in_every_builder():
    for name, figure in method_figures([*LABELS, MEAN_FIELD_LABEL]).items():
        fits = {trace.meta["label"]: trace for trace in figure.data if (trace.meta or {}).get("role") == "fit"}
        assert set(fits) >= set(LABELS), name
        for (first, a), (second, b) in itertools.combinations(fits.items(), 2):
            same_dash = (a.line.dash or "solid") == (b.line.dash or "solid")
            a_marker = a.marker.symbol if "markers" in (a.mode or "") else None
            b_marker = b.marker.symbol if "markers" in (b.mode or "") else None
            assert not (same_dash and a_marker == b_marker), (name, first, second)


def test_a_label_outside_the_table_gets_a_stable_style():
    assert method_style("a fit of my own") == method_style("a fit of my own")
    assert method_style("a fit of my own").colour.startswith("#")


# Machado, Oliveira & Fernandes (2009), "A physiologically-based model for simulation of color vision deficiency",
# severity 1.0, applied to linear-light sRGB.
MACHADO_2009 = {
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]
    ),
}
SRGB_TO_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])


def cielab(linear_rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65 white) of a linear-light sRGB colour."""
    xyz = (SRGB_TO_XYZ @ np.clip(linear_rgb, 0.0, 1.0)) / (SRGB_TO_XYZ @ np.ones(3))
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def linear(colour: str) -> np.ndarray:
    """'#rrggbb' as linear-light sRGB."""
    channels = np.array(rgb(colour)[0])
    return np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("deficiency", list(MACHADO_2009))
def test_bayes_by_backprop_and_full_covariance_stay_apart_under_colour_blindness(figures, deficiency, dark):
    figure = apply_style(figures["sd"], ChartStyle(dark=dark))
    colours = {
        trace.meta["label"]: trace.line.color for trace in figure.data if (trace.meta or {}).get("role") == "fit"
    }
    simulated = [
        cielab(MACHADO_2009[deficiency] @ linear(colours[label])) for label in (BBB_LABEL, FULL_COVARIANCE_LABEL)
    ]
    # CIE76 colour difference: about 2.3 is just noticeable; 20 and more reads as two different colours at a glance.
    # The previous blue and purple were 5.7 (protanopia) and 8.0 (deuteranopia) apart.
    assert np.linalg.norm(simulated[0] - simulated[1]) >= 20.0


# ---- Reference lines and contrast ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dark", [False, True])
def test_every_drawn_line_and_text_meets_wcag_contrast(figures, dark):
    for name, standard in figures.items():
        figure = apply_style(standard, ChartStyle(dark=dark))
        background = background_of(figure)
        # WCAG 2.1 1.4.3: text 4.5:1; 1.4.11: graphical objects that carry meaning 3:1.
        assert contrast(text_colour_of(figure), background) >= 4.5, name
        for annotation in figure.layout.annotations:
            assert contrast(annotation.font.color or text_colour_of(figure), background) >= 4.5, name
        for trace, colour in drawn_lines(figure):
            if trace.name and ("lines drawn from the posterior" in trace.name):
                continue  # a cloud of faint lines on purpose: their spread is the message, the band beside it is 3:1
            assert contrast(colour, background) >= 3.0, (name, trace.name, colour)


def test_reference_lines_and_bands_have_strong_edges_in_the_standard_style(figures):
    for name, figure in figures.items():
        references = [trace for trace in figure.data if (trace.meta or {}).get("role") == "reference"]
        for trace in references:
            assert (trace.line.width or 2) >= 1.5, (name, trace.name)
            assert contrast(trace.line.color, "#FFFFFF") >= 3.0, (name, trace.name)
    assert any((trace.meta or {}).get("role") == "reference" and trace.fill for trace in figures["mean"].data)


# ---- Projector ----------------------------------------------------------------------------------------------------


def text_sizes(figure: go.Figure) -> list[float]:
    """The px size of every text the chart shows: title, legend, each axis's ticks and title, annotations."""
    layout = figure.layout
    base = layout.font.size
    sizes = [layout.title.font.size or base, layout.legend.font.size or base]
    for key in layout.to_plotly_json():
        if re.fullmatch(r"[xy]axis\d*", key):
            axis = layout[key]
            sizes += [axis.tickfont.size or base, axis.title.font.size or base]
    sizes += [annotation.font.size or base for annotation in layout.annotations]
    return sizes


@pytest.mark.parametrize("dark", [False, True])
def test_projector_text_is_at_least_24_px_and_lines_at_least_4_px(figures, dark):
    for name, standard in figures.items():
        before = standard.to_dict()
        figure = apply_style(standard, ChartStyle(projector=True, dark=dark))
        assert standard.to_dict() == before, "the drawn figure is left as it was"
        go.Figure(figure.to_dict())  # every value still valid plotly
        assert min(text_sizes(figure)) >= 24, name
        assert figure.layout.title.font.size >= 30
        for trace, _ in drawn_lines(figure):
            assert trace.line.width >= 4, (name, trace.name)
        plot_area = figure.layout.height - figure.layout.margin.t - figure.layout.margin.b
        assert plot_area >= standard.layout.height - standard.layout.margin.t - standard.layout.margin.b, name


def test_projector_keeps_the_legend_between_title_and_plot_area(figures):
    standard = figures["mean"]
    figure = apply_style(standard, ChartStyle(projector=True))
    plot_area = figure.layout.height - figure.layout.margin.t - figure.layout.margin.b
    legend_bottom = figure.layout.margin.t - (figure.layout.legend.y - 1.0) * plot_area  # px from the figure's top
    # The title and the legend rows grow by 24/14: the rows still fit between the title and the plot area.
    rows_px = legend_bottom - 1.25 * (30 + 10)  # below a 30 px title with its 10 px pad (x1.25 for line height)
    entries = sum(1 for trace in figure.data if trace.showlegend is not False)
    assert rows_px >= entries * 24 * 1.2  # one row per long entry, 24 px type at 1.2 line height
    assert figure.layout.legend.y > 1.0


def test_the_standard_style_returns_the_figure_and_styles_refuse_non_booleans(figures):
    assert apply_style(figures["mean"], STANDARD) is figures["mean"]
    for field in ("projector", "dark"):
        with pytest.raises(ConfigError, match=field) as raised:
            ChartStyle(**{field: "yes"})
        assert raised.value.field == field


def test_dark_style_draws_on_a_dark_background_with_light_reference_lines(figures):
    figure = apply_style(figures["sd"], ChartStyle(dark=True))
    assert luminance(rgb(background_of(figure))[0]) < 0.02
    exact = next(trace for trace in figure.data if (trace.name or "").startswith("exact sd"))
    assert luminance(rgb(exact.line.color)[0]) > 0.8  # the exact reference turns from near-black to near-white
    assert math.isclose(exact.y[0], figures["sd"].data[0].y[0])
