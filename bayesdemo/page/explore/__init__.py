"""The explore views below the live charts: parameter space, sequential updating, MCMC, unknown noise, other priors,
gradient noise, basis functions, calibration.

Streamlit code only: the maths lives in the engine modules (parameter_space, sequential, mcmc, noise_sd, grid,
mean_field, gradients, basis, calibration) and the figures in figures_explore. Only the open tab runs (st.tabs with
on_change="rerun"), so a closed view costs nothing while a job trains. Before a computation starts, explore_budget
estimates its server time and memory from the settings; past the budgets the view says so next to its button and runs
nothing. Within them, a computation estimated past explore_budget's inline limits (NUTS, the sequential view's Bayes
by Backprop fits, gradient noise, the fits with s learned or under other priors and the other priors' exact posterior,
calibration, basis functions on large data) runs as a jobs.ExploreJob in a worker process, counted against the fits'
cap and queue: the view shows "Computing…" (or its place in the queue) with Cancel, polled, until the result comes
back; smaller ones run in the page's thread. The live fragment touches every explore computation of the session, so
one keeps its heartbeat while another tab is open. Results are kept per settings in the session (session_cache), so a
rerun reads them instead of computing again.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import streamlit as st

from bayesdemo.charts import chart_text, figures_explore
from bayesdemo.charts.figures import TRAJECTORY_POINTS, downsample_indices
from bayesdemo.core.config import METHOD_LABELS, FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian, exact_posterior
from bayesdemo.core.markup import escape_markdown, failure_sentence
from bayesdemo.core.priors import (
    NOISE_PRIOR_KINDS,
    PARAMETER_NAMES,
    PRIOR_KINDS,
    Model,
    NoiseSdPrior,
    ParameterPrior,
    Prior,
)
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import check_int
from bayesdemo.page.live_chart import live_chart
from bayesdemo.references.basis import (
    BASIS_FAMILIES,
    BASIS_LABELS,
    DEFAULT_MODEL,
    MAX_CENTRES,
    MAX_DEGREE,
    BasisConfig,
    simulate_polynomial,
)
from bayesdemo.references.calibration import (
    CalibrationConfig,
    CalibrationResult,
    expected_mean_field_coverage,
)
from bayesdemo.references.gradients import GRADIENT_CHUNK_ELEMENTS, gradient_variance
from bayesdemo.references.grid import GridPosterior
from bayesdemo.references.mcmc import MCMCConfig, MCMCResult, run_nuts
from bayesdemo.references.mean_field import MeanFieldOptimum
from bayesdemo.references.mixture import MixturePosterior
from bayesdemo.references.noise_sd import noise_sd_posterior
from bayesdemo.references.parameter_space import centred_posterior, has_ellipse
from bayesdemo.references.sequential import SequentialFitConfig, line_draws, posterior_after, vi_fit_after
from bayesdemo.teaching.explain import fmt as fmt_student
from bayesdemo.workers import explore_budget
from bayesdemo.workers.jobs import ExploreJob, JobView

EXPLORE_TABS = (
    "Parameter space",
    "Sequential updating",
    "MCMC reference",
    "Unknown noise sd",
    "Other priors",
    "Gradient noise",
    "Basis functions",
    "Calibration",
)
TAB_KEY = "explore_tab"  # session-state key holding the open tab's label
EXPLORE_JOBS_KEY = "explore_jobs"  # session-state dict: view name -> its computation in a worker (ExploreEntry)
EXPLORE_POLL_S = 0.5  # redraw interval of a view's "Computing…" line while its computation waits or runs
EXPLORE_FIRST_WAIT_S = 0.3  # the page waits this long for a new computation before showing "Computing…"
LATEST = "latest"  # cache key of the settings whose result a view computed last
PLAY_INTERVAL_S = 1.0  # one more data point per this many seconds while sequential updating plays
LINES_DRAWN = 20  # lines drawn from the posterior in the sequential view (same seed for every k: they move smoothly)
SEQUENTIAL_FIT = SequentialFitConfig()  # Bayes by Backprop beside the exact update (~0.3-0.4 s per k, cached)
MCMC_DEFAULT = MCMCConfig(warmup=100, samples=150)  # about 4 s of Pyro NUTS on this machine
BASIS_CUBIC = (0.5, 1.0, -1.5, -2.0)  # c_0..c_3 of the simulated curve that the basis view offers besides the page data
NOISE_BBB = FitConfig(method="bbb", steps=3000, learn_noise=True)  # ~3.5 s; 1500 steps had not settled on s
# Pyro SVI with s learned steps on Pyro's own Trace_ELBO (~4-5 ms a step here): at lr 0.05 it took 3000 steps (~12 s)
# to settle; at lr 0.2, 1000 steps (~4 s) put s's mean within 0.4% and every sd within 5% of the mean-field optimum.
NOISE_SVI = FitConfig(method="svi", guide="normal", steps=1000, lr=0.2, learn_noise=True)
NOISE_PRIOR_LABELS = {
    "half_normal": "half-normal, scale 1",
    "log_normal": "log-normal, median 0.1, sd of log s 1",
    "inverse_gamma": "inverse-gamma on s², shape 2, rate 0.01",
}
# Fits under any prior: 2000 steps put both within 5% of the mean-field optimum's sds on the default data (seeds 0-2;
# at 1500 Pyro's intercept sd was still 12% wide on seed 0); about 1.5 s (BBB) and 2 s (Pyro SVI) each.
PRIOR_FITS = (
    FitConfig(method="bbb", kl="monte_carlo", steps=2000),
    FitConfig(method="svi", guide="normal", steps=2000),
)
PRIOR_DISAGREEMENT_SDS = 3.0  # warn when the mean-field optimum's mean is this many exact sds from the grid's
PRIOR_FAMILY_LABELS = {
    "gaussian": "Gaussian",
    "laplace": "Laplace",
    "student_t": "Student-t",
    "scale_mixture": "Scale mixture (Blundell)",
}
GRADIENT_REPEATS = 300  # gradient draws per estimator (8 estimators take about 1.3 s)
# Bayes by Backprop in the calibration: from the least-squares line until at target, checked every 250 steps, at most
# 2000 steps. On 100 datasets of 20 points from the default prior all 100 reached the mean-field optimum, 5.5 s in all.
# 500 steps from a random start covered 0.07 and 0.03 at 50%, where the mean-field optimum covers 0.23 and 0.27.
CALIBRATION_BBB = FitConfig(method="bbb", steps=2000, samples=16, lr=0.02, seed=0)
# Friendly names of the explore views' fields, for error messages next to the widget that set them.
FIELD_LABELS = {
    "warmup": "NUTS warm-up iterations",
    "samples": "NUTS draws",
    "seed": "Seed",
    "size": "Polynomial degree / number of RBF centres",
    "max_size": "Largest size on the evidence curve",
    "width": "RBF width",
    "family": "Basis family",
    "datasets": "Simulated datasets K",
    "n": "Points per dataset",
    "x_min": "x from",
    "x_max": "x to",
    "location": "Location",
    "scale": "Scale",
    "df": "Degrees of freedom",
    "mixture_weight": "Mixture weight π",
    "second_scale": "Second scale",
    "noise_prior": "Prior on the noise sd s",
}

ViewReader = Callable[[], JobView | None]
NoiseFit = explore_budget.NoiseFit


class PageContext(Protocol):
    """What the page shows (app.Context, a frozen dataclass): the scenario, its dataset and exact reference."""

    @property
    def scenario(self) -> Scenario: ...

    @property
    def dataset(self) -> Dataset: ...

    @property
    def exact(self) -> ExactPosterior: ...

    @property
    def synthetic(self) -> bool: ...


def widget_value(key: str) -> Any:
    """Widget `key`'s value as the session holds it (None before it is drawn); the config it goes into checks it."""
    return st.session_state.get(key)


