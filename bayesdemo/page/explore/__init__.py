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
rerun reads them instead of computing again. One module per tab; common.py holds what the tabs share.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from bayesdemo.page.explore.basis import BASIS_CUBIC, basis_data, draw_basis
from bayesdemo.page.explore.calibration import CALIBRATION_BBB, draw_calibration
from bayesdemo.page.explore.common import (
    EXPLORE_JOBS_KEY,
    TAB_KEY,
    ExploreEntry,
    PageContext,
    ViewReader,
    collect_explore_jobs,
    describe_error,
    fmt,
    request,
    touch_explore_jobs,
)
from bayesdemo.page.explore.gradient_noise import GRADIENT_REPEATS, draw_gradient_noise, gradient_estimators
from bayesdemo.page.explore.mcmc import draw_mcmc
from bayesdemo.page.explore.other_priors import PRIOR_FITS, draw_other_priors
from bayesdemo.page.explore.parameter_space import draw_parameter_space
from bayesdemo.page.explore.sequential import SEQUENTIAL_FIT, draw_sequential
from bayesdemo.page.explore.unknown_noise import NOISE_SVI, draw_unknown_noise
from bayesdemo.teaching.lessons import EXPLORE_VIEWS

__all__ = [
    "BASIS_CUBIC",
    "CALIBRATION_BBB",
    "EXPLORE_JOBS_KEY",
    "EXPLORE_TABS",
    "GRADIENT_REPEATS",
    "NOISE_SVI",
    "PRIOR_FITS",
    "SEQUENTIAL_FIT",
    "TAB_KEY",
    "ExploreEntry",
    "basis_data",
    "describe_error",
    "draw_explore",
    "fmt",
    "gradient_estimators",
    "request",
    "touch_explore_jobs",
]

EXPLORE_TABS = EXPLORE_VIEWS  # the tabs' labels, in order: lesson files name the view a step opens by them


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
