"""Synthetic data and CSV loading: seeded, independent of global RNGs, and defensive about bad files."""

import csv
import math
import random
import re
import subprocess
import sys
import tomllib
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from bayesdemo.core import data as data_module
from bayesdemo.core.data import MAX_CSV_BYTES, DataConfig, Dataset, generate, load_csv, parse_csv
from bayesdemo.core.validation import ConfigError


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


def test_rows_past_the_limit_are_refused_before_the_rest_is_read():
    # Row 13 would be refused as not numeric if it were read: the row limit must stop the reading first.
    content = b"x,y\n" + b"".join(b"%d,%d\n" % (i, 2 * i) for i in range(11)) + b"abc,def\n"
    with pytest.raises(ConfigError, match="at most 10 data rows") as caught:
        parse_csv(content, max_rows=10)
    assert caught.value.field == "csv"
    assert parse_csv(content[: content.index(b"10,20")], max_rows=10).n == 10  # 10 rows are still fine


def test_a_20_mb_file_of_short_rows_is_refused_in_little_memory_and_time():
    # Measured in a fresh process (peak RSS is per process): a 19.99 MB file of `0,0` rows (5 million rows, five
    # times the limit) grew the peak by 646 MiB and took 4.8 s when every row was held before counting; reading row
    # by row it grows by about 30 MiB in about 1 s. The bounds are generous for a busy machine.
    script = (
        "import resource, sys, time\n"
        "from bayesdemo.core.data import parse_csv\n"
        "content = b'x,y\\n' + b'0,0\\n' * 4_997_499\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    parse_csv(content)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
        "growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024\n"
        "print(f'{growth:.0f} {time.perf_counter() - start:.2f}')\n"
    )
    repository = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", script], cwd=repository, capture_output=True, text=True, timeout=120)
    message, numbers = result.stdout.strip().splitlines()
    growth_mib, seconds = map(float, numbers.split())
    assert "at most 1,000,000 data rows" in message
    assert growth_mib < 200 and seconds < 20, (growth_mib, seconds)


