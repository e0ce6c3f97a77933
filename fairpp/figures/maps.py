"""Maps of the preference space: the cluster map of respondent x slice points and the models map.

>>> import pandas as pd
>>> pts = pd.DataFrame({"respondent": ["Civic Pragmatists"] * 4, "kind": "persona", "slice": list("abcd"),
...                     "PC1": [0, 1, 0, 1], "PC2": [0, 0, 1, 1]})
>>> [t.type for t in cluster_map(pts, x="PC1", y="PC2").data]
['scatter', 'scatter']
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.positions import rgba, style_of
from fairpp.figures.theme import legend_above

__all__ = ["cluster_map", "model_map", "hull_path"]

#: Legends go above the map in rows (:func:`~fairpp.figures.theme.legend_above`): a legend at the side takes a
#: fixed width and squeezes the plot to nothing on a narrow screen. Sized for a map about this wide (pixels).
_MAP_WIDTH = 880


def hull_path(xy: np.ndarray) -> np.ndarray | None:
    """The closed convex hull of 2-D points (``None`` with fewer than 3 non-collinear points)."""
    from scipy.spatial import ConvexHull, QhullError

    if len(xy) < 3:
        return None
    try:
        hull = ConvexHull(xy)
    except (QhullError, ValueError):
        return None
    idx = list(hull.vertices) + [hull.vertices[0]]
    return xy[idx]


def _hull_mesh(xyz: np.ndarray, colour: str, name: str) -> dict | None:
    from scipy.spatial import ConvexHull, QhullError

    if len(xyz) < 4:
        return None
    try:
        hull = ConvexHull(xyz)
    except (QhullError, ValueError):
        return None
    s = hull.simplices
    return dict(type="mesh3d", x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2], i=s[:, 0], j=s[:, 1], k=s[:, 2], color=colour,
                opacity=0.12, hoverinfo="skip", name=f"{name} hull", legendgroup=name, showlegend=False)


_SYMBOLS_3D = {"circle", "square", "diamond", "cross", "x"}


def _symbol_3d(symbol: str) -> str:
    """Scatter3d knows only a few symbols: keep the open/filled distinction, fall back to a diamond."""
    base = symbol.replace("-open", "").replace("-dot", "")
    return (base if base in _SYMBOLS_3D else "diamond") + ("-open" if "open" in symbol else "")


def cluster_map(points: pd.DataFrame, *, x: str, y: str, z: str | None = None, overlay: str = "hulls",
                regions: Mapping[str, str | None] | None = None, unit_label: str = "slice",
                axis_titles: Sequence[str] | None = None, title: str | None = None) -> go.Figure:
    """Scatter of respondent x slice points coloured by respondent, with hulls or density contours.

    Parameters
    ----------
    points : columns ``respondent, kind, slice`` and the coordinates; optional columns ``1..5``
        (positions) show in the hover. ``customdata`` of each point is ``[respondent, slice]``, which
        selection events hand back.
    x, y, z : coordinate columns (``z`` makes a 3-D map).
    overlay : ``hulls`` (convex hull per respondent), ``density`` (2-D only: kernel density contours)
        or ``none``.
    """
    traces: list = []
    dims = [c for c in (1, 2, 3, 4, 5) if c in points.columns]
    hover = (f"<b>%{{customdata[0]}}</b><br>{unit_label}: %{{customdata[1]}}"
             + "".join(f"<br>D{d} %{{customdata[{i + 2}]:.2f}}" for i, d in enumerate(dims)) + "<extra></extra>")
    for name, sub in points.groupby("respondent", sort=False):
        st = style_of(str(name), str(sub["kind"].iloc[0]), regions)
        custom = np.column_stack([sub["respondent"].astype(str), sub["slice"].astype(str)]
                                 + [sub[d].to_numpy() for d in dims]).tolist()
        marker = {"color": st["color"], "symbol": st["symbol"], "size": 7 if z is None else 4, "opacity": 0.85,
                  "line": ({"width": 0.5, "color": "white"} if "open" not in st["symbol"] else st["line"])
                  if z is None else {"width": 0}}
        if z is None:
            xy = sub[[x, y]].to_numpy(dtype=float)
            path = hull_path(xy) if overlay == "hulls" else None
            if path is not None:
                traces.append(dict(type="scatter", x=path[:, 0], y=path[:, 1], mode="lines", fill="toself",
                                   fillcolor=rgba(st["color"], 0.07),
                                   line={"color": rgba(st["color"], 0.6), "width": 1},
                                   hoverinfo="skip", legendgroup=str(name), showlegend=False))
            if overlay == "density" and len(sub) >= 5:
                traces.append(dict(
                    type="histogram2dcontour", x=xy[:, 0], y=xy[:, 1], ncontours=4, showscale=False,
                    contours={"coloring": "lines"},
                    colorscale=[[0, rgba(st["color"], 0.2)], [1, st["color"]]], line={"width": 1.2},
                    hoverinfo="skip", legendgroup=str(name), showlegend=False, name=f"{name} density"))
            traces.append(dict(type="scatter", x=sub[x].to_numpy(), y=sub[y].to_numpy(), mode="markers",
                               name=str(name), marker=marker, customdata=custom, hovertemplate=hover,
                               legendgroup=str(name)))
        else:
            xyz = sub[[x, y, z]].to_numpy(dtype=float)
            mesh = _hull_mesh(xyz, st["color"], str(name)) if overlay == "hulls" else None
            if mesh is not None:
                traces.append(mesh)
            traces.append(dict(type="scatter3d", x=sub[x].to_numpy(), y=sub[y].to_numpy(), z=sub[z].to_numpy(),
                               mode="markers", name=str(name), marker={**marker, "symbol": _symbol_3d(st["symbol"])},
                               customdata=custom, hovertemplate=hover, legendgroup=str(name)))
    titles = list(axis_titles or [x, y, z or ""])
    layout = {"template": "fairpp", "height": 600, "title": title, "dragmode": "lasso" if z is None else "orbit",
              "legend": {"itemsizing": "constant"}, "margin": {"r": 10}}
    if z is None:
        layout.update(xaxis={"title": titles[0], "scaleanchor": "y", "scaleratio": 1}, yaxis={"title": titles[1]})
    else:
        layout.update(height=640, margin={"l": 0, "r": 0, "b": 0},
                      scene={"xaxis": {"title": titles[0]}, "yaxis": {"title": titles[1]},
                             "zaxis": {"title": titles[2]}, "aspectmode": "data"})
    return go.Figure(legend_above({"data": traces, "layout": layout}, width=_MAP_WIDTH))


def model_map(placed: pd.DataFrame, *, clouds: pd.DataFrame | None = None,
              regions: Mapping[str, str | None] | None = None, axis_titles: Sequence[str] = ("PC1", "PC2"),
              label_models: bool = False, title: str | None = None) -> go.Figure:
    """Personas and models on one frozen PCA map.

    Parameters
    ----------
    placed : one row per respondent: columns ``respondent, kind, PC1, PC2`` (and optional ``region``,
        ``1..5`` for the hover).
    clouds : bootstrap replicates placed on the same axes: ``respondent, PC1, PC2`` (drawn faintly).
    regions : ``{model: region}``; decides colour and symbol (also read from ``placed["region"]``).
    label_models : write the models' names beside their markers (personas are always labelled).
    """
    regions = dict(regions or {})
    if "region" in placed.columns:
        regions.update({r: g for r, g in zip(placed["respondent"], placed["region"]) if isinstance(g, str)})
    traces: list = []
    dims = [c for c in (1, 2, 3, 4, 5) if c in placed.columns]
    if clouds is not None and not clouds.empty:
        for name, sub in clouds.groupby("respondent", sort=False):
            kind = "persona" if name not in regions else "model"
            st = style_of(str(name), kind, regions)
            traces.append(dict(type="scatter", x=sub["PC1"].to_numpy(), y=sub["PC2"].to_numpy(), mode="markers",
                               hoverinfo="skip",
                               marker={"color": rgba(st["color"], 0.25), "size": 4, "symbol": "circle"},
                               showlegend=False, name=f"{name} bootstrap"))
    cols = list(placed.columns)
    for row in placed.itertuples(index=False):
        name, kind = str(row[cols.index("respondent")]), str(row[cols.index("kind")])
        st = style_of(name, kind, regions)
        region = regions.get(name) if isinstance(regions.get(name), str) else None
        hover = (f"<b>{name}</b>" + (f"<br>{region}" if region else "") + "<br>PC1 %{x:.3f} · PC2 %{y:.3f}"
                 + "".join(f"<br>D{d} {row[cols.index(d)]:.3f}" for d in dims) + "<extra></extra>")
        labelled = kind == "persona" or label_models
        traces.append(dict(
            type="scatter", x=[row[cols.index("PC1")]], y=[row[cols.index("PC2")]],
            mode="markers+text" if labelled else "markers",
            text=[name] if labelled else None, textposition="top center",
            textfont={"size": 11, "color": st["color"]}, name=name,
            legendgroup=name,  # one group each: entries flow across the width instead of stacking per group
            hovertemplate=hover, customdata=[[name]],
            marker={"color": st["color"], "symbol": st["symbol"], "size": st["size"] + 4,
                    "line": {**st["line"], "width": st["line"]["width"] + 0.5}}))
    xs, ys = placed["PC1"].to_numpy(dtype=float), placed["PC2"].to_numpy(dtype=float)
    pad_x = 0.25 * (np.nanmax(xs) - np.nanmin(xs) or 1.0)
    pad_y = 0.15 * (np.nanmax(ys) - np.nanmin(ys) or 1.0)
    # Axes are not drawn to the same scale (PC1 usually dominates); the titles give each axis's variance share.
    layout = {"template": "fairpp", "height": 660, "title": title,
              "xaxis": {"title": axis_titles[0], "range": [np.nanmin(xs) - pad_x, np.nanmax(xs) + pad_x]},
              "yaxis": {"title": axis_titles[1], "range": [np.nanmin(ys) - pad_y, np.nanmax(ys) + pad_y]},
              "legend": {"itemsizing": "constant"}, "margin": {"r": 10}}
    return go.Figure(legend_above({"data": traces, "layout": layout}, width=_MAP_WIDTH))
