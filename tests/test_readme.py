"""The README and docs: links resolve, the commands shown parse, the shipped example runs, CI runs the test command."""

import json
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bayesdemo import cli
from bayesdemo.core.data import load_csv
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def readme_commands() -> list[list[str]]:
    """Every `bayesdemo ...` line in the README's code blocks, comments removed, as argument lists."""
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("bayesdemo ")]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_names_a_file_of_the_repository(document):
    targets = [target for target in LINK.findall(document.read_text()) if "://" not in target]
    missing = [target for target in targets if not (document.parent / target).exists()]
    assert not missing, f"{document.name} links to missing files: {missing}"


def test_the_readme_shows_the_command_line_and_every_command_parses():
    commands = readme_commands()
    assert len(commands) >= 5
    parser = cli.build_parser()
    for arguments in commands:
        parser.parse_args(arguments)  # exits (SystemExit) on any argument the command line does not take


def test_the_readme_example_csv_ships_and_its_exact_posterior_matches_the_normal_equations(capsys):
    command = next(arguments for arguments in readme_commands() if "--data" in arguments)
    path = ROOT / command[command.index("--data") + 1]
    assert path.exists()
    exact_command = ["exact", *command[1:], "--json"]
    exact_command[exact_command.index("--data") + 1] = str(path)
    assert cli.main(exact_command) == 0
    output = json.loads(capsys.readouterr().out)
    # Independent reference: the posterior mean solves (Phi^T Phi / s^2 + S0^-1) m = Phi^T y / s^2 + S0^-1 m0.
    x, y = np.loadtxt(path, delimiter=",", skiprows=1, unpack=True)
    design = np.column_stack([x, np.ones_like(x)])
    prior_mean, prior_precision = np.array([-1.0, 2.0]), np.diag([1 / 10.0**2, 1 / 5.0**2])
    precision = design.T @ design / 0.5**2 + prior_precision
    mean = np.linalg.solve(precision, design.T @ y / 0.5**2 + prior_precision @ prior_mean)
    # 1e-9 relative: both are float64 solves of a well-conditioned 2x2 system.
    assert output["exact"]["mean"]["slope"] == pytest.approx(mean[0], rel=1e-9)
    assert output["exact"]["mean"]["intercept"] == pytest.approx(mean[1], rel=1e-9)
    dataset = load_csv(str(path))
    model = Model(GaussianPrior(-1.0, 10.0, 2.0, 5.0), noise_sd=0.5)
    assert exact_posterior(dataset, model).mean == pytest.approx(mean, rel=1e-9)


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    first_screen = readme[: readme.index("## ")]
    assert "bash scripts/test" in first_screen and "bash scripts/dashboard" in first_screen
    ci_commands = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.startswith("exec ")]
    assert ci_commands == ["exec bash scripts/test"]


@pytest.mark.parametrize("index_url", ["", "https://download.pytorch.org/whl/cpu"])
def test_the_setup_scripts_install_torch_from_the_index_the_readme_names(tmp_path, index_url):
    # A stand-in `pip` first on PATH records the arguments scripts/install-torch gives it.
    record = tmp_path / "pip-arguments"
    fake_pip = tmp_path / "pip"
    fake_pip.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {record}\n')
    fake_pip.chmod(0o755)
    environment = {"PATH": f"{tmp_path}:/usr/bin:/bin", "TORCH_INDEX_URL": index_url}
    subprocess.run(["bash", str(ROOT / "scripts" / "install-torch")], env=environment, check=True, timeout=30)
    arguments = record.read_text().splitlines()
    assert arguments[0] == "install" and arguments[-1] == "torch==2.13.0"
    if index_url:
        assert arguments[arguments.index("--index-url") + 1] == index_url
        assert index_url in (ROOT / "README.md").read_text()  # the README names the index the scripts are given
    else:
        assert "--index-url" not in arguments
    for script in ("dashboard", "serve", "test"):  # every setup script installs torch this one way
        text = (ROOT / "scripts" / script).read_text()
        assert "bash scripts/install-torch" in text and "torch==" not in text
