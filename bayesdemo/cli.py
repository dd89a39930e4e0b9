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

from bayesdemo.core import fields
from bayesdemo.core.config import FitConfig
from bayesdemo.core.data import Dataset, generate, load_csv
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.fields import Setting
from bayesdemo.core.priors import PARAMETER_NAMES, Model
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting import budget
from bayesdemo.fitting.metrics import target_for
from bayesdemo.fitting.report import exact_summary, fit_summary
from bayesdemo.fitting.runner import RunConfig, fit_run

# Settings sharing a flag take one value: --seed seeds the data and the fit; two of one part (--prior-mean, --prior-sd)
# take V for both or SLOPE,INTERCEPT.
FLAGS: dict[str, tuple[Setting, ...]] = {
    flag: tuple(setting for setting in fields.SETTINGS if setting.flag == flag)
    for flag in dict.fromkeys(setting.flag for setting in fields.SETTINGS if setting.flag is not None)
}
# Config field -> the command-line flag that sets it, so a validation error names what the user typed.
FLAG_FOR_FIELD = {
    **{setting.name: flag for flag, settings in FLAGS.items() for setting in settings},
    "csv": "--data",
    "x": "--data",
    "y": "--data",
}
MEMORY_NAMES = tuple(FLAG_FOR_FIELD[name] for name in ("samples", "n", "batch_size"))  # as budget.memory_problem asks
PROBLEM_PARTS = ("data", "prior")  # the parts `exact` reads; `fit` reads every part
# The data settings a CSV replaces: with --data they are named as unused, not checked (the noise sd stays the model's).
SIMULATION_FLAGS = {
    setting.name: setting.flag
    for setting in fields.SETTINGS
    if setting.part == "data" and setting.flag is not None and setting.name not in ("noise_sd", "seed")
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


def is_pair(settings: tuple[Setting, ...]) -> bool:
    """Whether a flag sets two settings of one part (SLOPE,INTERCEPT) rather than one value for all."""
    return len(settings) == 2 and settings[0].part == settings[1].part


def flag_help(settings: tuple[Setting, ...]) -> str:
    """A flag's help: its settings' help, the values accepted and the default."""
    first = settings[0]
    text = " ".join(setting.help for setting in settings)
    if first.kind == "bool":
        return text
    if is_pair(settings):
        text += " V for both, or SLOPE,INTERCEPT."
    default = "the method's" if first.optional else f"{first.default:g}" if first.kind == "float" else first.default
    return f"{text} ({first.range_text}; default {default})".replace("%", "%%")


def add_flag(group: Any, flag: str, settings: tuple[Setting, ...]) -> None:
    """The argument of one flag of the table; every default is None, so a flag not given leaves its config default."""
    first = settings[0]
    if first.kind == "bool":
        group.add_argument(flag, action="store_true", default=None, help=flag_help(settings))
    elif first.kind == "choice":
        group.add_argument(flag, choices=first.choices, default=None, help=flag_help(settings))
    else:
        kind = pair_of_floats if is_pair(settings) else int if first.kind == "int" else float
        group.add_argument(flag, type=kind, default=None, help=flag_help(settings))


def add_arguments(parser: argparse.ArgumentParser, parts: tuple[str, ...]) -> None:
    """The flags of the settings of `parts` in groups (data with --data, prior, fit), and --json."""
    data = parser.add_argument_group("data (simulated unless --data is given)")
    data.add_argument("--data", metavar="FILE.csv", help="CSV with header x,y instead of simulated data")
    groups = {"data": data, "prior": parser.add_argument_group("prior (independent Gaussians)")}
    for flag, settings in FLAGS.items():
        part = settings[0].part
        if part in parts:
            add_flag(groups.get(part) or groups.setdefault("fit", parser.add_argument_group("fit")), flag, settings)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def settle_simulation_flags(args: argparse.Namespace) -> str | None:
    """With --data, drop the simulation flags given (unchecked: they are not used) and return a note naming them.
    --seed is named too for `exact`, where it seeds nothing else."""
    unused = dict(SIMULATION_FLAGS, seed=FLAG_FOR_FIELD["seed"]) if args.command == "exact" else SIMULATION_FLAGS
    given = [flag for name, flag in unused.items() if args.data and getattr(args, dest(flag)) is not None]
    if not given:
        return None
    for flag in given:
        setattr(args, dest(flag), None)
    named = given[0] if len(given) == 1 else f"{', '.join(given[:-1])} and {given[-1]}"
    verb = "is" if len(given) == 1 else "are"
    return f"bayesdemo: note: {named} {verb} not used with --data: the data come from {args.data}."


def dest(flag: str) -> str:
    """The attribute argparse keeps a flag's value under: --noise-sd -> noise_sd."""
    return flag.removeprefix("--").replace("-", "_")


def given_values(args: argparse.Namespace, part: str) -> dict[str, Any]:
    """The values the flags given set in `part` ("data", "prior", "fit" or "" for Scenario), by field name."""
    values: dict[str, Any] = {}
    for flag, settings in FLAGS.items():
        value = getattr(args, dest(flag), None)
        if value is None:
            continue
        for index, setting in enumerate(settings):
            if setting.part == part:
                values[setting.name] = value[index] if is_pair(settings) else value
    return values


def scenario_of(args: argparse.Namespace) -> Scenario:
    """The Scenario the flags describe, defaults for the rest; ConfigError naming the field on a bad value."""
    parts: dict[str, Any] = {part: fields.PARTS[part](**given_values(args, part)) for part in PROBLEM_PARTS}
    if args.command == "fit":
        parts["fit"] = FitConfig(**given_values(args, "fit"))
    return Scenario(**parts, **given_values(args, ""))


def build_parser() -> OneLineParser:
    """The `bayesdemo` argument parser with its `fit` and `exact` subcommands."""
    parser = OneLineParser(prog="bayesdemo", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    exact = commands.add_parser("exact", help="print the exact conjugate posterior alone")
    add_arguments(exact, PROBLEM_PARTS)
    fit = commands.add_parser("fit", help="run one inference method and compare it with the exact posterior")
    add_arguments(fit, (*PROBLEM_PARTS, "fit", ""))
    return parser


def build_problem(args: argparse.Namespace, scenario: Scenario) -> tuple[Dataset, Model]:
    """The dataset (simulated or loaded) and the model of the scenario the flags describe."""
    dataset = load_csv(args.data) if args.data else generate(scenario.data)
    return dataset, scenario.model


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
                lines.append(f"On the command line: {FLAG_FOR_FIELD['centre_x']} or {FLAG_FOR_FIELD['until_target']}.")
        lines.append(fit["message"])
    return "\n".join(lines)


def run_command(args: argparse.Namespace) -> dict[str, Any]:
    """Compute what the command asks for as a plain dict."""
    scenario = scenario_of(args)
    dataset, model = build_problem(args, scenario)
    exact = exact_posterior(dataset, model)
    result: dict[str, Any] = {
        "data": {"source": dataset.source, "n": dataset.n},
        "exact": exact_summary(exact),
    }
    if args.command == "fit":
        # One thread, as the page's workers train: torch's own thread pool oversubscribes a shared machine
        # (docs/classroom.md, Limits that keep one student from stalling the class).
        torch.set_num_threads(1)
        fit_config = scenario.fit
        problem = budget.memory_problem(fit_config, dataset.n, MEMORY_NAMES)
        if problem is not None:
            raise ConfigError("samples", problem)
        run = fit_run(dataset, model, fit_config, RunConfig(snapshot_every=scenario.snapshot_every))
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
