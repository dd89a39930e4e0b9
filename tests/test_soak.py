"""The soak script's small version: two rounds of two websocket sessions against one server, each as if alone."""

from __future__ import annotations

from bench.soak import soak


def test_two_rounds_of_two_sessions_finish_without_errors_and_report_the_servers_memory():
    rows = soak(rounds=2, sessions=2, steps=300, pause_s=0.5)
    assert [row["round"] for row in rows] == [1, 2]
    for row in rows:
        assert row["finished"] == 2 and row["errors"] == 0 and row["equal_to_solo"] == 2, row
        assert 0 < row["server_process_rss_mib"] <= row["tree_peak_rss_mib_so_far"]