def whole_number_input(label: str, value: int, step: int, key: str, **options: Any) -> Any:
    """A keyed whole-number input: a float input shown without decimals, so a value past 2^53 reaches its config's
    check and message (Streamlit's integer input silently keeps its default for values beyond 2^53 - 1)."""
    return st.number_input(label, value=float(value), step=float(step), format="%.0f", key=key, **options)


def fmt(value: float) -> str:
    """A number with 4 significant figures, as on the rest of the page."""
    return fmt_student(float(value), 4)


def describe_error(error: ValueError) -> str:
    """An error message led by the name of the widget that set the field; a plain sentence when it names none."""
    field = getattr(error, "field", None)
    if field is None:  # numpy's "Singular matrix", a torch support check: not a message for a class
        return failure_sentence(error)
    return f"**{FIELD_LABELS.get(field, field)}**: {escape_markdown(error)}"


def latest_fits(view: JobView | None) -> list[tuple[str, Gaussian]]:
    """Each fit's current q (its last snapshot) that has a drawable ellipse: label -> Gaussian."""
    if view is None:
        return []
    return [
        (fit.label, fit.last.gaussian) for fit in view.fits if fit.last is not None and has_ellipse(fit.last.gaussian)
    ]


def draw_explore(context: PageContext, read_view: ViewReader, refresh_s: float | None) -> None:
    """The explore views as tabs; only the open one runs. `refresh_s` paces the live parameter space."""
    collect_explore_jobs()  # every rerun: computations of views not open now keep their heartbeat too
    tabs = st.tabs(EXPLORE_TABS, key=TAB_KEY, on_change="rerun")
    views: list[Callable[[], None]] = [  # in the order of EXPLORE_TABS
        lambda: draw_parameter_space(context, read_view, refresh_s),
        lambda: draw_sequential(context),
        lambda: draw_mcmc(context, read_view),
        lambda: draw_unknown_noise(context),
        lambda: draw_other_priors(context),
        lambda: draw_gradient_noise(context, read_view),
        lambda: draw_basis(context),
        lambda: draw_calibration(context),
    ]
    for tab, draw in zip(tabs, views, strict=True):
        with tab:
            if tab.open:
                draw()


# ---- parameter space --------------------------------------------------------------------------------------------


def draw_parameter_space(context: PageContext, read_view: ViewReader, refresh_s: float | None) -> None:
    """Exact 1 and 2 sd ellipses, the mean-field optimum and each live q with the path its mean took."""
    centre = st.toggle(
        "Centre x (use x − mean x)",
        key="explore_centre_x",
        help="The intercept becomes the line's height at the mean x: the posterior correlation vanishes and the "
        "mean-field optimum equals the exact posterior.",
    )
    exact = centred_posterior(context.dataset, context.scenario.model) if centre else context.exact
    ratio = exact.mean_field_sd / exact.sd
    with st.container():  # the caption comes and goes: the live fragment below keeps its place
        st.markdown(
            f"Posterior correlation of slope and intercept: **{round(exact.corr, 3) + 0.0:.3f}** · "
            "mean-field sd / exact sd: "
            f"slope **{fmt(ratio[0])}**, intercept **{fmt(ratio[1])}**"
        )
        if centre:
            st.caption("The fits of the current run were trained on raw x, so they are not drawn on centred x.")

    @st.fragment(run_every=refresh_s)
    def live_parameter_space() -> None:
        fits: list[tuple[str, Gaussian]] = []
        paths: list[tuple[str, np.ndarray]] = []
        if not centre:
            view = read_view()
            fits = latest_fits(view)
            if view is not None:
                for label, snapshots in view.traces():
                    if snapshots:
                        shown = downsample_indices(len(snapshots), TRAJECTORY_POINTS)
                        paths.append((label, np.array([snapshots[i].mean[:2] for i in shown])))
        title = "Parameter space: (slope, height at mean x)" if centre else "Parameter space: (slope, intercept)"
        figure = figures_explore.fig_parameter_space(exact.posterior, exact.mean_field, fits, paths, title=title)
        if centre:
            figure.update_yaxes(title_text="intercept at mean x")
        live_chart(figure, "explore_parameter_space")  # updated in place while a fit trains
        second = "intercept at mean x" if centre else "intercept"
        st.caption(chart_text.text_parameter_space(exact.posterior, exact.mean_field, fits, second).summary)

    live_parameter_space()


# ---- sequential updating ----------------------------------------------------------------------------------------


def on_sequential_goto(points: int) -> None:
    """Show the posterior after `points` points (a target, not a step: a doubled click lands in the same place)."""
    st.session_state["explore_points"] = points


def on_sequential_play(intent: str, points: int, total: int) -> None:
    """Start ("play", from the prior when all points are shown) or stop ("pause") adding points."""
    playing = intent == "play"
    st.session_state["explore_playing"] = playing
    if playing and points >= total:
        st.session_state["explore_points"] = 0


def session_cache(key: str, dataset: Dataset, model: Model) -> dict:
    """A dict in the session under `key` for results on this dataset and model, emptied when either changes: a rerun
    with the same settings reads its result instead of computing it again."""
    cache = st.session_state.get(key)
    if cache is None or cache[0] is not dataset or cache[1] != model:
        cache = (dataset, model, {})
        st.session_state[key] = cache
    return cache[2]


# ---- computations in a worker process -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExploreEntry:
    """A view's computation in a worker: the settings it computes, the session cache its result goes to, the job."""

    key: Hashable  # the settings, as the view's cache keys them
    cache: dict  # session_cache dict of the dataset and model it was started on
    job: ExploreJob


def explore_jobs() -> dict[str, ExploreEntry]:
    """The session's explore computations, by view name."""
    return st.session_state.setdefault(EXPLORE_JOBS_KEY, {})


