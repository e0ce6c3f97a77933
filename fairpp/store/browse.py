"""Queries behind the dashboard's overview and question browser (bound parameters only).

>>> from fairpp.store import Store
>>> question_counts(Store(":memory:"), by=["topic"]).columns.tolist()
['topic', 'n']
"""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from fairpp.store.core import Filters, Store, StoreError, _column, _where

__all__ = ["question_counts", "question_page", "SORTS"]

#: Orders of the question browser: most divided personas first, or the taxonomy order.
SORTS = ("divided", "taxonomy")

_TAXONOMY_ORDER = ("q.topic, q.problem_category, q.specific_problem, q.group_type, q.group_name, q.dimension, "
                   "q.template, q.question_id")


def question_counts(store: Store, filters: Filters | None = None, *, by: Sequence[str]) -> pd.DataFrame:
    """Number of questions per combination of the ``by`` columns, under the filters.

    Returns columns ``*by, n`` ordered by ``by``.
    """
    cols = [_column(c) for c in by]
    if not cols:
        raise StoreError("by must name at least one column, e.g. by=['topic']")
    where, params = _where(filters)
    sel = ", ".join(f"q.{c}" for c in cols)
    with store.cursor() as cur:
        return cur.execute(f"SELECT {sel}, count(*) AS n FROM questions q WHERE {where} GROUP BY ALL ORDER BY {sel}",
                           params).df()


def question_page(store: Store, filters: Filters | None = None, *, search: str | None = None,
                  respondents: Sequence[str] | None = None, sort: str = "divided", limit: int = 50,
                  offset: int = 0) -> tuple[pd.DataFrame, int]:
    """One page of questions with how divided the personas are on each, and the total number matching.

    ``divided`` = 1 - (largest number of personas giving one same answer) / (personas who answered A, B or C);
    ``n_distinct`` = number of different answers among them; both are NULL when no persona answered. Only
    personas (kind ``persona``) count, restricted to ``respondents`` when given. ``search`` matches the text,
    the problem or the group (case-insensitive). ``sort`` is ``divided`` (most divided first) or ``taxonomy``.
    """
    if sort not in SORTS:
        raise StoreError(f"sort={sort!r}: use one of {', '.join(SORTS)}")
    where, params = _where(filters)
    if search:
        where += " AND (q.text ILIKE ? OR q.specific_problem ILIKE ? OR q.group_name ILIKE ?)"
        params += [f"%{search}%"] * 3
    who = "true" if respondents is None else "list_contains(?, a.respondent)"
    who_params = [] if respondents is None else [[str(r) for r in respondents]]
    order = ("divided DESC NULLS LAST, n_distinct DESC NULLS LAST, " if sort == "divided" else "") + _TAXONOMY_ORDER
    sql = f"""
        WITH sel AS (SELECT q.* FROM questions q WHERE {where}),
        per AS (SELECT a.question_id, a.answer, count(DISTINCT a.respondent) AS k
                FROM answers a JOIN respondents r USING (respondent) JOIN sel USING (question_id)
                WHERE r.kind = 'persona' AND a.answer IN ('A', 'B', 'C') AND {who}
                GROUP BY ALL),
        agg AS (SELECT question_id, sum(k) AS n_personas, max(k) AS n_top, count(*) AS n_distinct
                FROM per GROUP BY question_id)
        SELECT q.*, agg.n_personas, agg.n_distinct, 1 - agg.n_top / agg.n_personas AS divided,
               count(*) OVER () AS total
        FROM sel q LEFT JOIN agg USING (question_id)
        ORDER BY {order} LIMIT ? OFFSET ?"""
    with store.cursor() as cur:
        df = cur.execute(sql, params + who_params + [int(limit), int(offset)]).df()
    total = int(df["total"].iloc[0]) if len(df) else _count(store, where, params)
    return df.drop(columns="total"), total


def _count(store: Store, where: str, params: list) -> int:
    with store.cursor() as cur:
        return int(cur.execute(f"SELECT count(*) FROM questions q WHERE {where}", params).fetchall()[0][0])
