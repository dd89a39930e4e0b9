"""The one table of settings: every settable field has one entry, and each entry travels through a link and its flag."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from bayesdemo import cli
from bayesdemo.core import fields, share
from bayesdemo.core.fields import ENGINE_ONLY, PARTS, SETTINGS, Setting
from bayesdemo.core.scenario import Scenario
from bayesdemo.core.validation import ConfigError


def with_value(setting: Setting, value: Any) -> Scenario:
    """A default Scenario with `setting` set to `value`, built field by field (not through the table's helpers)."""
    scenario = Scenario()
    if not setting.part:
        return dataclasses.replace(scenario, **{setting.name: value})
    part = dataclasses.replace(getattr(scenario, setting.part), **{setting.name: value})
    return dataclasses.replace(scenario, **{setting.part: part})


def refusing_field(setting: Setting, value: Any) -> str | None:
    """The field a default Scenario with `setting` at `value` is refused for, or None when it is accepted."""
    try:
        with_value(setting, value)
    except ConfigError as error:
        return error.field
    return None


def refused_for_range(setting: Setting, value: Any) -> bool:
    """Whether `value` is refused for being outside `setting`'s own range, as the validators word it ("must be >= 0",
    "must be between 1 and 1024"), not for a clash with another field ("must be > x_min")."""
    try:
        with_value(setting, value)
    except ConfigError as error:
        return error.field == setting.name and re.search(r"must be (>=?|<=|between) -?[0-9]", str(error)) is not None
    return False


def edge_values(setting: Setting) -> list[Any]:
    """Awkward values: every choice, both booleans, or a number's two ends and a value inside."""
    if setting.kind == "choice":
        return list(setting.choices)
    if setting.kind == "bool":
        return [True, False]
    assert setting.low is not None and setting.high is not None
    low = math.nextafter(setting.low, math.inf) if setting.low_open else setting.low
    values = [low, setting.high, setting.low + 0.3 * (setting.high - setting.low)]
    values += [setting.low + 0.7 * (setting.high - setting.low)]
    return [int(value) for value in values] if setting.kind == "int" else values


def accepted_values(setting: Setting) -> list[Any]:
    """The edge values a default Scenario accepts (x_min = 1e6 clashes with the default x_max = 1, for one)."""
    return [value for value in edge_values(setting) if refusing_field(setting, value) is None]


def test_every_field_a_user_can_set_has_exactly_one_entry():
    # From the dataclasses themselves, so a new field without an entry (or an ENGINE_ONLY line saying why) fails here.
    entries = [(setting.part, setting.name) for setting in SETTINGS]
    for part, kind in PARTS.items():
        for field in dataclasses.fields(kind):
            if part == "" and field.name in PARTS:
                continue  # the Scenario's parts themselves: data, prior, fit
            count = entries.count((part, field.name))
            engine_only = field.name in ENGINE_ONLY.get(part, ())
            assert count + engine_only == 1, f"{kind.__name__}.{field.name}: {count} entries, engine only {engine_only}"


def test_names_are_unique_where_they_must_be():
    keys = [setting.link_key for setting in SETTINGS if setting.link_key is not None]
    labels = [setting.label for setting in SETTINGS]
    widget_keys = [setting.widget_key for setting in SETTINGS]
    assert len(set(keys)) == len(keys) and len(set(labels)) == len(labels) and len(set(widget_keys)) == len(widget_keys)
    assert all(setting.link_key or setting.flag for setting in SETTINGS)  # a setting nothing can set is no setting


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda setting: setting.widget_key)
def test_the_range_in_the_table_is_the_range_the_config_checks(setting):
    if setting.kind == "choice":
        assert refusing_field(setting, "none of these") == setting.name
        assert all(refusing_field(setting, choice) is None for choice in setting.choices)
        return
    if setting.kind == "bool":
        assert refusing_field(setting, "yes") == setting.name
        return
    assert setting.low is not None and setting.high is not None
    # Just past each end (the next float, or the next integer) is refused for its range; the ends themselves are not
    # (x_max = -1e6 is refused, but for being below x_min).
    step_down = setting.low if setting.low_open else math.nextafter(setting.low, -math.inf)
    beyond = [step_down, math.nextafter(setting.high, math.inf)]
    if setting.kind == "int":
        beyond = [int(setting.low) - 1, int(setting.high) + 1]
    for value in beyond:
        assert refused_for_range(setting, value), value
    for value in edge_values(setting)[:2]:
        assert not refused_for_range(setting, value), value


@pytest.mark.parametrize("setting", fields.LINKED, ids=lambda setting: setting.widget_key)
def test_each_linked_setting_round_trips_through_a_link_alone(setting):
    values = [value for value in accepted_values(setting) if value != setting.default]
    assert len(values) >= 1
    for value in values:
        scenario = with_value(setting, value)
        params = share.encode(scenario)
        assert list(params) == [setting.link_key]  # the one non-default setting, under its key
        assert share.decode(params) == (scenario, [])
        assert share.text_of(scenario, setting.link_key) == params[setting.link_key]


