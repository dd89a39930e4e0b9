"""The explore views through AppTest: each tab renders, and its controls reach the engine (numbers match it)."""

from __future__ import annotations

import base64
import json
import os
from statistics import NormalDist

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from bayesdemo.core.priors import Model, NoiseSdPrior, ParameterPrior, Prior
from bayesdemo.methods import make_method
from bayesdemo.page import explore
from bayesdemo.page.explore import (
    BASIS_CUBIC,
    CALIBRATION_BBB,
    EXPLORE_TABS,
    GRADIENT_REPEATS,
    NOISE_SVI,
    PRIOR_FITS,
    SEQUENTIAL_FIT,
    TAB_KEY,
    basis_data,
    fmt,
    gradient_estimators,
)
from bayesdemo.references.basis import BasisConfig, fit_basis, log_evidence_by_complexity
from bayesdemo.references.calibration import CalibrationConfig, calibrate, fit_until_at_target
from bayesdemo.references.gradients import gradient_statistics, gradient_variance
from bayesdemo.references.grid import grid_posterior
from bayesdemo.references.mcmc import MCMCConfig, run_nuts
from bayesdemo.references.mean_field import mean_field_optimum
from bayesdemo.references.mixture import mixture_posterior
from bayesdemo.references.noise_sd import noise_sd_posterior
from bayesdemo.references.parameter_space import centred_posterior
from bayesdemo.references.sequential import posterior_after, vi_fit_after
from bayesdemo.workers import explore_budget
from bayesdemo.workers.jobs import ExploreJob
from tests.support.pages import (
    APP,
    GOOD_CSV,
    TIMEOUT_S,
    fresh_page,
    no_exception,
    rerun_until_computed,
    rerun_until_finished,
)


@pytest.fixture
def app():
    """A fresh page after its first run (test_app.fresh_page)."""
    with fresh_page() as page:
        yield page


@pytest.fixture
def started(monkeypatch) -> list[ExploreJob]:
    """Every explore job the page starts, in order (explore.common's ExploreJob, recorded)."""
    jobs: list[ExploreJob] = []

    class Recorded(ExploreJob):
        def start(self) -> None:
            jobs.append(self)
            super().start()

    monkeypatch.setattr(explore.common, "ExploreJob", Recorded)
    return jobs


def computed_in_a_worker(jobs: list[ExploreJob], function) -> ExploreJob:
    """The latest of `jobs` that computed `function`, checked to have finished in another process."""
    job = [job for job in jobs if job.function is function][-1]
    assert job.state == "finished" and job.pid is not None and job.pid != os.getpid(), (job.state, job.message)
    return job


def open_tab(page: AppTest, label: str) -> None:
    """Switch the explore tabs to `label` (what a click on the tab does) and rerun."""
    assert label in EXPLORE_TABS
    page.session_state[TAB_KEY] = label
    page.run()
    no_exception(page)


def tab(page: AppTest, label: str):
    """The tab block of the explore view `label`."""
    return page.tabs[EXPLORE_TABS.index(label)]


def figures_in(block) -> list[dict]:
    """The plotly figures drawn in `block`, as dicts: by st.plotly_chart or by the live chart component."""
    charts = [json.loads(element.proto.spec) for element in block.get("plotly_chart")]
    return charts + [json.loads(element.proto.bytes)["figure"] for element in block.get("bidi_component")]


def values(data) -> np.ndarray:
    """A trace's coordinates as an array: plotly sends numeric arrays as {"dtype", "bdata"} (base64)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.array(data, dtype=np.float64)


def trace_names(figure: dict) -> list[str]:
    """The names of the figure's traces."""
    return [trace.get("name", "") for trace in figure["data"]]


def table_caption(block, index: int = 0) -> str:
    """The caption right before the index-th table in `block`, in page order: what a screen reader reads before the
    table, checked to say what the table shows ("Table: ...")."""
    elements = [node for node in block if not isinstance(node, Block)]
    tables = [position for position, element in enumerate(elements) if element.type == "table"]
    before = elements[tables[index] - 1] if tables[index] > 0 else None
    assert before is not None and before.type == "caption", f"table {index} follows {before}, not a caption"
    assert before.value.startswith("Table: "), before.value
    return before.value


