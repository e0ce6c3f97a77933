"""Respondents' 5-D positions: radar with interval bands, per-dimension bars, a comparison strip.

Every builder takes the long frame of :func:`fairpp.analysis.positions` (``respondent, kind,
dimension, position, ci_low, ci_high, na_rate, n``) and returns a ``plotly.graph_objects.Figure``. Traces are
written as dicts and the figure is made from its whole spec at once, so plotly validates each property once
(a ``go.Scatter`` object put into a figure is validated twice: half the building time of these charts).

>>> import pandas as pd
>>> pos = pd.DataFrame({"respondent": "Civic Pragmatists", "kind": "persona", "dimension": [1, 2, 3, 4, 5],
...                     "position": 0.5, "ci_low": 0.4, "ci_high": 0.6, "na_rate": 0.1, "n": 50})
>>> len(radar(pos).data)  # one band and one line
2
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.theme import dimension_axis, dimension_label, legend_above, respondent_style

__all__ = ["radar", "dimension_bars", "position_strip", "style_of", "rgba"]

_HOVER = ("<b>%{customdata[0]}</b><br>%{customdata[1]}<br>position %{customdata[2]:.3f} "
          "[%{customdata[3]:.3f}, %{customdata[4]:.3f}]<br>N/A rate %{customdata[5]:.1%} · n = %{customdata[6]:,.0f}"
          "<extra></extra>")


def style_of(name: str, kind: str | None, regions: Mapping[str, str | None] | None) -> dict:
    """The respondent's marker style, given an optional ``{respondent: region}`` mapping."""
    return respondent_style(name, kind=kind, region=(regions or {}).get(name))


def rgba(hex_colour: str, alpha: float) -> str:
    """``#RRGGBB`` -> ``rgba(r, g, b, alpha)``.

    >>> rgba("#FF0000", 0.5)
    'rgba(255, 0, 0, 0.5)'
    """
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def _two_lines(d: int) -> str:
    first, second = dimension_label(d, style="poles").split(" → ")
    return f"{first} →<br>{second}"


def _custom(sub: pd.DataFrame) -> list[list]:
    labels = {d: dimension_label(d) for d in range(1, 6)}
    cols = [sub[c].to_numpy() for c in ("respondent", "dimension", "position", "ci_low", "ci_high", "na_rate", "n")]
    return [[r, labels.get(int(d), str(d)), p, lo, hi, na, n] for r, d, p, lo, hi, na, n in zip(*cols)]


def _order(pos: pd.DataFrame, respondents: Sequence[str] | None) -> list[str]:
    names = list(dict.fromkeys(pos["respondent"]))
    return [r for r in respondents if r in names] if respondents else names


