"""Benchmark: every method of this project next to stock Pyro and NumPyro, in interleaved rounds; medians reported.

Run: `python bench/run.py --json bench/results.json` (--n 100 or --n 100000 for one data size, --rounds R, --quick for
a short smoke run, --device cuda for CPU vs GPU at n = 1,000,000 where torch sees CUDA).

Each round runs every contender once per data size, each in a fresh process (its own peak memory, no warm caches),
in an order rotated from round to round, so a busy machine slows every row alike; the table shows the medians over
rounds. Contenders: Pyro SVI written as in Pyro's tutorial (the anchor, bench/anchor.py), the same model in NumPyro
with 1 particle and with 16 vectorised particles (jit-compiled), and every method of this project with its defaults.
"Stays converged": the mean over the last 50 steps within 0.1 posterior sd of the method's target mean and within 10%
of its target sd at every snapshot (every 5 steps) to the end of the run
(bayesdemo.fitting.metrics.step_converged_for_good).
Seconds are training seconds: snapshots excluded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
NUMPYRO_PARTICLES = {"numpyro-1": 1, "numpyro-16": 16}  # NumPyro contenders: Trace_ELBO particles
ANCHORS = ("anchor", *NUMPYRO_PARTICLES)
CONTENDERS = (*ANCHORS, "noise", "bbb", "bbb-straightforward", "svi-normal", "svi-tutorial", "svi-mvn")
STRAIGHTFORWARD = "bbb-straightforward"  # autograd through the per-point loss and torch.optim.Adam: full data only
GPU_METHODS = ("noise", "bbb")  # Pyro SVI's model lives on the CPU (FitConfig refuses a CUDA device for it)
WINDOW = 50  # steps averaged by the convergence rule (metrics.DEFAULT_WINDOW)
SNAPSHOT_EVERY = 5


@dataclass(frozen=True)
class Case:
    """One data size of the benchmark: n points, minibatch size (0: full data), step cap and training-time cap."""

    n: int  # data points
    batch_size: int  # points per step; 0 means the full data
    steps: int  # most steps a contender takes
    time_budget_s: float  # most training seconds a contender takes (0: none)


# n = 100,000: every contender gets the same 8,000-step cap; the 12 s budget cuts only the slowest (the anchors).
PLAN = (Case(100, 0, 3000, 0.0), Case(100_000, 1000, 8000, 12.0))
QUICK_PLAN = (Case(100, 0, 300, 0.0), Case(10_000, 100, 300, 2.0))
GPU_PLAN = (Case(1_000_000, 0, 2000, 15.0), Case(1_000_000, 10_000, 2000, 15.0))


class TorchAdam:
    """torch.optim.Adam behind the engine's Optimiser interface: the straightforward Bayes by Backprop's optimiser."""

    def __init__(self, parameters: list, lr: float):
        import torch

        self.optimizer = torch.optim.Adam(parameters, lr=lr)

    def minimise(self, loss) -> float:
        """Backpropagate, step, return the loss."""
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def averaged(self):
        """No iterate averaging."""
        return contextlib.nullcontext()


def trajectory(contender: str, dataset, model, case: Case, seed: int, device: str):
    """(config for the target, snapshots) of one contender's run on `dataset`."""
    from bayesdemo.core.exact import Gaussian
    from bayesdemo.fitting.runner import Run, RunConfig, Snapshot
    from bayesdemo.methods import FitConfig, make_method

    if contender in ANCHORS:
        import anchor

        x, y = np.array(dataset.x), np.array(dataset.y)
        arguments = (x, y, float(model.noise_sd), case.steps, case.batch_size, SNAPSHOT_EVERY, seed, case.time_budget_s)
        if contender == "anchor":
            steps = anchor.pyro_tutorial(*arguments)
        else:
            steps = anchor.numpyro_tutorial(*arguments, particles=NUMPYRO_PARTICLES[contender])
        snapshots = [Snapshot.of(step, seconds, 0.0, Gaussian.diagonal(mean, sd)) for step, seconds, mean, sd in steps]
        return FitConfig(method="svi", guide="tutorial", seed=seed), snapshots
    name, _, guide = contender.partition("-")
    if contender == STRAIGHTFORWARD:
        guide = ""
    config = FitConfig(
        method=name, guide=guide or "normal", steps=case.steps, batch_size=case.batch_size, seed=seed, device=device
    )
    run_config = RunConfig(snapshot_every=SNAPSHOT_EVERY, time_budget_s=case.time_budget_s)
    fit = make_method(dataset, model, config)
    if contender == STRAIGHTFORWARD:
        from bayesdemo.methods.bbb import BayesByBackprop

        assert isinstance(fit, BayesByBackprop)
        fit.uses_sufficient_statistics = False
        fit.optimizer = TorchAdam([fit.mu, fit.rho], config.lr_in_force)  # type: ignore[assignment]
    run = Run(fit, case.steps, run_config)
    for _ in run:
        pass
    return config, run.snapshots


