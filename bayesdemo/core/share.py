"""A whole Scenario in the URL query string and back: short stable keys, only non-default fields, never eval."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bayesdemo.core import fields
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError

MAX_VALUE_CHARS = 64  # longer query values are refused unread


def _parse_float(text: str) -> float:
    """A decimal number; range and finiteness are checked by the config itself."""
    return float(text)


def _parse_int(text: str) -> int:
    """A base-10 integer."""
    return int(text, 10)


def _parse_bool(text: str) -> bool:
    """1/0 or true/false."""
    lowered = text.strip().lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise ValueError(f"expected 1 or 0, got {text!r}")


def _parse_text(text: str) -> str:
    """A plain word; the config checks it against its choices."""
    return text.strip()


def _format_float(value: float) -> str:
    """Shortest text that reads back as exactly the same float."""
    return repr(float(value))


def _format_bool(value: bool) -> str:
    """1 or 0."""
    return "1" if value else "0"


@dataclass(frozen=True)
class Field:
    """One shared setting: its query key, where it lives in the Scenario, and how to read and write it."""

    key: str = ""  # query-string key (stable: links in the wild depend on it)
    part: str = ""  # "data", "prior", "fit", or "" for a field of Scenario itself
    name: str = ""  # field name inside that part
    parse: Callable[[str], Any] = _parse_text  # text -> value (raises ValueError when unreadable)
    render: Callable[[Any], str] = str  # value -> text


PARSE = {"int": _parse_int, "float": _parse_float, "bool": _parse_bool, "choice": _parse_text}  # by Setting.kind
RENDER: dict[str, Callable[[Any], str]] = {"int": str, "float": _format_float, "bool": _format_bool, "choice": str}
# Every setting a link carries, from the one table of settings (bayesdemo.core.fields), in its order.
FIELDS = tuple(
    Field(setting.link_key, setting.part, setting.name, PARSE[setting.kind], RENDER[setting.kind])
    for setting in fields.SETTINGS
    if setting.link_key is not None
)
PARTS = {part: kind for part, kind in fields.PARTS.items() if part}  # the Scenario's parts: data, prior, fit
PART_NAMES = {"data": "data settings", "prior": "prior settings", "fit": "fit settings", "": "display settings"}


_DEFAULT = Scenario()


@dataclass(frozen=True)
class _TopLevel:
    """Scenario's own fields, validated by Scenario itself (so decode never duplicates its rules)."""

    compare_all: bool = _DEFAULT.compare_all  # see Scenario.compare_all
    speed: float = _DEFAULT.speed  # see Scenario.speed (steps per second)
    snapshot_every: int = _DEFAULT.snapshot_every  # see Scenario.snapshot_every (steps)

    def __post_init__(self) -> None:
        checked = Scenario(compare_all=self.compare_all, speed=self.speed, snapshot_every=self.snapshot_every)
        object.__setattr__(self, "speed", checked.speed)
        object.__setattr__(self, "snapshot_every", checked.snapshot_every)


def _shown(text: str) -> str:
    """A query value quoted for a message, cut short if long."""
    return repr(text if len(text) <= 40 else text[:40] + "...")


def encode(scenario: Scenario) -> dict[str, str]:
    """The scenario's non-default fields as {key: text}, in a stable order."""
    default = _DEFAULT
    params: dict[str, str] = {}
    for field in FIELDS:
        owner = getattr(scenario, field.part) if field.part else scenario
        default_owner = getattr(default, field.part) if field.part else default
        value = getattr(owner, field.name)
        if value != getattr(default_owner, field.name) and value is not None:
            params[field.key] = field.render(value)
    return params


def _build(kind: type, values: dict[str, tuple[Any, str, str]], label: str, problems: list[str]) -> Any:
    """`kind(**values)`, dropping each value invalid on its own, or `kind()` when the rest do not fit together."""
    accepted = dict(values)
    while True:
        try:
            return kind(**{name: value for name, (value, _, _) in accepted.items()})
        except ValueError as error:
            name = error.field if isinstance(error, ConfigError) else None
            if name in accepted and _invalid_alone(kind, name, accepted[name][0]):
                _, key, raw = accepted.pop(name)
                problems.append(f"Ignored {key}={_shown(raw)}: {error}. Using the default {name}.")
                continue
            # The error names a field whose value is fine on its own (x_min=2 with x_max=1.5): a clash.
            given = ", ".join(f"{key}={_shown(raw)}" for _, key, raw in accepted.values())
            problems.append(f"Ignored {given}: together they are invalid ({error}). Using the default {label}.")
            return kind()


