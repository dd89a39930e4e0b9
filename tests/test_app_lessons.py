"""The page's lessons and student view under AppTest: a link opens a step, predict then Run then the reveal with this
run's numbers, Next and Back, a bad lesson file named by the selector, the student view, an upload's unused fields."""

from __future__ import annotations

import math

import numpy as np
from streamlit.testing.v1 import AppTest

from bayesdemo.core.data import generate
from bayesdemo.teaching.glossary import GLOSSARY, terms_in
from bayesdemo.teaching.lessons import LESSONS_DIR_VARIABLE
from tests.support.pages import GOOD_CSV, no_exception, page_at, stop_job

CONVERGENCE_CHARTS = {"chart_mean_slope", "chart_sd_slope", "chart_mean_intercept", "chart_sd_intercept"}
ADVANCED = {
    "fit_optimizer",
    "fit_lr",
    "fit_lr_decay",
    "fit_samples",
    "fit_batch_size",
    "fit_seed",
    "snapshot_every",
    "fit_kl",
    "fit_local_reparam",
}
SIMULATION_FIELDS = ("data_n", "data_slope", "data_intercept", "data_x_min", "data_x_max", "data_seed")


def chart_keys(page: AppTest) -> set[str]:
    """The keys of the live charts the main area draws."""
    found: set[str] = set()

    def walk(node) -> None:
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else ():
            if getattr(child, "type", "") == "bidi_component" and getattr(child, "key", None):
                found.add(child.key)
            walk(child)

    walk(page.main)
    return found


def sidebar_keys(page: AppTest) -> set[str]:
    """The keys of the sidebar's widgets."""
    return {getattr(node, "key", None) for node in page.sidebar if getattr(node, "key", None)}


def step_heading(page: AppTest) -> str:
    """The lesson step's heading line ("**title** · step k of n: **step title**")."""
    return next(markdown.value for markdown in page.main.markdown if " · step " in markdown.value)


def reveal(page: AppTest) -> str:
    """The revealed answer ("" before it shows)."""
    return " ".join(success.value for success in page.main.success)


def slope_sd(x: np.ndarray, noise_sd: float, prior_sd: float = 10.0) -> float:
    """The exact posterior sd of the slope by numpy's own algebra (PRML 3.51)."""
    design = np.column_stack([x, np.ones_like(x)])
    precision = np.eye(2) / prior_sd**2 + design.T @ design / noise_sd**2
    return math.sqrt(np.linalg.inv(precision)[0, 0])


def test_a_link_opens_a_lesson_step_with_its_settings_charts_explore_view_and_question():
    page = page_at({"lesson": "forum-question", "step": "3"})
    assert step_heading(page).endswith("step 3 of 5: **AutoNormal, and why half**")
    assert any(markdown.value.startswith("Pyro's AutoNormal guide") for markdown in page.main.markdown)
    assert (page.session_state["fit_method"], page.session_state["fit_guide"]) == ("svi", "normal")
    assert page.session_state["explore_tab"] == "Parameter space"
    # The slope and intercept charts only, and the parameter space open below them.
    assert chart_keys(page) == CONVERGENCE_CHARTS | {"explore_parameter_space"}
    # The step's terms are named in one line and defined in its hover (AutoNormal, mean-field, q).
    (terms,) = [caption for caption in page.main.caption if caption.value.startswith("Terms in this step")]
    assert {"q", "mean-field", "AutoNormal"} <= set(terms_in(terms.value)), terms.value
    assert all(GLOSSARY[term] in terms.proto.help for term in ("q", "mean-field", "AutoNormal")), terms.proto.help
    (question,) = page.main.radio
    assert question.label == "Why do both mean-field fits stop at about half the exact sd?" and question.value is None
    assert any("Press **Run**" in caption.value for caption in page.main.caption)
    # The address bar reopens this step with every setting it sets.
    assert {key: page.query_params[key] for key in ("lesson", "step", "m", "g")} == {
        "lesson": "forum-question",
        "step": "3",
        "m": "svi",
        "g": "normal",
    }
    assert page.button(key="lesson_back").disabled is False and page.button(key="lesson_next").disabled is False
    # The link under Share and export, its address after "](": this step too.
    (link,) = [text.value.rpartition("](")[2] for text in page.main.markdown if "Share this scenario" in text.value]
    assert "lesson=forum-question&step=3" in link and "m=svi" in link and "g=normal" in link, link
    page.toggle(key="lesson_all_charts").set_value(True).run()
    assert chart_keys(page) == CONVERGENCE_CHARTS | {"chart_loss", "chart_data", "explore_parameter_space"}


