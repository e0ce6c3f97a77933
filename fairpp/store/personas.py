"""User-defined personas and question-bank builds in the store.

Tables (created on first write, beside those of :mod:`fairpp.store.core`):

``personas``
    user-defined personas: ``name`` (unique), ``portrayal`` (the role-play system prompt's description),
    ``description`` (optional one line), ``created_at``. The seven built-in personas live in the packaged
    taxonomy, not here.

Question-bank builds add rows to ``questions`` under a ``sources`` row of kind ``bank`` and role ``extra``,
so loading another dataset keeps them. Generation runs (through the probe engine) are marked as respondent
kind ``custom`` with :meth:`PersonaStore.mark_custom`.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from fairpp.schema import QUESTION_COLUMNS, FairppError

__all__ = ["PersonaStore"]

_DDL = """
CREATE TABLE IF NOT EXISTS personas (
    name TEXT PRIMARY KEY, portrayal TEXT NOT NULL, description TEXT, created_at TIMESTAMP
);
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class PersonaStore:
    """Personas and bank questions of a :class:`fairpp.store.Store` (a cursor per call)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def _has_table(self) -> bool:
        with self.store.cursor() as cur:
            return bool(cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'personas'"
                                    ).fetchall()[0][0])

    def _ensure(self, cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(_DDL)

    # -- personas -------------------------------------------------------------------------------------
    def list(self) -> pd.DataFrame:
        """User-defined personas (``name, portrayal, description, created_at``), oldest first."""
        if not self._has_table():
            return pd.DataFrame(columns=["name", "portrayal", "description", "created_at"])
        with self.store.cursor() as cur:
            return cur.execute("SELECT name, portrayal, description, created_at FROM personas ORDER BY created_at, name"
                               ).df()

    def get(self, name: str) -> dict[str, Any] | None:
        """One user-defined persona by exact name, or ``None``."""
        if not self._has_table():
            return None
        with self.store.cursor() as cur:
            rows = cur.execute("SELECT name, portrayal, description FROM personas WHERE name = ?", [name]).fetchall()
        return dict(zip(("name", "portrayal", "description"), rows[0])) if rows else None

    def add(self, name: str, portrayal: str, description: str | None = None, *, replace: bool = False) -> None:
        """Add (or with ``replace`` overwrite) a persona; raises :class:`FairppError` if it exists."""
        with self.store.cursor() as cur:
            self._ensure(cur)
            cur.execute("BEGIN TRANSACTION")
            try:
                have = cur.execute("SELECT 1 FROM personas WHERE name = ?", [name]).fetchall()
                if have and not replace:
                    raise FairppError(f"persona {name!r} already exists; remove it first or pass --replace.")
                cur.execute("INSERT OR REPLACE INTO personas VALUES (?, ?, ?, ?)", [name, portrayal, description, _now()])
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise

    def remove(self, name: str) -> bool:
        """Remove a user-defined persona (its generated answers stay); ``True`` if it existed."""
        if not self._has_table():
            return False
        with self.store.cursor() as cur:
            n = cur.execute("DELETE FROM personas WHERE name = ? RETURNING name", [name]).fetchall()
        return bool(n)

    def mark_custom(self, respondent: str, *, description: str | None = None) -> None:
        """Give a respondent (a generation run's) the kind ``custom`` (a role-played or user persona)."""
        with self.store.cursor() as cur:
            cur.execute("UPDATE respondents SET kind = 'custom', description = coalesce(?, description)"
                        " WHERE respondent = ?", [description, respondent])

    # -- question bank --------------------------------------------------------------------------------
    def add_questions(self, questions: pd.DataFrame, *, label: str, sha256: str) -> dict[str, Any]:
        """Insert the questions not already stored, in one transaction, under a ``bank``/``extra`` source.

        Idempotent: questions already present (by content id) are left as they are; without new questions
        no source row is added. Returns ``questions`` (given), ``added``, ``existing``, ``source_id``.
        """
        q = questions[QUESTION_COLUMNS]
        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                cur.register("bank_in", q)
                new = cur.execute("SELECT count(*) FROM bank_in WHERE question_id NOT IN "
                                  "(SELECT question_id FROM questions)").fetchall()[0][0]
                source_id = None
                if new:
                    source_id = cur.execute(
                        "INSERT INTO sources (kind, role, label, files, sha256, loaded_at, synthetic, rows_read,"
                        " rows_rejected, active) VALUES ('bank', 'extra', ?, ?, ?, ?, false, ?, 0, true)"
                        " RETURNING source_id",
                        [label, json.dumps([]), sha256, _now(), int(new)]).fetchall()[0][0]
                    cols = ", ".join(QUESTION_COLUMNS)
                    cur.execute(f"INSERT INTO questions ({cols}, source_id) SELECT {cols}, ? FROM bank_in"
                                " WHERE question_id NOT IN (SELECT question_id FROM questions)", [source_id])
                cur.unregister("bank_in")
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return {"questions": len(q), "added": int(new), "existing": len(q) - int(new), "source_id": source_id}

    # -- batch results --------------------------------------------------------------------------------
    def write_batch_results(self, answers: list[tuple], requests: list[tuple]) -> None:
        """Store the answers and request-log rows of an ingested batch output, all runs in one transaction.

        Rows follow :data:`fairpp.store.runs.ANSWER_FIELDS` and :data:`fairpp.store.runs.REQUEST_FIELDS`;
        each answer goes under its run's ``extra`` source. On any error nothing is written.
        """
        import pyarrow as pa

        from fairpp.store.runs import ANSWER_FIELDS, REQUEST_FIELDS

        def table(names: tuple[str, ...], rows: list[tuple]) -> pa.Table:
            return pa.table({n: pa.array([r[i] for r in rows]) for i, n in enumerate(names)})

        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                if answers:
                    cur.register("batch_answers", table(ANSWER_FIELDS, answers))
                    cols = ", ".join(f"a.{c}" for c in ANSWER_FIELDS)
                    cur.execute(f"INSERT INTO answers SELECT {cols}, r.source_id FROM batch_answers a"
                                " JOIN probe_runs r USING (run_id)")
                    cur.unregister("batch_answers")
                if requests:
                    cur.register("batch_requests", table(REQUEST_FIELDS, requests))
                    cur.execute("INSERT INTO probe_requests SELECT * FROM batch_requests")
                    cur.unregister("batch_requests")
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
