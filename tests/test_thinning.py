"""Snapshot thinning in the page: past the cap every other one goes and the stride doubles; first and latest kept."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bayesdemo.fitting.runner import Snapshot
from bayesdemo.workers.jobs import ThinnedSnapshots


def snapshots(count: int, every: int = 10) -> list[Snapshot]:
    """`count` snapshots at steps 0, every, 2 every, ... (the moments are irrelevant to thinning)."""
    return [Snapshot(i * every, 0.001 * i, 1.0 / (i + 1), np.zeros(2), np.ones(2), np.eye(2)) for i in range(count)]


def expected_steps(count: int, cap: int, every: int = 10) -> list[int]:
    """The thinning in closed form: with the smallest power-of-two stride s for which ceil(count / s) <= cap, the
    received indices 0, s, 2s, ... and then the latest when it is not one of them."""
    stride = 1
    while -(-count // stride) > cap:
        stride *= 2
    indices = list(range(0, count, stride))
    if count and indices[-1] != count - 1:
        indices.append(count - 1)
    return [i * every for i in indices]


def previous_thinning(batches: list[list[Snapshot]], cap: int) -> list[Snapshot]:
    """The page's thinning as Job._receive_progress wrote it before ThinnedSnapshots, statement for statement."""
    kept: list[Snapshot] = []
    stride, received, tail = 1, 0, None
    for new in batches:
        for snapshot in new:
            if received % stride == 0:
                if len(kept) >= cap:
                    kept, stride = kept[::2], stride * 2
                if received % stride == 0:
                    kept.append(snapshot)
                    tail = None
                else:
                    tail = snapshot
            else:
                tail = snapshot
            received += 1
    return kept + ([tail] if tail is not None else [])


def in_batches(items: list[Snapshot], sizes: list[int]) -> list[list[Snapshot]]:
    """`items` cut into consecutive batches of the given sizes, cycling through them (the worker's reports)."""
    batches, start, turn = [], 0, 0
    while start < len(items):
        size = sizes[turn % len(sizes)]
        batches.append(items[start : start + size])
        start, turn = start + size, turn + 1
    return batches


# Awkward cases: nothing, one, exactly the cap, one past it, a cap of 1 and 2, long runs past several doublings.
CASES = [(0, 5), (1, 5), (5, 5), (6, 5), (7, 1), (9, 2), (50, 50), (51, 50), (3001, 50), (10_000, 2000), (777, 7)]


@pytest.mark.parametrize(("count", "cap"), CASES)
def test_thinning_keeps_the_first_and_the_latest_within_the_cap_steps_increasing(count, cap):
    value = ThinnedSnapshots(cap).add(snapshots(count))
    thinned = value.snapshots
    steps = [snapshot.step for snapshot in thinned]
    assert steps == expected_steps(count, cap)
    if count:
        assert steps[0] == 0 and steps[-1] == (count - 1) * 10, "the first and the latest are always shown"
    assert value.count <= cap and len(thinned) <= cap + 1, "at most cap kept, and the latest after them"
    if count <= cap:
        assert len(thinned) == count, "under the cap every snapshot is kept"
    assert all(b > a for a, b in itertools.pairwise(steps)), "steps increase"


@pytest.mark.parametrize(("count", "cap"), CASES)
@pytest.mark.parametrize("sizes", [[1], [7], [3, 1, 40], [10_000]])
def test_thinning_in_batches_equals_the_previous_behaviour(count, cap, sizes):
    items = snapshots(count)
    batches = in_batches(items, sizes)
    thinned = ThinnedSnapshots(cap)
    for batch in batches:
        thinned = thinned.add(batch)
    assert thinned.received == count
    assert list(thinned.snapshots) == previous_thinning(batches, cap)
    assert all(a is b for a, b in zip(thinned.snapshots, previous_thinning(batches, cap), strict=True))


def test_an_older_value_never_changes_and_can_be_continued_on_its_own():
    items = snapshots(40)
    early = ThinnedSnapshots(8).add(items[:10])
    before = early.snapshots
    late = early.add(items[10:])  # grows the list the two values share, then thins it
    assert early.snapshots == before, "a reader of the older value sees it unchanged"
    branch = early.add(items[10:25])  # continued from the older value after a later one grew the shared list
    assert [s.step for s in branch.snapshots] == expected_steps(25, 8)
    assert [s.step for s in late.snapshots] == expected_steps(40, 8)