def test_predict_run_reveal_with_this_runs_numbers_then_next_and_back():
    page = page_at({"lesson": "priors-and-noise", "step": "2", "v": "0"})
    try:
        assert chart_keys(page) == {"chart_mean_slope", "chart_sd_slope", "chart_data"}
        assert page.session_state["data_n"] == 5 and page.session_state["speed"] == 0.0, "the link's speed is kept"
        page.main.radio[0].set_value(0).run()  # "About the same as with 100 points": the wrong answer
        assert reveal(page) == "", "nothing is revealed before the run"
        page.sidebar.button(key="run").click().run()
        no_exception(page)
        job = page.session_state["job"]
        assert job.join(60.0)
        page.run()
        no_exception(page)
        shown = reveal(page)
        data = generate(page.session_state["scenario"].data)
        assert data.n == 5
        expected_sd = slope_sd(data.x, 0.1)
        assert shown.startswith("Not quite: the answer is **Several times larger**. The exact slope sd is "), shown
        assert f"is {expected_sd:.4g} with 5 points, against 0.033 with 100." in shown, (shown, expected_sd)

        page.button(key="lesson_next").click().run()
        no_exception(page)
        assert step_heading(page).endswith("step 3 of 4: **More noise**")
        assert page.session_state["data_noise_sd"] == 0.5 and page.session_state["data_n"] == 100
        assert page.session_state.get("job") is None, "a new step starts without the previous step's run"
        assert page.main.radio[0].value is None and reveal(page) == ""
        assert page.session_state["speed"] == 0.0, "a step that sets no speed keeps the chosen pace"
        assert page.query_params["step"] == "3" and page.query_params["s"] == "0.5"
        page.button(key="lesson_back").click().run()
        assert step_heading(page).endswith("step 2 of 4: **Tiny data**") and page.session_state["data_n"] == 5
        page.button(key="lesson_next").click().run()
        page.button(key="lesson_next").click().run()
        assert step_heading(page).endswith("step 4 of 4: **Sequential updating**")
        assert page.button(key="lesson_next").disabled
        assert chart_keys(page) == {"chart_data", "explore_sequential_data", "explore_sequential_plane"}
        assert page.session_state["explore_tab"] == "Sequential updating"
    finally:
        stop_job(page)


def test_the_reveal_waits_for_a_run_of_the_steps_own_settings():
    page = page_at({"lesson": "priors-and-noise", "step": "2", "v": "0"})
    try:
        page.number_input(key="data_n").set_value(6).run()
        page.sidebar.button(key="run").click().run()
        assert page.session_state["job"].join(60.0)
        page.run()
        no_exception(page)
        assert reveal(page) == ""
        assert any("not this step's" in caption.value for caption in page.main.caption)
    finally:
        stop_job(page)


