"""What the explore tabs share: one number format (one way to write NaN and inf in every notation) and one builder of
the tables' moment rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bayesdemo.core.exact import Gaussian
from bayesdemo.page.explore.common import fmt, moments_row, table_of


@pytest.mark.parametrize("notation", ["significant", "general", "fixed"])
def test_nan_and_infinities_read_the_same_in_every_notation(notation):
    assert fmt(math.nan, 3, notation) == "undefined"
    assert fmt(math.inf, 3, notation) == "∞"
    assert fmt(-math.inf, 3, notation) == "−∞"
    assert fmt(np.float64("nan"), 0, notation) == "undefined"  # numpy scalars as the engine returns them


def test_finite_numbers_follow_their_notation():
    # The expected strings come from Python's own format specifications, not from fmt.
    assert fmt(0.0123456) == f"{0.0123456:.4g}"
    assert fmt(123456.7) == "123,457"  # past 10^4 with 4 figures: thousands separators, no exponent
    assert fmt(123456.7, 3, "general") == f"{123456.7:.3g}" == "1.23e+05"
    assert fmt(2.5e-13, 3, "general") == "2.5e-13"
    assert fmt(0.904999, 2, "fixed") == "0.90"
    assert fmt(1.0004, 3, "fixed") == "1.000"
    assert fmt(87.6, 0, "fixed") == "88"


def test_moment_rows_make_one_table_with_extra_columns_after_the_moments():
    q = Gaussian(np.array([2.0, -1e6]), np.diag([0.25, math.nan]))  # a huge intercept, an undefined sd
    rows = [
        moments_row("exact", q, {"Noise sd mean": 0.1, "Noise sd sd": math.inf}),
        moments_row("fit", Gaussian(np.array([1.5, 0.5]), np.eye(2)), {"Noise sd mean": 0.2, "Noise sd sd": 0.01}),
    ]
    table = table_of(rows)
    moments = ["Slope mean", "Slope sd", "Intercept mean", "Intercept sd"]
    assert list(table) == ["", *moments, "Noise sd mean", "Noise sd sd"]
    assert table[""] == ["exact", "fit"]
    assert table["Slope sd"] == ["0.5", "1"]  # sqrt of the variances 0.25 and 1
    assert table["Intercept mean"] == ["-1,000,000", "0.5"]
    assert table["Intercept sd"] == ["undefined", "1"]
    assert table["Noise sd sd"] == ["∞", "0.01"]