def table_rows(block, index: int = 0) -> list[dict]:
    """The rows of the index-th table in `block`, as dicts of text; the table must follow its caption (table_caption:
    every explore table a test reads has one)."""
    table_caption(block, index)
    return block.table[index].value.to_dict("records")


def context_of(page: AppTest):
    """The page's current context (scenario, dataset, exact reference)."""
    return page.session_state["context_cache"]


def test_parameter_space_is_the_first_tab_and_centring_x_removes_the_correlation(app):
    context = context_of(app)
    view = tab(app, "Parameter space")
    text = " ".join(markdown.value for markdown in view.markdown)
    ratio = context.exact.mean_field_sd / context.exact.sd
    assert f"**{context.exact.corr:.3f}**" in text and f"slope **{fmt(ratio[0])}**" in text
    assert context.exact.corr < -0.8 and ratio[0] < 0.6
    (figure,) = figures_in(view)
    exact_ellipse = figure["data"][trace_names(figure).index("exact posterior, 1 sd")]
    app.toggle(key="explore_centre_x").set_value(True).run()
    no_exception(app)
    centred = centred_posterior(context.dataset, context.scenario.model)
    text = " ".join(markdown.value for markdown in tab(app, "Parameter space").markdown)
    assert "**0.000**" in text and "slope **1**, intercept **1**" in text
    np.testing.assert_allclose(centred.mean_field_sd, centred.sd, rtol=1e-12)
    (after,) = figures_in(tab(app, "Parameter space"))
    centred_ellipse = after["data"][trace_names(after).index("exact posterior, 1 sd")]
    assert not np.allclose(values(exact_ellipse["y"]), values(centred_ellipse["y"])), "the toggle redraws the plane"
    np.testing.assert_allclose(np.mean(values(centred_ellipse["y"])[:-1]), centred.mean[1], atol=1e-9)


def test_parameter_space_draws_the_live_fit_and_the_path_of_its_mean(app):
    app.number_input(key="fit_steps").set_value(300)
    app.selectbox(key="fit_method").set_value("bbb").run()
    app.sidebar.button(key="run").click().run()
    job = rerun_until_finished(app)
    (fit,) = job.view().fits
    (figure,) = figures_in(tab(app, "Parameter space"))
    names = trace_names(figure)
    assert f"{fit.label}: q, 1 sd" in names and f"{fit.label}: path of the mean" in names
    path = figure["data"][names.index(f"{fit.label}: path of the mean")]
    snapshots = dict(job.view().traces())[fit.label]
    path_x, path_y = values(path["x"]), values(path["y"])
    assert len(path_x) == len(snapshots) > 10
    np.testing.assert_allclose([path_x[-1], path_y[-1]], fit.last.mean[:2])


