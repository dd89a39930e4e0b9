"""Load test through the proxy: N sessions over several replicas behind nginx, each uploading a CSV and training.

Run: `python bench/proxy_load.py` (40 sessions over 2 replicas, a 2,000-step Bayes by Backprop fit each; --sessions,
--replicas, --steps, --speed, --no-affinity, --json FILE). It starts the replicas and nginx as `bash scripts/serve` does
(deploy/serve.py) and drives every session over Streamlit's websocket protocol (bench/ws_session.py) through the
proxy, as a browser would: it loads the page (getting the affinity cookie), opens the websocket with its cookies,
uploads its own CSV through the file uploader, presses Run, and when the fit has finished downloads its trajectory,
which must equal the engine's solo run on the same data. It reports errors, sessions per replica, chart-update
intervals, the replicas' and nginx's CPU while the fits trained, the server CPU per chart update, and the memory of
each replica idle and at its peak, with the memory of one training worker.

With --no-affinity every request goes to the next replica in turn (a plain round-robin proxy): a session's upload or
download then reaches a replica that does not hold its session, and fails (400 "Invalid session_id" for an upload,
404 for a download).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.cookiejar
import statistics
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlencode

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bayesdemo.core.data import DataConfig, generate, parse_csv  # noqa: E402
from bayesdemo.workers import jobs  # noqa: E402
from bench.load_test import (  # noqa: E402
    MemorySampler,
    Session,
    compare_with_solo,
    drive_protocol_sessions,
    memory_kib,
    plan_sessions,
    print_report,
    process_tree,
    session_totals,
)
from bench.ws_session import ProtocolSession  # noqa: E402
from deploy.serve import AFFINITY_COOKIE, Serving, serving  # noqa: E402

UPLOADER_KEY = "upload"  # the page's file uploader
UPLOAD_POINTS = 50  # points in each session's CSV


def upload_csv(index: int) -> bytes:
    """Session `index`'s own CSV: simulated points (seed 1000 + index) written at full precision."""
    dataset = generate(DataConfig(n=UPLOAD_POINTS, seed=1000 + index))
    rows = "".join(f"{x!r},{y!r}\n" for x, y in zip(dataset.x.tolist(), dataset.y.tolist(), strict=True))
    return ("x,y\n" + rows).encode()


class ProxiedSession(ProtocolSession):
    """A websocket session through the proxy that first loads the page as a browser does, and keeps its cookies."""

    def __init__(self, base_url: str, query: dict[str, str]):
        super().__init__(base_url, query)
        self.base_url = base_url
        self.link_query = query
        self.cookies = http.cookiejar.CookieJar()
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def cookie(self, name: str) -> str:
        """The value of one cookie this session holds ('' when it holds none)."""
        return next((cookie.value or "" for cookie in self.cookies if cookie.name == name), "")

    def load_page(self) -> None:
        """Load the page and Streamlit's health check as a browser does first: they set the cookies, which the
        websocket and the upload then send."""
        for path in (f"/?{urlencode(self.link_query)}", "/_stcore/health"):
            with self.http.open(self.base_url + path, timeout=60) as response:
                response.read()
        self.headers["Cookie"] = "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)

    async def upload_csv(self, content: bytes) -> str:
        """Put `content` into the page's file uploader and wait for the page run that reads it; '' or the error."""
        runs_before = self.record.page_runs
        status = await self.upload(UPLOADER_KEY, "points.csv", content, timeout_s=60.0)
        if status not in (200, 204):
            return f"upload failed: HTTP {status}"
        settled = await self.settle(60.0, after=runs_before)
        return "" if settled else "the page did not rerun with the upload within 60 s"

    def download(self, url: str) -> str:
        """A download through the proxy with the session's cookies."""
        with self.http.open(self.base_url + url, timeout=60) as response:
            return response.read().decode()


