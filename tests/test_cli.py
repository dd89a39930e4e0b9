"""`python -m bayesdemo`: JSON and table output agree with the engine; bad arguments exit 2 with one line."""

import json
import subprocess
import sys

import numpy as np
import pytest

from bayesdemo.core.data import DataConfig, generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.priors import GaussianPrior, Model


def bayesdemo(*args: str) -> subprocess.CompletedProcess:
    """Run the command line in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "bayesdemo", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_full_covariance_fit_lands_within_ten_percent_of_the_exact_sds():
    result = bayesdemo("fit", "--method", "svi", "--guide", "mvn", "--steps", "3000", "--json")
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    exact = exact_posterior(generate(DataConfig()), Model())
    for index, name in enumerate(("slope", "intercept")):
        assert output["exact"]["sd"][name] == pytest.approx(exact.sd[index], rel=1e-12)
        assert output["exact"]["mean_field_sd"][name] == pytest.approx(exact.mean_field_sd[index], rel=1e-12)
        assert output["fit"]["sd"][name] == pytest.approx(exact.sd[index], rel=0.1)
        assert abs(output["fit"]["mean"][name] - exact.mean[index]) < 0.2 * exact.sd[index]
    assert output["exact"]["corr"] == pytest.approx(exact.corr)
    assert output["exact"]["log_evidence"] == pytest.approx(exact.log_evidence)
    assert output["fit"]["method"] == "svi" and output["fit"]["steps"] == 3000 and output["fit"]["seconds"] > 0
    assert 0 <= output["kl_to_exact"] < 0.05


def test_pyro_trace_elbo_on_request_gives_the_direct_elbos_fit():
    args = ("fit", "--method", "svi", "--guide", "tutorial", "--steps", "200", "--json")
    direct, trace = bayesdemo(*args), bayesdemo(*args, "--svi-elbo", "trace")
    assert direct.returncode == 0 and trace.returncode == 0, (direct.stderr, trace.stderr)
    direct_fit, trace_fit = json.loads(direct.stdout)["fit"], json.loads(trace.stdout)["fit"]
    for key in ("mean", "sd"):
        for name in ("slope", "intercept"):
            assert trace_fit[key][name] == pytest.approx(direct_fit[key][name], rel=1e-8)


def test_exact_command_on_a_csv_with_custom_prior(tmp_path):
    data = generate(DataConfig(n=40, slope=-1.0, intercept=2.0, noise_sd=0.5, seed=3))
    path = tmp_path / "points.csv"
    path.write_text(data.to_csv())
    result = bayesdemo(
        "exact", "--data", str(path), "--noise-sd", "0.5", "--prior-mean", "1,-1", "--prior-sd", "2", "--json"
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    exact = exact_posterior(data, Model(GaussianPrior(1.0, 2.0, -1.0, 2.0), noise_sd=0.5))
    np.testing.assert_allclose([output["exact"]["mean"]["slope"], output["exact"]["mean"]["intercept"]], exact.mean)
    assert output["data"] == {"source": str(path), "n": 40}
    assert "fit" not in output


def test_table_output_is_readable():
    result = bayesdemo("fit", "--method", "bbb", "--steps", "300")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("slope") for line in lines) and any(line.startswith("intercept") for line in lines)
    assert "mean-field sd" in result.stdout and "KL(q || exact)" in result.stdout


@pytest.mark.parametrize(
    ("args", "flag", "fragment"),
    [
        (["fit", "--steps", "0"], "--steps", "between 1 and"),
        (["fit", "--noise-sd", "-1"], "--noise-sd", "> 0"),
        (["fit", "--lr", "nan"], "--lr", "finite"),
        (["fit", "--method", "mcmc"], "--method", "choose from"),
        (["fit", "--samples", "x"], "--samples", "invalid int"),
        (["exact", "--x-min", "2", "--x-max", "1"], "--x-max", "must be >"),
        (["exact", "--prior-sd", "0,1"], "--prior-sd", "> 0"),
        (["exact", "--n", "1"], "--n", "between 2 and"),
        (["fit", "--method", "bbb", "--batch-size", "500"], "--batch-size", "<= n"),
        (["exact", "--data", "/no/such/file.csv"], "--data", "cannot read"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_naming_the_argument(args, flag, fragment):
    result = bayesdemo(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert flag in lines[0] and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_csv_names_the_data_argument(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("x,y\n1,2\n1,3\n")
    result = bayesdemo("exact", "--data", str(path))
    assert result.returncode == 2
    assert "--data" in result.stderr and "constant" in result.stderr


def test_diverging_fit_exits_1_with_advice():
    result = bayesdemo("fit", "--method", "noise", "--lr", "5", "--steps", "1000", "--json")
    assert result.returncode == 1
    output = json.loads(result.stdout)
    assert output["fit"]["status"] == "diverged"
    assert "Lower the learning rate" in output["fit"]["message"]


def test_uncentred_x_reads_far_from_target_with_its_reason_and_centre_x_arrives():
    table = bayesdemo("fit", "--x-min", "10", "--x-max", "12")
    assert table.returncode == 0, table.stderr
    assert "status: Finished · far from target" in table.stdout
    assert "ill-conditioned" in table.stdout and "--centre-x" in table.stdout
    centred = bayesdemo("fit", "--x-min", "10", "--x-max", "12", "--centre-x", "--json")
    fit = json.loads(centred.stdout)["fit"]
    assert fit["convergence"]["status"] == "at_target" and fit["status_text"] == "Finished · at target"
    assert fit["centre_x"] is True and fit["target"]["name"] == "mean-field optimum in centred x"


def test_until_target_flag_stops_at_target_and_says_where():
    fit = json.loads(bayesdemo("fit", "--until-target", "--steps", "20000", "--json").stdout)["fit"]
    assert fit["message"] == fit["message"].replace("cap", "") and fit["message"].startswith("At target at step ")
    assert fit["steps"] < 20000 and fit["convergence"]["status"] == "at_target"