def measure_one(contender: str, case: Case, seed: int, device: str) -> dict:
    """Run one contender in this process and summarise speed, convergence and memory."""
    import torch

    torch.set_num_threads(1)
    from bayesdemo.core.data import DataConfig, generate
    from bayesdemo.core.exact import exact_posterior
    from bayesdemo.core.priors import Model
    from bayesdemo.fitting.metrics import step_converged_for_good, target_for

    # torch.optim's first step imports torch._dynamo (bench/README.md): a one-time cost of the process, not of
    # training. Paid here, before any timing, for every contender alike; NumPyro compiles untimed too.
    warm_up = torch.zeros(1, requires_grad=True)
    warm_up.grad = torch.zeros(1)
    torch.optim.Adam([warm_up]).step()
    dataset = generate(DataConfig(n=case.n, seed=seed))
    model = Model()
    exact = exact_posterior(dataset, model)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    config, snapshots = trajectory(contender, dataset, model, case, seed, device)
    wall = time.perf_counter() - started
    target = target_for(config, exact, dataset.least_squares())
    converged_step = step_converged_for_good(snapshots, target, exact.sd, window=WINDOW)
    converged_seconds = None
    if converged_step is not None:
        converged_seconds = next(s.seconds for s in snapshots if s.step == converged_step)
    last = snapshots[-1]
    return {
        "method": contender,
        "n": case.n,
        "batch_size": case.batch_size or case.n,
        "steps": last.step,
        "seconds": last.seconds,
        "wall_seconds": wall,
        "steps_per_second": last.step / last.seconds,
        "steps_until_stays_converged": converged_step,
        "seconds_until_stays_converged": converged_seconds,
        "final_sd_over_target": (last.sd / target.sd).tolist() if np.all(target.sd > 0) else last.sd.tolist(),
        "final_mean_error_in_sds": (np.abs(last.mean - target.mean) / exact.sd).tolist(),
        "target": target.name,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_imports_mib": rss_before,
        "device": device,
    }


def run_in_subprocess(contender: str, case: Case, seed: int, device: str) -> dict:
    """Measure one contender in a fresh interpreter (own peak memory, no warm caches from the others)."""
    command = [sys.executable, __file__, "--one", contender, "--steps", str(case.steps)]
    command += ["--one-n", str(case.n), "--batch-size", str(case.batch_size), "--budget", str(case.time_budget_s)]
    command += ["--seed", str(seed), "--device", device]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def rotated(items: list, by: int) -> list:
    """`items` starting at position `by` (mod its length): each round starts with a different contender."""
    by %= len(items)
    return items[by:] + items[:by]


def median_or_never(values: list[float | None]) -> float | None:
    """The median with None (never converged) counted as infinitely late; None when that median is never."""
    ordered = sorted(math.inf if value is None else value for value in values)
    middle = statistics.median(ordered)
    return None if math.isinf(middle) else float(middle)


