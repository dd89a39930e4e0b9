"""Lesson files: a file written here loads and runs, each malformed file names its step and field, and every number
the shipped lessons' texts claim holds when their steps run."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from bayesdemo.core import share
from bayesdemo.core.data import generate
from bayesdemo.core.exact import exact_posterior
from bayesdemo.core.scenario import Scenario
from bayesdemo.fitting.runner import RunConfig, Snapshot, fit_run
from bayesdemo.references.parameter_space import centred_posterior
from bayesdemo.references.sequential import posterior_after
from bayesdemo.teaching import lessons
from bayesdemo.teaching.lessons import (
    MAX_FILE_BYTES,
    LessonError,
    Step,
    crossing_step,
    fill,
    fit_key,
    load_lessons,
    parse_lesson,
    placeholders_in,
    run_numbers,
)

GOOD_LESSON = """
title = "Twenty points"
summary = "A lesson written by a test."

[[steps]]
title = "A short fit"
text = "Twenty points and a short Bayes by Backprop fit."
scenario = { n = 20, m = "bbb", t = 300, v = 50, pws = 2.5, x0 = 10.0, x1 = 12.0, cx = true }
charts = ["slope", "loss"]
explore = "Parameter space"
reveal = "Exact {slope_sd_exact}, fit {slope_sd_bbb} ({slope_sd_ratio_bbb} of it) after {steps_bbb} steps; n = {n}."

[steps.predict]
question = "Where will the sd end?"
choices = ["At the exact sd", "Near zero"]
answer = 1

[[steps]]
title = "Nothing to predict"
text = "All four methods."
scenario = { all = true, t = 50 }
"""


def reference_posterior(x: np.ndarray, y: np.ndarray, noise_sd: float, prior_mean, prior_sd):
    """Posterior mean and covariance of (slope, intercept) by numpy's own linear algebra (PRML 3.50-3.51)."""
    design = np.column_stack([x, np.ones_like(x)])
    precision = np.diag(1.0 / np.asarray(prior_sd) ** 2) + design.T @ design / noise_sd**2
    cov = np.linalg.inv(precision)
    mean = cov @ (np.asarray(prior_mean) / np.asarray(prior_sd) ** 2 + design.T @ y / noise_sd**2)
    return mean, cov


def run_step(step: Step) -> tuple[dict[str, tuple[Snapshot, ...]], object, object]:
    """Each fit of the step run to its end by the engine, by fit key; and the step's data and exact posterior."""
    scenario = step.scenario
    dataset = generate(scenario.data)
    exact = exact_posterior(dataset, scenario.model)
    fits = {}
    for config in scenario.fit_configs():
        run = fit_run(dataset, scenario.model, config, RunConfig(snapshot_every=scenario.snapshot_every))
        for _ in run:
            pass
        assert run.status == "done", run.message
        fits[fit_key(config)] = tuple(run.snapshots)
    return fits, dataset, exact


def test_a_lesson_file_written_here_loads_and_its_step_runs(tmp_path):
    (tmp_path / "twenty-points.toml").write_text(GOOD_LESSON, encoding="utf-8")
    found, problems = load_lessons([tmp_path])
    assert problems == []
    lesson = found["twenty-points"]
    assert (lesson.title, lesson.summary, len(lesson.steps)) == ("Twenty points", "A lesson written by a test.", 2)
    first, second = lesson.steps
    # The scenario is read as a link is: the same settings as the link keys say (x far from 0, a tiny prior sd).
    data, prior, fit = first.scenario.data, first.scenario.prior, first.scenario.fit
    assert (data.n, data.x_min, data.x_max, prior.slope_sd, fit.method, fit.steps, fit.centre_x) == (
        20,
        10.0,
        12.0,
        2.5,
        "bbb",
        300,
        True,
    )
    assert first.sets_speed and first.scenario.speed == 50.0 and not second.sets_speed
    assert first.link == {"n": "20", "m": "bbb", "t": "300", "v": "50.0", "pws": "2.5", "x0": "10.0", "x1": "12.0"} | {
        "cx": "1"
    }
    assert first.charts == ("slope", "loss") and first.explore == "Parameter space"
    assert first.prediction is not None and first.prediction.choices[first.prediction.answer] == "At the exact sd"
    assert second.prediction is None and second.charts == lessons.CHARTS and second.explore is None
    assert second.fit_keys == ("noise", "bbb", "svi_normal", "svi_mvn")

    fits, dataset, exact = run_step(first)
    text = fill(first.reveal, run_numbers(exact, dataset.n, fits))
    # The exact sd by numpy's own algebra; the fit's sd from its last snapshot; 4 significant figures as on screen.
    _, cov = reference_posterior(dataset.x, dataset.y, 0.1, [0.0, 0.0], [2.5, 10.0])
    exact_sd = math.sqrt(cov[0, 0])
    fit_sd = float(fits["bbb"][-1].sd[0])
    assert text == (
        f"Exact {exact_sd:.4g}, fit {fit_sd:.4g} ({fit_sd / exact_sd:.2f} of it) after 300 steps; n = 20."
    ), text


