"""Figures of the training-experiments page: the four conditions on the persona map, distances with intervals.

Every function takes the comparison card :func:`fairpp.train.compare.compare_conditions` returns (as stored by
``fairpp compare --save`` and read back with :func:`fairpp.store.experiments.get_experiment`). The frame
builders (``summary_table``, ``distance_frame``, ``map_frames``, ``provenance_table``) are pure and turn the
card into the tables the page shows and downloads; the figure builders draw them with the house template.

>>> card = {"target": "p1", "personas": ["p1", "p2"], "n_questions": 10,
...         "conditions": [{"condition": "base", "respondent": "m"}],
...         "summary": [{"condition": "base", "respondent": "m", "js_target": 0.2, "js_target_low": 0.1,
...                      "js_target_high": 0.3, "agreement_target": 0.5, "js_others": 0.3, "gap": 0.1,
...                      "gap_low": 0.0, "gap_high": 0.2, "nearest": "p1"}],
...         "rows": [{"condition": "base", "persona": "p1", "is_target": True, "js": 0.2, "js_low": 0.1,
...                   "js_high": 0.3, "kappa": 0.25},
...                  {"condition": "base", "persona": "p2", "is_target": False, "js": 0.4, "js_low": 0.3,
...                   "js_high": 0.5, "kappa": 0.0}]}
>>> summary_table(card)[["condition", "JS to target", "kappa", "gap", "questions"]].to_dict("records")
[{'condition': 'base', 'JS to target': 0.2, 'kappa': 0.25, 'gap': 0.1, 'questions': 10}]
>>> [t.type for t in distance_chart(distance_frame(card), target="p1").data]
['scatter', 'scatter']
"""
from __future__ import annotations

import json
import math
from statistics import NormalDist
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp.figures.maps import model_map
from fairpp.figures.positions import rgba, style_of
from fairpp.figures.theme import EXTRA_COLOURS
from fairpp.projection import FrozenPCA

__all__ = ["CONDITION_STYLES", "condition_style", "summary_table", "distance_frame", "map_frames",
           "provenance_table", "is_synthetic", "condition_map", "distance_chart"]

#: The paper's four conditions: colour and symbol (distinct from the persona palette and from each other).
CONDITION_STYLES: dict[str, dict[str, str]] = {
    "base": {"color": "#666666", "symbol": "square"},
    "role-play": {"color": "#999933", "symbol": "triangle-up"},
    "DPO": {"color": "#332288", "symbol": "diamond"},
    "weighted DPO": {"color": "#882255", "symbol": "star"},
}


def condition_style(label: str, index: int = 0) -> dict[str, str]:
    """Colour and symbol of a condition (the four standard labels are fixed; others take extra colours)."""
    return CONDITION_STYLES.get(label) or {"color": EXTRA_COLOURS[index % len(EXTRA_COLOURS)], "symbol": "hexagon"}


# -- frames ---------------------------------------------------------------------------------------------------
def _target_rows(card: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["condition"]: r for r in card.get("rows", []) if r.get("is_target")}


def summary_table(card: Mapping[str, Any]) -> pd.DataFrame:
    """One row per condition: JS distance to the target with its interval, agreement and kappa to the target,
    mean JS distance to the other personas, gap (with its interval), nearest persona and number of questions."""
    target = _target_rows(card)
    out = []
    for s in card.get("summary", []):
        t = target.get(s["condition"], {})
        out.append({"condition": s["condition"], "respondent": s.get("respondent"),
                    "JS to target": s.get("js_target"), "JS low": s.get("js_target_low"),
                    "JS high": s.get("js_target_high"), "agreement": s.get("agreement_target"),
                    "kappa": t.get("kappa"), "JS to others (mean)": s.get("js_others"), "gap": s.get("gap"),
                    "gap low": s.get("gap_low"), "gap high": s.get("gap_high"), "nearest persona": s.get("nearest"),
                    "questions": int(card.get("n_questions", 0))})
    return pd.DataFrame(out, columns=["condition", "respondent", "JS to target", "JS low", "JS high", "agreement",
                                      "kappa", "JS to others (mean)", "gap", "gap low", "gap high",
                                      "nearest persona", "questions"])


