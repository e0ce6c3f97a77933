"""Projections of the preference space: a frozen PCA, UMAP for finer units, the paper's answer PCA.

* :class:`FrozenPCA` is fitted once on the reference respondents and then only transforms, so the
  map does not move when a newly probed model is placed on it.
* :func:`umap_embed` is a second view for finer units (respondent x slice). It imports ``umap``
  lazily; the first fit in a process spends 15-25 s compiling with numba, so never call it in a
  request path unannounced.
* :func:`answer_pca` is the paper-compatible view: PCA over respondents of every question answered by
  all of them, with answers one-hot encoded (C is not "more B than B").
* :func:`nearest` ranks respondents by Euclidean distance to a target in the 5-D position space.

scikit-learn is imported inside the functions that use it, keeping ``import fairpp.space`` cheap.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from fairpp.schema import AnswerMatrix, FairppError

__all__ = ["FrozenPCA", "umap_embed", "answer_pca", "nearest"]

logger = logging.getLogger(__name__)

_DICT_VERSION = 1
_DIMENSIONS = (1, 2, 3, 4, 5)


def _pc_names(k: int) -> list[str]:
    return [f"PC{i + 1}" for i in range(k)]


def _check_components(n_components: Any, limit: int, what: str) -> int:
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)) \
            or not 1 <= n_components <= limit:
        raise FairppError(f"n_components={n_components!r} is out of range for {what}; pass an "
                          f"integer from 1 to {limit}.")
    return int(n_components)


class FrozenPCA:
    """A PCA fitted once on reference points, then only used to place points.

    Build one with :meth:`fit` (a class method) or :meth:`from_dict`; :meth:`transform` never
    refits, so adding a point never moves the others.

    Attributes
    ----------
    features : list
        The column labels fitted on (e.g. dimensions ``1..5``); :meth:`transform` selects them.
    mean : numpy.ndarray
        Mean of the reference points, shape ``(n_features,)``.
    components : numpy.ndarray
        Principal axes, shape ``(n_components, n_features)``.
    explained_variance_ratio : numpy.ndarray
        Share of the reference variance each component explains.
    n_samples : int
        Number of reference points.

    Examples
    --------
    >>> ref = pd.DataFrame([[0.1, 0.2, 0.3], [0.4, 0.4, 0.1], [0.9, 0.5, 0.6], [0.3, 0.8, 0.2]],
    ...                    columns=[1, 2, 3], index=["a", "b", "c", "d"])
    >>> pca = FrozenPCA.fit(ref, n_components=2)
    >>> new = pd.DataFrame([[0.5, 0.5, 0.5]], columns=[1, 2, 3], index=["probe"])
    >>> pca.transform(new).columns.tolist()
    ['PC1', 'PC2']
    >>> FrozenPCA.from_dict(pca.to_dict()).transform(ref).equals(pca.transform(ref))
    True
    """

    def __init__(self, *, features: list[Any], mean: Any, components: Any,
                 explained_variance_ratio: Any, n_samples: int = 0) -> None:
        self.features = list(features)
        self.mean = np.asarray(mean, dtype=float)
        self.components = np.asarray(components, dtype=float)
        self.explained_variance_ratio = np.asarray(explained_variance_ratio, dtype=float)
        self.n_samples = int(n_samples)
        k = self.components.shape[0] if self.components.ndim == 2 else -1
        if self.components.ndim != 2 or self.components.shape[1] != len(self.features) \
                or self.mean.shape != (len(self.features),) \
                or self.explained_variance_ratio.shape != (k,):
            raise FairppError("FrozenPCA got inconsistent shapes for features, mean, components "
                              "and explained_variance_ratio; build it with FrozenPCA.fit(points).")

    def __repr__(self) -> str:
        return (f"FrozenPCA(n_components={self.components.shape[0]}, features={self.features}, "
                f"n_samples={self.n_samples})")

    @classmethod
    def fit(cls, points: pd.DataFrame, *, n_components: int = 2) -> "FrozenPCA":
        """Fit on the reference points (rows = units, columns = features) and freeze.

        Uses ``sklearn.decomposition.PCA`` with the exact (full SVD) solver. ``points`` must hold
        finite numbers; column labels must be ``int`` or ``str`` so that :meth:`to_dict` is
        JSON-safe.
        """
        from sklearn.decomposition import PCA

        x = _numeric(points, "points")
        labels = list(points.columns)
        if not all(isinstance(c, (int, np.integer, str)) and not isinstance(c, bool)
                   for c in labels):
            raise FairppError(f"points has column labels {labels}; use int or str labels (e.g. "
                              "dimensions 1..5) so the fitted PCA can be saved as JSON.")
        if x.shape[0] < 2:
            raise FairppError(f"points has {x.shape[0]} row(s); PCA needs at least 2 reference "
                              "points.")
        k = _check_components(n_components, min(x.shape), f"{x.shape[0]} points x "
                              f"{x.shape[1]} features")
        pca = PCA(n_components=k, svd_solver="full").fit(x)
        return cls(features=[int(c) if isinstance(c, np.integer) else c for c in labels],
                   mean=pca.mean_, components=pca.components_,
                   explained_variance_ratio=pca.explained_variance_ratio_, n_samples=x.shape[0])

    def transform(self, points: pd.DataFrame) -> pd.DataFrame:
        """Place points on the frozen axes; never refits.

        Returns a frame with columns ``PC1..PCk`` and the index of ``points``.
        """
        if not isinstance(points, pd.DataFrame):
            raise FairppError(f"points must be a pandas DataFrame; got {type(points).__name__}.")
        missing = [c for c in self.features if c not in points.columns]
        if missing:
            raise FairppError(f"points lacks column(s) {missing} that the PCA was fitted on; "
                              f"pass columns {self.features}.")
        x = _numeric(points[self.features], "points")
        coords = (x - self.mean) @ self.components.T
        return pd.DataFrame(coords, index=points.index, columns=_pc_names(coords.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict from which :meth:`from_dict` rebuilds the same projection."""
        return {
            "version": _DICT_VERSION,
            "features": list(self.features),
            "mean": self.mean.tolist(),
            "components": self.components.tolist(),
            "explained_variance_ratio": self.explained_variance_ratio.tolist(),
            "n_samples": self.n_samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FrozenPCA":
        """Rebuild a projection saved with :meth:`to_dict`."""
        keys = ("features", "mean", "components", "explained_variance_ratio")
        if not isinstance(data, dict) or any(k not in data for k in keys):
            raise FairppError(f"data is not a saved FrozenPCA; it needs keys {list(keys)} as "
                              "written by FrozenPCA.to_dict().")
        if data.get("version", _DICT_VERSION) != _DICT_VERSION:
            raise FairppError(f"data has version {data.get('version')!r}; this fairpp reads "
                              f"version {_DICT_VERSION}; refit the PCA.")
        return cls(features=data["features"], mean=data["mean"], components=data["components"],
                   explained_variance_ratio=data["explained_variance_ratio"],
                   n_samples=data.get("n_samples", 0))


def _numeric(points: pd.DataFrame, name: str) -> np.ndarray:
    if not isinstance(points, pd.DataFrame):
        raise FairppError(f"{name} must be a pandas DataFrame; got {type(points).__name__}.")
    try:
        x = points.to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError) as err:
        raise FairppError(f"{name} must hold numbers only; {err}") from err
    if x.size and not np.isfinite(x).all():
        raise FairppError(f"{name} has NaN or infinite values in {int((~np.isfinite(x)).sum())} "
                          "cell(s); drop incomplete rows first (unit_vectors does).")
    return x