def lesson_problem(tmp_path: Path, text: str | bytes, name: str = "bad") -> str:
    """The one message load_lessons gives for a lesson file holding `text`."""
    path = tmp_path / f"{name}.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    found, problems = load_lessons([tmp_path])
    assert found == {} and len(problems) == 1, (found, problems)
    return problems[0]


STEP = '[[steps]]\ntitle = "One"\ntext = "Some words."\n'
PREDICT = '[steps.predict]\nquestion = "Which?"\nchoices = ["a", "b", "c"]\nanswer = 2\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('titel = "x"\n' + STEP, "bad.toml, titel: is not a field here; the fields are title, summary, steps."),
        ('title = "x"\n', "bad.toml, steps: is missing."),
        ('title = "x"\nsteps = []\n', "bad.toml, steps: must hold at least one step"),
        ("title = 3\n" + STEP, "bad.toml, title: must be text, got 3."),
        ('title = "x"\n' + STEP + STEP + "txt = 'y'\n", "bad.toml, step 2, txt: is not a field here"),
        ('title = "x"\n[[steps]]\ntitle = "One"\n', "bad.toml, step 1, text: is missing."),
        ('title = "x"\n' + STEP + 'title = "  "\n', "bad.toml: is not valid TOML"),
        ('title = "x"\n[[steps]]\ntitle = " "\ntext = "y"\n', "bad.toml, step 1, title: must not be blank."),
        (
            'title = "x"\n' + STEP + "scenario = { n = 1 }\n",
            "bad.toml, step 1, scenario setting n: must be between 2 and",
        ),
        ('title = "x"\n' + STEP + 'scenario = { n = "5" }\n', "step 1, scenario setting n: must be a whole number"),
        ('title = "x"\n' + STEP + "scenario = { zz = 1 }\n", "step 1, scenario setting zz: is not a setting"),
        (
            'title = "x"\n' + STEP + "scenario = { x0 = 2.0, x1 = 1.0 }\n",
            "step 1, scenario setting x1: must be greater than x0 (2.0), got 1.0.",
        ),
        ('title = "x"\n' + STEP + 'scenario = { m = "magic" }\n', "scenario setting m: must be one of noise, bbb, svi"),
        ('title = "x"\n' + STEP + 'charts = ["slope", "pie"]\n', "step 1, charts: must name charts among slope,"),
        ('title = "x"\n' + STEP + 'explore = "Tea leaves"\n', "step 1, explore: must be one of Parameter space,"),
        ('title = "x"\n' + STEP + PREDICT, "step 1, reveal: is missing: a step that asks a prediction reveals"),
        (
            'title = "x"\n' + STEP + 'reveal = "r"\n' + PREDICT.replace("answer = 2", "answer = 4"),
            "bad.toml, step 1, predict.answer: must be between 1 and 3, got 4.",
        ),
        (
            'title = "x"\n' + STEP + 'reveal = "r"\n' + PREDICT.replace('"c"]', '"a"]'),
            "step 1, predict.choices: must all differ.",
        ),
        ('title = "x"\n' + STEP + 'reveal = "r"\n' + PREDICT.replace("answer = 2", 'answer = "b"'), "predict.answer"),
        (
            'title = "x"\n' + STEP + 'reveal = "{slope_sd_bogus}"\n',
            "step 1, reveal: uses {slope_sd_bogus}, which is not",
        ),
        (
            'title = "x"\n' + STEP + 'reveal = "{slope_sd_svi_mvn}"\n',
            "step 1, reveal: uses {slope_sd_svi_mvn}, but this step runs no Pyro SVI, full covariance "
            "(AutoMultivariateNormal) fit (it runs bbb).",
        ),
        ('title = "x"\n' + STEP + 'reveal = "{__class__.__mro__}"\n', "step 1, reveal: uses {__class__.__mro__}"),
        ('title = "x"\n' + STEP + 'reveal = "a } b"\n', "step 1, reveal: has a brace { or } that is not part"),
        ('title = "x"\n' + STEP + 'text = "' + "w" * 600 + '"\n', "bad.toml: is not valid TOML"),
        ('title = "x"\n[[steps]]\ntitle = "One"\ntext = "' + "w" * 600 + '"\n', "step 1, text: must be at most 500"),
        ('title = "' + "t" * 81 + '"\n' + STEP, "bad.toml, title: must be at most 80 characters long, got 81."),
        ('title = "x"\nsummary = "' + "s" * 501 + '"\n' + STEP, "bad.toml, summary: must be at most 500"),
        ('title = "x"\n' + STEP * 31, "bad.toml, steps: must hold at most 30 steps, got 31."),
        (
            'title = "x"\n' + STEP + 'reveal = "r"\n' + PREDICT.replace('"c"]', '"c", "d", "e", "f"]'),
            "step 1, predict.choices: must list 2 to 5 choices, got 6.",
        ),
        (
            'title = "x"\n' + STEP + 'reveal = "r"\n' + PREDICT.replace('"c"]', '"' + "c" * 121 + '"]'),
            "step 1, predict.choices: must be at most 120 characters long, got 121.",
        ),
        ('title = "x"\n[[steps]]\ntitle = "' + "t" * 81 + '"\ntext = "y"\n', "step 1, title: must be at most 80"),
    ],
)
def test_a_malformed_lesson_names_its_file_step_and_field(tmp_path, text, expected):
    message = lesson_problem(tmp_path, text)
    assert expected in message, message
    assert message.startswith("bad.toml") and message.endswith("."), message
    assert "Traceback" not in message


