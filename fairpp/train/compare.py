"""``fairpp compare``: the paper's four-condition comparison (no torch; any stored respondents).

Conditions are respondents already in the store: typically the base model, the base model with the
target's role-play prompt, plain DPO and weighted DPO (``fairpp evaluate`` stores them; a model probed
through an endpoint with ``fairpp probe`` works the same). Each condition is compared with the target
persona and with every other persona on one common question set: the questions every condition and every
persona answered (A/B/C), restricted to ``split`` and ``filters``; their number is reported.

- Jensen-Shannon distance between answer distributions (:func:`fairpp.space.js_distances`; base 2, in
  [0, 1], by default; ``base=e`` is the paper-compatible value), agreement (share of questions answered
  alike) and Cohen's kappa (:func:`fairpp.space.agreement`).
- 95% intervals: percentile bootstrap over questions, stratified by dimension (each replicate redraws each
  dimension's questions with replacement and recomputes every number), seeded.
- Per condition: distance and agreement to the target, mean distance and agreement to the other personas,
  and ``gap = mean distance to others - distance to target`` (the paper's claim: weighted DPO moves toward
  the target and away from the others, i.e. a small distance to the target and a large gap), each with
  its interval; distances between the conditions; 5-D positions with bootstrap intervals for the map.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

from fairpp import space
from fairpp.schema import AnswerMatrix
from fairpp.train.data import TrainError

__all__ = ["compare_conditions", "DEFAULT_CONDITIONS", "bootstrap_counts"]

#: The paper's four conditions, in display order.
DEFAULT_CONDITIONS = ("base", "role-play", "DPO", "weighted DPO")


def bootstrap_counts(dimension: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, Q)`` counts: how often each question is drawn, resampling within each dimension.

    >>> c = bootstrap_counts(np.array([1, 1, 2]), 4, np.random.default_rng(0))
    >>> c.shape, c[:, :2].sum(axis=1).tolist(), c[:, 2].tolist()
    ((4, 3), [2, 2, 2, 2], [1, 1, 1, 1])
    """
    counts = np.zeros((n_boot, len(dimension)), dtype=np.int64)
    for d in np.unique(dimension):
        idx = np.flatnonzero(dimension == d)
        counts[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n_boot)
    return counts


