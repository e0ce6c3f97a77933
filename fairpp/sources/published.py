"""The published Fair-PP layout: one wide row per question, one answer column per respondent.

Columns (see ``fairpp-facts.json``): ``Topic, Problem Category, Specific Problem, Group Type, Group,
Perspective`` (``T.D``: topic number and dimension), ``Option``, ``Question``; persona answers in
``gpt-4o-mini_role_N_answer`` (coded 0/1/2 = A/B/C) and/or raw replies in ``gpt-4o-mini_role_N``;
model answers in ``<model>_answer``.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from fairpp.parse import parse_reply
from fairpp.schema import (
    ANSWERS, Batch, LoadError, canonical_model_name, model_info, persona_names, published_model_column, question_ids,
    normalize_space, taxonomy,
)

__all__ = ["to_batch", "to_wide", "REQUIRED", "PERSONA_PREFIX"]

PERSONA_PREFIX = "gpt-4o-mini_role_"
REQUIRED = ["Topic", "Problem Category", "Specific Problem", "Group Type", "Group", "Perspective", "Question"]
_RENAME = {"Topic": "topic", "Problem Category": "problem_category", "Specific Problem": "specific_problem",
           "Group Type": "group_type", "Group": "group_name", "Question": "text", "Option": "options"}
_CODES = {"0": "A", "1": "B", "2": "C", "0.0": "A", "1.0": "B", "2.0": "C", "a": "A", "b": "B", "c": "C"}
_PERSPECTIVE = re.compile(r"^([1-5])\.([1-5])0*$")
_NOT_ANSWERS = {"majority_answer"}


def to_batch(frames: Sequence[tuple[str, pd.DataFrame, str]]) -> Batch:
    """Turn files in the published layout into one batch (the same question in two files is one question).

    ``frames``: ``(file name, frame, sha256)`` per file, as read by :func:`fairpp.sources.files.read_table`.
    Vectorised: a full-size file (28,420 rows x 13 answer columns) takes a fraction of a second.
    """
    parts = [_one_file(name, frame) for name, frame, _ in frames]
    names: list[str] = []
    info: dict[str, dict] = {}
    for _, _, who, resp in parts:
        names += [w for w in who if w not in names]
        info.update(resp)
    q = pd.concat([p[0] for p in parts], ignore_index=True)
    q_code, uniq = pd.factorize(q["question_id"])
    uniq = np.asarray(uniq, dtype=np.int64)
    offsets = np.cumsum([0] + [len(p[0]) for p in parts])
    a_q, a_r, a_ans, a_raw = [], [], [], []
    for (fq, (codes, raw), who, _), off in zip(parts, offsets):
        rows, cols = np.nonzero(codes >= 0)
        a_q.append(q_code[off + rows])
        a_r.append(np.array([names.index(w) for w in who], dtype=np.int32)[cols])
        a_ans.append(codes[rows, cols])
        a_raw.append(raw[rows, cols] if raw is not None else np.full(len(rows), None, dtype=object))
    qc, rc, ac = np.concatenate(a_q), np.concatenate(a_r), np.concatenate(a_ans)
    raw_all = np.concatenate(a_raw)
    if len(uniq) < len(q):
        keep = _merge_duplicates(q, uniq, qc, rc, ac, names)
        qc, rc, ac, raw_all = qc[keep], rc[keep], ac[keep], raw_all[keep]
        q = q.drop_duplicates("question_id")
    q = q.drop(columns=["_file", "_line"]).reset_index(drop=True)
    q["template"] = _templates(q)
    used = np.flatnonzero(np.bincount(rc, minlength=len(names)))
    answers = pd.DataFrame({
        "question_id": uniq[qc],
        "respondent": pd.Categorical.from_codes(rc, categories=names),
        "answer": pd.Categorical.from_codes(ac, categories=list(ANSWERS)),
    })
    if any(raw is not None for (_, (_, raw), _, _) in parts):
        answers["raw"] = raw_all
    resp = pd.DataFrame([info[names[i]] for i in used])
    source = {"rows_read": int(sum(len(f) for _, f, _ in frames)), "rows_rejected": 0}
    return Batch(questions=q, respondents=resp, answers=answers, source=source)


def _norm(col: pd.Series) -> pd.Series:
    """Collapse runs of whitespace (vectorised): for names and question text, one line each."""
    return normalize_space(col)


def _strip(col: pd.Series) -> pd.Series:
    """Trim only: option blocks keep their line breaks (one option a line)."""
    return col.astype("string[pyarrow]").str.strip()


def _one_file(name: str, frame: pd.DataFrame):
    frame = frame.rename(columns=lambda c: str(c).strip())
    lower = {c.lower(): c for c in frame.columns}
    scenario = "simulation_question" in lower
    required = [c for c in REQUIRED if not (scenario and c == "Question")]
    missing = [c for c in required if c.lower() not in lower]
    if missing:
        raise LoadError(f"{name}: missing required column(s) {missing}. The Fair-PP layout needs {REQUIRED} "
                        "plus answer columns such as 'gpt-4o-mini_role_1_answer'; rename the columns to match.")
    frame = frame.rename(columns={lower[c.lower()]: c for c in [*REQUIRED, "Option"] if c.lower() in lower})
    if scenario:
        frame = frame.rename(columns={lower["simulation_question"]: "simulation_question"})
    text_col = "simulation_question" if scenario else "Question"
    q = pd.DataFrame(index=frame.index)
    normalized = {}
    for col in [*required, *(["simulation_question"] if scenario else [])]:
        values = normalized[col] = _norm(frame[col])
        empty = values.isna() | (values == "")
        if empty.any():
            raise LoadError(f"{name}: column {col!r} is empty in data row {int(np.argmax(empty.to_numpy())) + 1}"
                            f" ({int(empty.sum())} row(s) in all). Fill it in or drop those rows.")
        if col in _RENAME:
            q[_RENAME[col]] = values
    q["text"] = normalized[text_col]
    persp = frame["Perspective"].astype("string").str.strip()
    bad = ~persp.str.fullmatch(_PERSPECTIVE.pattern[1:-1]).fillna(False).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise LoadError(f"{name}: unknown Perspective code {str(persp.iloc[i])!r} in data row {i + 1}. Codes are "
                        "'T.D' with topic T in 1..5 and dimension D in 1..5 (for example 2.3).")
    q["dimension"] = persp.str.slice(2, 3).astype(int).to_numpy()
    q["question_set"] = "scenario" if scenario else "template"
    q["split"] = _split(name, frame)
    q["options"] = _strip(frame["Option"]) if "Option" in frame.columns else None
    # Whitespace-insensitive ids: the other fields are collapsed above, the options only for the id.
    q["question_id"] = question_ids(q.assign(options=_norm(q["options"])) if "Option" in frame.columns else q,
                                    normalized=True)
    q["_file"], q["_line"] = name, np.arange(1, len(q) + 1)
    dup = q["question_id"].duplicated(keep=False).to_numpy()
    if dup.any():
        first = q.loc[dup, "question_id"].iloc[0]
        lines = q.loc[q["question_id"] == first, "_line"].tolist()
        raise LoadError(f"{name}: duplicate rows for the same question (data row {lines[0]} and data row {lines[1]}), so "
                        "each respondent answers it twice. Keep one row per question.")
    codes, raw, who, respondents = _answers(name, frame)
    if not who:
        raise LoadError(f"{name}: no answer columns. Add 'gpt-4o-mini_role_N_answer' (0/1/2), raw replies in "
                        "'gpt-4o-mini_role_N', or '<model>_answer' columns.")
    return q, (codes, raw), who, respondents


def _split(name: str, frame: pd.DataFrame) -> object:
    if "split" in {c.lower() for c in frame.columns}:
        col = next(c for c in frame.columns if c.lower() == "split")
        return frame[col].astype("string").str.lower().to_numpy()
    low = name.lower()
    return "test" if "test" in low else "train" if "train" in low else None


def _answers(name: str, frame: pd.DataFrame):
    """Answer codes (rows x respondents; -1 = no answer, else an index into ANSWERS) and raw replies."""
    personas = persona_names()
    cols = list(frame.columns)
    role_re = re.compile(re.escape(PERSONA_PREFIX) + r"(\d+)(?:_answer)?")
    role_ids = sorted({int(m.group(1)) for c in cols if (m := role_re.fullmatch(c))})
    codes, raws, who, respondents = [], [], [], {}
    for rid in role_ids:
        name_r = personas[rid - 1] if 1 <= rid <= len(personas) else f"Role {rid}"
        code_col, raw_col = f"{PERSONA_PREFIX}{rid}_answer", f"{PERSONA_PREFIX}{rid}"
        raw = frame[raw_col] if raw_col in frame.columns else None
        codes.append(_decode(name, frame[code_col]) if code_col in frame.columns else _parse_raw(raw))
        raws.append(raw)
        who.append(name_r)
        respondents[name_r] = {"respondent": name_r, "kind": "persona",
                               "description": f"gpt-4o-mini role-playing persona {rid}",
                               "provenance": f"column {code_col if code_col in frame.columns else raw_col} of {name}"}
    for c in cols:
        if not c.endswith("_answer") or c.startswith(PERSONA_PREFIX) or c.lower() in _NOT_ANSWERS:
            continue
        name_m = canonical_model_name(c[: -len("_answer")])
        codes.append(_decode(name, frame[c]))
        raws.append(frame[c[: -len("_answer")]] if c[: -len("_answer")] in frame.columns else None)
        who.append(name_m)
        respondents[name_m] = {"respondent": name_m, "kind": "model", **model_info(name_m),
                               "provenance": f"column {c} of {name}"}
    if not who:
        return np.zeros((len(frame), 0), np.int8), None, who, respondents
    matrix = np.column_stack(codes).astype(np.int8)
    raw = None
    if any(r is not None for r in raws):
        raw = np.column_stack([r.astype(object).where(r.notna(), None).to_numpy() if r is not None
                               else np.full(len(frame), None, dtype=object) for r in raws])
    return matrix, raw, who, respondents


_CODE_KEYS = ["0", "1", "2", "0.0", "1.0", "2.0", "A", "B", "C"]
_CODE_VALUES = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, -1], dtype=np.int8)  # last: unknown / missing


def _decode(name: str, col: pd.Series) -> np.ndarray:
    """0/1/2 or A/B/C -> 0/1/2; empty -> -1; anything else is an error naming the cell."""
    if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
        v = col.to_numpy(dtype=float, na_value=np.nan)
        ok = np.isin(v, (0.0, 1.0, 2.0))
        bad = ~ok & ~np.isnan(v)
        out = np.where(ok, np.nan_to_num(v, nan=-1), -1).astype(np.int8)
    else:
        s = col.astype("string").str.strip().str.upper()
        idx = pd.Categorical(s, categories=_CODE_KEYS).codes  # -1 for missing or unknown
        out = _CODE_VALUES[idx]
        bad = (idx == -1) & s.notna().to_numpy(dtype=bool) & (s != "").fillna(False).to_numpy(dtype=bool)
    if bad.any():
        i = int(np.argmax(bad))
        raise LoadError(f"{name}: column {col.name!r} has the answer code {str(col.iloc[i])!r} in data row {i + 1} "
                        f"({int(bad.sum())} bad value(s) in all). Answer codes are 0/1/2 (or A/B/C); "
                        "leave a cell empty where there is no answer.")
    return out


def _parse_raw(raw: pd.Series | None) -> np.ndarray:
    index = {a: i for i, a in enumerate(ANSWERS)}
    return np.array([index[parse_reply(t)] if isinstance(t, str) and t.strip() else -1 for t in raw], dtype=np.int8)


def _merge_duplicates(q: pd.DataFrame, uniq: np.ndarray, qc: np.ndarray, rc: np.ndarray, ac: np.ndarray,
                      names: list[str]) -> np.ndarray:
    """The same question in two files: identical answers merge, different answers are an error."""
    key = qc.astype(np.int64) * (len(names) + 1) + rc
    order = np.argsort(key, kind="stable")
    k, a = key[order], ac[order]
    same = k[1:] == k[:-1]
    conflict = same & (a[1:] != a[:-1])
    if conflict.any():
        i = order[int(np.argmax(conflict))]
        rows = q[q["question_id"] == uniq[qc[i]]]
        lines = ", ".join(f"{f} row {n}" for f, n in zip(rows["_file"], rows["_line"]))
        raise LoadError(f"duplicate rows for the same question and respondent {names[rc[i]]!r} ({lines}) with "
                        "different answers. Keep one row per question.")
    keep = np.ones(len(key), dtype=bool)
    keep[order[1:][same]] = False
    return keep


def _templates(q: pd.DataFrame) -> np.ndarray:
    """Number the distinct questions of each (problem, group, dimension) 1, 2, ... in file order."""
    key = ["specific_problem", "group_name", "dimension"]
    return (q.groupby(key, sort=False, dropna=False).cumcount() + 1).to_numpy()


def to_wide(batch: Batch) -> pd.DataFrame:
    """Write a batch in the published layout (used for the full-size benchmark file and tests).

    >>> isinstance(to_wide, object)
    True
    """
    topics = {t["name"]: t["number"] for t in taxonomy()["topics"]}
    q = batch.questions.reset_index(drop=True)
    wide = pd.DataFrame({
        "Topic": q["topic"], "Problem Category": q["problem_category"], "Specific Problem": q["specific_problem"],
        "Group Type": q["group_type"], "Group": q["group_name"],
        "Perspective": [f"{topics.get(t, 0)}.{int(d)}" for t, d in zip(q["topic"], q["dimension"])],
        "Option": q["options"], "Question": q["text"],
    })
    pos = pd.Series(np.arange(len(q)), index=q["question_id"])
    kinds = dict(zip(batch.respondents["respondent"], batch.respondents["kind"]))
    code = {"A": 0, "B": 1, "C": 2}
    for i, who in enumerate(persona_names(), start=1):
        sub = batch.answers[batch.answers["respondent"] == who]
        col = np.full(len(q), np.nan)
        col[pos[sub["question_id"]].to_numpy()] = sub["answer"].map(code).to_numpy()
        wide[f"{PERSONA_PREFIX}{i}"] = pd.Series(col).map({0: "A", 1: "B", 2: "C"}).astype("string")
        wide[f"{PERSONA_PREFIX}{i}_answer"] = pd.array(col, dtype="Int64") if not np.isnan(col).all() else col
    for who, kind in kinds.items():
        if kind != "model":
            continue
        sub = batch.answers[batch.answers["respondent"] == who]
        col = np.full(len(q), np.nan)
        col[pos[sub["question_id"]].to_numpy()] = sub["answer"].map(code).to_numpy()
        wide[f"{published_model_column(who)}_answer"] = pd.array(col, dtype="Float64").astype("Int64")
    return wide