def test_sequential_steps_show_the_exact_posterior_of_the_first_k_points_and_bbb_on_them(app, started):
    open_tab(app, "Sequential updating")
    context = context_of(app)
    view = tab(app, "Sequential updating")
    assert any("Points seen: **0** of 100" in markdown.value for markdown in view.markdown)
    (prior_row,) = table_rows(view)
    assert prior_row["Slope sd"] == fmt(context.scenario.prior.slope_sd)
    app.button(key="explore_goto_forward_10").click().run()
    app.button(key="explore_goto_forward").click().run()
    app.button(key="explore_goto_back").click().run()
    rerun_until_computed(app)
    view = tab(app, "Sequential updating")
    assert any("Points seen: **10** of 100" in markdown.value for markdown in view.markdown)
    exact_row, vi_row = table_rows(view)
    exact = posterior_after(context.dataset, context.scenario.model, 10)
    assert exact_row[""] == "exact after 10"
    assert [exact_row[name] for name in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd")] == [
        fmt(exact.mean[0]),
        fmt(exact.sd[0]),
        fmt(exact.mean[1]),
        fmt(exact.sd[1]),
    ]
    vi = vi_fit_after(context.dataset, context.scenario.model, 10, SEQUENTIAL_FIT)
    computed_in_a_worker([job for job in started if job.arguments[2:3] == (10,)], vi_fit_after)  # 10 points
    assert vi_row["Slope sd"] == fmt(vi.sd[0]) and vi_row["Intercept mean"] == fmt(vi.mean[1])
    assert float(vi_row["Slope sd"]) < float(exact_row["Slope sd"]), "mean-field q is narrower than the exact sd"
    plane, data = figures_in(view)
    assert "posterior after 10, 1 sd" in trace_names(plane) and "Bayes by Backprop on 10, 1 sd" in trace_names(plane)
    assert "first 10 points" in trace_names(data)
    # Play adds a point per redraw (AppTest never fires run_every: each run stands for one tick); Pause holds.
    app.button(key="explore_play").click().run()
    app.run()
    assert app.session_state["explore_points"] == 12
    app.button(key="explore_play").click().run()
    app.run()
    assert app.session_state["explore_points"] == 12 and not app.session_state["explore_playing"]
    app.button(key="explore_goto_all").click().run()
    assert any("Points seen: **100** of 100" in m.value for m in tab(app, "Sequential updating").markdown)
    app.button(key="explore_goto_prior").click().run()
    no_exception(app)
    assert app.session_state["explore_points"] == 0


def test_mcmc_button_samples_with_the_engine_and_bad_settings_name_the_field(app, started):
    open_tab(app, "MCMC reference")
    app.number_input(key="explore_mcmc_warmup").set_value(-5).run()
    assert any("NUTS warm-up iterations" in error.value for error in app.error)
    assert app.button(key="explore_mcmc_run").disabled
    config = MCMCConfig(warmup=30, samples=60, seed=3)
    app.number_input(key="explore_mcmc_warmup").set_value(config.warmup)
    app.number_input(key="explore_mcmc_samples").set_value(config.samples)
    app.number_input(key="explore_mcmc_seed").set_value(config.seed).run()
    assert not app.error
    app.button(key="explore_mcmc_run").click().run()
    rerun_until_computed(app)
    context = context_of(app)
    result = computed_in_a_worker(started, run_nuts).result
    np.testing.assert_array_equal(result.samples, run_nuts(context.dataset, context.scenario.model, config).samples)
    view = tab(app, "MCMC reference")
    slope, _ = table_rows(view)
    assert slope["NUTS mean"] == fmt(result.mean[0]) and slope["Exact mean"] == fmt(context.exact.mean[0])
    assert abs(result.mean[1] - context.exact.mean[1]) < 0.5 * context.exact.sd[1]
    histograms = figures_in(view)
    assert len(histograms) == 2 and f"NUTS, {config.samples} draws" in trace_names(histograms[0])
    assert "exact posterior" in trace_names(histograms[1]) and "mean-field optimum" in trace_names(histograms[1])


def test_basis_view_fits_the_chosen_size_and_plots_the_evidence(app):
    open_tab(app, "Basis functions")
    app.selectbox(key="explore_basis_data").set_value("cubic")
    app.number_input(key="explore_basis_size").set_value(3)
    app.number_input(key="explore_basis_max").set_value(8).run()
    no_exception(app)
    dataset, model = basis_data(context_of(app), "cubic")
    assert BASIS_CUBIC and dataset.n == 50
    fit = fit_basis(dataset, BasisConfig("polynomial", 3), model)
    curve = log_evidence_by_complexity(dataset, "polynomial", range(9), model)
    view = tab(app, "Basis functions")
    text = " ".join(markdown.value for markdown in view.markdown)
    assert f"**{fmt(fit.log_evidence)}**" in text and f"degree **{curve.best_size}**" in text
    assert curve.best_size == 3, "the evidence peaks at the cubic's own degree"
    fit_figure, evidence_figure = figures_in(view)
    np.testing.assert_allclose(values(evidence_figure["data"][0]["y"]), curve.log_evidence)
    assert "95% for new y" in trace_names(fit_figure)
    app.selectbox(key="explore_basis_family").set_value("rbf")
    app.number_input(key="explore_basis_size").set_value(500).run()
    no_exception(app)
    assert any("Polynomial degree / number of RBF centres" in error.value for error in app.error)
    app.number_input(key="explore_basis_size").set_value(6)
    app.number_input(key="explore_basis_max").set_value(0).run()
    assert any("Largest size on the evidence curve" in error.value for error in app.error)
    app.number_input(key="explore_basis_max").set_value(8).run()
    assert not app.error and len(figures_in(tab(app, "Basis functions"))) == 2


