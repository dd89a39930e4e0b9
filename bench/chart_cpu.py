"""Server CPU time per live chart update per session: K websocket sessions train at once against one server.

Run: `python bench/chart_cpu.py` (6 sessions, a 20 s window, 2 rounds; --sessions, --window-s, --rounds, --json FILE).
Each round starts `streamlit run app.py` from a copy of the working tree, opens K sessions over Streamlit's websocket
protocol (bench/ws_session.py: nothing is drawn, so every CPU second counted is the server's), presses Run in each
(Bayes by Backprop paced at --speed steps/s, the job cap raised to K so none queues) and, once every page shows
Running, counts for --window-s seconds the live redraws the pages receive (a new slope-mean chart: one per rerun of
the page's live fragment, with its three other convergence charts, the progress bar and the fit table; the loss and
data charts come every fourth) and the server process's CPU time (user + system, /proc; its training workers are
other processes and are not counted). The figure is that CPU time over the redraws received: milliseconds of the
server's CPU per chart update per session. It also counts the bytes of every message the server sent the pages
meanwhile (their protobuf encoding, before the websocket's compression), per update.

With `--before REF`, rounds alternate between the working tree with the files named by `--paths` as they were at the
git commit REF ("before") and the working tree as it is ("after"), so a busy machine slows both alike; the medians of
each are reported side by side. A path written PATH@COMMIT is taken from that commit instead: a file whose version at
REF no longer fits today's other modules can stand in with a later version that still does what REF's did.
A path written DEST=SOURCE@COMMIT is SOURCE as at COMMIT placed at DEST, for a file that has moved since: its
imports of modules that moved after COMMIT name their new places (the renames git records), and paths it takes from
its own folder (`Path(__file__).resolve().parent`) climb one folder more per folder it moved down. The "before" of
docs/performance.md, today's tree with the live charts of commit 91f62a7, the figures built with plotly's checks and
the live view that builds each chart's plotly figure (app.py and bayesdemo/page/live_view.py as at commit 47b2db4):
`--before 91f62a7 --paths bayesdemo/page/live_chart.py=bayesdemo/live_chart.py@91f62a7 bayesdemo/web/live_chart.js
bayesdemo/charts/figures.py=bayesdemo/figures.py@fd67943 bayesdemo/charts/figures_explore.py@2493cee app.py@47b2db4
bayesdemo/page/live_view.py@47b2db4`.
Each variant's tree is copied once, before the first round, so edits to the working tree while the rounds run reach
neither.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load_test import cpu_seconds  # noqa: E402
from bench.server import streamlit_server  # noqa: E402
from bench.ws_session import ProtocolSession  # noqa: E402

LIVE_CHART_FILES = ("bayesdemo/page/live_chart.py", "bayesdemo/web/live_chart.js")
SETTLE_S = 3.0  # seconds after every page shows Running before counting: the first full figures are sent then


def copy_tree(target: Path, before: str | None, paths: tuple[str, ...]) -> None:
    """The working tree's files that git tracks or would track, into `target`; `paths` as at commit `before`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for path in paths if before else ():
        destination, _, taken = path.rpartition("=")  # DEST=SOURCE@COMMIT: a moved file, placed at DEST
        name, _, commit = taken.partition("@")  # PATH@COMMIT: that file as at its own commit
        commit = commit or before or "HEAD"  # before is set whenever paths are taken
        shown = subprocess.run(["git", "show", f"{commit}:{name}"], cwd=ROOT, check=True, capture_output=True)
        text = shown.stdout
        if destination and destination != name:
            text = moved_source(text.decode(), name, destination, commit).encode()
        (target / (destination or name)).parent.mkdir(parents=True, exist_ok=True)
        (target / (destination or name)).write_bytes(text)