def _groups(pos: pd.DataFrame, names: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """Each respondent's rows sorted by dimension, in ``names`` order (one groupby, not one filter per name)."""
    by = {str(k): g.sort_values("dimension") for k, g in pos.groupby("respondent", sort=False)}
    return [(n, by[n]) for n in names if n in by]


def _polar_domains(n: int, cols: int) -> list[dict]:
    """Grid domains for ``n`` small polar plots, ``cols`` per row (top row first)."""
    rows = max(1, math.ceil(n / cols))
    gap_x, gap_y = 0.12, 0.16 if rows > 1 else 0.0
    w = (1 - gap_x * (cols - 1)) / cols
    h = (1 - gap_y * (rows - 1)) / rows
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        x0, y1 = c * (w + gap_x), 1 - r * (h + gap_y)
        out.append({"x": [min(max(round(v, 6), 0.0), 1.0) for v in (x0, x0 + w)],
                    "y": [min(max(round(v, 6), 0.0), 1.0) for v in (y1 - h, y1)]})
    return out


def radar(pos: pd.DataFrame, *, respondents: Sequence[str] | None = None, side_by_side: bool = False,
          regions: Mapping[str, str | None] | None = None, cols: int = 3, title: str | None = None,
          width: float = 900) -> go.Figure:
    """Radar of each respondent's position (radius, 0..1) with its 95% interval as a shaded band.

    ``side_by_side`` draws one small radar per respondent (``cols`` per row, axes labelled D1..D5) instead of
    overlaying them. The overlaid radar's legend sits above it, with room for the rows it takes on a figure
    ``width`` pixels wide (:func:`~fairpp.figures.theme.legend_above`).
    """
    groups = _groups(pos, _order(pos, respondents))
    n = len(groups)
    ncols = max(1, min(cols, n)) if side_by_side else 1
    rows = max(1, math.ceil(n / ncols)) if side_by_side else 1
    traces = []
    for i, (name, sub) in enumerate(groups):
        st = style_of(name, str(sub["kind"].iloc[0]), regions)
        theta = [dimension_label(int(d), style="short") if side_by_side else dimension_axis(int(d))
                 for d in sub["dimension"]]
        hi, lo, mid = sub["ci_high"].tolist(), sub["ci_low"].tolist(), sub["position"].tolist()
        polar = f"polar{i + 1}" if side_by_side and i else "polar"
        custom = _custom(sub)
        traces.append(dict(
            type="scatterpolar", r=hi + hi[:1] + lo[:1] + lo[::-1], theta=theta + theta[:1] + theta[:1] + theta[::-1],
            subplot=polar, fill="toself", fillcolor=rgba(st["color"], 0.25), line={"width": 0}, hoverinfo="skip",
            legendgroup=name, showlegend=False, name=f"{name} 95% interval"))
        traces.append(dict(
            type="scatterpolar", r=mid + mid[:1], theta=theta + theta[:1], mode="lines+markers", subplot=polar,
            line={"color": st["color"], "width": 2}, marker={"size": 6, "color": st["color"]},
            name=name, legendgroup=name, showlegend=not side_by_side, customdata=custom + custom[:1],
            hovertemplate=_HOVER))
    axis = {"radialaxis": {"range": [0, 1], "tickvals": [0, 0.25, 0.5, 0.75, 1], "tickfont": {"size": 10},
                           "angle": 90, "tickangle": 90},
            "angularaxis": {"tickfont": {"size": 11 if not side_by_side else 9}, "rotation": 90,
                            "direction": "clockwise"}}
    layout: dict = {"template": "fairpp", "title": title, "height": 460 if not side_by_side else 330 * rows + 40,
                    "margin": {"l": 110, "r": 110, "t": 60 if side_by_side or title else 40, "b": 30}}
    if side_by_side:
        domains = _polar_domains(n, ncols)
        for i, ((name, _), dom) in enumerate(zip(groups, domains)):
            layout[f"polar{i + 1}" if i else "polar"] = {**axis, "domain": dom}
        layout["annotations"] = [{"text": name, "x": (dom["x"][0] + dom["x"][1]) / 2, "y": dom["y"][1],
                                  "xref": "paper", "yref": "paper", "yanchor": "bottom", "yshift": 18,
                                  "showarrow": False, "font": {"size": 13}} for (name, _), dom in zip(groups, domains)]
        return go.Figure({"data": traces, "layout": layout})
    layout["polar"] = axis
    layout["legend"] = {"tracegroupgap": 0}  # no gap between groups: each holds one entry
    # the legend starts at the plot's left edge (110 px in) and may run to the figure's right edge; it is lifted
    # clear of the top dimension's two-line label, which sits above the circle when the circle fills the height
    return go.Figure(legend_above({"data": traces, "layout": layout}, width=width - 110, grow=True,
                                  clear=_TOP_LABEL))


_TOP_LABEL = 44  # px: a two-line angular tick label and its gap above the circle


def dimension_bars(pos: pd.DataFrame, *, respondents: Sequence[str] | None = None,
                   regions: Mapping[str, str | None] | None = None, title: str | None = None,
                   width: float = 900) -> go.Figure:
    """Grouped horizontal bars: position per dimension and respondent, with 95% interval error bars.

    ``width``: the plot's expected width in pixels, which sizes the room for the legend above it.
    """
    groups = _groups(pos, _order(pos, respondents))
    dims = sorted(int(d) for d in pos["dimension"].unique())
    traces = []
    for name, sub in groups:
        st = style_of(name, str(sub["kind"].iloc[0]), regions)
        traces.append(dict(
            type="bar", y=[_two_lines(int(d)) for d in sub["dimension"]], x=sub["position"].to_numpy(), name=name,
            orientation="h", marker={"color": st["color"]},
            error_x={"type": "data", "symmetric": False, "array": (sub["ci_high"] - sub["position"]).to_numpy(),
                     "arrayminus": (sub["position"] - sub["ci_low"]).to_numpy(), "thickness": 1.2, "width": 2,
                     "color": "#333"},
            customdata=_custom(sub), hovertemplate=_HOVER))
    n = len(groups)
    layout = {"template": "fairpp", "barmode": "group", "title": title, "bargap": 0.25, "bargroupgap": 0.05,
              "height": max(400, 140 + len(dims) * (11 * n + 24)),
              "xaxis": {"range": [0, 1], "title": "position (0 = first pole, 1 = second)"},
              "yaxis": {"autorange": "reversed", "categoryorder": "array",
                        "categoryarray": [_two_lines(d) for d in dims]},
              "shapes": [{"type": "line", "x0": 0.5, "x1": 0.5, "xref": "x", "y0": 0, "y1": 1, "yref": "paper",
                          "line": {"dash": "dot", "color": "#888", "width": 1}}],
              "legend": {"traceorder": "normal"}, "margin": {"b": 20}}
    return go.Figure(legend_above({"data": traces, "layout": layout}, width=width, grow=True))


def position_strip(pos: pd.DataFrame, *, respondents: Sequence[str] | None = None,
                   regions: Mapping[str, str | None] | None = None, title: str | None = None) -> go.Figure:
    """One row per dimension, one marker per respondent at its position, with its interval.

    Personas are circles in their colours; models use their region's colour and symbol, slightly
    offset so overlapping intervals stay visible.
    """
    groups = _groups(pos, _order(pos, respondents))
    dims = sorted(int(d) for d in pos["dimension"].unique())
    row = {d: i for i, d in enumerate(dims)}
    traces = []
    for j, (name, sub) in enumerate(groups):
        st = style_of(name, str(sub["kind"].iloc[0]), regions)
        offset = (j - (len(groups) - 1) / 2) * (0.6 / max(len(groups), 1))
        traces.append(dict(
            type="scatter", x=sub["position"].to_numpy(), y=[row[int(d)] + offset for d in sub["dimension"]],
            mode="markers",
            name=name, marker={"color": st["color"], "symbol": st["symbol"], "size": st["size"] - 2,
                               "line": st["line"]},
            error_x={"type": "data", "symmetric": False, "array": (sub["ci_high"] - sub["position"]).to_numpy(),
                     "arrayminus": (sub["position"] - sub["ci_low"]).to_numpy(), "thickness": 1.2, "width": 0,
                     "color": st["color"]},
            customdata=_custom(sub), hovertemplate=_HOVER))
    separators = [{"type": "line", "x0": 0, "x1": 1, "xref": "paper", "y0": i + 0.5, "y1": i + 0.5, "yref": "y",
                   "line": {"color": "#EEE", "width": 1}} for i in range(len(dims) - 1)]
    layout = {"template": "fairpp", "height": 120 + 90 * len(dims), "title": title,
              "shapes": separators,
              "xaxis": {"range": [-0.02, 1.02], "title": "position (0 = first pole, 1 = second pole)"},
              "yaxis": {"tickvals": list(range(len(dims))),
                        "ticktext": [dimension_label(d, style="poles") for d in dims],
                        "autorange": "reversed", "showgrid": False, "zeroline": False}}
    return go.Figure(legend_above({"data": traces, "layout": layout}, width=720, grow=True))
