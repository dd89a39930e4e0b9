"""The page follows what the lecturer changes: current exact reference, a marked previous run, pace, errors in place."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from bayesdemo.core.config import GUIDES, METHODS, FitConfig
from bayesdemo.core.data import generate, parse_csv
from bayesdemo.core.scenario import PRESETS, Scenario
from bayesdemo.teaching.glossary import GLOSSARY, define, terms_in
from bayesdemo.workers.jobs import Job
from tests.support.pages import no_exception

TINY_STEPS = 40  # a run that ends within a fraction of a second
GOOD_CSV = b"x,y\n0,1.0\n0.5,2.4\n1,4.1\n1.5,5.4\n2,7.1\n"
PREVIOUS = "These fits ran on the previous settings"


def run_to_the_end(page: AppTest, timeout_s: float = 30.0) -> Job:
    """Click Run and re-run the script (as the live fragment would) until the page shows the finished job."""
    page.sidebar.button(key="run").click().run()
    no_exception(page)
    job = page.session_state["job"]
    assert job.join(timeout_s)
    page.run()
    no_exception(page)
    return job


def exact_cards(page: AppTest) -> dict[str, str]:
    """The exact posterior's metrics as shown."""
    return {metric.label: metric.value for metric in page.metric}


def expected_cards(x: np.ndarray, y: np.ndarray, noise_sd: float, prior_mean: np.ndarray, prior_sd: np.ndarray):
    """Slope/intercept posterior mean and sd by numpy's own linear algebra (PRML 3.50-3.51), as the cards show them."""
    design = np.column_stack([x, np.ones_like(x)])
    precision = np.diag(1.0 / prior_sd**2) + design.T @ design / noise_sd**2
    cov = np.linalg.inv(precision)
    mean = cov @ (prior_mean / prior_sd**2 + design.T @ y / noise_sd**2)
    sd = np.sqrt(np.diag(cov))
    # The cards show 4 significant figures; the engine and this check differ far below that.
    return {
        "Slope mean": f"{mean[0]:.4g}",
        "Slope sd": f"{sd[0]:.4g}",
        "Intercept mean": f"{mean[1]:.4g}",
        "Intercept sd": f"{sd[1]:.4g}",
    }


def cards_of(page: AppTest) -> dict[str, str]:
    """The four mean/sd cards as shown."""
    shown = exact_cards(page)
    return {label: shown[label] for label in ("Slope mean", "Slope sd", "Intercept mean", "Intercept sd")}


def previous_notes(page: AppTest) -> list[str]:
    """The main area's messages that mark the run as belonging to the previous settings."""
    return [
        element.value for element in [*page.main.warning, *page.main.caption] if "previous settings" in element.value
    ]


def progress_text(page: AppTest) -> str:
    """The live progress bar's text (markdown)."""
    (progress,) = page.get("progress")
    return progress.proto.text


def test_a_preset_after_a_run_shows_its_exact_posterior_and_marks_the_run_as_previous(app):
    app.number_input(key="fit_steps").set_value(TINY_STEPS).run()
    job = run_to_the_end(app)
    finished_table = app.table[0].value.copy()
    app.selectbox(key="preset").set_value("Tiny data").run()
    no_exception(app)
    scenario = PRESETS["Tiny data"].scenario
    data = generate(scenario.data)
    prior = scenario.prior
    assert data.n == 5
    expected = expected_cards(
        data.x,
        data.y,
        scenario.data.noise_sd,
        np.array([prior.slope_mean, prior.intercept_mean]),
        np.array([prior.slope_sd, prior.intercept_sd]),
    )
    assert cards_of(app) == expected, "the exact cards follow the preset at once"
    assert any("n = 5" in caption.value for caption in app.main.caption), [c.value for c in app.main.caption]
    # The run is still there, marked as the previous settings' in its progress line, above its charts and in its table.
    assert app.session_state["job"] is job
    assert app.table[0].value.equals(finished_table)
    notes = previous_notes(app)  # above the charts and below the table
    assert any(
        "Data points n = 100 (now 5)" in note and "Press **Run** to fit the current ones." in note for note in notes
    )
    assert len(notes) >= 2, notes
    assert progress_text(app).endswith("on the previous settings")
    # Run fits the current settings; the marks go.
    new_job = run_to_the_end(app)
    assert new_job.dataset.n == 5 and not previous_notes(app)


