"""Synthetic linear data (seeded) and defensive CSV loading: the dataset every fit and reference shares."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import stat
import threading
from array import array
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from bayesdemo.core.validation import ConfigError, check_int, check_range, check_scale

MAX_POINTS = 1_000_000  # largest n accepted from the generator or a CSV
MAX_CSV_BYTES = 20 * 1000 * 1000  # largest CSV accepted, in bytes: 20 MB, the limit Streamlit's uploader shows
MIN_RELATIVE_X_WIDTH = 1e-9  # x_max - x_min must be at least this times max(1, |x_min|, |x_max|)
MAX_ABS_VALUE = 1e15  # largest |x| or |y| accepted: sums of squares of a million such values stay finite
# Generated datasets kept for reuse (the most recently used, at most this many points in all, 16 bytes each): a class
# opening one link of a million points generates it once, and its statistics are computed once (Dataset.memo).
GENERATED_CACHE_POINTS = 2 * MAX_POINTS

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """How to simulate y = slope * x + intercept + N(0, noise_sd^2), x ~ U(x_min, x_max) (docs/MATH.md, Model)."""

    n: int = 100  # number of data points
    slope: float = 3.0  # true slope w used to simulate y
    intercept: float = 1.0  # true intercept b used to simulate y
    noise_sd: float = 0.1  # true noise sd s used to simulate y (also the known noise sd of the model; >= 1e-9)
    x_min: float = 0.0  # lower end of the uniform x range
    x_max: float = 1.0  # upper end of the uniform x range
    seed: int = 0  # seed of the data's own random generator

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_int("n", self.n, 2, MAX_POINTS))
        check_range("slope", self.slope, -1e6, 1e6)
        check_range("intercept", self.intercept, -1e6, 1e6)
        check_scale("noise_sd", self.noise_sd)
        check_range("x_min", self.x_min, -1e6, 1e6)
        check_range("x_max", self.x_max, -1e6, 1e6)
        if not self.x_max > self.x_min:
            raise ConfigError("x_max", f"must be > x_min ({self.x_min!r}), got {self.x_max!r}")
        # Narrower ranges draw (nearly) equal x's in floating point: the slope would not be identified.
        smallest_width = MIN_RELATIVE_X_WIDTH * max(1.0, abs(self.x_min), abs(self.x_max))
        if self.x_max - self.x_min < smallest_width:
            raise ConfigError(
                "x_max", f"must exceed x_min ({self.x_min!r}) by at least {smallest_width:g}, got {self.x_max!r}"
            )
        object.__setattr__(self, "seed", check_int("seed", self.seed, 0, 2**32 - 1))


@dataclass(frozen=True)
class LineMoments:
    """Means, centred sums of squares and products, and raw sums of x and y (docs/MATH.md, Centring)."""

    n: int
    x_mean: float  # xbar, refined by a second pass
    y_mean: float  # ybar, refined by a second pass; a constant y's own value exactly
    x_scatter: float  # sum (x - xbar)^2
    xy_scatter: float  # sum (x - xbar)(y - ybar)
    y_scatter: float  # sum (y - ybar)^2
    x_sum: float  # sum x
    y_sum: float  # sum y
    xx_sum: float  # sum x^2
    xy_sum: float  # sum x y
    yy_sum: float  # sum y^2


def _refined_mean(values: np.ndarray) -> float:
    """Mean of `values` (n,) corrected by a second pass over the residuals; a constant array's value exactly."""
    first = values[0]
    if np.all(values == first):
        return float(first)
    mean = values.mean()
    return float(mean + (values - mean).mean())


