"""Guided lessons as data: TOML files of steps, each with a scenario (the link's settings), the charts it shows, an
optional prediction and a reveal that quotes this run's numbers through named placeholders. No Streamlit here.

A lesson file is read defensively: at most MAX_FILE_BYTES, only the keys below, each of its type, and every value
checked; any problem is a LessonError naming the file, the step and the field in plain words. A step's scenario is
a table of link settings ({ n = 5, m = "bbb" }) checked as a shared link is (share.scenario_from_values). A reveal's
placeholders ({slope_sd_exact}) are replaced by text, never evaluated; an unknown one is refused when the file loads.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bayesdemo.core.config import GUIDE_LABELS, METHOD_LABELS, FitConfig
from bayesdemo.core.exact import ExactPosterior
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.share import KEYS, scenario_from_values
from bayesdemo.core.validation import ConfigError
from bayesdemo.fitting.runner import Snapshot

MAX_FILE_BYTES = 64 * 1024  # a longer lesson file is refused unread
MAX_FILES = 100  # lesson files read from one folder (sorted by name); the rest are named as left out
MAX_STEPS = 30
MAX_TITLE_CHARS = 80
MAX_TEXT_CHARS = 500  # a step's text: one or two sentences
MAX_REVEAL_CHARS = 1000
MAX_CHOICES = 5
MAX_CHOICE_CHARS = 120
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")  # a lesson's name is its file name: it goes into links
CHARTS = ("slope", "intercept", "loss", "data")  # the slope's mean and sd charts, the intercept's, loss, data
# The page's explore views, by their tab labels, in the page's order (bayesdemo/page/explore draws its tabs from it).
EXPLORE_VIEWS = (
    "Parameter space",
    "Sequential updating",
    "MCMC reference",
    "Unknown noise sd",
    "Other priors",
    "Gradient noise",
    "Basis functions",
    "Calibration",
)
LESSONS_DIR = Path(__file__).resolve().parents[2] / "lessons"  # the lessons that come with bayesdemo
LESSONS_DIR_VARIABLE = "BAYESDEMO_LESSONS_DIR"  # a folder of more lesson files
LESSON_KEYS = ("title", "summary", "steps")
STEP_KEYS = ("title", "text", "scenario", "charts", "explore", "predict", "reveal")
PREDICT_KEYS = ("question", "choices", "answer")
# Placeholders every reveal may use: the exact posterior of this run's data, and the data's size and noise sd.
EXACT_PLACEHOLDERS = (
    "n",
    "noise_sd",
    "slope_mean_exact",
    "slope_sd_exact",
    "intercept_mean_exact",
    "intercept_sd_exact",
    "correlation",
    "slope_sd_mean_field",
    "intercept_sd_mean_field",
    "slope_sd_ratio_mean_field",
    "intercept_sd_ratio_mean_field",
)
# Placeholders per fit the step runs, FIT replaced by the fit's key (fit_key: noise, bbb, svi_normal, svi_mvn, ...).
FIT_PLACEHOLDERS = (
    "slope_mean_FIT",
    "slope_sd_FIT",
    "intercept_mean_FIT",
    "intercept_sd_FIT",
    "slope_sd_ratio_FIT",
    "intercept_sd_ratio_FIT",
    "steps_FIT",
    "slope_sd_crossed_FIT",
)
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MISSING = "–"  # a number this run does not have (a fit with no snapshot yet)


class LessonError(ValueError):
    """A lesson file that cannot be used: the message names the file, the step and the field."""

    def __init__(self, source: str, message: str, step: int | None = None, field_name: str | None = None):
        where = source + (f", step {step}" if step is not None else "") + (f", {field_name}" if field_name else "")
        text = message.strip()
        super().__init__(f"{where}: {text}{'' if text.endswith(('.', '?', '!')) else '.'}")
        self.source = source
        self.step = step
        self.field = field_name


def fit_key(config: FitConfig) -> str:
    """The name a reveal gives a fit: its method, and for Pyro SVI its guide ("bbb", "svi_normal", "svi_mvn")."""
    return f"svi_{config.guide}" if config.method == "svi" else config.method


def fit_key_words(key: str) -> str:
    """A fit key in the words on screen ("svi_normal" -> "Pyro SVI, mean-field (AutoNormal)")."""
    method, _, guide = key.partition("_")
    return f"{METHOD_LABELS[method]}, {GUIDE_LABELS[guide]}" if guide else METHOD_LABELS[method]


def placeholder_names(fit_keys: Sequence[str]) -> tuple[str, ...]:
    """Every placeholder a reveal may use when its step runs the fits `fit_keys`."""
    return EXACT_PLACEHOLDERS + tuple(name.replace("FIT", key) for key in fit_keys for name in FIT_PLACEHOLDERS)


def placeholders_in(text: str) -> list[str]:
    """The placeholder names `text` uses, in order; ConfigError for a brace outside a placeholder."""
    outside = PLACEHOLDER.sub("", text)
    if "{" in outside or "}" in outside:
        raise ConfigError("reveal", "has a brace { or } that is not part of a placeholder such as {slope_sd_exact}")
    return PLACEHOLDER.findall(text)


def _check_text(name: str, value: str, limit: int, blank_ok: bool = False) -> None:
    """A text field: not blank (unless allowed) and at most `limit` characters."""
    if not blank_ok and not value.strip():
        raise ConfigError(name, "must not be blank")
    if len(value) > limit:
        raise ConfigError(name, f"must be at most {limit} characters long, got {len(value)}")


@dataclass(frozen=True)
class Prediction:
    """A question the class answers before the run: its choices and which one is right (0-based)."""

    question: str
    choices: tuple[str, ...]
    answer: int  # index of the right choice; a lesson file counts from 1

    def __post_init__(self) -> None:
        _check_text("question", self.question, MAX_TEXT_CHARS)
        if not 2 <= len(self.choices) <= MAX_CHOICES:
            raise ConfigError("choices", f"must list 2 to {MAX_CHOICES} choices, got {len(self.choices)}")
        for choice in self.choices:
            _check_text("choices", choice, MAX_CHOICE_CHARS)
        if len(set(self.choices)) != len(self.choices):
            raise ConfigError("choices", "must all differ")
        if not 0 <= self.answer < len(self.choices):
            raise ConfigError("answer", f"must be between 1 and {len(self.choices)}, got {self.answer + 1}")


@dataclass(frozen=True)
class Step:
    """One step of a lesson: what to say, which settings to load, what to show, what to ask and what to reveal."""

    title: str
    text: str  # one or two sentences (Markdown)
    scenario: Scenario = Scenario()
    settings: tuple[tuple[str, str], ...] = ()  # the scenario as the file gave it: (link key, link text)
    charts: tuple[str, ...] = CHARTS  # which of CHARTS the step shows
    explore: str | None = None  # the explore view it opens, one of EXPLORE_VIEWS
    prediction: Prediction | None = None
    reveal: str = ""  # shown after a run of this step, placeholders filled from that run (Markdown)

    def __post_init__(self) -> None:
        _check_text("title", self.title, MAX_TITLE_CHARS)
        _check_text("text", self.text, MAX_TEXT_CHARS)
        for chart in self.charts:
            if chart not in CHARTS:
                raise ConfigError("charts", f"must name charts among {', '.join(CHARTS)}, got {chart!r}")
        if len(set(self.charts)) != len(self.charts):
            raise ConfigError("charts", "must name each chart once")
        if self.explore is not None and self.explore not in EXPLORE_VIEWS:
            raise ConfigError("explore", f"must be one of {', '.join(EXPLORE_VIEWS)}, got {self.explore!r}")
        _check_text("reveal", self.reveal, MAX_REVEAL_CHARS, blank_ok=self.prediction is None)
        known = placeholder_names(self.fit_keys)
        for name in placeholders_in(self.reveal):
            if name not in known:
                raise ConfigError("reveal", self._unknown(name))

    def _unknown(self, name: str) -> str:
        """Why placeholder `name` is refused, with the names this step offers."""
        for key in ("noise", "bbb", "svi_normal", "svi_mvn", "svi_tutorial"):
            if name in placeholder_names((key,)) and name not in EXACT_PLACEHOLDERS:
                fits = ", ".join(self.fit_keys)
                return f"uses {{{name}}}, but this step runs no {fit_key_words(key)} fit (it runs {fits})"
        examples = ", ".join(f"{{{known}}}" for known in placeholder_names(self.fit_keys[:1])[:6])
        return f"uses {{{name}}}, which is not a placeholder; placeholders are, for example, {examples}"

    @property
    def fit_keys(self) -> tuple[str, ...]:
        """The fit_key of each fit the step's scenario runs."""
        return tuple(fit_key(config) for config in self.scenario.fit_configs())

    @property
    def sets_speed(self) -> bool:
        """Whether the step sets the speed (else the page keeps the chosen pace, as a preset does)."""
        return any(key == "v" for key, _ in self.settings)

    @property
    def link(self) -> dict[str, str]:
        """The step's settings as link parameters."""
        return dict(self.settings)


