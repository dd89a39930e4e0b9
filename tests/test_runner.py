"""The runner: snapshot cadence, immutability, stop, time budget, divergence with the last finite snapshot kept."""

import dataclasses
import math
import threading
import time

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import Gaussian
from bayesdemo.core.priors import Model
from bayesdemo.fitting.runner import MAX_STEPS_PER_CALL, Run, RunConfig, Snapshot, run_to_end
from bayesdemo.methods import FitConfig, make_method

DATA = generate(DataConfig())


class ScriptedMethod:
    """A method whose losses are given: lets the runner be tested without any randomness."""

    def __init__(self, losses, delay_s: float = 0.0):
        self.config = FitConfig()
        self.losses = list(losses)
        self.steps = 0
        self.delay_s = delay_s

    def step(self) -> float:
        if self.delay_s:
            time.sleep(self.delay_s)
        loss = self.losses[self.steps % len(self.losses)]
        self.steps += 1
        return loss

    def posterior(self) -> Gaussian:
        return Gaussian.diagonal([float(self.steps), 0.0], [1.0, 1.0])


def test_snapshots_come_every_k_steps_with_first_and_last():
    run = run_to_end(ScriptedMethod([1.0, 3.0]), 25, RunConfig(snapshot_every=10))
    assert [s.step for s in run.snapshots] == [0, 10, 20, 25]
    assert math.isnan(run.snapshots[0].loss)
    assert run.snapshots[1].loss == pytest.approx(2.0)  # mean loss since the previous snapshot
    assert [s.mean[0] for s in run.snapshots] == [0.0, 10.0, 20.0, 25.0]
    assert run.status == "done" and "25 steps" in run.message


def test_snapshots_are_immutable():
    snapshot = run_to_end(make_method(DATA, Model(), FitConfig(steps=3)), 3).last
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.step = 5
    for array in (snapshot.mean, snapshot.sd, snapshot.cov):
        with pytest.raises(ValueError):
            array[0] = 1.0
    assert isinstance(snapshot, Snapshot)


def test_stop_from_another_thread_ends_the_run():
    run = Run(ScriptedMethod([1.0], delay_s=0.001), 1_000_000, RunConfig(snapshot_every=5))
    threading.Timer(0.2, run.stop).start()
    for _ in run:
        pass
    assert run.status == "stopped"
    assert 0 < run.steps_done < 1_000_000
    assert str(run.steps_done) in run.message


def test_time_budget_ends_the_run():
    run = run_to_end(ScriptedMethod([1.0], delay_s=0.002), 1_000_000, RunConfig(time_budget_s=0.2))
    assert run.status == "timeout"
    assert run.seconds >= 0.2
    assert run.steps_done < 1_000_000


def test_advance_trains_in_slices_and_resumes():
    run = Run(ScriptedMethod([1.0]), 50, RunConfig(snapshot_every=1))
    first = run.advance(0.0)  # at least one step even with no time
    assert len(first) >= 1 and not run.finished
    while not run.finished:
        run.advance(0.01)
    assert run.status == "done"
    assert [s.step for s in run.snapshots] == list(range(51))


@pytest.mark.parametrize("bad_loss", [math.inf, math.nan])
def test_non_finite_loss_stops_with_advice_and_keeps_last_finite_snapshot(bad_loss):
    run = run_to_end(ScriptedMethod([1.0] * 7 + [bad_loss]), 100, RunConfig(snapshot_every=3))
    assert run.status == "diverged"
    assert "step 8" in run.message and "learning rate" in run.message
    assert run.last.step == 6
    assert all(np.all(np.isfinite(s.mean)) for s in run.snapshots)


class ScriptedMultiStep(ScriptedMethod):
    """A scripted method that also takes several steps per call, recording each call's count."""

    def __init__(self, losses):
        super().__init__(losses)
        self.calls: list[int] = []

    def take_steps(self, count: int) -> list[float]:
        self.calls.append(count)
        losses = []
        for _ in range(count):
            losses.append(self.step())
            if not math.isfinite(losses[-1]):
                break
        return losses


@pytest.mark.parametrize(("every", "total"), [(10, 155), (1, 20), (100, 250)])
def test_several_steps_per_call_never_cross_a_snapshot(every, total):
    method = ScriptedMultiStep([1.0, 3.0])
    run = run_to_end(method, total, RunConfig(snapshot_every=every))
    expected_steps = [0, *range(every, total + 1, every)]
    assert [s.step for s in run.snapshots] == [*expected_steps, *([total] if total % every else [])]
    assert sum(method.calls) == total == run.steps_done
    assert max(method.calls) <= min(every, MAX_STEPS_PER_CALL)
    script = [1.0, 3.0] * total  # step k's loss is script[k - 1]
    for previous, snapshot in zip(run.snapshots[:-1], run.snapshots[1:], strict=True):
        assert snapshot.loss == pytest.approx(np.mean(script[previous.step : snapshot.step]))


@pytest.mark.parametrize("bad_loss", [math.inf, math.nan])
def test_a_non_finite_loss_inside_a_call_is_reported_at_its_own_step(bad_loss):
    method = ScriptedMultiStep([1.0] * 7 + [bad_loss])
    run = run_to_end(method, 100, RunConfig(snapshot_every=5))
    assert run.status == "diverged"
    assert "step 8" in run.message and "learning rate" in run.message
    assert run.last.step == 5 and run.steps_done == 7