@dataclass(frozen=True)
class Dataset:
    """Inputs x and targets y, each float64 of shape (n,); immutable."""

    x: np.ndarray
    y: np.ndarray
    source: str = field(default="synthetic")  # where the data came from, for display
    # Values derived from x and y (moments, least squares, sufficient statistics), each computed once: see `memo`.
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        x = np.array(self.x, dtype=np.float64).reshape(-1)
        y = np.array(self.y, dtype=np.float64).reshape(-1)
        if x.shape != y.shape:
            raise ConfigError("y", f"must have as many values as x ({x.size}), got {y.size}")
        if x.size < 2:
            raise ConfigError("n", f"must be at least 2 data points, got {x.size}")
        if x.size > MAX_POINTS:
            raise ConfigError("n", f"must be at most {MAX_POINTS} data points, got {x.size}")
        for name, values in (("x", x), ("y", y)):
            if np.all(np.abs(values) <= MAX_ABS_VALUE):  # one pass: NaN fails the comparison, as +-inf does
                continue
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                raise ConfigError(name, f"must be finite, got {float(values[bad[0]])!r} in row {bad[0] + 1}")
            huge = np.flatnonzero(np.abs(values) > MAX_ABS_VALUE)
            value, row = float(values[huge[0]]), huge[0] + 1
            raise ConfigError(name, f"must be at most {MAX_ABS_VALUE:g} in size, got {value!r} in row {row}")
        if np.ptp(x) == 0.0:
            raise ConfigError("x", f"must not be constant (every x is {float(x[0])!r}): the slope is not identified")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    @property
    def n(self) -> int:
        """Number of data points."""
        return int(self.x.size)

    def __getstate__(self) -> dict[str, Any]:
        """The fields for pickling (to a training process), with a copy of the memo taken at once: a page run of
        another session sharing these data may add to it meanwhile."""
        return {**self.__dict__, "_memo": dict(self._memo)}

    def memo(self, name: str, make: Callable[[], T]) -> T:
        """The value `make()` computed once for these data and kept under `name` (x and y never change)."""
        if name not in self._memo:
            self._memo[name] = make()
        return self._memo[name]

    def moments(self) -> LineMoments:
        """Means, centred and raw sums of x and y in O(n) vectorised passes, once (docs/MATH.md, Centring)."""
        return self.memo("moments", self._moments)

    def _moments(self) -> LineMoments:
        """Compute `moments` (pairwise sums, no BLAS: its threads contend for a busy server's cores)."""
        x, y = self.x, self.y
        x_mean, y_mean = _refined_mean(x), _refined_mean(y)
        x_centred, y_centred = x - x_mean, y - y_mean
        return LineMoments(
            n=self.n,
            x_mean=x_mean,
            y_mean=y_mean,
            x_scatter=float(np.square(x_centred).sum()),
            xy_scatter=float((x_centred * y_centred).sum()),
            y_scatter=float(np.square(y_centred).sum()),
            x_sum=float(x.sum()),
            y_sum=float(y.sum()),
            xx_sum=float(np.square(x).sum()),
            xy_sum=float((x * y).sum()),
            yy_sum=float(np.square(y).sum()),
        )

    def least_squares(self) -> np.ndarray:
        """Ordinary least-squares (slope, intercept), shape (2,): where noise injection's means go (docs/MATH.md).

        From the centred sums: slope = sum (x - xbar)(y - ybar) / sum (x - xbar)^2, intercept = ybar - slope xbar.
        """
        return self.memo("least_squares", self._least_squares).copy()

    def _least_squares(self) -> np.ndarray:
        """Compute `least_squares` (through QR of the design when the centred sum of squares underflows)."""
        moments = self.moments()
        if moments.x_scatter > 0.0 and math.isfinite(moments.x_scatter):
            slope = moments.xy_scatter / moments.x_scatter
            return np.array([slope, moments.y_mean - slope * moments.x_mean])
        design = np.column_stack([self.x, np.ones_like(self.x)])  # x spread below 1e-154: squares underflow
        solution, *_ = np.linalg.lstsq(design, self.y, rcond=None)
        return np.asarray(solution, dtype=np.float64)

    def residual_sd(self) -> float | None:
        """The least-squares residual sd sqrt(RSS / (n - 2)), once; None for n = 2 (no degrees of freedom left)."""
        return self.memo("residual_sd", self._residual_sd)

    def _residual_sd(self) -> float | None:
        """Compute `residual_sd` from the residuals themselves: RSS from the sums would cancel away every digit when
        the line explains nearly all of y's spread (slope 1e6, noise sd 0.001)."""
        degrees = self.n - 2
        if degrees < 1:
            return None
        slope, intercept = self.least_squares()
        residuals = self.y - (slope * self.x + intercept)
        return float(math.sqrt(float(np.square(residuals).sum()) / degrees))

    def to_csv(self) -> str:
        """The data as CSV text with header `x,y`."""
        lines = ["x,y"] + [f"{a!r},{b!r}" for a, b in zip(self.x.tolist(), self.y.tolist(), strict=True)]
        return "\n".join(lines) + "\n"


