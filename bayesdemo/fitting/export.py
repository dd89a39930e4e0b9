"""Downloads: every fit's trajectory as CSV, and the scenario, exact reference and fit summaries as JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.core.scenario import Scenario
from bayesdemo.fitting.metrics import Target, convergence, target_for
from bayesdemo.fitting.report import FitRecord, exact_summary, fit_summary
from bayesdemo.fitting.runner import Snapshot

TRAJECTORY_COLUMNS = (
    "fit",
    "step",
    "seconds",
    "loss",
    "slope_mean",
    "intercept_mean",
    "slope_sd",
    "intercept_sd",
    "corr",
)
STATUS_COLUMN = "status"  # the fit's convergence status at that snapshot (metrics.FIT_STATUSES), when targets are given


def _cell(value: float) -> str:
    """A float as the shortest text that reads back exactly; empty for NaN (no loss before the first step)."""
    value = float(value)
    return "" if math.isnan(value) else repr(value)


def snapshot_corr(snapshot: Snapshot) -> float:
    """q's correlation of slope and intercept; 0 when an sd is 0 (a collapsed q has no correlation to show)."""
    sd = snapshot.sd
    if not (sd[0] > 0 and sd[1] > 0):
        return 0.0
    return float(snapshot.cov[0, 1] / (sd[0] * sd[1]))


def trajectory_csv(
    traces: Sequence[tuple[str, Sequence[Snapshot]]],
    exact: ExactPosterior | None = None,
    targets: Mapping[str, Target] | None = None,
) -> str:
    """All snapshots of all fits, one row each, with the columns of TRAJECTORY_COLUMNS.

    Given `exact` and each fit's target by label (metrics.target_for), a last column STATUS_COLUMN holds the fit's
    convergence status as it stood at that snapshot (metrics.convergence over the snapshots so far).
    """
    with_status = exact is not None and targets is not None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TRAJECTORY_COLUMNS + ((STATUS_COLUMN,) if with_status else ()))
    for label, snapshots in traces:
        for index, snapshot in enumerate(snapshots):
            status: list[str] = []
            if exact is not None and targets is not None:  # with_status, spelled out so that both are known
                status = [convergence(snapshots[: index + 1], targets[label], exact).status]
            writer.writerow(
                [
                    label,
                    snapshot.step,
                    _cell(snapshot.seconds),
                    _cell(snapshot.loss),
                    _cell(snapshot.mean[0]),
                    _cell(snapshot.mean[1]),
                    _cell(snapshot.sd[0]),
                    _cell(snapshot.sd[1]),
                    _cell(snapshot_corr(snapshot)),
                    *status,
                ]
            )
    return buffer.getvalue()


def _strict_json(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, so the output is standard JSON."""
    if isinstance(value, dict):
        return {key: _strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_strict_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_json(
    scenario: Scenario, dataset: Dataset, exact: ExactPosterior, fits: Sequence[tuple[FitConfig, FitRecord]]
) -> str:
    """Scenario, data source and size, exact reference and each fit's summary (report.py) as indented JSON.

    Non-finite numbers (a NaN loss, an infinite KL for a collapsed q) are written as null.
    """
    least_squares = dataset.least_squares()
    fit_entries = []
    for config, run in fits:
        if run.last is None:
            fit_entries.append({"label": config.label, "status": run.status, "message": run.message})
            continue
        fit_entries.append(fit_summary(config, run, exact, target_for(config, exact, least_squares)))
    document = {
        "scenario": dataclasses.asdict(scenario),
        "data": {"source": dataset.source, "n": dataset.n},
        "exact": exact_summary(exact),
        "fits": fit_entries,
    }
    return json.dumps(_strict_json(document), indent=2, allow_nan=False)