def test_calibration_runs_and_shows_the_engines_coverage(app):
    open_tab(app, "Calibration")
    app.number_input(key="explore_calibration_datasets").set_value(1).run()
    assert any("Simulated datasets K" in error.value for error in app.error)
    assert app.button(key="explore_calibration_run").disabled
    app.number_input(key="explore_calibration_datasets").set_value(60).run()
    app.button(key="explore_calibration_run").click().run()
    no_exception(app)
    model = context_of(app).scenario.model
    expected = calibrate(model, CalibrationConfig(datasets=60, n=20, x_min=0.0, x_max=1.0))
    exact_row, mean_field_row = table_rows(tab(app, "Calibration"))
    assert exact_row["slope 90%"] == f"{expected.methods['exact'].coverage[1, 0]:.2f}"
    assert mean_field_row["intercept 50%"] == f"{expected.methods['mean_field'].coverage[0, 1]:.2f}"
    assert float(mean_field_row["slope 90%"]) < float(exact_row["slope 90%"]), "mean-field under-covers"
    (figure,) = figures_in(tab(app, "Calibration"))
    assert "exact posterior" in trace_names(figure) and "mean-field optimum" in trace_names(figure)
    # With Bayes by Backprop on a few datasets: a third row, and its coverage sides with the mean-field optimum.
    app.number_input(key="explore_calibration_datasets").set_value(4)
    app.checkbox(key="explore_calibration_bbb").check().run()
    app.button(key="explore_calibration_run").click().run()
    rerun_until_computed(app)  # with the fits: beyond the inline limit, a computation in a worker process
    rows = table_rows(tab(app, "Calibration"))
    assert [row[""] for row in rows] == ["exact posterior", "mean-field optimum", "Bayes by Backprop"]
    # The engine's run until at target on the same datasets: the row counts and covers only the fits at target.
    expected = calibrate(
        model,
        CalibrationConfig(datasets=4, n=20, x_min=0.0, x_max=1.0),
        fit_until_at_target(model, CALIBRATION_BBB),
        fit_name="bbb",
    )
    bbb = expected.methods["bbb"]
    assert rows[2]["Datasets counted"] == f"{bbb.datasets_at_target} of 4" and rows[0]["Datasets counted"] == "4"
    assert rows[2]["slope 90%"] == f"{bbb.coverage_at_target[1, 0]:.2f}"
    # The caption's mean-field prediction for this design: 2 Phi(z sqrt(1 - rho^2)) - 1 with rho of the shared x.
    design = np.column_stack([expected.shared_x, np.ones(20)])
    cov = np.linalg.inv(np.diag(1 / model.prior.sd**2) + design.T @ design / model.noise_sd**2)
    ratio = np.sqrt(1 - cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]))
    predicted = [2 * NormalDist().cdf(NormalDist().inv_cdf(0.5 + level / 2) * ratio) - 1 for level in (0.5, 0.9)]
    captions = " ".join(caption.value for caption in tab(app, "Calibration").caption)
    assert f"should cover {predicted[0]:.2f} and {predicted[1]:.2f} at 50% and 90%" in captions