_generated: OrderedDict[DataConfig, Dataset] = OrderedDict()  # most recently used last (GENERATED_CACHE_POINTS)
_generated_lock = threading.Lock()  # page runs of several sessions generate at once


def generate(config: DataConfig) -> Dataset:
    """Simulate the dataset of `config` with its own generator: same seed -> same data, whatever else ran.

    The same config returns the same (immutable) Dataset while it is among the most recently generated.
    """
    with _generated_lock:
        if config in _generated:
            _generated.move_to_end(config)
            return _generated[config]
    rng = np.random.default_rng(config.seed)
    x = rng.uniform(config.x_min, config.x_max, size=config.n)
    # slope x + intercept + noise, in place in that order: the same numbers as the expression, fewer n-sized arrays.
    y = config.slope * x
    y += config.intercept
    y += rng.normal(0.0, config.noise_sd, size=config.n)
    dataset = Dataset(x, y, source=f"synthetic (seed {config.seed})")
    with _generated_lock:
        _generated[config] = dataset
        _generated.move_to_end(config)
        while sum(kept.n for kept in _generated.values()) > GENERATED_CACHE_POINTS:
            _generated.popitem(last=False)
    return dataset


def _parse_number(text: str, column: str, row: int, decimal_comma: bool = False) -> float:
    """One CSV cell as a finite float of bounded size, or ConfigError naming the column, row and cell."""
    cell = text.strip()
    try:
        value = float(cell.replace(",", ".") if decimal_comma else cell)
    except ValueError:
        raise ConfigError(column, f"must be numeric, got {cell[:40]!r} in row {row}") from None
    if not math.isfinite(value):
        raise ConfigError(column, f"must be finite, got {cell[:40]!r} in row {row}")
    if abs(value) > MAX_ABS_VALUE:
        raise ConfigError(column, f"must be at most {MAX_ABS_VALUE:g} in size, got {cell[:40]!r} in row {row}")
    return value


def _looks_numeric(cells: list[str]) -> bool:
    """Whether every cell reads as a number (a data row where the header should be)."""
    try:
        for cell in cells:
            float(cell.strip().replace(",", "."))
    except ValueError:
        return False
    return bool(cells)


def _check_header(first_row: list[str], delimiter: str) -> None:
    """The first row must name exactly the columns x and y; say what is missing, extra or wrong."""
    header = [cell.strip().lower() for cell in first_row]
    if header == ["x", "y"]:
        return
    shown = delimiter.join(first_row)[:60]
    if _looks_numeric(first_row):
        raise ConfigError("csv", f"has no header: its first row {shown!r} is data. Add a first line `x,y`")
    if len(header) == 1 and "\t" in first_row[0]:
        raise ConfigError("csv", f"header {shown!r} is tab-separated: separate the columns with commas")
    missing = [name for name in ("x", "y") if name not in header]
    extra = [cell for cell in header if cell not in ("x", "y")]
    if missing:
        raise ConfigError("csv", f"header {shown!r} is missing column {' and '.join(missing)}: expected `x,y`")
    if extra:
        raise ConfigError("csv", f"header {shown!r} has extra columns {', '.join(extra)[:40]}: keep only `x,y`")
    raise ConfigError("csv", f"header must be exactly `x,y` (each once, in that order), got {shown!r}")


def _size_text(size: int) -> str:
    """A byte count as MB (or kB below one MB; 1 MB = 1,000,000 bytes, as Streamlit's uploader counts), for messages."""
    if size >= 1000 * 1000:
        return f"{size / (1000 * 1000):.1f} MB"
    return f"{size / 1000:.1f} kB"


def _too_big(max_bytes: int, size: int | None) -> ConfigError:
    """The error for a file of `size` bytes (None: unknown, more than allowed) over the limit of `max_bytes`."""
    got = _size_text(size) if size is not None else ""
    if got in ("", _size_text(max_bytes)):  # 20,000,001 bytes must not read "at most 20.0 MB, got 20.0 MB"
        got = f"more than {_size_text(max_bytes)}"
    return ConfigError("csv", f"must be at most {_size_text(max_bytes)}, got {got}")


