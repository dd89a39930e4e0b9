"""`python -m bayesdemo {fit,exact} ...`: the engine from the command line, a table or one JSON object out."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import torch

from bayesdemo.core.config import GUIDES, METHODS, OPTIMIZERS, SVI_ELBOS, FitConfig
from bayesdemo.core.data import DataConfig, Dataset, generate, load_csv
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import PARAMETER_NAMES, GaussianPrior, Model
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting import budget
from bayesdemo.fitting.metrics import target_for
from bayesdemo.fitting.report import exact_summary, fit_summary
from bayesdemo.fitting.runner import RunConfig, fit_run

# Config field -> the command-line flag that sets it, so a validation error names what the user typed.
FLAG_FOR_FIELD = {
    "n": "--n",
    "slope": "--slope",
    "intercept": "--intercept",
    "noise_sd": "--noise-sd",
    "x_min": "--x-min",
    "x_max": "--x-max",
    "seed": "--seed",
    "slope_mean": "--prior-mean",
    "intercept_mean": "--prior-mean",
    "slope_sd": "--prior-sd",
    "intercept_sd": "--prior-sd",
    "steps": "--steps",
    "lr": "--lr",
    "lr_decay": "--lr-decay",
    "samples": "--samples",
    "batch_size": "--batch-size",
    "optimizer": "--optimizer",
    "csv": "--data",
    "x": "--data",
    "y": "--data",
    "snapshot_every": "--snapshot-every",
    "centre_x": "--centre-x",
    "until_target": "--until-target",
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit code 2; `--x-min -1e6` reads -1e6 as a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Python 3.11 and 3.12 take only -N and -N.N for negative numbers, so `--x-min -1e6` and `--prior-mean -1,2`
        # failed with "expected one argument"; 3.13 reads any "-" before a digit (or ".digit") as a value, as here.
        self._negative_number_matcher = re.compile(r"-\.?\d")

    def error(self, message: str) -> NoReturn:
        """Print `prog: error: message` alone and exit 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def pair_of_floats(text: str) -> tuple[float, float]:
    """Parse `V` (both parameters) or `SLOPE,INTERCEPT` into two numbers."""
    parts = text.split(",")
    if len(parts) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected V or SLOPE,INTERCEPT, got {text!r}")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers, got {text!r}") from None
    return (values[0], values[-1])


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags for the data (simulated or a CSV) and the prior, shared by `fit` and `exact`."""
    defaults = DataConfig()
    group = parser.add_argument_group("data (simulated unless --data is given)")
    # The flags of SIMULATION_FLAGS default to None, so that a flag given with --data can be told apart and named.
    group.add_argument("--n", type=int, help=f"number of points (2 to 1,000,000; default {defaults.n})")
    group.add_argument("--slope", type=float, help=f"true slope (default {defaults.slope:g})")
    group.add_argument("--intercept", type=float, help=f"true intercept (default {defaults.intercept:g})")
    group.add_argument(
        "--noise-sd", type=float, default=defaults.noise_sd, help="noise sd: simulated and assumed known (> 0)"
    )
    group.add_argument("--x-min", type=float, help=f"lower end of x ~ U(x_min, x_max) (default {defaults.x_min:g})")
    group.add_argument("--x-max", type=float, help=f"upper end of x (default {defaults.x_max:g})")
    group.add_argument("--seed", type=int, help="seed of the data and of the fit (0 to 2^32-1; default 0)")
    group.add_argument("--data", metavar="FILE.csv", help="CSV with header x,y instead of simulated data")
    prior = parser.add_argument_group("prior (independent Gaussians)")
    prior.add_argument("--prior-mean", type=pair_of_floats, default=(0.0, 0.0), help="V or SLOPE,INTERCEPT")
    prior.add_argument("--prior-sd", type=pair_of_floats, default=(10.0, 10.0), help="V or SLOPE,INTERCEPT (> 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


SIMULATION_FLAGS = {"n": "--n", "slope": "--slope", "intercept": "--intercept", "x_min": "--x-min", "x_max": "--x-max"}


def settle_simulation_flags(args: argparse.Namespace) -> str | None:
    """Put the simulation defaults in the flags left unset; with --data, drop the simulation flags given (unchecked:
    they are not used) and return a note naming them. --seed is named too for `exact`, where it seeds nothing else."""
    unused = dict(SIMULATION_FLAGS, seed="--seed") if args.command == "exact" else SIMULATION_FLAGS
    given = [flag for name, flag in unused.items() if args.data and getattr(args, name) is not None]
    defaults = DataConfig()
    for name in (*SIMULATION_FLAGS, "seed"):
        if getattr(args, name) is None or (args.data and name in unused):
            setattr(args, name, getattr(defaults, name))
    if not given:
        return None
    named = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
    verb = "is" if len(given) == 1 else "are"
    return f"bayesdemo: note: {named} {verb} not used with --data: the data come from {args.data}."


def build_parser() -> OneLineParser:
    """The `bayesdemo` argument parser with its `fit` and `exact` subcommands."""
    parser = OneLineParser(prog="bayesdemo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    exact = commands.add_parser("exact", help="print the exact conjugate posterior alone")
    add_problem_arguments(exact)
    fit = commands.add_parser("fit", help="run one inference method and compare it with the exact posterior")
    add_problem_arguments(fit)
    fit.add_argument("--method", choices=METHODS, default="bbb", help="noise, bbb or svi")
    fit.add_argument("--guide", choices=GUIDES, default="normal", help="Pyro SVI guide")
    fit.add_argument(
        "--svi-elbo",
        choices=SVI_ELBOS,
        default="direct",
        help="Pyro SVI: Trace_ELBO's estimate written out (direct, faster) or pyro.infer.Trace_ELBO itself (trace)",
    )
    fit.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="default: sgd for noise, else adam")
    fit.add_argument(
        "--steps", type=int, default=None, help="optimisation steps (1 to 1,000,000; default: the method's)"
    )
    fit.add_argument("--lr", type=float, default=None, help="learning rate (default: the method's)")
    fit.add_argument("--lr-decay", type=float, default=None, help="final lr / first lr (default: the method's)")
    fit.add_argument("--samples", type=int, default=None, help="samples per step (default: the method's)")
    fit.add_argument("--batch-size", type=int, default=0, help="minibatch size; 0 = all data")
    fit.add_argument("--snapshot-every", type=int, default=10, help="steps between recorded snapshots")
    fit.add_argument(
        "--centre-x", action="store_true", help="fit on x centred at its mean (cures uncentred, ill-conditioned x)"
    )
    fit.add_argument(
        "--until-target", action="store_true", help="stop once the fit is at its target; --steps is then the cap"
    )
    return parser


def build_problem(args: argparse.Namespace) -> tuple[Dataset, Model]:
    """The dataset (simulated or loaded) and the model from parsed arguments; ConfigError on a bad value."""
    data_config = DataConfig(
        n=args.n,
        slope=args.slope,
        intercept=args.intercept,
        noise_sd=args.noise_sd,
        x_min=args.x_min,
        x_max=args.x_max,
        seed=args.seed,
    )
    dataset = load_csv(args.data) if args.data else generate(data_config)
    prior = GaussianPrior(args.prior_mean[0], args.prior_sd[0], args.prior_mean[1], args.prior_sd[1])
    return dataset, Model(prior, noise_sd=args.noise_sd)


def finite_or_none(value: Any) -> Any:
    """Replace non-finite floats by None, recursively, so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(item) for item in value]
    return value


