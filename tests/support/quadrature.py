"""The trapezoid rule in high precision, for the tests' independent references that integrate over log s."""

from __future__ import annotations

import mpmath


def trapezoid_rule(log_values: list) -> tuple[list, mpmath.mpf]:
    """The trapezoid rule on a uniform grid, from the log of the integrand at each node, in mpmath: each node's share
    of the integral (summing to 1) and log sum_k c_k exp(value_k), c_k = 1/2 at the two ends and 1 inside (add the
    log of the grid step for the log of the integral)."""
    peak = max(log_values)
    weights = [mpmath.exp(value - peak) for value in log_values]
    weights[0] /= 2
    weights[-1] /= 2
    total = mpmath.fsum(weights)
    return [weight / total for weight in weights], peak + mpmath.log(total)