def _js_rows(dist: np.ndarray, base: float) -> np.ndarray:
    """JS distances between all rows of ``dist`` (..., R, 3) -> (..., R, R), as :func:`space.js_distances`."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = dist / dist.sum(axis=-1, keepdims=True)
        a, b = p[..., :, None, :], p[..., None, :, :]
        mid = 0.5 * (a + b)
        left = np.where(a > 0, a * np.log(a / mid), 0.0).sum(axis=-1)
        right = np.where(b > 0, b * np.log(b / mid), 0.0).sum(axis=-1)
    return np.sqrt(np.clip((left + right) / (2.0 * math.log(base)), 0.0, None))


def _hard(probs: np.ndarray) -> np.ndarray:
    """Argmax letter codes (R, Q), the first option winning a tie, as :func:`space.agreement`."""
    a, b, c = probs[..., 0], probs[..., 1], probs[..., 2]
    return np.where((a >= b) & (a >= c), 0, np.where(b >= c, 1, 2))


def _resolve(name: str, names: Sequence[str], what: str) -> str:
    key = str(name).strip().lower()
    found = [n for n in names if n == name] or [n for n in names if n.lower() == key] \
        or [n for n in names if n.lower().startswith(key)]
    if len(found) != 1:
        raise TrainError(f"{what} {name!r} {'is ambiguous' if found else 'is not in the store'}; known: {list(names)}.")
    return found[0]


def _interval(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    with warnings.catch_warnings():  # an all-NaN column (a dimension without questions) gives NaN, quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanpercentile(reps, lo, axis=0), np.nanpercentile(reps, hi, axis=0)


def _num(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def compare_conditions(store: Any, *, target: str, conditions: Mapping[str, str] | Sequence[tuple[str, str]],
                       personas: Sequence[str] | None = None, split: str | None = None,
                       filters: Mapping[str, Sequence[Any]] | None = None, base: float = 2.0, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Compare conditions (label -> stored respondent) with the target and the other personas.

    Returns a JSON-ready dict: ``target, personas, conditions`` (label, respondent, kind, description),
    ``n_questions``, ``base``, ``n_boot``, ``level``, ``rows`` (one per condition x persona: ``js``,
    ``js_low``, ``js_high``, ``agreement``, ``agreement_low``, ``agreement_high``, ``kappa``, ``is_target``),
    ``summary`` (one per condition: ``js_target``, ``js_others``, ``gap``, ``agreement_target``,
    ``agreement_others``, each with ``_low``/``_high``, and ``nearest`` persona), ``between`` (JS distances
    between the conditions, with intervals) and ``positions`` (5-D positions with intervals).
    """
    items = list(conditions.items()) if isinstance(conditions, Mapping) else [tuple(c) for c in conditions]
    if not items:
        raise TrainError("no condition given; pass --condition LABEL=RESPONDENT (e.g. base=my-base-model).")
    if not 0 < level < 1 or n_boot < 1:
        raise TrainError(f"level={level} must be in (0, 1) and n_boot={n_boot} >= 1.")
    resp = store.respondents()
    known = resp["respondent"].tolist()
    kinds = dict(zip(resp["respondent"], resp["kind"]))
    descr = dict(zip(resp["respondent"], resp["description"]))
    persona_pool = [r for r in known if kinds[r] in ("persona", "custom")]
    names = [p for p in (personas or resp.loc[resp["kind"] == "persona", "respondent"].tolist())]
    names = [_resolve(p, persona_pool, "persona") for p in names]
    tgt = _resolve(target, persona_pool, "target persona")
    if tgt not in names:
        names.append(tgt)
    labels = [str(lbl) for lbl, _ in items]
    if len(set(labels)) != len(labels):
        raise TrainError(f"condition labels must differ; got {labels}.")
    conds = [_resolve(r, known, f"condition {lbl!r}: respondent") for lbl, r in items]
    if set(conds) & set(names):
        raise TrainError(f"a condition cannot be one of the personas compared with: {sorted(set(conds) & set(names))}.")
    who = conds + names
    f = {k: list(v) for k, v in (filters or {}).items()}
    if split:
        f["split"] = [split]
    m = store.answer_matrix(f, respondents=who)
    missing = [r for r in who if r not in m.respondents]
    if missing:
        raise TrainError(f"no answers under the selection (split={split!r}, filters={dict(filters or {})}) from "
                         f"{missing}; evaluate them on these questions first (fairpp evaluate --split ...).")
    order = [m.respondents.index(r) for r in who]
    probs = np.asarray(m.probs)[order]
    common = ~np.isnan(probs[:, :, 0]).any(axis=0)
    if not common.any():
        raise TrainError("no question was answered by every condition and every persona; evaluate the conditions on "
                         "the same split (e.g. --split test) the personas answered.")
    probs, dims = probs[:, common], np.asarray(m.dimension)[common]
    qids = [q for q, c in zip(m.question_ids, common) if c]
    mm = AnswerMatrix(respondents=who, kinds=[kinds[r] for r in who], question_ids=qids, dimension=dims, probs=probs)
    js = space.js_distances(mm, base=base)["js_distance"]
    agr = space.agreement(mm)
    rng = np.random.default_rng(seed)
    js_reps, agr_reps = _bootstrap(probs, dims, n_boot, rng, base)
    nc, tgt_i = len(conds), who.index(tgt)
    others = [i for i in range(nc, len(who)) if i != tgt_i]
    js_lo, js_hi = _interval(js_reps, level)
    ag_lo, ag_hi = _interval(agr_reps, level)
    rows = [{"condition": labels[c], "respondent": conds[c], "persona": who[p], "is_target": p == tgt_i,
             "js": _num(js[c, p]), "js_low": _num(js_lo[c, p]), "js_high": _num(js_hi[c, p]),
             "agreement": _num(agr["agreement"][c, p]), "agreement_low": _num(ag_lo[c, p]),
             "agreement_high": _num(ag_hi[c, p]), "kappa": _num(agr["kappa"][c, p])}
            for c in range(nc) for p in range(nc, len(who))]
    summary = []
    for c in range(nc):
        stats = {"js_target": (js[c, tgt_i], js_reps[:, c, tgt_i]),
                 "js_others": (js[c, others].mean(), js_reps[:, c, others].mean(axis=1)) if others else None,
                 "agreement_target": (agr["agreement"][c, tgt_i], agr_reps[:, c, tgt_i]),
                 "agreement_others": (agr["agreement"][c, others].mean(), agr_reps[:, c, others].mean(axis=1))
                 if others else None}
        if others:
            stats["gap"] = (stats["js_others"][0] - stats["js_target"][0],
                            stats["js_others"][1] - stats["js_target"][1])
        row: dict[str, Any] = {"condition": labels[c], "respondent": conds[c]}
        for key, val in stats.items():
            if val is None:
                continue
            lo, hi = _interval(val[1][:, None], level)
            row.update({key: _num(val[0]), f"{key}_low": _num(lo[0]), f"{key}_high": _num(hi[0])})
        row["nearest"] = who[nc + int(np.nanargmin(js[c, nc:]))]
        summary.append(row)
    between = [{"a": labels[i], "b": labels[j], "js": _num(js[i, j]), "js_low": _num(js_lo[i, j]),
                "js_high": _num(js_hi[i, j]), "agreement": _num(agr["agreement"][i, j])}
               for i in range(nc) for j in range(i + 1, nc)]
    return {"kind": "fairpp.compare", "target": tgt, "personas": names, "n_questions": int(common.sum()),
            "question_ids_sha": _digest(qids), "split": split, "filters": f, "base": "2" if base == 2 else
            "e" if math.isclose(base, math.e) else str(base), "n_boot": int(n_boot), "level": level, "seed": seed,
            "conditions": [{"condition": lbl, "respondent": r, "kind": kinds[r], "description": descr.get(r)}
                           for lbl, r in zip(labels, conds)],
            "rows": rows, "summary": summary, "between": between,
            "positions": _positions(mm, labels + names, n_boot=min(n_boot, 500), seed=seed, level=level)}


