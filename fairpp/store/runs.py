"""Probe runs in the store: run cards, the request log, the deterministic-call cache, and answers.

Tables (created on first use, beside the four of :mod:`fairpp.store.core`):

``probe_runs``
    one row per run: the run card (endpoint host and key-free base URL, model, parameters, sample
    seed, code version, first start / last end, status, completeness and counters) and ``card``, the
    whole card as JSON.
``probe_requests``
    the request log: one row per attempt (or cache hit) with latency, tokens, status, HTTP status,
    the error (secrets redacted by the caller) and the cache key.
``probe_cache``
    replies to deterministic (temperature 0) calls, keyed by the hash of endpoint, model, messages,
    parameters and sample index.

A probe's answers go to the ``answers`` table (respondent kind ``probe``) under a ``sources`` row
with role ``extra``, so loading another dataset keeps them. No API key is ever written here: the
probe package hands over only key-free values, and redacts replies and errors before they arrive.
"""
from __future__ import annotations

import json
import weakref
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from fairpp.schema import FairppError

__all__ = ["RunStore", "RUN_TABLES", "ANSWER_FIELDS", "REQUEST_FIELDS", "CACHE_FIELDS"]

RUN_TABLES = ("probe_runs", "probe_requests", "probe_cache")

_DDL = """
CREATE TABLE IF NOT EXISTS probe_runs (
    run_id TEXT PRIMARY KEY, respondent TEXT NOT NULL, label TEXT, endpoint_host TEXT, base_url TEXT,
    model TEXT, persona TEXT, params TEXT, sample_seed BIGINT, n_planned INTEGER, code_version TEXT,
    started_at TIMESTAMP, ended_at TIMESTAMP, sessions INTEGER, status TEXT, stop_reason TEXT,
    answered INTEGER, failed INTEGER, refused INTEGER, unparsed INTEGER, cached INTEGER,
    requests INTEGER, prompt_tokens BIGINT, completion_tokens BIGINT, cost DOUBLE,
    completeness DOUBLE, source_id INTEGER, imported BOOLEAN, card TEXT
);
CREATE TABLE IF NOT EXISTS probe_requests (
    run_id TEXT NOT NULL, question_id {qtype} NOT NULL, sample INTEGER NOT NULL, swapped BOOLEAN,
    attempt SMALLINT, sent_at TIMESTAMP, latency_ms DOUBLE, status TEXT, http_status SMALLINT, error TEXT,
    prompt_tokens INTEGER, completion_tokens INTEGER, cache_hit BOOLEAN, cache_key TEXT
);
CREATE TABLE IF NOT EXISTS probe_cache (
    cache_key TEXT PRIMARY KEY, base_url TEXT, model TEXT, sample INTEGER, response TEXT,
    created_at TIMESTAMP
);
"""

#: Columns of an answer row handed to :meth:`RunStore.write` (the ``answers`` table's, minus source).
ANSWER_FIELDS = ("question_id", "respondent", "answer", "p_a", "p_b", "p_c", "raw", "run_id", "sample")
#: Columns of a request-log row.
REQUEST_FIELDS = ("run_id", "question_id", "sample", "swapped", "attempt", "sent_at", "latency_ms", "status",
                  "http_status", "error", "prompt_tokens", "completion_tokens", "cache_hit", "cache_key")
