"""Figures of the reweighting page: tier counts and weights, the weighted answer distribution, JS before/after.

Every builder takes the frames :mod:`fairpp.reweight` returns (``Reweighting.tiers`` and
:func:`fairpp.reweight.weighting_effect`) and draws with the house template and palette.

>>> import pandas as pd
>>> tiers = pd.DataFrame({"tier": [1, 2], "count": [3, 1], "t_value": [0.1, 0.5], "weight": [0.2, 0.4],
...                       "share": [0.6, 0.4]})
>>> [t.type for t in tier_chart(tiers).data]
['bar', 'scatter']
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.theme import ANSWER_COLOURS, legend_above, respondent_style

__all__ = ["distribution_chart", "js_chart", "tier_chart"]

_NAMES = {"A": "A · first pole", "B": "B · second pole", "C": "C · N/A"}


def tier_chart(tiers: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Bars: records per tier (left axis); line and markers: the weight of one record of the tier (right axis),
    relative to a uniform weight (``weight × number of records``: 1 = unchanged, 2 = counts twice).

    ``tiers`` has columns ``tier, count, weight, share`` (:attr:`fairpp.reweight.Reweighting.tiers`).
    """
    t = tiers.sort_values("tier")
    n = float(t["count"].sum())
    rel = t["weight"] * n
    fig = go.Figure()
    fig.add_trace(go.Bar(
        x=t["tier"], y=t["count"], name="records in tier", marker={"color": "#0072B2"},
        customdata=np.column_stack([t["share"].fillna(0)]),
        hovertemplate="tier %{x}<br>%{y:,} records<br>%{customdata[0]:.1%} of the total weight<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=t["tier"], y=rel, name="weight of one record (× uniform)", yaxis="y2", mode="lines+markers",
        marker={"color": "#D55E00", "size": 9}, line={"color": "#D55E00"}, connectgaps=False,
        customdata=np.column_stack([t["weight"]]),
        hovertemplate="tier %{x}<br>one record weighs %{customdata[0]:.3g}<br>%{y:.2f} × a uniform weight"
                      "<extra></extra>"))
    top = float(np.nanmax(rel)) if rel.notna().any() else 1.0
    fig.update_layout(
        template="fairpp", height=380, title=title, bargap=0.25,
        xaxis={"title": "tier<br><sup>1 = every other persona agrees with the target · K = none does</sup>",
               "dtick": 1},
        yaxis={"title": "records"}, yaxis2={"title": "weight per record (× uniform)", "overlaying": "y",
                                            "side": "right", "range": [0, max(top, 1.0) * 1.1], "showgrid": False,
                                            "tickformat": ".2~f", "tickmode": "auto", "nticks": 6},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}, margin={"t": 60 if title else 40})
    return fig


def distribution_chart(effect: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """Stacked bars: shares of A, B, C in the training set (uniform, weighted) and for every persona.

    ``effect`` is :func:`fairpp.reweight.weighting_effect`'s frame (``respondent, kind, A, B, C, ...``).
    """
    order = effect["respondent"].tolist()
    labels = [f"<b>{r}</b>" if k != "persona" else r for r, k in zip(order, effect["kind"])]
    fig = go.Figure()
    for ans in ("A", "B", "C"):
        fig.add_trace(go.Bar(
            y=labels, x=effect[ans], orientation="h", name=_NAMES[ans], marker={"color": ANSWER_COLOURS[ans]},
            customdata=np.column_stack([order]),
            hovertemplate="<b>%{customdata[0]}</b><br>" + _NAMES[ans] + ": %{x:.1%}<extra></extra>"))
    fig.update_layout(template="fairpp", barmode="stack", height=140 + 30 * len(order), title=title,
                      xaxis={"range": [0, 1], "tickformat": ".0%", "title": "share of answers"},
                      yaxis={"autorange": "reversed"},
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0, "traceorder": "normal"},
                      margin={"t": 60 if title else 40})
    return fig


def js_chart(effect: pd.DataFrame, *, base_label: str = "base 2", title: str | None = None,
             width: float = 600) -> go.Figure:
    """Dumbbells: each persona's JS distance to the training distribution before (open) and after (filled); the
    legend above, with room for the rows it takes on a plot ``width`` pixels wide."""
    rows = effect[effect["kind"] != "training"]
    fig = go.Figure()
    for r, k, b, a in zip(rows["respondent"], rows["kind"], rows["js_before"], rows["js_after"]):
        style = respondent_style(r, kind="persona" if k == "target" else None)
        name = f"{r}{' (target)' if k == 'target' else ''}"
        fig.add_trace(go.Scatter(
            x=[b, a], y=[name, name], mode="lines+markers", showlegend=False,
            line={"color": style["color"], "width": 3 if k == "target" else 1.5},
            marker={"color": style["color"], "size": [9, 12], "symbol": ["circle-open", "circle"]},
            customdata=[[r, "before (uniform)"], [r, "after (weighted)"]],
            hovertemplate="<b>%{customdata[0]}</b><br>%{customdata[1]}: JS %{x:.4f}<extra></extra>"))
    for label, sym in (("before (uniform)", "circle-open"), ("after (weighted)", "circle")):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=label,
                                 marker={"color": "#555", "size": 10, "symbol": sym}))
    fig.update_layout(template="fairpp", height=140 + 34 * len(rows), title=title,
                      xaxis={"title": f"Jensen-Shannon distance to the training set ({base_label})",
                             "rangemode": "tozero"},
                      yaxis={"autorange": "reversed"})
    return legend_above(fig, width=width, grow=True)