def _bootstrap(probs: np.ndarray, dims: np.ndarray, n_boot: int, rng: np.random.Generator,
               base: float) -> tuple[np.ndarray, np.ndarray]:
    """Replicates of the JS-distance and agreement matrices, ``(n_boot, R, R)`` each, in chunks."""
    r, q, _ = probs.shape
    hard = _hard(probs)
    same = (hard[:, None, :] == hard[None, :, :]).reshape(r * r, q).astype(float)  # (R*R, Q)
    counts = bootstrap_counts(dims, n_boot, rng)
    js_out, agr_out = np.empty((n_boot, r, r)), np.empty((n_boot, r, r))
    step = max(1, int(2_000_000 // max(q, 1)))
    for s in range(0, n_boot, step):
        c = counts[s:s + step]
        dist = np.einsum("bq,rqk->brk", c, probs)
        js_out[s:s + step] = _js_rows(dist, base)
        agr_out[s:s + step] = (c @ same.T / q).reshape(-1, r, r)
    return js_out, agr_out


def _positions(m: AnswerMatrix, labels: Sequence[str], *, n_boot: int, seed: int, level: float) -> list[dict]:
    """5-D positions (``p_d = E[n_B] / (E[n_A] + E[n_B])``) and N/A rates with bootstrap intervals."""
    out = []
    dims = np.asarray(m.dimension)
    for i, (name, label) in enumerate(zip(m.respondents, labels)):
        boot = space.bootstrap_positions(m, name, n_boot=n_boot, seed=seed)
        lo, hi = _interval(boot, level)
        for k, d in enumerate(space.DIMENSIONS):
            sel = m.probs[i, dims == d]
            a, b, c = sel.sum(axis=0) if len(sel) else (0.0, 0.0, 0.0)
            out.append({"respondent": name, "label": label, "dimension": d,
                        "position": _num(b / (a + b)) if a + b > 0 else None,
                        "ci_low": _num(lo[k]), "ci_high": _num(hi[k]),
                        "na_rate": _num(c / (a + b + c)) if len(sel) else None, "n": int(len(sel))})
    return out


def _digest(qids: Sequence[int]) -> str:
    import hashlib

    return hashlib.sha256(",".join(str(int(q)) for q in qids).encode()).hexdigest()[:16]