def distance_frame(card: Mapping[str, Any]) -> pd.DataFrame:
    """Long rows ``condition, persona, is_target, js, js_low, js_high, agreement, kappa``, condition x persona."""
    cols = ["condition", "persona", "is_target", "js", "js_low", "js_high", "agreement", "kappa"]
    rows = pd.DataFrame(card.get("rows", []))
    return rows.reindex(columns=cols) if not rows.empty else pd.DataFrame(columns=cols)


def map_frames(card: Mapping[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """Place personas and conditions on a PCA fitted on the personas' 5-D positions (frozen, as the models map).

    Uses the positions stored in the card (all on the experiment's common questions). Returns the placed points
    (``respondent, kind, label, PC1, PC2``, the positions ``1..5``, and ``sd1, sd2, cov`` of the condition's
    point on the map), the ellipses of the conditions at the card's ``level`` (``label, PC1, PC2``, closed paths)
    and the explained variance ratios. The ellipse treats the per-dimension bootstrap intervals as independent
    normal errors (sd = interval width / 3.92 at 95%) carried through the frozen projection; an approximation.
    Dimensions where some respondent has no position (no A/B answer) are left out of the map.
    """
    level = float(card.get("level", 0.95))
    z = NormalDist().inv_cdf((1 + level) / 2)  # a normal interval of this level is +- z sd wide
    chi2 = -2.0 * math.log(1 - level)  # the level's quantile of chi-squared with 2 degrees of freedom
    pos = pd.DataFrame(card.get("positions", []))
    personas = [p for p in card.get("personas", [])]
    if pos.empty or not personas:
        raise ValueError("the comparison card holds no positions; re-run `fairpp compare --save` to store them")
    labels = [c["condition"] for c in card.get("conditions", [])]
    wide = pos.pivot_table(index="label", columns="dimension", values="position", aggfunc="first", sort=False)
    width = (pos.assign(w=pos["ci_high"] - pos["ci_low"])
             .pivot_table(index="label", columns="dimension", values="w", aggfunc="first", sort=False))
    dims = [d for d in wide.columns if wide.loc[wide.index.isin(personas), d].notna().all()]
    ref = wide.loc[[p for p in personas if p in wide.index], dims]
    if len(ref) < 2 or len(dims) < 2:
        raise ValueError("the map needs at least two personas with positions on at least two dimensions")
    k = max(1, min(2, len(ref) - 1, len(dims)))
    pca = FrozenPCA.fit(ref, n_components=k)
    pts = wide.loc[[x for x in [*personas, *labels] if x in wide.index], dims].dropna()
    placed = pca.transform(pts)
    if "PC2" not in placed:
        placed["PC2"] = 0.0
    comps = np.zeros((2, len(dims)))
    comps[: pca.components.shape[0]] = pca.components
    sd = (width.reindex(index=pts.index, columns=dims).fillna(0.0).to_numpy(dtype=float) / (2 * z))
    cov = np.einsum("id,rd,jd->rij", comps, sd ** 2, comps)  # per respondent: W diag(sd^2) W^T
    placed = pd.concat([placed, pts], axis=1).rename_axis("respondent").reset_index()
    placed.insert(1, "kind", ["condition" if r in labels else "persona" for r in placed["respondent"]])
    placed.insert(2, "label", placed["respondent"])
    placed["sd1"], placed["sd2"], placed["cov"] = np.sqrt(cov[:, 0, 0]), np.sqrt(cov[:, 1, 1]), cov[:, 0, 1]
    t = np.linspace(0, 2 * math.pi, 61)
    circle = np.vstack([np.cos(t), np.sin(t)])
    paths = []
    for i, row in placed.iterrows():
        if row["kind"] != "condition":
            continue
        vals, vecs = np.linalg.eigh(cov[i])
        xy = (vecs @ np.diag(np.sqrt(np.clip(vals, 0, None) * chi2)) @ circle).T
        paths.append(pd.DataFrame({"label": row["label"], "PC1": xy[:, 0] + row["PC1"], "PC2": xy[:, 1] + row["PC2"]}))
    ellipses = pd.concat(paths, ignore_index=True) if paths else pd.DataFrame(columns=["label", "PC1", "PC2"])
    return placed, ellipses, pca.explained_variance_ratio.tolist()


def _parse(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        out = json.loads(value) if isinstance(value, str) and value else {}
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def provenance_table(card: Mapping[str, Any], respondents: pd.DataFrame,
                     sources: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per condition: what the stored respondent is (from its evaluation card and training run card).

    ``respondents`` is :meth:`fairpp.store.Store.respondents` (``respondent, provenance, source_id``...);
    ``sources`` (optional) marks answers loaded from a synthetic source. ``synthetic`` is true when the
    evaluation, the training run or the answers' source says so.
    """
    by_name = respondents.set_index("respondent") if not respondents.empty else pd.DataFrame()
    synth_src = set()
    if sources is not None and not sources.empty:
        synth_src = set(sources.loc[sources["synthetic"].astype(bool), "source_id"].tolist())
    out = []
    for c in card.get("conditions", []):
        name = c["respondent"]
        known = name in by_name.index
        ev = _parse(by_name.at[name, "provenance"]) if known and "provenance" in by_name.columns else {}
        tr = ev.get("train_card") or {}
        pairs = (tr.get("pairs") or {}).get("card") or {}
        src = by_name.at[name, "source_id"] if known and "source_id" in by_name.columns else None
        synthetic = bool(ev.get("synthetic")) or bool(tr.get("synthetic")) or bool(pairs.get("synthetic")) \
            or (src in synth_src)
        out.append({"condition": c["condition"], "respondent": name, "kind": c.get("kind"),
                    "in store": known, "model": ev.get("model"), "base model": tr.get("base") or ev.get("base"),
                    "method": tr.get("method") or ("role-play" if ev.get("persona") else None),
                    "role-play persona": ev.get("persona"), "evaluated on": ev.get("split"),
                    "eval questions": ev.get("questions"), "steps": tr.get("steps"),
                    "final loss": tr.get("final_loss"),
                    "pairs target": tr.get("target") or pairs.get("target"),
                    "alpha": pairs.get("alpha"), "beta": pairs.get("beta"), "trained at": tr.get("created_at"),
                    "device": tr.get("device"), "synthetic": synthetic, "description": c.get("description")})
    return pd.DataFrame(out)


def is_synthetic(provenance: pd.DataFrame) -> bool:
    """Whether any condition was trained or evaluated on synthetic (demo) data."""
    return bool(not provenance.empty and provenance["synthetic"].any())


# -- figures --------------------------------------------------------------------------------------------------
def condition_map(placed: pd.DataFrame, *, ellipses: pd.DataFrame | None = None, target: str | None = None,
                  axis_titles: Sequence[str] = ("PC1", "PC2"), title: str | None = None) -> go.Figure:
    """The personas (house colours, via :func:`fairpp.figures.maps.model_map`) and the conditions on one map.

    Traces: one per persona, a ring around the target, then per condition its 95% ellipse (when given) and its
    point, labelled with the condition's name.
    """
    personas = placed[placed["kind"] == "persona"]
    conds = placed[placed["kind"] == "condition"]
    fig = model_map(personas.drop(columns=["label", "sd1", "sd2", "cov"], errors="ignore"), axis_titles=axis_titles,
                    title=title)
    dims = [d for d in (1, 2, 3, 4, 5) if d in placed.columns]
    if target is not None and target in set(personas["respondent"]):
        t = personas[personas["respondent"] == target].iloc[0]
        colour = style_of(target, "persona", None)["color"]
        fig.add_trace(go.Scatter(x=[t["PC1"]], y=[t["PC2"]], mode="markers", name=f"target: {target}",
                                 legendgroup="Target", legendgrouptitle_text="Target", hoverinfo="skip",
                                 marker={"size": 26, "symbol": "circle-open", "color": colour,
                                         "line": {"width": 3, "color": colour}}))
    for i, (_, row) in enumerate(conds.iterrows()):
        label = str(row["label"])
        st = condition_style(label, i)
        if ellipses is not None and not ellipses.empty:
            e = ellipses[ellipses["label"] == label]
            if len(e):
                fig.add_trace(go.Scatter(x=e["PC1"], y=e["PC2"], mode="lines", fill="toself", hoverinfo="skip",
                                         fillcolor=rgba(st["color"], 0.10), line={"color": rgba(st["color"], 0.7),
                                                                                  "width": 1, "dash": "dot"},
                                         name=f"{label} 95% ellipse", legendgroup=label, showlegend=False))
        hover = (f"<b>{label}</b><br>PC1 %{{x:.3f}} · PC2 %{{y:.3f}}"
                 + "".join(f"<br>D{d} {row[d]:.3f}" for d in dims if pd.notna(row[d])) + "<extra></extra>")
        fig.add_trace(go.Scatter(x=[row["PC1"]], y=[row["PC2"]], mode="markers+text", text=[f"<b>{label}</b>"],
                                 textposition="bottom center",
                                 textfont={"size": 12, "color": st["color"], "shadow": "0px 0px 3px white"},
                                 name=label, legendgroup="Conditions", legendgrouptitle_text="Conditions",
                                 hovertemplate=hover, customdata=[[label]],
                                 marker={"color": st["color"], "symbol": st["symbol"], "size": 17,
                                         "line": {"width": 1.5, "color": "white"}}))
    xs = np.concatenate([placed["PC1"].to_numpy(float), [] if ellipses is None else ellipses["PC1"].to_numpy(float)])
    ys = np.concatenate([placed["PC2"].to_numpy(float), [] if ellipses is None else ellipses["PC2"].to_numpy(float)])
    px, py = 0.12 * (np.nanmax(xs) - np.nanmin(xs) or 1.0), 0.15 * (np.nanmax(ys) - np.nanmin(ys) or 1.0)
    fig.update_layout(xaxis_range=[np.nanmin(xs) - px, np.nanmax(xs) + px],
                      yaxis_range=[np.nanmin(ys) - py, np.nanmax(ys) + py], height=660,
                      # below the plot, so a narrow screen keeps the map's width
                      legend={"orientation": "h", "x": 0, "y": -0.22, "yanchor": "top", "xanchor": "left",
                              "groupclick": "toggleitem", "tracegroupgap": 4, "font": {"size": 11}},
                      margin={"t": 40 if title else 20, "r": 10, "b": 10})
    return fig


def distance_chart(frame: pd.DataFrame, *, target: str, base_label: str = "base 2", level: float = 0.95,
                   title: str | None = None) -> go.Figure:
    """Dots and whiskers: each condition's JS distance (with its interval) to the target and to every other persona.

    One row per condition; within a row one marker per persona (the target first, large, outlined), offset
    slightly so the whiskers do not overlap. One trace per persona.
    """
    conds = list(dict.fromkeys(frame["condition"]))
    personas = [target] + [p for p in dict.fromkeys(frame["persona"]) if p != target]
    span = 0.6
    offsets = np.linspace(-span / 2, span / 2, len(personas)) if len(personas) > 1 else np.zeros(1)
    fig = go.Figure()
    for j, p in enumerate(personas):
        sub = frame[frame["persona"] == p].set_index("condition").reindex(conds)
        is_t = p == target
        colour = style_of(p, "persona", None)["color"]
        y = np.arange(len(conds)) + offsets[j]
        fig.add_trace(go.Scatter(
            x=sub["js"], y=y, mode="markers", name=f"{p} (target)" if is_t else p,
            error_x={"type": "data", "symmetric": False, "array": (sub["js_high"] - sub["js"]).clip(lower=0),
                     "arrayminus": (sub["js"] - sub["js_low"]).clip(lower=0), "color": colour,
                     "thickness": 2.5 if is_t else 1.2, "width": 0},
            marker={"color": colour, "size": 13 if is_t else 8, "symbol": "diamond" if is_t else "circle",
                    "line": {"width": 1.5 if is_t else 0.5, "color": "#222" if is_t else "white"}},
            customdata=np.column_stack([conds, [p] * len(conds), sub["js_low"], sub["js_high"]]),
            hovertemplate=("<b>%{customdata[0]}</b> → %{customdata[1]}" + (" (target)" if is_t else "")
                           + f"<br>JS %{{x:.4f}}<br>{level:.0%} interval [%{{customdata[2]:.4f}}, "
                           "%{customdata[3]:.4f}]<extra></extra>")))
    fig.update_layout(
        template="fairpp", height=140 + 90 * len(conds), title=title,
        xaxis={"title": f"JS distance ({base_label}), {level:.0%} interval",
               "rangemode": "tozero"},
        yaxis={"tickvals": list(range(len(conds))), "ticktext": [f"<b>{c}</b>" for c in conds],
               "autorange": "reversed", "range": None, "showgrid": False, "zeroline": False},
        legend={"orientation": "h", "y": -0.18, "yanchor": "top", "x": 0, "font": {"size": 11},
                "entrywidth": 0, "itemsizing": "constant"},
        margin={"t": 40 if title else 20, "b": 40})
    for i in range(1, len(conds)):
        fig.add_hline(y=i - 0.5, line={"color": "#DDDDDD", "width": 1})
    return fig
