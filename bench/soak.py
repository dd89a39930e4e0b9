"""Soak test: rounds of concurrent websocket sessions against one server; its memory after each round.

Run: `python bench/soak.py` (12 rounds of 20 sessions, each a 2,000-step Bayes by Backprop fit to the end, its
download compared with the solo run; --rounds, --sessions, --steps, --pause-s, --json FILE). Between rounds it waits
past the heartbeat timeout, so the closed sessions' jobs have ended. The server's memory should level off, not grow
with the sessions served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bayesdemo.workers.jobs import HEARTBEAT_TIMEOUT_S  # noqa: E402
from bench.load_test import MemorySampler, drive_websocket_sessions, memory_kib, plan_sessions  # noqa: E402
from bench.server import streamlit_server  # noqa: E402


def soak(rounds: int, sessions: int, steps: int, pause_s: float) -> list[dict]:
    """Run the rounds against one server; one row per round."""
    rows = []
    log_path = Path(tempfile.mkdtemp(prefix="bayesdemo-soak-")) / "server.log"
    with streamlit_server(log_path, {"BAYESDEMO_MAX_RUNNING_JOBS": "2"}) as (base_url, server_pid):
        sampler = MemorySampler(server_pid)
        sampler.start()
        try:
            for number in range(1, rounds + 1):
                plan = plan_sessions(sessions, "bbb", steps)
                started = time.monotonic()
                asyncio.run(drive_websocket_sessions(base_url, plan, steps, 300.0, sampler))
                time.sleep(pause_s)
                row = {
                    "round": number,
                    "seconds": round(time.monotonic() - started, 1),
                    "finished": sum(session.finished for session in plan),
                    "errors": sum(len(session.errors) for session in plan),
                    "equal_to_solo": sum(session.equal_to_solo for session in plan),
                    "server_process_rss_mib": round(memory_kib(server_pid)[0] / 1024),
                    "tree_peak_rss_mib_so_far": round(sampler.peak_rss_kib / 1024),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
        finally:
            sampler.done.set()
            sampler.join()
    return rows


def main() -> None:
    """Parse arguments, soak, print a row per round (and write them as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--pause-s", type=float, default=HEARTBEAT_TIMEOUT_S + 5, help="wait after each round")
    parser.add_argument("--json", type=Path, default=None)
    arguments = parser.parse_args()
    rows = soak(arguments.rounds, arguments.sessions, arguments.steps, arguments.pause_s)
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2) + "\n")
    clean = all(row["errors"] == 0 and row["equal_to_solo"] == arguments.sessions for row in rows)
    sys.exit(0 if clean else 1)


if __name__ == "__main__":
    main()
