"""Benchmark: steps/s, wall time and steps until each method *stays* converged, peak memory, vs a stock Pyro anchor.

Run: `python bench/run.py` (add --quick for a short smoke run, --json FILE to save). Each (n, method) runs in its own
process so peak memory (max RSS) is its own. Ratios are against the anchor: Pyro SVI written as in Pyro's tutorial
(global param store, hand-written softplus guide, pyro.optim.Adam(lr 0.05), Trace_ELBO, svi.step), on the same data.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("anchor", "bbb", "svi-normal", "svi-tutorial", "svi-mvn")
WINDOW = 50  # steps averaged by the convergence rule (metrics.DEFAULT_WINDOW)


def anchor_trajectory(dataset, model, steps: int, batch_size: int, snapshot_every: int, seed: int):
    """Stock Pyro tutorial SVI; yields (step, seconds, mean (2,), sd (2,)) every `snapshot_every` steps."""
    import pyro
    import pyro.distributions as dist
    import torch
    from pyro.infer import SVI, Trace_ELBO
    from pyro.optim import Adam

    pyro.settings.set(module_local_params=False)
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    x = torch.tensor(np.array(dataset.x), dtype=torch.float32)
    y = torch.tensor(np.array(dataset.y), dtype=torch.float32)
    noise_sd = float(model.noise_sd)
    subsample = batch_size or None

    def tutorial_model(x, y):
        w = pyro.sample("w", dist.Normal(0.0, 10.0))
        b = pyro.sample("b", dist.Normal(0.0, 10.0))
        with pyro.plate("map", x.shape[0], subsample_size=subsample) as index:
            pyro.sample("obs", dist.Normal(w * x[index] + b, noise_sd), obs=y[index])

    def tutorial_guide(x, y):
        w_loc = pyro.param("guide_mean_weight", torch.randn(()))
        w_scale = torch.nn.functional.softplus(pyro.param("guide_log_scale_weight", -3.0 + 0.05 * torch.randn(())))
        b_loc = pyro.param("guide_mean_bias", torch.randn(()))
        b_scale = torch.nn.functional.softplus(pyro.param("guide_log_scale_bias", -3.0 + 0.05 * torch.randn(())))
        pyro.sample("w", dist.Normal(w_loc, w_scale))
        pyro.sample("b", dist.Normal(b_loc, b_scale))

    svi = SVI(tutorial_model, tutorial_guide, Adam({"lr": 0.05}), loss=Trace_ELBO())
    seconds = 0.0
    for step in range(1, steps + 1):
        started = time.perf_counter()
        svi.step(x, y)
        seconds += time.perf_counter() - started
        if step % snapshot_every == 0:
            store = pyro.get_param_store()
            mean = np.array([store["guide_mean_weight"].item(), store["guide_mean_bias"].item()])
            raw = [store["guide_log_scale_weight"].item(), store["guide_log_scale_bias"].item()]
            yield step, seconds, mean, np.log1p(np.exp(raw))


def measure_one(method: str, n: int, steps: int, batch_size: int, seed: int, device: str) -> dict:
    """Run one method in this process and summarise speed, convergence and memory."""
    import torch

    torch.set_num_threads(1)
    from bayesdemo.data import DataConfig, generate
    from bayesdemo.exact import Gaussian, exact_posterior
    from bayesdemo.methods import FitConfig, make_method
    from bayesdemo.metrics import step_converged_for_good, target_for
    from bayesdemo.priors import Model
    from bayesdemo.runner import Run, RunConfig, Snapshot

    dataset = generate(DataConfig(n=n, seed=seed))
    model = Model()
    exact = exact_posterior(dataset, model)
    snapshot_every = 5
    if method == "anchor":
        config = FitConfig(method="svi", guide="tutorial", steps=steps, seed=seed)
        snapshots = [
            Snapshot.of(step, seconds, 0.0, Gaussian.diagonal(mean, sd))
            for step, seconds, mean, sd in anchor_trajectory(dataset, model, steps, batch_size, snapshot_every, seed)
        ]
        seconds = snapshots[-1].seconds
    else:
        name, _, guide = method.partition("-")
        config = FitConfig(method=name, guide=guide or "normal", steps=steps, batch_size=batch_size, seed=seed)
        run = Run(make_method(dataset, model, config), steps, RunConfig(snapshot_every=snapshot_every))
        for _ in run:
            pass
        snapshots, seconds = run.snapshots, run.seconds
    target = target_for(config, exact, dataset.least_squares())
    converged_step = step_converged_for_good(snapshots, target, exact.sd, window=WINDOW)
    converged_seconds = None
    if converged_step is not None:
        converged_seconds = next(s.seconds for s in snapshots if s.step == converged_step)
    last = snapshots[-1]
    return {
        "method": method,
        "n": n,
        "batch_size": batch_size or n,
        "steps": last.step,
        "seconds": seconds,
        "steps_per_second": last.step / seconds,
        "steps_until_stays_converged": converged_step,
        "seconds_until_stays_converged": converged_seconds,
        "final_sd_over_target": (last.sd / target.sd).tolist(),
        "final_mean_error_in_sds": (np.abs(last.mean - target.mean) / exact.sd).tolist(),
        "target": target.name,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "device": device,
    }


def run_in_subprocess(method: str, n: int, steps: int, batch_size: int, seed: int, device: str) -> dict:
    """Measure one method in a fresh interpreter (own peak memory, no warm caches from the others)."""
    command = [sys.executable, __file__, "--one", method, "--n", str(n), "--steps", str(steps)]
    command += ["--batch-size", str(batch_size), "--seed", str(seed), "--device", device]
    output = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return json.loads(output.strip().splitlines()[-1])


def format_table(results: list[dict]) -> str:
    """One row per (n, method), with ratios to the anchor at the same n."""
    anchors = {r["n"]: r for r in results if r["method"] == "anchor"}
    header = (
        f"{'n':>8} {'method':14} {'steps/s':>9} {'x anchor':>8} {'stays conv. at':>15} {'seconds':>8} "
        f"{'sd/target':>13} {'peak MiB':>9}"
    )
    lines = [header]
    for r in results:
        anchor = anchors.get(r["n"])
        ratio = r["steps_per_second"] / anchor["steps_per_second"] if anchor else float("nan")
        step = r["steps_until_stays_converged"]
        when = "never" if step is None else f"{step}"
        secs = "-" if r["seconds_until_stays_converged"] is None else f"{r['seconds_until_stays_converged']:.2f}"
        sd = "/".join(f"{v:.2f}" for v in r["final_sd_over_target"])
        lines.append(
            f"{r['n']:>8} {r['method']:14} {r['steps_per_second']:9.0f} {ratio:8.2f} {when:>15} {secs:>8} "
            f"{sd:>13} {r['peak_rss_mib']:9.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    """Parse arguments; either measure one method (child) or all of them (parent)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--one", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test of the harness")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args.one, args.n, args.steps, args.batch_size, args.seed, args.device)))
        return
    plan = [(100, 3000, 0), (100_000, 5000, 100)]
    if args.quick:
        plan = [(100, 300, 0), (10_000, 300, 100)]
    results = []
    for n, steps, batch_size in plan:
        for method in METHODS:
            results.append(run_in_subprocess(method, n, steps, batch_size, args.seed, args.device))
            print(format_table(results[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