def plan_order(item: tuple[tuple, list[dict]]) -> tuple:
    """Sort key of a (n, batch, device, contender) group: by data size, batch, device, then CONTENDERS' order."""
    (n, batch_size, device, contender), _ = item
    return n, batch_size, device, CONTENDERS.index(contender)


def medians(rows: list[dict]) -> list[dict]:
    """One row per (n, batch, device, contender): medians over its rounds of steps/s and the time to stay converged,
    with each figure's range over the rounds."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["n"], row["batch_size"], row["device"], row["method"]), []).append(row)
    summary = []
    for (n, batch_size, device, contender), runs in sorted(groups.items(), key=plan_order):
        speeds = [r["steps_per_second"] for r in runs]
        converged_steps = [r["steps_until_stays_converged"] for r in runs]
        converged_seconds = [r["seconds_until_stays_converged"] for r in runs]
        summary.append(
            {
                "method": contender,
                "n": n,
                "batch_size": batch_size,
                "device": device,
                "rounds": len(runs),
                "steps_per_second": statistics.median(speeds),
                "steps_per_second_range": [min(speeds), max(speeds)],
                "steps_until_stays_converged": median_or_never(converged_steps),
                "steps_until_stays_converged_all": converged_steps,
                "seconds_until_stays_converged": median_or_never(converged_seconds),
                "seconds_until_stays_converged_all": converged_seconds,
                "steps": statistics.median(r["steps"] for r in runs),
                "final_sd_over_target": np.median([r["final_sd_over_target"] for r in runs], axis=0).tolist(),
                "final_mean_error_in_sds": np.median([r["final_mean_error_in_sds"] for r in runs], axis=0).tolist(),
                "peak_rss_mib": statistics.median(r["peak_rss_mib"] for r in runs),
            }
        )
    return summary


def format_table(summary: list[dict]) -> str:
    """One row per (n, batch, device, contender): median steps/s (its range), the ratio to the Pyro anchor's median at
    the same n and batch, and the median step and training seconds from which the fit stays converged."""
    anchors = {(r["n"], r["batch_size"], r["device"]): r for r in summary if r["method"] == "anchor"}
    header = (
        f"{'n':>7} {'batch':>5} {'method':19} {'device':6} {'rounds':>6} {'steps/s':>8} {'range':>13} {'x anchor':>8} "
        f"{'steps':>6} {'stays conv. at':>17} {'train s':>8} {'sd/target':>11} {'mean err':>9} {'peak MiB':>8}"
    )
    lines = [header]
    for r in summary:
        anchor = anchors.get((r["n"], r["batch_size"], r["device"]))
        ratio = f"{r['steps_per_second'] / anchor['steps_per_second']:8.2f}" if anchor else f"{'-':>8}"
        low, high = r["steps_per_second_range"]
        step = r["steps_until_stays_converged"]
        when = ("never (by design)" if r["method"] == "noise" else "never") if step is None else f"step {step:.0f}"
        secs = "-" if r["seconds_until_stays_converged"] is None else f"{r['seconds_until_stays_converged']:.3f}"
        sd = "/".join(f"{v:.2f}" for v in r["final_sd_over_target"])
        if r["method"] == "noise":
            sd = "sd " + "/".join(f"{v:.0e}" for v in r["final_sd_over_target"])
        error = "/".join(f"{v:.2f}" for v in r["final_mean_error_in_sds"])
        lines.append(
            f"{r['n']:>7} {r['batch_size']:>5} {r['method']:19} {r['device']:6} {r['rounds']:>6} "
            f"{r['steps_per_second']:8.0f} {f'{low:.0f}-{high:.0f}':>13} {ratio} {r['steps']:>6.0f} {when:>17} "
            f"{secs:>8} {sd:>11} {error:>9} {r['peak_rss_mib']:8.0f}"
        )
    return "\n".join(lines)


def machine_description() -> dict:
    """The machine and library versions a result was measured on."""
    import torch

    machine = {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0)), "torch": torch.__version__}
    for name in ("pyro", "numpyro", "jax"):
        if importlib.util.find_spec(name) is not None:
            machine[name] = __import__(name).__version__
    return machine


def save(path: Path, plan: tuple[Case, ...], rows: list[dict]) -> None:
    """Write (or update) the JSON file: one entry per data size with every run (each with its date, round and load)
    and the medians over them. A run of some contenders replaces only their runs in the entry."""
    document = json.loads(path.read_text()) if path.exists() else {}
    cases = document.get("cases", {}) if isinstance(document.get("cases"), dict) else {}
    for case in plan:
        key = f"n={case.n},batch={case.batch_size or case.n}"
        new = [r for r in rows if r["n"] == case.n]
        measured = {r["method"] for r in new}
        kept = [r for r in cases.get(key, {}).get("runs", []) if r["method"] not in measured]
        runs = kept + new
        cases[key] = {"case": asdict(case), "machine": machine_description(), "medians": medians(runs), "runs": runs}
    path.write_text(json.dumps({"cases": cases}, indent=2) + "\n")


def main() -> None:
    """Parse arguments; either measure one contender (child) or run the rounds (parent) and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--one-n", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3000, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help="data and fit seed")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every contender (medians over them)")
    parser.add_argument("--n", type=int, action="append", help="only this data size (100 or 100000); repeatable")
    parser.add_argument("--only", action="append", choices=CONTENDERS, help="only this contender; repeatable")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: CPU vs GPU at n = 1,000,000")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test of the harness")
    parser.add_argument("--json", metavar="FILE", help="also write the medians, every run and the machine as JSON")
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        case = Case(args.one_n, args.batch_size, args.steps, args.budget)
        print(json.dumps(measure_one(args.one, case, args.seed, args.device)))
        return
    if args.device == "cuda":
        import torch  # only here: a CPU run never asks torch about CUDA

        if not torch.cuda.is_available():
            parser.error("--device cuda: torch sees no CUDA device on this machine; run on a machine with a GPU")
    contenders = [c for c in CONTENDERS if c in (args.only or CONTENDERS)]
    if importlib.util.find_spec("numpyro") is None and any(c in NUMPYRO_PARTICLES for c in contenders):
        contenders = [c for c in contenders if c not in NUMPYRO_PARTICLES]
        print("numpyro is not installed: its contenders are skipped (pip install numpyro)", file=sys.stderr)
    plan: tuple[Case, ...] = QUICK_PLAN if args.quick else PLAN
    if args.n:
        plan = tuple(case for case in plan if case.n in args.n)
        if not plan:
            parser.error(f"--n: the plan's sizes are {', '.join(str(case.n) for case in PLAN)}")
    runs = [(case, c, "cpu") for case in plan for c in contenders if c != STRAIGHTFORWARD or not case.batch_size]
    if args.device == "cuda":
        plan = GPU_PLAN
        runs = [(case, m, device) for case in GPU_PLAN for m in GPU_METHODS for device in ("cpu", "cuda")]
    rows = []
    for round_number in range(args.rounds):
        for case, contender, device in rotated(runs, round_number * max(1, len(runs) // args.rounds)):
            load = os.getloadavg()[0]
            row = run_in_subprocess(contender, case, args.seed, device)
            row.update(round=round_number + 1, load_average_1min=[load, os.getloadavg()[0]])
            row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
            rows.append(row)
            line = format_table(medians(rows[-1:])).splitlines()[-1]
            print(f"round {round_number + 1}: {line}", file=sys.stderr, flush=True)
    print(format_table(medians(rows)))
    loads = [value for row in rows for value in row["load_average_1min"]]
    print(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}", file=sys.stderr)
    if args.json:
        save(Path(args.json), plan, rows)


if __name__ == "__main__":
    main()
