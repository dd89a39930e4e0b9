"""What the explore views share: the session cache of results, computations in a worker process with their
"Computing…" line, request flags set by buttons, one number format and the moment rows of the tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import streamlit as st

from bayesdemo.core import fields
from bayesdemo.core.data import Dataset
from bayesdemo.core.exact import ExactPosterior, Gaussian
from bayesdemo.core.markup import escape_markdown, failure_sentence
from bayesdemo.core.priors import Model
from bayesdemo.core.scenario import Scenario
from bayesdemo.references.parameter_space import has_ellipse
from bayesdemo.teaching.explain import fmt as fmt_student
from bayesdemo.workers import explore_budget
from bayesdemo.workers.jobs import ExploreJob, JobView

TAB_KEY = "explore_tab"  # session-state key holding the open tab's label
EXPLORE_JOBS_KEY = "explore_jobs"  # session-state dict: view name -> its computation in a worker (ExploreEntry)
EXPLORE_POLL_S = 0.5  # redraw interval of a view's "Computing…" line while its computation waits or runs
EXPLORE_FIRST_WAIT_S = 0.3  # the page waits this long for a new computation before showing "Computing…"
LATEST = "latest"  # cache key of the settings whose result a view computed last
# Labels of the explore views' own settings (each set by a widget of a view), for error messages next to it.
EXPLORE_LABELS = {
    "warmup": "NUTS warm-up iterations",
    "samples": "NUTS draws",
    "seed": "Seed",
    "size": "Polynomial degree / number of RBF centres",
    "max_size": "Largest size on the evidence curve",
    "width": "RBF width",
    "family": "Basis family",
    "datasets": "Simulated datasets K",
    "n": "Points per dataset",
    "location": "Location",
    "scale": "Scale",
    "df": "Degrees of freedom",
    "mixture_weight": "Mixture weight π",
    "second_scale": "Second scale",
    "noise_prior": "Prior on the noise sd s",
}
# Every field an explore view's message may name: its own settings, and the ones that are the sidebar's settings with
# the table's labels (the calibration simulates x over the data's x from and x to).
FIELD_LABELS = EXPLORE_LABELS | {name: fields.label_of("data", name) for name in ("x_min", "x_max")}

ViewReader = Callable[[], JobView | None]
Notation = Literal["significant", "general", "fixed"]  # the ways fmt writes a number


class PageContext(Protocol):
    """What the page shows (bayesdemo.page.context.Context): the scenario, its dataset and exact reference."""

    @property
    def scenario(self) -> Scenario: ...

    @property
    def dataset(self) -> Dataset: ...

    @property
    def exact(self) -> ExactPosterior: ...

    @property
    def synthetic(self) -> bool: ...


def widget_value(key: str) -> Any:
    """Widget `key`'s value as the session holds it (None before it is drawn); the config it goes into checks it."""
    return st.session_state.get(key)


def whole_number_input(label: str, value: int, step: int, key: str, **options: Any) -> Any:
    """A keyed whole-number input: a float input shown without decimals, so a value past 2^53 reaches its config's
    check and message (Streamlit's integer input silently keeps its default for values beyond 2^53 - 1)."""
    return st.number_input(label, value=float(value), step=float(step), format="%.0f", key=key, **options)


def fmt(value: float, digits: int = 4, notation: Notation = "significant") -> str:
    """A number as every explore view writes it: `digits` significant figures with thousands separators for big ones,
    as on the rest of the page ("significant"), `digits` significant figures with an exponent for very large or small
    ones ("general"), or `digits` decimals ("fixed"). NaN reads "undefined" and ±inf "∞" and "−∞" in every notation."""
    value = float(value)
    if notation == "significant" or not math.isfinite(value):
        return fmt_student(value, digits)
    if notation == "general":
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def request(name: str) -> None:
    """Button callback: ask the view `name` to start its computation with the settings it is about to read."""
    st.session_state[f"explore_{name}_requested"] = True


def requested(name: str) -> bool:
    """Whether the view `name` was asked to compute since its last run (the request is used up)."""
    return bool(st.session_state.pop(f"explore_{name}_requested", False))


def moments_row(name: str, q: Gaussian, extra: dict[str, float] | None = None) -> dict[str, str]:
    """One table row: q's (slope, intercept) means and sds, then the `extra` columns, each number through fmt."""
    row = {
        "": name,
        "Slope mean": fmt(q.mean[0]),
        "Slope sd": fmt(q.sd[0]),
        "Intercept mean": fmt(q.mean[1]),
        "Intercept sd": fmt(q.sd[1]),
    }
    return row | {column: fmt(value) for column, value in (extra or {}).items()}


def table_of(rows: list[dict[str, str]]) -> dict[str, list[str]]:
    """Rows with the same columns as st.table's columns."""
    return {column: [row[column] for row in rows] for column in rows[0]}


def captioned_table(what: str, columns: dict[str, list[str]]) -> None:
    """A table (`columns`: header to cells) after a caption saying what it shows ("Table: " + `what`), which a
    screen reader reads before the cells."""
    st.caption(f"Table: {what}")
    st.table(columns, border="horizontal")


