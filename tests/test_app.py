"""The page through Streamlit's AppTest: widgets reach the engine's configs, runs complete, bad input is contained."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from streamlit.runtime.memory_media_file_storage import _calculate_file_id
from streamlit.testing.v1 import AppTest

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior
from bayesdemo.core.scenario import PRESETS, Scenario
from bayesdemo.fitting import export
from bayesdemo.fitting.metrics import target_for
from bayesdemo.workers import jobs
from bayesdemo.workers.jobs import Job
from tests.support.pages import (
    APP,
    GOOD_CSV,
    TIMEOUT_S,
    job_of,
    no_exception,
    rerun_until_computed,
    rerun_until_finished,
)


def progress_text(page: AppTest) -> str:
    """The live progress bar's text (markdown)."""
    (progress,) = page.get("progress")
    return progress.proto.text


def test_first_run_shows_the_exact_reference_from_the_engine(app):
    no_exception(app)
    assert not app.error and not app.warning
    scenario = app.session_state["scenario"]
    assert scenario == Scenario(), "no query string and no preset: the default scenario"
    exact = exact_posterior(generate(scenario.data), scenario.model)
    shown = {metric.label: metric.value for metric in app.metric}
    assert shown["Slope sd"] == f"{exact.sd[0]:.4g}"
    assert shown["Intercept mean"] == f"{exact.mean[1]:.4g}"
    assert shown["Correlation"] == f"{exact.corr:.4g}"
    assert [button.label for button in app.sidebar.button][:4] == ["Run", "Pause", "Stop", "Reset"]


def test_every_sidebar_control_reaches_the_scenario_and_the_job(app):
    numbers = {
        "data_n": 50,
        "data_slope": -2.0,
        "data_intercept": 0.5,
        "data_noise_sd": 0.3,
        "data_x_min": -1.0,
        "data_x_max": 2.0,
        "data_seed": 11,
        "prior_slope_mean": 1.0,
        "prior_slope_sd": 2.0,
        "prior_intercept_mean": -1.0,
        "prior_intercept_sd": 3.0,
        "fit_lr": 0.01,
        "fit_lr_decay": 0.5,
        "fit_samples": 4,
        "fit_batch_size": 20,
        "fit_seed": 7,
        "fit_steps": 300,
        "snapshot_every": 5,
    }
    for key, value in numbers.items():
        app.number_input(key=key).set_value(value)
    app.selectbox(key="fit_method").set_value("svi").run()  # the guide is enabled for Pyro SVI only
    app.selectbox(key="fit_guide").set_value("mvn")
    app.selectbox(key="fit_optimizer").set_value("sgd")
    app.select_slider(key="speed").set_value(50.0)
    app.run()
    no_exception(app)
    assert not app.error
    expected = Scenario(
        data=DataConfig(n=50, slope=-2.0, intercept=0.5, noise_sd=0.3, x_min=-1.0, x_max=2.0, seed=11),
        prior=GaussianPrior(slope_mean=1.0, slope_sd=2.0, intercept_mean=-1.0, intercept_sd=3.0),
        fit=FitConfig(
            method="svi",
            guide="mvn",
            optimizer="sgd",
            lr=0.01,
            lr_decay=0.5,
            samples=4,
            batch_size=20,
            seed=7,
            steps=300,
        ),
        speed=50.0,
        snapshot_every=5,
    )
    assert app.session_state["scenario"] == expected
    app.sidebar.button(key="run").click().run()
    no_exception(app)
    job = job_of(app)
    assert job is not None and job.configs == expected.fit_configs()
    assert job.model == expected.model and job.run_config.snapshot_every == 5
    assert job.view().max_steps_per_second == 50.0
    assert job.dataset.n == 50 and job.dataset.x.min() >= -1.0 and job.dataset.x.max() <= 2.0
    app.selectbox(key="fit_method").set_value("compare").run()
    scenario = app.session_state["scenario"]
    assert scenario.compare_all and [c.method for c in scenario.fit_configs()] == ["noise", "bbb", "svi", "svi"]
    assert job_of(app) is job, "changing a widget must not replace the running job"