def flag_text(value: Any) -> str:
    """A value as typed after its flag: repr keeps every float digit (-1000000.0, 5e-324)."""
    return repr(value) if isinstance(value, float) else str(value)


def argument(setting: Setting, value: Any) -> str:
    """The text after `setting`'s flag that sets it to `value`: for a pair (--prior-mean SLOPE,INTERCEPT) the other one
    at its default."""
    assert setting.flag is not None
    sharing = cli.FLAGS[setting.flag]
    if not cli.is_pair(sharing):
        return flag_text(value)
    return ",".join(flag_text(value if other is setting else other.default) for other in sharing)


def parsed(*argv: str) -> Scenario:
    """The Scenario `bayesdemo fit ARGV` describes."""
    return cli.scenario_of(cli.build_parser().parse_args(["fit", *argv]))


@pytest.mark.parametrize("setting", [setting for setting in SETTINGS if setting.flag], ids=lambda s: s.widget_key)
def test_each_flagged_setting_round_trips_through_its_flag(setting):
    assert setting.flag is not None
    sharing = cli.FLAGS[setting.flag]
    values = [value for value in accepted_values(setting) if value != setting.default]
    if setting.kind == "bool":
        assert setting.default is False and values == [True]  # store_true: the flag can only turn it on
        assert parsed(setting.flag) == with_value(setting, True)
        return
    for value in values:
        expected = with_value(setting, value)
        text = argument(setting, value)
        if not cli.is_pair(sharing):  # --seed seeds the data and the fit alike
            for other in sharing:
                if other is not setting:
                    expected = dataclasses.replace(expected, **{other.part: with_part(expected, other, value)})
        assert parsed(setting.flag, text) == expected, text


def with_part(scenario: Scenario, setting: Setting, value: Any) -> Any:
    """The part of `scenario` that `setting` lives in, with `setting` set to `value`."""
    return dataclasses.replace(getattr(scenario, setting.part), **{setting.name: value})


@pytest.mark.parametrize("setting", [setting for setting in SETTINGS if setting.flag], ids=lambda s: s.widget_key)
def test_a_value_past_the_range_is_refused_naming_the_flag(setting, capsys):
    if setting.kind != "int" and setting.kind != "float":
        return
    assert setting.high is not None and setting.flag is not None
    beyond = int(setting.high) + 1 if setting.kind == "int" else math.nextafter(setting.high, math.inf)
    with pytest.raises(SystemExit) as raised:
        cli.main(["fit", setting.flag, argument(setting, beyond)])
    assert raised.value.code == 2
    assert capsys.readouterr().err.startswith(f"bayesdemo: error: argument {setting.flag}: {setting.name} must be")


@pytest.mark.parametrize("setting", [setting for setting in SETTINGS if setting.optional], ids=lambda s: s.name)
def test_an_optional_setting_names_the_property_with_its_value_in_force(setting):
    value = accepted_values(setting)[0]
    fit = with_value(setting, value).fit
    assert getattr(fit, setting.in_force) == value  # set: that value is in force
    assert getattr(Scenario().fit, setting.in_force) is not None  # None: the method's own default is in force


def test_labels_are_the_table_s():
    assert fields.label_of("fit", "seed") == "Fit seed" and fields.label_of("data", "seed") == "Seed"
    assert fields.label_of("fit", "device") == "device"  # engine only: no label on screen


@pytest.mark.parametrize("setting", [*fields.ON_FORM, fields.BY_WIDGET_KEY["compare_all"]], ids=lambda s: s.widget_key)
def test_each_form_setting_round_trips_through_the_sidebar_widgets(setting):
    from bayesdemo.page import form  # the page layer: imported here so the rest of this file needs no streamlit

    values = [value for value in accepted_values(setting) if value != setting.default]
    assert values
    for value in values:
        scenario = with_value(setting, value)
        widgets = form.widget_values(scenario)
        assert set(widgets) == {setting.widget_key for setting in fields.ON_FORM}
        assert form.build_scenario(widgets) == (scenario, [])


def test_an_optional_setting_needs_the_property_the_rule_names():
    with pytest.raises(ConfigError) as raised:
        Setting("fit", "batch_size", "Batch size", "bs", "--batch-size", "int", 0, 10, optional=True)
    assert raised.value.field == "optional" and "batch_size_in_force" in str(raised.value)


def test_explore_messages_name_the_sidebar_s_settings_by_the_table_s_labels():
    from bayesdemo.page.explore.common import describe_error
    from bayesdemo.references.calibration import CalibrationConfig

    with pytest.raises(ConfigError) as raised:
        CalibrationConfig(x_min=1.0, x_max=1.0)  # the calibration simulates x over the sidebar's x from and x to
    assert describe_error(raised.value).startswith(f"**{fields.label_of('data', 'x_max')}**: ")