def collect_explore_jobs() -> None:
    """Touch every explore computation of the session (its heartbeat) and put each finished one's result in its
    cache, as the latest result of that view."""
    entries = explore_jobs()
    for name, entry in list(entries.items()):
        entry.job.touch()
        if entry.job.state == "finished":
            entry.cache[entry.key] = entry.job.result
            entry.cache[LATEST] = entry.key
            del entries[name]


def touch_explore_jobs() -> None:
    """Touch every explore computation of the session (its heartbeat): called by the live fragment and by each view's
    "Computing…" line, which rerun while another explore tab is open and no full rerun comes."""
    for entry in list(explore_jobs().values()):
        entry.job.touch()


def compute(
    name: str,
    cache: dict,
    key: Hashable,
    cost: explore_budget.Cost,
    function: Callable[..., object],
    arguments: tuple[object, ...],
    lower: str,
) -> None:
    """Compute `function(*arguments)` for the settings `key` into `cache` (cache[LATEST] = key once there): in this
    thread when `cost` is inline, else as a job in a worker process, which replaces the view's previous one."""
    if key in cache:
        cache[LATEST] = key
        return
    entries = explore_jobs()
    previous = entries.pop(name, None)
    if cost.inline:
        if previous is not None:
            previous.job.stop()
        try:
            cache[key] = function(*arguments)
        except ValueError as error:
            st.error(describe_error(error))
            return
        except ArithmeticError as error:
            st.error(f"The computation failed: {escape_markdown(error)}")
            return
        cache[LATEST] = key
        return
    if previous is not None and previous.key == key and previous.job.active:
        entries[name] = previous  # pressed again while it computes: it goes on
        return
    if previous is not None:
        previous.job.stop()
    job = ExploreJob(function, arguments, lower, estimated_s=cost.seconds)
    job.start()
    entries[name] = ExploreEntry(key, cache, job)
    if job.join(EXPLORE_FIRST_WAIT_S):  # a short computation is shown at once, without a "computing" line
        collect_explore_jobs()


def on_explore_cancel(name: str) -> None:
    """Cancel the view's computation; the view says so."""
    entry = explore_jobs().get(name)
    if entry is not None:
        entry.job.stop("Cancelled.")


def stopped_for(name: str, key: Hashable) -> bool:
    """Whether the view's computation for the settings `key` stopped (cancelled or failed): not started again by
    itself."""
    entry = explore_jobs().get(name)
    return entry is not None and entry.key == key and entry.job.state == "stopped"


def draw_explore_job(name: str) -> None:
    """The view's computation while it waits or computes ("Computing…" and Cancel, polled), or why it stopped."""
    entry = explore_jobs().get(name)
    if entry is None:
        return
    job = entry.job
    if job.state == "stopped":
        if job.message == "Cancelled.":
            st.info("Cancelled.")
        else:
            st.warning(escape_markdown(job.message))
        return

    @st.fragment(run_every=EXPLORE_POLL_S)
    def explore_job_status() -> None:
        touch_explore_jobs()  # this one and those of views not open now: only this fragment may rerun meanwhile
        if not job.active:
            st.rerun(scope="app")  # draw the result (or the failure), stop polling
        position = job.queue_position
        text = (
            f"Computing… (queued: number {position}; the server runs a few fits and computations at a time)"
            if position is not None
            else f"Computing… {job.seconds:.0f} s"
        )
        left, right = st.columns([5, 1], vertical_alignment="center")
        with left:
            st.markdown(text)
        with right:
            st.button("Cancel", key=f"explore_{name}_cancel", on_click=on_explore_cancel, args=(name,))

    explore_job_status()


def sequential_vi(dataset: Dataset, model: Model, points: int) -> Gaussian | None:
    """Bayes by Backprop's q on the first `points` points, cached per points for this dataset and model; None while
    it computes in a worker (past the inline limit, as every fit of SEQUENTIAL_FIT is) or after it stopped."""
    fits: dict[Hashable, Gaussian] = session_cache("explore_vi_cache", dataset, model)
    if not stopped_for("sequential", points):
        cost = explore_budget.full_batch_fit_cost(points, [(SEQUENTIAL_FIT.steps, SEQUENTIAL_FIT.samples)])
        arguments = (dataset, model, points, SEQUENTIAL_FIT)
        compute("sequential", fits, points, cost, vi_fit_after, arguments, "the number of points n")
    return fits.get(points)


def draw_sequential(context: PageContext) -> None:
    """Add the data one point at a time: prior -> posterior, lines from it, the band narrowing, and BBB beside it."""
    dataset, model = context.dataset, context.scenario.model
    total = dataset.n
    playing = bool(st.session_state.get("explore_playing"))
    points = min(max(int(st.session_state.get("explore_points", 0)), 0), total)
    left, right = st.columns([1, 3], vertical_alignment="bottom")
    with left:
        st.button(
            "Pause" if playing else "Play",
            key="explore_play",
            icon=":material/pause:" if playing else ":material/play_arrow:",
            on_click=on_sequential_play,
            args=("pause" if playing else "play", points, total),
            width="stretch",
            help=f"Add one point every {PLAY_INTERVAL_S:g} s.",
        )
    with right:
        with_vi = st.toggle(
            "Bayes by Backprop on the same points",
            value=True,
            key="explore_sequential_vi",
            help=f"A {SEQUENTIAL_FIT.steps}-step fit with {SEQUENTIAL_FIT.samples} samples per step, once per "
            "number of points (cached): it settles near the mean-field optimum, inside the exact ellipse.",
        )

    @st.fragment(run_every=PLAY_INTERVAL_S if playing else None)
    def sequential_view() -> None:
        shown = min(max(int(st.session_state.get("explore_points", 0)), 0), total)
        if st.session_state.get("explore_playing"):
            if shown >= total:
                st.session_state["explore_playing"] = False
                st.rerun(scope="app")  # the Play button and the redraw timer follow
            shown += 1
            st.session_state["explore_points"] = shown
        columns = st.columns(6)
        for column, (key, label, icon, target, enabled) in zip(
            columns,
            (
                ("prior", "Prior", "first_page", 0, shown > 0),
                ("back", "−1", "chevron_left", shown - 1, shown > 0),
                ("forward", "+1", "chevron_right", shown + 1, shown < total),
                ("forward_10", "+10", "fast_forward", min(shown + 10, total), shown < total),
                ("all", "All", "last_page", total, shown < total),
            ),
            strict=False,
        ):
            with column:
                st.button(
                    label,
                    key=f"explore_goto_{key}",
                    icon=f":material/{icon}:",
                    on_click=on_sequential_goto,
                    args=(target,),
                    disabled=not enabled,
                    width="stretch",
                )
        with columns[5]:
            st.markdown(f"Points seen: **{shown}** of {total}")
        posterior = posterior_after(dataset, model, shown)
        vi = None
        if with_vi and shown >= 2:
            vi = sequential_vi(dataset, model, shown)
            if vi is None:
                draw_explore_job("sequential")
        rows = {
            "": [f"exact after {shown}"],
            "Slope mean": [],
            "Slope sd": [],
            "Intercept mean": [],
            "Intercept sd": [],
        }
        if vi is not None:
            rows[""].append(f"Bayes by Backprop on {shown}")
        for q in (posterior, vi):
            if q is None:
                continue
            rows["Slope mean"].append(fmt(q.mean[0]))
            rows["Slope sd"].append(fmt(q.sd[0]))
            rows["Intercept mean"].append(fmt(q.mean[1]))
            rows["Intercept sd"].append(fmt(q.sd[1]))
        if with_vi and shown < 2:
            st.caption("Bayes by Backprop joins from 2 points on.")
        data = context.scenario.data
        truth = (float(data.slope), float(data.intercept)) if context.synthetic else None
        prior = posterior_after(dataset, model, 0)
        plane, lines = st.columns(2)
        with plane:
            live_chart(
                figures_explore.fig_sequential_plane(prior, posterior, shown, vi=vi, truth=truth),
                "explore_sequential_plane",
            )
        with lines:
            drawn = line_draws(posterior, LINES_DRAWN, seed=0)
            live_chart(
                figures_explore.fig_sequential_data(dataset, shown, posterior, model.noise_sd, drawn, vi=vi),
                "explore_sequential_data",
            )
        st.caption(chart_text.text_sequential(posterior, shown, dataset.n, vi).summary)  # the charts' text alternative
        st.table(rows, border="horizontal")

    sequential_view()