def test_a_short_run_completes_and_offers_downloads(app):
    app.number_input(key="fit_steps").set_value(200).run()
    app.sidebar.button(key="run").click().run()
    no_exception(app)
    job = rerun_until_finished(app)
    assert job.state == "finished"
    fit = job.view().fits[0]
    assert fit.status == "done" and fit.steps_done == 200
    assert any("Finished" in progress.proto.text for progress in app.get("progress"))
    table = app.table[0].value
    assert table["Step"].iloc[0] == "200 / 200"
    assert table["Slope mean"].iloc[0] == f"{fit.last.mean[0]:.4g}"
    assert not any(button.proto.disabled for button in app.get("download_button"))
    assert job_of(app) is job
    # What the download buttons hand out: the engine's exports of this very job, as files named by their content
    # (the server's file id hashes data, type and name), so the links stay the same over later runs of the page.
    context = app.session_state["job_context"]
    results_text = export.results_json(context.scenario, context.dataset, context.exact, job.runs())
    least_squares = context.dataset.least_squares()
    targets = {
        label: target_for(config, context.exact, least_squares)
        for label, config in zip(job.labels, job.configs, strict=True)
    }
    trajectory_text = export.trajectory_csv(job.view().traces(), context.exact, targets)
    results = json.loads(results_text)
    assert results["fits"][0]["steps"] == 200 and results["fits"][0]["status"] == "done"
    assert trajectory_text.count("\n") == 1 + len(fit.snapshots)
    # The trajectory carries each snapshot's status; its last row says what the page and the results say.
    assert trajectory_text.splitlines()[0].endswith(",status")
    final_status = results["fits"][0]["convergence"]["status"]
    assert trajectory_text.splitlines()[-1].endswith("," + final_status)
    urls = {button.proto.label: button.proto.url for button in app.get("download_button")}
    expected = {
        "Download trajectory (CSV)": _calculate_file_id(
            trajectory_text.encode(), "text/csv", "bayesdemo_trajectory.csv"
        ),
        "Download results (JSON)": _calculate_file_id(
            results_text.encode(), "application/json", "bayesdemo_results.json"
        ),
    }
    assert {label: url.rsplit("/", 1)[-1].split(".")[0] for label, url in urls.items()} == expected
    app.run()
    assert {button.proto.label: button.proto.url for button in app.get("download_button")} == urls


def test_a_queued_fit_offers_no_downloads_until_it_has_results(app, monkeypatch):
    # Every worker slot taken: the job waits in line, with nothing to download yet (a link made now would be stale).
    monkeypatch.setattr(jobs, "MAX_RUNNING_JOBS", 0)
    app.sidebar.button(key="run").click().run()
    no_exception(app)
    job = job_of(app)
    try:
        assert job.state == "queued"
        assert [button.proto.disabled for button in app.get("download_button")] == [True, True]
        app.sidebar.button(key="stop").click().run()
        assert job.state == "stopped"
        assert [button.proto.disabled for button in app.get("download_button")] == [False, False]
    finally:
        job.stop()


def test_a_diverging_fit_shows_a_warning_and_keeps_its_last_snapshot(app):
    app.selectbox(key="fit_method").set_value("noise").run()
    app.number_input(key="fit_lr").set_value(10.0)
    app.number_input(key="snapshot_every").set_value(1).run()
    app.sidebar.button(key="run").click().run()
    job = rerun_until_finished(app)
    fit = job.view().fits[0]
    assert fit.status == "diverged" and fit.snapshots
    warnings = [warning.value for warning in app.warning]
    assert any("diverged" in text and "Lower the learning rate" in text for text in warnings), warnings
    assert app.table[0].value["Status"].iloc[0] == "Diverged"
    assert app.table[0].value["Slope mean"].iloc[0] == f"{fit.last.mean[0]:.4g}"
    # The job ended, but a diverged fit never reads as finished: not in the progress line, not in the table.
    progress = progress_text(app)
    assert progress.startswith("**Diverged**") and "Finished" not in progress, progress
    assert not any("Finished" in str(value) for value in app.table[0].value.to_numpy().ravel())


