"""The page's guided lessons and student view: the lesson selector, a step's text, prediction and reveal, Back and
Next, and the link parameters that open them (`?lesson=NAME&step=K`, `student=1`, `tab=parameter-space`).

Streamlit code only: lessons are read and checked by bayesdemo/teaching/lessons.py. The page (app.py) passes in what it
owns: loading a scenario into the sidebar and forgetting the current run (PageHooks).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from bayesdemo.core import share
from bayesdemo.core.markup import escape_markdown
from bayesdemo.core.scenario import Scenario
from bayesdemo.page import explore
from bayesdemo.teaching import lessons as lesson_files
from bayesdemo.teaching.glossary import GLOSSARY, define_used, terms_in
from bayesdemo.teaching.lessons import CHARTS, Lesson, Step, fill, fit_key, run_numbers
from bayesdemo.workers.jobs import JobView

LESSON_KEY = "lesson"  # session-state key of the open lesson's name, and the link's key for it
STEP_KEY = "step"  # session-state key of the open step (from 1), and the link's key for it
CHOICE_KEY = "lesson_choice"  # the lesson selector
PREDICTION_KEY = "lesson_prediction"  # the class's answer to the step's question (a choice's index)
ALL_CHARTS_KEY = "lesson_all_charts"  # show every chart, not only the step's
STUDENT_KEY = "student"  # the student view switch, and the link's key for it
TAB_KEY = "tab"  # the link's key for the open explore tab
RESTORED_KEY = "lessons_restored"  # set once a session has read its lesson and view from the link
# The advanced controls the student view hides (sidebar widget keys): optimiser, lr, lr decay, samples, batch size,
# fit seed, snapshot every, KL estimator, local reparameterisation.
ADVANCED_KEYS = (
    "fit_optimizer",
    "fit_lr",
    "fit_lr_decay",
    "fit_samples",
    "fit_batch_size",
    "fit_seed",
    "snapshot_every",
    "fit_kl",
    "fit_local_reparam",
)


@dataclass(frozen=True)
class PageHooks:
    """What the page lets a lesson do: load a scenario into the sidebar, and forget the current run."""

    load_scenario: Callable[[Scenario], None]
    reset_run: Callable[[], None]


def tab_slug(label: str) -> str:
    """An explore tab's label as the link writes it ("Parameter space" -> "parameter-space")."""
    return label.lower().replace(" ", "-")


TAB_BY_SLUG = {tab_slug(label): label for label in explore.EXPLORE_TABS}


def available() -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson the page offers (lessons/ and BAYESDEMO_LESSONS_DIR) and a message per file it cannot use."""
    return lesson_files.load_lessons()


def open_lesson() -> tuple[Lesson, int] | None:
    """The open lesson and step number (from 1), or None."""
    name = st.session_state.get(LESSON_KEY)
    if not name:
        return None
    lessons, _ = available()
    lesson = lessons.get(name)
    if lesson is None:
        return None
    number = min(max(int(st.session_state.get(STEP_KEY) or 1), 1), len(lesson.steps))
    return lesson, number


def open_step() -> Step | None:
    """The open step, or None outside a lesson."""
    opened = open_lesson()
    return None if opened is None else opened[0].steps[opened[1] - 1]


def step_scenario(step: Step, speed: float) -> Scenario:
    """The step's scenario, at the chosen `speed` unless the step sets its own (a preset keeps the pace too)."""
    return step.scenario if step.sets_speed else replace(step.scenario, speed=speed)


def go_to_step(name: str, number: int, hooks: PageHooks) -> None:
    """Open step `number` of lesson `name`: its settings in the sidebar, its explore view, no answer yet, no run."""
    lessons, _ = available()
    lesson = lessons.get(name)
    if lesson is None:
        return
    number = min(max(number, 1), len(lesson.steps))
    step = lesson.steps[number - 1]
    st.session_state[LESSON_KEY] = name
    st.session_state[STEP_KEY] = number
    st.session_state[CHOICE_KEY] = name
    st.session_state[PREDICTION_KEY] = None
    st.session_state["preset"] = None
    hooks.reset_run()
    hooks.load_scenario(step_scenario(step, float(st.session_state.get("speed") or 0.0)))
    if step.explore is not None:
        st.session_state[explore.TAB_KEY] = step.explore


def on_choose_lesson(hooks: PageHooks) -> None:
    """The lesson selector changed: open the chosen lesson's first step, or leave the lesson."""
    name = st.session_state.get(CHOICE_KEY)
    if name:
        go_to_step(name, 1, hooks)
    else:
        leave_lesson()