# ---- MCMC reference ---------------------------------------------------------------------------------------------


def on_mcmc_run() -> None:
    """Ask the view to start a NUTS run with the settings it is about to read."""
    st.session_state["explore_mcmc_requested"] = True


def mcmc_settings() -> tuple[MCMCConfig | None, str | None]:
    """The NUTS settings the widgets describe, or None and the error naming the field."""
    try:
        config = MCMCConfig(
            warmup=widget_value("explore_mcmc_warmup"),
            samples=widget_value("explore_mcmc_samples"),
            seed=widget_value("explore_mcmc_seed"),
        )
    except ValueError as error:
        return None, describe_error(error)
    return config, None


def draw_mcmc(context: PageContext, read_view: ViewReader) -> None:
    """Pyro NUTS on demand (in a worker past the inline limit), its histograms beside the exact density and the fits."""
    dataset, model = context.dataset, context.scenario.model
    left, middle, right, button = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    with left:
        whole_number_input("NUTS warm-up iterations", MCMC_DEFAULT.warmup, 50, "explore_mcmc_warmup")
    with middle:
        whole_number_input("NUTS draws", MCMC_DEFAULT.samples, 50, "explore_mcmc_samples")
    with right:
        whole_number_input("Seed", MCMC_DEFAULT.seed, 1, "explore_mcmc_seed")
    config, problem = mcmc_settings()
    refusal = None
    if config is not None:
        refusal = explore_budget.nuts_cost(dataset.n, config.total_iterations).refusal(
            "NUTS warm-up iterations, NUTS draws or the number of points n"
        )
    with button:
        st.button(
            "Run NUTS",
            key="explore_mcmc_run",
            on_click=on_mcmc_run,
            disabled=config is None or bool(refusal),
            width="stretch",
        )
    if problem is not None:
        st.error(problem)
    if refusal:
        st.warning(refusal)
    results = session_cache("explore_mcmc_cache", dataset, model)
    if st.session_state.pop("explore_mcmc_requested", False) and config is not None and not refusal:
        cost = explore_budget.nuts_cost(dataset.n, config.total_iterations)
        lower = "NUTS warm-up iterations, NUTS draws or the number of points n"
        compute("mcmc", results, config, cost, run_nuts, (dataset, model, config), lower)
    draw_explore_job("mcmc")
    latest = results.get(LATEST)
    if latest is None:
        st.caption(
            "Pyro's No-U-Turn sampler on the same model: the sampling answer the forum poster compared with "
            f"(PyMC there). {MCMC_DEFAULT.warmup} + {MCMC_DEFAULT.samples} iterations take a few seconds."
        )
        return
    draw_mcmc_result(results[latest], context.exact, read_view)


def draw_mcmc_result(result: MCMCResult, exact: ExactPosterior, read_view: ViewReader) -> None:
    """Histograms of the NUTS draws against the exact density, the mean-field optimum and the live fits."""
    fits = [(figures_explore.MEAN_FIELD_LABEL, exact.mean_field), *latest_fits(read_view())]
    left, right = st.columns(2)
    for column, parameter in ((left, 0), (right, 1)):
        with column:
            live_chart(
                figures_explore.fig_mcmc_histogram(result.samples, exact.posterior, fits, parameter),
                f"explore_mcmc_{parameter}",
            )
    rows: dict[str, list[str]] = {"": ["slope", "intercept"]}
    rows["NUTS mean"] = [fmt(value) for value in result.mean]
    rows["Exact mean"] = [fmt(value) for value in exact.mean]
    rows["± MC error"] = [fmt(value) for value in result.mean_standard_error]
    rows["NUTS sd"] = [fmt(value) for value in result.sd]
    rows["Exact sd"] = [fmt(value) for value in exact.sd]
    rows["ESS"] = [f"{value:.0f}" for value in result.effective_sample_size]
    rows["R-hat"] = [f"{value:.3f}" for value in result.r_hat]
    st.table(rows, border="horizontal")
    st.caption(
        f"{result.samples.shape[0]} draws in {result.seconds:.1f} s · acceptance {result.mean_accept_prob:.2f} · "
        f"{result.divergences} divergent transitions. NUTS agrees with the exact posterior within its Monte-Carlo "
        "error; any mean-field fit is narrower."
    )


# ---- unknown noise sd -------------------------------------------------------------------------------------------


def on_noise_fit() -> None:
    """Ask the view to fit the mean-field optimum, Bayes by Backprop and Pyro SVI with the noise sd learned."""
    st.session_state["explore_noise_requested"] = True


def noise_row(name: str, q: Gaussian, noise_mean: float, noise_sd: float) -> dict[str, str]:
    """One table row: q's (slope, intercept) moments and the noise sd's mean and sd."""
    return {
        "": name,
        "Slope mean": fmt(q.mean[0]),
        "Slope sd": fmt(q.sd[0]),
        "Intercept mean": fmt(q.mean[1]),
        "Intercept sd": fmt(q.sd[1]),
        "Noise sd mean": fmt(noise_mean),
        "Noise sd sd": fmt(noise_sd),
    }