def test_pause_resume_stop_and_reset(app):
    app.number_input(key="fit_steps").set_value(1_000_000).run()
    app.select_slider(key="speed").set_value(200.0).run()
    app.sidebar.button(key="run").click().run()
    job = job_of(app)
    assert job.state == "running"
    app.sidebar.button(key="pause").click().run()
    assert job.state == "paused"
    assert app.sidebar.button(key="pause").label == "Resume"
    job.pause(wait_s=10.0)  # already paused: only waits for the worker's confirmation
    steps = job.view().steps_done
    time.sleep(0.2)
    assert job.view().steps_done == steps
    app.sidebar.button(key="pause").click().run()
    assert job.state == "running" and app.sidebar.button(key="pause").label == "Pause"
    app.select_slider(key="speed").set_value(0.0).run()
    assert job.view().max_steps_per_second == 0.0, "the speed slider changes a running job"
    app.sidebar.button(key="stop").click().run()
    assert job.state == "stopped" and job_of(app) is job
    app.sidebar.button(key="reset").click().run()
    no_exception(app)
    assert job_of(app) is None


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_loads_and_runs_without_exception(app, name):
    app.selectbox(key="preset").set_value(name).run()
    no_exception(app)
    preset = PRESETS[name]
    assert app.session_state["scenario"] == preset.scenario
    assert any(preset.name in info.value for info in app.info)
    app.sidebar.button(key="run").click().run()
    time.sleep(0.3)
    app.run()
    no_exception(app)
    job = job_of(app)
    assert job.configs == preset.scenario.fit_configs()
    assert job.view().steps_done > 0
    assert not app.error


def test_bad_widget_input_names_the_field_and_keeps_the_run(app):
    app.number_input(key="fit_steps").set_value(1_000_000).run()
    app.sidebar.button(key="run").click().run()
    job = job_of(app)
    good = app.session_state["scenario"]
    app.number_input(key="data_noise_sd").set_value(0.0).run()
    no_exception(app)
    # Named in the words on screen, not the config's field name.
    assert any("Noise sd" in error.value and "noise_sd" not in error.value for error in app.error)
    assert app.session_state["scenario"] is None
    assert app.sidebar.button(key="run").disabled
    assert job_of(app) is job and job.state == "running"
    app.number_input(key="data_noise_sd").set_value(0.1)
    app.number_input(key="data_x_max").set_value(-1.0).run()
    assert any("x to" in error.value and "x from" in error.value and "x_max" not in error.value for error in app.error)
    app.number_input(key="data_x_max").set_value(1.0)
    app.number_input(key="fit_lr").set_value(-0.5).run()
    assert any("Learning rate" in error.value for error in app.error)
    app.number_input(key="fit_lr").set_value(None).run()
    assert not app.error and app.session_state["scenario"] == good
    assert job_of(app) is job and job.state == "running"


def test_a_config_error_at_run_time_is_shown_and_the_old_job_kept(app):
    app.number_input(key="fit_steps").set_value(1_000_000).run()
    app.sidebar.button(key="run").click().run()
    job = job_of(app)
    app.number_input(key="fit_batch_size").set_value(500).run()  # more than the 100 data points
    app.sidebar.button(key="run").click().run()
    no_exception(app)
    assert any("Batch size" in error.value for error in app.error)
    assert job_of(app) is job and job.state == "running"


def test_new_data_draws_with_the_next_seed(app):
    before = app.session_state["scenario"].data.seed
    app.sidebar.button(key="new_data").click().run()
    assert app.session_state["scenario"].data.seed == before + 1
    assert app.number_input(key="data_seed").value == before + 1


def test_bad_csv_shows_an_error_and_keeps_the_previous_data(app):
    simulated = app.session_state["context_cache"].dataset
    app.file_uploader(key="upload").set_value(("broken.csv", b"x,y\n1,abc\n2,3\n", "text/csv")).run()
    no_exception(app)
    assert any("CSV column y" in error.value and "abc" in error.value for error in app.error)
    assert app.session_state["context_cache"].dataset is simulated
    app.file_uploader(key="upload").set_value(("line.csv", GOOD_CSV, "text/csv")).run()
    assert not app.error
    uploaded = app.session_state["context_cache"].dataset
    assert uploaded.n == 5 and uploaded.source == "line.csv"
    app.file_uploader(key="upload").set_value(("header.csv", b"a,b\n1,2\n3,4\n", "text/csv")).run()
    no_exception(app)
    assert any("CSV upload" in error.value and "header" in error.value for error in app.error)
    assert app.session_state["context_cache"].dataset is uploaded
    app.sidebar.button(key="run").click().run()
    assert job_of(app).dataset is uploaded


