"""Connect, create the schema, load batches atomically, and answer the queries the analysis needs."""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from fairpp.config import settings
from fairpp.schema import (
    SLICE_COLUMNS, AnswerMatrix, Batch, FairppError, LoadError, persona_names, taxonomy,
)

log = logging.getLogger(__name__)

#: ``{column: [values]}``; columns from :data:`fairpp.schema.SLICE_COLUMNS`. Empty lists mean "all".
Filters = Mapping[str, Sequence[Any]]

_DDL = """
CREATE SEQUENCE IF NOT EXISTS source_seq START 1;
CREATE TABLE IF NOT EXISTS sources (
    source_id INTEGER PRIMARY KEY DEFAULT nextval('source_seq'),
    kind TEXT NOT NULL,            -- demo | published | file | hub | probe | bank
    role TEXT NOT NULL,            -- dataset (replaced by the next load) | extra (kept)
    label TEXT,
    files TEXT,                    -- JSON list of {name, sha256, rows}
    sha256 TEXT,
    loaded_at TIMESTAMP,
    synthetic BOOLEAN NOT NULL,
    rows_read BIGINT,
    rows_rejected BIGINT,
    active BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS questions (
    question_id BIGINT NOT NULL, question_set TEXT NOT NULL, topic TEXT, problem_category TEXT,
    specific_problem TEXT, group_type TEXT, group_name TEXT, dimension TINYINT, template TINYINT,
    text TEXT, options TEXT, split TEXT, source_id INTEGER
);
CREATE TABLE IF NOT EXISTS respondents (
    respondent TEXT PRIMARY KEY, kind TEXT NOT NULL, region TEXT, org TEXT, description TEXT,
    provenance TEXT, source_id INTEGER
);
CREATE TABLE IF NOT EXISTS answers (
    question_id BIGINT NOT NULL, respondent TEXT NOT NULL, answer TEXT NOT NULL,
    p_a DOUBLE, p_b DOUBLE, p_c DOUBLE, raw TEXT, run_id TEXT, sample INTEGER NOT NULL DEFAULT 0,
    source_id INTEGER
);
"""

# Expected counts: a soft answer contributes its probabilities, a plain one a one-hot vector.
_SOFT = """coalesce(a.p_a, CAST(a.answer = 'A' AS DOUBLE)) AS pa,
           coalesce(a.p_b, CAST(a.answer = 'B' AS DOUBLE)) AS pb,
           coalesce(a.p_c, CAST(a.answer = 'C' AS DOUBLE)) AS pc"""


class StoreError(FairppError):
    """The database cannot be opened or queried as asked."""


