"""The 5-dimensional preference space: positions, intervals, distances and agreement.

Definitions follow ``design/science.md``: position ``p_d = n_B / (n_A + n_B)`` (0 = first pole,
1 = second pole; expected counts for soft answers) with the N/A rate ``n_C / (n_A + n_B + n_C)``
beside it, unparsed/refused never in ``n``; a Wilson (or stratified bootstrap) 95% interval;
Jensen-Shannon distance (base 2 by default, natural log paper-compatible), agreement and Cohen's
kappa on the questions both respondents answered. Projections live in :mod:`fairpp.projection`
and are re-exported here. Never imports duckdb or streamlit.
"""
from __future__ import annotations

import logging
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from fairpp.projection import FrozenPCA, answer_pca, nearest, umap_embed
from fairpp.schema import AnswerMatrix, FairppError

__all__ = [
    "DIMENSIONS", "wilson_interval", "positions", "unit_vectors", "js_distances", "agreement",
    "FrozenPCA", "umap_embed", "answer_pca", "bootstrap_positions", "nearest",
]

logger = logging.getLogger(__name__)

#: The five preference dimensions, as the integer column labels of a position vector.
DIMENSIONS: tuple[int, ...] = (1, 2, 3, 4, 5)
_COUNT_COLUMNS = ("n_a", "n_b", "n_c", "n_unparsed")
_KEY_COLUMNS = ("respondent", "kind", "dimension")