def test_a_huge_binary_or_badly_named_lesson_file_is_refused_in_words(tmp_path):
    huge = lesson_problem(tmp_path, 'title = "x"\n' + "# padding\n" * (MAX_FILE_BYTES // 10 + 1))
    assert huge == "bad.toml: is longer than 65,536 bytes, the most a lesson file may hold.", huge
    (tmp_path / "bad.toml").unlink()
    assert lesson_problem(tmp_path, b'title = "x\xff"\n') == "bad.toml: is not UTF-8 text (byte 11 cannot be read)."
    (tmp_path / "bad.toml").unlink()
    named = lesson_problem(tmp_path, 'title = "x"\n' + STEP, name="Bad Name")
    assert named.startswith("Bad Name.toml, name: must be lower-case letters, digits and hyphens"), named


def test_the_page_loads_every_lesson_folder_and_keeps_the_good_lessons_when_one_is_bad(tmp_path, monkeypatch):
    (tmp_path / "twenty-points.toml").write_text(GOOD_LESSON, encoding="utf-8")
    (tmp_path / "broken.toml").write_text('title = "x"\n', encoding="utf-8")
    (tmp_path / "forum-question.toml").write_text(GOOD_LESSON, encoding="utf-8")  # a name the shipped folder has
    monkeypatch.setenv(lessons.LESSONS_DIR_VARIABLE, str(tmp_path))
    found, problems = load_lessons()
    assert set(found) == {"forum-question", "priors-and-noise", "twenty-points"}
    assert found["forum-question"].title == "Bayesian regression using noise injection?", "the shipped one is kept"
    assert problems[0] == "broken.toml, steps: is missing."
    assert "a lesson named forum-question is already loaded" in problems[1] and len(problems) == 2
    monkeypatch.setenv(lessons.LESSONS_DIR_VARIABLE, str(tmp_path / "nowhere"))
    found, problems = load_lessons()
    assert set(found) == {"forum-question", "priors-and-noise"}
    assert problems == [f"The lesson folder {tmp_path / 'nowhere'} does not exist."]


def test_the_shipped_lessons_load():
    found, problems = load_lessons([lessons.LESSONS_DIR])
    assert problems == [] and set(found) == {"forum-question", "priors-and-noise"}


def test_placeholders_are_replaced_as_text_never_evaluated():
    assert placeholders_in("a {n} b {slope_sd_exact}") == ["n", "slope_sd_exact"]
    assert fill("{n} and {slope_sd_bbb} and {unknown}", {"n": "5", "slope_sd_bbb": "0.1"}) == "5 and 0.1 and –"
    with pytest.raises(LessonError, match=r"step 1, reveal: uses \{0\.__class__\}"):
        parse_lesson("x", ('title = "x"\n' + STEP + 'reveal = "{0.__class__}"\n').encode())


def snapshots(sds: list[float]) -> tuple[Snapshot, ...]:
    """Snapshots every 10 steps whose slope sd takes the values `sds`."""
    return tuple(
        Snapshot(10 * index, 0.0, 0.0, np.zeros(2), np.array([sd, 1.0]), np.diag([sd**2, 1.0]))
        for index, sd in enumerate(sds)
    )


def test_the_crossing_step_is_the_first_snapshot_below_the_exact_sd_after_one_above():
    assert crossing_step(snapshots([1.0, 0.5, 0.3, 0.2]), 0.4) == 20
    assert crossing_step(snapshots([0.3, 0.2]), 0.4) is None, "it started below: it never passed the exact sd"
    assert crossing_step(snapshots([1.0, 0.9]), 0.4) is None


# ---- what the shipped lessons say, checked by running their steps -------------------------------------------------

MEAN_FIELD_TOLERANCE = 0.10  # a constant-lr stochastic fit's sd wanders a few % around its optimum (bench/README.md)


def shipped_step(name: str, number: int) -> Step:
    """Step `number` (from 1) of the shipped lesson `name`."""
    found, _ = load_lessons([lessons.LESSONS_DIR])
    return found[name].steps[number - 1]


def test_forum_step_1_noise_injection_passes_the_exact_sd_and_keeps_falling_towards_zero():
    step = shipped_step("forum-question", 1)
    assert step.fit_keys == ("noise",) and "{slope_sd_crossed_noise}" in step.reveal
    fits, dataset, exact = run_step(step)
    trajectory = fits["noise"]
    slope_sd = np.array([snapshot.sd[0] for snapshot in trajectory])
    _, cov = reference_posterior(dataset.x, dataset.y, 0.1, [0.0, 0.0], [10.0, 10.0])
    exact_sd = math.sqrt(cov[0, 0])
    crossed = next(snapshot.step for snapshot in trajectory if snapshot.sd[0] < exact_sd)
    assert slope_sd[0] > exact_sd and 0 < crossed < trajectory[-1].step, "it passed the exact sd on its way down"
    after = np.array([snapshot.step for snapshot in trajectory]) >= crossed
    assert slope_sd[after].max() < exact_sd, "it never came back above the exact sd"
    late = np.array([snapshot.step for snapshot in trajectory]) >= 1000
    assert slope_sd[late].max() < 0.2 * exact_sd, "near zero: below a fifth of the exact sd from step 1,000 on"
    numbers = run_numbers(exact, dataset.n, fits)
    assert numbers["slope_sd_crossed_noise"] == f"{crossed:,}" and numbers["steps_noise"] == "3,000"


@pytest.mark.parametrize("number", [2, 3])
def test_forum_steps_2_and_3_mean_field_fits_stop_at_the_mean_field_optimum_about_half_the_exact_sd(number):
    step = shipped_step("forum-question", number)
    fits, dataset, _exact = run_step(step)
    (key,) = step.fit_keys
    assert key == ("bbb" if number == 2 else "svi_normal")
    precision = np.linalg.inv(reference_posterior(dataset.x, dataset.y, 0.1, [0.0, 0.0], [10.0, 10.0])[1])
    mean_field_sd = 1.0 / np.sqrt(np.diag(precision))  # KL(q || p)-optimal factorised sds, PRML 10.12-10.13
    exact_sd = np.sqrt(np.diag(np.linalg.inv(precision)))
    fit_sd = fits[key][-1].sd
    assert np.all(np.abs(fit_sd / mean_field_sd - 1.0) < MEAN_FIELD_TOLERANCE), (fit_sd, mean_field_sd)
    assert np.all((fit_sd / exact_sd > 0.4) & (fit_sd / exact_sd < 0.6)), "about half the exact sd"


def test_forum_step_3_the_correlation_explains_the_half():
    step = shipped_step("forum-question", 3)
    assert step.explore == "Parameter space"
    dataset = generate(step.scenario.data)
    cov = reference_posterior(dataset.x, dataset.y, 0.1, [0.0, 0.0], [10.0, 10.0])[1]
    correlation = cov[0, 1] / math.sqrt(cov[0, 0] * cov[1, 1])
    assert correlation < -0.8, "a thin, tilted ellipse"
    exact = exact_posterior(dataset, step.scenario.model)
    numbers = run_numbers(exact, dataset.n, {})
    # The mean-field optimum's sd over the exact sd is sqrt(1 - correlation^2) for two parameters.
    assert numbers["slope_sd_ratio_mean_field"] == f"{math.sqrt(1 - correlation**2):.2f}"
    assert numbers["correlation"] == f"{correlation:.2f}"


@pytest.mark.parametrize(("number", "key"), [(4, "bbb"), (5, "svi_mvn")])
def test_forum_steps_4_and_5_centred_x_and_the_full_covariance_guide_reach_the_exact_sd(number, key):
    step = shipped_step("forum-question", number)
    assert step.fit_keys == (key,) and step.scenario.fit.centre_x == (number == 4)
    fits, dataset, _exact = run_step(step)
    cov = reference_posterior(dataset.x, dataset.y, 0.1, [0.0, 0.0], [10.0, 10.0])[1]
    ratio = fits[key][-1].sd / np.sqrt(np.diag(cov))
    assert np.all(np.abs(ratio - 1.0) < MEAN_FIELD_TOLERANCE), ratio
    if number == 4:  # centred, slope and the height at mean x are nearly uncorrelated
        assert abs(centred_posterior(dataset, step.scenario.model).corr) < 0.05


def test_priors_step_1_a_strong_wrong_prior_puts_the_slope_in_between():
    step = shipped_step("priors-and-noise", 1)
    prior = step.scenario.prior
    assert (prior.slope_mean, prior.slope_sd, step.scenario.data.slope) == (-1.0, 0.1, 3.0)
    fits, dataset, _ = run_step(step)
    mean, cov = reference_posterior(dataset.x, dataset.y, 0.1, [-1.0, 0.0], [0.1, 10.0])
    assert -1.0 + 0.5 < mean[0] < 3.0 - 0.2, "in between, away from both"
    assert abs(fits["bbb"][-1].mean[0] - mean[0]) < 3 * math.sqrt(cov[0, 0])


def exact_slope_sd(scenario: Scenario) -> float:
    """The exact posterior sd of the slope for the scenario's data, by numpy's algebra."""
    dataset = generate(scenario.data)
    prior = scenario.prior
    cov = reference_posterior(
        dataset.x, dataset.y, scenario.data.noise_sd, [0.0, 0.0], [prior.slope_sd, prior.intercept_sd]
    )[1]
    return math.sqrt(cov[0, 0])


def test_priors_steps_2_and_3_tiny_data_and_more_noise_widen_the_posterior_as_said():
    base = exact_slope_sd(Scenario())
    assert f"{base:.2g}" == "0.033", "the texts' 0.033 with 100 points at noise sd 0.1"
    tiny = shipped_step("priors-and-noise", 2)
    noisy = shipped_step("priors-and-noise", 3)
    assert tiny.scenario.data.n == 5 and noisy.scenario.data.noise_sd == 0.5
    assert 2.0 < exact_slope_sd(tiny.scenario) / base < 10.0, "several times larger"
    assert abs(exact_slope_sd(noisy.scenario) / base - 5.0) < 0.1, "about 5 times larger"
    for step in (tiny, noisy):
        fits, _, _ = run_step(step)
        assert fits["bbb"][-1].step == 3000


def test_priors_step_4_the_slope_sd_shrinks_like_one_over_root_k_once_two_points_fix_a_line():
    step = shipped_step("priors-and-noise", 4)
    assert step.explore == "Sequential updating" and step.scenario.data.n == 20
    dataset = generate(step.scenario.data)
    scaled = []
    for k in range(1, 21):
        _mean, cov = reference_posterior(dataset.x[:k], dataset.y[:k], 0.1, [0.0, 0.0], [10.0, 10.0])
        assert math.isclose(math.sqrt(cov[0, 0]), posterior_after(dataset, step.scenario.model, k).sd[0], rel_tol=1e-9)
        scaled.append(math.sqrt(cov[0, 0] * k))
    assert scaled[0] > 10 * scaled[1], "one point does not fix a line: the sd is still the prior's"
    later = scaled[2:]  # from 3 points on: sd * sqrt(k) stays within a factor 1.5
    assert max(later) / min(later) < 1.5, later


def test_the_readmes_example_lesson_loads_and_a_wrong_answer_number_is_named_as_the_readme_says(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```toml\n(.*?)```", readme, flags=re.S)
    (tmp_path / "twenty-points.toml").write_text(example, encoding="utf-8")
    found, problems = load_lessons([tmp_path])
    assert problems == [] and found["twenty-points"].steps[0].fit_keys == ("bbb",)
    (tmp_path / "twenty-points.toml").write_text(example.replace("answer = 2", "answer = 4"), encoding="utf-8")
    _, problems = load_lessons([tmp_path])
    message = "twenty-points.toml, step 1, predict.answer: must be between 1 and 3, got 4."
    assert problems == [message] and message in readme.replace("\n", " ")


def test_the_lesson_format_in_docs_names_every_placeholder_link_key_chart_and_explore_view():
    document = (Path(__file__).resolve().parent.parent / "docs" / "classroom.md").read_text(encoding="utf-8")
    section = document[document.index("## Lesson files") :]
    for name in lessons.EXACT_PLACEHOLDERS + lessons.FIT_PLACEHOLDERS:
        assert f"{{{name}}}" in section, name
    for key in share.KEYS:
        assert f"`{key}`" in section, key
    for name in (*lessons.CHARTS, *lessons.EXPLORE_VIEWS, *lessons.STEP_KEYS, *lessons.PREDICT_KEYS):
        assert f"`{name}`" in section, name
    assert f"at most {lessons.MAX_FILE_BYTES // 1024} KiB" in section.replace("\n", " ")


def test_a_changed_file_is_read_again_and_a_folder_gives_at_most_its_first_hundred_files(tmp_path):
    path = tmp_path / "twenty-points.toml"
    path.write_text(GOOD_LESSON, encoding="utf-8")
    assert load_lessons([tmp_path])[0]["twenty-points"].title == "Twenty points"
    path.write_text(GOOD_LESSON.replace("Twenty points", "Twenty more points"), encoding="utf-8")
    assert load_lessons([tmp_path])[0]["twenty-points"].title == "Twenty more points"
    for index in range(lessons.MAX_FILES + 1):
        (tmp_path / f"lesson-{index:03d}.toml").write_text('title = "x"\n' + STEP, encoding="utf-8")
    found, problems = load_lessons([tmp_path])
    assert len(found) == lessons.MAX_FILES and "lesson-099" in found and "twenty-points" not in found
    assert problems == [
        f"Only the first {lessons.MAX_FILES} lesson files of {tmp_path} are read; left out: lesson-100.toml, "
        "twenty-points.toml."
    ]
