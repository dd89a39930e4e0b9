"""Every bad input of issue 5, through the page (AppTest) and the engine: a clear message, nothing lost, still working.

Each page test starts from a finished run, feeds one kind of bad input, and checks that the page names the problem
(no exception, no traceback), still shows the previous data and the finished run's numbers, and that a later Run
completes. Two pages are shared per module (one with simulated data, one with an upload) to keep AppTest's cost low.
"""

from __future__ import annotations

import math
import re
import time

import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo.core import share
from bayesdemo.core.data import DataConfig, generate, parse_csv
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError
from tests.support.pages import no_exception, page_at, stop_job

TINY_STEPS = 40  # steps of every fit here: a run ends within a fraction of a second
GOOD_DATA = generate(DataConfig(n=20, seed=5))
GOOD_CSV = GOOD_DATA.to_csv().encode()
FIFTY_MB = 50 * 1000 * 1000

# ---- helpers ------------------------------------------------------------------------------------------------------


def errors_of(page: AppTest) -> list[str]:
    """Every error message the page shows."""
    return [element.value for element in page.error]


def shown_data(page: AppTest) -> str:
    """The caption naming the data the page shows (source and n)."""
    return next(caption.value for caption in page.caption if "n = " in caption.value)


def shown_fit(page: AppTest) -> dict[str, str]:
    """The finished run's first row as the page shows it."""
    table = page.table[0].value
    return {column: table[column].iloc[0] for column in table.columns if column != "Steps/s"}


def run_to_the_end(page: AppTest, timeout_s: float = 30.0) -> None:
    """Click Run and re-run the script (as the live fragment would) until the page shows the finished job."""
    page.sidebar.button(key="run").click().run()
    no_exception(page)
    job = page.session_state["job"]
    deadline = time.monotonic() + timeout_s
    while job.state not in ("finished", "stopped") and time.monotonic() < deadline:
        time.sleep(0.05)
    page.run()
    no_exception(page)
    assert job.state == "finished", job.view().message
    assert shown_fit(page)["Step"] == f"{TINY_STEPS} / {TINY_STEPS}"


@pytest.fixture(scope="module")
def simulated_page():
    """A page with simulated data and a finished tiny run."""
    page = page_at()
    page.number_input(key="fit_steps").set_value(TINY_STEPS).run()
    run_to_the_end(page)
    yield page
    stop_job(page)


@pytest.fixture(scope="module")
def uploaded_page():
    """A page with an uploaded CSV of 20 points and a finished tiny run on it."""
    page = page_at()
    page.number_input(key="fit_steps").set_value(TINY_STEPS).run()
    upload(page, "good.csv", GOOD_CSV)
    assert not errors_of(page) and "n = 20" in shown_data(page)
    run_to_the_end(page)
    yield page
    stop_job(page)


def upload(page: AppTest, name: str, content: bytes) -> None:
    """Put a file into the CSV uploader and re-run."""
    page.file_uploader(key="upload").set_value((name, content, "text/csv")).run()
    no_exception(page)


# ---- CSV uploads --------------------------------------------------------------------------------------------------

