"""The page's limits through Streamlit's AppTest: a fit over the memory budget never starts; a lost run is told; a whole
number past 2^53 is refused with its field's range."""

import pytest

from bayesdemo.fitting import budget
from bayesdemo.methods import FitConfig
from bayesdemo.page.explore import TAB_KEY
from tests.support.pages import page_at, stop_job

RESTART_WORDS = "The server restarted or this page's session ended, so the previous run is gone."


def test_a_fit_over_the_memory_budget_shows_its_estimate_by_run_and_cannot_start():
    page = page_at({"m": "noise", "k": "1024", "n": "1000000"})
    run = page.button(key="run")
    assert run.disabled
    estimate = budget.fit_cost(FitConfig(method="noise", samples=1024), 1_000_000).peak_bytes
    messages = [error.value for error in page.sidebar.error]
    assert any(budget.size_text(estimate) in text and "Batch size" in text for text in messages), messages


def test_a_minibatch_of_the_same_fit_may_run():
    page = page_at({"m": "noise", "k": "1024", "n": "1000000", "bs": "1000"})
    assert not page.button(key="run").disabled
    assert not page.sidebar.error


def test_a_fresh_session_with_a_run_token_says_the_run_is_gone_and_drops_the_token():
    page = page_at({"n": "40", "m": "noise", "run": "0123abcd"})
    assert any(RESTART_WORDS in info.value for info in page.info), [info.value for info in page.info]
    assert "run" not in dict(page.query_params)
    assert dict(page.query_params).get("n") in ("40", ["40"])  # the scenario stays in the link


def test_run_writes_a_token_that_a_reopened_page_reads_as_a_lost_run():
    page = page_at({"n": "40", "m": "noise", "t": "50"})
    assert not any(RESTART_WORDS in info.value for info in page.info)
    try:
        page.button(key="run").click().run()
        token = dict(page.query_params).get("run")
        assert token, dict(page.query_params)
        assert not any(RESTART_WORDS in info.value for info in page.info)
    finally:
        stop_job(page)
    reopened = page_at(
        {key: value if isinstance(value, str) else value[-1] for key, value in page.query_params.items()}
    )
    assert any(RESTART_WORDS in info.value for info in reopened.info)


def test_a_fit_that_runs_out_of_memory_in_its_worker_says_so_on_the_page(monkeypatch):
    from bayesdemo.workers import jobs

    # A fit the estimate would refuse, let through as one it underrates would be; the worker's 64 MiB of headroom
    # is below one 156 MiB (1024 x 20,000 float64) draw.
    monkeypatch.setattr(budget, "fits_problem", lambda configs, n: None)
    monkeypatch.setattr(jobs, "fits_problem", lambda configs, n: None)
    monkeypatch.setattr(jobs, "WORKER_MEMORY_HEADROOM_BYTES", 64 * 2**20)
    page = page_at({"m": "noise", "k": "1024", "n": "20000", "t": "5"})
    try:
        page.button(key="run").click().run()
        job = page.session_state["job"]
        assert job.join(30.0)
        page.run()
        warnings = [warning.value for warning in page.warning]
        assert any("ran out of memory" in text and "diverged" not in text for text in warnings), warnings
    finally:
        stop_job(page)


# Each whole-number field and its allowed range, written out here (not read from the page) as the check's reference.
WHOLE_NUMBER_FIELDS = [
    ("data_n", "Data points n", 2, 1_000_000),
    ("data_seed", "Seed", 0, 2**32 - 1),
    ("fit_steps", "Steps", 1, 1_000_000),
    ("fit_seed", "Fit seed", 0, 2**32 - 1),
    ("fit_samples", "Samples per step", 1, 1024),
    ("fit_batch_size", "Batch size", 0, 10_000_000),
    ("snapshot_every", "Snapshot every (steps)", 1, 1_000_000),
]


@pytest.mark.parametrize(("key", "label", "low", "high"), WHOLE_NUMBER_FIELDS)
def test_a_whole_number_past_2_to_the_53_is_refused_with_the_fields_range(key, label, low, high):
    # 2^53 + 1 is the first integer a float64 cannot hold: the browser sends it as 2^53, past Streamlit's own limit
    # for integer inputs (2^53 - 1), which keeps the field's default without a word.
    page = page_at({})
    page.number_input(key=key).set_value(2**53 + 1).run()
    assert not page.exception, [e.value for e in page.exception]
    # The message names the field, its range and the value typed (as the browser sends it), not the default.
    messages = [error.value for error in page.sidebar.error]
    wanted = (f"**{label}**", f"between {low} and {high}", f"got {2**53}")
    assert any(all(part in text for part in wanted) for text in messages), messages
    assert page.button(key="run").disabled


# Each whole-number field of the explore views: its tab, key, label on screen and allowed range, written out here.
EXPLORE_WHOLE_NUMBER_FIELDS = [
    ("MCMC reference", "explore_mcmc_warmup", "NUTS warm-up iterations", 0, 100_000),
    ("MCMC reference", "explore_mcmc_samples", "NUTS draws", 2, 100_000),
    ("MCMC reference", "explore_mcmc_seed", "Seed", 0, 2**32 - 1),
    ("Basis functions", "explore_basis_size", "Polynomial degree", 0, 15),
    ("Basis functions", "explore_basis_max", "Largest size on the evidence curve", 1, 15),
    ("Calibration", "explore_calibration_datasets", "Simulated datasets K", 2, 100_000),
    ("Calibration", "explore_calibration_n", "Points per dataset", 2, 100_000),
]


@pytest.mark.parametrize(("tab", "key", "label", "low", "high"), EXPLORE_WHOLE_NUMBER_FIELDS)
def test_a_whole_number_past_2_to_the_53_in_an_explore_view_is_refused_with_the_fields_range(
    tab, key, label, low, high
):
    page = page_at({})
    page.session_state[TAB_KEY] = tab  # what a click on the tab does
    page.run()
    page.number_input(key=key).set_value(2**53 + 1).run()
    assert not page.exception, [e.value for e in page.exception]
    messages = [error.value for error in page.main.error]
    wanted = (f"**{label}", f"between {low} and {high}", f"got {2**53}")
    assert any(all(part in text for part in wanted) for text in messages), messages