def draw_unknown_noise(context: PageContext) -> None:
    """The noise sd learned, not known: exact p(s | y) and theta's moments by quadrature, the mean-field optimum,
    Bayes by Backprop and Pyro SVI, each with a q over log s (docs/MATH.md, Unknown noise sd)."""
    kind = st.selectbox(
        "Prior on the noise sd s",
        list(NOISE_PRIOR_KINDS),
        key="explore_noise_prior",
        format_func=lambda kind: NOISE_PRIOR_LABELS[kind],
    )
    scenario = context.scenario
    model = Model(scenario.prior, scenario.model.noise_sd, NoiseSdPrior(kind=kind))
    try:
        reference = noise_sd_posterior(context.dataset, model)
    except (ValueError, ArithmeticError) as error:
        st.error(describe_error(error) if isinstance(error, ValueError) else f"Quadrature failed: {error}")
        return
    cost = explore_budget.full_batch_fit_cost(
        context.dataset.n, [(config.step_count, config.sample_count) for config in (NOISE_BBB, NOISE_SVI)]
    )
    refusal = cost.refusal("the number of points n")
    st.button(
        f"Fit the mean-field optimum, {METHOD_LABELS['bbb']} and {NOISE_SVI.label} with s learned",
        key="explore_noise_run",
        on_click=on_noise_fit,
        disabled=bool(refusal),
    )
    if refusal:
        st.warning(refusal)
    learned_fits = session_cache("explore_noise_cache", context.dataset, scenario.model)
    if st.session_state.pop("explore_noise_requested", False) and not refusal:
        arguments = (context.dataset, model, (("bbb", NOISE_BBB), ("svi", NOISE_SVI)))
        compute("noise", learned_fits, model, cost, explore_budget.noise_sd_fits, arguments, "the number of points n")
    draw_explore_job("noise")
    fits: tuple[MeanFieldOptimum, dict[str, NoiseFit]] | None = learned_fits.get(model)
    rows = [noise_row("exact, quadrature over s", reference.theta, reference.noise_sd_mean, reference.noise_sd_sd)]
    curves: list[tuple[str, float, float]] = []
    if fits is not None:
        optimum, learned = fits
        rows.append(noise_row(figures_explore.MEAN_FIELD_LABEL, optimum.q, optimum.noise_sd_mean, optimum.noise_sd_sd))
        curves.append((figures_explore.MEAN_FIELD_LABEL, optimum.noise_sd_mean, optimum.noise_sd_sd))
        for label, (q, noise_mean, noise_sd) in (
            (METHOD_LABELS["bbb"], learned["bbb"]),
            (NOISE_SVI.label, learned["svi"]),
        ):
            rows.append(noise_row(label, q, noise_mean, noise_sd))
            curves.append((label, noise_mean, noise_sd))
    true_noise_sd = float(scenario.data.noise_sd) if context.synthetic else None
    live_chart(
        figures_explore.fig_noise_sd(reference.noise_sd_grid, reference.density, curves, true_noise_sd),
        "explore_noise_chart",
    )
    st.table({key: [row[key] for row in rows] for key in rows[0]}, border="horizontal")
    st.caption(
        f"Exact: p(s | y) on a grid of s, theta's moments mixed over it (log p(y) = {fmt(reference.log_evidence)}). "
        "The live fits above keep s known; this view learns it."
    )


# ---- other priors -----------------------------------------------------------------------------------------------


def on_prior_fit() -> None:
    """Ask the view to fit Bayes by Backprop and Pyro SVI under the prior it is about to read."""
    st.session_state["explore_priors_requested"] = True


def parameter_prior_input(name: str, centre: float, spread: float) -> tuple[ParameterPrior | None, str | None]:
    """One parameter's prior family and its settings (defaults: the page's prior), or None and the error."""
    label = name.capitalize()
    kind = st.selectbox(
        f"{label} prior",
        list(PRIOR_KINDS),
        index=1,
        key=f"explore_prior_{name}_kind",
        format_func=lambda kind: PRIOR_FAMILY_LABELS[kind],
    )
    settings = {
        "location": st.number_input("Location", value=centre, format="%.4g", key=f"explore_prior_{name}_location"),
        "scale": st.number_input(
            "Scale",
            value=spread,
            format="%.4g",
            key=f"explore_prior_{name}_scale",
            help="Gaussian sd, Laplace scale b, Student-t scale, or the scale mixture's first sd.",
        ),
    }
    if kind == "student_t":
        settings["df"] = st.number_input("Degrees of freedom", value=3.0, format="%.4g", key=f"explore_prior_{name}_df")
    if kind == "scale_mixture":
        settings["mixture_weight"] = st.number_input(
            "Mixture weight π",
            value=0.5,
            format="%.4g",
            key=f"explore_prior_{name}_weight",
            help="Weight of N(location, scale²); the rest goes to N(location, second scale²) (Blundell et al. eq. 7).",
        )
        settings["second_scale"] = st.number_input(
            "Second scale", value=0.1, format="%.4g", key=f"explore_prior_{name}_second_scale"
        )
    try:
        return ParameterPrior(kind, **settings), None
    except ValueError as error:
        return None, f"{label} prior · {describe_error(error)}"


def on_explore_again(name: str) -> None:
    """Forget the view's stopped computation, so the view starts it again."""
    explore_jobs().pop(name, None)


def reference_label(reference: GridPosterior | MixturePosterior) -> str:
    """How the exact posterior was computed, as the table and the figures name it."""
    return "exact, mixture" if isinstance(reference, MixturePosterior) else "exact, grid"


def reference_method(reference: GridPosterior | MixturePosterior) -> str:
    """One phrase saying how the exact posterior was computed."""
    if isinstance(reference, MixturePosterior):
        return f"a mixture of {len(reference.components)} conjugate posteriors weighted by their evidence"
    count = len(reference.windows)
    return f"the log joint on {count} whitened {reference.points}² grid{'s' if count > 1 else ''}"


def optima_note(optimum: MeanFieldOptimum) -> str | None:
    """The lesson when the ELBO has several local optima, or None."""
    count = len(optimum.optima)
    if count < 2:
        return None
    other = "the other one" if count == 2 else "another one"
    elbos = ", ".join(f"{elbo:.2f}" for _, elbo in optimum.optima)
    return (
        f"The ELBO has {count} optima here; the best is shown. Variational inference started elsewhere can stop at "
        f"{other}. (ELBOs: {elbos}.)"
    )


def moments_row(name: str, q: Gaussian) -> dict[str, str]:
    """One table row: q's (slope, intercept) means and sds."""
    return {
        "": name,
        "Slope mean": fmt(q.mean[0]),
        "Slope sd": fmt(q.sd[0]),
        "Intercept mean": fmt(q.mean[1]),
        "Intercept sd": fmt(q.sd[1]),
    }


