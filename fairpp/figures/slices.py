"""What is loaded and how it splits: taxonomy sunburst/treemap, answer mix, slice grid.

>>> import pandas as pd
>>> c = pd.DataFrame({"topic": ["t"], "problem_category": ["c"], "specific_problem": ["p"], "n": [10]})
>>> taxonomy_chart(c).data[0].type
'sunburst'
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.theme import ANSWER_COLOURS, POSITION_SCALE, legend_above

__all__ = ["taxonomy_chart", "answer_mix", "slice_grid"]

_ANSWER_NAMES = {"A": "A · first pole", "B": "B · second pole", "C": "C · N/A", "unparsed": "unparsed / refused"}


def taxonomy_chart(counts: pd.DataFrame, *, kind: str = "sunburst", title: str | None = None) -> go.Figure:
    """Topic → problem category → specific problem, sized by the number of questions (two levels shown at once).

    ``counts`` has columns ``topic, problem_category, specific_problem, n``; ``kind`` is ``sunburst``
    or ``treemap``.
    """
    ids, labels, parents, values = [], [], [], []
    for topic, t in counts.groupby("topic", sort=False):
        ids.append(f"t/{topic}"), labels.append(str(topic)), parents.append(""), values.append(int(t["n"].sum()))
        for cat, c in t.groupby("problem_category", sort=False):
            cid = f"c/{topic}/{cat}"
            ids.append(cid), labels.append(str(cat)), parents.append(f"t/{topic}"), values.append(int(c["n"].sum()))
            for row in c.itertuples(index=False):
                ids.append(f"p/{topic}/{cat}/{row.specific_problem}")
                labels.append(str(row.specific_problem)), parents.append(cid), values.append(int(row.n))
    common = {"ids": ids, "labels": labels, "parents": parents, "values": values, "branchvalues": "total",
              "maxdepth": 2, "hovertemplate": "<b>%{label}</b><br>%{value:,} questions<br>%{percentRoot:.1%} of "
                                              "those shown<extra></extra>"}
    trace = go.Sunburst(**common, insidetextorientation="radial") if kind == "sunburst" else go.Treemap(**common)
    fig = go.Figure(trace)
    fig.update_layout(template="fairpp", height=560, title=title, margin={"t": 40 if title else 10, "l": 10,
                                                                         "r": 10, "b": 10},
                      colorway=["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9"])
    return fig


def answer_mix(mix: pd.DataFrame, *, title: str | None = None, width: float = 900) -> go.Figure:
    """Stacked horizontal bars: the share of A, B, C and unparsed replies per respondent.

    ``mix`` has columns ``respondent, answer, count, share`` (see :func:`fairpp.explore.answer_mix`). The legend
    sits above the bars, with room for the rows it takes on a plot ``width`` pixels wide.
    """
    fig = go.Figure()
    order = list(dict.fromkeys(mix["respondent"]))
    for ans in ("A", "B", "C", "unparsed"):
        sub = mix[mix["answer"] == ans].set_index("respondent").reindex(order)
        if sub["count"].fillna(0).sum() == 0 and ans == "unparsed":
            continue
        fig.add_trace(go.Bar(
            y=order, x=sub["share"], orientation="h", name=_ANSWER_NAMES[ans],
            marker={"color": ANSWER_COLOURS[ans]}, customdata=np.column_stack([sub["count"].fillna(0)]),
            hovertemplate="<b>%{y}</b><br>" + _ANSWER_NAMES[ans] + ": %{x:.1%} (%{customdata[0]:,.0f} replies)"
                          "<extra></extra>"))
    fig.update_layout(template="fairpp", barmode="stack", height=120 + 28 * len(order), title=title,
                      xaxis={"range": [0, 1], "tickformat": ".0%", "title": "share of replies"},
                      yaxis={"autorange": "reversed"},
                      legend={"traceorder": "normal"})
    return legend_above(fig, width=width, grow=True)


def _wrap(name: str, width: int = 12) -> str:
    """A panel title on up to two lines (at spaces or hyphens), so that side-by-side titles do not overlap.

    >>> _wrap("Falcon3-7B-Instruct"), _wrap("Progressive Activists"), _wrap("Loyal Nationals")
    ('Falcon3-<br>7B-Instruct', 'Progressive<br>Activists', 'Loyal<br>Nationals')
    """
    if len(name) <= width:
        return name
    cuts = [i + 1 for i, ch in enumerate(name) if ch in " -" and 0 < i < len(name) - 1]
    if not cuts:
        return name
    cut = min(cuts, key=lambda i: abs(i - len(name) / 2))
    return name[:cut].rstrip() + "<br>" + name[cut:].lstrip()


def _unit(span: list[float]) -> list[float]:
    """A subplot domain clipped to [0, 1] (float error would put -1e-17 outside it)."""
    return [min(max(round(v, 6), 0.0), 1.0) for v in span]


def slice_grid(frame: pd.DataFrame, *, x: str, y: str, x_order: Sequence[str] | None = None,
               y_order: Sequence[str] | None = None, mode: str = "heat", cols: int = 2,
               x_label: str | None = None, y_label: str | None = None, title: str | None = None) -> go.Figure:
    """A grid of positions, one panel per respondent: heat cells or bubbles sized by the question count.

    ``frame`` has columns ``respondent`` and ``x``, ``y`` (slice columns), ``position, ci_low, ci_high, n,
    na_rate``. Colour is the position on one diverging scale (blue = first pole, orange = second pole).
    Every cell (heat) or bubble carries ``customdata = [respondent, x value, y value, ...]`` for selection events
    (heat cells through an invisible point on each cell).
    """
    names = list(dict.fromkeys(frame["respondent"]))
    present_x, present_y = set(frame[x]), set(frame[y])
    xs = [v for v in (x_order or sorted(present_x)) if v in present_x]
    ys = [v for v in (y_order or sorted(present_y)) if v in present_y]
    ncols = max(1, min(cols, len(names)))
    rows = max(1, math.ceil(len(names) / ncols))
    hover = ("<b>%{customdata[0]}</b><br>" + (y_label or y) + ": %{customdata[2]}<br>" + (x_label or x)
             + ": %{customdata[1]}<br>position %{customdata[3]:.2f} [%{customdata[4]:.2f}, %{customdata[5]:.2f}]"
             "<br>N/A rate %{customdata[6]:.0%} · n = %{customdata[7]:.0f}<extra></extra>")
    nmax = float(frame["n"].max()) if len(frame) else 1.0
    gap_x, gap_y = 0.02, 0.05 if rows > 1 else 0.0
    w, h = (1 - gap_x * (ncols - 1)) / ncols, (1 - gap_y * (rows - 1)) / rows
    layout: dict = {
        "template": "fairpp", "height": max(420, rows * (18 * len(ys) + 40) + 220), "title": title,
        "showlegend": False, "annotations": [],
        "coloraxis": {"colorscale": POSITION_SCALE, "cmin": 0, "cmax": 1,
                      # below the grid, not beside it: a side colour bar takes width the panels need on a phone
                      "colorbar": {"thickness": 12, "orientation": "h", "yref": "container", "y": 0.005,
                                   "yanchor": "bottom", "x": 0.5, "xanchor": "center", "len": 1.0,
                                   "tickangle": 0, "tickfont": {"size": 10}, "tickvals": [0, 0.5, 1],
                                   "ticklabeloverflow": "allow",
                                   "ticktext": ["0 first pole", "position 0.5", "1 second pole"]}},
        "margin": {"t": 75 if title else 55, "l": 10, "b": 10}}
    traces: list = []
    by = {str(k): g for k, g in frame.groupby("respondent", sort=False)}
    for i, name in enumerate(names):
        sub = by[name]
        r, c = divmod(i, ncols)
        ax = "" if i == 0 else str(i + 1)
        x0, y1 = c * (w + gap_x), 1 - r * (h + gap_y)
        layout[f"xaxis{ax}"] = {"domain": _unit([x0, x0 + w]), "anchor": f"y{ax}", "matches": "x" if i else None,
                                "categoryorder": "array", "categoryarray": xs, "tickangle": -50,
                                "tickfont": {"size": 10}, "showgrid": False, "showticklabels": r == rows - 1,
                                "ticks": "outside" if r == rows - 1 else ""}
        layout[f"yaxis{ax}"] = {"domain": _unit([y1 - h, y1]), "anchor": f"x{ax}", "matches": "y" if i else None,
                                "categoryorder": "array", "categoryarray": ys, "autorange": "reversed",
                                "tickfont": {"size": 10}, "showgrid": mode != "heat", "showticklabels": c == 0,
                                "ticks": "outside" if c == 0 else ""}
        layout["annotations"].append({"text": _wrap(name), "x": x0 + w / 2, "y": y1, "xref": "paper",
                                      "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 11}})
        axes = {"xaxis": f"x{ax}", "yaxis": f"y{ax}"}
        if mode == "heat":
            g = sub.set_index([y, x]).reindex(pd.MultiIndex.from_product([ys, xs]))
            z = g["position"].to_numpy().reshape(len(ys), len(xs))
            traces.append(go.Heatmap(z=z, x=xs, y=ys, coloraxis="coloraxis", xgap=1, ygap=1, hoverinfo="skip",
                                     name=name, **axes))
            # An invisible point per cell carries the hover and makes cells clickable / box-selectable.
            cells = g.reset_index().rename(columns={"level_0": y, "level_1": x}).dropna(subset=["position"])
            cd = np.column_stack([np.full(len(cells), name, dtype=object), cells[x].to_numpy(dtype=object),
                                  cells[y].to_numpy(dtype=object)]
                                 + [cells[k].to_numpy() for k in ("position", "ci_low", "ci_high", "na_rate", "n")])
            traces.append(go.Scatter(x=cd[:, 1], y=cd[:, 2], mode="markers", customdata=cd, hovertemplate=hover,
                                     name=name, showlegend=False, **axes,
                                     marker={"size": 14, "symbol": "square", "opacity": 0}))
        else:
            cd = np.column_stack([sub["respondent"].to_numpy(dtype=object), sub[x].to_numpy(dtype=object),
                                  sub[y].to_numpy(dtype=object)]
                                 + [sub[k].to_numpy() for k in ("position", "ci_low", "ci_high", "na_rate", "n")])
            traces.append(go.Scatter(
                x=cd[:, 1], y=cd[:, 2], mode="markers", name=name, customdata=cd, hovertemplate=hover, **axes,
                marker={"color": sub["position"].to_numpy(), "coloraxis": "coloraxis",
                        "size": 5 + 15 * np.sqrt(sub["n"].to_numpy() / nmax), "line": {"width": 0.5, "color": "#666"}}))
    return go.Figure(data=traces, layout=layout)
