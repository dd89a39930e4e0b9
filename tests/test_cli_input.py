"""`python -m bayesdemo` input: negative values after a flag, a big file's real size, the flags --data leaves unused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bayesdemo.cli import main
from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict | None, str]:
    """Exit code, the JSON printed (None on an error) and stderr of `bayesdemo ARGS --json`, run in this process."""
    try:
        code = main([*args, "--json"])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if captured.out else None, captured.err


def exact_means(output: dict) -> list[float]:
    """The exact posterior mean (slope, intercept) of the JSON output."""
    return [output["exact"]["mean"]["slope"], output["exact"]["mean"]["intercept"]]


def test_values_starting_with_a_minus_are_values_as_the_readme_writes_them(capsys):
    code, output, error = run(capsys, "exact", "--prior-mean", "-1,2", "--x-min", "-1e6", "--x-max", "-5e5")
    assert code == 0, error
    data = generate(DataConfig(x_min=-1e6, x_max=-5e5))
    reference = exact_posterior(data, Model(GaussianPrior(-1.0, 10.0, 2.0, 10.0)))
    np.testing.assert_allclose(exact_means(output), reference.mean, rtol=1e-12)  # the same sums: rounding only


def test_a_negative_value_that_is_not_allowed_is_refused_by_name_not_as_a_missing_argument(capsys):
    code, output, error = run(capsys, "exact", "--prior-sd", "-1e-3")
    assert code == 2 and output is None
    assert "--prior-sd" in error and "must be > 0" in error and "expected one argument" not in error


def test_a_180_mb_data_file_is_refused_with_its_real_size(capsys, tmp_path):
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(180_000_000)  # sparse: 180 MB by its size, no disk used
    code, output, error = run(capsys, "exact", "--data", str(big))
    assert code == 2 and output is None
    assert error.strip() == "bayesdemo: error: argument --data: csv must be at most 20.0 MB, got 180.0 MB"


def test_simulation_flags_with_data_are_named_as_unused_and_not_checked(capsys, tmp_path):
    data = generate(DataConfig(n=30, slope=-2.0, seed=4))
    path = tmp_path / "points.csv"
    path.write_text(data.to_csv())
    # --n 1 would be refused for a simulation; with --data it is unused, so it is named, not checked.
    code, output, error = run(capsys, "exact", "--data", str(path), "--n", "1", "--slope", "5", "--seed", "3")
    assert code == 0, error
    note = f"bayesdemo: note: --n, --slope and --seed are not used with --data: the data come from {path}."
    assert error.strip() == note
    np.testing.assert_allclose(exact_means(output), exact_posterior(data, Model()).mean, rtol=1e-12)
    code, _, error = run(capsys, "exact", "--data", str(path))
    assert code == 0 and error == ""


def test_without_data_the_simulation_flags_are_used_and_checked(capsys):
    code, output, error = run(capsys, "exact", "--n", "7", "--slope", "-4", "--seed", "9")
    assert code == 0, error
    reference = exact_posterior(generate(DataConfig(n=7, slope=-4.0, seed=9)), Model())
    np.testing.assert_allclose(exact_means(output), reference.mean, rtol=1e-12)
    assert output["data"]["n"] == 7
    code, _, error = run(capsys, "exact", "--n", "1")
    assert code == 2 and "--n" in error and "between 2 and" in error


# Each whole-number flag and its allowed range, written out here as the check's reference.
WHOLE_NUMBER_FLAGS = [
    ("--n", 2, 1_000_000),
    ("--seed", 0, 2**32 - 1),
    ("--steps", 1, 1_000_000),
    ("--samples", 1, 1024),
    ("--batch-size", 0, 10_000_000),
    ("--snapshot-every", 1, 1_000_000),
]


@pytest.mark.parametrize(("flag", "low", "high"), WHOLE_NUMBER_FLAGS)
def test_a_whole_number_past_2_to_the_53_is_refused_by_flag_with_its_range_and_exact_value(capsys, flag, low, high):
    # 2^53 + 1 is the first integer a float64 cannot hold: the message must show it exactly, not rounded to 2^53.
    code, output, error = run(capsys, "fit", flag, str(2**53 + 1))
    assert code == 2 and output is None
    assert f"argument {flag}:" in error and f"between {low} and {high}, got {2**53 + 1}" in error, error
