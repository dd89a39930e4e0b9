"""How charts look: each method's colour, dash and marker (Okabe–Ito colours), and the projector and dark styles.

Colour never carries a method alone: every method also has its own dash pattern and marker symbol. `apply_style`
turns a figure drawn by figures.py or figures_explore.py (standard light style) into its projector and/or dark form.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from bayesdemo.core.config import GUIDE_LABELS, METHOD_LABELS, OBJECTIVE_SHORT
from bayesdemo.core.validation import ConfigError

# Okabe & Ito (2008), "Color Universal Design": eight colours told apart under the common colour-vision deficiencies.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky blue": "#56B4E9",
    "bluish green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish purple": "#CC79A7",
    "black": "#000000",
}
# Orange and sky blue have under 3:1 contrast on white (WCAG 2.1, 1.4.11): on the light background they are drawn
# in darker shades of the same hue.
DARKER_ORANGE = "#9E6D00"
DARKER_SKY_BLUE = "#2C7FB0"

LIGHT_BACKGROUND = "#FFFFFF"
DARK_BACKGROUND = "#121212"
LIGHT_TEXT = "#222222"  # text on the light background (15.9:1)
DARK_TEXT = "#F2F2F2"  # text on the dark background (17:1)
EXACT_COLOUR = "#222222"  # the exact posterior on the light background: the reference every fit is judged against
MEAN_FIELD_COLOUR = "#666666"  # the mean-field optimum on the light background (5.7:1 on white)
BAND_EDGE_COLOUR = "#595959"  # the edges of the exact posterior's bands (7:1 on white)
TRUTH_COLOUR = "#117733"  # the line the data were simulated from (5.7:1 on white; not a method's green)
DATA_COLOUR = "#555555"  # data points
FAINT_COLOUR = "#BBBBBB"  # points not yet used (sequential updating): faint on purpose
GRID_COLOUR = "#E3E8F0"  # grid lines: quiet, they carry no data
AXIS_LINE_COLOUR = "#767676"  # axis and zero lines (4.5:1 on white)

# Every colour drawn on the light background and the colour it becomes on the dark one (>= 3:1 on DARK_BACKGROUND).
DARK_COLOURS = {
    EXACT_COLOUR: DARK_TEXT,
    LIGHT_TEXT: DARK_TEXT,
    MEAN_FIELD_COLOUR: "#B3B3B3",
    BAND_EDGE_COLOUR: "#BDBDBD",
    TRUTH_COLOUR: "#44BB99",
    DATA_COLOUR: "#C8C8C8",
    FAINT_COLOUR: "#6E6E6E",
    GRID_COLOUR: "#333333",
    AXIS_LINE_COLOUR: "#8C8C8C",
    OKABE_ITO["blue"]: OKABE_ITO["sky blue"],
    DARKER_ORANGE: OKABE_ITO["orange"],
    DARKER_SKY_BLUE: OKABE_ITO["sky blue"],
    "#000000": DARK_TEXT,
    "#FFFFFF": DARK_BACKGROUND,
}

STANDARD_FONT_SIZE = 14  # px: tick labels, axis titles and legend in the standard style
STANDARD_TITLE_SIZE = 19  # px: chart titles in the standard style
PROJECTOR_FONT_SIZE = 24  # px: every chart text in projector mode, readable from the back of a lecture hall
PROJECTOR_TITLE_SIZE = 30  # px: chart titles in projector mode
PROJECTOR_LINE_WIDTH = 4.0  # px: thinnest drawn line in projector mode
PROJECTOR_MARKER_SCALE = 1.5  # markers grow by this factor in projector mode
PROJECTOR_PLOT_AREA_SCALE = 1.25  # the plot area grows by this factor in projector mode (margins grow with the font)


@dataclass(frozen=True)
class ChartStyle:
    """How to draw a chart: large type and thick lines for a projector, and/or the dark theme."""

    projector: bool = False  # text >= 24 px, lines >= 4 px, strong reference lines
    dark: bool = False  # light text on a dark background

    def __post_init__(self) -> None:
        for field in ("projector", "dark"):
            if not isinstance(getattr(self, field), bool):
                raise ConfigError(field, f"must be True or False, got {getattr(self, field)!r}")

    @property
    def background(self) -> str:
        """The chart's background colour as '#RRGGBB'."""
        return DARK_BACKGROUND if self.dark else LIGHT_BACKGROUND


STANDARD = ChartStyle()


@dataclass(frozen=True)
class MethodStyle:
    """How one method's lines look: colour (light background), dash pattern and marker symbol."""

    colour: str  # '#RRGGBB' on the light background; DARK_COLOURS gives the dark background's
    dash: str  # a plotly dash name or a list of px lengths
    symbol: str  # a plotly marker symbol