def draw_other_priors(context: PageContext) -> None:
    """Laplace, Student-t or Blundell's scale mixture per parameter: the exact posterior by grid integration, the
    mean-field optimum, and Bayes by Backprop (Monte-Carlo KL) and Pyro SVI under the same prior (docs/MATH.md,
    Non-Gaussian priors)."""
    page_prior = context.scenario.prior
    parts: list[ParameterPrior] = []
    problems: list[str] = []
    for parameter, (column, name) in enumerate(zip(st.columns(2), PARAMETER_NAMES, strict=True)):
        with column:
            part, problem = parameter_prior_input(
                name, float(page_prior.mean[parameter]), float(page_prior.sd[parameter])
            )
        if part is not None:
            parts.append(part)
        if problem is not None:
            problems.append(problem)
    if problems:
        for problem in problems:
            st.error(problem)
        return
    model = Model(Prior(*parts), context.scenario.model.noise_sd)
    labels = [config.label for config in PRIOR_FITS]
    cost = explore_budget.full_batch_fit_cost(
        context.dataset.n, [(config.step_count, config.sample_count) for config in PRIOR_FITS]
    )
    refusal = cost.refusal("the number of points n")
    st.button(
        f"Fit {' and '.join(labels)} under this prior",
        key="explore_priors_run",
        on_click=on_prior_fit,
        help=f"{PRIOR_FITS[0].steps} steps each; Bayes by Backprop estimates the KL by Monte Carlo.",
        disabled=bool(refusal),
    )
    if refusal:
        st.warning(refusal)
    fits_by_prior = session_cache("explore_priors_cache", context.dataset, context.scenario.model)
    if st.session_state.pop("explore_priors_requested", False) and not refusal:
        arguments = (context.dataset, model, tuple(zip(labels, PRIOR_FITS, strict=True)))
        compute(
            "priors", fits_by_prior, model, cost, explore_budget.fits_under_prior, arguments, "the number of points n"
        )
    draw_explore_job("priors")
    # The exact posterior under this prior and the mean-field optimum, per prior: in a worker past the inline limit,
    # refused past the budget; a cancelled or failed one starts again only when asked.
    references = session_cache("explore_priors_reference_cache", context.dataset, context.scenario.model)
    reference_cost = explore_budget.prior_reference_cost(context.dataset.n)
    reference_refusal = reference_cost.refusal("the number of points n")
    if reference_refusal:
        st.warning(reference_refusal.replace("Not run", "Exact posterior not computed", 1))
        return
    if stopped_for("priors_reference", model):
        draw_explore_job("priors_reference")
        st.button(
            "Compute the exact posterior again",
            key="explore_priors_reference_again",
            on_click=on_explore_again,
            args=("priors_reference",),
        )
        return
    reference_arguments = (context.dataset, model)
    lower = "the number of points n"
    compute(
        "priors_reference",
        references,
        model,
        reference_cost,
        explore_budget.prior_reference,
        reference_arguments,
        lower,
    )
    draw_explore_job("priors_reference")
    if model not in references:
        return
    grid, optimum = references[model]
    apart = np.abs(optimum.q.mean - grid.mean) / grid.sd
    if np.any(apart > PRIOR_DISAGREEMENT_SDS):
        st.warning(
            f"The mean-field optimum sits {float(np.max(apart)):.0f} exact sds from the exact mean, which counts every "
            "mode of the posterior: a single factorised Gaussian covers only part of it."
        )
    lesson = optima_note(optimum)
    if lesson is not None:
        st.info(lesson)
    fitted: list[tuple[str, Gaussian, float]] = fits_by_prior.get(model, [])
    named = [(figures_explore.MEAN_FIELD_LABEL, optimum.q), *((label, q) for label, q, _ in fitted)]
    for column, parameter, (axis, density) in zip(
        st.columns(2),
        (0, 1),
        zip((grid.slope_axis, grid.intercept_axis), grid.marginal_densities(), strict=True),
        strict=True,
    ):
        with column:
            live_chart(
                figures_explore.fig_prior_marginal(
                    axis, density, parts[parameter], named, parameter, reference_label(grid).replace(",", " posterior,")
                ),
                f"explore_priors_{PARAMETER_NAMES[parameter]}",
            )
    rows = [moments_row(reference_label(grid), grid.gaussian), *(moments_row(label, q) for label, q in named)]
    st.table({key: [row[key] for row in rows] for key in rows[0]}, border="horizontal")
    notes = [
        f"Exact: {reference_method(grid)} · correlation **{round(grid.corr, 3) + 0.0:.3f}** · "
        f"log p(y) = **{fmt(grid.log_evidence)}**."
    ]
    if fitted:
        notes.append(" · ".join(f"{label}: {seconds:.1f} s" for label, _, seconds in fitted) + ".")
    else:
        notes.append("Press the button to fit.")
    st.markdown(" ".join(notes))
    st.caption(
        "Both fits aim at the mean-field optimum (a factorised Gaussian), not at the exact posterior. A hundred points "
        "pin the line down and a wide prior barely matters: try a Laplace scale of 0.02 on the slope, or upload a "
        "few points, to see the prior pull."
    )


# ---- gradient noise ---------------------------------------------------------------------------------------------


def on_gradient_measure() -> None:
    """Ask the view to measure the estimators' gradient noise at the q it is about to read."""
    st.session_state["explore_gradient_requested"] = True


def gradient_point(context: PageContext, view: JobView | None) -> tuple[str, Gaussian]:
    """Where to measure: the live Bayes by Backprop q if a fit has one, else the mean-field optimum (its target)."""
    for fit in view.fits if view is not None else ():
        if fit.config.method == "bbb" and fit.last is not None and has_ellipse(fit.last.gaussian):
            return f"the live Bayes by Backprop q at step {fit.last.step:,}", fit.last.gaussian
    return "the mean-field optimum (where Bayes by Backprop ends)", context.exact.mean_field


def gradient_estimators(fit: FitConfig) -> list[tuple[str, FitConfig]]:
    """Bayes by Backprop's estimators to compare: 1 and the fit's samples per step, weight sampling or local
    reparameterisation, closed-form or Monte-Carlo KL; everything else as in `fit`."""
    base = fit if fit.method == "bbb" else FitConfig(method="bbb", batch_size=fit.batch_size, seed=fit.seed)
    counts = sorted({1, base.sample_count})
    estimators = []
    for samples in counts:
        for local in (False, True):
            for kl in ("closed", "monte_carlo"):
                label = f"{samples} sample{'s' if samples > 1 else ''}, {'local' if local else 'weights'}, {kl} KL"
                config = FitConfig(
                    method="bbb",
                    samples=samples,
                    local_reparam=local,
                    kl=kl,
                    batch_size=base.batch_size,
                    seed=base.seed,
                    objective=base.objective,
                )
                estimators.append((label.replace("monte_carlo", "MC"), config))
    return estimators