async def drive(base_url: str, plan: list[Session], steps: int, timeout_s: float, samplers) -> dict:
    """Every session loads the page, connects, uploads its CSV, presses Run, trains to the end and downloads through
    the proxy (load_test.drive_protocol_sessions); the times also hold each replica's idle memory and the replica
    each session reached."""
    clients = [ProxiedSession(base_url, session.query) for session in plan]
    contents = [upload_csv(session.index) for session in plan]
    await asyncio.gather(*(asyncio.to_thread(client.load_page) for client in clients))

    async def prepare(times: dict) -> list[str]:
        """Note each replica's idle memory, then upload every session's CSV at once; each upload's problem or ''."""
        times["idle_memory"] = [sampler_memory(sampler.root) for sampler in samplers]
        return await asyncio.gather(
            *(client.upload_csv(content) for client, content in zip(clients, contents, strict=True))
        )

    def fetch(client: ProxiedSession, session: Session) -> None:
        """Download the session's trajectory through the proxy; it must equal the solo run on its uploaded data."""
        downloaded = client.download(client.record.download_url)
        compare_with_solo(session, downloaded, steps, parse_csv(upload_csv(session.index), name="points.csv"))

    times = await drive_protocol_sessions(clients, plan, steps, timeout_s, samplers, fetch, prepare)
    times["replica_of"] = [client.cookie(AFFINITY_COOKIE) for client in clients]
    return times


def sampler_memory(root: int) -> dict:
    """PSS of a replica process and of the processes under it (the training processes and their starter), in KiB."""
    pids = process_tree(root)
    return {
        "replica_kib": memory_kib(root)[1],
        "under_kib": sum(memory_kib(pid)[1] for pid in pids if pid != root),
        "under_processes": len(pids) - 1,
    }


class PeakSampler(MemorySampler):
    """MemorySampler that also keeps the peak PSS under the replica process and the most processes there."""

    def __init__(self, root: int):
        super().__init__(root)
        self.peak_under_kib = 0
        self.peak_under_processes = 0

    def sample(self) -> None:
        """One sample, with the part under the replica process kept apart."""
        super().sample()
        memory = sampler_memory(self.root)
        self.peak_under_processes = max(self.peak_under_processes, memory["under_processes"])
        self.peak_under_kib = max(self.peak_under_kib, memory["under_kib"])