def test_a_prior_or_an_upload_after_a_run_updates_the_exact_cards_at_once(app):
    app.number_input(key="fit_steps").set_value(TINY_STEPS).run()
    job = run_to_the_end(app)
    app.number_input(key="prior_slope_sd").set_value(0.5).run()
    no_exception(app)
    data = job.dataset
    # A strong prior on the slope (sd 0.5 against 10): tiny vs huge prior sds in the same check.
    expected = expected_cards(data.x, data.y, 0.1, np.zeros(2), np.array([0.5, 10.0]))
    assert cards_of(app) == expected
    assert any("Prior sd of the slope = 10 (now 0.5)" in note for note in previous_notes(app)), previous_notes(app)
    app.number_input(key="prior_slope_sd").set_value(10.0).run()
    assert not previous_notes(app), "back to the run's settings: nothing is marked"
    app.file_uploader(key="upload").set_value(("line.csv", GOOD_CSV, "text/csv")).run()
    no_exception(app)
    upload = parse_csv(GOOD_CSV)
    assert cards_of(app) == expected_cards(upload.x, upload.y, 0.1, np.zeros(2), np.array([10.0, 10.0]))
    assert any("line.csv, n = 5" in caption.value for caption in app.main.caption)
    assert any("(now line.csv, n = 5)" in note for note in previous_notes(app)), previous_notes(app)


def test_changing_the_speed_mid_run_applies_at_once_without_calling_it_a_settings_change(app):
    app.number_input(key="fit_steps").set_value(1_000_000).run()
    app.select_slider(key="speed").set_value(200.0).run()
    app.sidebar.button(key="run").click().run()
    job = app.session_state["job"]
    assert job.state == "running"
    app.select_slider(key="speed").set_value(50.0).run()
    no_exception(app)
    assert job.view().max_steps_per_second == 50.0
    shown = [element.value for element in [*app.main.caption, *app.main.warning, *app.main.info]]
    assert not any("Settings changed" in text or PREVIOUS in text for text in shown), shown
    assert not progress_text(app).endswith("on the previous settings")


def test_a_preset_keeps_the_chosen_speed(app):
    app.select_slider(key="speed").set_value(50.0).run()
    for name in ("Tiny data", "Pyro tutorial"):
        app.selectbox(key="preset").set_value(name).run()
        no_exception(app)
        assert app.select_slider(key="speed").value == 50.0
        assert app.session_state["scenario"].speed == 50.0
        assert any(name in info.value for info in app.info), "the preset still counts as loaded"


def test_the_default_speed_lets_a_class_watch_a_default_fit():
    speed = Scenario().speed
    # Every method's default fit takes 6 to 10 s at the default pace (steps / speed), and "max" stays on offer.
    durations = {
        (method, guide): FitConfig(method=method, guide=guide).steps_in_force / speed
        for method in METHODS
        for guide in GUIDES
    }
    assert all(6.0 <= seconds <= 10.0 for seconds in durations.values()), durations


def test_a_default_run_is_paced_and_max_stays_available(app):
    options = app.select_slider(key="speed").options
    assert "max" in options
    app.number_input(key="fit_steps").set_value(1_000_000).run()  # never ends within the window below
    app.sidebar.button(key="run").click().run()
    job = app.session_state["job"]
    assert job.wait_for_training(30.0) or job.view().steps_done > 0
    before = job.view().steps_done
    time.sleep(1.0)
    done = job.view().steps_done - before
    # The default pace is Scenario().speed steps per second; 2x that plus a 0.1 s burst is a generous upper bound
    # (a busy machine only trains slower). At "max" a fit trains thousands of steps per second.
    assert done <= 2 * Scenario().speed + 0.1 * Scenario().speed, done
    assert job.view().max_steps_per_second == Scenario().speed > 0


def element_after(page: AppTest, kind: str, key: str):
    """The element drawn right after the sidebar widget `key` of type `kind`."""
    nodes = [node for node in page.sidebar if not hasattr(node, "children")]
    for index, node in enumerate(nodes):
        if node.type == kind and getattr(node, "key", None) == key:
            return nodes[index + 1] if index + 1 < len(nodes) else None
    raise AssertionError(f"no {kind} {key}")


def run_note(page: AppTest) -> str:
    """The sidebar's note on why Run is off ("" when there is none)."""
    notes = [warning.value for warning in page.sidebar.warning if "Run is off" in warning.value]
    return notes[0] if notes else ""


GOOD_VALUES = {"data_noise_sd": 0.1, "data_x_max": 1.0, "prior_intercept_sd": 10.0, "data_n": 100}  # the defaults


