"""Serve the page from several `streamlit run app.py` replicas behind nginx, with session affinity.

Run: `bash scripts/serve --replicas N [--port P] [--address A]`. It starts N replicas on free local ports (127.0.0.1,
reachable only through the proxy), shares one training job cap among them (every replica gets the machine's cores as
BAYESDEMO_MAX_RUNNING_JOBS and the same BAYESDEMO_SLOT_DIR, a folder of slot files each held by one training process
at a time, so that together they never train more full-speed fits at once than there are cores), and runs nginx
(the Debian package) in the foreground with a configuration made from deploy/nginx.conf.template in a temporary
folder, listening on A:P. Ctrl-C stops everything; so does any of them stopping on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("nginx.conf.template")
NGINX = "/usr/sbin/nginx"
AFFINITY_COOKIE = "bayesdemo_replica"
STREAMLIT_DEFAULT_MAX_UPLOAD_MIB = 200  # Streamlit's own default for server.maxUploadSize
MULTIPART_MARGIN_MIB = 1  # Streamlit accepts an upload body up to maxUploadSize plus 1 MiB of multipart framing
START_TIMEOUT_S = 90.0  # several replicas importing torch at once on a small machine
CONNECTIONS_PER_REPLICA = 1024  # nginx worker connections per replica: two per open page


class ServeError(RuntimeError):
    """A reason the replicas or the proxy cannot start, in words for the person who ran the command."""


@dataclass(frozen=True)
class Replica:
    """One `streamlit run app.py` behind the proxy: its name in the affinity cookie, its port and the job cap it
    shares with the other replicas (workers.scheduler's slot files)."""

    name: str
    port: int
    max_running_jobs: int


@dataclass(frozen=True)
class Serving:
    """A running proxy and its replicas: the address to open, and the process ids."""

    url: str
    replicas: tuple[Replica, ...]
    processes: tuple[subprocess.Popen, ...]  # the replicas', then nginx

    @property
    def replica_pids(self) -> tuple[int, ...]:
        """The replicas' process ids."""
        return tuple(process.pid for process in self.processes[:-1])


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def check_replicas(replicas: int) -> int:
    """`replicas` when at least one."""
    if replicas < 1:
        raise ServeError("--replicas must be at least 1.")
    return replicas


def replica_environment(
    replica: Replica, slot_dir: Path, environment: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a replica: this one's, `environment`, and the job cap with the slot folder all replicas
    share (BAYESDEMO_SLOT_DIR: workers.scheduler counts the cap across them)."""
    return {
        **os.environ,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **(environment or {}),
        "BAYESDEMO_MAX_RUNNING_JOBS": str(replica.max_running_jobs),
        "BAYESDEMO_SLOT_DIR": str(slot_dir),
    }


def max_upload_mib(config_path: Path = REPOSITORY / ".streamlit" / "config.toml") -> int:
    """server.maxUploadSize from the page's Streamlit settings (Streamlit's default when it is not set)."""
    if not config_path.exists():
        return STREAMLIT_DEFAULT_MAX_UPLOAD_MIB
    settings = tomllib.loads(config_path.read_text())
    return int(settings.get("server", {}).get("maxUploadSize", STREAMLIT_DEFAULT_MAX_UPLOAD_MIB))


def nginx_config(replicas: list[Replica], listen: str, run_dir: Path, max_body_mib: int, affinity: bool = True) -> str:
    """The proxy's configuration from deploy/nginx.conf.template; without `affinity`, every request goes in turn."""
    addresses = [f"127.0.0.1:{replica.port}" for replica in replicas]
    one_each = []
    for index, replica in enumerate(replicas):
        servers = [f"        server {addresses[index]} max_fails=0;"]
        servers += [
            f"        server {address} max_fails=0 backup;" for other, address in enumerate(addresses) if other != index
        ]
        one_each.append("\n".join([f"    upstream {replica.name} {{", *servers, "    }"]))
    fields = {
        "RUN_DIR": str(run_dir),
        "WORKER_CONNECTIONS": str(CONNECTIONS_PER_REPLICA * len(replicas)),
        "ALL_REPLICAS": "\n".join(f"        server {address} max_fails=0;" for address in addresses),
        "ONE_REPLICA_EACH": "\n".join(one_each),
        "COOKIE": AFFINITY_COOKIE,
        "COOKIE_TO_UPSTREAM": (
            "\n".join(f"        {replica.name} {replica.name};" for replica in replicas) if affinity else ""
        ),
        # The last address tried is the one that answered ($upstream_addr lists every one tried).
        "ADDRESS_TO_NAME": "\n".join(
            f'        "~(^|\\s){re.escape(address)}$" {replica.name};'
            for replica, address in zip(replicas, addresses, strict=True)
        ),
        "LISTEN": listen,
        "MAX_BODY_MIB": str(max_body_mib + MULTIPART_MARGIN_MIB),
    }
    text = TEMPLATE.read_text()
    for name, value in fields.items():
        text = text.replace(f"@{name}@", value)
    if re.search(r"@[A-Z_]+@", text):
        raise ServeError("deploy/nginx.conf.template has a field deploy/serve.py does not fill in.")
    return text


def streamlit_command(port: int) -> list[str]:
    """`streamlit run app.py` headless on 127.0.0.1:`port`, without watching files."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",  # nobody edits the code while it serves; watching it only costs CPU
    ]


def wait_for_health(url: str, process: subprocess.Popen, timeout_s: float, name: str = "streamlit") -> None:
    """Poll Streamlit's health endpoint at `url` until it answers `ok`; fail if `process` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServeError(f"{name} exited with code {process.returncode} before {url} answered.")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return
        except OSError:
            pass
        time.sleep(0.25)
    raise ServeError(f"{url} did not answer ok within {timeout_s:g} s.")


def stop(processes: list[subprocess.Popen]) -> None:
    """Ask every process to stop (SIGTERM), then kill the ones still running after 10 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10.0
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def replicas_running(
    replica_count: int,
    log_dir: Path,
    environment: Mapping[str, str] | None = None,
    cores: int | None = None,
) -> Iterator[tuple[tuple[Replica, ...], tuple[subprocess.Popen, ...]]]:
    """Start `replica_count` replicas on free local ports, output to `log_dir`/replica-NAME.log, sharing a job cap of
    `cores` (None: this machine's) through one new slot folder; yield them and their processes once each answers its
    health check; stop them after."""
    if cores is None:
        from bayesdemo.workers.jobs import (
            usable_cores,  # the cores the job cap counts (imports torch: only when needed)
        )

        cores = usable_cores()
    replicas = tuple(Replica(f"r{index + 1}", free_port(), cores) for index in range(check_replicas(replica_count)))
    slot_dir = Path(tempfile.mkdtemp(prefix="bayesdemo-slots-"))
    processes: list[subprocess.Popen] = []
    try:
        for replica in replicas:
            env = replica_environment(replica, slot_dir, environment)
            with open(log_dir / f"replica-{replica.name}.log", "wb") as log:
                # A session of its own: Ctrl-C reaches the supervisor alone, which then stops every replica in turn.
                processes.append(
                    subprocess.Popen(
                        streamlit_command(replica.port),
                        cwd=REPOSITORY,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
        for replica, process in zip(replicas, processes, strict=True):
            wait_for_health(f"http://127.0.0.1:{replica.port}/_stcore/health", process, START_TIMEOUT_S)
        yield replicas, tuple(processes)
    finally:
        stop(processes)
        shutil.rmtree(slot_dir, ignore_errors=True)


@contextlib.contextmanager
def proxy_in_front(
    replicas: tuple[Replica, ...],
    replica_processes: tuple[subprocess.Popen, ...],
    port: int | None = None,
    address: str = "127.0.0.1",
    affinity: bool = True,
) -> Iterator[Serving]:
    """Run nginx in front of running replicas on `address`:`port` (None: a free port); yield it all, stop nginx after.

    Without `affinity` every request goes to the next replica in turn (a plain round-robin proxy).
    """
    if not Path(NGINX).exists():
        raise ServeError(f"{NGINX} is missing: install nginx (on Debian or Ubuntu: apt-get install nginx).")
    run_dir = Path(tempfile.mkdtemp(prefix="bayesdemo-serve-"))
    run_dir.chmod(0o755)  # nginx's workers run as another user when started by root, and write temporary files here
    port = port or free_port()
    config_path = run_dir / "nginx.conf"
    config_path.write_text(nginx_config(list(replicas), f"{address}:{port}", run_dir, max_upload_mib(), affinity))
    proxy = subprocess.Popen(
        [NGINX, "-p", str(run_dir), "-c", str(config_path), "-e", "stderr"], start_new_session=True
    )
    try:
        probe_host = "127.0.0.1" if address in ("0.0.0.0", "") else address
        wait_for_health(f"http://{probe_host}:{port}/_stcore/health", proxy, START_TIMEOUT_S, "nginx")
        yield Serving(f"http://{probe_host}:{port}", replicas, (*replica_processes, proxy))
    finally:
        stop([proxy])
        shutil.rmtree(run_dir, ignore_errors=True)


@contextlib.contextmanager
def serving(
    replica_count: int,
    port: int | None = None,
    address: str = "127.0.0.1",
    affinity: bool = True,
    log_dir: Path | None = None,
    environment: Mapping[str, str] | None = None,
    cores: int | None = None,
) -> Iterator[Serving]:
    """Start `replica_count` replicas and nginx in front (`port` None: a free one); yield them, stop them after.

    Replica output goes to `log_dir`/replica-NAME.log (a new temporary folder when None), nginx's to its stderr.
    """
    if not Path(NGINX).exists():
        raise ServeError(f"{NGINX} is missing: install nginx (on Debian or Ubuntu: apt-get install nginx).")
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="bayesdemo-replicas-"))
    with (
        replicas_running(replica_count, log_dir, environment, cores) as (replicas, processes),
        proxy_in_front(replicas, processes, port, address, affinity) as served,
    ):
        yield served


def interrupt(signal_number: int, frame: object) -> None:
    """A signal to stop: raised as the KeyboardInterrupt that Ctrl-C raises."""
    raise KeyboardInterrupt


def main() -> None:
    """Parse arguments, serve until Ctrl-C (or until a replica or the proxy stops on its own)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=2, help="streamlit processes behind the proxy (default 2)")
    parser.add_argument("--port", type=int, default=8501, help="the proxy's port (default 8501)")
    parser.add_argument(
        "--address", default="0.0.0.0", help="the proxy's address (default 0.0.0.0: every network of this machine)"
    )
    arguments = parser.parse_args()
    # Ctrl-C and SIGTERM stop everything, even when started in the background (where a shell ignores SIGINT).
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        with serving(arguments.replicas, arguments.port, arguments.address) as served:
            cap = served.replicas[0].max_running_jobs
            everywhere = arguments.address in ("0.0.0.0", "")
            shown = f"http://<this machine's address>:{arguments.port}" if everywhere else served.url
            print(
                f"{len(served.replicas)} replicas behind nginx at {shown} (fits at full speed at once, all replicas "
                f"together: {cap})."
            )
            print("Press Ctrl+C to stop.", flush=True)
            while True:
                for index, process in enumerate(served.processes):
                    if process.poll() is not None:
                        name = "nginx" if index == len(served.replicas) else f"replica {served.replicas[index].name}"
                        raise ServeError(
                            f"{name} (process {process.pid}) stopped on its own with code "
                            f"{process.returncode}; the others are stopped too."
                        )
                time.sleep(1.0)
    except ServeError as error:
        print(error, file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("Stopped.")


if __name__ == "__main__":
    main()