# One line with its ending: \r\n, \r (old Mac files) and \n all end a line; the last line may have no ending.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_FIRST_LINE = re.compile(r"\s*([^\r\n]*)")  # the first line with anything but white space on it


# ASCII characters str.strip() removes from a cell, the line ends apart: a line of only these and delimiters is a
# blank row to the reader, skipped.
_BLANK_ASCII = " \t\x0b\x0c\x1c\x1d\x1e\x1f"
# A bytes.translate table: a line end (\r or \n) becomes \n, any other byte x. With blanks and delimiters deleted
# as well, the lines of content are the x's right after a \n (and an x first).
_LINE_MARKS = bytes(10 if code in (10, 13) else ord("x") for code in range(256))


def _marked_lines(marks: bytes) -> int:
    """How many lines of a marked text (_LINE_MARKS) hold an x."""
    return marks.count(b"\nx") + marks.startswith(b"x")


def _longest_line(data: bytes) -> int:
    """Length of the longest line of `data` in bytes, line ends not counted."""
    if len(data) <= csv.field_size_limit():
        return len(data)
    codes = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero((codes == 10) | (codes == 13))
    return int(np.diff(np.concatenate(([-1], ends, [codes.size]))).max()) - 1


def _unquoted(text: str, delimiter: str) -> str | None:
    """`text` without its quotes, where every quote opens a cell and is closed in it with no delimiter, quote or line
    end between: the reader reads such a cell as the text with the quotes taken out. Else None."""
    quoted = re.compile(f'(?:^|(?<=[{re.escape(delimiter)}\r\n]))"[^"{re.escape(delimiter)}\r\n]*"')
    _, cells = quoted.subn("", text)
    if 2 * cells != text.count('"'):
        return None
    return text.replace('"', "")


