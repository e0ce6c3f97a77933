"""Where a probed model lands: its positions with intervals, nearest persona and model, position bias.

Definitions are those of ``design/science.md``: on each dimension, position ``p_d = n_B / (n_A + n_B)``
(0 = first pole, 1 = second pole) with expected counts for soft answers, repeated samples of a
question averaged first (so repeats do not narrow the interval), a 95% Wilson interval, the N/A
rate beside it; refused and unparsed replies are counted apart. Comparisons use only the questions
the run asked (models of the published data answered only the test split: ``n`` says how many).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from fairpp import space
from fairpp.schema import AnswerMatrix
from fairpp.store.runs import RunStore

__all__ = ["run_summary", "probe_positions", "probe_points", "probe_cloud", "position_bias", "DEFINITION"]

DEFINITION = ("position p_d = n_B / (n_A + n_B) on dimension d (0 = first pole, 1 = second pole), expected counts "
              "from logprobs when available, repeats of a question averaged; 95% Wilson interval; N/A rate = n_C / n")


def _soft(frame: pd.DataFrame) -> pd.DataFrame:
    """Per respondent x question: mean expected (A, B, C) over A/B/C-answered samples, and whether any."""
    f = frame[["respondent", "kind", "question_id", "dimension"]].copy()
    answer = frame["answer"].astype(object)
    ok = answer.isin(["A", "B", "C"]).to_numpy()
    for col, letter in (("p_a", "A"), ("p_b", "B"), ("p_c", "C")):
        soft = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        hard = (answer == letter).to_numpy(dtype=float)
        f[col] = np.where(ok, np.where(np.isnan(soft), hard, soft), np.nan)
    f["answered"] = ok
    if not (f.duplicated(["respondent", "question_id"]).any()):  # no repeats: nothing to average
        return f.reset_index(drop=True)
    keys = ["respondent", "kind", "question_id", "dimension"]
    return f.groupby(keys, sort=False).agg(p_a=("p_a", "mean"), p_b=("p_b", "mean"), p_c=("p_c", "mean"),
                                           answered=("answered", "max")).reset_index()


def probe_positions(store: Any, run_id: str, *, kinds: Sequence[str] = ("persona", "model")) -> pd.DataFrame:
    """Positions (with Wilson intervals) of the run and of every respondent of ``kinds`` on the run's questions.

    Columns as :func:`fairpp.space.positions`: ``respondent, kind, dimension, n_a, n_b, n_c, n_unparsed,
    position, ci_low, ci_high, na_rate, n``.
    """
    cmp = RunStore(store).comparison_answers(run_id, kinds=kinds)
    if cmp.empty:
        return space.positions(pd.DataFrame(columns=["respondent", "kind", "dimension", "n_a", "n_b", "n_c",
                                                     "n_unparsed"]))
    per_q = _soft(cmp)
    per_q["unanswered"] = (~per_q["answered"]).astype(float)
    counts = per_q.groupby(["respondent", "kind", "dimension"], sort=False).agg(
        n_a=("p_a", "sum"), n_b=("p_b", "sum"), n_c=("p_c", "sum"), n_unparsed=("unanswered", "sum")).reset_index()
    counts["dimension"] = counts["dimension"].astype(int)
    return space.positions(counts.sort_values(["kind", "respondent", "dimension"]).reset_index(drop=True))


def probe_points(pos: pd.DataFrame) -> pd.DataFrame:
    """One 5-D point per respondent (index respondent, columns 1..5) from :func:`probe_positions`."""
    if pos.empty:
        return pd.DataFrame(columns=list(space.DIMENSIONS))
    pts = space.unit_vectors(pos, unit=[])
    pts.index = pts.index.get_level_values("respondent")
    return pts


def _nearest(points: pd.DataFrame, target: str, candidates: list[str]) -> list[dict[str, Any]]:
    cands = [c for c in candidates if c in points.index and c != target]
    if target not in points.index or not cands:
        return []
    near = space.nearest(points, target=target, candidates=cands)
    return [{"respondent": r, "distance": float(d)} for r, d in zip(near["respondent"], near["distance"])]


def probe_cloud(store: Any, run_id: str, *, n_boot: int = 200, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates (``n_boot`` x 5) of the run's point, resampling its questions within dimensions."""
    runs = RunStore(store)
    run = runs.get_run(run_id) or {}
    cmp = runs.comparison_answers(run_id, kinds=())
    per_q = _soft(cmp[cmp["respondent"] == run.get("respondent")])
    if per_q.empty:
        return np.full((int(n_boot), 5), np.nan)
    probs = per_q[["p_a", "p_b", "p_c"]].to_numpy(dtype=float)[None, :, :]
    m = AnswerMatrix([run["respondent"]], ["probe"], per_q["question_id"].tolist(),
                     per_q["dimension"].to_numpy(dtype=int), probs)
    return space.bootstrap_positions(m, run["respondent"], n_boot=n_boot, seed=seed)