def wilson_interval(successes: Any, trials: Any, *,
                    level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion, vectorised.

    Parameters
    ----------
    successes, trials : array_like
        Numbers of successes and trials (broadcast together). Non-integer expected counts (soft
        answers) are accepted. ``trials == 0`` (or a NaN input) gives ``NaN`` bounds.
    level : float, default 0.95
        Two-sided confidence level, strictly between 0 and 1.

    Returns
    -------
    low, high : numpy.ndarray
        Lower and upper bounds, within [0, 1].

    Raises
    ------
    FairppError
        When ``level`` is outside (0, 1), a count is negative, or ``successes > trials``.

    Examples
    --------
    >>> low, high = wilson_interval([0, 5, 0], [10, 10, 0])
    >>> np.round(low, 4).tolist(), np.round(high, 4).tolist()
    ([0.0, 0.2366, nan], [0.2775, 0.7634, nan])
    """
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise FairppError(f"level={level!r} is not a confidence level; pass a number strictly "
                          "between 0 and 1, e.g. level=0.95.")
    s, t = np.broadcast_arrays(np.asarray(successes, dtype=float), np.asarray(trials, dtype=float))
    with np.errstate(invalid="ignore"):
        if np.any(s < 0) or np.any(t < 0):
            raise FairppError("successes and trials must be counts >= 0; got a negative value; "
                              "check the counts passed in.")
        over = s > t * (1 + 1e-9) + 1e-9
    if np.any(over):
        raise FairppError(f"successes exceed trials at {int(over.sum())} position(s); pass the "
                          "B count as successes and n_A + n_B as trials.")
    z = NormalDist().inv_cdf(1.0 - (1.0 - level) / 2.0)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        safe_t = np.where(t > 0, t, np.nan)
        p = np.clip(s / safe_t, 0.0, 1.0)
        denom = 1.0 + z2 / safe_t
        centre = (p + z2 / (2.0 * safe_t)) / denom
        half = z / denom * np.sqrt(p * (1.0 - p) / safe_t + z2 / (4.0 * safe_t * safe_t))
    # exact at the edges (0 of n has lower bound 0, n of n upper bound 1) despite rounding
    low = np.where(s <= 0, 0.0, np.clip(centre - half, 0.0, 1.0))
    high = np.where(s >= t, 1.0, np.clip(centre + half, 0.0, 1.0))
    low[np.isnan(centre)] = np.nan
    high[np.isnan(centre)] = np.nan
    return low, high


def positions(counts: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Positions, Wilson intervals and N/A rates from per-dimension answer counts.

    Parameters
    ----------
    counts : pandas.DataFrame
        One row per respondent x dimension (x optional unit columns such as
        ``specific_problem``), with columns ``respondent, kind, dimension, n_a, n_b, n_c,
        n_unparsed`` (expected counts when answers are soft) and any unit columns.
    level : float, default 0.95
        Confidence level of the Wilson interval.

    Returns
    -------
    pandas.DataFrame
        The same rows and columns, plus ``position = n_b / (n_a + n_b)`` (NaN when
        ``n_a + n_b == 0``), ``ci_low`` and ``ci_high`` (Wilson interval on ``n_b`` out of
        ``n_a + n_b``), ``na_rate = n_c / (n_a + n_b + n_c)`` and ``n = n_a + n_b + n_c``.
        ``n_unparsed`` (unparsed and refused replies) enters neither ``n`` nor ``na_rate``.

    Examples
    --------
    >>> c = pd.DataFrame({"respondent": ["r1", "r1"], "kind": ["persona"] * 2, "dimension": [1, 2],
    ...                   "n_a": [5.0, 0.0], "n_b": [5.0, 0.0], "n_c": [2.0, 4.0],
    ...                   "n_unparsed": [1.0, 0.0]})
    >>> positions(c)[["position", "ci_low", "na_rate", "n"]].round(4)
       position  ci_low  na_rate     n
    0       0.5  0.2366   0.1667  12.0
    1       NaN     NaN   1.0000   4.0
    """
    if not isinstance(counts, pd.DataFrame):
        raise FairppError(f"counts must be a pandas DataFrame; got {type(counts).__name__}.")
    missing = [c for c in (*_KEY_COLUMNS, *_COUNT_COLUMNS) if c not in counts.columns]
    if missing:
        raise FairppError(f"counts is missing column(s) {missing}; it needs respondent, kind, "
                          "dimension, n_a, n_b, n_c and n_unparsed (one row per respondent x "
                          "dimension).")
    out = counts.copy()
    num = {}
    for c in _COUNT_COLUMNS:
        try:
            num[c] = pd.to_numeric(out[c]).to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise FairppError(f"counts column {c!r} must hold numbers; {err}") from err
        if np.any(num[c] < 0):
            raise FairppError(f"counts column {c!r} has negative values; counts must be >= 0.")
    a, b, c_ = num["n_a"], num["n_b"], num["n_c"]
    ab = a + b
    n = ab + c_
    with np.errstate(divide="ignore", invalid="ignore"):
        out["position"] = np.where(ab > 0, b / ab, np.nan)
        out["na_rate"] = np.where(n > 0, c_ / n, np.nan)
    low, high = wilson_interval(b, ab, level=level)
    out["ci_low"] = low
    out["ci_high"] = high
    out["n"] = n
    return out


def unit_vectors(pos: pd.DataFrame, *, unit: list[str]) -> pd.DataFrame:
    """Reshape long positions into one 5-D point per respondent x unit.

    Parameters
    ----------
    pos : pandas.DataFrame
        Output of :func:`positions` computed per respondent x unit x dimension.
    unit : list of str
        The unit columns (e.g. ``["specific_problem"]``); ``[]`` gives one point per respondent.

    Returns
    -------
    pandas.DataFrame
        Index ``(respondent, kind, *unit)``, integer columns ``1..5`` holding positions. Rows with
        a missing dimension (absent, or an undefined position because ``n_a + n_b == 0``) are
        dropped; how many is in ``frame.attrs["dropped"]``.

    Examples
    --------
    >>> rows = [("r1", "persona", u, d, 0.1 * d) for u in ("food", "water") for d in range(1, 6)]
    >>> p = pd.DataFrame(rows, columns=["respondent", "kind", "specific_problem", "dimension",
    ...                                 "position"]).iloc[:-1]
    >>> v = unit_vectors(p, unit=["specific_problem"])
    >>> v.index.tolist(), list(v.columns), v.attrs["dropped"]
    ([('r1', 'persona', 'food')], [1, 2, 3, 4, 5], 1)
    """
    if isinstance(unit, str) or not isinstance(unit, (list, tuple)):
        raise FairppError(f"unit must be a list of column names; got {unit!r}; e.g. "
                          "unit=['specific_problem'] or unit=[].")
    unit = list(unit)
    missing = [c for c in ("respondent", "kind", "dimension", "position", *unit)
               if c not in pos.columns]
    if missing:
        raise FairppError(f"pos is missing column(s) {missing}; pass the output of positions() "
                          f"computed per respondent x {unit or 'respondent'} x dimension.")
    keys = ["respondent", "kind", *unit]
    frame = pos[[*keys, "dimension", "position"]].copy()
    try:
        frame["dimension"] = frame["dimension"].astype(int)
    except (TypeError, ValueError) as err:
        raise FairppError(f"pos column 'dimension' must hold integers 1..5; {err}") from err
    bad = sorted(set(frame["dimension"]) - set(DIMENSIONS))
    if bad:
        raise FairppError(f"pos column 'dimension' has values {bad}; dimensions are 1..5.")
    dup = frame.duplicated([*keys, "dimension"])
    if dup.any():
        raise FairppError(f"pos has {int(dup.sum())} duplicate respondent x {unit} x dimension "
                          "row(s); pass unit= every column the positions were grouped by.")
    wide = frame.set_index([*keys, "dimension"])["position"].unstack("dimension")
    wide = wide.reindex(columns=list(DIMENSIONS))
    wide.columns = pd.Index(list(DIMENSIONS), dtype=int, name=None)
    keep = wide.notna().all(axis=1)
    out = wide.loc[keep].astype(float)
    out.attrs["dropped"] = int((~keep).sum())
    return out


def _matrix_probs(m: AnswerMatrix, dimension: int | None,
                  row: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validated probabilities laid out (R, 3, Q) with 0 where unanswered, and the (R, Q) mask.

    Restricted to ``dimension``'s questions and to respondent ``row`` (then R = 1) when given.
    The (R, 3, Q) layout keeps per-option rows contiguous for the BLAS products below.
    """
    probs = np.asarray(m.probs, dtype=float)
    if probs.ndim != 3 or probs.shape[2] != 3:
        raise FairppError(f"m.probs must have shape (R, Q, 3); got {probs.shape}.")
    dims = np.asarray(m.dimension)
    if probs.shape[0] != len(m.respondents) or dims.shape != (probs.shape[1],):
        raise FairppError(f"m is inconsistent: {len(m.respondents)} respondents, dimension shape "
                          f"{dims.shape}, probs shape {probs.shape}; rebuild it with one row per "
                          "respondent and one dimension per question.")
    if row is not None:
        probs = probs[row:row + 1]
    if dimension is None:
        by_option = probs.transpose(0, 2, 1).copy()  # C order; never writes into m.probs
    else:
        if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) \
                or int(dimension) not in DIMENSIONS:
            raise FairppError(f"dimension={dimension!r} is not a dimension; pass one of 1..5 "
                              "or None for all questions.")
        by_option = probs.transpose(0, 2, 1)[:, :, dims == int(dimension)]
    nan = np.isnan(by_option)
    answered = ~nan[:, 0, :]
    if np.any(nan.any(axis=1) & answered):
        raise FairppError("m.probs has rows with some but not all of (A, B, C) NaN; an answered "
                          "question needs three probabilities, an unanswered one three NaN.")
    negative = bool(np.any(by_option < 0))  # NaN compares False
    np.fmax(by_option, 0.0, out=by_option)  # NaN -> 0 in place (fmax ignores NaN)
    if negative or np.any(answered & ~(by_option.sum(axis=1) > 0)):
        raise FairppError("m.probs has negative probabilities or an answered row summing to 0; "
                          "each answered row must be a distribution over (A, B, C).")
    return by_option, answered


def _pair_sums(by_option: np.ndarray, answered: np.ndarray) -> np.ndarray:
    """``S[i, j, k]``: sum of respondent i's option-k values over the questions j also answered.

    Equals ``einsum("ikq,jq->ijk", by_option, answered)``, done as one (R*3, Q) @ (Q, R) product.
    """
    r, _, q = by_option.shape
    prod = by_option.reshape(r * 3, q) @ answered.T.astype(float)
    return prod.reshape(r, 3, r).transpose(0, 2, 1)


def _count_shared(answered: np.ndarray) -> np.ndarray:
    a = answered.astype(float)
    return np.rint(a @ a.T).astype(np.int64)  # float BLAS; exact for counts below 2**53


def js_distances(m: AnswerMatrix, *, base: float = 2.0,
                 dimension: int | None = None) -> dict[str, Any]:
    """Jensen-Shannon distances between respondents' answer distributions over (A, B, C).

    For each pair only the questions both answered are used (restricted to ``dimension`` when
    given); each respondent's distribution is the normalised sum of its ``probs`` rows on those
    questions. The result equals ``scipy.spatial.distance.jensenshannon(p, q, base=base)``.

    Parameters
    ----------
    m : AnswerMatrix
        The answers.
    base : float, default 2.0
        Logarithm base. ``2`` keeps distances within [0, 1]; ``math.e`` is the paper-compatible
        setting (scipy's default natural log, maximum ``sqrt(ln 2)`` ~ 0.83).
    dimension : int, optional
        Restrict to the questions of this dimension (1..5).

    Returns
    -------
    dict
        ``respondents`` (list), ``js_distance`` (R x R float array; NaN for pairs with no shared
        question, 0 on the diagonal of a respondent who answered anything), ``n_shared``
        (R x R int array), and ``base`` and ``dimension`` as passed, to label the numbers.

    Examples
    --------
    >>> one_hot = np.eye(3)
    >>> probs = np.stack([one_hot[[0, 0, 1, 2]], one_hot[[1, 1, 1, 2]]])
    >>> m = AnswerMatrix(["r1", "r2"], ["persona"] * 2, ["q1", "q2", "q3", "q4"],
    ...                  np.array([1, 1, 2, 2]), probs)
    >>> out = js_distances(m)
    >>> np.round(out["js_distance"], 4).tolist(), out["n_shared"].tolist()
    ([[0.0, 0.5868], [0.5868, 0.0]], [[4, 4], [4, 4]])
    """
    if isinstance(base, bool) or not isinstance(base, (int, float)) or not base > 0 \
            or base == 1 or not math.isfinite(base):
        raise FairppError(f"base={base!r} is not a logarithm base; pass a positive number other "
                          "than 1, e.g. base=2 (bounded in [0, 1]) or base=math.e (paper).")
    by_option, answered = _matrix_probs(m, dimension)
    n_shared = _count_shared(answered)
    sums = _pair_sums(by_option, answered)  # (R, R, 3): row i's distribution against column j
    with np.errstate(divide="ignore", invalid="ignore"):
        p = sums / sums.sum(axis=2, keepdims=True)
        q = p.transpose(1, 0, 2)
        mid = 0.5 * (p + q)
        left = np.where(p > 0, p * np.log(p / mid), 0.0)
        right = np.where(q > 0, q * np.log(q / mid), 0.0)
        js = (left.sum(axis=2) + right.sum(axis=2)) / math.log(base)
    dist = np.sqrt(np.clip(js / 2.0, 0.0, None))
    dist[n_shared == 0] = np.nan
    diag = np.diag_indices_from(dist)
    dist[diag] = np.where(np.diag(n_shared) > 0, 0.0, np.nan)
    return {"respondents": list(m.respondents), "js_distance": dist, "n_shared": n_shared,
            "base": float(base), "dimension": dimension}


def agreement(m: AnswerMatrix, *, dimension: int | None = None) -> dict[str, Any]:
    """Question-level agreement and Cohen's kappa between respondents.

    Hard answers are the argmax of ``probs`` (the first option wins a tie). For each pair only the
    questions both answered are used, restricted to ``dimension`` when given.

    Parameters
    ----------
    m : AnswerMatrix
        The answers.
    dimension : int, optional
        Restrict to the questions of this dimension (1..5).

    Returns
    -------
    dict
        ``respondents``; ``agreement`` (share of shared questions answered alike); ``kappa``
        (Cohen's kappa over categories A/B/C, equal to ``sklearn.metrics.cohen_kappa_score`` on
        the same label lists; NaN where undefined, e.g. both answered one same option throughout);
        ``n_shared`` (int). Agreement and kappa are NaN for pairs with no shared question.

    Examples
    --------
    >>> one_hot = np.eye(3)
    >>> probs = np.stack([one_hot[[0, 0, 1, 1]], one_hot[[1, 1, 0, 0]]])
    >>> m = AnswerMatrix(["r1", "r2"], ["persona"] * 2, ["q1", "q2", "q3", "q4"],
    ...                  np.array([1, 1, 1, 1]), probs)
    >>> out = agreement(m)
    >>> out["agreement"].tolist(), out["kappa"].tolist()
    ([[1.0, 0.0], [0.0, 1.0]], [[1.0, -1.0], [-1.0, 1.0]])
    """
    by_option, answered = _matrix_probs(m, dimension)
    r, _, q = by_option.shape
    p_a, p_b, p_c = by_option[:, 0, :], by_option[:, 1, :], by_option[:, 2, :]
    is_a = (p_a >= p_b) & (p_a >= p_c) & answered  # argmax, the first option winning a tie
    is_b = ~is_a & (p_b >= p_c) & answered
    is_c = answered & ~is_a & ~is_b
    one_hot = np.stack([is_a, is_b, is_c], axis=1).astype(float)  # (R, 3, Q)
    n = _count_shared(answered)
    # same[i, j] = sum_k one_hot[i, k] . one_hot[j, k]; marginals via the shared-question sums.
    same = np.rint(sum(one_hot[:, k, :] @ one_hot[:, k, :].T for k in range(3))).astype(np.int64)
    marg_i = np.rint(_pair_sums(one_hot, answered)).astype(np.int64)  # (R, R, 3): i's counts
    marg_j = marg_i.transpose(1, 0, 2)
    chance = (marg_i * marg_j).sum(axis=2)  # n^2 * expected agreement, exact in integers
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(n > 0, same / n, np.nan)
        denom = n * n - chance
        kappa = np.where((n > 0) & (denom > 0), 1.0 - n * (n - same) / denom, np.nan)
    return {"respondents": list(m.respondents), "agreement": agree, "kappa": kappa,
            "n_shared": n}


def bootstrap_positions(m: AnswerMatrix, respondent: str, *, n_boot: int = 200,
                        seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of one respondent's 5-D position.

    Within each dimension the respondent's answered questions are resampled with replacement
    (stratified by dimension) and the position ``E[n_B] / (E[n_A] + E[n_B])`` is recomputed.

    Parameters
    ----------
    m : AnswerMatrix
        The answers.
    respondent : str
        A name in ``m.respondents``.
    n_boot : int, default 200
        Number of replicates (>= 1).
    seed : int, default 0
        Seed of ``numpy.random.default_rng``; the same seed gives the same replicates.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_boot, 5)``; column ``d - 1`` is dimension ``d``. NaN where a dimension has no
        answered question or a replicate drew only N/A answers.

    Examples
    --------
    >>> probs = np.tile(np.eye(3)[[0, 1]], (5, 1))[None]  # A, B alternating over 10 questions
    >>> m = AnswerMatrix(["r1"], ["persona"], [f"q{i}" for i in range(10)],
    ...                  np.repeat(np.arange(1, 6), 2), probs)
    >>> boot = bootstrap_positions(m, "r1", n_boot=50, seed=1)
    >>> boot.shape, bool(((boot == 0) | (boot == 0.5) | (boot == 1)).all())
    ((50, 5), True)
    """
    names = list(m.respondents)
    if respondent not in names:
        raise FairppError(f"respondent={respondent!r} is not in the answer matrix; pass one of "
                          f"{names}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise FairppError(f"n_boot={n_boot!r} must be a positive integer, e.g. n_boot=200.")
    by_option, answered = _matrix_probs(m, None, row=names.index(respondent))
    dims = np.asarray(m.dimension).astype(int)
    rng = np.random.default_rng(seed)
    out = np.full((int(n_boot), len(DIMENSIONS)), np.nan)
    for col, d in enumerate(DIMENSIONS):
        idx = np.flatnonzero(answered[0] & (dims == d))
        if idx.size == 0:
            continue
        p_a, p_b = by_option[0, 0, idx], by_option[0, 1, idx]  # expected A and B per question
        draw = rng.integers(0, idx.size, size=(int(n_boot), idx.size))  # resample within d
        sum_a, sum_b = p_a[draw].sum(axis=1), p_b[draw].sum(axis=1)
        total = sum_a + sum_b
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, col] = np.where(total > 0, sum_b / total, np.nan)
    return out
