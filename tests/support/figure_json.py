"""What a figure sends to the browser, and the check that a figure built without plotly's checks sends the same."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType

import plotly.graph_objects as go
import plotly.io as pio
import pytest


def sent_json(figure: go.Figure) -> dict:
    """The figure as the browser receives it: plotly's JSON (numeric arrays in base64), parsed."""
    return json.loads(pio.to_json(figure.to_plotly_json(), validate=False))


def assert_same_json_without_checks(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, builds: list[Callable[[], go.Figure]]
) -> None:
    """Each build once with `module.VALIDATE` off and once on sends the same JSON, equal in every value bit for bit.

    No tolerance: both builds hold the same numbers; a property plotly would refuse or reshape shows up as a difference.
    """
    for build in builds:
        monkeypatch.setattr(module, "VALIDATE", False)
        unchecked = build()
        monkeypatch.setattr(module, "VALIDATE", True)
        checked = build()
        assert unchecked._validate is False and checked._validate is True
        assert sent_json(unchecked) == sent_json(checked)