def umap_embed(x: np.ndarray, *, n_components: int = 2, seed: int = 0, n_neighbors: int = 15,
               min_dist: float = 0.1) -> np.ndarray:
    """UMAP embedding of finer units (e.g. respondent x specific problem), seeded.

    ``umap`` is imported here; the first call in a process spends 15-25 s on numba compilation.
    ``n_neighbors`` is clipped to ``n_samples - 1``.

    Parameters
    ----------
    x : numpy.ndarray
        Points, shape ``(n_samples, n_features)``, finite, at least 4 rows.
    n_components : int, default 2
        Output dimensionality.
    seed : int, default 0
        ``random_state`` of UMAP (makes it deterministic and single-threaded).
    n_neighbors : int, default 15
        Size of the local neighbourhood (>= 2).
    min_dist : float, default 0.1
        Minimum distance between embedded points (>= 0).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_samples, n_components)``.

    Examples
    --------
    >>> umap_embed(np.zeros((3, 5)))
    Traceback (most recent call last):
    ...
    fairpp.schema.FairppError: x has 3 row(s); UMAP needs at least 4 ...
    """
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2:
        raise FairppError(f"x must be a 2-D array (points x features); got shape {arr.shape}.")
    if arr.shape[0] < 4:
        raise FairppError(
            f"x has {arr.shape[0]} row(s); UMAP needs at least 4 points, and on a handful of "
            "respondent-level points it is meaningless. Use finer units, e.g. "
            "unit_vectors(..., unit=['specific_problem']) for respondent x specific problem."
        )
    if not np.isfinite(arr).all():
        raise FairppError("x has NaN or infinite values; drop incomplete rows first.")
    k = _check_components(n_components, arr.shape[0] - 2, f"{arr.shape[0]} points")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) \
            or n_neighbors < 2:
        raise FairppError(f"n_neighbors={n_neighbors!r} must be an integer >= 2, e.g. 15.")
    if not isinstance(min_dist, (int, float)) or min_dist < 0:
        raise FairppError(f"min_dist={min_dist!r} must be a number >= 0, e.g. 0.1.")
    import umap  # lazy: heavy import and numba JIT

    neighbours = min(int(n_neighbors), arr.shape[0] - 1)
    logger.info("UMAP on %d points (n_neighbors=%d, seed=%s)", arr.shape[0], neighbours, seed)
    reducer = umap.UMAP(n_components=k, n_neighbors=neighbours, min_dist=float(min_dist),
                        random_state=seed, n_jobs=1)
    return np.asarray(reducer.fit_transform(arr), dtype=float)