def format_table(result: dict[str, Any]) -> str:
    """A readable table of the exact reference and, if present, the fit."""
    exact = result["exact"]
    lines = [
        f"data: {result['data']['source']}, n = {result['data']['n']}, noise sd = {exact['noise_sd']:g}",
        f"exact posterior: corr(slope, intercept) = {exact['corr']:+.3f}, log evidence = {exact['log_evidence']:.3f}",
    ]
    fit = result.get("fit")
    header = f"{'':10} {'exact mean':>12} {'exact sd':>10} {'mean-field sd':>14}"
    if fit:
        header += f" {'fit mean':>12} {'fit sd':>10} {'sd/exact':>9} {'sd/mf':>7}"
    lines.append(header)
    for name in PARAMETER_NAMES:
        row = f"{name:10} {exact['mean'][name]:12.5f} {exact['sd'][name]:10.5f} {exact['mean_field_sd'][name]:14.5f}"
        if fit:
            row += (
                f" {fit['mean'][name]:12.5f} {fit['sd'][name]:10.5f}"
                f" {fit['sd_ratio_to_exact'][name]:9.3f} {fit['sd_ratio_to_mean_field'][name]:7.3f}"
            )
        lines.append(row)
    if fit:
        lines.append(
            f"fit: {fit['label']}, {fit['steps']} steps in {fit['seconds']:.2f} s, "
            f"KL(q || exact) = {result['kl_to_exact']:.4g}, target: {fit['target']['name']}"
        )
        lines.append(f"status: {fit['status_text']}")
        if fit["status"] != "diverged" and fit["convergence"]["reason"]:
            lines.append(fit["convergence"]["reason"])
            if "Centre x" in fit["convergence"]["reason"]:
                lines.append("On the command line: --centre-x or --until-target.")
        lines.append(fit["message"])
    return "\n".join(lines)


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """Compute what the command asks for as a plain dict."""
    dataset, model = build_problem(args)
    exact = exact_posterior(dataset, model)
    result: dict[str, Any] = {
        "data": {"source": dataset.source, "n": dataset.n},
        "exact": exact_summary(exact),
    }
    if args.command == "fit":
        # One thread, as the page's workers train: torch's thread pool on a busy machine made a 2-second full-covariance
        # fit take 53 to 91 s on 2 cores.
        torch.set_num_threads(1)
        fit_config = FitConfig(
            method=args.method,
            guide=args.guide,
            optimizer=args.optimizer,
            lr=args.lr,
            lr_decay=args.lr_decay,
            svi_elbo=args.svi_elbo,
            samples=args.samples,
            batch_size=args.batch_size,
            seed=args.seed,
            steps=args.steps,
            centre_x=args.centre_x,
            until_target=args.until_target,
        )
        problem = budget.memory_problem(fit_config, dataset.n, budget.CLI_NAMES)
        if problem is not None:
            raise ConfigError("samples", problem)
        run = fit_run(dataset, model, fit_config, RunConfig(snapshot_every=args.snapshot_every))
        for _ in run:
            pass
        summary = fit_summary(fit_config, run, exact, target_for(fit_config, exact, dataset.least_squares()))
        result["fit"] = summary
        result["kl_to_exact"] = summary["kl_to_exact"]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, validate, compute, print; exit 2 with one line on a bad argument."""
    parser = build_parser()
    args = parser.parse_args(argv)
    note = settle_simulation_flags(args)
    if note:
        print(note, file=sys.stderr)
    try:
        result = run_command(args)
    except ConfigError as error:
        flag = FLAG_FOR_FIELD.get(error.field, f"--{error.field.replace('_', '-')}")
        parser.exit(2, f"bayesdemo: error: argument {flag}: {error}\n")
    except OSError as error:
        parser.exit(2, f"bayesdemo: error: argument --data: cannot read {args.data!r}: {error.strerror}\n")
    if args.json:
        print(json.dumps(finite_or_none(result), indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 1 if result.get("fit", {}).get("status") == "diverged" else 0
