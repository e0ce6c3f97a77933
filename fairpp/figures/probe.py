"""Probed models on the frozen PCA map: each probe's point, its bootstrap cloud and a 95% ellipse.

>>> import pandas as pd
>>> placed = pd.DataFrame({"respondent": ["Civic Pragmatists", "Equity Advocates"], "kind": "persona",
...                        "PC1": [0.0, 1.0], "PC2": [0.0, 1.0]})
>>> probes = pd.DataFrame({"respondent": ["m · probe-1"], "PC1": [0.5], "PC2": [0.4]})
>>> [t.name for t in probe_map(placed, probes=probes).data][-1]
'm · probe-1'
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.maps import model_map
from fairpp.figures.positions import rgba
from fairpp.figures.theme import respondent_style

__all__ = ["ellipse_path", "probe_map"]

_CHI2_2DOF_95 = 5.991464547107979  # 95% quantile of chi-square with 2 degrees of freedom


def ellipse_path(xy: np.ndarray, *, n: int = 72) -> np.ndarray | None:
    """The closed 95% covariance ellipse of 2-D points (``None`` with fewer than 3 finite points).

    >>> e = ellipse_path(np.random.default_rng(0).normal(size=(500, 2)))
    >>> e.shape, bool(2.0 < np.abs(e[:, 0]).max() < 3.0)
    ((73, 2), True)
    """
    xy = np.asarray(xy, dtype=float)
    xy = xy[np.isfinite(xy).all(axis=1)] if xy.ndim == 2 else xy
    if xy.ndim != 2 or len(xy) < 3:
        return None
    cov = np.cov(xy, rowvar=False)
    vals, vecs = np.linalg.eigh(cov)
    vals = np.clip(vals, 0.0, None)
    t = np.linspace(0.0, 2.0 * np.pi, n + 1)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    return xy.mean(axis=0) + (circle * np.sqrt(vals * _CHI2_2DOF_95)) @ vecs.T


def probe_map(placed: pd.DataFrame, *, clouds: pd.DataFrame | None = None, probes: pd.DataFrame | None = None,
              probe_clouds: pd.DataFrame | None = None, regions: Mapping[str, str | None] | None = None,
              axis_titles: Sequence[str] = ("PC1", "PC2"), title: str | None = None) -> go.Figure:
    """The models map (:func:`fairpp.figures.model_map`) with probed models added on the same axes.

    Parameters
    ----------
    placed, clouds, regions, axis_titles : as :func:`~fairpp.figures.model_map` (personas and models).
    probes : one row per probe: ``respondent, PC1, PC2`` (optional ``1..5`` for the hover); the trace of
        each point is named after its respondent.
    probe_clouds : bootstrap replicates of the probes on the same axes (``respondent, PC1, PC2``); drawn
        faintly with their 95% covariance ellipse.
    """
    fig = model_map(placed, clouds=clouds, regions=regions, axis_titles=axis_titles, title=title)
    probes = probes if probes is not None else pd.DataFrame(columns=["respondent", "PC1", "PC2"])
    xs = [placed["PC1"].to_numpy(dtype=float)]
    ys = [placed["PC2"].to_numpy(dtype=float)]
    dims = [c for c in (1, 2, 3, 4, 5) if c in probes.columns]
    for row in probes.to_dict("records"):
        name = str(row["respondent"])
        style = respondent_style(name, kind="probe")
        colour = style["color"]
        sub = probe_clouds[probe_clouds["respondent"] == name] if probe_clouds is not None else None
        if sub is not None and len(sub):
            xy = sub[["PC1", "PC2"]].to_numpy(dtype=float)
            fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers", hoverinfo="skip", showlegend=False,
                                     marker={"color": rgba(colour, 0.22), "size": 4}, name=f"{name} bootstrap",
                                     legendgroup=name))
            path = ellipse_path(xy)
            if path is not None:
                fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines", hoverinfo="skip",
                                         showlegend=False, line={"color": colour, "width": 1.5, "dash": "dot"},
                                         name=f"{name} 95% ellipse", legendgroup=name))
                xs.append(path[:, 0])
                ys.append(path[:, 1])
        hover = (f"<b>{name}</b><br>probed model<br>PC1 %{{x:.3f}} · PC2 %{{y:.3f}}"
                 + "".join(f"<br>D{d} {row[d]:.3f}" for d in dims) + "<extra></extra>")
        fig.add_trace(go.Scatter(
            x=[row["PC1"]], y=[row["PC2"]], mode="markers+text", text=[name.split(" · ")[0]],
            textposition="bottom center", textfont={"size": 12, "color": colour}, name=name,
            legendgroup="Probed models", legendgrouptitle_text="Probed models", hovertemplate=hover,
            customdata=[[name]], marker={"color": colour, "symbol": style["symbol"], "size": 18,
                                         "line": {"width": 1.5, "color": "#222222"}}))
        xs.append(np.array([row["PC1"]], dtype=float))
        ys.append(np.array([row["PC2"]], dtype=float))
    x, y = np.concatenate(xs), np.concatenate(ys)
    if np.isfinite(x).any() and np.isfinite(y).any():
        pad_x = 0.15 * (np.nanmax(x) - np.nanmin(x) or 1.0)
        pad_y = 0.15 * (np.nanmax(y) - np.nanmin(y) or 1.0)
        fig.update_layout(xaxis_range=[np.nanmin(x) - pad_x, np.nanmax(x) + pad_x],
                          yaxis_range=[np.nanmin(y) - pad_y, np.nanmax(y) + pad_y])
    return fig