class Store:
    """One DuckDB file holding the loaded dataset, probe runs and user data.

    Parameters
    ----------
    path : the database file; ``None`` uses ``FAIRPP_DB`` or ``data/fairpp.duckdb``. ``":memory:"``
        gives a throw-away store.
    read_only : open without write access (several processes may read at once).

    Examples
    --------
    >>> s = Store(":memory:")
    >>> s.is_empty()
    True
    """

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False) -> None:
        self.path = Path(path) if path not in (None, ":memory:") else (settings().db if path is None else None)
        target = ":memory:" if self.path is None else str(self.path)
        if self.path is not None and not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(target, read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(
                f"cannot open the database {target}: {exc}. If another fairpp process (the app or a "
                "command) holds it for writing, stop it or point FAIRPP_DB / --db at another file."
            ) from exc
        if not read_only:
            self._con.execute(_DDL)

    # -- plumbing -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self._con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the shared connection (safe to use from another thread)."""
        return self._con.cursor()

    def _df(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).df()

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self.cursor() as cur:
            rows = cur.execute(sql, list(params)).fetchall()
        return rows[0][0] if rows else None

    # -- loading --------------------------------------------------------------------------------
    def load(self, batch: Batch, *, append: bool = False) -> dict[str, Any]:
        """Load a batch in one transaction; on any error nothing changes.

        Without ``append`` the previously loaded dataset (its personas, models, their answers and
        questions no one else answered) is replaced; probe runs and custom personas are kept.

        Returns the load report: ``source_id``, ``questions``, ``respondents``, ``answers``,
        ``rows_read``, ``rows_rejected``.
        """
        _check_batch(batch)
        src = batch.source
        files = src.get("files") or ([{"name": src.get("file_name"), "sha256": src.get("sha256"),
                                        "rows": src.get("rows_read")}] if src.get("file_name") else [])
        with self.cursor() as cur, _checkpoint_at_commit(cur):
            cur.execute("BEGIN TRANSACTION")
            try:
                if not append:
                    self._drop_dataset(cur)
                else:
                    self._check_append(cur, batch)
                cur.execute("UPDATE sources SET active = false WHERE role = 'dataset' AND ?", [not append])
                source_id = cur.execute(
                    "INSERT INTO sources (kind, role, label, files, sha256, loaded_at, synthetic, rows_read,"
                    " rows_rejected, active) VALUES (?, 'dataset', ?, ?, ?, ?, ?, ?, ?, true) RETURNING source_id",
                    [src.get("kind", "file"), src.get("label"), json.dumps(files), src.get("sha256"),
                     datetime.now(timezone.utc).replace(tzinfo=None), bool(src.get("synthetic", False)),
                     src.get("rows_read"), src.get("rows_rejected", 0)],
                ).fetchall()[0][0]
                q, a = batch.questions, batch.answers
                r = batch.respondents.assign(source_id=source_id)
                # The tables' last columns (sample, source_id) are constants of the load: SQL literals, not copies
                # of the frames with two more columns.
                q_in, q_cols = _arrow(q)
                a_in, a_cols = _arrow(a)
                q_cols += f", {int(source_id)}"
                a_cols += f", 0, {int(source_id)}"
                cur.register("q_in", q_in)
                cur.register("r_in", r)
                cur.register("a_in", a_in)
                # Unique by construction (readers merge duplicates); questions kept from probes are skipped.
                cur.execute(f"INSERT INTO questions SELECT {q_cols} FROM q_in"
                            " WHERE question_id NOT IN (SELECT question_id FROM questions)")
                if q["split"].notna().any():  # a question kept from a bank or probe learns its split
                    cur.execute("UPDATE questions SET split = q_in.split FROM q_in WHERE questions.question_id"
                                " = q_in.question_id AND questions.split IS NULL AND q_in.split IS NOT NULL")
                cur.execute(
                    "INSERT INTO respondents SELECT * FROM r_in ON CONFLICT (respondent) DO UPDATE SET "
                    "kind = excluded.kind, region = excluded.region, org = excluded.org, "
                    "description = excluded.description, provenance = excluded.provenance"
                )
                cur.execute(f"INSERT INTO answers SELECT {a_cols} FROM a_in")
                cur.execute("COMMIT")
            except Exception:
                cur.execute("ROLLBACK")
                raise
        log.info("loaded source %s: %d questions, %d answers", source_id, len(q), len(a))
        return {"source_id": source_id, "questions": len(q), "respondents": len(r), "answers": len(a),
                "rows_read": src.get("rows_read"), "rows_rejected": src.get("rows_rejected", 0)}

    @staticmethod
    def _drop_dataset(cur: duckdb.DuckDBPyConnection) -> None:
        dataset = "(SELECT source_id FROM sources WHERE role = 'dataset')"
        cur.execute(f"DELETE FROM answers WHERE source_id IN {dataset}")
        cur.execute(f"DELETE FROM respondents WHERE source_id IN {dataset}"
                    " AND respondent NOT IN (SELECT DISTINCT respondent FROM answers)")
        cur.execute(f"DELETE FROM questions WHERE source_id IN {dataset}"
                    " AND question_id NOT IN (SELECT DISTINCT question_id FROM answers)")

    @staticmethod
    def _check_append(cur: duckdb.DuckDBPyConnection, batch: Batch) -> None:
        cur.register("a_chk", batch.answers[["question_id", "respondent"]])
        dup = cur.execute(
            "SELECT c.respondent, c.question_id FROM a_chk c JOIN answers a USING (question_id, respondent)"
            " LIMIT 1"
        ).fetchall()
        cur.unregister("a_chk")
        if dup:
            raise LoadError(
                f"--append: respondent {dup[0][0]!r} already has an answer to question {dup[0][1]} in the "
                "database. Load without --append to replace the dataset, or remove the overlap."
            )

    # -- what is loaded ---------------------------------------------------------------------------
    def is_empty(self) -> bool:
        """True when no question is stored."""
        return not self._scalar("SELECT count(*) FROM questions")

    def active_source(self) -> dict[str, Any] | None:
        """The most recent active dataset source: kind, label, synthetic, files, loaded_at."""
        df = self._df("SELECT * FROM sources WHERE role = 'dataset' AND active ORDER BY source_id DESC")
        if df.empty:
            return None
        rows = df.to_dict("records")
        kinds = {r["kind"] for r in rows}
        return {
            "kind": rows[0]["kind"] if len(kinds) == 1 else "mixed",
            "label": " + ".join(str(r["label"]) for r in reversed(rows)),
            "synthetic": any(bool(r["synthetic"]) for r in rows),
            "files": [f for r in reversed(rows) for f in json.loads(r["files"] or "[]")],
            "loaded_at": str(rows[0]["loaded_at"]),
            "rows_read": int(sum(r["rows_read"] or 0 for r in rows)),
            "rows_rejected": int(sum(r["rows_rejected"] or 0 for r in rows)),
        }

    def info(self) -> dict[str, Any]:
        """What is loaded: ``source`` (kind, label, synthetic), counts of questions, answers, respondents.

        >>> Store(":memory:").info()["questions"]
        0
        """
        src = self.active_source() or {"kind": None, "label": None, "synthetic": False}
        kinds = self._df("SELECT kind, count(*) AS n FROM respondents GROUP BY kind")
        return {
            "source": {"kind": src["kind"], "label": src["label"], "synthetic": bool(src["synthetic"])},
            "questions": int(self._scalar("SELECT count(*) FROM questions")),
            "answers": int(self._scalar("SELECT count(*) FROM answers")),
            "respondents": {str(k): int(n) for k, n in zip(kinds["kind"], kinds["n"])},
        }

    def sources(self) -> pd.DataFrame:
        """Every load, newest first (provenance: files, hashes, time, synthetic flag)."""
        return self._df("SELECT * FROM sources ORDER BY source_id DESC")

    def sources_token(self) -> str:
        """A short string that changes whenever a load adds, replaces or deactivates a source (one small query:
        the app asks on every rerun)."""
        with self.cursor() as cur:
            rows = cur.execute(
                "SELECT count(*), coalesce(max(source_id), 0), coalesce(string_agg(concat_ws('|', source_id, active,"
                " loaded_at, rows_read), ';' ORDER BY source_id), '') FROM sources").fetchall()
        return "/".join(map(str, rows[0]))

    def respondents(self, *, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        """Respondents in display order: personas (survey order), models (taxonomy order), others."""
        df = self._df("SELECT * FROM respondents")
        if kinds:
            df = df[df["kind"].isin(list(kinds))]
        return df.iloc[_order(df)].reset_index(drop=True)

    def table(self, name: str) -> pd.DataFrame:
        """A whole table by name (for downloads)."""
        if name not in ("sources", "questions", "respondents", "answers"):
            raise StoreError(f"unknown table {name!r}: use sources, questions, respondents or answers")
        return self._df(f"SELECT * FROM {name}")  # name checked against a fixed list above

    def distinct(self, column: str, filters: Filters | None = None) -> list[Any]:
        """Sorted distinct values of a question column, under optional filters."""
        where, params = _where(filters)
        col = _column(column)
        df = self._df(f"SELECT DISTINCT q.{col} AS v FROM questions q WHERE {where} AND q.{col} IS NOT NULL"
                      " ORDER BY 1", params)
        return df["v"].tolist()

    # -- queries for the analysis -----------------------------------------------------------------
    def questions(self, filters: Filters | None = None, *, search: str | None = None,
                  limit: int | None = None) -> pd.DataFrame:
        """Questions under the filters; ``search`` matches text, problem or group (case-insensitive)."""
        where, params = _where(filters)
        if search:
            where += " AND (q.text ILIKE ? OR q.specific_problem ILIKE ? OR q.group_name ILIKE ?)"
            params += [f"%{search}%"] * 3
        sql = f"SELECT q.* FROM questions q WHERE {where} ORDER BY q.topic, q.problem_category, " \
              "q.specific_problem, q.group_type, q.group_name, q.dimension, q.template"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return self._df(sql, params)

    def answers(self, filters: Filters | None = None, *, respondents: Sequence[str] | None = None,
                question_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Answers joined with their questions' fields."""
        where, params = _where(filters, respondents=respondents)
        if question_ids is not None:
            where += " AND list_contains(?, a.question_id)"
            params.append([int(q) for q in question_ids])
        return self._df(
            f"SELECT a.*, r.kind, q.topic, q.problem_category, q.specific_problem, q.group_type, q.group_name,"
            f" q.dimension, q.template, q.split FROM answers a JOIN questions q USING (question_id)"
            f" JOIN respondents r USING (respondent) WHERE {where}", params)

    def counts(self, filters: Filters | None = None, *, by: Sequence[str] = (),
               respondents: Sequence[str] | None = None) -> pd.DataFrame:
        """Expected answer counts per respondent x dimension (x ``by`` columns).

        Columns: ``respondent, kind, dimension, *by, n_a, n_b, n_c, n_unparsed`` — the input of
        :func:`fairpp.space.positions`.
        """
        by_cols = [_column(c) for c in by if c != "dimension"]
        where, params = _where(filters, respondents=respondents)
        group = ", ".join(["a.respondent", "r.kind", "q.dimension"] + [f"q.{c}" for c in by_cols])
        df = self._df(
            f"""SELECT {group}, sum(pa) AS n_a, sum(pb) AS n_b, sum(pc) AS n_c,
                       sum(CAST(a.answer NOT IN ('A', 'B', 'C') AS DOUBLE)) AS n_unparsed
                FROM (SELECT a.*, {_SOFT} FROM answers a) a
                JOIN questions q USING (question_id) JOIN respondents r USING (respondent)
                WHERE {where} GROUP BY ALL""", params)
        df["dimension"] = df["dimension"].astype(int)
        order = {name: i for i, name in enumerate(self.respondents()["respondent"])}
        df = df.assign(_o=df["respondent"].map(order)).sort_values(["_o", *by_cols, "dimension"])
        return df.drop(columns="_o").reset_index(drop=True)

    def answer_matrix(self, filters: Filters | None = None, *,
                      respondents: Sequence[str] | None = None) -> AnswerMatrix:
        """Dense (respondent x question x option) array of A/B/C answers under the filters.

        Repeated samples are averaged; unparsed and refused replies count as missing.
        """
        resp = self.respondents()
        if respondents is not None:
            resp = resp[resp["respondent"].isin(list(respondents))]
        names = resp["respondent"].tolist()
        qwhere, qparams = _where(filters)
        # Indices are computed in SQL, so only numbers cross into Python. Dataset answers are unique per
        # (respondent, question); only repeated or re-run answers (probes) need averaging.
        with self.cursor() as cur:
            qs = cur.execute(f"SELECT question_id, dimension FROM questions q WHERE {qwhere} ORDER BY question_id",
                             qparams).fetchnumpy()
            res = cur.execute(
                f"""WITH qi AS (SELECT question_id, row_number() OVER (ORDER BY question_id) - 1 AS q
                                FROM questions q WHERE {qwhere}),
                    a AS (SELECT list_position(?, a.respondent) - 1 AS r, a.question_id, a.run_id, a.sample, {_SOFT}
                          FROM answers a WHERE a.answer IN ('A', 'B', 'C') AND list_contains(?, a.respondent))
                    SELECT r, q, pa, pb, pc FROM a JOIN qi USING (question_id)
                    WHERE a.run_id IS NULL AND a.sample = 0
                    UNION ALL
                    SELECT r, q, avg(pa), avg(pb), avg(pc) FROM a JOIN qi USING (question_id)
                    WHERE a.run_id IS NOT NULL OR a.sample <> 0 GROUP BY r, q""",
                [*qparams, names, names]).fetchnumpy()
        qids = qs["question_id"]
        probs = np.full((len(names), len(qids), 3), np.nan)
        r_idx, q_idx = res["r"].astype(np.int64), res["q"].astype(np.int64)
        probs[r_idx, q_idx, 0] = res["pa"]
        probs[r_idx, q_idx, 1] = res["pb"]
        probs[r_idx, q_idx, 2] = res["pc"]
        present = np.flatnonzero(np.bincount(r_idx, minlength=len(names)) > 0)
        return AnswerMatrix(respondents=[names[i] for i in present], kinds=[resp["kind"].iloc[i] for i in present],
                            question_ids=[int(x) for x in qids], dimension=np.asarray(qs["dimension"], dtype=np.int64),
                            probs=probs[present])


@contextmanager
def _checkpoint_at_commit(cur: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Within the block, a commit that writes more than 1 MB checkpoints at once (DuckDB then skips the
    WAL): a load's rows are written to the database file once, not to the WAL first and again at the
    next checkpoint. Small commits (probe answers) keep the default threshold outside loads."""
    cur.execute("SET checkpoint_threshold = '1MB'")
    try:
        yield
    finally:
        cur.execute("RESET checkpoint_threshold")


def _arrow(frame: pd.DataFrame) -> tuple[pa.Table, str]:
    """An Arrow table of the frame's non-empty columns, with plain (not dictionary) strings: DuckDB's fastest
    input; and the column list for ``INSERT ... SELECT`` in the frame's order, empty columns as NULL."""
    filled = [c for c in frame.columns if frame[c].notna().any()]  # (Arrow would inspect every None)
    table = pa.Table.from_pandas(frame[filled], preserve_index=False)
    keep = {name: col.combine_chunks().dictionary_decode() if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns)}
    select = ", ".join(f'"{c}"' if c in keep else "NULL" for c in frame.columns)
    return pa.table(keep) if keep else table.select([]), select


def _order(df: pd.DataFrame) -> np.ndarray:
    personas = {n: i for i, n in enumerate(persona_names())}
    models = {m["name"]: i for i, m in enumerate(taxonomy()["models"])}
    kind_rank = {"persona": 0, "model": 1, "probe": 2, "custom": 3}
    keys = [(kind_rank.get(k, 9), personas.get(n, models.get(n, 99)), str(n))
            for k, n in zip(df["kind"], df["respondent"])]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def _column(name: str) -> str:
    if name not in SLICE_COLUMNS:
        raise StoreError(f"unknown column {name!r}: use one of {', '.join(SLICE_COLUMNS)}")
    return name


def _where(filters: Filters | None, *, respondents: Sequence[str] | None = None) -> tuple[str, list[Any]]:
    clauses, params = ["true"], []
    for col, values in (filters or {}).items():
        if values is None or (isinstance(values, (list, tuple, set)) and not values):
            continue
        vals = list(values) if isinstance(values, (list, tuple, set)) else [values]
        if col == "dimension" or col == "template":
            vals = [int(v) for v in vals]
        else:
            vals = [str(v) for v in vals]
        clauses.append(f"list_contains(?, q.{_column(col)})")
        params.append(vals)
    if respondents is not None:
        clauses.append("list_contains(?, a.respondent)")
        params.append([str(r) for r in respondents])
    return " AND ".join(clauses), params


def _check_batch(batch: Batch) -> None:
    """Last line of defence: the readers validate with better messages, this guards the invariants.

    Uniqueness of (question, respondent) is each reader's job (it can name the rows); here it is checked
    with integer keys so that a full-size load stays fast.
    """
    q, a, r = batch.questions, batch.answers, batch.respondents
    if q.empty:
        raise LoadError("nothing to load: the input holds no questions")
    if q["question_id"].duplicated().any():
        raise LoadError("the input holds the same question twice; merge the files first")
    who, who_names = pd.factorize(a["respondent"])
    # a loaded dataset has no run ids: skip hashing a column of None
    run = (pd.factorize(a["run_id"], use_na_sentinel=False)[0] if a["run_id"].notna().any()
           else np.zeros(len(a), np.intp))
    qcode, q_names = pd.factorize(a["question_id"])
    n_keys = len(q_names) * len(who_names) * (int(run.max(initial=0)) + 1)
    key = (qcode.astype(np.int64) * len(who_names) + who) * (int(run.max(initial=0)) + 1) + run
    twice = (np.bincount(key, minlength=n_keys).max(initial=0) > 1 if n_keys < 50_000_000
             else len(np.unique(key)) < len(key))
    if twice:
        raise LoadError("the input answers the same question twice for one respondent; keep one answer each")
    bad = set(pd.unique(a["answer"])) - {"A", "B", "C", "unparsed", "refused"}
    if bad:
        raise LoadError(f"answers must be A, B, C, unparsed or refused; found {sorted(map(str, bad))}")
    missing = set(who_names) - set(r["respondent"])
    if missing:
        raise LoadError(f"answers from respondents that are not described: {sorted(missing)[:5]}")