def test_a_bad_lesson_file_is_named_by_the_lesson_selector_and_the_page_still_works(tmp_path, monkeypatch):
    (tmp_path / "broken.toml").write_text(
        'title = "Broken"\n[[steps]]\ntitle = "One"\ntext = "Words."\nreveal = "{slope_sd_nothing}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv(LESSONS_DIR_VARIABLE, str(tmp_path))
    page = page_at()
    nodes = [node for node in page.sidebar if not hasattr(node, "children")]
    selector = next(index for index, node in enumerate(nodes) if getattr(node, "key", None) == "lesson_choice")
    after = nodes[selector + 1]
    assert after.type == "error", after
    assert after.value.replace("\\", "").startswith(
        "Lesson file not loaded: broken.toml, step 1, reveal: uses {slope_sd_nothing}, which is not a placeholder"
    ), after.value
    assert page.selectbox(key="lesson_choice").options == [
        "Bayesian regression using noise injection?",
        "Priors, data and noise",
    ]
    page.selectbox(key="lesson_choice").set_value("forum-question").run()
    no_exception(page)
    assert step_heading(page).endswith("step 1 of 5: **The forum's recipe: noise injection**")
    assert page.session_state["fit_method"] == "noise"


WRITTEN_LESSON = """
title = "Written here"
[[steps]]
title = "Ten points"
text = "Ten points, a short fit."
scenario = { n = 10, m = "bbb", t = 200, v = 0 }
charts = ["data"]
reveal = "Exact slope sd {slope_sd_exact}; after {steps_bbb} steps the fit's is {slope_sd_bbb}."
"""


def test_a_lesson_written_in_a_folder_of_its_own_opens_from_a_link_runs_and_reveals(tmp_path, monkeypatch):
    (tmp_path / "written-here.toml").write_text(WRITTEN_LESSON, encoding="utf-8")
    monkeypatch.setenv(LESSONS_DIR_VARIABLE, str(tmp_path))
    page = page_at({"lesson": "written-here", "step": "1"})
    try:
        assert step_heading(page).endswith("step 1 of 1: **Ten points**") and chart_keys(page) == {"chart_data"}
        assert page.session_state["speed"] == 0.0, "the step sets its speed"
        page.sidebar.button(key="run").click().run()
        job = page.session_state["job"]
        assert job.join(60.0)
        page.run()
        no_exception(page)
        data = generate(page.session_state["scenario"].data)
        fit_sd = job.view().fits[0].last.sd[0]
        expected = f"Exact slope sd {slope_sd(data.x, 0.1):.4g}; after 200 steps the fit's is {fit_sd:.4g}."
        assert reveal(page) == expected, (reveal(page), expected)
    finally:
        stop_job(page)


def test_the_student_view_hides_the_advanced_controls_and_keeps_their_values():
    page = page_at({"student": "1", "lr": "0.03", "k": "4", "m": "bbb"})
    assert not ADVANCED & sidebar_keys(page), ADVANCED & sidebar_keys(page)
    assert {"fit_method", "fit_steps", "fit_objective", "speed", "data_n"} <= sidebar_keys(page)
    page.run()  # a second run: Streamlit forgets the value of a widget it did not draw, unless it is kept
    assert (page.session_state["scenario"].fit.lr, page.session_state["scenario"].fit.samples) == (0.03, 4)
    assert page.query_params["student"] == "1" and page.query_params["lr"] == "0.03"
    page.toggle(key="student").set_value(False).run()
    no_exception(page)
    assert sidebar_keys(page) >= ADVANCED
    assert page.number_input(key="fit_lr").value == 0.03 and page.number_input(key="fit_samples").value == 4
    assert "student" not in page.query_params


def test_an_uploaded_csv_marks_the_simulation_fields_unused():
    page = page_at()
    assert not any(page.number_input(key=key).disabled for key in SIMULATION_FIELDS)
    page.file_uploader(key="upload").set_value(("line.csv", GOOD_CSV, "text/csv")).run()
    no_exception(page)
    assert all(page.number_input(key=key).disabled for key in SIMULATION_FIELDS)
    assert page.button(key="new_data").disabled and not page.number_input(key="data_noise_sd").disabled
    assert any("simulation's settings below are unused" in caption.value for caption in page.sidebar.caption)


def test_the_link_carries_the_open_explore_tab():
    page = page_at({"tab": "sequential-updating"})
    assert page.session_state["explore_tab"] == "Sequential updating"
    assert page.query_params["tab"] == "sequential-updating"
    page.session_state["explore_tab"] = "MCMC reference"
    page.run()
    assert page.query_params["tab"] == "mcmc-reference"
    unknown = page_at({"tab": "tea-leaves", "lesson": "forum-question", "step": "9"})
    warnings = [warning.value.replace("\\", "") for warning in unknown.main.warning]
    assert "Shared link: Ignored tab='tea-leaves': there is no such explore view." in warnings, warnings
    assert any("Ignored step='9': this lesson has steps 1 to 5. Opening step 1." in text for text in warnings)
    assert step_heading(unknown).endswith("step 1 of 5: **The forum's recipe: noise injection**")
