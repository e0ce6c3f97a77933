"""Pure pandas/numpy helpers behind the dashboard's views (no SQL, no streamlit).

Definitions follow ``design/science.md``: a position is ``n_B / (n_A + n_B)`` with expected counts for soft
answers; comparisons between two respondents use only the questions both answered.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from fairpp import space
from fairpp.schema import AnswerMatrix, FairppError, taxonomy

__all__ = [
    "taxonomy_order", "answer_mix", "wide_points", "project", "shared_questions", "matrix_positions",
    "bootstrap_replicates", "ModelComparison", "compare_models", "answer_grid", "disagreement", "slice_positions",
    "sort_like_taxonomy", "provenance", "matrix_long", "model_map_frames", "nearest_summary", "position_table",
]

_DIMS = (1, 2, 3, 4, 5)


def taxonomy_order(column: str) -> list[str]:
    """Values of a taxonomy column in the taxonomy's own order (topics 1..5, group types as published).

    >>> taxonomy_order("topic")[0]
    'fair essentials'
    >>> taxonomy_order("group_type")[:2]
    ['Gender', 'Race']
    """
    tax = taxonomy()
    if column == "topic":
        return [t["name"] for t in tax["topics"]]
    if column == "problem_category":
        return [c["name"] for t in tax["topics"] for c in t["problem_categories"]]
    if column == "specific_problem":
        return [p for t in tax["topics"] for c in t["problem_categories"] for p in c["problems"]]
    if column == "group_type":
        return [g["name"] for g in tax["group_types"]]
    if column == "group_name":
        return [x for g in tax["group_types"] for x in g["groups"]]
    raise FairppError(f"column={column!r} has no taxonomy order; use topic, problem_category, specific_problem, "
                      "group_type or group_name")


def sort_like_taxonomy(values: Sequence[str], column: str) -> list[str]:
    """``values`` in taxonomy order, unknown values last (alphabetically).

    >>> sort_like_taxonomy(["fair rewards", "fair essentials", "zzz"], "topic")
    ['fair essentials', 'fair rewards', 'zzz']
    """
    order = {v: i for i, v in enumerate(taxonomy_order(column))}
    return sorted(values, key=lambda v: (order.get(v, len(order)), str(v)))


def answer_mix(counts: pd.DataFrame) -> pd.DataFrame:
    """Share of A / B / C / unparsed replies per respondent, from :meth:`Store.counts` rows.

    >>> c = pd.DataFrame({"respondent": ["r", "r"], "kind": "persona", "dimension": [1, 2], "n_a": [3.0, 1.0],
    ...                   "n_b": [1.0, 1.0], "n_c": [0.0, 2.0], "n_unparsed": [0.0, 0.0]})
    >>> answer_mix(c)[["answer", "count", "share"]].values.tolist()
    [['A', 4.0, 0.5], ['B', 2.0, 0.25], ['C', 2.0, 0.25], ['unparsed', 0.0, 0.0]]
    """
    cols = {"n_a": "A", "n_b": "B", "n_c": "C", "n_unparsed": "unparsed"}
    per = counts.groupby(["respondent", "kind"], sort=False)[list(cols)].sum().reset_index()
    long = per.melt(id_vars=["respondent", "kind"], value_vars=list(cols), var_name="col", value_name="count")
    long["answer"] = long["col"].map(cols)
    total = long.groupby("respondent", sort=False)["count"].transform("sum")
    long["share"] = np.where(total > 0, long["count"] / total.where(total > 0, 1), np.nan)
    order = {r: i for i, r in enumerate(per["respondent"])}
    long = long.assign(_r=long["respondent"].map(order), _a=long["answer"].map({"A": 0, "B": 1, "C": 2, "unparsed": 3}))
    return long.sort_values(["_r", "_a"])[["respondent", "kind", "answer", "count", "share"]].reset_index(drop=True)


def wide_points(pos: pd.DataFrame, *, unit: str | None = None, dims: Sequence[int] = _DIMS) -> pd.DataFrame:
    """One row per respondent (x ``unit`` value) with the positions of ``dims`` as columns.

    Rows missing any of ``dims`` are dropped (their number is in ``attrs["dropped"]``). Columns:
    ``respondent, kind, slice`` (the unit's value, or the respondent when ``unit`` is None), then ``dims``.
    """
    keys = ["respondent", "kind"] + ([unit] if unit else [])
    sub = pos[pos["dimension"].isin(list(dims))]
    wide = sub.pivot_table(index=keys, columns="dimension", values="position", aggfunc="first", sort=False)
    wide = wide.reindex(columns=list(dims))
    keep = wide.notna().all(axis=1)
    out = wide.loc[keep].reset_index()
    out.columns = [c if not isinstance(c, (np.integer,)) else int(c) for c in out.columns]
    out["slice"] = out[unit] if unit else out["respondent"]
    out = out[["respondent", "kind", "slice", *dims]]
    out.attrs["dropped"] = int((~keep).sum())
    return out


def project(points: pd.DataFrame, *, dims: Sequence[int], method: str = "pca", n_components: int = 2,
            reference_kind: str = "persona", seed: int = 0, embed: Callable[..., np.ndarray] | None = None
            ) -> pd.DataFrame:
    """Place points on 2 or 3 axes: frozen PCA fitted on the ``reference_kind`` rows, or seeded UMAP.

    Returns ``points`` with coordinate columns added (``PC1..`` or ``UMAP1..``); ``attrs`` hold the axis names,
    and for PCA the explained variance ratio of the reference points. ``embed`` replaces
    :func:`fairpp.space.umap_embed` (same signature), e.g. to run UMAP in another process.
    """
    x = points[list(dims)]
    if method == "pca":
        ref = x[points["kind"] == reference_kind]
        if len(ref) < 2:
            ref = x  # no reference respondents shown: fit on every point (said in attrs)
        k = max(1, min(n_components, len(ref) - 1, len(dims)))
        pca = space.FrozenPCA.fit(ref, n_components=k)
        coords = pca.transform(x)
        names = list(coords.columns)
        out = pd.concat([points.reset_index(drop=True), coords.reset_index(drop=True)], axis=1)
        out.attrs.update(axes=names, explained=pca.explained_variance_ratio.tolist(),
                         fitted_on=reference_kind if len(ref) < len(x) or reference_kind in set(points["kind"])
                         else "all")
        return out
    if method == "umap":
        emb = (embed or space.umap_embed)(x.to_numpy(dtype=float), n_components=n_components, seed=seed)
        names = [f"UMAP{i + 1}" for i in range(emb.shape[1])]
        out = points.reset_index(drop=True).copy()
        for i, n in enumerate(names):
            out[n] = emb[:, i]
        out.attrs.update(axes=names)
        return out
    raise FairppError(f"method={method!r}: use 'pca' or 'umap'")


def shared_questions(m: AnswerMatrix, respondents: Sequence[str]) -> np.ndarray:
    """Boolean mask (Q,) of the questions every one of ``respondents`` answered with A, B or C."""
    rows = [m.respondents.index(r) for r in respondents if r in m.respondents]
    if not rows:
        return np.zeros(len(m.question_ids), dtype=bool)
    return m.answered()[rows].all(axis=0)


def matrix_positions(m: AnswerMatrix, mask: np.ndarray | None = None) -> pd.DataFrame:
    """Positions with Wilson intervals for every respondent of ``m`` over the questions in ``mask``.

    Same definition as :func:`fairpp.space.positions` (expected counts), computed from the answer matrix so
    that every respondent is measured on exactly the same questions.
    """
    probs = np.asarray(m.probs, dtype=float)
    dims = np.asarray(m.dimension).astype(int)
    mask = np.ones(probs.shape[1], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    rows = []
    for i, (name, kind) in enumerate(zip(m.respondents, m.kinds)):
        for d in _DIMS:
            sel = mask & (dims == d)
            p = np.nan_to_num(probs[i, sel])
            if sel.sum() == 0:
                continue
            rows.append({"respondent": name, "kind": kind, "dimension": d, "n_a": p[:, 0].sum(),
                         "n_b": p[:, 1].sum(), "n_c": p[:, 2].sum(), "n_unparsed": 0.0})
    cols = ["respondent", "kind", "dimension", "n_a", "n_b", "n_c", "n_unparsed"]
    return space.positions(pd.DataFrame(rows, columns=cols))


def bootstrap_replicates(m: AnswerMatrix, mask: np.ndarray, *, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """Paired bootstrap of every respondent's 5-D position over the questions in ``mask``.

    Each replicate resamples the questions with replacement within each dimension, the same draw for every
    respondent (so distances between respondents keep their pairing). Returns shape (R, n_boot, 5); NaN where a
    replicate has no A/B answer on a dimension.
    """
    probs = np.nan_to_num(np.asarray(m.probs, dtype=float))
    dims = np.asarray(m.dimension).astype(int)
    rng = np.random.default_rng(seed)
    out = np.full((probs.shape[0], int(n_boot), len(_DIMS)), np.nan)
    for j, d in enumerate(_DIMS):
        idx = np.flatnonzero(np.asarray(mask, dtype=bool) & (dims == d))
        if idx.size == 0:
            continue
        local = rng.integers(0, idx.size, size=(int(n_boot), idx.size))
        flat = (local + np.arange(int(n_boot))[:, None] * idx.size).ravel()
        weights = np.bincount(flat, minlength=int(n_boot) * idx.size).reshape(int(n_boot), idx.size)
        # expected A and B counts per replicate: each question counted as often as it was drawn
        counts = np.stack([probs[:, idx, 0] @ weights.T, probs[:, idx, 1] @ weights.T], axis=2)
        total = counts.sum(axis=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, :, j] = np.where(total > 0, counts[:, :, 1] / total, np.nan)
    return out


@dataclass
class ModelComparison:
    """Models against personas on the questions every shown model answered.

    ``positions`` (long, with Wilson intervals), ``points`` (respondent x dims), ``nearest`` (one row per
    model x persona: distance, 95% bootstrap interval, share of replicates where the persona was nearest),
    ``replicates`` (respondent -> (n_boot, 5) array), ``n_questions`` and the dimensions used.
    """

    positions: pd.DataFrame
    points: pd.DataFrame
    nearest: pd.DataFrame
    replicates: dict[str, np.ndarray] = field(default_factory=dict)
    n_questions: int = 0
    dims: tuple[int, ...] = _DIMS


def compare_models(m: AnswerMatrix, *, models: Sequence[str], personas: Sequence[str], n_boot: int = 200,
                   seed: int = 0) -> ModelComparison:
    """Positions, nearest persona (Euclidean in the position space) and bootstrap intervals for each model."""
    models = [r for r in models if r in m.respondents]
    personas = [r for r in personas if r in m.respondents]
    if not models or not personas:
        raise FairppError("comparing models needs at least one model and one persona with answers under the "
                          "filters; widen the filters or the respondents selection")
    mask = shared_questions(m, [*models, *personas])
    if not mask.any():
        raise FairppError("the selected models and personas share no question under the filters; select fewer "
                          "models or widen the filters")
    pos = matrix_positions(m, mask)
    dims = tuple(sorted(int(d) for d in pos["dimension"].unique()))
    pts = pos.pivot(index="respondent", columns="dimension", values="position").reindex(columns=list(dims))
    reps = bootstrap_replicates(m, mask, n_boot=n_boot, seed=seed)[:, :, [d - 1 for d in dims]]
    index = {r: i for i, r in enumerate(m.respondents)}
    point = {r: pts.loc[r].to_numpy(dtype=float) for r in [*models, *personas]}
    rows = []
    for model in models:
        boot = np.stack([np.sqrt(np.nansum((reps[index[model]] - reps[index[p]]) ** 2, axis=1)) for p in personas])
        low, high = np.percentile(boot, [2.5, 97.5], axis=1)
        winner = np.argmin(boot, axis=0)
        for j, p in enumerate(personas):
            rows.append({"model": model, "persona": p,
                         "distance": float(np.sqrt(np.nansum((point[model] - point[p]) ** 2))),
                         "ci_low": float(low[j]), "ci_high": float(high[j]),
                         "share_nearest": float(np.mean(winner == j))})
    near = pd.DataFrame(rows)
    near["_m"] = near["model"].map({name: i for i, name in enumerate(models)})
    near = near.sort_values(["_m", "distance"], kind="stable").drop(columns="_m").reset_index(drop=True)
    return ModelComparison(positions=pos, points=pts, nearest=near, n_questions=int(mask.sum()), dims=dims,
                           replicates={r: reps[index[r]] for r in [*models, *personas]})


def answer_grid(page: pd.DataFrame, answers: pd.DataFrame, respondents: Sequence[str], *,
                personas: Sequence[str]) -> pd.DataFrame:
    """The question browser's table: one row per question, one column per respondent's answer.

    ``page`` comes from :func:`fairpp.store.browse.question_page`; ``answers`` holds ``question_id, respondent,
    answer`` (the first sample when a respondent answered a question several times); a respondent with no
    answer shows "–". Adds ``majority``: the most common answer among ``personas`` (ties: A before B before C).

    >>> page = pd.DataFrame({"question_id": ["q1"], "text": ["t"]})
    >>> ans = pd.DataFrame({"question_id": ["q1"] * 3, "respondent": ["p1", "p2", "m"], "answer": ["A", "B", "B"]})
    >>> answer_grid(page, ans, ["p1", "p2", "m"], personas=["p1", "p2"])[["p1", "m", "majority"]].values.tolist()
    [['A', 'B', 'A']]
    """
    a = answers.drop_duplicates(["question_id", "respondent"])
    wide = a.pivot(index="question_id", columns="respondent", values="answer")
    cols = [r for r in respondents if r in wide.columns]
    grid = page.set_index("question_id").join(wide[cols], how="left")
    who = [r for r in personas if r in cols]
    if who:
        counts = pd.concat({k: (grid[who] == k).sum(axis=1) for k in ("A", "B", "C")}, axis=1)
        grid["majority"] = counts.idxmax(axis=1).where(counts.max(axis=1) > 0)
    else:
        grid["majority"] = None
    for r in cols:
        grid[r] = grid[r].fillna("–")
    return grid.reset_index()


def disagreement(grid: pd.DataFrame, respondents: Sequence[str]) -> pd.DataFrame:
    """Boolean frame: where a respondent's answer differs from the personas' majority answer."""
    cols = [r for r in respondents if r in grid.columns]
    maj = grid["majority"]
    return pd.DataFrame({r: (grid[r] != maj) & maj.notna() & grid[r].isin(["A", "B", "C"]) for r in cols})


def slice_positions(pos: pd.DataFrame, *, dimension: int) -> pd.DataFrame:
    """Rows of one dimension from positions computed per respondent x slice, positions defined only."""
    out = pos[(pos["dimension"] == int(dimension)) & pos["position"].notna()]
    return out.reset_index(drop=True)


def provenance(sources: pd.DataFrame) -> pd.DataFrame:
    """The ``sources`` table for display: one row per load, files as "name (sha256 prefix, rows)".

    >>> src = pd.DataFrame({"source_id": [1], "kind": ["file"], "role": ["dataset"], "label": ["x.csv"],
    ...     "files": ['[{"name": "x.csv", "sha256": "abcdef0123456789", "rows": 3}]'], "sha256": [None],
    ...     "loaded_at": ["2026-01-01"], "synthetic": [False], "rows_read": [3], "rows_rejected": [0],
    ...     "active": [True]})
    >>> provenance(src)["files"].iloc[0]
    'x.csv (sha256 abcdef012345…, 3 rows)'
    """
    import json

    def files(text: object, sha: object) -> str:
        items = json.loads(text) if isinstance(text, str) and text else []
        shown = [f"{f.get('name')} (sha256 {str(f.get('sha256') or '')[:12]}…, {f.get('rows')} rows)" for f in items]
        if not shown and isinstance(sha, str):
            shown = [f"generated (sha256 {sha[:12]}…)"]
        return "; ".join(shown)

    out = pd.DataFrame({
        "load": sources["source_id"], "kind": sources["kind"], "label": sources["label"],
        "files": [files(t, s) for t, s in zip(sources["files"], sources["sha256"])],
        "loaded at (UTC)": sources["loaded_at"].astype(str).str[:19], "synthetic": sources["synthetic"].astype(bool),
        "rows read": sources["rows_read"], "rows rejected": sources["rows_rejected"],
        "in use": sources["active"].astype(bool),
    })
    return out.reset_index(drop=True)


def matrix_long(frame: pd.DataFrame, n_shared: np.ndarray, *, value: str) -> pd.DataFrame:
    """A square result as long rows ``respondent_a, respondent_b, <value>, n_shared`` (for downloads).

    >>> f = pd.DataFrame([[0.0, 0.5], [0.5, 0.0]], index=["a", "b"], columns=["a", "b"])
    >>> matrix_long(f, np.array([[3, 2], [2, 4]]), value="js_distance").to_dict("records")[1]
    {'respondent_a': 'a', 'respondent_b': 'b', 'js_distance': 0.5, 'n_shared': 2}
    """
    names = list(frame.index)
    rows = [(a, b, float(frame.iat[i, j]), int(n_shared[i][j])) for i, a in enumerate(names)
            for j, b in enumerate(names)]
    return pd.DataFrame(rows, columns=["respondent_a", "respondent_b", value, "n_shared"])


def model_map_frames(comp: ModelComparison, *, personas: Sequence[str], clouds: int = 100
                     ) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """Place every respondent of a comparison on a PCA fitted on the personas' points (frozen).

    Returns the placed points (``respondent, kind, PC1, PC2`` and the positions), the first ``clouds``
    bootstrap replicates of each model on the same axes, and the explained variance ratios.
    """
    pts = comp.points.dropna()
    ref = pts.loc[[p for p in personas if p in pts.index]]
    if len(ref) < 2:
        raise FairppError("the map needs at least two personas with positions; widen the respondents filter")
    k = max(1, min(2, len(ref) - 1, pts.shape[1]))
    pca = space.FrozenPCA.fit(ref, n_components=k)
    placed = pca.transform(pts)
    if "PC2" not in placed:
        placed["PC2"] = 0.0
    kinds = comp.positions.drop_duplicates("respondent").set_index("respondent")["kind"]
    out = pd.concat([placed, pts], axis=1).rename_axis("respondent").reset_index()
    out.insert(1, "kind", out["respondent"].map(kinds))
    order = {r: i for i, r in enumerate([*personas, *[r for r in kinds.index if r not in personas]])}
    out = out.sort_values("respondent", key=lambda s: s.map(order)).reset_index(drop=True)
    reps = []
    for name, arr in comp.replicates.items():
        if kinds.get(name) == "persona":
            continue
        sub = pd.DataFrame(arr[:clouds], columns=list(pts.columns)).dropna()
        if len(sub):
            p = pca.transform(sub)
            if "PC2" not in p:
                p["PC2"] = 0.0
            reps.append(p.assign(respondent=name))
    cloud = pd.concat(reps, ignore_index=True) if reps else pd.DataFrame(columns=["PC1", "PC2", "respondent"])
    return out, cloud, pca.explained_variance_ratio.tolist()


def nearest_summary(nearest: pd.DataFrame) -> pd.DataFrame:
    """One row per model: its nearest persona, the distance with its interval, and the runner-up."""
    rows = []
    for model, sub in nearest.groupby("model", sort=False):
        first = sub.iloc[0]
        second = sub.iloc[1] if len(sub) > 1 else None
        rows.append({"model": model, "nearest persona": first["persona"], "distance": first["distance"],
                     "95% interval": f"[{first['ci_low']:.3f}, {first['ci_high']:.3f}]",
                     "share nearest": first["share_nearest"],
                     "runner-up": None if second is None else f"{second['persona']} ({second['distance']:.3f})"})
    return pd.DataFrame(rows)


def position_table(pos: pd.DataFrame) -> pd.DataFrame:
    """Positions as "0.421 [0.402, 0.440]" strings: one row per respondent, one column per dimension.

    >>> p = pd.DataFrame({"respondent": ["r"], "kind": ["persona"], "dimension": [1], "position": [0.5],
    ...                   "ci_low": [0.4], "ci_high": [0.6]})
    >>> position_table(p).iloc[0].tolist()
    ['r', 'persona', '0.500 [0.400, 0.600]']
    """
    text = pos.assign(cell=[f"{p:.3f} [{lo:.3f}, {hi:.3f}]" if pd.notna(p) else "–"
                            for p, lo, hi in zip(pos["position"], pos["ci_low"], pos["ci_high"])])
    wide = text.pivot_table(index=["respondent", "kind"], columns="dimension", values="cell", aggfunc="first",
                            sort=False)
    wide.columns = [f"D{int(d)}" for d in wide.columns]
    return wide.reset_index()