SVI_LABEL = METHOD_LABELS["svi"]
BBB_LABEL = METHOD_LABELS["bbb"]
MEAN_FIELD_LABEL = "mean-field optimum"  # a fit label drawn in the mean-field optimum's own grey, not a method colour
# One style per method: the dash patterns all differ (a band's edge has no marker), and so do the markers. Bayes by
# Backprop and the full-covariance guide, the two fits a lesson contrasts, are blue and vermillion: apart under every
# common colour-vision deficiency.
METHOD_STYLES = {
    METHOD_LABELS["noise"]: MethodStyle(OKABE_ITO["reddish purple"], "dashdot", "circle"),
    BBB_LABEL: MethodStyle(OKABE_ITO["blue"], "solid", "square"),
    f"{SVI_LABEL}, {GUIDE_LABELS['normal']}": MethodStyle(OKABE_ITO["bluish green"], "longdashdot", "triangle-up"),
    f"{SVI_LABEL}, {GUIDE_LABELS['mvn']}": MethodStyle(OKABE_ITO["vermillion"], "longdash", "diamond"),
    f"{SVI_LABEL}, {GUIDE_LABELS['tutorial']}": MethodStyle(DARKER_ORANGE, "20px,8px", "x"),
    f"{BBB_LABEL} ({OBJECTIVE_SHORT['mse']})": MethodStyle(DARKER_SKY_BLUE, "dash", "star"),
    f"{BBB_LABEL} ({OBJECTIVE_SHORT['likelihood']})": MethodStyle(
        OKABE_ITO["bluish green"], "12px,4px,3px,4px,3px,4px", "hexagon"
    ),
    MEAN_FIELD_LABEL: MethodStyle(MEAN_FIELD_COLOUR, "dot", "circle-open"),
}
# Styles of any other label, chosen by a stable hash of it (the same across reruns and processes).
OTHER_COLOURS = (
    OKABE_ITO["blue"],
    OKABE_ITO["vermillion"],
    OKABE_ITO["bluish green"],
    OKABE_ITO["reddish purple"],
    DARKER_ORANGE,
    DARKER_SKY_BLUE,
)
OTHER_DASHES = ("solid", "dash", "dashdot", "longdash", "longdashdot", "dot")
OTHER_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "x", "star", "hexagon", "cross")


