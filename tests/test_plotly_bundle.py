"""The plotly.js bundle the live charts load (bayesdemo/web/plotly-basic.min.js) draws every trace type the page uses,
at the version of the installed plotly package's plotly.js."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import plotly
import plotly.graph_objects as go
import plotly.offline
from plotly.basedatatypes import BaseTraceType

from bayesdemo.page import live_chart

ROOT = Path(__file__).resolve().parent.parent
FULL_BUNDLE = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
# Each trace module of a plotly.js bundle is registered as {moduleType:"trace",name:"<type>",...}.
TRACE_MODULE = re.compile(r'moduleType:"trace",name:"(\w+)"')
COMPONENT_MODULE = re.compile(r'moduleType:"component",name:"(\w+)"')  # legend, annotations, error bars, ...


def bundle_trace_types(path: Path) -> set[str]:
    """The trace types a plotly.js bundle registers."""
    return set(TRACE_MODULE.findall(path.read_text(encoding="utf-8")))


def python_trace_types() -> dict[str, str]:
    """plotly's trace classes by name (go.Scatter) and their trace types ("scatter"), from plotly's Python side."""
    classes = {name: getattr(go, name) for name in go.__all__}
    return {
        name: cls().type for name, cls in classes.items() if isinstance(cls, type) and issubclass(cls, BaseTraceType)
    }


def trace_types_in_source() -> set[str]:
    """The trace types of every go.<Trace>(...) built in the package and app.py (their traces, read from the code)."""
    trace_classes = python_trace_types()
    sources = [ROOT / "app.py", *sorted((ROOT / "bayesdemo").rglob("*.py"))]
    used = set()
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            if node.value.id == "go" and node.attr in trace_classes:
                used.add(trace_classes[node.attr])
    return used


def test_the_trace_list_read_from_a_bundle_is_plotlys_own():
    # The full bundle registers every trace type plotly's Python side knows (both are plotly.js's schema), so the
    # pattern reads a bundle's trace list whole.
    assert bundle_trace_types(FULL_BUNDLE) == set(python_trace_types().values())


def test_the_shipped_bundle_draws_every_trace_type_the_charts_use():
    shipped = bundle_trace_types(live_chart.PLOTLY_JS)
    used = trace_types_in_source()
    assert {"scatter", "bar"} <= used, used  # the scan finds the charts' traces
    assert used <= shipped, f"traces the bundle lacks: {sorted(used - shipped)}"
    assert shipped < bundle_trace_types(FULL_BUNDLE)  # a partial bundle
    # It lacks trace types only: every component (annotations, shapes, error bars, legend) of the full one is in it.
    shipped_parts, full_parts = (
        set(COMPONENT_MODULE.findall(path.read_text(encoding="utf-8"))) for path in (live_chart.PLOTLY_JS, FULL_BUNDLE)
    )
    assert {"annotations", "errorbars", "shapes", "legend"} <= full_parts <= shipped_parts


def test_the_shipped_bundle_is_the_installed_plotlys_plotly_js_version():
    header = live_chart.PLOTLY_JS.read_text(encoding="utf-8")[:200]
    versions = re.findall(r"plotly\.js \(basic - minified\) v(\S+)", header)
    assert versions == [plotly.offline.get_plotlyjs_version()], header
    licence = (live_chart.PLOTLY_JS.parent / "plotly-basic.LICENSE.txt").read_text(encoding="utf-8")
    assert f"version {versions[0]}" in licence and "MIT License" in licence