def leave_lesson() -> None:
    """Close the lesson; the settings stay as they are."""
    st.session_state[LESSON_KEY] = None
    st.session_state[STEP_KEY] = None
    st.session_state[CHOICE_KEY] = None


def restore_from_link(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """On a session's first run: open the lesson step, student view and explore tab the link names. Returns the
    step's settings as link parameters (the link's own settings go over them) and a message per link value ignored."""
    if st.session_state.get(RESTORED_KEY):
        return {}, []
    st.session_state[RESTORED_KEY] = True
    problems: list[str] = []
    st.session_state[STUDENT_KEY] = params.get(STUDENT_KEY, "") in ("1", "true")
    tab = params.get(TAB_KEY)
    if tab:
        if tab in TAB_BY_SLUG:
            st.session_state[explore.TAB_KEY] = TAB_BY_SLUG[tab]
        else:
            problems.append(f"Ignored tab={shown(tab)}: there is no such explore view.")
    name = params.get(LESSON_KEY)
    if not name:
        return {}, problems
    lessons, _ = available()
    lesson = lessons.get(name)
    if lesson is None:
        problems.append(f"Ignored lesson={shown(name)}: there is no such lesson. Choose one under Lesson.")
        return {}, problems
    raw_step = params.get(STEP_KEY, "1")
    try:
        number = int(raw_step)
    except ValueError:
        number = 0
    if not 1 <= number <= len(lesson.steps):
        problems.append(
            f"Ignored step={shown(raw_step)}: this lesson has steps 1 to {len(lesson.steps)}. Opening step 1."
        )
        number = 1
    step = lesson.steps[number - 1]
    st.session_state[LESSON_KEY] = name
    st.session_state[STEP_KEY] = number
    st.session_state[CHOICE_KEY] = name
    if step.explore is not None and not tab:
        st.session_state[explore.TAB_KEY] = step.explore
    return step.link, problems


def shown(text: str) -> str:
    """A link value quoted for a message, cut short if long and safe as Markdown."""
    return escape_markdown(repr(text if len(text) <= 40 else text[:40] + "..."))


def link_params(scenario: Scenario, explore_shown: bool) -> dict[str, str]:
    """What the address bar keeps beside the scenario: the lesson step (with every setting the step sets, so the link
    reopens what is on screen), the student view, the open explore tab."""
    params: dict[str, str] = {}
    opened = open_lesson()
    if opened is not None:
        lesson, number = opened
        params[LESSON_KEY] = lesson.name
        params[STEP_KEY] = str(number)
        encoded = share.encode(scenario)
        for key in lesson.steps[number - 1].link:
            text = share.text_of(scenario, key)
            if key not in encoded and text is not None:
                params[key] = text
    if st.session_state.get(STUDENT_KEY):
        params[STUDENT_KEY] = "1"
    tab = st.session_state.get(explore.TAB_KEY)
    if explore_shown and tab in explore.EXPLORE_TABS and tab != explore.EXPLORE_TABS[0]:
        params[TAB_KEY] = tab_slug(tab)
    return params


def keep_hidden_values() -> None:
    """In the student view, keep the values of the advanced controls it does not draw (Streamlit forgets a widget's
    value after a run that does not draw it; a value set through session state is kept)."""
    if st.session_state.get(STUDENT_KEY):
        for key in ADVANCED_KEYS:
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]


def student_view() -> bool:
    """Whether the student view is on (the advanced controls hidden)."""
    return bool(st.session_state.get(STUDENT_KEY))


def draw_selector(hooks: PageHooks) -> None:
    """The sidebar's lesson selector and student-view switch, with a message per lesson file that cannot be used."""
    lessons, problems = available()
    if st.session_state.get(CHOICE_KEY) not in (None, *lessons):
        st.session_state[CHOICE_KEY] = None
    st.selectbox(
        "Lesson",
        list(lessons),
        index=None,
        key=CHOICE_KEY,
        format_func=lambda name: lessons[name].title,
        placeholder="Choose a guided lesson…",
        on_change=on_choose_lesson,
        args=(hooks,),
        help="A lesson leads the class through a few runs: each step loads its settings, asks what will happen, and "
        "after Run explains it with this run's numbers. Link: lesson=NAME&step=K.",
    )
    for problem in problems:
        st.error(f"Lesson file not loaded: {escape_markdown(problem)}")
    st.toggle(
        "Student view",
        key=STUDENT_KEY,
        help="Hides the advanced controls: optimizer, learning rate and its decay, samples per step, batch size, fit "
        "seed, snapshot every, KL estimator and local reparameterisation. Link: student=1.",
    )