def run_proxy_load(
    sessions: int,
    replicas: int,
    steps: int,
    affinity: bool = True,
    timeout_s: float = 600.0,
    method: str = "bbb",
    served: Serving | None = None,
    speed: float = 0.0,
) -> dict:
    """Drive `sessions` sessions through nginx over `replicas` replicas (started here, or `served` already running;
    then `replicas` and `affinity` are its own); return the figures as a dict."""
    cores = jobs.usable_cores()
    plan = plan_sessions(sessions, method, steps)
    for session in plan:
        session.query["v"] = f"{speed:g}"  # the fit's pace in steps/s (0: full speed)
    log_dir = Path(tempfile.mkdtemp(prefix="bayesdemo-proxy-load-"))
    with contextlib.ExitStack() as stack:
        if served is None:
            # A machine with fewer cores than replicas still runs the test, one fit at a time per replica.
            served = stack.enter_context(
                serving(replicas, affinity=affinity, log_dir=log_dir, cores=max(cores, replicas))
            )
        samplers = [PeakSampler(pid) for pid in served.replica_pids]
        proxy_sampler = MemorySampler(served.processes[-1].pid)
        for sampler in [*samplers, proxy_sampler]:
            sampler.start()
        try:
            times = asyncio.run(drive(served.url, plan, steps, timeout_s, [*samplers, proxy_sampler]))
        finally:
            for sampler in [*samplers, proxy_sampler]:
                sampler.done.set()
                sampler.join()
        caps = [replica.max_running_jobs for replica in served.replicas]
        names = [replica.name for replica in served.replicas]
    training_s = times["all_done"] - times["run_clicked"]
    replica_cpu = [done[0] - run[0] for run, done in zip(times["cpu_at_run"], times["cpu_at_done"], strict=True)]
    worker_cpu = [done[1] - run[1] for run, done in zip(times["cpu_at_run"], times["cpu_at_done"], strict=True)]
    proxy_cpu = replica_cpu.pop() + worker_cpu.pop()  # nginx's master and worker
    chart_updates = sum(len(session.update_intervals_s) + bool(session.update_intervals_s) for session in plan)
    intervals = [interval for session in plan for interval in session.update_intervals_s]
    idle = times["idle_memory"][:-1]
    worker_kib = [
        (sampler.peak_under_kib - memory["under_kib"]) / (sampler.peak_under_processes - memory["under_processes"])
        for sampler, memory in zip(samplers, idle, strict=True)
        if sampler.peak_under_processes > memory["under_processes"]
    ]
    training = [s.training_steps_per_second for s in plan if np.isfinite(s.training_steps_per_second)]
    return {
        "sessions": sessions,
        "replicas": len(names),
        "affinity": affinity,
        "steps_per_fit": steps,
        "speed": speed,
        "method": method,
        "cores": cores,
        "job_cap_per_replica": caps,
        "sessions_per_replica": {name: times["replica_of"].count(name) for name in names},
        **session_totals(plan),
        "pages_that_reconnected": sum(session.connections > 1 for session in plan),
        "chart_updates_seen": chart_updates,
        "chart_update_interval_median_s": statistics.median(intervals) if intervals else None,
        "chart_update_interval_worst_s": max(intervals) if intervals else None,
        "training_steps_per_second_per_session_median": statistics.median(training) if training else None,
        "seconds_from_run_to_all_finished": round(training_s, 1),
        "replica_process_cpu_s": [round(seconds, 2) for seconds in replica_cpu],
        # The replica processes' cores from Run to every fit finished, per session open meanwhile.
        "server_cores_per_session": round(sum(replica_cpu) / training_s / sessions, 4),
        "training_processes_cpu_s": [round(seconds, 2) for seconds in worker_cpu],
        "proxy_cpu_s": round(proxy_cpu, 2),
        # The replica processes' CPU while the fits trained (websocket, page and fragment reruns, charts) per chart
        # update a session received: what one more live chart update costs the servers.
        "server_cpu_ms_per_chart_update": round(1000 * sum(replica_cpu) / chart_updates, 2) if chart_updates else None,
        "replica_idle_pss_mib": [round(memory["replica_kib"] / 1024, 1) for memory in idle],
        "replica_idle_under_pss_mib": [round(memory["under_kib"] / 1024, 1) for memory in idle],
        "replica_peak_pss_mib": [round(sampler.peak_pss_kib / 1024, 1) for sampler in samplers],
        "training_worker_pss_mib": round(statistics.median(worker_kib) / 1024, 1) if worker_kib else None,
        "proxy_peak_pss_mib": round(proxy_sampler.peak_pss_kib / 1024, 1),
        "logs": str(log_dir),
        "per_session": [asdict(session) for session in plan],
    }


def table(report: dict) -> str:
    """The headline figures as a two-column text table."""
    rows = [(key, str(value)) for key, value in report.items() if key not in ("per_session", "error_messages")]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main() -> None:
    """Parse arguments, run the proxy load test, print the table (and write JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=40, help="concurrent sessions (default 40)")
    parser.add_argument("--replicas", type=int, default=2, help="replicas behind nginx (default 2)")
    parser.add_argument("--steps", type=int, default=2000, help="steps of each session's fit (default 2000)")
    parser.add_argument("--speed", type=float, default=0.0, help="each fit's pace in steps/s (default 0: full speed)")
    parser.add_argument("--no-affinity", action="store_true", help="a plain round-robin proxy (uploads fail)")
    parser.add_argument("--timeout-s", type=float, default=600.0, help="give up waiting after this long")
    parser.add_argument("--json", type=Path, default=None, help="also write the full report here")
    arguments = parser.parse_args()
    report = run_proxy_load(
        arguments.sessions,
        arguments.replicas,
        arguments.steps,
        not arguments.no_affinity,
        arguments.timeout_s,
        speed=arguments.speed,
    )
    print_report(report, table(report), arguments.json)
    passed = report["errors"] == 0 and report["equal_to_solo"] == report["sessions"]
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