def method_style(label: str) -> MethodStyle:
    """The colour, dash and marker of a fit label (FitConfig.label): fixed for known methods, hashed otherwise."""
    known = METHOD_STYLES.get(label)
    if known is not None:
        return known
    code = zlib.crc32(label.encode("utf-8"))
    return MethodStyle(
        OTHER_COLOURS[code % len(OTHER_COLOURS)],
        OTHER_DASHES[(code // len(OTHER_COLOURS)) % len(OTHER_DASHES)],
        OTHER_SYMBOLS[(code // 7) % len(OTHER_SYMBOLS)],
    )


LIGHT_TEMPLATE_LAYOUT = {
    "paper_bgcolor": LIGHT_BACKGROUND,
    "plot_bgcolor": LIGHT_BACKGROUND,
    "font": {"color": LIGHT_TEXT},
    "xaxis": {"gridcolor": GRID_COLOUR, "zerolinecolor": GRID_COLOUR, "linecolor": AXIS_LINE_COLOUR},
    "yaxis": {"gridcolor": GRID_COLOUR, "zerolinecolor": GRID_COLOUR, "linecolor": AXIS_LINE_COLOUR},
    "hovermode": "closest",
}
DARK_GRID = DARK_COLOURS[GRID_COLOUR]
DARK_TEMPLATE_LAYOUT = {
    "paper_bgcolor": DARK_BACKGROUND,
    "plot_bgcolor": DARK_BACKGROUND,
    "font": {"color": DARK_TEXT},
    "xaxis": {"gridcolor": DARK_GRID, "zerolinecolor": DARK_GRID, "linecolor": DARK_COLOURS[AXIS_LINE_COLOUR]},
    "yaxis": {"gridcolor": DARK_GRID, "zerolinecolor": DARK_GRID, "linecolor": DARK_COLOURS[AXIS_LINE_COLOUR]},
    "hovermode": "closest",
    "legend": {"bgcolor": "rgba(0,0,0,0)"},
}
# A small template: the stock "plotly_white" is deep-copied on every use of it (docs/performance.md, Server work per
# live redraw).
LIGHT_TEMPLATE = go.layout.Template(layout=LIGHT_TEMPLATE_LAYOUT)
DARK_TEMPLATE = go.layout.Template(layout=DARK_TEMPLATE_LAYOUT)

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")
_RGBA = re.compile(r"^rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([0-9.]+)\s*)?\)$")
_AXIS = re.compile(r"^[xy]axis\d*$")


def _dark_colour(colour: str) -> str:
    """A light-background colour ('#rrggbb', 'rgb(...)' or 'rgba(...)') as drawn on the dark background."""
    match = _HEX.match(colour)
    if match:
        return DARK_COLOURS.get("#" + match.group(1).upper(), colour)
    match = _RGBA.match(colour)
    if match:
        red, green, blue = (int(match.group(i)) for i in (1, 2, 3))
        mapped = DARK_COLOURS.get(f"#{red:02X}{green:02X}{blue:02X}")
        if mapped is None:
            return colour
        alpha = match.group(4)
        red, green, blue = (int(mapped[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgba({red},{green},{blue},{alpha})" if alpha is not None else f"rgb({red},{green},{blue})"
    return colour


def _recolour(node: Any) -> Any:
    """`node` (a figure dict or part of it) with every colour value moved to the dark background's."""
    if isinstance(node, dict):
        return {
            key: (
                _dark_colour(value)
                if isinstance(value, str) and "color" in key
                else [_dark_colour(v) if isinstance(v, str) else v for v in value]
                if isinstance(value, list | tuple) and "color" in key
                else _recolour(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list | tuple):
        return [_recolour(item) for item in node]
    return node


def _font(node: dict, size: int) -> None:
    """Set node["font"]["size"] to at least `size`."""
    font = node.setdefault("font", {})
    font["size"] = max(size, font.get("size") or 0)


def _enlarge(layout: dict, traces: list[dict]) -> None:
    """Projector sizes in place: text >= PROJECTOR_FONT_SIZE px, lines >= PROJECTOR_LINE_WIDTH px, bigger margins."""
    scale = PROJECTOR_FONT_SIZE / STANDARD_FONT_SIZE
    _font(layout, PROJECTOR_FONT_SIZE)
    title = layout.setdefault("title", {})
    _font(title, PROJECTOR_TITLE_SIZE)
    _font(layout.setdefault("legend", {}), PROJECTOR_FONT_SIZE)
    for key in [key for key in layout if _AXIS.match(key)] or ["xaxis", "yaxis"]:
        axis = layout.setdefault(key, {})
        axis.setdefault("tickfont", {})["size"] = PROJECTOR_FONT_SIZE
        axis_title = axis.setdefault("title", {})
        _font(axis_title, PROJECTOR_FONT_SIZE)
        axis_title["standoff"] = max(axis_title.get("standoff") or 0, 12)
    for annotation in layout.get("annotations", []):
        _font(annotation, PROJECTOR_FONT_SIZE)
    margin = layout.get("margin", {})
    old_margin = {side: margin.get(side, 80 if side in "lr" else 100 if side == "t" else 80) for side in "lrtb"}
    height = layout.get("height") or 450
    plot_area = max(height - old_margin["t"] - old_margin["b"], 100)
    new_margin = {side: round(value * scale) for side, value in old_margin.items()}
    layout["margin"] = {**margin, **new_margin}
    layout["height"] = new_margin["t"] + round(plot_area * PROJECTOR_PLOT_AREA_SCALE) + new_margin["b"]
    legend = layout["legend"]
    if legend.get("yref") == "container" and legend.get("y") is not None:
        # A legend placed in px from the figure's top or bottom keeps its place in the scaled margins.
        from_top = legend.get("yanchor") == "top"
        offset = (1.0 - legend["y"] if from_top else legend["y"]) * height * scale / layout["height"]
        legend["y"] = 1.0 - offset if from_top else offset
    if isinstance(title.get("pad"), dict):
        title["pad"] = {side: value * scale for side, value in title["pad"].items()}
    for trace in traces:
        line = trace.get("line")
        if line is not None and line.get("width", 2) > 0 and not str(line.get("color", "")).endswith(",0)"):
            line["width"] = max(PROJECTOR_LINE_WIDTH, 1.5 * line.get("width", 2))
        marker = trace.get("marker")
        if marker is not None and trace.get("type", "scatter") == "scatter":
            marker["size"] = PROJECTOR_MARKER_SCALE * (marker.get("size") or 6)
            if "line" in marker and marker["line"].get("width"):
                marker["line"]["width"] = max(PROJECTOR_LINE_WIDTH / 2, marker["line"]["width"])
        error = trace.get("error_y")
        if error is not None:
            error["thickness"] = PROJECTOR_LINE_WIDTH
        if "textfont" in trace:
            trace["textfont"]["size"] = max(PROJECTOR_FONT_SIZE, trace["textfont"].get("size") or 0)


def apply_style(figure: go.Figure, style: ChartStyle = STANDARD) -> go.Figure:
    """`figure` (drawn in the standard light style) in `style`: a new figure; the standard style returns `figure`.

    Projector: every text at least PROJECTOR_FONT_SIZE px (titles PROJECTOR_TITLE_SIZE), every drawn line at least
    PROJECTOR_LINE_WIDTH px, markers and margins scaled up. Dark: DARK_TEMPLATE, each colour moved by DARK_COLOURS.
    """
    if style == STANDARD:
        return figure
    data = figure.to_dict()
    traces: list[dict] = data.get("data", [])
    layout: dict = data.setdefault("layout", {})
    if style.projector:
        _enlarge(layout, traces)
    if style.dark:
        layout.pop("template", None)
        data = _recolour(data)
        data["layout"]["template"] = DARK_TEMPLATE
    # Built without validation (4x faster on a live redraw): every value came from a validated figure.
    return go.Figure(data, _validate=False)