def module_of(path: str) -> str:
    """The dotted module name of a Python file's path (bayesdemo/charts/figures.py: bayesdemo.charts.figures)."""
    return path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def renames_since(commit: str) -> dict[str, str]:
    """Python modules moved after `commit` (git's recorded renames, in order): old dotted name -> newest one."""
    listed = subprocess.run(
        ["git", "log", "--reverse", "-M", "--diff-filter=R", "--name-status", "--format=", f"{commit}..HEAD"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    moved: dict[str, str] = {}
    for line in listed.splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].endswith(".py") and parts[2].endswith(".py"):
            old, new = module_of(parts[1]), module_of(parts[2])
            moved = {first: (new if now == old else now) for first, now in moved.items()}
            moved.setdefault(old, new)
    return moved


def moved_source(text: str, source: str, destination: str, commit: str) -> str:
    """Python `text` of `source` as at `commit`, fitted to today's tree at `destination` (see the module docstring)."""
    if not source.endswith(".py"):
        return text
    moved = sorted(renames_since(commit).items(), key=lambda item: -len(item[0]))  # longest names first

    def imported(line: re.Match) -> str:
        """An import line naming the moved modules' new places."""
        text = line.group(0)
        for old, new in moved:
            package, _, name = old.rpartition(".")
            new_package, _, new_name = new.rpartition(".")
            if name == new_name:  # `from package import name` -> `from new_package import name`
                text = re.sub(rf"^from {re.escape(package)} import {name}$", f"from {new_package} import {name}", text)
            text = re.sub(rf"^(from|import) {re.escape(old)}\b", rf"\1 {new}", text)
        return text

    text = re.sub(r"^(from|import) [\w.]+ .*$", imported, text, flags=re.M)
    deeper = destination.count("/") - source.count("/")
    if deeper > 0:
        here = "Path(__file__).resolve().parent"
        text = text.replace(here + " ", here + ".parent" * deeper + " ")
    return text


@contextlib.contextmanager
def server_from(tree: Path, sessions: int, log_path: Path) -> Iterator[tuple[str, int]]:
    """`streamlit run app.py` in `tree` (its own bayesdemo first on the path), job cap `sessions`; (URL, pid)."""
    environment = {"BAYESDEMO_MAX_RUNNING_JOBS": str(sessions), "PYTHONPATH": str(tree)}
    with streamlit_server(log_path, environment, tree) as (base_url, pid):
        yield base_url, pid


class CountingSession(ProtocolSession):
    """A ProtocolSession that also counts the bytes of the server's messages while `counting` is set."""

    def __init__(self, base_url: str, query: dict[str, str]):
        super().__init__(base_url, query)
        self.counting = False
        self.bytes_received = 0

    def on_message(self, message) -> None:
        """Count the message's size (its protobuf encoding, as sent), then handle it."""
        if self.counting:
            self.bytes_received += message.ByteSize()
        super().on_message(message)


def updates_between(client: ProtocolSession, start: float, end: float) -> int:
    """Slope-mean charts the session received in [start, end) (time.monotonic)."""
    return sum(1 for moment, _ in client.record.updates if start <= moment < end)


async def measure(base_url: str, pid: int, sessions: int, window_s: float, speed: float) -> dict:
    """Open the sessions, press Run in each, and count redraws and the server's CPU time over the window."""
    steps = int(speed * (window_s + SETTLE_S + 60.0))  # the fits outlast the window
    clients = [
        CountingSession(base_url, {"m": "bbb", "t": str(steps), "fs": str(i), "v": f"{speed:g}"})
        for i in range(sessions)
    ]
    async with contextlib.AsyncExitStack() as stack:
        for client in clients:
            await stack.enter_async_context(client.connected())
        await asyncio.wait_for(asyncio.gather(*(client.first_run_done.wait() for client in clients)), 180.0)
        for client in clients:
            await client.click_run()
        deadline = time.monotonic() + 120.0
        while not all(client.record.state == "Running" for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"not every page shows Running: {[c.record.state for c in clients]}")
            await asyncio.sleep(0.05)
        await asyncio.sleep(SETTLE_S)
        start, cpu_start = time.monotonic(), cpu_seconds(pid)
        for client in clients:
            client.counting = True
        await asyncio.sleep(window_s)
        end, cpu_end = time.monotonic(), cpu_seconds(pid)
        for client in clients:
            client.counting = False
        received = sum(client.bytes_received for client in clients)
        errors = [error for client in clients for error in client.record.errors]
        states = [client.record.state for client in clients]
    if cpu_start is None or cpu_end is None:
        raise RuntimeError("the server exited during the window")
    updates = sum(updates_between(client, start, end) for client in clients)
    cpu_s = cpu_end - cpu_start
    return {
        "updates": updates,
        "updates_per_s_per_session": round(updates / (end - start) / sessions, 2),
        "server_cpu_s": round(cpu_s, 3),
        "server_cores": round(cpu_s / (end - start), 3),
        "cpu_ms_per_update": round(1000.0 * cpu_s / updates, 2) if updates else None,
        "kib_sent_per_update": round(received / 1024 / updates, 2) if updates else None,
        "all_running_at_end": all(state == "Running" for state in states),
        "errors": errors,
    }


def run_round(variant: str, source: Path, arguments: argparse.Namespace) -> dict:
    """One round: a fresh copy of the variant's tree `source`, a fresh server, the measurement."""
    with tempfile.TemporaryDirectory(prefix=f"bayesdemo-chart-cpu-{variant}-") as folder:
        tree = Path(folder) / "tree"
        shutil.copytree(source, tree)
        with server_from(tree, arguments.sessions, tree / "server.log") as (base_url, pid):
            result = asyncio.run(measure(base_url, pid, arguments.sessions, arguments.window_s, arguments.speed))
    return {"variant": variant, **result, "load_average": os.getloadavg()[0]}


def summary(rounds: list[dict]) -> dict[str, dict]:
    """Per variant: the median and range of ms per update, and the median updates/s per session."""
    table = {}
    for variant in dict.fromkeys(r["variant"] for r in rounds):
        mine = [r for r in rounds if r["variant"] == variant and r["cpu_ms_per_update"] is not None]
        per_update = [r["cpu_ms_per_update"] for r in mine]
        table[variant] = {
            "cpu_ms_per_update_median": statistics.median(per_update) if per_update else None,
            "cpu_ms_per_update_range": [min(per_update), max(per_update)] if per_update else None,
            "updates_per_s_per_session_median": statistics.median(r["updates_per_s_per_session"] for r in mine)
            if mine
            else None,
            "kib_sent_per_update_median": statistics.median(r["kib_sent_per_update"] for r in mine) if mine else None,
            "rounds": len(mine),
        }
    return table


def main() -> None:
    """Parse arguments, run the rounds (interleaved with --before), print each and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=6, help="concurrent websocket sessions (default 6)")
    parser.add_argument("--window-s", type=float, default=20.0, help="seconds of redraws counted per round")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per variant (default 2)")
    parser.add_argument("--speed", type=float, default=300.0, help="each fit's pace in steps/s (default 300)")
    parser.add_argument("--before", default=None, help="git commit whose --paths make the 'before' variant")
    parser.add_argument(
        "--paths",
        nargs="+",
        default=list(LIVE_CHART_FILES),
        help="files taken from --before (PATH@COMMIT: from COMMIT)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every round and the summary here")
    arguments = parser.parse_args()
    variants = ["before", "after"] if arguments.before else ["after"]
    rounds = []
    # Each variant's tree is copied once, before the first round: edits made to the working tree while the rounds run
    # reach neither variant.
    with tempfile.TemporaryDirectory(prefix="bayesdemo-chart-cpu-trees-") as folder:
        sources = {variant: Path(folder) / variant for variant in variants}
        for variant, source in sources.items():
            source.mkdir()
            copy_tree(source, arguments.before if variant == "before" else None, tuple(arguments.paths))
        for number in range(arguments.rounds):
            for variant in variants:
                result = run_round(variant, sources[variant], arguments)
                rounds.append({"round": number + 1, **result})
                print(json.dumps(rounds[-1]), flush=True)
    table = summary(rounds)
    for variant, figures in table.items():
        print(f"{variant}: {figures}")
    if arguments.json:
        report = {"sessions": arguments.sessions, "window_s": arguments.window_s, "speed": arguments.speed}
        report |= {"before": arguments.before, "paths": arguments.paths, "rounds": rounds, "summary": table}
        arguments.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