def position_bias(store: Any, run_id: str) -> dict[str, Any] | None:
    """How answers move when options A and B swap places (``None`` when no question was swapped).

    ``p_b_unswapped`` / ``p_b_swapped``: the position (share of the second pole) on questions asked in
    the usual / swapped order; ``first_option_share``: share of A/B mass on whichever option was shown
    first (0.5 means no position bias).
    """
    df = RunStore(store).run_answers(run_id)
    df = df[df["answer"].isin(["A", "B", "C"]) & df["swapped"].notna()]
    if df.empty or not df["swapped"].astype(bool).any():
        return None
    pa = pd.to_numeric(df["p_a"], errors="coerce").fillna((df["answer"] == "A").astype(float))
    pb = pd.to_numeric(df["p_b"], errors="coerce").fillna((df["answer"] == "B").astype(float))
    sw = df["swapped"].astype(bool)
    out: dict[str, Any] = {}
    for name, mask in (("unswapped", ~sw), ("swapped", sw)):
        ab = float((pa[mask] + pb[mask]).sum())
        out[f"n_{name}"] = int(mask.sum())
        out[f"p_b_{name}"] = float(pb[mask].sum() / ab) if ab > 0 else None
    first = np.where(sw, pb, pa)
    total = float((pa + pb).sum())
    out["first_option_share"] = float(first.sum() / total) if total > 0 else None
    return out


def run_summary(store: Any, run_id: str) -> dict[str, Any]:
    """The run card's counters, positions with intervals, and nearest persona / model (for ``--json``)."""
    runs = RunStore(store)
    run = runs.get_run(run_id)
    if run is None:
        from fairpp.schema import FairppError

        raise FairppError(f"no probe run {run_id!r}; list the runs with `fairpp probe-runs`.")
    counts = runs.run_counts(run_id)
    pos = probe_positions(store, run_id)
    me = run["respondent"]
    mine = pos[pos["respondent"] == me]
    points = probe_points(pos)
    kinds = dict(zip(pos["respondent"], pos["kind"]))
    distances = _nearest(points, me, [r for r, k in kinds.items() if k in ("persona", "model")])
    for d in distances:
        d["kind"] = kinds[d["respondent"]]
    personas = [d for d in distances if d["kind"] == "persona"]
    models = [d for d in distances if d["kind"] == "model"]
    n_planned = int(run.get("n_planned") or 0)
    identity = (run.get("card") or {}).get("identity") or {}
    return {
        "run_id": run_id, "respondent": me, "model": run.get("model"), "endpoint_host": run.get("endpoint_host"),
        "persona": run.get("persona"), "status": run.get("status"), "stop_reason": run.get("stop_reason"),
        "planned": n_planned, "answered": counts["answered"],
        "failed": counts["failed"], "unasked": max(n_planned - counts["answered"] - counts["failed"], 0),
        "refused": counts["refused"], "unparsed": counts["unparsed"], "cached": counts["cached"],
        "requests": counts["requests"], "prompt_tokens": counts["prompt_tokens"],
        "completion_tokens": counts["completion_tokens"], "cost": run.get("cost"),
        "completeness": counts["answered"] / n_planned if n_planned else 0.0,
        "started_at": str(run.get("started_at")), "ended_at": str(run.get("ended_at")),
        "definition": DEFINITION,
        "positions": [{"dimension": int(r.dimension), "position": _f(r.position), "ci_low": _f(r.ci_low),
                       "ci_high": _f(r.ci_high), "na_rate": _f(r.na_rate), "n": _f(r.n),
                       "n_unparsed": _f(r.n_unparsed)} for r in mine.itertuples()],
        "nearest_persona": personas[0] if personas else None,
        "nearest_model": models[0] if models else None,
        "distances": distances,
        # a run with swap share 0 asked nothing swapped: no position bias to measure (and no query to run)
        "position_bias": position_bias(store, run_id) if identity.get("swap_share", 1) else None,
        "error": (run.get("card") or {}).get("error"),
    }


def _f(v: Any) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)
