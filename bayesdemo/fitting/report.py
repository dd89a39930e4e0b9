"""Plain-dict summaries of the exact reference and of a fit: one shape for the CLI's JSON and the page's export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from bayesdemo.core.config import FitConfig
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.core.priors import PARAMETER_NAMES
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting.metrics import Target, convergence, run_status_text, sd_ratios
from bayesdemo.fitting.runner import Snapshot


def by_parameter(values: np.ndarray) -> dict[str, float]:
    """{"slope": v[0], "intercept": v[1]} as floats."""
    return {name: float(value) for name, value in zip(PARAMETER_NAMES, values, strict=True)}


class FitRecord(Protocol):
    """What a summary reads of a fit: a runner.Run, or the page's jobs.FitView of one."""

    @property
    def snapshots(self) -> Sequence[Snapshot]: ...
    @property
    def last(self) -> Snapshot | None: ...
    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def seconds(self) -> float: ...


def exact_summary(exact: ExactPosterior) -> dict[str, Any]:
    """The exact reference: mean, marginal sd, mean-field sd, correlation, log evidence (docs/MATH.md)."""
    return {
        "mean": by_parameter(exact.mean),
        "sd": by_parameter(exact.sd),
        "mean_field_sd": by_parameter(exact.mean_field_sd),
        "corr": exact.corr,
        "log_evidence": exact.log_evidence,
        "noise_sd": exact.model.noise_sd,
    }


def fit_summary(config: FitConfig, run: FitRecord, exact: ExactPosterior, target: Target) -> dict[str, Any]:
    """A finished (or stopped) fit: its settings, status against its target, last snapshot, KL, sd ratios.

    "convergence" is metrics.convergence over the run's snapshots (docs/MATH.md, Convergence rule); "status_text" says
    both, e.g. "Finished · far from target" ("Diverged" alone for a diverged fit).
    """
    last = run.last
    if last is None:
        raise ConfigError("run", "must have taken its first snapshot before it is summarised, got none")
    ratios = sd_ratios(last.sd, exact)
    conv = convergence(run.snapshots, target, exact)
    return {
        "method": config.method,
        "guide": config.guide if config.method == "svi" else None,
        "label": config.label,
        "optimizer": config.optimizer_in_force,
        "lr": config.lr_in_force,
        "lr_decay": config.lr_decay_in_force,
        "samples": config.samples_in_force,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "status": run.status,
        "status_text": run_status_text(run.status, conv),
        "convergence": {"status": conv.status, "label": conv.label, "reason": conv.reason},
        "message": run.message,
        "centre_x": config.centre_x,
        "until_target": config.until_target,
        "steps": last.step,
        "seconds": run.seconds,
        "loss": last.loss,
        "mean": by_parameter(last.mean),
        "sd": by_parameter(last.sd),
        "corr": float(last.cov[0, 1] / (last.sd[0] * last.sd[1])) if np.all(last.sd > 0) else 0.0,
        "target": {"name": target.name, "mean": by_parameter(target.mean), "sd": by_parameter(target.sd)},
        "sd_ratio_to_exact": by_parameter(ratios["to_exact"]),
        "sd_ratio_to_mean_field": by_parameter(ratios["to_mean_field"]),
        "kl_to_exact": exact.kl_to_exact(last.gaussian) if np.all(last.sd > 0) else float("inf"),
    }
