"""Benchmark: steps/s, training seconds and steps until each method *stays* converged, peak memory, vs stock anchors.

Run: `python bench/run.py` (add --quick for a short smoke run, --json FILE to save, --device cuda for CPU vs GPU at
n = 1,000,000 where torch sees CUDA). Each (n, method) runs in its own process so peak memory (max RSS) is its own.
Ratios are against the anchor: Pyro SVI written as in Pyro's tutorial (bench/anchor.py) on the same data; NumPyro's
stock SVI runs too when numpyro is installed. "Stays converged": the mean over the last 50 steps within 0.1
posterior sd of the method's target mean and within 10% of its target sd at every snapshot to the end of the run
(bayesdemo.metrics.step_converged_for_good). Seconds are training seconds: snapshots (every 5 steps) excluded.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ANCHORS = ("anchor", "anchor-numpyro")
METHODS = (*ANCHORS, "noise", "bbb", "bbb-straightforward", "svi-normal", "svi-tutorial", "svi-mvn")
STRAIGHTFORWARD = "bbb-straightforward"  # autograd through the per-point loss and torch.optim.Adam: full data only
GPU_METHODS = ("noise", "bbb")  # Pyro SVI's model lives on the CPU (FitConfig refuses a CUDA device for it)
WINDOW = 50  # steps averaged by the convergence rule (metrics.DEFAULT_WINDOW)
SNAPSHOT_EVERY = 5


@dataclass(frozen=True)
class Case:
    """One data size of the benchmark: n points, minibatch size (0: full data), step cap and training-time cap."""

    n: int  # data points
    batch_size: int  # points per step; 0 means the full data
    steps: int  # most steps a method takes
    time_budget_s: float  # most training seconds a method takes (0: none)


PLAN = (Case(100, 0, 3000, 0.0), Case(100_000, 1000, 40_000, 15.0))
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


def trajectory(method: str, dataset, model, case: Case, seed: int, device: str):
    """(config for the target, snapshots) of one method's run on `dataset`."""
    from bayesdemo.exact import Gaussian
    from bayesdemo.methods import FitConfig, make_method
    from bayesdemo.runner import Run, RunConfig, Snapshot

    if method in ANCHORS:
        import anchor

        run_anchor = anchor.pyro_tutorial if method == "anchor" else anchor.numpyro_tutorial
        x, y = np.array(dataset.x), np.array(dataset.y)
        steps = run_anchor(
            x, y, float(model.noise_sd), case.steps, case.batch_size, SNAPSHOT_EVERY, seed, case.time_budget_s
        )
        snapshots = [Snapshot.of(step, seconds, 0.0, Gaussian.diagonal(mean, sd)) for step, seconds, mean, sd in steps]
        return FitConfig(method="svi", guide="tutorial", seed=seed), snapshots
    name, _, guide = method.partition("-")
    if method == STRAIGHTFORWARD:
        guide = ""
    config = FitConfig(
        method=name, guide=guide or "normal", steps=case.steps, batch_size=case.batch_size, seed=seed, device=device
    )
    run_config = RunConfig(snapshot_every=SNAPSHOT_EVERY, time_budget_s=case.time_budget_s)
    fit = make_method(dataset, model, config)
    if method == STRAIGHTFORWARD:
        fit.uses_sufficient_statistics = False
        fit.optimizer = TorchAdam([fit.mu, fit.rho], config.learning_rate)
    run = Run(fit, case.steps, run_config)
    for _ in run:
        pass
    return config, run.snapshots