def test_old_mac_line_endings_are_read():
    data = parse_csv(b"x,y\r0,1\r1,3\r2,5.5\r")
    np.testing.assert_array_equal(data.x, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(data.y, [1.0, 3.0, 5.5])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b'x,y\n1,2\n"' + b"1" * 200_000 + b",3\n", "longer than 131,072 characters near line 3"),
        (b"x,y\n" + b"1" * 200_000 + b",3\n", "longer than 131,072 characters near line 2"),
    ],
)
def test_a_runaway_cell_is_named_in_words_not_in_the_csv_modules_terms(content, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_csv(content)
    assert fragment in str(caught.value) and "field limit" not in str(caught.value)


def test_the_size_limit_speaks_of_the_uploaders_megabytes_and_a_big_file_reports_its_real_size(tmp_path):
    # Streamlit's uploader (server.maxUploadSize, in MB of 1,000,000 bytes in the browser) and the parser agree.
    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 1_000_000 == MAX_CSV_BYTES
    big = tmp_path / "big.csv"
    with big.open("wb") as handle:
        handle.truncate(180_000_000)  # a sparse file: 180 MB by its size, no disk used
    with pytest.raises(ConfigError) as caught:
        load_csv(str(big))
    assert str(caught.value) == "csv must be at most 20.0 MB, got 180.0 MB"
    with pytest.raises(ConfigError) as caught:
        parse_csv(b"x,y\n" + b"1" * (MAX_CSV_BYTES + 1))
    assert str(caught.value) == "csv must be at most 20.0 MB, got more than 20.0 MB"


def exact_least_squares(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares of (x, y) in exact rational arithmetic from the float values, rounded once at the end."""
    xs, ys = [Fraction(value) for value in x.tolist()], [Fraction(value) for value in y.tolist()]
    x_mean, y_mean = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((a - x_mean) * (b - y_mean) for a, b in zip(xs, ys, strict=True)) / sum((a - x_mean) ** 2 for a in xs)
    return float(slope), float(y_mean - slope * x_mean)


@pytest.mark.parametrize(
    "config",
    [
        DataConfig(n=2, seed=3),
        DataConfig(n=300, slope=-2.0, intercept=1e6, noise_sd=5.0, seed=1),
        DataConfig(n=300, x_min=1e5, x_max=1e5 + 1e-3, noise_sd=1e-6, seed=2),  # x far from 0 in a narrow range
        DataConfig(n=300, slope=1e6, noise_sd=1e-9, x_min=-1e6, x_max=1e6, seed=4),
    ],
)
def test_least_squares_match_exact_rational_arithmetic(config):
    data = generate(config)
    slope, intercept = data.least_squares()
    exact_slope, exact_intercept = exact_least_squares(data.x, data.y)
    # The centred formula loses a few ulps per sum; 1e-11 relative is far above that and far below the 1e-8 that
    # least squares on the raw (x, 1) design loses when x sits at 1e5 in a range 1e-3 wide.
    assert slope == pytest.approx(exact_slope, rel=1e-11)
    assert intercept == pytest.approx(exact_intercept, rel=1e-11, abs=1e-11 * abs(exact_slope) * 1e5)


def test_generate_makes_each_dataset_once_and_keeps_only_the_most_recent(monkeypatch):
    monkeypatch.setattr(data_module, "GENERATED_CACHE_POINTS", 250)
    monkeypatch.setattr(data_module, "_generated", OrderedDict())
    first = generate(DataConfig(n=100, seed=11))
    assert generate(DataConfig(n=100, seed=11)) is first  # a class opening one link generates it once
    generate(DataConfig(n=100, seed=12))
    generate(DataConfig(n=100, seed=13))  # 300 points: the least recently used (seed 11) is let go
    again = generate(DataConfig(n=100, seed=11))
    assert again is not first
    np.testing.assert_array_equal(again.y, first.y)
    # The numbers are slope * x + intercept + noise from the config's own generator, bit for bit.
    rng = np.random.default_rng(11)
    x = rng.uniform(0.0, 1.0, size=100)
    np.testing.assert_array_equal(again.x, x)
    np.testing.assert_array_equal(again.y, 3.0 * x + 1.0 + rng.normal(0.0, 0.1, size=100))


def test_rows_past_the_limit_are_counted_before_any_cell_is_read(monkeypatch):
    def unread(*arguments, **options):
        raise AssertionError("a cell was read")

    monkeypatch.setattr(data_module, "_parse_number", unread)
    monkeypatch.setattr(data_module.np, "loadtxt", unread)
    # Twelve rows, the first not numeric: the count refuses the file before that row is read.
    content = b"x,y\nabc,def\n" + b"".join(b"%d,%d\n" % (i, 2 * i) for i in range(11))
    with pytest.raises(ConfigError, match="at most 10 data rows, got 12") as caught:
        parse_csv(content, max_rows=10)
    assert caught.value.field == "csv"
    blank = b"x,y\n\n \n , \n\t\n" + b"".join(b"%d,%d\r\n" % (i, 2 * i) for i in range(11))  # blank rows not counted
    with pytest.raises(ConfigError, match="at most 10 data rows, got 11"):
        parse_csv(blank, max_rows=10)


def reference_rows(content: bytes) -> tuple[list[float], list[float]]:
    """The file as the csv module and float() read it: blank rows skipped, the header dropped, cells stripped."""
    text = content.decode("utf-8-sig")
    first = text.strip().splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    lines = re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+", text)
    rows = [row for row in csv.reader(lines, delimiter=delimiter) if any(cell.strip() for cell in row)][1:]
    if delimiter == ";":
        rows = [[cell.replace(",", ".") for cell in row] for row in rows]
    return [float(row[0].strip()) for row in rows], [float(row[1].strip()) for row in rows]


AWKWARD_FILES = {
    "byte order mark and CRLF": b"\xef\xbb\xbfx,y\r\n1,2\r\n-3.5,4e-3\r\n",
    "old Mac line ends, no final one": b"x,y\r0.1,0.2\r0.3,0.4",
    "decimal commas": b"x;y\n1,5;2\n-0,25;1e3\n3;4,125\n",
    "blank and whitespace lines": b"\n\n x , Y \n\n1,2\n   \n , \n\t\n3,4\n\n\x0c\n",
    "spaces, tabs and form feeds around cells": b"x,y\n 1 , 2 \n\t3\t,4\x0b\n\x1c5,6\x1f\n",
    "number forms": b"x,y\n+1e3,.5\n1.,-0\n-0.0,5e-324\n0.1000000000000000055511151231257827,1E+15\n",
    "long digits": b"x,y\n3.14159265358979323846264338327950288,2.718281828459045235360287\n1,2\n",
    "quoted cells": b'"x","y"\n"1","2"\n"3.5",4\n5,"6" \n" 7 " ,8\n',
    "quoted decimal commas": b'x;y\n"1,5";2\n3;"4,25"\n',
}
ROW_BY_ROW_FILES = {  # files the numpy path leaves to the csv module's reader: a quoted line end, numbers loadtxt
    # does not read as float() does, non-ASCII text
    "a quoted line end": b'x,y\n"1\n",2\n3,"4\r\n"\n5,6\n',
    "underscores in numbers": b"x,y\n1_000,2\n3,4_0.5\n",
    "non-ASCII spaces around cells": "x,y\n\u00a01,2\u2003\n3,4\n".encode(),
}


@pytest.mark.parametrize("name", AWKWARD_FILES)
def test_the_numpy_path_reads_awkward_files_as_the_csv_module_and_float_do(name, monkeypatch):
    content = AWKWARD_FILES[name]
    expected_x, expected_y = reference_rows(content)

    def no_reader(*arguments, **options):
        raise AssertionError("the row-by-row reader was used")

    monkeypatch.setattr(data_module.csv, "reader", no_reader)
    data = parse_csv(content)
    # Both call Python's float() on the same stripped text: equal bit for bit.
    assert data.x.tolist() == expected_x and data.y.tolist() == expected_y


@pytest.mark.parametrize("name", ROW_BY_ROW_FILES)
def test_files_the_numpy_path_leaves_are_read_row_by_row_as_before(name):
    data = parse_csv(ROW_BY_ROW_FILES[name])
    assert (data.x.tolist(), data.y.tolist()) == reference_rows(ROW_BY_ROW_FILES[name])


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"x,y\n1,2\nnan,4\n", "x must be finite, got 'nan' in row 3"),
        (b"x,y\n1,2\n3,2e15\n", "y must be at most 1e+15 in size, got '2e15' in row 3"),
        (b"x,y\n1,2\n3,\n", "y must be numeric, got '' in row 3"),
        (b"x,y\n1,2\n3,4,5\n", "row 3 must have 2 cells (x,y), got 3"),
        (b"x,y\n1,2\n0x10,4\n", "x must be numeric, got '0x10' in row 3"),
        (b'x,y\n"1,2"\n3,4\n5,6\n', "row 2 must have 2 cells (x,y), got 1"),  # one quoted cell, not two
        (b'x,y\n"1""",2\n3,4\n', "x must be numeric, got '1\"' in row 2"),  # a doubled quote is a quote
        (b'x,y\n1"2",3\n4,5\n', "x must be numeric, got '1\"2\"' in row 2"),  # a quote inside a cell is a character
        (b'x,y\n "1",3\n4,5\n', "x must be numeric, got '\"1\"' in row 2"),  # and so is one after a space
    ],
)
def test_a_plain_file_with_a_bad_cell_is_named_by_row_and_cell(content, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_csv(content)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "config",
    [
        DataConfig(n=3, seed=5),
        DataConfig(n=300, slope=1e6, noise_sd=0.001, seed=6),  # the line explains nearly all of y's spread
        DataConfig(n=300, x_min=1e5, x_max=1e5 + 1.0, noise_sd=2.0, intercept=-1e6, seed=7),
    ],
)
def test_residual_sd_matches_exact_rational_arithmetic_and_is_kept(config):
    data = generate(config)
    slope, intercept = data.least_squares()
    # The residuals of the fitted line, summed exactly: the only rounding left is the sd's own.
    residual_sq = sum(
        (Fraction(b) - Fraction(slope) * Fraction(a) - Fraction(intercept)) ** 2
        for a, b in zip(data.x.tolist(), data.y.tolist(), strict=True)
    )
    expected = math.sqrt(residual_sq / (data.n - 2))
    # Each residual is rounded in float64 to about 1e-16 of |y|: with y near 1e6 and residuals near 1e-3 that is up to
    # 2e-7 of each residual (2.7e-9 of the sd measured, the errors averaging out); 1e-6 relative bounds it and is far
    # below any change the page's 4 significant figures could show.
    assert data.residual_sd() == pytest.approx(expected, rel=1e-6)
    assert data._memo["residual_sd"] == data.residual_sd()  # kept: a page run asks again for free
    assert Dataset(np.array([0.0, 1.0]), np.array([1.0, 3.0])).residual_sd() is None  # n = 2: no degrees of freedom