def test_runs_of_bayes_by_backprop_in_calls_equal_runs_step_by_step():
    """The runner's calls of take_steps give the snapshots of a run that steps one at a time (rounding aside)."""

    class OneStepAtATime:
        """The same fit seen only through step and posterior."""

        def __init__(self, method):
            self.method, self.config = method, method.config

        def step(self) -> float:
            return self.method.step()

        def posterior(self) -> Gaussian:
            return self.method.posterior()

    config = FitConfig(method="bbb", batch_size=20, steps=400, seed=3)
    grouped = run_to_end(make_method(DATA, Model(), config), 400, RunConfig(snapshot_every=25))
    single = run_to_end(OneStepAtATime(make_method(DATA, Model(), config)), 400, RunConfig(snapshot_every=25))
    assert [s.step for s in grouped.snapshots] == [s.step for s in single.snapshots]
    for mine, theirs in zip(grouped.snapshots[1:], single.snapshots[1:], strict=True):
        # Same draws and batches; the closed-form sums are grouped differently, so equal to rounding (1e-9).
        np.testing.assert_allclose(mine.mean, theirs.mean, rtol=1e-9)
        np.testing.assert_allclose(mine.cov, theirs.cov, rtol=1e-9)
        assert mine.loss == pytest.approx(theirs.loss, rel=1e-9)


def test_real_divergence_of_noise_injection_is_caught():
    config = FitConfig(method="noise", lr=5.0, steps=2000)
    run = run_to_end(make_method(DATA, Model(), config), config.steps_in_force)
    assert run.status == "diverged"
    assert "Lower the learning rate" in run.message
    assert np.all(np.isfinite(run.last.mean)) and np.all(np.isfinite(run.last.cov))


@pytest.mark.parametrize(("field", "value"), [("snapshot_every", 0), ("time_budget_s", -1.0)])
def test_invalid_run_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RunConfig(**{field: value})


def first_step_in_band(snapshots, target_mean, target_sd, exact_sd, window=50):
    """The first snapshot step whose last-`window`-steps average is within 0.1 exact sd (means) and 10% (sds).

    Written out here from the rule's statement (MATH.md, Convergence rule), independent of bayesdemo.fitting.metrics.
    """
    for index, snapshot in enumerate(snapshots):
        if snapshot.step == 0:
            continue
        chosen = [s for s in snapshots[: index + 1] if s.step > snapshot.step - window and s.step > 0]
        mean = np.mean([s.mean for s in chosen], axis=0)
        sd = np.mean([s.sd for s in chosen], axis=0)
        if np.all(np.abs(mean - target_mean) <= 0.1 * exact_sd) and np.all(np.abs(sd - target_sd) <= 0.1 * target_sd):
            return snapshot.step
    return None


def test_until_target_stops_at_the_first_snapshot_where_the_rule_holds():
    from bayesdemo.core.exact import exact_posterior
    from bayesdemo.fitting.runner import fit_run

    exact = exact_posterior(DATA, Model())
    config = FitConfig(method="bbb", until_target=True, steps=20_000, seed=5)
    run = fit_run(DATA, Model(), config, RunConfig(snapshot_every=10))
    for _ in run:
        pass
    full = run_to_end(make_method(DATA, Model(), dataclasses.replace(config, until_target=False)), 3000, RunConfig(10))
    expected = first_step_in_band(full.snapshots, exact.mean, exact.mean_field_sd, exact.sd)
    assert expected is not None and expected < 3000
    assert run.status == "done" and run.last.step == expected
    assert run.message.startswith(f"At target at step {expected} ")
    # The same trajectory as the run without the rule, up to where it stopped (the rule only reads snapshots).
    assert [s.mean.tolist() for s in run.snapshots] == [s.mean.tolist() for s in full.snapshots[: len(run.snapshots)]]


def test_until_target_reaching_the_cap_first_says_so():
    from bayesdemo.fitting.runner import fit_run

    run = fit_run(DATA, Model(), FitConfig(method="bbb", until_target=True, steps=60), RunConfig(snapshot_every=10))
    for _ in run:
        pass
    assert run.status == "done" and run.last.step == 60
    assert "cap of 60 steps before the target" in run.message


class HungryMethod(ScriptedMethod):
    """A method whose third step asks torch for more memory than any machine has."""

    def step(self) -> float:
        if self.steps == 2:
            import torch

            torch.empty(10**14, dtype=torch.float64)  # 800 TB: the allocator refuses
        return super().step()


def test_running_out_of_memory_is_reported_as_such_with_the_full_numbers_not_as_divergence():
    run = run_to_end(HungryMethod([1.0]), 100, RunConfig(snapshot_every=1))
    assert run.status != "diverged"
    assert "ran out of memory" in run.message and "learning rate" not in run.message
    # The full request, 10^14 float64 values: 8e14 bytes, not a number cut short.
    assert f"{8 * 10**14:,} bytes" in run.message
    assert "samples per step" in run.message and "minibatches" in run.message
    assert run.last.step == 2  # the last finite snapshot is kept