def local_reparameterisation_gains(dataset: Dataset, model: Model, q: Gaussian) -> tuple[float, float] | None:
    """Closed-form variance ratios, weight sampling over local reparameterisation, of the slope's mean and sd
    gradients at q (docs/MATH.md, Gradient noise); None when q is not factorised."""
    if q.cov[0, 1] != 0.0:
        return None
    weights_mean, weights_sd = gradient_variance(dataset, model, q, local_reparam=False)
    local_mean, local_sd = gradient_variance(dataset, model, q, local_reparam=True)
    return float(weights_mean[0] / local_mean[0]), float(weights_sd[0] / local_sd[0])


def draw_gradient_noise(context: PageContext, read_view: ViewReader) -> None:
    """Measured variance of Bayes by Backprop's mu-gradient per estimator, at the live q (docs/MATH.md, local
    reparam)."""
    where, q = gradient_point(context, read_view())
    st.markdown(
        f"How noisy is one step's gradient? {GRADIENT_REPEATS} independent draws of d loss / d mean and d loss / d sd "
        f"per estimator, at {where}."
    )
    estimators = gradient_estimators(context.scenario.fit)
    batch_points = min(context.scenario.fit.batch_size or context.dataset.n, context.dataset.n)
    cost = explore_budget.gradient_noise_cost(
        context.dataset.n,
        batch_points,
        [config.sample_count for _, config in estimators],
        GRADIENT_REPEATS,
        GRADIENT_CHUNK_ELEMENTS,
    )
    lower = "the number of points n, the batch size or the samples per step in the sidebar"
    refusal = cost.refusal(lower)
    st.button(
        "Measure gradient noise", key="explore_gradient_run", on_click=on_gradient_measure, disabled=bool(refusal)
    )
    if refusal:
        st.warning(refusal)
    dataset, model = context.dataset, context.scenario.model
    measured = session_cache("explore_gradient_cache", dataset, model)
    settings = (where, tuple(q.mean), tuple(q.sd), tuple(config for _, config in estimators))
    if st.session_state.pop("explore_gradient_requested", False) and not refusal:
        measured[("point", settings)] = (where, q)
        arguments = (dataset, model, q, tuple(estimators), GRADIENT_REPEATS)
        compute("gradient", measured, settings, cost, explore_budget.gradient_noise_rows, arguments, lower)
    draw_explore_job("gradient")
    shown = settings if settings in measured else measured.get(LATEST)
    if shown is None:
        st.caption(
            f"Uses the sidebar's batch size, seed and samples per step ({METHOD_LABELS['bbb']} defaults for other "
            "methods). Local reparameterisation samples each prediction instead of the weights (Kingma et al. 2015)."
        )
        return
    rows: list[explore_budget.GradientRow] = measured[shown]
    measured_where, measured_q = measured[("point", shown)]
    mean_rows = [(label, variance) for label, variance, _ in rows]
    live_chart(figures_explore.fig_gradient_variance(mean_rows), "explore_gradient_chart")
    first_mean, first_sd = rows[0][1], rows[0][2]
    table = {
        "Estimator": [label for label, _, _ in rows],
        "Variance (slope)": [f"{variance[0]:.3g}" for _, variance, _ in rows],
        "Variance (intercept)": [f"{variance[1]:.3g}" for _, variance, _ in rows],
        "vs first row (slope)": [f"{variance[0] / first_mean[0]:.3g}" for _, variance, _ in rows],
        "sd gradient variance (slope)": [f"{sd_variance[0]:.3g}" for _, _, sd_variance in rows],
        "sd gradient vs first row (slope)": [f"{sd_variance[0] / first_sd[0]:.3g}" for _, _, sd_variance in rows],
    }
    st.table(table, border="horizontal")
    notes = [
        f"Measured at {measured_where}. The variance columns are for the gradient of the means, the sd gradient "
        "columns for the gradient of the sds."
    ]
    gains = local_reparameterisation_gains(dataset, model, measured_q)
    if gains is not None:
        notes.append(
            f"For these n = {dataset.n:,} points the closed form (one sample, full batch) gives local "
            f"reparameterisation {fmt(gains[0])} times less variance for the slope mean's gradient and "
            f"{fmt(gains[1])} times less for the slope sd's gradient. The first gain grows in proportion to n (the "
            "points' noise averages out instead of adding up); the second stays a few fold near the optimum."
        )
    largest = max(float(np.max(variance)) for _, variance, _ in rows)
    if any(float(np.max(variance)) < 1e-12 * largest for _, variance, _ in rows):
        notes.append(
            "A variance at rounding level means no noise at all: with draws in antithetic pairs (ε, −ε) the "
            "gradient of the mean, linear in ε for this model, is exact."
        )
    st.caption(" ".join(notes))


# ---- basis functions --------------------------------------------------------------------------------------------


def basis_data(context: PageContext, choice: str) -> tuple[Dataset, Model]:
    """The page's data with its model, or a simulated cubic with the basis module's default model."""
    if choice == "page":
        return context.dataset, context.scenario.model
    return simulate_polynomial(BASIS_CUBIC, n=50, noise_sd=DEFAULT_MODEL.noise_sd, seed=0), DEFAULT_MODEL


def on_basis_again() -> None:
    """Forget the basis view's stopped computation, so that the view starts it again."""
    explore_jobs().pop("basis", None)


def draw_basis(context: PageContext) -> None:
    """Polynomial or RBF features: the exact fit with its predictive bands, and log evidence against model size."""
    columns = st.columns(4)
    with columns[0]:
        choice = st.selectbox(
            "Data",
            ["cubic", "page"],
            key="explore_basis_data",
            format_func=lambda name: "this page's data" if name == "page" else "a simulated cubic",
        )
    with columns[1]:
        family = st.selectbox(
            "Basis family",
            list(BASIS_FAMILIES),
            key="explore_basis_family",
            format_func=lambda name: BASIS_LABELS[name],
        )
    polynomial = family == "polynomial"
    with columns[2]:
        size = whole_number_input(
            "Polynomial degree" if polynomial else "Number of RBF centres", 3, 1, "explore_basis_size"
        )
    with columns[3]:
        width = st.number_input(
            "RBF width (0: centre spacing)",
            value=0.0,
            step=0.05,
            format="%.4g",
            key="explore_basis_width",
            disabled=polynomial,
        )
    largest = whole_number_input(
        "Largest size on the evidence curve",
        10,
        1,
        "explore_basis_max",
        help=f"Degrees 0 to this (at most {MAX_DEGREE}), or 1 to this many centres (at most {MAX_CENTRES}).",
    )
    dataset, model = basis_data(context, choice)
    try:
        config = BasisConfig(family, size, width if not polynomial else 0.0)
        top = check_int("max_size", largest, 1, MAX_DEGREE if polynomial else MAX_CENTRES)
        sizes = list(range(0 if polynomial else 1, top + 1))
        lower = "the number of RBF centres, the largest size on the evidence curve, or the number of points n"
        cost = explore_budget.basis_cost(dataset.n, config.size, sizes)
        refusal = cost.refusal(lower)
        if refusal:
            st.warning(refusal)
            return
    except ValueError as error:
        st.error(describe_error(error))
        return
    results = session_cache("explore_basis_cache", dataset, model)
    key = (config, tuple(sizes))
    if key not in results and not stopped_for("basis", key):  # computed as the settings change, no button
        compute("basis", results, key, cost, explore_budget.basis_results, (dataset, model, config, key[1]), lower)
    draw_explore_job("basis")
    if key not in results:
        if stopped_for("basis", key):
            st.button("Compute again", key="explore_basis_again", on_click=on_basis_again)
        return
    fit, curve = results[key]
    size_name = f"degree {config.size}" if polynomial else f"{config.size} centres"
    left, right = st.columns(2)
    with left:
        live_chart(
            figures_explore.fig_basis_fit(dataset, fit, f"{BASIS_LABELS[family]}, {size_name}"), "explore_basis_fit"
        )
    with right:
        live_chart(figures_explore.fig_evidence(curve, config.size), "explore_basis_evidence")
    best_name = "degree" if polynomial else "centres"
    st.markdown(
        f"Log evidence of the shown model: **{fmt(fit.log_evidence)}** · best on the curve: {best_name} "
        f"**{curve.best_size}**"
    )
    st.caption(
        "Every weight gets the slope's prior and the constant the intercept's (PRML 3.86): the evidence rises while "
        "extra weights explain the data and falls once they only add freedom."
    )