def describe_error(error: ValueError) -> str:
    """An error message led by the name of the widget that set the field; a plain sentence when it names none."""
    field = getattr(error, "field", None)
    if field is None:  # numpy's "Singular matrix", a torch support check: not a message for a class
        return failure_sentence(error)
    return f"**{FIELD_LABELS.get(field, field)}**: {escape_markdown(error)}"


def latest_fits(view: JobView | None) -> list[tuple[str, Gaussian]]:
    """Each fit's current q (its last snapshot) that has a drawable ellipse: label -> Gaussian."""
    if view is None:
        return []
    return [
        (fit.label, fit.last.gaussian) for fit in view.fits if fit.last is not None and has_ellipse(fit.last.gaussian)
    ]


def session_cache(key: str, dataset: Dataset, model: Model) -> dict:
    """A dict in the session under `key` for results on this dataset and model, emptied when either changes: a rerun
    with the same settings reads its result instead of computing it again."""
    cache = st.session_state.get(key)
    if cache is None or cache[0] is not dataset or cache[1] != model:
        cache = (dataset, model, {})
        st.session_state[key] = cache
    return cache[2]


# ---- computations in a worker process -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExploreEntry:
    """A view's computation in a worker: the settings it computes, the session cache its result goes to, the job."""

    key: Hashable  # the settings, as the view's cache keys them
    cache: dict  # session_cache dict of the dataset and model it was started on
    job: ExploreJob


def explore_jobs() -> dict[str, ExploreEntry]:
    """The session's explore computations, by view name."""
    return st.session_state.setdefault(EXPLORE_JOBS_KEY, {})


def collect_explore_jobs() -> None:
    """Touch every explore computation of the session (its heartbeat) and put each finished one's result in its
    cache, as the latest result of that view."""
    entries = explore_jobs()
    for name, entry in list(entries.items()):
        entry.job.touch()
        if entry.job.state == "finished":
            entry.cache[entry.key] = entry.job.result
            entry.cache[LATEST] = entry.key
            del entries[name]


def touch_explore_jobs() -> None:
    """Touch every explore computation of the session (its heartbeat): called by the live fragment and by each view's
    "Computing…" line, which rerun while another explore tab is open and no full rerun comes."""
    for entry in list(explore_jobs().values()):
        entry.job.touch()


def compute(
    name: str,
    cache: dict,
    key: Hashable,
    cost: explore_budget.Cost,
    function: Callable[..., object],
    arguments: tuple[object, ...],
    lower: str,
) -> None:
    """Compute `function(*arguments)` for the settings `key` into `cache` (cache[LATEST] = key once there): in this
    thread when `cost` is inline, else as a job in a worker process, which replaces the view's previous one."""
    if key in cache:
        cache[LATEST] = key
        return
    entries = explore_jobs()
    previous = entries.pop(name, None)
    if cost.inline:
        if previous is not None:
            previous.job.stop()
        try:
            cache[key] = function(*arguments)
        except ValueError as error:
            st.error(describe_error(error))
            return
        except ArithmeticError as error:
            st.error(f"The computation failed: {escape_markdown(error)}")
            return
        cache[LATEST] = key
        return
    if previous is not None and previous.key == key and previous.job.active:
        entries[name] = previous  # pressed again while it computes: it goes on
        return
    if previous is not None:
        previous.job.stop()
    job = ExploreJob(function, arguments, lower, estimated_s=cost.seconds)
    job.start()
    entries[name] = ExploreEntry(key, cache, job)
    if job.join(EXPLORE_FIRST_WAIT_S):  # a short computation is shown at once, without a "computing" line
        collect_explore_jobs()


def on_explore_cancel(name: str) -> None:
    """Cancel the view's computation; the view says so."""
    entry = explore_jobs().get(name)
    if entry is not None:
        entry.job.stop("Cancelled.")


def stopped_for(name: str, key: Hashable) -> bool:
    """Whether the view's computation for the settings `key` stopped (cancelled or failed): not started again by
    itself."""
    entry = explore_jobs().get(name)
    return entry is not None and entry.key == key and entry.job.state == "stopped"


def draw_explore_job(name: str) -> None:
    """The view's computation while it waits or computes ("Computing…" and Cancel, polled), or why it stopped."""
    entry = explore_jobs().get(name)
    if entry is None:
        return
    job = entry.job
    if job.state == "stopped":
        if job.message == "Cancelled.":
            st.info("Cancelled.")
        else:
            st.warning(escape_markdown(job.message))
        return

    @st.fragment(run_every=EXPLORE_POLL_S)
    def explore_job_status() -> None:
        touch_explore_jobs()  # this one and those of views not open now: only this fragment may rerun meanwhile
        if not job.active:
            st.rerun(scope="app")  # draw the result (or the failure), stop polling
        position = job.queue_position
        text = (
            f"Computing… (queued: number {position}; the server runs a few fits and computations at a time)"
            if position is not None
            else f"Computing… {job.seconds:.0f} s"
        )
        left, right = st.columns([5, 1], vertical_alignment="center")
        with left:
            st.markdown(text)
        with right:
            st.button("Cancel", key=f"explore_{name}_cancel", on_click=on_explore_cancel, args=(name,))

    explore_job_status()


def on_explore_again(name: str) -> None:
    """Forget the view's stopped computation, so the view starts it again."""
    explore_jobs().pop(name, None)