def shown_charts() -> tuple[str, ...]:
    """The charts to draw (lessons.CHARTS names): the open step's, or all of them."""
    step = open_step()
    if step is None or st.session_state.get(ALL_CHARTS_KEY):
        return CHARTS
    return step.charts


def explore_shown() -> bool:
    """Whether the explore views are drawn: outside a lesson, in a step that opens one, or with every chart shown."""
    step = open_step()
    return step is None or step.explore is not None or bool(st.session_state.get(ALL_CHARTS_KEY))


def ran_this_step(step: Step, run_scenario: Scenario | None, synthetic: bool) -> bool:
    """Whether a run's settings are the step's (speed aside, a pace): only then do its numbers answer the step."""
    if run_scenario is None or not synthetic:
        return False
    return replace(run_scenario, speed=step.scenario.speed) == step.scenario


def reveal_text(step: Step, view: JobView, exact: Any, n: int) -> str:
    """The step's reveal with this run's numbers (lessons.run_numbers of the job's fits)."""
    fits = {fit_key(fit.config): fit.snapshots for fit in view.fits}
    return fill(step.reveal, run_numbers(exact, n, fits))


def draw_step(
    hooks: PageHooks, view: JobView | None, run_scenario: Scenario | None, run_exact: Any, run_n: int, synthetic: bool
) -> None:
    """The open step above the charts: its title and text, the question, the reveal after a finished run of this
    step, and Back / Next. `run_*` describe the job's run (its scenario, exact posterior, n, simulated data)."""
    opened = open_lesson()
    if opened is None:
        return
    lesson, number = opened
    step = lesson.steps[number - 1]
    total = len(lesson.steps)
    with st.container(border=True, key="lesson_step"):
        st.markdown(
            f"**{escape_markdown(lesson.title)}** · step {number} of {total}: **{escape_markdown(step.title)}**"
        )
        st.markdown(step.text)
        draw_terms(step)
        if step.prediction is not None:
            st.radio(
                step.prediction.question,
                range(len(step.prediction.choices)),
                index=None,
                key=PREDICTION_KEY,
                format_func=lambda index: step.prediction.choices[index] if step.prediction else "",
                horizontal=True,
            )
        ran = ran_this_step(step, run_scenario, synthetic)
        if view is not None and ran and view.state == "finished":
            draw_reveal(step, reveal_text(step, view, run_exact, run_n))
        elif view is not None and ran and view.state == "stopped":
            st.caption("The run was stopped before its end: press **Run** to see the answer with a whole run.")
        elif view is not None and not ran:
            st.caption("The run below is not this step's: press **Run** for this step's settings.")
        elif step.reveal:
            st.caption("Press **Run** in the sidebar; the answer follows with this run's numbers.")
        left, middle, right = st.columns([1, 1, 2])
        with left:
            st.button(
                "Back",
                key="lesson_back",
                icon=":material/chevron_left:",
                on_click=go_to_step,
                args=(lesson.name, number - 1, hooks),
                disabled=number == 1,
                width="stretch",
            )
        with middle:
            st.button(
                "Next",
                key="lesson_next",
                icon=":material/chevron_right:",
                on_click=go_to_step,
                args=(lesson.name, number + 1, hooks),
                disabled=number == total,
                type="primary",
                width="stretch",
            )
        with right:
            st.toggle("Show every chart", key=ALL_CHARTS_KEY)


def draw_terms(step: Step) -> None:
    """One line naming the glossary terms in the step (text, question, choices, reveal), defined in its hover."""
    texts = [step.text, step.reveal]
    if step.prediction is not None:
        texts += [step.prediction.question, *step.prediction.choices]
    used = [term for term in GLOSSARY if any(term in terms_in(text) for text in texts)]
    if used:
        st.caption(f"Terms in this step: {', '.join(used)} (hover for their meaning).", help=define_used(*texts))


def draw_reveal(step: Step, text: str) -> None:
    """The answer: whether the class's prediction was right, then the reveal with this run's numbers."""
    prediction = step.prediction
    if prediction is not None:
        chosen = st.session_state.get(PREDICTION_KEY)
        right = prediction.choices[prediction.answer]
        if chosen is None:
            verdict = f"The answer: **{escape_markdown(right)}**."
        elif chosen == prediction.answer:
            verdict = f"Right: **{escape_markdown(right)}**."
        else:
            verdict = f"Not quite: the answer is **{escape_markdown(right)}**."
        st.success(f"{verdict} {text}", icon=":material/lightbulb:")
    else:
        st.success(text, icon=":material/lightbulb:")
