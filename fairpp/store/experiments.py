"""Trained-model answers and alignment experiments in the store (``fairpp train`` / ``evaluate`` / ``compare``).

A trained (or base, or role-played) model's answers are stored like any respondent's: respondent kind
``custom`` (so every page sees it), ``provenance`` the evaluation card as JSON (which holds the training
run card), the answers under a ``sources`` row of kind ``train`` and role ``extra`` (loading another
dataset keeps them, as it keeps probe runs). Re-evaluating the same respondent name replaces its answers.

One extra table, created on first use:

``train_experiments``
    one row per saved comparison: ``experiment_id`` (a name), ``target``, ``created_at``, ``conditions``
    (JSON: condition label -> respondent) and ``card`` (the whole comparison as JSON: distances,
    agreement, intervals, positions), so a page can show any stored experiment without recomputing it.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Mapping

import duckdb
import numpy as np
import pandas as pd

from fairpp.schema import FairppError
from fairpp.store.core import Store, StoreError

__all__ = ["save_model_answers", "save_experiment", "list_experiments", "get_experiment", "delete_experiment"]

_DDL = """
CREATE TABLE IF NOT EXISTS train_experiments (
    experiment_id TEXT PRIMARY KEY, target TEXT, created_at TIMESTAMP, conditions TEXT, card TEXT
);
"""
_ANSWER_COLUMNS = ("question_id", "answer", "p_a", "p_b", "p_c", "raw")


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def save_model_answers(store: Store, answers: pd.DataFrame, *, respondent: str, run_id: str,
                       description: str | None = None, provenance: Mapping[str, Any] | None = None,
                       label: str | None = None, synthetic: bool = False) -> dict[str, Any]:
    """Store a model's answers as respondent ``respondent`` (kind ``custom``), replacing earlier ones.

    ``answers`` has ``question_id, answer`` (A/B/C/unparsed/refused) and optionally ``p_a, p_b, p_c, raw``.
    Every question must already be in the store. One transaction: on any error nothing changes.
    Returns ``{"respondent", "source_id", "answers", "replaced"}``.

    >>> s = Store(":memory:")
    >>> save_model_answers(s, pd.DataFrame({"question_id": [1], "answer": ["A"]}), respondent="m", run_id="r")
    Traceback (most recent call last):
    ...
    fairpp.store.core.StoreError: 1 answer(s) are to questions not in the store (e.g. 1); load the dataset first.
    """
    if not str(respondent).strip():
        raise StoreError("respondent must be a non-empty name; pass --respondent NAME.")
    frame = answers.copy()
    for c in _ANSWER_COLUMNS:
        if c not in frame.columns:
            frame[c] = None
    frame = frame[list(_ANSWER_COLUMNS)]
    bad = set(frame["answer"].astype(str)) - {"A", "B", "C", "unparsed", "refused"}
    if bad:
        raise StoreError(f"answers must be A, B, C, unparsed or refused; got {sorted(bad)[:5]}.")
    if frame["question_id"].duplicated().any():
        raise StoreError("answers hold the same question twice; keep one answer per question.")
    frame["question_id"] = frame["question_id"].astype(np.int64)
    frame = frame.assign(respondent=str(respondent), run_id=str(run_id), sample=0)
    with store.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            cur.register("m_in", frame)
            missing = cur.execute("SELECT count(*), min(question_id) FROM m_in WHERE question_id NOT IN "
                                  "(SELECT question_id FROM questions)").fetchall()[0]
            if missing[0]:
                raise StoreError(f"{missing[0]} answer(s) are to questions not in the store (e.g. {missing[1]}); "
                                 "load the dataset first.")
            kind = cur.execute("SELECT kind FROM respondents WHERE respondent = ?", [respondent]).fetchall()
            if kind and kind[0][0] != "custom":
                raise StoreError(f"respondent {respondent!r} already exists as a {kind[0][0]}; choose another "
                                 "--respondent name.")
            old = cur.execute("SELECT count(*) FROM answers WHERE respondent = ?", [respondent]).fetchall()[0][0]
            cur.execute("DELETE FROM answers WHERE respondent = ?", [respondent])
            cur.execute("DELETE FROM sources WHERE kind = 'train' AND role = 'extra' AND source_id NOT IN "
                        "(SELECT DISTINCT source_id FROM answers WHERE source_id IS NOT NULL)")
            source_id = cur.execute(
                "INSERT INTO sources (kind, role, label, files, sha256, loaded_at, synthetic, rows_read, rows_rejected,"
                " active) VALUES ('train', 'extra', ?, '[]', NULL, ?, ?, ?, 0, true) RETURNING source_id",
                [label or f"trained-model answers: {respondent}", _now(), bool(synthetic), len(frame)],
            ).fetchall()[0][0]
            cur.execute(
                "INSERT INTO respondents VALUES (?, 'custom', NULL, NULL, ?, ?, ?) ON CONFLICT (respondent) DO UPDATE "
                "SET kind = excluded.kind, description = excluded.description, "
                "provenance = excluded.provenance, source_id = excluded.source_id",
                [respondent, description, json.dumps(dict(provenance or {}), sort_keys=True, default=str), source_id])
            cur.execute("INSERT INTO answers SELECT question_id, respondent, answer, p_a, p_b, p_c, raw, run_id,"
                        " sample, ? FROM m_in", [source_id])
            cur.unregister("m_in")
            cur.execute("COMMIT")
        except (duckdb.Error, FairppError):
            cur.execute("ROLLBACK")
            raise
    return {"respondent": respondent, "source_id": int(source_id), "answers": int(len(frame)), "replaced": int(old)}


def _ensure(store: Store) -> None:
    with store.cursor() as cur:
        cur.execute(_DDL)


def _has_table(store: Store) -> bool:
    with store.cursor() as cur:
        rows = cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'train_experiments'"
                           ).fetchall()
    return bool(rows[0][0])


def save_experiment(store: Store, experiment_id: str, card: Mapping[str, Any]) -> None:
    """Save (or replace) a comparison under ``experiment_id``; ``card`` is what :func:`compare_conditions` returns."""
    if not str(experiment_id).strip():
        raise StoreError("an experiment needs a non-empty name; pass --save NAME.")
    _ensure(store)
    conditions = {c["condition"]: c["respondent"] for c in card.get("conditions", [])}
    with store.cursor() as cur:
        cur.execute("INSERT OR REPLACE INTO train_experiments VALUES (?, ?, ?, ?, ?)",
                    [str(experiment_id), card.get("target"), _now(), json.dumps(conditions),
                     json.dumps(dict(card), default=str)])


def list_experiments(store: Store) -> pd.DataFrame:
    """Saved experiments, newest first: ``experiment_id, target, created_at, conditions`` (JSON text).

    >>> list_experiments(Store(":memory:")).empty
    True
    """
    if not _has_table(store):
        return pd.DataFrame(columns=["experiment_id", "target", "created_at", "conditions"])
    with store.cursor() as cur:
        return cur.execute("SELECT experiment_id, target, created_at, conditions FROM train_experiments"
                           " ORDER BY created_at DESC, experiment_id").df()


def get_experiment(store: Store, experiment_id: str) -> dict[str, Any]:
    """The saved comparison card of ``experiment_id``."""
    rows = []
    if _has_table(store):
        with store.cursor() as cur:
            rows = cur.execute("SELECT card FROM train_experiments WHERE experiment_id = ?",
                               [str(experiment_id)]).fetchall()
    if not rows:
        raise StoreError(f"no experiment {experiment_id!r}; list them with `fairpp compare --list`.")
    return json.loads(rows[0][0])


def delete_experiment(store: Store, experiment_id: str) -> None:
    """Remove a saved comparison (the respondents and their answers stay)."""
    get_experiment(store, experiment_id)
    with store.cursor() as cur:
        cur.execute("DELETE FROM train_experiments WHERE experiment_id = ?", [str(experiment_id)])
