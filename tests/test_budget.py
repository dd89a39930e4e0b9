"""A fit's memory estimate against measured allocation; fits beyond the budget are refused before they start."""

import json
import subprocess
import sys

import pytest

from bayesdemo import cli
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.priors import Model
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting import budget
from bayesdemo.methods import FitConfig
from bayesdemo.workers.jobs import Job

# Two steps in a fresh process: how far its peak resident memory rises above its resident memory just before them.
# The peak is reset first (writing 5 to /proc/self/clear_refs resets VmHWM), so an earlier, higher peak (imports,
# building the method) cannot hide the steps' own: ru_maxrss, which cannot be reset, read 0 growth in some runs.
MEASURE = """
import json, sys
import torch
torch.set_num_threads(1)
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.methods import FitConfig, make_method
from bayesdemo.core.priors import Model

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)

settings, n = json.loads(sys.argv[1]), int(sys.argv[2])
method = make_method(generate(DataConfig(n=n)), Model(), FitConfig(**settings))
with open("/proc/self/clear_refs", "w") as clear_refs:
    clear_refs.write("5")
before = status_kib("VmRSS")
method.step()
method.step()
print((status_kib("VmHWM") - before) * 1024)
"""


def measured_step_bytes(settings: dict, n: int) -> int:
    """Peak memory growth in bytes over two steps of the fit `settings` on n points, in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, json.dumps(settings), str(n)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


# Every path that materialises (samples x batch) tensors, and one minibatch fit (its batch, not n, counts).
MATERIALISING = [
    ({"method": "noise", "samples": 128}, 20_000),
    ({"method": "noise", "samples": 128, "batch_size": 10_000}, 40_000),
    ({"method": "bbb", "samples": 128, "local_reparam": True}, 20_000),
    ({"method": "bbb", "samples": 128, "objective": "mse"}, 20_000),
    ({"method": "bbb", "samples": 128, "learn_noise": True}, 20_000),
    ({"method": "svi", "samples": 128, "svi_elbo": "trace"}, 20_000),
]


@pytest.mark.parametrize(("settings", "n"), MATERIALISING)
def test_estimate_bounds_measured_peak_within_a_factor_of_four(settings, n):
    # 128 x 20,000 float64 is 20 MiB per tensor, far above the allocator's noise (a few MiB), and below the C
    # allocator's 32 MiB mapping threshold, where the heap grows most past what is alive (budget.py). The estimate
    # must never be below what a step takes (it guards the server) and not more than 4x above it (a looser one would
    # refuse fits that run).
    estimate = budget.fit_cost(FitConfig(**settings), n).peak_bytes
    measured = measured_step_bytes(settings, n)
    assert measured <= estimate <= 4 * measured, (measured, estimate)


def test_sufficient_statistics_paths_stay_small_whatever_the_samples():
    # Bayes by Backprop's closed-form ELBO and Pyro SVI's direct ELBO never build a (samples x n) tensor.
    n = 20_000
    for settings in ({"method": "bbb", "samples": 1024}, {"method": "svi", "samples": 1024}):
        measured = measured_step_bytes(settings, n)
        # 1024 x 20,000 float64 would be 156 MiB per tensor; 32 MiB leaves room for the allocator and Pyro's traces.
        assert measured < 32 * 2**20
        assert not budget.fit_cost(FitConfig(**settings), n).per_sample_point


def test_a_huge_noise_injection_run_is_refused_naming_the_estimate_and_what_to_lower():
    problem = budget.memory_problem(FitConfig(method="noise", samples=1024), 1_000_000)
    assert problem is not None
    # 1024 x 1e6 float64 is 7.6 GiB per tensor; noise injection keeps 14 to 31 of them resident (budget.py).
    estimate_gib = budget.fit_cost(FitConfig(method="noise", samples=1024), 1_000_000).peak_bytes / 2**30
    assert 7.6 * 14 < estimate_gib < 7.6 * 50
    assert f"{estimate_gib:.3g} GiB" in problem
    for field in ("Samples per step", "Data points n", "Batch size"):
        assert field in problem
    # The batch size it proposes fits the budget; one point more than twice it would not.
    proposed = int(problem.rsplit("at most ", 1)[1].rstrip(".").replace(",", ""))
    small = FitConfig(method="noise", samples=1024, batch_size=proposed)
    assert budget.memory_problem(small, 1_000_000) is None
    assert budget.memory_problem(FitConfig(method="noise", samples=1024, batch_size=2 * proposed + 1), 10**6)


def test_defaults_and_minibatches_of_the_largest_data_are_accepted():
    for method in ("noise", "bbb", "svi"):
        assert budget.memory_problem(FitConfig(method=method), 1_000_000) is None
    assert budget.memory_problem(FitConfig(method="noise", samples=1024, batch_size=1000), 1_000_000) is None


def test_job_refuses_a_fit_over_budget_before_any_process_starts():
    dataset = generate(DataConfig(n=200_000))
    with pytest.raises(ConfigError) as raised:
        Job(dataset, Model(), [FitConfig(method="noise", samples=1024)])
    assert raised.value.field == "samples" and "Batch size" in str(raised.value)


def test_cli_exits_2_with_one_line_before_fitting(capsys):
    with pytest.raises(SystemExit) as raised:
        cli.main(["fit", "--method", "noise", "--samples", "1024", "--n", "100000"])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "--samples" in error and "--batch-size" in error and "GiB" in error


def test_duration_text_picks_a_readable_unit():
    # Independent arithmetic: 23 days in seconds, 90 s stays in seconds, 3 hours.
    assert budget.duration_text(23 * 86_400) == "23 days"
    assert budget.duration_text(90) == "90 s"
    assert budget.duration_text(3 * 3600) == "3 hours"


def test_the_fit_command_trains_on_one_thread():
    # A fresh process with torch on 4 threads: the fit command sets 1, as the page's workers run.
    code = (
        "import sys, torch; torch.set_num_threads(4)\n"
        "from bayesdemo import cli; cli.main(['fit', '--method', 'bbb', '--steps', '3'])\n"
        "print(torch.get_num_threads(), file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.split()[-1] == "1"
