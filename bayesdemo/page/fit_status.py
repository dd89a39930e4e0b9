"""Each fit's state in words: its status, its row of the fit table and the progress line."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bayesdemo.core.exact import ExactPosterior
from bayesdemo.fitting.metrics import RUN_STATUS_WORDS, STATUS_LABELS, Convergence
from bayesdemo.page.context import Context
from bayesdemo.page.form import fmt
from bayesdemo.workers.jobs import FitView, JobView


@dataclass(frozen=True)
class FitStatus:
    """How the page names one fit's state: the runner's word with its convergence status, and why when it matters."""

    word: str  # "Running", "Paused", "Finished", "Diverged", ... (metrics.RUN_STATUS_WORDS, as run_status_text)
    convergence: Convergence | None  # None before the fit's first step and for a diverged fit
    reason: str  # one sentence why it is not at target (with the cure when there is one), or the divergence advice

    @property
    def text(self) -> str:
        """E.g. "Finished · at target", "Running · still moving", "Diverged", "Queued"."""
        return self.word if self.convergence is None else f"{self.word} · {self.convergence.label}"


def fit_status(fit: FitView, job_state: str, context: Context) -> FitStatus:
    """The fit's status word and convergence status against its method's target (metrics.convergence)."""
    if fit.status == "diverged":
        return FitStatus("Diverged", None, fit.message)  # never "Finished": it has no convergence status
    runner_status = job_state if job_state in ("queued", "paused") and not fit.finished else fit.status
    word = RUN_STATUS_WORDS.get(runner_status, runner_status.capitalize())
    if not fit.finished and (fit.last is None or fit.last.step == 0):
        return FitStatus(word, None, "")  # nothing trained yet: no convergence to speak of
    conv = fit.convergence(context.exact, context.least_squares)
    # A moving fit's distance changes every redraw: its reason is shown once it is far, or once it has ended.
    shown = conv.status == "far_from_target" or (conv.status == "still_moving" and fit.finished)
    return FitStatus(word, conv, conv.reason.strip() if shown else "")


def fit_statuses(view: JobView | None, context: Context) -> tuple[FitStatus, ...]:
    """Each fit's FitStatus, in the job's order (none without a job)."""
    return () if view is None else tuple(fit_status(fit, view.state, context) for fit in view.fits)


def fit_rows(view: JobView, exact: ExactPosterior, statuses: tuple[FitStatus, ...]) -> dict[str, list[str]]:
    """One table row per fit: progress, speed, current q, KL(q || exact) and status, all read from the engine."""
    columns: dict[str, list[str]] = {
        "Fit": [],
        "Step": [],
        "Steps/s": [],
        "Slope mean": [],
        "Slope sd": [],
        "Intercept mean": [],
        "Intercept sd": [],
        "KL(q ‖ exact)": [],
        "Status": [],
        "Why": [],
    }
    for fit, status in zip(view.fits, statuses, strict=True):
        last = fit.last
        columns["Fit"].append(fit.label)
        cap = " (cap)" if fit.config.until_target else ""
        columns["Step"].append(f"{fit.steps_done:,} / {fit.total_steps:,}{cap}")
        live = fit.status == "running" and view.state == "running"
        columns["Steps/s"].append(f"{fit.steps_per_second:,.0f}" if live else "–")
        if last is None:
            for name in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd", "KL(q ‖ exact)"):
                columns[name].append("–")
        else:
            columns["Slope mean"].append(fmt(last.mean[0]))
            columns["Slope sd"].append(fmt(last.sd[0]))
            columns["Intercept mean"].append(fmt(last.mean[1]))
            columns["Intercept sd"].append(fmt(last.sd[1]))
            columns["KL(q ‖ exact)"].append(fmt(kl_or_inf(exact, fit), 3))
        columns["Status"].append(status.text)
        columns["Why"].append(status.reason or "–")
    return columns


def kl_or_inf(exact: ExactPosterior, fit: FitView) -> float:
    """KL(q || exact) of the fit's latest snapshot; inf for a collapsed q (an sd of exactly 0)."""
    last = fit.last
    if last is None:
        return math.nan
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a fit near divergence: the KL is honestly inf
            return exact.kl_to_exact(last.gaussian)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError):
        return math.inf


def status_counts(statuses: tuple[FitStatus, ...]) -> str:
    """How many fits stand where, e.g. "3 at target, 1 diverged"; "" before any fit has trained."""
    counts: dict[str, int] = {}
    for status in statuses:
        if status.word == "Diverged":
            counts["diverged"] = counts.get("diverged", 0) + 1
        elif status.convergence is not None:
            counts[status.convergence.label] = counts.get(status.convergence.label, 0) + 1
    order = [*STATUS_LABELS.values(), "diverged"]
    return ", ".join(f"{counts[label]} {label}" for label in order if label in counts)


def progress_line(view: JobView, statuses: tuple[FitStatus, ...]) -> str:
    """The progress bar's text: the state in bold with where the fits stand, the steps, the speed, and why."""
    rate = sum(fit.steps_per_second for fit in view.fits if fit.status == "running")
    capped = any(fit.config.until_target for fit in view.fits)
    steps_text = f"Step {view.steps_done:,} of {'at most ' if capped else ''}{view.total_steps:,}"
    rate_text = f" · {rate:,.0f} steps/s" if view.state == "running" else ""
    if len(view.fits) > 1:  # each fit's own steps (the range when they differ) and speed, never their sum
        longest = max(fit.total_steps for fit in view.fits)
        behind, ahead = min(fit.steps_done for fit in view.fits), max(fit.steps_done for fit in view.fits)
        steps = f"Step {ahead:,}" if behind == ahead else f"Steps {behind:,} to {ahead:,}"
        steps_text = f"{steps} of {'at most ' if capped else ''}{longest:,} per fit"
        running = sum(1 for fit in view.fits if fit.status == "running")
        rate_text = f" · {rate / running:,.0f} steps/s per fit" if view.state == "running" and running else ""
    if view.state == "queued" and view.queue_position is not None:
        rate_text = f" · number {view.queue_position} in the queue: the server runs a few fits at a time"
    if len(view.fits) == 1:
        (status,) = statuses
        head = f"**{status.word}**" + (f" · {status.convergence.label}" if status.convergence is not None else "")
        why = f" · {status.reason}" if status.reason and status.word != "Diverged" else ""
        return f"{head} · {steps_text}{rate_text}{why}"
    counts = status_counts(statuses)
    word = view.state.capitalize()
    if view.state == "finished" and any(status.word == "Diverged" for status in statuses):
        word = "Ended"  # the job ended, but a diverged fit never reads as finished
    return f"**{word}**{f' · {counts}' if counts else ''} · {steps_text}{rate_text}"