def answer_pca(m: AnswerMatrix, *, n_components: int = 2) -> pd.DataFrame:
    """Paper-compatible PCA over respondents of their one-hot encoded answers.

    Uses every question answered by all respondents in ``m``; each answer contributes its
    (A, B, C) probabilities (one-hot for a plain answer, the probabilities for a soft one).

    Parameters
    ----------
    m : AnswerMatrix
        The answers; at least 2 respondents.
    n_components : int, default 2
        Number of components (at most the number of respondents).

    Returns
    -------
    pandas.DataFrame
        Index = respondents, columns ``PC1..PCk``; ``attrs["n_questions"]`` is the number of
        questions used and ``attrs["explained_variance_ratio"]`` a list per component.

    Examples
    --------
    >>> probs = np.eye(3)[[[0, 1, 2, 0], [0, 1, 2, 1], [2, 2, 0, 0]]]
    >>> m = AnswerMatrix(["a", "b", "c"], ["persona"] * 3, ["q1", "q2", "q3", "q4"],
    ...                  np.array([1, 2, 3, 4]), probs)
    >>> out = answer_pca(m)
    >>> out.shape, out.attrs["n_questions"]
    ((3, 2), 4)
    """
    from sklearn.decomposition import PCA

    probs = np.asarray(m.probs, dtype=float)
    if probs.ndim != 3 or probs.shape[2] != 3 or probs.shape[0] != len(m.respondents):
        raise FairppError(f"m.probs must have shape (R, Q, 3) with R = {len(m.respondents)} "
                          f"respondents; got {probs.shape}.")
    if probs.shape[0] < 2:
        raise FairppError(f"m has {probs.shape[0]} respondent(s); answer_pca needs at least 2.")
    shared = ~np.isnan(probs).any(axis=2).any(axis=0)
    n_q = int(shared.sum())
    if n_q == 0:
        raise FairppError("no question was answered by every respondent in m; drop respondents "
                          "that answered only a split (e.g. probed models) or use FrozenPCA.")
    x = probs[:, shared, :].reshape(probs.shape[0], n_q * 3)
    k = _check_components(n_components, min(x.shape), f"{x.shape[0]} respondents")
    pca = PCA(n_components=k, svd_solver="full")
    coords = pca.fit_transform(x)
    out = pd.DataFrame(coords, index=pd.Index(list(m.respondents), name="respondent"),
                       columns=_pc_names(k))
    out.attrs["n_questions"] = n_q
    out.attrs["explained_variance_ratio"] = pca.explained_variance_ratio_.tolist()
    return out


def nearest(points: pd.DataFrame, *, target: str, candidates: list[str]) -> pd.DataFrame:
    """Euclidean distances in the 5-D position space from ``target`` to each candidate.

    Parameters
    ----------
    points : pandas.DataFrame
        Rows indexed by respondent name (or a MultiIndex with a ``respondent`` level, such as
        :func:`fairpp.space.unit_vectors` with ``unit=[]``), columns ``1..5``.
    target : str
        The respondent to measure from.
    candidates : list of str
        The respondents to measure to (the target itself, if listed, gets distance 0).

    Returns
    -------
    pandas.DataFrame
        Columns ``respondent, distance``, sorted ascending (NaN distances last).

    Examples
    --------
    >>> pts = pd.DataFrame([[0.5] * 5, [0.6] * 5, [0.1] * 5], index=["t", "a", "b"],
    ...                    columns=[1, 2, 3, 4, 5])
    >>> nearest(pts, target="t", candidates=["b", "a"]).round(4)
      respondent  distance
    0          a    0.2236
    1          b    0.8944
    """
    if not isinstance(points, pd.DataFrame):
        raise FairppError(f"points must be a pandas DataFrame; got {type(points).__name__}.")
    missing = [d for d in _DIMENSIONS if d not in points.columns]
    if missing:
        raise FairppError(f"points lacks dimension column(s) {missing}; it needs integer columns "
                          "1..5 holding positions (see fairpp.space.unit_vectors).")
    labels = points.index
    if isinstance(labels, pd.MultiIndex) and "respondent" in labels.names:
        labels = labels.get_level_values("respondent")
    if not labels.is_unique:
        raise FairppError("points has repeated respondent names; pass one row per respondent "
                          "(e.g. unit_vectors(..., unit=[])).")
    xyz = pd.DataFrame(points[list(_DIMENSIONS)].to_numpy(dtype=float), index=labels)
    if isinstance(candidates, str):
        raise FairppError(f"candidates={candidates!r} must be a list of names, not one string.")
    unknown = [c for c in [target, *candidates] if c not in xyz.index]
    if unknown:
        raise FairppError(f"{unknown} not found in points; choose target and candidates from "
                          f"{list(xyz.index)}.")
    diff = xyz.loc[list(candidates)].to_numpy() - xyz.loc[target].to_numpy()
    dist = np.sqrt((diff ** 2).sum(axis=1))  # NaN when either point has a NaN coordinate
    out = pd.DataFrame({"respondent": list(candidates), "distance": dist})
    return out.sort_values("distance", kind="stable", na_position="last").reset_index(drop=True)