#: Columns of a cache row.
CACHE_FIELDS = ("cache_key", "base_url", "model", "sample", "response", "created_at")
_READY: "weakref.WeakSet[Any]" = weakref.WeakSet()  # stores whose probe tables exist (DDL run once each)


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class RunStore:
    """Probe-run tables of a :class:`fairpp.store.Store` (thread-safe: a cursor per call).

    Parameters
    ----------
    store : the store; its connection is shared, each method opens its own cursor.

    Examples
    --------
    >>> from fairpp.store import Store
    >>> runs = RunStore(Store(":memory:"))
    >>> runs.list_runs().empty
    True
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self._ready = store in _READY
        if self._ready:
            return
        try:
            with store.cursor() as cur:
                qtype = cur.execute("SELECT data_type FROM information_schema.columns WHERE table_name = 'answers'"
                                    " AND column_name = 'question_id'").fetchall()
                # the request log keys questions exactly as the answers table does
                cur.execute(_DDL.replace("{qtype}", qtype[0][0] if qtype else "BIGINT"))
            self._ready = True
            _READY.add(store)
        except duckdb.Error as exc:  # a read-only store: fine if the tables are there, else "no runs"
            if "read-only" not in str(exc).lower() and "read only" not in str(exc).lower():
                raise
            self._ready = self._has_tables()

    def _has_tables(self) -> bool:
        with self.store.cursor() as cur:
            names = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        return set(RUN_TABLES) <= names

    def _df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.store.cursor() as cur:
            return cur.execute(sql, list(params)).df()

    # -- runs -------------------------------------------------------------------------------------
    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run card row of ``run_id`` (``card`` decoded), or ``None``."""
        if not self._ready:
            return None
        df = self._df("SELECT * FROM probe_runs WHERE run_id = ?", [run_id])
        if df.empty:
            return None
        row = {k: (None if _isna(v) else v) for k, v in df.iloc[0].to_dict().items()}
        row["card"] = json.loads(row["card"] or "{}")
        row["params"] = json.loads(row["params"] or "{}")
        return row

    def start_run(self, card: Mapping[str, Any], *, respondent_row: Mapping[str, Any]) -> dict[str, Any]:
        """Create the run (its ``extra`` source, respondent and card) or, if it exists, open a new session.

        ``card`` holds ``run_id, respondent, label, endpoint_host, base_url, model, persona, params,
        sample_seed, n_planned, code_version`` and anything else worth keeping (stored as JSON).
        Returns the run row.
        """
        run_id = card["run_id"]
        now = _now()
        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                have = cur.execute("SELECT source_id FROM probe_runs WHERE run_id = ?", [run_id]).fetchall()
                if have:  # a new session: the card takes this session's settings (budget, concurrency...)
                    old = cur.execute("SELECT card FROM probe_runs WHERE run_id = ?", [run_id]).fetchall()[0][0]
                    merged = {**json.loads(old or "{}"), **dict(card)}
                    cur.execute("UPDATE probe_runs SET sessions = sessions + 1, status = 'running', ended_at = NULL,"
                                " stop_reason = NULL, card = ? WHERE run_id = ?",
                                [json.dumps(merged, sort_keys=True, default=str), run_id])
                else:
                    source_id = self._new_source(cur, f"probe run {run_id}: {card.get('model')} at "
                                                      f"{card.get('endpoint_host')}", now)
                    self._upsert_respondent(cur, respondent_row, source_id)
                    cur.execute(
                        "INSERT INTO probe_runs (run_id, respondent, label, endpoint_host, base_url, model, persona,"
                        " params, sample_seed, n_planned, code_version, started_at, sessions, status, answered,"
                        " failed, refused, unparsed, cached, requests, prompt_tokens, completion_tokens, cost,"
                        " completeness, source_id, imported, card) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1,"
                        " 'running', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ?, false, ?)",
                        [run_id, card["respondent"], card.get("label"), card.get("endpoint_host"),
                         card.get("base_url"), card.get("model"), card.get("persona"),
                         json.dumps(card.get("params") or {}, sort_keys=True), card.get("sample_seed"),
                         card.get("n_planned"), card.get("code_version"), now, source_id,
                         json.dumps(dict(card), sort_keys=True, default=str)])
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return self.get_run(run_id) or {}

    @staticmethod
    def _new_source(cur: duckdb.DuckDBPyConnection, label: str, now: datetime) -> int:
        return cur.execute(
            "INSERT INTO sources (kind, role, label, files, sha256, loaded_at, synthetic, rows_read, rows_rejected,"
            " active) VALUES ('probe', 'extra', ?, '[]', NULL, ?, false, 0, 0, true) RETURNING source_id",
            [label, now]).fetchall()[0][0]

    @staticmethod
    def _upsert_respondent(cur: duckdb.DuckDBPyConnection, row: Mapping[str, Any], source_id: int) -> None:
        cur.execute(
            "INSERT INTO respondents VALUES (?, 'probe', ?, ?, ?, ?, ?) ON CONFLICT (respondent) DO UPDATE SET "
            "kind = excluded.kind, description = excluded.description, provenance = excluded.provenance, "
            "source_id = excluded.source_id",
            [row["respondent"], row.get("region"), row.get("org"), row.get("description"),
             row.get("provenance"), source_id])

    def finish_run(self, run_id: str, *, status: str, stop_reason: str | None,
                   counters: Mapping[str, Any], extra_card: Mapping[str, Any] | None = None) -> None:
        """Record the end of a session: status, stop reason, counters and completeness."""
        counts = self.run_counts(run_id)
        planned = self._df("SELECT n_planned FROM probe_runs WHERE run_id = ?", [run_id])["n_planned"]
        n_planned = int(planned.iloc[0]) if len(planned) and not _isna(planned.iloc[0]) else 0
        completeness = counts["answered"] / n_planned if n_planned else 0.0
        with self.store.cursor() as cur:
            card_row = cur.execute("SELECT card FROM probe_runs WHERE run_id = ?", [run_id]).fetchall()
            card = json.loads(card_row[0][0] or "{}") if card_row else {}
            card.update(extra_card or {})
            cur.execute(
                "UPDATE probe_runs SET ended_at = ?, status = ?, stop_reason = ?, answered = ?, failed = ?,"
                " refused = ?, unparsed = ?, cached = ?, requests = ?, prompt_tokens = ?, completion_tokens = ?,"
                " cost = ?, completeness = ?, card = ? WHERE run_id = ?",
                [_now(), status, stop_reason, counts["answered"], counts["failed"],
                 counts["refused"], counts["unparsed"], counts["cached"], counts["requests"],
                 counts["prompt_tokens"], counts["completion_tokens"], float(counters.get("cost") or 0.0),
                 completeness, json.dumps(card, sort_keys=True, default=str), run_id])

    def run_counts(self, run_id: str) -> dict[str, int]:
        """Answers (all, refused, unparsed), cache hits, requests, tokens, and failed tasks (asked, never
        answered) of a run, from its tables."""
        with self.store.cursor() as cur:
            a = cur.execute("SELECT count(*), count(*) FILTER (answer = 'refused'), count(*) FILTER (answer = "
                            "'unparsed') FROM answers WHERE run_id = ?", [run_id]).fetchall()[0]
            r = cur.execute("SELECT count(*) FILTER (NOT cache_hit), count(*) FILTER (cache_hit),"
                            " coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0)"
                            " FROM probe_requests WHERE run_id = ?", [run_id]).fetchall()[0]
            f = cur.execute("SELECT count(*) FROM (SELECT DISTINCT question_id, sample FROM probe_requests"
                            " WHERE run_id = ? AND status NOT IN ('ok', 'cached')) r ANTI JOIN"
                            " (SELECT question_id, sample FROM answers WHERE run_id = ?) a USING (question_id, sample)",
                            [run_id, run_id]).fetchall()[0]
        return {"answered": int(a[0]), "refused": int(a[1]), "unparsed": int(a[2]), "requests": int(r[0]),
                "cached": int(r[1]), "prompt_tokens": int(r[2]), "completion_tokens": int(r[3]), "failed": int(f[0])}

    def list_runs(self) -> pd.DataFrame:
        """Every run, newest first (the run-card columns, without the JSON card)."""
        if not self._ready:
            return pd.DataFrame(columns=["run_id"])
        return self._df("SELECT * EXCLUDE (card) FROM probe_runs ORDER BY started_at DESC, run_id")

    def delete_run(self, run_id: str) -> None:
        """Remove a run: its answers, request log, card, respondent and source (the cache stays)."""
        run = self.get_run(run_id)
        if run is None:
            raise FairppError(f"no probe run {run_id!r}; list the runs with `fairpp probe-runs`.")
        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                self._delete(cur, run)
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise

    @staticmethod
    def _delete(cur: duckdb.DuckDBPyConnection, run: Mapping[str, Any]) -> None:
        rid = run["run_id"]
        cur.execute("DELETE FROM answers WHERE run_id = ?", [rid])
        cur.execute("DELETE FROM probe_requests WHERE run_id = ?", [rid])
        cur.execute("DELETE FROM probe_runs WHERE run_id = ?", [rid])
        cur.execute("DELETE FROM respondents WHERE respondent = ? AND respondent NOT IN "
                    "(SELECT DISTINCT respondent FROM answers)", [run["respondent"]])
        cur.execute("DELETE FROM sources WHERE source_id = ? AND role = 'extra'", [run["source_id"]])

    # -- drawing a sample -----------------------------------------------------------------------------
    def question_strata(self, filters: Mapping[str, Sequence[Any]] | None = None) -> pd.DataFrame:
        """``question_id, dimension, topic, group_type`` of the questions under ``filters`` (the filters of
        :meth:`fairpp.store.Store.questions`): what a sample is drawn from, without the texts."""
        from fairpp.store.core import _where

        where, params = _where(filters)
        return self._df(f"SELECT q.question_id, q.dimension, q.topic, q.group_type FROM questions q WHERE {where}",
                        params)

    def question_texts(self, question_ids: Sequence[Any]) -> pd.DataFrame:
        """The stored questions with these ids (all columns)."""
        with self.store.cursor() as cur:
            cur.register("ids_in", pa.table({"question_id": pa.array(list(question_ids))}))
            df = cur.execute("SELECT q.* FROM questions q SEMI JOIN ids_in USING (question_id)").df()
            cur.unregister("ids_in")
        return df

    # -- the running probe --------------------------------------------------------------------------
    def answered_tasks(self, run_id: str) -> set[tuple[str, int]]:
        """``(question_id, sample)`` pairs the run has an answer for (what a resumed run skips)."""
        with self.store.cursor() as cur:
            rows = cur.execute("SELECT question_id, sample FROM answers WHERE run_id = ?", [run_id]).fetchall()
        return {(q, int(s)) for q, s in rows}

    def cache_lookup(self, keys: Iterable[str]) -> dict[str, str]:
        """Cached replies (JSON text) for the given keys that are present."""
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        with self.store.cursor() as cur:
            cur.register("keys_in", pd.DataFrame({"cache_key": keys}))
            rows = cur.execute("SELECT c.cache_key, c.response FROM probe_cache c JOIN keys_in USING (cache_key)"
                               ).fetchall()
            cur.unregister("keys_in")
        return dict(rows)

    def write(self, *, answers: Sequence[Sequence[Any]] = (), requests: Sequence[Sequence[Any]] = (),
              cache: Sequence[Sequence[Any]] = (), source_id: int | None = None) -> None:
        """Write one batch in one transaction: answer rows (:data:`ANSWER_FIELDS`), request-log rows
        (:data:`REQUEST_FIELDS`) and cache rows (:data:`CACHE_FIELDS`, first writer wins)."""
        for attempt in range(3):  # two runs caching the same reply at once conflict; the retry skips it
            try:
                return self._write(answers, requests, cache, source_id)
            except duckdb.TransactionException:
                if attempt == 2:
                    raise

    def _write(self, answers: Sequence[Sequence[Any]], requests: Sequence[Sequence[Any]],
               cache: Sequence[Sequence[Any]], source_id: int | None) -> None:
        # Rows go in as Arrow tables: DuckDB reads them without holding the GIL row by row
        # (executemany costs milliseconds per row and starves the event loop that feeds it).
        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                if answers:
                    cur.register("answers_in", _columns(ANSWER_FIELDS, answers))
                    cur.execute(f"INSERT INTO answers SELECT {', '.join(ANSWER_FIELDS)}, ? FROM answers_in",
                                [source_id])
                    cur.unregister("answers_in")
                if requests:
                    cur.register("requests_in", _columns(REQUEST_FIELDS, requests))
                    cur.execute("INSERT INTO probe_requests SELECT * FROM requests_in")
                    cur.unregister("requests_in")
                if cache:
                    cur.register("cache_in", _columns(CACHE_FIELDS, cache))
                    cur.execute("INSERT INTO probe_cache SELECT * FROM cache_in ON CONFLICT DO NOTHING")
                    cur.unregister("cache_in")
                cur.execute("COMMIT")
            except Exception:
                try:
                    cur.execute("ROLLBACK")
                except duckdb.Error:  # a failed COMMIT has already ended the transaction
                    pass
                raise

    # -- reading a run ------------------------------------------------------------------------------
    def run_answers(self, run_id: str) -> pd.DataFrame:
        """The run's answers with each question's fields and whether its options were swapped."""
        return self._df(
            "SELECT a.question_id, a.sample, a.answer, a.p_a, a.p_b, a.p_c, a.raw, q.dimension, q.topic,"
            " q.group_type, q.text, r.swapped, r.cache_hit, r.latency_ms FROM answers a"
            " JOIN questions q USING (question_id)"
            " LEFT JOIN (SELECT question_id, sample, any_value(swapped) AS swapped, bool_or(cache_hit) AS cache_hit,"
            "   max(latency_ms) AS latency_ms FROM probe_requests WHERE run_id = ? AND status IN ('ok', 'cached')"
            "   GROUP BY ALL) r USING (question_id, sample)"
            " WHERE a.run_id = ? ORDER BY a.question_id, a.sample", [run_id, run_id])

    def request_log(self, run_id: str) -> pd.DataFrame:
        """The run's request log, in order."""
        return self._df("SELECT * FROM probe_requests WHERE run_id = ? ORDER BY sent_at", [run_id])

    def comparison_answers(self, run_id: str, *, kinds: Sequence[str] = ("persona", "model")) -> pd.DataFrame:
        """Answers of the run's respondent and of every respondent of ``kinds`` on the run's questions.

        Columns: ``respondent, kind, question_id, dimension, sample, answer, p_a, p_b, p_c``.
        """
        run = self.get_run(run_id)
        if run is None:
            raise FairppError(f"no probe run {run_id!r}; list the runs with `fairpp probe-runs`.")
        return self._df(
            "WITH qs AS (SELECT DISTINCT question_id FROM answers WHERE run_id = ?)"
            " SELECT a.respondent, r.kind, a.question_id, q.dimension, a.sample, a.answer, a.p_a, a.p_b, a.p_c"
            " FROM answers a JOIN qs USING (question_id) JOIN questions q USING (question_id)"
            " JOIN respondents r USING (respondent)"
            " WHERE (a.run_id = ? AND a.respondent = ?) OR list_contains(?, r.kind)",
            [run_id, run_id, run["respondent"], list(kinds)])

    # -- probe packs ----------------------------------------------------------------------------------
    def pack_tables(self, run_id: str) -> dict[str, Any]:
        """Everything a probe pack holds for ``run_id``: run row, respondent, questions, answers,
        request log and the cache entries the run used (records, JSON-ready)."""
        run = self.get_run(run_id)
        if run is None:
            raise FairppError(f"no probe run {run_id!r}; list the runs with `fairpp probe-runs`.")
        out = {"run": {k: _plain(v) for k, v in run.items()}}
        out["respondent"] = _records(self._df("SELECT * EXCLUDE (source_id) FROM respondents WHERE respondent = ?",
                                              [run["respondent"]]))
        out["questions"] = _records(self._df(
            "SELECT * EXCLUDE (source_id) FROM questions WHERE question_id IN "
            "(SELECT question_id FROM answers WHERE run_id = ?) ORDER BY question_id", [run_id]))
        out["answers"] = _records(self._df("SELECT * EXCLUDE (source_id) FROM answers WHERE run_id = ?"
                                           " ORDER BY question_id, sample", [run_id]))
        out["requests"] = _records(self.request_log(run_id))
        out["cache"] = _records(self._df(
            "SELECT * FROM probe_cache WHERE cache_key IN (SELECT cache_key FROM probe_requests WHERE run_id = ?)"
            " ORDER BY cache_key", [run_id]))
        return out

    def import_tables(self, data: Mapping[str, Any], *, replace: bool = False) -> str:
        """Write a probe pack's tables in one transaction; returns the run id.

        Raises :class:`FairppError` when the run is already here and ``replace`` is false.
        """
        run = dict(data["run"])
        run_id = run["run_id"]
        existing = self.get_run(run_id)
        if existing is not None and not replace:
            raise FairppError(f"probe run {run_id!r} is already in this database; pass replace=True "
                              "(`fairpp probe-pack import --replace`) to overwrite it.")
        now = _now()
        with self.store.cursor() as cur:
            cur.execute("BEGIN TRANSACTION")
            try:
                if existing is not None:
                    self._delete(cur, existing)
                source_id = self._new_source(cur, f"probe pack {run_id}: {run.get('model')} at "
                                                  f"{run.get('endpoint_host')}", now)
                for row in data.get("respondent") or [{"respondent": run["respondent"]}]:
                    self._upsert_respondent(cur, row, source_id)
                self._insert(cur, "questions", data.get("questions") or [], source_id, only_new="question_id")
                self._insert(cur, "answers", data.get("answers") or [], source_id)
                self._insert(cur, "probe_requests", data.get("requests") or [], None)
                self._insert(cur, "probe_cache", data.get("cache") or [], None, conflict=True)
                cols = [c for c in run if c not in ("card", "params", "source_id", "imported")]
                vals = [run[c] for c in cols]
                cols += ["card", "params", "source_id", "imported"]
                vals += [json.dumps(run.get("card") or {}, sort_keys=True, default=str),
                         json.dumps(run.get("params") or {}, sort_keys=True), source_id, True]
                cur.execute(f"INSERT INTO probe_runs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                            vals)  # column names come from a pack checked against the table below
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return run_id

    @staticmethod
    def _insert(cur: duckdb.DuckDBPyConnection, table: str, rows: Sequence[Mapping[str, Any]],
                source_id: int | None, *, conflict: bool = False, only_new: str | None = None) -> None:
        if not rows:
            return
        frame = pd.DataFrame(list(rows))
        table_cols = [r[0] for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [table]).fetchall()]
        unknown = set(frame.columns) - set(table_cols)
        if unknown:
            raise FairppError(f"probe pack table {table} has unknown columns {sorted(unknown)}; "
                              "export the pack again with this version of fairpp.")
        if "source_id" in table_cols:
            frame["source_id"] = source_id
        for c in table_cols:
            if c not in frame.columns:
                frame[c] = None
        cur.register("pack_in", frame[table_cols])
        # table and only_new are fixed names from this module, never user input
        where = f" WHERE {only_new} NOT IN (SELECT {only_new} FROM {table})" if only_new else ""
        cur.execute(f"INSERT INTO {table} SELECT * FROM pack_in{where}" + (" ON CONFLICT DO NOTHING" if conflict else ""))
        cur.unregister("pack_in")


def _columns(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Row tuples as an Arrow table with the given column names (types inferred; DuckDB casts)."""
    return pa.table({name: pa.array([r[i] for r in rows]) for i, name in enumerate(names)})


def _isna(v: Any) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _plain(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        return v.item()
    return v


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: (None if _isna(v) else _plain(v)) for k, v in row.items()} for row in df.to_dict("records")]