def _invalid_alone(kind: type, name: str, value: Any) -> bool:
    """Whether `kind` refuses `value` for `name` with every other field at its default."""
    try:
        kind(**{name: value})
    except ValueError:
        return True
    return False


def decode(params: Mapping[str, str | list[str]]) -> tuple[Scenario, list[str]]:
    """The Scenario a query string describes, and a readable message for each value that had to be ignored."""
    problems: list[str] = []
    values: dict[str, dict[str, tuple[Any, str, str]]] = {part: {} for part in (*PARTS, "")}
    for field in FIELDS:
        if field.key not in params:
            continue
        raw = params[field.key]
        if isinstance(raw, list | tuple):
            if not raw:
                continue
            raw = raw[-1]  # a repeated key: the last one wins, as in a browser form
        raw = str(raw)
        if len(raw) > MAX_VALUE_CHARS:
            problems.append(f"Ignored {field.key}: {field.name} value is longer than {MAX_VALUE_CHARS} characters.")
            continue
        try:
            value = field.parse(raw)
        except ValueError:
            problems.append(f"Ignored {field.key}={_shown(raw)}: {field.name} could not be read. Using the default.")
            continue
        values[field.part][field.name] = (value, field.key, raw)
    parts = {part: _build(kind, values[part], PART_NAMES[part], problems) for part, kind in PARTS.items()}
    top = values[""]
    scenario_defaults = dataclasses.asdict(_build(_TopLevel, top, PART_NAMES[""], problems))
    return Scenario(**parts, **scenario_defaults), problems


KEYS = {field.key: field for field in FIELDS}  # every link key and the setting it carries
TYPE_WORDS: dict[Callable[[str], Any], str] = {
    _parse_int: "a whole number",
    _parse_float: "a number",
    _parse_bool: "true or false",
    _parse_text: "a word",
}


def _as_link_text(field: Field, value: Any) -> str:
    """A typed value (a lesson file's) as the link text `field` reads, or ConfigError naming the key."""
    kinds: dict[Callable[[str], Any], tuple[type, ...]] = {
        _parse_int: (int,),
        _parse_float: (int, float),
        _parse_bool: (bool,),
        _parse_text: (str,),
    }
    wanted = kinds.get(field.parse, (str,))
    if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
        raise ConfigError(field.key, f"must be {TYPE_WORDS.get(field.parse, 'a word')}, got {value!r}")
    return field.render(value)


def _in_link_words(part: str, error: ConfigError) -> str:
    """A config error's sentence after its field, naming the part's other fields by their link keys (x_min -> x0)."""
    text = str(error)
    rest = text[len(error.field) + 1 :] if text.startswith(error.field + " ") else text
    for field in FIELDS:
        if field.part == part:
            rest = re.sub(rf"\b{field.name}\b", field.key, rest)
    return rest


def scenario_from_values(values: Mapping[str, Any]) -> Scenario:
    """The Scenario that typed values under link keys describe ({"n": 5, "m": "bbb"}), checked as a link is checked,
    except that any value a link would ignore is refused: ConfigError naming its link key ("n", "pws")."""
    texts: dict[str, str] = {}
    for key, value in values.items():
        if key not in KEYS:
            raise ConfigError(key, f"is not a setting; the settings are {', '.join(KEYS)}")
        field = KEYS[key]
        texts[key] = _as_link_text(field, value)
        if len(texts[key]) > MAX_VALUE_CHARS:
            raise ConfigError(key, f"is longer than {MAX_VALUE_CHARS} characters")
    parts: dict[str, Any] = {}
    for part, kind in (*PARTS.items(), ("", _TopLevel)):
        given = {
            field.name: field.parse(texts[field.key]) for field in FIELDS if field.part == part and field.key in texts
        }
        try:
            parts[part] = kind(**given)
        except ConfigError as error:
            named = [field.key for field in FIELDS if field.part == part and field.name == error.field]
            key = named[0] if named else ", ".join(field.key for field in FIELDS if field.key in texts)
            raise ConfigError(key, _in_link_words(part, error)) from None
    top = parts.pop("")
    scenario = Scenario(**parts, **dataclasses.asdict(top))
    decoded, problems = decode(texts)  # the same settings read back from a link: a lesson step is a link
    if problems or decoded != scenario:
        raise ConfigError(", ".join(texts), " ".join(problems) or "cannot be carried by a link")
    return scenario


def text_of(scenario: Scenario, key: str) -> str | None:
    """The link text of `scenario`'s setting under link key `key` (None for a setting left at its method's default)."""
    field = KEYS[key]
    owner = getattr(scenario, field.part) if field.part else scenario
    value = getattr(owner, field.name)
    return None if value is None else field.render(value)