def measure_one(method: str, case: Case, seed: int, device: str) -> dict:
    """Run one method in this process and summarise speed, convergence and memory."""
    import torch

    torch.set_num_threads(1)
    from bayesdemo.data import DataConfig, generate
    from bayesdemo.exact import exact_posterior
    from bayesdemo.metrics import step_converged_for_good, target_for
    from bayesdemo.priors import Model

    dataset = generate(DataConfig(n=case.n, seed=seed))
    model = Model()
    exact = exact_posterior(dataset, model)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    config, snapshots = trajectory(method, dataset, model, case, seed, device)
    wall = time.perf_counter() - started
    target = target_for(config, exact, dataset.least_squares())
    converged_step = step_converged_for_good(snapshots, target, exact.sd, window=WINDOW)
    converged_seconds = None
    if converged_step is not None:
        converged_seconds = next(s.seconds for s in snapshots if s.step == converged_step)
    last = snapshots[-1]
    return {
        "method": method,
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


def run_in_subprocess(method: str, case: Case, seed: int, device: str) -> dict:
    """Measure one method in a fresh interpreter (own peak memory, no warm caches from the others)."""
    command = [sys.executable, __file__, "--one", method, "--n", str(case.n), "--steps", str(case.steps)]
    command += ["--batch-size", str(case.batch_size), "--budget", str(case.time_budget_s)]
    command += ["--seed", str(seed), "--device", device]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def format_table(results: list[dict]) -> str:
    """One row per (n, batch, device, method), with steps/s as a ratio to the Pyro anchor at the same n and batch."""
    anchors = {(r["n"], r["batch_size"]): r for r in results if r["method"] == "anchor"}
    header = (
        f"{'n':>9} {'batch':>7} {'method':19} {'device':6} {'steps/s':>8} {'x anchor':>8} {'steps':>6} "
        f"{'stays conv. at':>15} {'train s':>8} {'sd/target':>11} {'mean err':>9} {'peak MiB':>8}"
    )
    lines = [header]
    for r in results:
        anchor = anchors.get((r["n"], r["batch_size"]))
        ratio = f"{r['steps_per_second'] / anchor['steps_per_second']:8.2f}" if anchor else f"{'-':>8}"
        step = r["steps_until_stays_converged"]
        when = ("never (by design)" if r["method"] == "noise" else "never") if step is None else f"step {step}"
        secs = "-" if r["seconds_until_stays_converged"] is None else f"{r['seconds_until_stays_converged']:.2f}"
        sd = "/".join(f"{v:.2f}" for v in r["final_sd_over_target"])
        if r["method"] == "noise":
            sd = "sd " + "/".join(f"{v:.0e}" for v in r["final_sd_over_target"])
        error = "/".join(f"{v:.2f}" for v in r["final_mean_error_in_sds"])
        lines.append(
            f"{r['n']:>9} {r['batch_size']:>7} {r['method']:19} {r['device']:6} {r['steps_per_second']:8.0f} {ratio} "
            f"{r['steps']:>6} {when:>15} {secs:>8} {sd:>11} {error:>9} {r['peak_rss_mib']:8.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments; either measure one method (child) or the whole plan (parent) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=3000, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help="data and fit seed")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cuda: CPU vs GPU at n = 1,000,000")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test of the harness")
    parser.add_argument("--json", metavar="FILE", help="also write the results (and the machine) as JSON")
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        case = Case(args.n, args.batch_size, args.steps, args.budget)
        print(json.dumps(measure_one(args.one, case, args.seed, args.device)))
        return
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device on this machine; run on a machine with a GPU")
    methods = [m for m in METHODS if m != "anchor-numpyro" or importlib.util.find_spec("numpyro") is not None]
    if len(methods) < len(METHODS):
        print("numpyro is not installed: its anchor is skipped (pip install numpyro)", file=sys.stderr)
    plan = QUICK_PLAN if args.quick else PLAN
    runs = [(case, m, "cpu") for case in plan for m in methods if m != STRAIGHTFORWARD or not case.batch_size]
    if args.device == "cuda":
        runs = [(case, m, device) for case in GPU_PLAN for m in GPU_METHODS for device in ("cpu", "cuda")]
    results = []
    for case, method, device in runs:
        results.append(run_in_subprocess(method, case, args.seed, device))
        print(format_table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_table(results))
    if args.json:
        machine = {"platform": platform.platform(), "cpus": len(os.sched_getaffinity(0))}
        machine["torch"] = torch.__version__
        machine["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        Path(args.json).write_text(json.dumps({"machine": machine, "results": results}, indent=2))


if __name__ == "__main__":
    main()