@pytest.mark.parametrize(
    ("key", "value", "sentence"),
    [
        ("data_noise_sd", -1.0, "Noise sd must be greater than 0, got -1.0."),
        ("data_x_max", -1.0, "x to must be greater than x from (0.0), got -1.0."),
        ("prior_intercept_sd", 0.0, "Prior sd of the intercept must be greater than 0, got 0.0."),
        ("data_n", 1, "Data points n must be between 2 and"),
    ],
)
def test_a_bad_setting_is_named_below_its_field_and_next_to_run_in_the_words_on_screen(app, key, value, sentence):
    app.number_input(key=key).set_value(value).run()
    no_exception(app)
    assert app.sidebar.button(key="run").disabled
    after = element_after(app, "number_input", key)
    assert after is not None and after.type == "error", after
    label, rest = sentence.split(" must ", 1)
    assert after.value.replace("\\", "").startswith(f"**{label}** must {rest}".rstrip(".")), after.value
    assert after.value.endswith("."), "messages end each sentence"
    internal = {"data_noise_sd": "noise_sd", "data_x_max": "x_max", "prior_intercept_sd": "intercept_sd"}.get(key)
    texts = [error.value for error in app.error] + [run_note(app)]
    assert internal is None or not any(internal in text for text in texts), texts
    note = run_note(app)
    unescaped = note.replace("\\", "")  # the page escapes Markdown: a shown "(" is "\(" in the text
    assert unescaped.startswith("Run is off until the settings below are fixed: "), note
    assert sentence.rstrip(".") in unescaped, note
    assert re.search(r"\.$", note)
    app.number_input(key=key).set_value(GOOD_VALUES[key]).run()
    assert not run_note(app) and not app.sidebar.button(key="run").disabled


@pytest.mark.parametrize(
    ("content", "kept", "fragment"),
    [
        (b"1,2\n2,3\n3,5\n", "the simulated data", "Add a first line `x,y`."),
        (b"x,y\n1,abc\n2,3\n", "the simulated data", "must be numeric"),
    ],
)
def test_a_bad_csv_is_named_below_the_uploader_in_full_sentences(app, content, kept, fragment):
    app.file_uploader(key="upload").set_value(("bad.csv", content, "text/csv")).run()
    no_exception(app)
    after = element_after(app, "file_uploader", "upload")
    assert after is not None and after.type == "error", after
    assert fragment in after.value.replace("\\", ""), after.value
    assert after.value.endswith(f". Keeping {kept}."), after.value
    assert not app.sidebar.button(key="run").disabled, "the previous data are kept: Run still works"
    app.file_uploader(key="upload").set_value(("line.csv", GOOD_CSV, "text/csv")).run()
    app.file_uploader(key="upload").set_value(("bad.csv", content, "text/csv")).run()
    assert element_after(app, "file_uploader", "upload").value.endswith(". Keeping the previous upload.")


def defined_in(help_text: str, terms: list[str]) -> list[str]:
    """The `terms` whose glossary definition `help_text` does not carry."""
    return [term for term in terms if GLOSSARY[term] not in help_text]


def test_each_term_on_the_cards_table_and_selectors_has_its_definition_at_hand(app):
    app.number_input(key="fit_steps").set_value(TINY_STEPS).run()
    run_to_the_end(app)
    # The exact cards' caption: its hover defines each term it uses (mean-field, evidence).
    (caption,) = [caption for caption in app.main.caption if "log evidence" in caption.value]
    used = terms_in(caption.value)
    assert {"mean-field", "evidence"} <= set(used), used
    assert not defined_in(caption.proto.help, used), caption.proto.help
    # The table's column headers (KL(q ‖ exact)): defined in the line right below the table.
    columns = " ".join(app.table[0].value.columns)
    used = terms_in(columns)
    assert {"q", "KL"} <= set(used), used
    glossary_lines = " ".join(caption.value for caption in app.main.caption)
    assert not defined_in(glossary_lines, used), glossary_lines
    # The method and guide selectors: their label and every option's terms, in their hover.
    for key in ("fit_method", "fit_guide"):
        selector = app.selectbox(key=key)
        used = terms_in(" ".join([selector.label, *selector.options, selector.proto.help]))
        assert used and not defined_in(selector.proto.help, used), (key, used, selector.proto.help)
    assert {"AutoNormal", "AutoMultivariateNormal", "mean-field"} <= set(
        terms_in(" ".join(app.selectbox(key="fit_guide").options))
    )


def test_glossary_terms_are_found_as_words_only():
    # Independent reference: the terms a person reads in each text.
    assert terms_in("KL(q ‖ exact)") == ["q", "KL"]
    assert terms_in("mean-field (AutoNormal)") == ["mean-field", "AutoNormal"]
    assert terms_in("full covariance (AutoMultivariateNormal)") == ["AutoMultivariateNormal"]
    assert terms_in("Steps/s, quickly, sequence") == []
    assert "**ELBO**: " + GLOSSARY["ELBO"] in define("q", "ELBO")
    # A definition's own terms are defined too: the ELBO's "evidence", AutoNormal's "mean-field" and its "q".
    assert GLOSSARY["evidence"] in define("ELBO")
    assert GLOSSARY["mean-field"] in define("AutoNormal") and GLOSSARY["q"] in define("AutoNormal")