def _parse_plain(text: str, delimiter: str, max_rows: int, name: str) -> Dataset | None:
    """A plain file (ASCII, no NUL, quotes only around whole cells: _unquoted) counted row by row in bytes, refused
    past `max_rows` before any cell is read, then parsed by numpy's loadtxt. None where the row-by-row reader must
    decide: any other file, or one with fewer than 2 data rows, a line longer than the csv module reads, or a cell
    loadtxt refuses or reads as past the limits (the reader then names the row and cell as it always has).

    A row is a line with anything but blanks and delimiters, as the reader skips blank rows; the numbers are those of
    Python's float() of each stripped cell, which loadtxt calls.
    """
    if not text.isascii() or "\x00" in text:
        return None
    if '"' in text:
        unquoted = _unquoted(text, delimiter)
        if unquoted is None:
            return None
        text = unquoted
    data = text.encode("ascii")
    blanks = (_BLANK_ASCII + delimiter).encode()
    rows = _marked_lines(data.translate(_LINE_MARKS, blanks))  # the header included
    if rows > max_rows + 1:
        raise ConfigError("csv", f"must have at most {max_rows:,} data rows, got {rows - 1:,}")
    if rows < 3 or _longest_line(data) > csv.field_size_limit():
        return None
    blank_lines = _marked_lines(data.translate(_LINE_MARKS)) - rows  # lines of blanks and delimiters only
    first = re.compile(b"[^" + re.escape(blanks) + b"\r\n]").search(data)
    if first is None:
        return None
    start = max(data.rfind(b"\n", 0, first.start()), data.rfind(b"\r", 0, first.start())) + 1
    end = re.compile(rb"\r\n|\r|\n").search(data, first.start())
    header = text[start : end.start() if end else len(data)]
    _check_header(header.split(delimiter), delimiter)
    body_start = end.end() if end else len(data)
    stream = io.BytesIO(data)  # shares the bytes: loadtxt reads them in chunks, not as one copy in UCS-4
    if b"\r" in data or blank_lines > 0 or delimiter == ";":
        body = data[body_start:].replace(b"\r\n", b"\n").replace(b"\r", b"\n")  # loadtxt refuses a lone \r
        if blank_lines > 0:
            body = re.sub(b"(?m)^[" + re.escape(blanks) + b"]+(?:\n|\\Z)", b"", body)
        if delimiter == ";":
            body = body.replace(b",", b".")  # the decimal comma, as the reader reads it
        stream, body_start = io.BytesIO(body), 0
    del data
    stream.seek(body_start)
    try:
        values = np.loadtxt(
            stream, delimiter=delimiter, comments=None, quotechar=None, dtype=np.float64, ndmin=2, encoding="ascii"
        )
    except ValueError:
        return None
    if values.shape != (rows - 1, 2) or not np.all(np.abs(values) <= MAX_ABS_VALUE):
        return None
    return Dataset(values[:, 0], values[:, 1], source=name)


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` one at a time (a list of all of them would take ~50 bytes per line at once)."""
    return (match.group() for match in _LINE.finditer(text))


def _unreadable(error: csv.Error, line: int) -> str:
    """Python's csv error as a sentence about the file."""
    if "field larger than field limit" in str(error):
        return (
            f'has a cell longer than {csv.field_size_limit():,} characters near line {line}: is a quote (") left '
            "open, or are the rows not separated by new lines?"
        )
    return f'is not readable as CSV near line {line}: check its quotes (") and separators'


def parse_csv(
    content: bytes | str, *, max_bytes: int = MAX_CSV_BYTES, name: str = "upload", max_rows: int = MAX_POINTS
) -> Dataset:
    """Parse CSV text with a header naming columns `x` and `y` into a Dataset of at most `max_rows` points.

    Cells are separated by commas, or by semicolons (then a decimal comma is read too: `1,5;2` is x=1.5, y=2).
    Lines may end in \\n, \\r\\n or \\r. A plain file (ASCII, quotes only around whole cells) has its rows counted and
    is refused past `max_rows` before any cell is read, then is parsed by numpy (about 0.3 s for a million rows); any
    other file, or one with a problem to name, is read row by row and refused as soon as it passes `max_rows`.
    """
    size = len(content)
    if size > max_bytes:
        raise _too_big(max_bytes, size)
    if isinstance(content, bytes):
        if b"\x00" in content[:8192]:
            raise ConfigError("csv", "must be a text file, got binary data")
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ConfigError("csv", "must be UTF-8 text, got undecodable bytes") from None
    else:
        text = content.lstrip("\ufeff")
    if not text or text.isspace():
        raise ConfigError("csv", "is empty: expected a header `x,y` and at least 2 rows")
    first = _FIRST_LINE.match(text)
    first_line = first.group(1) if first else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    decimal_comma = delimiter == ";"
    plain = _parse_plain(text, delimiter, max_rows, name)
    if plain is not None:
        return plain
    # Rows are read one at a time and refused as soon as there are too many: a large file is never held as lists of
    # strings (docs/classroom.md, Limits that keep one student from stalling the class).
    reader = csv.reader(_lines(text), delimiter=delimiter)
    xs, ys = array("d"), array("d")
    row_number = 0  # rows with content so far; the header is row 1
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            row_number += 1
            if row_number == 1:
                _check_header(row, delimiter)
                continue
            if row_number > max_rows + 1:
                raise ConfigError("csv", f"must have at most {max_rows:,} data rows, got more")
            if len(row) != 2:
                raise ConfigError("csv", f"row {row_number} must have 2 cells (x,y), got {len(row)}")
            xs.append(_parse_number(row[0], "x", row_number, decimal_comma))
            ys.append(_parse_number(row[1], "y", row_number, decimal_comma))
    except csv.Error as error:  # a cell past the size limit, ...
        raise ConfigError("csv", _unreadable(error, reader.line_num)) from None
    if row_number == 0:
        raise ConfigError("csv", "is empty: expected a header `x,y` and at least 2 rows")
    if len(xs) < 2:
        raise ConfigError("csv", f"must have at least 2 data rows, got {len(xs)}")
    return Dataset(np.frombuffer(xs), np.frombuffer(ys), source=name)


def load_csv(path: str, *, max_bytes: int = MAX_CSV_BYTES) -> Dataset:
    """Read and parse a CSV file (see `parse_csv`), refusing files larger than `max_bytes` before reading them."""
    with open(path, "rb") as handle:
        status = os.fstat(handle.fileno())
        if stat.S_ISREG(status.st_mode) and status.st_size > max_bytes:
            raise _too_big(max_bytes, status.st_size)
        content = handle.read(max_bytes + 1)  # a pipe or device has no size to check first
    if len(content) > max_bytes:
        raise _too_big(max_bytes, None)
    return parse_csv(content, max_bytes=max_bytes, name=path)
