"""Synthetic data and CSV loading: seeded, independent of global RNGs, and defensive about bad files."""

import random

import numpy as np
import pytest
import torch

from bayesdemo.data import MAX_CSV_BYTES, DataConfig, Dataset, generate, load_csv, parse_csv
from bayesdemo.validation import ConfigError


def test_same_seed_same_data_whatever_else_draws_random_numbers():
    first = generate(DataConfig(seed=7))
    np.random.seed(123)
    np.random.rand(10)
    torch.manual_seed(5)
    torch.randn(10)
    random.random()
    second = generate(DataConfig(seed=7))
    np.testing.assert_array_equal(first.x, second.x)
    np.testing.assert_array_equal(first.y, second.y)
    other = generate(DataConfig(seed=8))
    assert not np.array_equal(first.x, other.x)


def test_generated_data_follow_the_configured_line_and_range():
    config = DataConfig(n=5000, slope=-2.0, intercept=4.0, noise_sd=0.5, x_min=-3.0, x_max=2.0, seed=1)
    data = generate(config)
    assert data.n == 5000
    assert data.x.min() >= -3.0 and data.x.max() <= 2.0
    slope, intercept = data.least_squares()
    residual_sd = np.std(data.y - (slope * data.x + intercept))
    # Standard error of the least-squares slope is noise_sd / (sqrt(n) sd(x)); allow 5 of them.
    slope_se = 0.5 / (np.sqrt(5000) * np.std(data.x))
    assert abs(slope - -2.0) < 5 * slope_se
    assert abs(residual_sd - 0.5) < 0.05


def test_dataset_is_immutable():
    data = generate(DataConfig())
    with pytest.raises(ValueError):
        data.x[0] = 1.0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 1),
        ("n", 0),
        ("n", 10**9),
        ("n", 2.5),
        ("slope", float("nan")),
        ("intercept", float("inf")),
        ("noise_sd", 0.0),
        ("noise_sd", -1.0),
        ("x_min", float("-inf")),
        ("seed", -1),
        ("seed", "abc"),
    ],
)
def test_invalid_data_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field) as caught:
        DataConfig(**{field: value})
    assert caught.value.field == field
    assert repr(value) in str(caught.value) or str(value) in str(caught.value)


def test_x_range_must_be_increasing():
    with pytest.raises(ConfigError, match="x_max") as caught:
        DataConfig(x_min=1.0, x_max=1.0)
    assert caught.value.field == "x_max"


def test_csv_round_trip_and_variants(tmp_path):
    data = generate(DataConfig(n=30, seed=3))
    text = data.to_csv()
    parsed = parse_csv(text)
    np.testing.assert_array_equal(parsed.x, data.x)
    np.testing.assert_array_equal(parsed.y, data.y)
    semicolon = text.replace(",", ";")
    np.testing.assert_array_equal(parse_csv(semicolon.encode()).y, data.y)
    with_bom = ("\ufeff" + text.replace("x,y", "X , Y")).encode("utf-8")
    np.testing.assert_array_equal(parse_csv(with_bom).x, data.x)
    path = tmp_path / "points.csv"
    path.write_text(text + "\n\n")
    assert load_csv(str(path)).n == 30


@pytest.mark.parametrize(
    ("content", "field", "fragment"),
    [
        (b"", "csv", "empty"),
        (b"x,y\n1,2\n", "csv", "at least 2"),
        (b"x\n1\n2\n", "csv", "header"),
        (b"x,y,z\n1,2,3\n2,3,4\n", "csv", "header"),
        (b"1,2\n2,3\n3,5\n", "csv", "header"),
        (b"x,y\n1,2\n2,abc\n", "y", "row 3"),
        (b"x,y\n1,2\nnan,3\n", "x", "finite"),
        (b"x,y\n1,2\n2,inf\n", "y", "finite"),
        (b"x,y\n1,2\n1,3\n", "x", "constant"),
        (b"x,y\n1,2\n2\n", "csv", "2 cells"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "csv", "binary"),
        (b"x,y\n1,\xff\xfe\n", "csv", "UTF-8"),
    ],
)
def test_bad_csv_gets_a_clear_error(content, field, fragment):
    with pytest.raises(ConfigError, match=fragment) as caught:
        parse_csv(content)
    assert caught.value.field == field


def test_oversized_csv_is_refused_without_parsing(tmp_path):
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.write(b"x,y\n")
        handle.write(b"1.0,2.0\n" * (MAX_CSV_BYTES // 8 + 10))
    with pytest.raises(ConfigError, match="at most") as caught:
        load_csv(str(big))
    assert caught.value.field == "csv"


def test_dataset_rejects_mismatched_lengths():
    with pytest.raises(ConfigError, match="y"):
        Dataset(np.arange(3.0), np.arange(4.0))
