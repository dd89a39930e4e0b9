"""Field checks shared by every config dataclass: each error names the field and the value."""

from __future__ import annotations

import math

MIN_SCALE = 1e-9  # smallest accepted sd: with values up to 1e6, squares and their inverses stay well inside float64


class ConfigError(ValueError):
    """A config field holds a value outside its allowed range; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field} {message}")
        self.field = field


def check_finite(field: str, value: float) -> float:
    """Return `value` as float, or raise ConfigError when it is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(field, f"must be finite, got {value!r}")
    return number


def check_range(
    field: str,
    value: float,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
) -> float:
    """Finite `value` with low <= value <= high (low < value when low_open)."""
    number = check_finite(field, value)
    if low is not None and (number <= low if low_open else number < low):
        sign = ">" if low_open else ">="
        raise ConfigError(field, f"must be {sign} {low:g}, got {value!r}")
    if high is not None and number > high:
        raise ConfigError(field, f"must be <= {high:g}, got {value!r}")
    return number


def check_scale(field: str, value: float, high: float = 1e6) -> float:
    """A finite sd (or other scale) with MIN_SCALE <= value <= high."""
    number = check_finite(field, value)
    if number <= 0:
        raise ConfigError(field, f"must be > 0, got {value!r}")
    return check_range(field, number, MIN_SCALE, high)


def check_int(field: str, value: object, low: int, high: int) -> int:
    """Integer `value` with low <= value <= high (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ConfigError(field, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(field, f"must be between {low} and {high}, got {value!r}")
    return value


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> str:
    """`value` must be one of `choices`."""
    if value not in choices:
        raise ConfigError(field, f"must be one of {', '.join(choices)}, got {value!r}")
    return value
