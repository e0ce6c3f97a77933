"""One call per question a user asks: store queries plus the science of :mod:`fairpp.space`.

Pages and the command line call these; they hold no SQL and no formulas of their own.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from fairpp import space
from fairpp.schema import FairppError, SLICE_COLUMNS
from fairpp.store import Filters, Store

__all__ = ["positions", "distances", "agreement", "parse_slices", "unit_points", "reference_map"]

#: The finer units a cluster map can use (respondent x slice).
UNITS = ("specific_problem", "problem_category", "group_name", "group_type")


def parse_slices(items: Sequence[str]) -> dict[str, list[str]]:
    """Turn ``["topic=fair rewards", "dimension=2"]`` into filters.

    >>> parse_slices(["topic=fair rewards", "topic=tax", "dimension=2"])
    {'topic': ['fair rewards', 'tax'], 'dimension': ['2']}
    """
    out: dict[str, list[str]] = {}
    for item in items:
        col, sep, value = item.partition("=")
        col = col.strip().replace(" ", "_").lower()
        col = "group_name" if col == "group" else col
        if not sep or col not in SLICE_COLUMNS:
            raise FairppError(f"--slice {item!r}: write COLUMN=VALUE with COLUMN one of "
                              f"{', '.join(SLICE_COLUMNS)} (group is accepted for group_name)")
        out.setdefault(col, []).append(value.strip())
    return out


def positions(store: Store, filters: Filters | None = None, *, by: Sequence[str] = (),
              respondents: Sequence[str] | None = None) -> pd.DataFrame:
    """Positions with 95% Wilson intervals and N/A rates, per respondent x dimension (x ``by``)."""
    counts = store.counts(filters, by=by, respondents=respondents)
    return space.positions(counts)


def distances(store: Store, filters: Filters | None = None, *, base: float = 2.0,
              dimension: int | None = None, respondents: Sequence[str] | None = None) -> dict[str, Any]:
    """Jensen-Shannon distances over the questions each pair shares (base 2 by default)."""
    m = store.answer_matrix(filters, respondents=respondents)
    out = space.js_distances(m, base=base, dimension=dimension)
    out["base"] = "2" if base == 2 else "e" if math.isclose(base, math.e) else str(base)
    return out


def agreement(store: Store, filters: Filters | None = None, *, dimension: int | None = None,
              respondents: Sequence[str] | None = None) -> dict[str, Any]:
    """Question-level agreement and Cohen's kappa over the questions each pair shares."""
    m = store.answer_matrix(filters, respondents=respondents)
    return space.agreement(m, dimension=dimension)


def point_table(pos: pd.DataFrame) -> pd.DataFrame:
    """Respondent-level positions as a wide table: index respondent, columns dimensions 1..5."""
    return pos.pivot(index="respondent", columns="dimension", values="position")


def unit_points(store: Store, filters: Filters | None = None, *, unit: str,
                respondents: Sequence[str] | None = None) -> pd.DataFrame:
    """5-D points per respondent x ``unit`` (a finer unit such as ``specific_problem``)."""
    if unit not in UNITS:
        raise FairppError(f"unit {unit!r}: use one of {', '.join(UNITS)}")
    pos = positions(store, filters, by=[unit], respondents=respondents)
    return space.unit_vectors(pos, unit=[unit])


def reference_map(points: pd.DataFrame, *, reference: Sequence[str], n_components: int = 2
                  ) -> tuple[space.FrozenPCA, pd.DataFrame]:
    """Fit PCA on the reference respondents' points, freeze it, and place every point on it."""
    ref = points.loc[[r for r in reference if r in points.index]].dropna()
    if len(ref) < 2:
        raise FairppError("a map needs at least two reference respondents with positions on every dimension")
    pca = space.FrozenPCA.fit(ref, n_components=min(n_components, len(ref) - 1, ref.shape[1]))
    placed = pca.transform(points.dropna())
    return pca, placed


def matrix_frame(result: dict[str, Any], key: str) -> pd.DataFrame:
    """A square result (distances, agreement, kappa) as a labelled frame."""
    names = result["respondents"]
    return pd.DataFrame(np.asarray(result[key], dtype=float), index=names, columns=names)