def test_gradient_noise_measures_each_estimator_at_the_live_fit(app):
    app.number_input(key="fit_steps").set_value(200)
    app.number_input(key="fit_samples").set_value(4).run()
    app.sidebar.button(key="run").click().run()
    job = rerun_until_finished(app)
    open_tab(app, "Gradient noise")
    app.button(key="explore_gradient_run").click().run()
    rerun_until_computed(app)
    rows = table_rows(tab(app, "Gradient noise"))
    labels = [row["Estimator"] for row in rows]
    assert labels[0] == "1 sample, weights, closed KL" and "4 samples, local, MC KL" in labels and len(rows) == 8
    # The same draws through the engine, at the live q: the page shows exactly these variances.
    context = context_of(app)
    q = job.view().fits[0].last.gaussian
    estimator = dict(gradient_estimators(context.scenario.fit))["1 sample, local, closed KL"]
    method = make_method(context.dataset, context.scenario.model, estimator)
    method.set_posterior(q)
    statistics = gradient_statistics(method, GRADIENT_REPEATS)
    shown = next(row for row in rows if row["Estimator"] == "1 sample, local, closed KL")
    assert shown["Variance (slope)"] == f"{statistics.variance[0]:.3g}"
    assert shown["sd gradient variance (slope)"] == f"{statistics.sd_variance[0]:.3g}"
    # Local reparameterisation: far less noise than sampling the weights (Kingma et al. 2015), both gradients.
    assert float(shown["vs first row (slope)"]) < 0.2
    assert float(shown["sd gradient vs first row (slope)"]) < 1.0
    captions = " ".join(caption.value for caption in tab(app, "Gradient noise").caption)
    assert "step 200" in captions
    # The closed-form gains at the live q, as the caption states them, and their dependence on n.
    weights_mean, weights_sd = gradient_variance(context.dataset, context.scenario.model, q, local_reparam=False)
    local_mean, local_sd = gradient_variance(context.dataset, context.scenario.model, q, local_reparam=True)
    assert f"reparameterisation {fmt(weights_mean[0] / local_mean[0])} times less variance" in captions
    assert f"{fmt(weights_sd[0] / local_sd[0])} times less for the slope sd's gradient" in captions
    assert "in proportion to n" in captions


def test_every_tab_renders_on_five_uploaded_points(app):
    app.file_uploader(key="upload").set_value(("line.csv", GOOD_CSV, "text/csv")).run()
    no_exception(app)
    assert context_of(app).dataset.n == 5
    for label in EXPLORE_TABS:
        open_tab(app, label)
        assert not app.error, (label, [error.value for error in app.error])
    open_tab(app, "Sequential updating")
    app.button(key="explore_goto_all").click().run()
    no_exception(app)
    assert any("Points seen: **5** of 5" in markdown.value for markdown in tab(app, "Sequential updating").markdown)
    open_tab(app, "Gradient noise")
    app.button(key="explore_gradient_run").click().run()
    rerun_until_computed(app)
    assert "mean-field optimum" in " ".join(caption.value for caption in tab(app, "Gradient noise").caption)
    open_tab(app, "Calibration")
    app.button(key="explore_calibration_run").click().run()
    no_exception(app)
    assert len(table_rows(tab(app, "Calibration"))) == 2


def test_unknown_noise_shows_the_quadrature_reference_and_the_fits_that_learn_s(app):
    open_tab(app, "Unknown noise sd")
    context = context_of(app)
    model = Model(context.scenario.prior, context.scenario.model.noise_sd, NoiseSdPrior(kind="half_normal"))
    reference = noise_sd_posterior(context.dataset, model)
    (exact_row,) = table_rows(tab(app, "Unknown noise sd"))
    assert exact_row["Noise sd mean"] == fmt(reference.noise_sd_mean)
    assert exact_row["Slope sd"] == fmt(reference.theta.sd[0])
    app.selectbox(key="explore_noise_prior").set_value("inverse_gamma").run()
    no_exception(app)
    other = noise_sd_posterior(context.dataset, Model(model.prior, model.noise_sd, NoiseSdPrior(kind="inverse_gamma")))
    assert table_rows(tab(app, "Unknown noise sd"))[0]["Noise sd mean"] == fmt(other.noise_sd_mean)
    app.button(key="explore_noise_run").click().run()
    rerun_until_computed(app)
    exact_row, optimum_row, bbb_row, svi_row = table_rows(tab(app, "Unknown noise sd"))
    assert [optimum_row[""], bbb_row[""], svi_row[""]] == ["mean-field optimum", "Bayes by Backprop", NOISE_SVI.label]
    caption = table_caption(tab(app, "Unknown noise sd"))  # names what the cells hold and every row
    assert "noise sd s" in caption and all(row[""] in caption for row in (exact_row, optimum_row, bbb_row, svi_row))
    # All learn s to within 3% of the exact posterior mean of s; their slope sds sit below the exact one.
    for row in (optimum_row, bbb_row, svi_row):
        assert float(row["Noise sd mean"]) == pytest.approx(other.noise_sd_mean, rel=0.03), row[""]
        assert float(row["Slope sd"]) < 0.7 * float(exact_row["Slope sd"]), row[""]
    # Pyro SVI (seed 0) lands within 10% of the mean-field optimum's sds of s and of the slope.
    for name in ("Noise sd sd", "Slope sd"):
        assert float(svi_row[name]) == pytest.approx(float(optimum_row[name]), rel=0.1), name
    (figure,) = figures_in(tab(app, "Unknown noise sd"))
    names = trace_names(figure)
    assert "Bayes by Backprop: q(s)" in names and f"{NOISE_SVI.label}: q(s)" in names and "true s = 0.1" in names


