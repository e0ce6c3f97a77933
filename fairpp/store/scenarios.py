"""Generated scenario (vignette) questions in the store: their runs and their link to the source question.

Tables (created on first use, beside those of :mod:`fairpp.store.core` and :mod:`fairpp.store.runs`):

``scenario_runs``
    one row per scenario-writing run (``fairpp generate scenarios``): the run card (endpoint host and
    key-free base URL, model, parameters, instruction hash), status, counters, and ``source_id``, the
    ``sources`` row (kind ``bank``, role ``extra``) the generated questions are stored under, so loading
    another dataset keeps them.
``question_links``
    ``question_id`` (a generated question) -> ``source_question_id`` (the template question it was written
    from), ``relation`` (``scenario``), ``run_id``, ``created_at``.

Each stored reply writes its question, its link, its request-log row (``probe_requests``) and its cache row
(``probe_cache``) in one transaction, so a question is either fully stored or not at all. Failed replies
only add a request-log row (status ``bad_vignettes`` with the reason and the raw reply).
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from fairpp.schema import QUESTION_COLUMNS
from fairpp.store.runs import CACHE_FIELDS, REQUEST_FIELDS, RunStore

__all__ = ["ScenarioStore"]

_DDL = """
CREATE TABLE IF NOT EXISTS scenario_runs (
    run_id TEXT PRIMARY KEY, endpoint_host TEXT, base_url TEXT, model TEXT, question_set TEXT,
    n_planned INTEGER, stored INTEGER, failed INTEGER, requests INTEGER, cached INTEGER,
    started_at TIMESTAMP, ended_at TIMESTAMP, sessions INTEGER, status TEXT, source_id INTEGER, card TEXT
);
CREATE TABLE IF NOT EXISTS question_links (
    question_id BIGINT PRIMARY KEY, source_question_id BIGINT NOT NULL, relation TEXT NOT NULL,
    run_id TEXT, created_at TIMESTAMP
);
"""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@contextmanager
def _transaction(store: Any) -> Iterator[Any]:
    """A cursor inside one transaction: committed at the end, rolled back on any error."""
    with store.cursor() as cur:
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
            cur.execute("COMMIT")
        except Exception:
            cur.execute("ROLLBACK")
            raise


class ScenarioStore:
    """Scenario runs and question links of a :class:`fairpp.store.Store` (a cursor per call).

    Examples
    --------
    >>> from fairpp.store import Store
    >>> ScenarioStore(Store(":memory:")).linked_sources("scenario-x")
    set()
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.runs = RunStore(store)  # the request log and cache tables
        with store.cursor() as cur:
            cur.execute(_DDL)

    def start_run(self, card: Mapping[str, Any], *, label: str) -> dict[str, Any]:
        """Create the run and its ``bank``/``extra`` source, or open a new session of it; returns the row."""
        run_id, now = card["run_id"], _now()
        with _transaction(self.store) as cur:
            have = cur.execute("SELECT 1 FROM scenario_runs WHERE run_id = ?", [run_id]).fetchall()
            if have:
                cur.execute("UPDATE scenario_runs SET sessions = sessions + 1, status = 'running', ended_at = NULL,"
                            " n_planned = ?, card = ? WHERE run_id = ?",
                            [card.get("n_planned"), json.dumps(dict(card), sort_keys=True, default=str), run_id])
            else:
                source_id = cur.execute(
                    "INSERT INTO sources (kind, role, label, files, sha256, loaded_at, synthetic, rows_read,"
                    " rows_rejected, active) VALUES ('bank', 'extra', ?, '[]', NULL, ?, false, 0, 0, true)"
                    " RETURNING source_id", [label, now]).fetchall()[0][0]
                cur.execute(
                    "INSERT INTO scenario_runs VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, NULL, 1, 'running', ?, ?)",
                    [run_id, card.get("endpoint_host"), card.get("base_url"), card.get("model"),
                     card.get("question_set"), card.get("n_planned"), now, source_id,
                     json.dumps(dict(card), sort_keys=True, default=str)])
        return self.get_run(run_id) or {}

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run row (``card`` decoded), or ``None``."""
        with self.store.cursor() as cur:
            df = cur.execute("SELECT * FROM scenario_runs WHERE run_id = ?", [run_id]).df()
        if df.empty:
            return None
        row = df.iloc[0].to_dict()
        row["card"] = json.loads(row["card"] or "{}")
        return row

    def linked_sources(self, run_id: str) -> set[int]:
        """Source questions this run already turned into a stored scenario question (what a rerun skips)."""
        with self.store.cursor() as cur:
            rows = cur.execute("SELECT source_question_id FROM question_links WHERE run_id = ?", [run_id]).fetchall()
        return {int(r[0]) for r in rows}

    def links(self, question_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """``question_id, source_question_id, relation, run_id, created_at`` (all, or of these questions)."""
        with self.store.cursor() as cur:
            if question_ids is None:
                return cur.execute("SELECT * FROM question_links ORDER BY created_at, question_id").df()
            cur.register("ids_in", pa.table({"question_id": pa.array([int(q) for q in question_ids], pa.int64())}))
            df = cur.execute("SELECT l.* FROM question_links l SEMI JOIN ids_in USING (question_id)").df()
            cur.unregister("ids_in")
        return df

    def store_question(self, question: Mapping[str, Any], *, source_question_id: int, run_id: str,
                       source_id: int, request: Sequence[Any], cache: Sequence[Any] | None = None) -> bool:
        """Store one generated question with its link, request-log row and cache row, in one transaction.

        ``question`` holds :data:`fairpp.schema.QUESTION_COLUMNS`; ``request`` follows
        :data:`fairpp.store.runs.REQUEST_FIELDS`, ``cache`` :data:`fairpp.store.runs.CACHE_FIELDS`. Returns
        ``True`` when the question is new (an identical question already stored is linked, not duplicated).
        """
        with _transaction(self.store) as cur:
            new = not cur.execute("SELECT 1 FROM questions WHERE question_id = ?",
                                  [int(question["question_id"])]).fetchall()
            if new:
                cols = ", ".join(QUESTION_COLUMNS)
                cur.execute(f"INSERT INTO questions ({cols}, source_id) VALUES ({', '.join('?' * len(QUESTION_COLUMNS))}, ?)",
                            [question[c] for c in QUESTION_COLUMNS] + [source_id])
            cur.execute("INSERT INTO question_links VALUES (?, ?, 'scenario', ?, ?) ON CONFLICT DO NOTHING",
                        [int(question["question_id"]), int(source_question_id), run_id, _now()])
            cur.execute(f"INSERT INTO probe_requests ({', '.join(REQUEST_FIELDS)}) VALUES "
                        f"({', '.join('?' * len(REQUEST_FIELDS))})", list(request))
            if cache is not None:
                cur.execute(f"INSERT INTO probe_cache ({', '.join(CACHE_FIELDS)}) VALUES "
                            f"({', '.join('?' * len(CACHE_FIELDS))}) ON CONFLICT DO NOTHING", list(cache))
        return new

    def log_requests(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add request-log rows (failed attempts) in one transaction."""
        if rows:
            self.runs.write(requests=rows)

    def counts(self, run_id: str) -> dict[str, int]:
        """Stored questions, failed source questions (asked, never stored), requests and cache hits of a run."""
        with self.store.cursor() as cur:
            stored = cur.execute("SELECT count(*) FROM question_links WHERE run_id = ?", [run_id]).fetchall()[0][0]
            r = cur.execute("SELECT count(*) FILTER (NOT cache_hit), count(*) FILTER (cache_hit) FROM probe_requests"
                            " WHERE run_id = ?", [run_id]).fetchall()[0]
            failed = cur.execute(
                "SELECT count(DISTINCT question_id) FROM probe_requests WHERE run_id = ? AND status NOT IN"
                " ('ok', 'cached') AND question_id NOT IN (SELECT source_question_id FROM question_links"
                " WHERE run_id = ?)", [run_id, run_id]).fetchall()[0][0]
        return {"stored": int(stored), "failed": int(failed), "requests": int(r[0]), "cached": int(r[1])}

    def finish_run(self, run_id: str, *, status: str, extra_card: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Record the end of a session: status and counters; returns the counters."""
        c = self.counts(run_id)
        with self.store.cursor() as cur:
            old = cur.execute("SELECT card FROM scenario_runs WHERE run_id = ?", [run_id]).fetchall()
            card = {**json.loads((old[0][0] if old else None) or "{}"), **dict(extra_card or {})}
            cur.execute("UPDATE scenario_runs SET ended_at = ?, status = ?, stored = ?, failed = ?, requests = ?,"
                        " cached = ?, card = ? WHERE run_id = ?",
                        [_now(), status, c["stored"], c["failed"], c["requests"], c["cached"],
                         json.dumps(card, sort_keys=True, default=str), run_id])
        return c
