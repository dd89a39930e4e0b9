"""The worker's half of snapshot thinning: sending only what the page keeps (and the latest) leaves the page with
exactly what it would keep receiving every snapshot; snapshots packed into arrays come back as they went."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from bayesdemo.fitting.runner import Snapshot
from bayesdemo.workers.messages import SnapshotBatch
from bayesdemo.workers.views import SnapshotFilter, ThinnedSnapshots


def snapshots(count: int, seed: int = 0) -> list[Snapshot]:
    """`count` snapshots at steps 0, 10, 20, ... with random moments (so a mix-up between them shows)."""
    generator = np.random.default_rng(seed)
    return [
        Snapshot(
            10 * i,
            0.001 * i,
            float(generator.normal()),
            generator.normal(size=2),
            generator.random(2),
            generator.random((2, 2)),
        )
        for i in range(count)
    ]


def sent_by_worker(batches: list[list[Snapshot]], cap: int) -> list[list[tuple[int, Snapshot]]]:
    """What the worker sends per report: the snapshots SnapshotFilter says the page needs, and each batch's latest."""
    thinning, place, sent = SnapshotFilter(cap), 0, []
    for batch in batches:
        report: list[tuple[int, Snapshot]] = []
        for snapshot in batch:
            if thinning.sends() or snapshot is batch[-1]:
                report.append((place, snapshot))
            place += 1
        sent.append(report)
    return sent


@pytest.mark.parametrize("cap", [1, 2, 3, 7, 50])
@pytest.mark.parametrize("sizes", [[1], [3, 1, 8], [40], [1, 200]])
def test_the_page_keeps_the_same_snapshots_from_what_the_worker_sends_as_from_every_snapshot(cap, sizes):
    everything = snapshots(600)
    batches, start, turn = [], 0, 0
    while start < len(everything):
        batches.append(everything[start : start + sizes[turn % len(sizes)]])
        start, turn = start + sizes[turn % len(sizes)], turn + 1
    reference = ThinnedSnapshots(cap)  # the page receiving every snapshot (tests/test_thinning.py checks it)
    thinned = ThinnedSnapshots(cap)
    sent = 0
    for batch, report in zip(batches, sent_by_worker(batches, cap), strict=True):
        reference = reference.add(batch)
        thinned = thinned.add_indexed(report)
        sent += len(report)
        assert [s.step for s in thinned.snapshots] == [s.step for s in reference.snapshots]
        assert all(a is b for a, b in zip(thinned.snapshots, reference.snapshots, strict=True))
    # Far fewer sent than taken: one latest per report, the appends (cap, then at most cap // 2 + 1 per doubling of the
    # stride) and one per doubling; the stride of 600 snapshots doubles at most log2(600) < 10 times.
    doublings = 10
    assert sent <= len(batches) + cap + doublings * (cap // 2 + 1) + doublings


def test_a_packed_batch_comes_back_as_the_snapshots_went_read_only():
    indexed = list(enumerate(snapshots(5, seed=3), start=7))
    batch = pickle.loads(pickle.dumps(SnapshotBatch.pack(indexed)))
    unpacked = batch.unpack()
    assert [place for place, _ in unpacked] == list(range(7, 12))
    for (_, went), (_, came) in zip(indexed, unpacked, strict=True):
        assert (came.step, came.seconds, came.loss) == (went.step, went.seconds, went.loss)
        for name in ("mean", "sd", "cov"):
            np.testing.assert_array_equal(getattr(came, name), getattr(went, name))  # float64 both ways: exact
            assert not getattr(came, name).flags.writeable
    assert batch.trained
    assert not SnapshotBatch.pack([(0, snapshots(1)[0])]).trained  # step 0 only: nothing trained yet