@dataclass(frozen=True)
class Lesson:
    """A named sequence of steps (its name is its file's name, e.g. "forum-question")."""

    name: str
    title: str
    steps: tuple[Step, ...]
    summary: str = ""
    source: str = field(default="", compare=False)  # the file it came from, for messages

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ConfigError(
                "name", "must be lower-case letters, digits and hyphens (at most 40), as the file name without .toml"
            )
        _check_text("title", self.title, MAX_TITLE_CHARS)
        _check_text("summary", self.summary, MAX_TEXT_CHARS, blank_ok=True)
        if not 1 <= len(self.steps) <= MAX_STEPS:
            raise ConfigError("steps", f"must hold 1 to {MAX_STEPS} steps, got {len(self.steps)}")


# ---- reading a file ----------------------------------------------------------------------------------------------

TYPE_WORDS = {str: "text", int: "a whole number", list: "a list", dict: "a table"}


def _typed(table: Mapping[str, Any], key: str, kind: type, error: Any, default: Any = None) -> Any:
    """`table[key]` when it has type `kind` (default when absent and not None), else `error(key, message)`."""
    if key not in table:
        if default is None:
            raise error(key, "is missing")
        return default
    value = table[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise error(key, f"must be {TYPE_WORDS[kind]}, got {value!r}")
    return value


def _no_unknown_keys(table: Mapping[str, Any], allowed: Sequence[str], error: Any, prefix: str = "") -> None:
    """Refuse a key that is not in `allowed` (a typo would otherwise be silently ignored)."""
    for key in table:
        if key not in allowed:
            raise error(prefix + key, f"is not a field here; the fields are {', '.join(allowed)}")


def _parse_prediction(table: Mapping[str, Any], error: Any) -> Prediction:
    """A step's [predict] table."""

    def predict_error(key: str, message: str) -> LessonError:
        return error(f"predict.{key}", message)

    _no_unknown_keys(table, PREDICT_KEYS, predict_error)
    question = _typed(table, "question", str, predict_error)
    choices = _typed(table, "choices", list, predict_error)
    for choice in choices:
        if not isinstance(choice, str):
            raise predict_error("choices", f"must be a list of texts, got {choice!r}")
    answer = _typed(table, "answer", int, predict_error)
    try:
        return Prediction(question, tuple(choices), answer - 1)
    except ConfigError as problem:
        raise predict_error(problem.field, _rest(problem)) from None


def _rest(problem: ConfigError) -> str:
    """A config error's sentence after its field name."""
    text = str(problem)
    return text[len(problem.field) + 1 :] if text.startswith(problem.field + " ") else text


COMPARISON_WORDS = (
    ("must be >= ", "must be at least "),
    ("must be > ", "must be greater than "),
    ("must be <= ", "must be at most "),
    ("must be < ", "must be less than "),
)


def _in_words(text: str) -> str:
    """Comparison signs in words."""
    for sign, words in COMPARISON_WORDS:
        text = text.replace(sign, words)
    return text


def _parse_step(source: str, number: int, table: Any) -> Step:
    """Step `number` (from 1) of the file `source`."""

    def error(key: str, message: str) -> LessonError:
        return LessonError(source, message, number, key)

    if not isinstance(table, dict):
        raise LessonError(source, f"must be a table ([[steps]]), got {table!r}", number)
    _no_unknown_keys(table, STEP_KEYS, error)
    title = _typed(table, "title", str, error)
    text = _typed(table, "text", str, error)
    settings_table = _typed(table, "scenario", dict, error, default={})
    try:
        scenario = scenario_from_values(settings_table)
    except ConfigError as problem:
        raise error(f"scenario setting {problem.field}", _in_words(_rest(problem))) from None
    settings = tuple((key, KEYS[key].render(value)) for key, value in settings_table.items())
    charts = _typed(table, "charts", list, error, default=list(CHARTS))
    for chart in charts:
        if not isinstance(chart, str):
            raise error("charts", f"must be a list of chart names, got {chart!r}")
    explore = _typed(table, "explore", str, error, default="") or None
    predict_table = _typed(table, "predict", dict, error, default={})
    prediction = _parse_prediction(predict_table, error) if "predict" in table else None
    reveal = _typed(table, "reveal", str, error, default="")
    if prediction is not None and "reveal" not in table:
        raise error("reveal", "is missing: a step that asks a prediction reveals the answer")
    try:
        return Step(title, text, scenario, settings, tuple(charts), explore, prediction, reveal)
    except ConfigError as problem:
        raise error(problem.field, _rest(problem)) from None


def parse_lesson(name: str, content: bytes, source: str = "") -> Lesson:
    """The lesson in a TOML file's bytes (`name`: its file name without .toml); LessonError naming step and field."""
    source = source or f"{name}.toml"
    if len(content) > MAX_FILE_BYTES:
        raise LessonError(source, f"is longer than {MAX_FILE_BYTES:,} bytes, the most a lesson file may hold")
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise LessonError(source, f"is not UTF-8 text (byte {problem.start + 1} cannot be read)") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as problem:
        raise LessonError(source, f"is not valid TOML: {problem}") from None

    def error(key: str, message: str) -> LessonError:
        return LessonError(source, message, None, key)

    _no_unknown_keys(data, LESSON_KEYS, error)
    title = _typed(data, "title", str, error)
    summary = _typed(data, "summary", str, error, default="")
    steps = _typed(data, "steps", list, error)
    if not steps:
        raise error("steps", "must hold at least one step ([[steps]])")
    if len(steps) > MAX_STEPS:
        raise error("steps", f"must hold at most {MAX_STEPS} steps, got {len(steps)}")
    parsed = tuple(_parse_step(source, number, table) for number, table in enumerate(steps, start=1))
    try:
        return Lesson(name, title, parsed, summary, source)
    except ConfigError as problem:
        raise error(problem.field, _rest(problem)) from None


def load_lesson(path: Path) -> Lesson:
    """The lesson in the file `path` (read at most MAX_FILE_BYTES + 1 bytes); LessonError when unusable."""
    try:
        with path.open("rb") as handle:
            content = handle.read(MAX_FILE_BYTES + 1)
    except OSError as problem:
        raise LessonError(path.name, f"cannot be read ({problem.strerror or problem})") from None
    return parse_lesson(path.stem, content, path.name)


def lesson_folders() -> list[Path]:
    """The shipped lessons/ folder, then the folder named by BAYESDEMO_LESSONS_DIR when it is set."""
    folders = [LESSONS_DIR]
    extra = os.environ.get(LESSONS_DIR_VARIABLE, "").strip()
    if extra:
        folders.append(Path(extra))
    return folders


_CACHE: dict[tuple[str, int, int], Lesson | LessonError] = {}  # (path, mtime, size) -> what it held


def _cached_load(path: Path) -> Lesson:
    """load_lesson, read again only when the file's time or size changed."""
    try:
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        return load_lesson(path)
    if key not in _CACHE:
        if len(_CACHE) > 4 * MAX_FILES:
            _CACHE.clear()
        try:
            _CACHE[key] = load_lesson(path)
        except LessonError as problem:
            _CACHE[key] = problem
    found = _CACHE[key]
    if isinstance(found, LessonError):
        raise found
    return found


def load_lessons(folders: Sequence[Path] | None = None) -> tuple[dict[str, Lesson], list[str]]:
    """Every lesson in the `folders`' .toml files (lesson_folders() by default), by name, and one message per file
    or folder that could not be used. Never raises: a bad file leaves the other lessons usable."""
    lessons: dict[str, Lesson] = {}
    problems: list[str] = []
    for folder in lesson_folders() if folders is None else folders:
        if not folder.is_dir():
            problems.append(f"The lesson folder {folder} does not exist.")
            continue
        paths = sorted(folder.glob("*.toml"))
        if len(paths) > MAX_FILES:
            left_out = ", ".join(path.name for path in paths[MAX_FILES:])
            problems.append(f"Only the first {MAX_FILES} lesson files of {folder} are read; left out: {left_out}.")
        for path in paths[:MAX_FILES]:
            try:
                lesson = _cached_load(path)
            except LessonError as problem:
                problems.append(str(problem))
                continue
            if lesson.name in lessons:
                problems.append(f"{path}: a lesson named {lesson.name} is already loaded; this one is left out.")
                continue
            lessons[lesson.name] = lesson
    return lessons, problems


# ---- this run's numbers ------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """4 significant figures, as the page's cards and table show them."""
    if not math.isfinite(value):
        return MISSING
    return f"{value + 0.0:.4g}"


def _ratio(value: float) -> str:
    """A ratio or correlation to 2 decimals."""
    if not math.isfinite(value):
        return MISSING
    return f"{round(value, 2) + 0.0:.2f}"


def crossing_step(snapshots: Sequence[Snapshot], exact_sd: float) -> int | None:
    """The first snapshot's step at which the slope sd is below `exact_sd`, after one at or above it; else None."""
    above = False
    for snapshot in snapshots:
        if snapshot.sd[0] >= exact_sd:
            above = True
        elif above:
            return snapshot.step
    return None


def run_numbers(exact: ExactPosterior, n: int, fits: Mapping[str, Sequence[Snapshot]]) -> dict[str, str]:
    """Every placeholder's text for this run: the exact posterior of its data and each fit's last snapshot, keyed by
    fit_key. Shapes: exact.mean, exact.sd (2,); each snapshot's mean and sd (2,)."""
    mean_field_ratio = exact.mean_field_sd / exact.sd
    numbers = {
        "n": f"{n:,}",
        "noise_sd": _number(exact.model.noise_sd),
        "slope_mean_exact": _number(exact.mean[0]),
        "slope_sd_exact": _number(exact.sd[0]),
        "intercept_mean_exact": _number(exact.mean[1]),
        "intercept_sd_exact": _number(exact.sd[1]),
        "correlation": _ratio(exact.corr),
        "slope_sd_mean_field": _number(exact.mean_field_sd[0]),
        "intercept_sd_mean_field": _number(exact.mean_field_sd[1]),
        "slope_sd_ratio_mean_field": _ratio(mean_field_ratio[0]),
        "intercept_sd_ratio_mean_field": _ratio(mean_field_ratio[1]),
    }
    for key, snapshots in fits.items():
        if not snapshots:
            continue
        last = snapshots[-1]
        crossed = crossing_step(snapshots, float(exact.sd[0]))
        numbers |= {
            f"slope_mean_{key}": _number(last.mean[0]),
            f"slope_sd_{key}": _number(last.sd[0]),
            f"intercept_mean_{key}": _number(last.mean[1]),
            f"intercept_sd_{key}": _number(last.sd[1]),
            f"slope_sd_ratio_{key}": _ratio(last.sd[0] / exact.sd[0]),
            f"intercept_sd_ratio_{key}": _ratio(last.sd[1] / exact.sd[1]),
            f"steps_{key}": f"{last.step:,}",
            f"slope_sd_crossed_{key}": "never" if crossed is None else f"{crossed:,}",
        }
    return numbers


def fill(reveal: str, numbers: Mapping[str, str]) -> str:
    """`reveal` with each {placeholder} replaced by its text in `numbers` (MISSING when this run has none)."""
    return PLACEHOLDER.sub(lambda match: numbers.get(match.group(1), MISSING), reveal)