# name -> (content, field the message names, fragment of the message)
BAD_CSVS = {
    "empty": (b"", "csv", "is empty"),
    "only blank lines": (b"\n \n\n", "csv", "is empty"),
    "one row": (b"x,y\n1,2\n", "csv", "at least 2 data rows, got 1"),
    "missing column": (b"x\n1\n2\n3\n", "csv", "missing column y"),
    "extra columns": (b"x,y,z\n1,2,3\n2,3,4\n", "csv", "extra columns z"),
    "non-numeric cell": (b"x,y\n1,2\n2,abc\n3,4\n", "y", "must be numeric, got 'abc' in row 3"),
    "NaN": (b"x,y\n1,2\nnan,3\n3,4\n", "x", "must be finite, got 'nan' in row 3"),
    "infinite": (b"x,y\n1,2\n2,-inf\n3,4\n", "y", "must be finite, got '-inf' in row 3"),
    "huge value": (b"x,y\n1,2\n2,1e300\n3,4\n", "y", "must be at most 1e+15 in size"),
    "constant x": (b"x,y\n1,2\n1,3\n1,4\n", "x", "must not be constant"),
    "no header": (b"1,2\n2,3\n3,5\n", "csv", "has no header"),
    "tab-separated": (b"x\ty\n1\t2\n2\t3\n", "csv", "tab-separated"),
    "binary": (bytes(range(256)) * 64, "csv", "must be a text file"),
    "not UTF-8": ("x,y\n1,2\n2,é\n".encode("latin-1"), "csv", "must be UTF-8"),
    "50 MB": (b"x,y\n" + b"0.1234567,1.2345678\n" * (FIFTY_MB // 20), "csv", "must be at most 20.0 MB, got 50.0 MB"),
}
CSV_LABELS = {"csv": "CSV upload", "x": "CSV column x", "y": "CSV column y"}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_parse_csv_names_the_problem(case):
    content, field, fragment = BAD_CSVS[case]
    with pytest.raises(ConfigError) as caught:
        parse_csv(content)
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_parse_csv_reads_semicolons_with_decimal_commas():
    data = parse_csv(b"x;y\n0,5;1,25\n1;2\n1,5;-3,5e1\n")
    assert data.x.tolist() == [0.5, 1.0, 1.5] and data.y.tolist() == [1.25, 2.0, -35.0]


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_a_bad_upload_is_named_and_the_previous_upload_and_run_are_kept(uploaded_page, case):
    page = uploaded_page
    content, field, fragment = BAD_CSVS[case]
    data_before, fit_before = shown_data(page), shown_fit(page)
    upload(page, f"{case}.csv", content)
    messages = [text for text in errors_of(page) if CSV_LABELS[field] in text]
    assert len(messages) == 1 and fragment in messages[0] and "Keeping the previous upload" in messages[0], messages
    assert shown_data(page) == data_before and "good.csv, n = 20" in data_before
    assert shown_fit(page) == fit_before, "the finished run is still shown"
    kept = page.session_state["context_cache"].dataset
    assert kept.source == "good.csv" and kept.y.tolist() == GOOD_DATA.y.tolist(), "Run would use the previous upload"
    run_to_the_end(page)  # the app keeps working, on the previous upload
    assert page.session_state["job"].dataset is kept
    upload(page, "good.csv", GOOD_CSV)
    assert not errors_of(page)


def test_a_semicolon_separated_upload_is_read(uploaded_page):
    page = uploaded_page
    upload(page, "semicolons.csv", GOOD_DATA.to_csv().replace(",", ";").encode())
    assert not errors_of(page)
    assert page.session_state["context_cache"].dataset.source == "semicolons.csv"
    run_to_the_end(page)
    assert "semicolons.csv, n = 20" in shown_data(page)
    assert page.session_state["job"].dataset.y.tolist() == GOOD_DATA.y.tolist()
    upload(page, "good.csv", GOOD_CSV)


# ---- sidebar numbers ----------------------------------------------------------------------------------------------

# widget key -> (label on the page, config field, whether the widget holds integers)
NUMBER_FIELDS = {
    "data_n": ("Data points n", "n", True),
    "data_slope": ("True slope", "slope", False),
    "data_intercept": ("True intercept", "intercept", False),
    "data_noise_sd": ("Noise sd", "noise_sd", False),
    "data_x_min": ("x from", "x_min", False),
    "data_x_max": ("x to", "x_max", False),
    "data_seed": ("Seed", "seed", True),
    "prior_slope_mean": ("Prior mean of the slope", "slope_mean", False),
    "prior_slope_sd": ("Prior sd of the slope", "slope_sd", False),
    "prior_intercept_mean": ("Prior mean of the intercept", "intercept_mean", False),
    "prior_intercept_sd": ("Prior sd of the intercept", "intercept_sd", False),
    "fit_steps": ("Steps", "steps", True),
    "fit_lr": ("Learning rate", "lr", False),
    "fit_lr_decay": ("Final lr / first lr", "lr_decay", False),
    "fit_samples": ("Samples per step", "samples", True),
    "fit_batch_size": ("Batch size", "batch_size", True),
    "fit_seed": ("Fit seed", "seed", True),
    "snapshot_every": ("Snapshot every (steps)", "snapshot_every", True),
}
ZERO_IS_VALID = {"data_slope", "data_intercept", "data_x_min", "data_seed", "prior_slope_mean", "prior_intercept_mean"}
ZERO_IS_VALID |= {"fit_batch_size", "fit_seed"}  # batch size 0 means all the data
OPTIONAL = {"fit_lr", "fit_lr_decay"}  # empty means the method's default
NEGATIVE_IS_VALID = {"data_slope", "data_intercept", "data_x_min", "prior_slope_mean", "prior_intercept_mean"}


def bad_values(key: str) -> list[tuple[str, float]]:
    """(kind, value) for each bad value a person could type into the widget `key`."""
    integer = NUMBER_FIELDS[key][2]
    if integer:  # an integer widget cannot hold a non-finite value: see the link tests below
        return [("zero", 0), ("negative", -1), ("huge", 10**15)]
    return [("zero", 0.0), ("negative", -1.0), ("huge", 1e300), ("non-finite", math.nan), ("non-finite", -math.inf)]


def scenario_numbers(scenario: Scenario) -> list[float]:
    """Every number of a scenario, to check that none is non-finite."""
    parts = (scenario.data, scenario.prior, scenario.fit)
    numbers = [getattr(part, name) for part in parts for name in part.__dataclass_fields__]
    return [float(value) for value in numbers if isinstance(value, int | float) and not isinstance(value, bool)]


@pytest.mark.parametrize("key", list(NUMBER_FIELDS))
def test_zero_negative_huge_and_non_finite_settings_are_named_and_the_run_is_kept(simulated_page, key):
    page = simulated_page
    label, field, _ = NUMBER_FIELDS[key]
    good = page.session_state[key]
    data_before, fit_before = shown_data(page), shown_fit(page)
    for kind, value in bad_values(key):
        page.number_input(key=key).set_value(value).run()
        no_exception(page)
        scenario = page.session_state["scenario"]
        valid = (kind == "zero" and key in ZERO_IS_VALID) or (kind == "negative" and key in NEGATIVE_IS_VALID)
        if kind == "non-finite":
            # Streamlit itself puts a float widget back to its default (0.0, or None = "method default" for the
            # optional ones) on a non-finite value: it never reaches the scenario, and 0.0 is judged like a typed zero.
            valid = key in ZERO_IS_VALID or key in OPTIONAL
            assert scenario is None or all(math.isfinite(number) for number in scenario_numbers(scenario))
        # Led by the label on screen; the config's field name is never shown.
        named = [text for text in errors_of(page) if text.startswith(f"**{label}**")]
        messages = [text for text in named if not re.search(rf"\b{field}\b", text.replace(label, ""))]
        if valid:
            assert not errors_of(page), (kind, value)
            assert scenario is not None
        else:
            assert len(messages) == 1, (kind, value, errors_of(page))
            assert scenario is None and page.sidebar.button(key="run").disabled
        # A valid value changes the exact reference at once; a bad one keeps the finished run's data on screen.
        assert valid or shown_data(page) == data_before, "the finished run's data are still shown"
        assert shown_fit(page) == fit_before, "the finished run's numbers are still shown"
        page.number_input(key=key).set_value(good)
    page.run()
    assert not errors_of(page) and page.session_state["scenario"] is not None
    run_to_the_end(page)


def test_a_batch_larger_than_the_data_is_named_at_run_time_and_the_run_is_kept(simulated_page):
    page = simulated_page
    fit_before = shown_fit(page)
    page.number_input(key="fit_batch_size").set_value(10**6).run()
    page.sidebar.button(key="run").click().run()
    no_exception(page)
    assert any("**Batch size**" in text and "batch_size" not in text for text in errors_of(page)), errors_of(page)
    assert shown_fit(page) == fit_before
    page.number_input(key="fit_batch_size").set_value(0).run()
    run_to_the_end(page)
    assert not errors_of(page), "a good run clears the old run-time error"


def test_a_diverging_learning_rate_warns_keeps_the_last_finite_numbers_and_the_data(simulated_page):
    page = simulated_page
    data_before = shown_data(page)
    page.selectbox(key="fit_method").set_value("noise").run()
    page.selectbox(key="fit_optimizer").set_value("sgd")
    page.number_input(key="fit_lr").set_value(10.0)
    page.number_input(key="fit_steps").set_value(5000)
    page.number_input(key="snapshot_every").set_value(1).run()
    page.sidebar.button(key="run").click().run()
    job = page.session_state["job"]
    assert job.join(30.0)
    page.run()
    no_exception(page)
    fit = job.view().fits[0]
    assert fit.status == "diverged" and fit.steps_done < 5000
    warnings = [warning.value for warning in page.warning]
    assert any("diverged" in text and "Lower the learning rate" in text for text in warnings), warnings
    row = shown_fit(page)
    assert row["Status"] == "Diverged" and row["Slope mean"] == f"{fit.last.mean[0]:.4g}"
    assert math.isfinite(float(row["Slope mean"])) and shown_data(page) == data_before
    page.selectbox(key="fit_method").set_value("bbb").run()
    page.selectbox(key="fit_optimizer").set_value("default")
    page.number_input(key="fit_lr").set_value(None)
    page.number_input(key="fit_steps").set_value(TINY_STEPS)
    page.number_input(key="snapshot_every").set_value(10).run()
    run_to_the_end(page)
    assert not page.warning


# ---- the shared link -----------------------------------------------------------------------------------------------

NUMBER_KEYS = tuple(field.key for field in share.FIELDS if field.key not in ("m", "g", "o", "all"))  # numeric keys
TAMPERED_LINKS = {
    "non-finite": {key: ("nan", "inf", "-inf", "1e999")[index % 4] for index, key in enumerate(NUMBER_KEYS)},
    "huge": {key: "1" + "0" * 40 for key in NUMBER_KEYS},
    "zero and negative": {key: ("0", "-1")[index % 2] for index, key in enumerate(NUMBER_KEYS)},
    "garbage": {
        "n": "lots",
        "m": "<script>alert(1)</script>",
        "g": "../../etc/passwd",
        "o": "adamw",
        "all": "maybe",
        "x0": "9" * 100,
        "w": "3,5",
        "t": "",
        "unknown": "1",
        "s": "\u202e0.1",
    },
}


def link_value(scenario: Scenario, key: str) -> object:
    """The scenario's value of the setting a query key stands for."""
    field = next(field for field in share.FIELDS if field.key == key)
    return getattr(getattr(scenario, field.part) if field.part else scenario, field.name)


def named_in(key: str, warnings: str) -> bool:
    """Whether the link warnings name the query key `key` (as `key=...` or `Ignored key:`)."""
    return re.search(rf"(?<![\w]){re.escape(key)}(=|:)", warnings) is not None


@pytest.mark.parametrize("case", list(TAMPERED_LINKS))
def test_a_tampered_link_names_each_ignored_value_and_the_app_still_works(case):
    query = TAMPERED_LINKS[case]
    page = page_at(query)
    try:
        warnings = " ".join(warning.value for warning in page.warning)
        scenario = page.session_state["scenario"]
        assert scenario is not None and not errors_of(page) and warnings.startswith("Shared link:")
        assert all(math.isfinite(number) for number in scenario_numbers(scenario))
        for key, value in query.items():
            if key == "unknown":
                continue
            if case == "zero and negative" and not named_in(key, warnings):
                assert float(link_value(scenario, key)) == float(value), (key, value)  # a valid zero or negative
            else:
                assert named_in(key, warnings), (key, value, warnings)
        if case != "zero and negative":
            assert scenario.data == Scenario().data and scenario.prior == Scenario().prior
        page.number_input(key="fit_steps").set_value(TINY_STEPS)
        page.number_input(key="fit_batch_size").set_value(0)
        page.number_input(key="snapshot_every").set_value(10).run()
        run_to_the_end(page)
        page.button(key="dismiss_link").click().run()
        assert not page.warning
    finally:
        stop_job(page)