# ---- calibration ------------------------------------------------------------------------------------------------


def on_calibration_run() -> None:
    """Ask the view to run the calibration with the settings it is about to read."""
    st.session_state["explore_calibration_requested"] = True


def calibration_x_range(context: PageContext) -> tuple[float, float]:
    """The x range of the page's data: the simulation's, or the uploaded data's extent."""
    if context.synthetic:
        return float(context.scenario.data.x_min), float(context.scenario.data.x_max)
    return float(context.dataset.x.min()), float(context.dataset.x.max())


def draw_calibration(context: PageContext) -> None:
    """Coverage of 50% and 90% intervals over K datasets drawn from the prior: exact, mean-field optimum, and BBB."""
    model = context.scenario.model
    columns = st.columns([2, 2, 3, 2], vertical_alignment="bottom")
    with columns[0]:
        datasets = whole_number_input("Simulated datasets K", 100, 50, "explore_calibration_datasets")
    with columns[1]:
        points = whole_number_input("Points per dataset", 20, 10, "explore_calibration_n")
    with columns[2]:
        with_bbb = st.checkbox(
            "Also Bayes by Backprop (about 0.1 s per dataset)",
            value=False,
            key="explore_calibration_bbb",
            help=(
                f"On every dataset: from the least-squares line until at target, at most {CALIBRATION_BBB.steps:,} "
                f"steps with {CALIBRATION_BBB.samples} samples per step. Only fits at target count in its coverage."
            ),
        )
    x_min, x_max = calibration_x_range(context)
    problem = ""
    try:
        config = CalibrationConfig(datasets=datasets, n=points, x_min=x_min, x_max=x_max)
    except ValueError as error:
        config = None
        problem = describe_error(error)
    refusal = None
    lower = "Simulated datasets K or Points per dataset" + (", or leave out Bayes by Backprop" if with_bbb else "")
    if config is not None:
        cost = explore_budget.calibration_cost(config.datasets, config.n, with_bbb)
        refusal = cost.refusal(lower)
    with columns[3]:
        st.button(
            "Run calibration",
            key="explore_calibration_run",
            on_click=on_calibration_run,
            disabled=config is None or bool(refusal),
            width="stretch",
        )
    if config is None:
        st.error(problem)
    if refusal:
        st.warning(refusal)
    results = session_cache("explore_calibration_cache", context.dataset, model)
    if st.session_state.pop("explore_calibration_requested", False) and config is not None and not refusal:
        arguments = (model, config, CALIBRATION_BBB if with_bbb else None)
        compute("calibration", results, (config, with_bbb), cost, explore_budget.calibration_result, arguments, lower)
    draw_explore_job("calibration")
    latest = results.get(LATEST)
    if latest is None:
        st.caption(
            f"Draw (slope, intercept) from the prior, simulate y with noise sd {fmt(model.noise_sd)} on x from "
            f"{fmt(x_min)} to {fmt(x_max)}, fit, and count how often each 50% and 90% interval holds the truth. "
            "Press **Run calibration**."
        )
        return
    draw_calibration_result(results[latest])


def draw_calibration_result(result: CalibrationResult) -> None:
    """The coverage chart and its numbers."""
    live_chart(figures_explore.fig_calibration(result), "explore_calibration_chart")
    rows: dict[str, list[str]] = {"": [], "Datasets counted": []}
    for name, method in result.methods.items():
        rows[""].append(figures_explore.CALIBRATION_NAMES.get(name, name))
        rows["Datasets counted"].append(
            f"{method.datasets}" if method.statuses is None else f"{method.datasets_at_target} of {method.datasets}"
        )
        coverage = method.coverage_at_target
        for level_index, level in enumerate(method.levels):
            for parameter, parameter_name in enumerate(("slope", "intercept")):
                column = f"{parameter_name} {level:.0%}"
                rows.setdefault(column, []).append(f"{coverage[level_index, parameter]:.2f}")
    st.table(rows, border="horizontal")
    notes = [
        f"Coverage over {result.config.datasets} datasets of {result.config.n} points. Exact inference covers at the "
        "nominal rate (within the ±2 se band); the mean-field optimum's intervals are too narrow when slope and "
        "intercept are correlated, so they under-cover."
    ]
    if result.shared_x is not None:
        design = exact_posterior(Dataset(result.shared_x, np.zeros_like(result.shared_x)), result.model)
        ratio = design.mean_field_sd[:1] / design.sd[:1]  # sqrt(1 - rho^2), the same for both parameters
        predicted = [float(expected_mean_field_coverage(level, ratio)[0]) for level in result.config.levels]
        notes.append(
            f"On this design ρ = {design.corr:.3f}, so the mean-field optimum should cover "
            + " and ".join(f"{value:.2f}" for value in predicted)
            + f" at {' and '.join(f'{level:.0%}' for level in result.config.levels)}: 2Φ(z·√(1 − ρ²)) − 1."
        )
    for name, method in result.methods.items():
        missed = method.datasets - method.datasets_at_target
        if missed:
            notes.append(
                f"{missed} of {method.datasets} {figures_explore.CALIBRATION_NAMES.get(name, name)} fits had not "
                "reached their target (the mean-field optimum) and are left out of its coverage: an unconverged fit "
                "says nothing about the method."
            )
    st.caption(" ".join(notes))