def test_the_scenario_travels_in_the_query_string(app):
    app.number_input(key="data_n").set_value(40)
    app.selectbox(key="fit_method").set_value("noise").run()
    params = dict(app.query_params)
    assert params["n"] in ("40", ["40"]) and params["m"] in ("noise", ["noise"])
    shared = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    shared.query_params.update({"n": "40", "m": "noise", "v": "20.0"})
    shared.run()
    no_exception(shared)
    assert not shared.warning
    scenario = shared.session_state["scenario"]
    assert scenario.data.n == 40 and scenario.fit.method == "noise" and scenario.speed == 20.0


def test_a_tampered_query_string_warns_and_the_app_still_works():
    page = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    page.query_params.update({"n": "lots", "s": "-1", "m": "magic", "t": "150", "x0": "9" * 100})
    page.run()
    no_exception(page)
    warnings = " ".join(warning.value for warning in page.warning)
    assert "n=" in warnings and "s=" in warnings and "m=" in warnings and "x0" in warnings
    scenario = page.session_state["scenario"]
    assert scenario.data == DataConfig() and scenario.fit.method == FitConfig().method and scenario.fit.steps == 150
    page.sidebar.button(key="run").click().run()
    try:
        job = rerun_until_finished(page)
        assert job.state == "finished" and job.view().fits[0].steps_done == 150
    finally:
        job_of(page).stop()
    page.button(key="dismiss_link").click().run()
    assert not page.warning


def test_bayes_by_backprop_options_reach_its_fit_only_and_the_likelihood_without_kl_collapses_the_sds(app):
    app.number_input(key="fit_steps").set_value(400)
    app.selectbox(key="fit_objective").set_value("likelihood")
    app.selectbox(key="fit_kl").set_value("monte_carlo")
    app.toggle(key="fit_local_reparam").set_value(True).run()
    no_exception(app)
    fit = app.session_state["scenario"].fit
    assert (fit.method, fit.objective, fit.kl, fit.local_reparam) == ("bbb", "likelihood", "monte_carlo", True)
    assert dict(app.query_params).get("obj") in ("likelihood", ["likelihood"])
    app.sidebar.button(key="run").click().run()
    job = rerun_until_finished(app)
    assert job.configs == (fit,)
    exact = app.session_state["job_context"].exact
    last = job.view().fits[0].last
    # No KL to the prior: nothing holds the sds up, they fall far below even the mean-field optimum (MATH.md).
    assert all(last.sd < 0.5 * exact.mean_field_sd), (last.sd, exact.mean_field_sd)
    app.selectbox(key="fit_method").set_value("svi").run()
    other = app.session_state["scenario"].fit
    assert (other.objective, other.kl, other.local_reparam) == ("elbo", "closed", False)


# ---- the uploaded data against the assumed noise sd ------------------------------------------------------------


def csv_of(x: np.ndarray, y: np.ndarray) -> bytes:
    """x and y as CSV bytes with header x,y."""
    return ("x,y\n" + "".join(f"{a!r},{b!r}\n" for a, b in zip(x.tolist(), y.tolist(), strict=True))).encode()


