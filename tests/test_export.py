"""Trajectory CSV and results JSON: every number reads back to the snapshot or summary it came from."""

from __future__ import annotations

import csv
import io
import json

import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian, exact_posterior
from bayesdemo.core.scenario import Scenario
from bayesdemo.fitting.export import TRAJECTORY_COLUMNS, results_json, trajectory_csv
from bayesdemo.fitting.runner import Run, RunConfig, Snapshot, run_to_end
from bayesdemo.methods import FitConfig, make_method

STEPS = 60


@pytest.fixture(scope="module")
def setting():
    scenario = Scenario(data=DataConfig(n=40, seed=3), fit=FitConfig(steps=STEPS, samples=2), snapshot_every=10)
    dataset = generate(scenario.data)
    exact = exact_posterior(dataset, scenario.model)
    fits = []
    for method in ("noise", "bbb"):
        config = FitConfig(method=method, steps=STEPS, samples=2)
        run = run_to_end(make_method(dataset, scenario.model, config), STEPS, RunConfig(snapshot_every=10))
        fits.append((config, run))
    return scenario, dataset, exact, fits


def test_trajectory_csv_has_one_row_per_snapshot_with_exact_values(setting):
    _, _, _, fits = setting
    traces = [(config.label, run.snapshots) for config, run in fits]
    rows = list(csv.DictReader(io.StringIO(trajectory_csv(traces))))
    assert tuple(rows[0]) == TRAJECTORY_COLUMNS
    expected = [(label, s) for label, snapshots in traces for s in snapshots]
    assert len(rows) == len(expected)
    for row, (label, snapshot) in zip(rows, expected, strict=True):
        assert row["fit"] == label and int(row["step"]) == snapshot.step
        assert float(row["slope_mean"]) == snapshot.mean[0] and float(row["intercept_mean"]) == snapshot.mean[1]
        assert float(row["slope_sd"]) == snapshot.sd[0] and float(row["intercept_sd"]) == snapshot.sd[1]
        assert float(row["seconds"]) == snapshot.seconds
        if snapshot.step == 0:
            assert row["loss"] == ""  # no loss before the first step
        else:
            assert float(row["loss"]) == snapshot.loss
        assert float(row["corr"]) == 0.0  # both methods are factorised


def test_trajectory_csv_correlation_and_collapsed_sd():
    correlated = Snapshot.of(3, 0.5, 2.0, Gaussian([1.0, 2.0], [[4.0, 1.2], [1.2, 1.0]]))
    collapsed = Snapshot.of(4, 0.6, 1.5, Gaussian.diagonal([1.0, 2.0], [0.0, 1.0]))
    rows = list(csv.DictReader(io.StringIO(trajectory_csv([("a, with comma", [correlated, collapsed])]))))
    assert float(rows[0]["corr"]) == pytest.approx(1.2 / (2.0 * 1.0))
    assert float(rows[1]["corr"]) == 0.0
    assert rows[0]["fit"] == "a, with comma"


def test_results_json_holds_scenario_data_exact_and_fits(setting):
    scenario, dataset, exact, fits = setting
    document = json.loads(results_json(scenario, dataset, exact, fits))
    assert (
        Scenario(
            data=DataConfig(**document["scenario"]["data"]),
            fit=FitConfig(**document["scenario"]["fit"]),
            **{k: v for k, v in document["scenario"].items() if k not in ("data", "prior", "fit")},
        )
        == scenario
    )
    assert document["data"] == {"source": dataset.source, "n": dataset.n}
    assert document["exact"]["mean"]["slope"] == pytest.approx(exact.mean[0])
    assert document["exact"]["log_evidence"] == pytest.approx(exact.log_evidence)
    least_squares = dataset.least_squares()
    for entry, (config, run) in zip(document["fits"], fits, strict=True):
        assert entry["label"] == config.label and entry["steps"] == run.last.step == STEPS
        assert entry["sd"]["slope"] == pytest.approx(run.last.sd[0])
        assert entry["kl_to_exact"] == pytest.approx(exact.kl_to_exact(run.last.gaussian))
    noise_target = document["fits"][0]["target"]
    assert noise_target["mean"]["slope"] == pytest.approx(least_squares[0]) and noise_target["sd"]["slope"] == 0.0
    assert document["fits"][1]["target"]["sd"]["slope"] == pytest.approx(exact.mean_field_sd[0])


def test_results_json_is_strict_json_for_nan_loss_and_unstarted_runs(setting):
    scenario, dataset, exact, _ = setting
    config = FitConfig(method="bbb", steps=5)
    started = Run(make_method(dataset, scenario.model, config), 5)
    next(iter(started))  # only the step-0 snapshot, whose loss is NaN
    unstarted = Run(make_method(dataset, scenario.model, config), 5)
    text = results_json(scenario, dataset, exact, [(config, started), (config, unstarted)])

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    document = json.loads(text, parse_constant=refuse)
    assert document["fits"][0]["loss"] is None and document["fits"][0]["steps"] == 0
    assert document["fits"][1] == {"label": config.label, "status": "ready", "message": ""}


def test_trajectory_csv_status_column_follows_the_fit_into_its_target():
    """Hand-made trajectory: 3 exact sds off for steps 1-100, then on the mean-field optimum; window 50 steps."""
    from bayesdemo.fitting.metrics import target_for

    dataset = generate(DataConfig(n=40, seed=3))
    exact = exact_posterior(dataset, Scenario().model)
    target = target_for(FitConfig(method="bbb"), exact, dataset.least_squares())
    far = Gaussian.diagonal(exact.mean + 3 * exact.sd, exact.mean_field_sd)
    on = Gaussian.diagonal(exact.mean, exact.mean_field_sd)
    snapshots = [Snapshot.of(step, 0.0, 1.0, far if step <= 100 else on) for step in range(0, 201, 10)]
    text = trajectory_csv([("fit", snapshots)], exact, {"fit": target})
    rows = list(csv.DictReader(io.StringIO(text)))
    status = {int(row["step"]): row["status"] for row in rows}
    # Window average of the 5 snapshots in (step - 50, step]: 3 sds off until the far ones leave it (step 150);
    # at step 130 two of five are far: mean 1.2 sds off, still over 1 sd; at 140 one of five: 0.6 sds, still moving.
    assert status[100] == status[130] == "far_from_target"
    assert status[140] == "still_moving"
    assert status[150] == status[200] == "at_target"
    assert tuple(rows[0])[-1] == "status" and len(rows) == len(snapshots)


def test_results_json_fits_carry_their_convergence(setting):
    scenario, dataset, exact, fits = setting
    document = json.loads(results_json(scenario, dataset, exact, fits))
    for entry in document["fits"]:
        assert entry["convergence"]["status"] in ("at_target", "still_moving", "far_from_target")
        assert entry["status_text"].startswith("Finished · ") and entry["status_text"].endswith(
            entry["convergence"]["label"]
        )