def moments_of(row: dict) -> list[float]:
    """A table row's slope mean, slope sd, intercept mean and intercept sd as numbers."""
    return [float(row[name]) for name in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd")]


def test_other_priors_show_the_grid_posterior_and_mean_field_optimum_and_fits_land_on_it(app, started):
    open_tab(app, "Other priors")
    rerun_until_computed(app)
    view = tab(app, "Other priors")
    assert not app.error and len(figures_in(view)) == 2
    # A Laplace prior tight enough to pull the slope (3 on the page's data) towards 0 by more than one posterior sd.
    app.number_input(key="explore_prior_slope_scale").set_value(0.02).run()
    rerun_until_computed(app)
    context = context_of(app)
    page_prior = context.scenario.prior
    prior = Prior(
        ParameterPrior("laplace", page_prior.slope_mean, 0.02),
        ParameterPrior("laplace", page_prior.intercept_mean, page_prior.intercept_sd),
    )
    model = Model(prior, context.scenario.model.noise_sd)
    grid = grid_posterior(context.dataset, model)
    optimum = mean_field_optimum(context.dataset, model, starts=grid.windows)
    assert grid.mean[0] < context.exact.mean[0] - context.exact.sd[0], "the Laplace prior pulls the slope"
    computed_in_a_worker([job for job in started if job.arguments[1:2] == (model,)], explore_budget.prior_reference)
    view = tab(app, "Other priors")
    exact_row, optimum_row = table_rows(view)
    assert [exact_row[""], optimum_row[""]] == ["exact, grid", "mean-field optimum"]
    expected = [fmt(value) for value in (grid.mean[0], grid.sd[0], grid.mean[1], grid.sd[1])]
    assert [exact_row[name] for name in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd")] == expected
    q = optimum.q
    assert moments_of(optimum_row) == [float(fmt(v)) for v in (q.mean[0], q.sd[0], q.mean[1], q.sd[1])]
    text = " ".join(markdown.value for markdown in view.markdown)
    assert f"log p(y) = **{fmt(grid.log_evidence)}**" in text and f"**{grid.corr:.3f}**" in text
    slope_figure, _ = figures_in(view)
    exact_trace = slope_figure["data"][trace_names(slope_figure).index("exact posterior, grid")]
    shown = values(exact_trace["x"])
    np.testing.assert_allclose(
        values(exact_trace["y"]), np.interp(shown, grid.slope_axis, grid.marginal_densities()[0]), rtol=1e-9
    )
    assert "prior" in trace_names(slope_figure) and "mean-field optimum" in trace_names(slope_figure)
    # Both fits (seed 0, 2000 steps) land within 10% of the optimum's sds and 0.3 of its sds on the means.
    app.button(key="explore_priors_run").click().run()
    rerun_until_computed(app)
    rows = table_rows(tab(app, "Other priors"))
    assert [row[""] for row in rows[2:]] == [config.label for config in PRIOR_FITS]
    target = np.array(moments_of(optimum_row))
    for row in rows[2:]:
        fitted = np.array(moments_of(row))
        np.testing.assert_allclose(fitted[[1, 3]], target[[1, 3]], rtol=0.1, err_msg=row[""])
        assert np.all(np.abs(fitted[[0, 2]] - target[[0, 2]]) < 0.3 * target[[1, 3]]), row
    names = trace_names(figures_in(tab(app, "Other priors"))[1])
    assert all(config.label in names for config in PRIOR_FITS)


def test_other_priors_name_the_bad_field_and_warn_when_grid_and_optimum_disagree(app):
    open_tab(app, "Other priors")
    app.number_input(key="explore_prior_intercept_scale").set_value(-1.0).run()
    no_exception(app)
    assert any("Intercept prior" in error.value and "**Scale**" in error.value for error in app.error)
    assert not figures_in(tab(app, "Other priors"))
    app.number_input(key="explore_prior_intercept_scale").set_value(10.0)
    app.selectbox(key="explore_prior_slope_kind").set_value("student_t").run()
    app.number_input(key="explore_prior_slope_df").set_value(0.0).run()
    assert any("Slope prior" in error.value and "**Degrees of freedom**" in error.value for error in app.error)
    app.selectbox(key="explore_prior_slope_kind").set_value("scale_mixture").run()
    app.number_input(key="explore_prior_slope_weight").set_value(1.5).run()
    no_exception(app)
    assert any("**Mixture weight π**" in error.value for error in app.error)
    app.number_input(key="explore_prior_slope_weight").set_value(0.5).run()
    rerun_until_computed(app)
    assert not app.error and len(figures_in(tab(app, "Other priors"))) == 2
    assert not app.warning
    app.number_input(key="explore_prior_slope_weight").set_value(0.0).run()
    assert any("**Mixture weight π**" in error.value for error in app.error)  # 0 or 1 is a plain Gaussian
    # Spike and slab on data of slope 0.1: a mode in the spike at 0 and one near 0.09. The reference is the closed-form
    # mixture (both modes); the ELBO has an optimum in each, and the view says so and shows the better one.
    app.number_input(key="data_slope").set_value(0.1)
    app.number_input(key="explore_prior_slope_weight").set_value(0.5)
    app.number_input(key="explore_prior_slope_second_scale").set_value(1e-4).run()
    rerun_until_computed(app)
    context = context_of(app)
    page_prior = context.scenario.prior
    prior = Prior(
        ParameterPrior("scale_mixture", page_prior.slope_mean, page_prior.slope_sd, second_scale=1e-4),
        ParameterPrior("laplace", page_prior.intercept_mean, page_prior.intercept_sd),
    )
    optimum = mean_field_optimum(context.dataset, Model(prior, context.scenario.model.noise_sd))
    assert len(optimum.optima) == 2
    view = tab(app, "Other priors")
    assert any(
        "The ELBO has 2 optima here; the best is shown. Variational inference started elsewhere can stop at the other "
        "one." in info.value
        for info in view.info
    )
    exact_row, optimum_row = table_rows(view)
    assert exact_row[""] == "exact, grid"  # a Laplace intercept prior: no closed form
    q = optimum.q
    assert moments_of(optimum_row) == [float(fmt(v)) for v in (q.mean[0], q.sd[0], q.mean[1], q.sd[1])]
    # A Gaussian intercept prior: every prior is a scale mixture, and the closed-form mixture is the reference.
    app.selectbox(key="explore_prior_intercept_kind").set_value("gaussian").run()
    rerun_until_computed(app)
    mixture = mixture_posterior(
        context.dataset,
        Prior(prior.slope, ParameterPrior("gaussian", page_prior.intercept_mean, page_prior.intercept_sd)),
        context.scenario.model.noise_sd,
    )
    view = tab(app, "Other priors")
    exact_row = table_rows(view)[0]
    assert exact_row[""] == "exact, mixture"
    expected = [float(fmt(v)) for v in (mixture.mean[0], mixture.sd[0], mixture.mean[1], mixture.sd[1])]
    assert moments_of(exact_row) == expected
    text = " ".join(markdown.value for markdown in view.markdown)
    assert "a mixture of 2 conjugate posteriors" in text and f"log p(y) = **{fmt(mixture.log_evidence)}**" in text
    assert "exact posterior, mixture" in trace_names(figures_in(view)[0])


def linked_page(params: dict[str, str]) -> AppTest:
    """A page opened from a link with `params` in its query string."""
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.query_params.update(params)
    page.run()
    no_exception(page)
    return page


def warnings_in(block) -> str:
    """The text of every warning in `block`."""
    return " ".join(warning.value for warning in block.warning)


def test_gradient_noise_refuses_a_million_points_with_1024_samples_before_it_starts():
    page = linked_page({"n": "1000000", "k": "1024"})
    open_tab(page, "Gradient noise")
    view = tab(page, "Gradient noise")
    assert page.button(key="explore_gradient_run").disabled
    text = warnings_in(view)
    assert "Not run" in text and "hours of server time" in text and "samples per step" in text
    page.session_state["explore_gradient_requested"] = True  # a request from a stale page computes nothing either
    page.run()
    no_exception(page)
    assert not tab(page, "Gradient noise").table


def test_gradient_noise_is_cached_per_settings_so_a_rerun_does_not_measure_again(app, monkeypatch):
    open_tab(app, "Gradient noise")
    app.button(key="explore_gradient_run").click().run()
    rerun_until_computed(app)
    first = table_rows(tab(app, "Gradient noise"))
    started = []
    monkeypatch.setattr("bayesdemo.workers.jobs.ExploreJob.start", lambda job: started.append(job))
    app.button(key="explore_gradient_run").click().run()
    no_exception(app)
    assert started == [] and table_rows(tab(app, "Gradient noise")) == first


def test_unknown_noise_fits_are_refused_on_200000_points():
    page = linked_page({"n": "200000"})
    open_tab(page, "Unknown noise sd")
    assert page.button(key="explore_noise_run").disabled
    assert "Not run" in warnings_in(tab(page, "Unknown noise sd"))
    assert "number of points n" in warnings_in(tab(page, "Unknown noise sd"))


def test_basis_functions_refuse_100_centres_on_200000_points():
    page = linked_page({"n": "200000"})
    open_tab(page, "Basis functions")
    page.selectbox(key="explore_basis_data").set_value("page")
    page.selectbox(key="explore_basis_family").set_value("rbf")
    page.number_input(key="explore_basis_size").set_value(100)
    page.number_input(key="explore_basis_max").set_value(100).run()
    no_exception(page)
    text = warnings_in(tab(page, "Basis functions"))
    assert "Not run" in text and "number of RBF centres" in text
    assert not figures_in(tab(page, "Basis functions"))


def test_calibration_refuses_its_largest_settings_with_bayes_by_backprop(app):
    open_tab(app, "Calibration")
    app.number_input(key="explore_calibration_datasets").set_value(100_000)
    app.number_input(key="explore_calibration_n").set_value(100_000)
    app.checkbox(key="explore_calibration_bbb").check().run()
    no_exception(app)
    assert app.button(key="explore_calibration_run").disabled
    text = warnings_in(tab(app, "Calibration"))
    assert "Not run" in text and "hours of server time" in text and "leave out Bayes by Backprop" in text


def test_nuts_refuses_the_largest_warm_up_and_draws_before_it_starts(app):
    open_tab(app, "MCMC reference")
    app.number_input(key="explore_mcmc_warmup").set_value(100_000)
    app.number_input(key="explore_mcmc_samples").set_value(100_000).run()
    no_exception(app)
    assert app.button(key="explore_mcmc_run").disabled
    text = warnings_in(tab(app, "MCMC reference"))
    assert "Not run" in text and "NUTS warm-up iterations" in text


def test_fits_under_other_priors_are_refused_on_200000_points():
    page = linked_page({"n": "200000"})
    open_tab(page, "Other priors")
    assert page.button(key="explore_priors_run").disabled
    assert "Not run" in warnings_in(tab(page, "Other priors"))