def scattered_csv(noise_sd: float, n: int = 100, seed: int = 3) -> tuple[bytes, float]:
    """A line (slope 3, intercept 1, x in [0, 1]) with Gaussian noise of `noise_sd`, and its residual sd by numpy."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, n)
    y = 3.0 * x + 1.0 + rng.normal(0.0, noise_sd, n)
    # Independent reference: numpy's polyfit residual sum of squares over n - 2 degrees of freedom.
    _, (rss,), *_ = np.polyfit(x, y, 1, full=True)
    return csv_of(x, y), float(np.sqrt(rss / (n - 2)))


def noise_warnings(page: AppTest) -> list[str]:
    """The sidebar warnings about the noise sd."""
    return [warning.value for warning in page.sidebar.warning if "residual sd" in warning.value]


def test_uploaded_data_far_from_the_noise_sd_warn_and_use_sets_the_residual_sd(app):
    content, residual_sd = scattered_csv(0.92)
    app.file_uploader(key="upload").set_value(("wide.csv", content, "text/csv")).run()
    no_exception(app)
    (text,) = noise_warnings(app)
    assert f"{residual_sd:.4g}" in text and "**Noise sd** of 0.1." in text, text
    assert "n − 2 = 98 degrees of freedom" in text and "assumes the noise sd" in text and "too narrow" in text
    # What the warning says: the exact 95% band misses most points (engine's predictive, counted here).
    context = app.session_state["context_cache"]
    mean, _, predictive_sd = context.exact.predictive(context.dataset.x)
    inside = np.abs(context.dataset.y - mean) <= 1.96 * predictive_sd
    assert inside.mean() < 0.5, inside.mean()
    app.button(key="use_residual_sd").click().run()
    no_exception(app)
    # The field shows 4 significant figures, as the button's label does.
    assert app.number_input(key="data_noise_sd").value == pytest.approx(residual_sd, rel=5e-4)
    assert app.session_state["scenario"].model.noise_sd == app.number_input(key="data_noise_sd").value
    assert not noise_warnings(app)
    assert dict(app.query_params).get("s") is not None, "the noise sd travels in the link"


def test_uploaded_data_far_below_the_noise_sd_warn_too_wide(app):
    content, residual_sd = scattered_csv(0.02)
    app.file_uploader(key="upload").set_value(("tight.csv", content, "text/csv")).run()
    (text,) = noise_warnings(app)
    assert f"{residual_sd:.4g}" in text and "times smaller" in text and "too wide" in text, text


def test_learn_the_noise_sd_opens_the_unknown_noise_tab_and_fits(app):
    content, _ = scattered_csv(0.92)
    app.file_uploader(key="upload").set_value(("wide.csv", content, "text/csv")).run()
    app.button(key="learn_noise_sd").click().run()
    no_exception(app)
    rerun_until_computed(app)  # the three fits run as one computation in a worker process
    from bayesdemo.page.explore import EXPLORE_TABS, TAB_KEY

    assert app.session_state[TAB_KEY] == "Unknown noise sd"
    rows = app.tabs[EXPLORE_TABS.index("Unknown noise sd")].table[0].value
    assert len(rows) == 4, "the exact reference and the three fits with the noise sd learned"
    # The learned noise sd is the data's, not the assumed 0.1: within 20% of the residual sd (n = 100 points).
    learned = [float(value) for value in rows["Noise sd mean"]]
    assert all(abs(value / 0.92 - 1) < 0.2 for value in learned), learned


@pytest.mark.parametrize("n", [100, 12])
def test_the_default_data_uploaded_as_csv_do_not_warn(app, n):
    data = generate(DataConfig(n=n))
    app.file_uploader(key="upload").set_value(("default.csv", csv_of(data.x, data.y), "text/csv")).run()
    no_exception(app)
    assert app.session_state["context_cache"].dataset.source == "default.csv"
    assert not noise_warnings(app) and not app.sidebar.warning


def test_few_points_are_never_judged(app):
    # Three points far off a line: n - 2 = 1 degree of freedom is too few to tell the noise sd from chance.
    app.file_uploader(key="upload").set_value(("three.csv", b"x,y\n0,0\n1,5\n2,1\n", "text/csv")).run()
    no_exception(app)
    assert not noise_warnings(app)


def test_the_noise_sd_rule_rarely_warns_when_the_noise_sd_is_right():
    from bayesdemo.page import context as page_module

    # Monte Carlo with the right noise sd at the fewest degrees of freedom judged: the false alarm rate should be the
    # chi-square probability 0.91% (P(chi2_10 < 2.5) + P(chi2_10 > 40)). 20,000 draws: its sd is 0.07%, so 1.3% is
    # over 5 sds above it and a rule that judged chance (say, at 2 degrees of freedom: 24%) fails.
    rng = np.random.default_rng(0)
    degrees = page_module.NOISE_SD_MIN_DEGREES
    n = degrees + 2
    x = np.linspace(0.0, 1.0, n)
    alarms = 0
    draws = 20_000
    for _ in range(draws):
        y = 2.0 * x - 1.0 + rng.normal(0.0, 0.5, n)
        _, (rss,), *_ = np.polyfit(x, y, 1, full=True)
        alarms += page_module.noise_sd_far(float(np.sqrt(rss / degrees)), 0.5, degrees)
    assert 0.005 < alarms / draws < 0.013, alarms / draws
    assert page_module.noise_sd_far(0.92, 0.1, degrees) and page_module.noise_sd_far(0.04, 0.1, degrees)
    assert not page_module.noise_sd_far(0.92, 0.1, degrees - 1)


# ---- every fit's status: at target, still moving, far from target, diverged ------------------------------------


def exact_by_numpy(x: np.ndarray, y: np.ndarray, noise_sd: float, prior_sd: np.ndarray) -> tuple[np.ndarray, ...]:
    """Independent reference (PRML 3.53-3.54, zero prior mean): exact mean, exact sds and mean-field sds."""
    design = np.column_stack([x, np.ones_like(x)])
    precision = np.diag(1.0 / prior_sd**2) + design.T @ design / noise_sd**2
    cov = np.linalg.inv(precision)
    mean = cov @ design.T @ y / noise_sd**2
    return mean, np.sqrt(np.diag(cov)), 1.0 / np.sqrt(np.diag(precision))


def run_page(page: AppTest, **numbers: float) -> Job:
    """Set the number inputs `numbers`, press Run and redraw until the job has ended."""
    for key, value in numbers.items():
        page.number_input(key=key).set_value(value)
    page.run()
    page.sidebar.button(key="run").click().run()
    no_exception(page)
    return rerun_until_finished(page)


def test_a_fit_far_from_target_says_so_and_why_in_the_table_and_the_progress_line(app):
    # x in [10, 12]: slope and intercept correlate at rho ~ -0.998 and 200 Bayes by Backprop steps leave q far away.
    job = run_page(app, data_x_min=10.0, data_x_max=12.0, fit_steps=200)
    fit = job.view().fits[0]
    assert job.state == "finished" and fit.status == "done"
    prior = app.session_state["scenario"].prior
    dataset = app.session_state["job_context"].dataset
    _, exact_sd, mean_field_sd = exact_by_numpy(
        dataset.x, dataset.y, 0.1, np.array([prior.slope_sd, prior.intercept_sd])
    )
    # Far by the stated rule, checked here: the slope's sd more than twice the mean-field optimum's.
    assert fit.last.sd[0] > 2 * mean_field_sd[0], (fit.last.sd, mean_field_sd, exact_sd)
    row = app.table[0].value.iloc[0]
    assert row["Status"] == "Finished · far from target"
    why = row["Why"]
    assert "x lies far from 0" in why and '"Centre x"' in why and '"Run until at target"' in why, why
    assert why.endswith("."), "messages end each sentence"
    progress = progress_text(app)
    assert progress.startswith("**Finished** · far from target · Step 200 of 200"), progress
    assert why in progress


def test_a_default_fit_reaches_its_target_and_says_so(app):
    job = run_page(app)
    fit = job.view().fits[0]
    assert fit.steps_done == FitConfig().steps_in_force
    prior = app.session_state["scenario"].prior
    dataset = app.session_state["job_context"].dataset
    exact_mean, exact_sd, mean_field_sd = exact_by_numpy(
        dataset.x, dataset.y, 0.1, np.array([prior.slope_sd, prior.intercept_sd])
    )
    # At target, checked here on the last snapshot: the rule's band is 0.1 exact sd and 10% of the sd on a 50-step
    # average; a single snapshot gets twice that.
    assert np.all(np.abs(fit.last.mean - exact_mean) < 0.2 * exact_sd), (fit.last.mean, exact_mean)
    assert np.all(np.abs(fit.last.sd / mean_field_sd - 1) < 0.2), (fit.last.sd, mean_field_sd)
    row = app.table[0].value.iloc[0]
    assert (row["Status"], row["Why"]) == ("Finished · at target", "–")
    steps = FitConfig().steps_in_force
    assert progress_text(app).startswith(f"**Finished** · at target · Step {steps:,} of {steps:,}")


def test_compare_all_counts_where_the_fits_stand(app):
    app.selectbox(key="fit_method").set_value("compare").run()
    job = run_page(app, fit_steps=300)
    statuses = list(app.table[0].value["Status"])
    assert len(statuses) == 4 and all(status.startswith("Finished · ") for status in statuses), statuses
    progress = progress_text(app)
    counted = {label: sum(status.endswith(label) for status in statuses) for label in ("at target", "far from target")}
    for label, count in counted.items():
        assert (f"{count} {label}" in progress) == (count > 0), (progress, statuses)
    assert job.state == "finished" and progress.startswith("**Finished** · ")


def test_centre_x_and_run_until_at_target_reach_the_fit_and_the_link(app):
    assert app.checkbox(key="fit_centre_x").value is False and app.checkbox(key="fit_until_target").value is False
    app.checkbox(key="fit_centre_x").check()
    app.checkbox(key="fit_until_target").check()
    app.number_input(key="fit_steps").set_value(5000).run()
    no_exception(app)
    fit = app.session_state["scenario"].fit
    assert (fit.centre_x, fit.until_target, fit.steps) == (True, True, 5000)
    assert app.number_input(key="fit_steps").label == "Steps (at most)"
    app.sidebar.button(key="run").click().run()
    assert job_of(app).configs == (fit,)
    # The link: a new session opened with this page's query string shows both settings.
    shared = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    shared.query_params.update({key: value for key, value in dict(app.query_params).items()})
    shared.run()
    no_exception(shared)
    assert not shared.warning
    assert shared.checkbox(key="fit_centre_x").value and shared.checkbox(key="fit_until_target").value
    assert shared.session_state["scenario"].fit == fit
    app.checkbox(key="fit_centre_x").uncheck().run()
    assert app.session_state["scenario"].fit.centre_x is False


def test_steps_left_empty_use_the_method_default(app):
    assert app.number_input(key="fit_steps").value is None
    app.selectbox(key="fit_method").set_value("svi").run()
    app.selectbox(key="fit_guide").set_value("mvn").run()
    fit = app.session_state["scenario"].fit
    assert fit.steps is None
    assert app.number_input(key="fit_steps").proto.placeholder == f"default ({fit.steps_in_force:,})"
    app.checkbox(key="fit_until_target").check().run()
    capped = app.session_state["scenario"].fit
    assert capped.steps is None and capped.steps_in_force > fit.steps_in_force
    assert app.number_input(key="fit_steps").proto.placeholder == f"default ({capped.steps_in_force:,})"


def test_run_until_at_target_stops_at_the_target_before_the_cap(app):
    app.checkbox(key="fit_until_target").check()
    job = run_page(app, fit_steps=20_000)
    fit = job.view().fits[0]
    assert fit.status == "done" and fit.steps_done < 20_000, fit.steps_done
    prior = app.session_state["scenario"].prior
    dataset = app.session_state["job_context"].dataset
    exact_mean, exact_sd, mean_field_sd = exact_by_numpy(
        dataset.x, dataset.y, 0.1, np.array([prior.slope_sd, prior.intercept_sd])
    )
    # At target, checked here on the last snapshot (twice the rule's band, which holds for a 50-step average).
    assert np.all(np.abs(fit.last.mean - exact_mean) < 0.2 * exact_sd), (fit.last.mean, exact_mean)
    assert np.all(np.abs(fit.last.sd / mean_field_sd - 1) < 0.2), (fit.last.sd, mean_field_sd)
    row = app.table[0].value.iloc[0]
    assert row["Status"] == "Finished · at target" and row["Step"] == f"{fit.steps_done:,} / 20,000 (cap)"
    assert progress_text(app).startswith(f"**Finished** · at target · Step {fit.steps_done:,} of at most 20,000")


def test_centre_x_brings_the_far_fit_to_its_target(app):
    # The far fit of x in [10, 12] (see above), now with its cure: centred, and run until at target.
    app.checkbox(key="fit_centre_x").check()
    app.checkbox(key="fit_until_target").check()
    job = run_page(app, data_x_min=10.0, data_x_max=12.0, fit_steps=20_000)
    fit = job.view().fits[0]
    assert fit.status == "done" and fit.steps_done < 20_000, fit.steps_done
    prior = app.session_state["scenario"].prior
    dataset = app.session_state["job_context"].dataset
    exact_mean, exact_sd, _ = exact_by_numpy(dataset.x, dataset.y, 0.1, np.array([prior.slope_sd, prior.intercept_sd]))
    assert np.all(np.abs(fit.last.mean - exact_mean) < 0.2 * exact_sd), (fit.last.mean, exact_mean, exact_sd)
    row = app.table[0].value.iloc[0]
    assert (row["Status"], row["Why"]) == ("Finished · at target", "–")
