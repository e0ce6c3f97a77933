"""Square respondent x respondent heatmaps: Jensen-Shannon distance, agreement, Cohen's kappa.

>>> import numpy as np, pandas as pd
>>> m = pd.DataFrame(np.eye(2), index=["a", "b"], columns=["a", "b"])
>>> fig = matrix_heatmap(m, n_shared=np.full((2, 2), 10), metric="agreement")
>>> fig.data[0].type, fig.data[0].zmax
('heatmap', 1.0)
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.theme import DIVERGING, SEQUENTIAL

__all__ = ["matrix_heatmap", "METRICS"]

#: metric -> (title, colour scale, zmin, zmax); ``js`` ranges are set from the log base.
METRICS = {
    "js": ("Jensen-Shannon distance", SEQUENTIAL, 0.0, 1.0),
    "agreement": ("Agreement (share answered alike)", SEQUENTIAL, 0.0, 1.0),
    "kappa": ("Cohen's kappa", DIVERGING, -1.0, 1.0),
}


def _short(name: str, width: int = 26) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def matrix_heatmap(frame: pd.DataFrame, *, n_shared: np.ndarray, metric: str, base_label: str | None = None,
                   title: str | None = None) -> go.Figure:
    """Heatmap of a square result with the value in each cell and the shared-question count in the hover.

    Parameters
    ----------
    frame : square frame, index = columns = respondents.
    n_shared : number of questions each pair shares (same shape).
    metric : ``js``, ``agreement`` or ``kappa``.
    base_label : for ``js``: ``"2"`` (range [0, 1]) or ``"e"`` (natural log, max ≈ 0.83); shown in the title.
    """
    label, scale, zmin, zmax = METRICS[metric]
    if metric == "js":
        label = f"{label} (log base {base_label or '2'})"
        zmax = 1.0 if (base_label or "2") == "2" else float(np.sqrt(np.log(2)))
    names = [str(n) for n in frame.index]
    z = frame.to_numpy(dtype=float)
    custom = np.dstack([np.broadcast_to(np.array(names)[:, None], z.shape),
                        np.broadcast_to(np.array(names)[None, :], z.shape),
                        np.asarray(n_shared).astype(int).astype(str)])
    fig = go.Figure(go.Heatmap(
        z=z, x=[_short(n) for n in names], y=[_short(n) for n in names], zmin=zmin, zmax=zmax, colorscale=scale,
        zmid=0.0 if metric == "kappa" else None, text=np.where(np.isnan(z), "", np.round(z, 2).astype(str)),
        texttemplate="%{text}", textfont={"size": 10}, customdata=custom, xgap=1, ygap=1,
        colorbar={"title": {"text": label.split(" (")[0], "side": "right"}, "thickness": 14},
        hovertemplate=("<b>%{customdata[0]}</b> vs <b>%{customdata[1]}</b><br>" + label
                       + ": %{z:.3f}<br>shared questions: %{customdata[2]}<extra></extra>")))
    fig.update_layout(template="fairpp", height=max(360, 40 * len(names) + 180), title=title or label,
                      xaxis={"tickangle": -40, "showgrid": False, "side": "bottom"},
                      yaxis={"autorange": "reversed", "showgrid": False}, margin={"t": 50, "l": 10, "b": 10})
    return fig
