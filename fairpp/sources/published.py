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
    Batch, LoadError, canonical_model_name, model_info, persona_names, published_model_column, question_ids,
    taxonomy,
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
    """
    questions, answers, respondents = [], [], {}
    for name, frame, _ in frames:
        q, a, r = _one_file(name, frame)
        questions.append(q)
        answers.append(a)
        respondents.update(r)
    q = pd.concat(questions, ignore_index=True)
    a = pd.concat(answers, ignore_index=True)
    a = _merge_duplicates(a, q)
    q = q.drop_duplicates("question_id").drop(columns=["_file", "_line"])
    q["template"] = _templates(q)
    resp = pd.DataFrame(list(respondents.values()))
    resp = resp[resp["respondent"].isin(set(a["respondent"]))]
    source = {"rows_read": int(sum(len(f) for _, f, _ in frames)), "rows_rejected": 0}
    return Batch(questions=q, respondents=resp, answers=a.drop(columns=["_file", "_line"]), source=source)


def _one_file(name: str, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, dict]]:
    frame = frame.rename(columns=lambda c: str(c).strip())
    lower = {c.lower(): c for c in frame.columns}
    missing = [c for c in REQUIRED if c.lower() not in lower]
    if missing:
        raise LoadError(f"{name}: missing required column(s) {missing}. The Fair-PP layout needs {REQUIRED} "
                        "plus answer columns such as 'gpt-4o-mini_role_1_answer'; rename the columns to match.")
    frame = frame.rename(columns={lower[c.lower()]: c for c in [*REQUIRED, "Option"] if c.lower() in lower})
    for col in REQUIRED:
        empty = frame[col].isna() | (frame[col].astype("string").str.strip() == "")
        if empty.any():
            raise LoadError(f"{name}: column {col!r} is empty in data row {int(np.argmax(empty.to_numpy())) + 1}"
                            f" ({int(empty.sum())} row(s) in all). Fill it in or drop those rows.")
    persp = frame["Perspective"].astype("string").str.strip()
    m = persp.str.extract(_PERSPECTIVE)
    bad = m[0].isna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise LoadError(f"{name}: unknown Perspective code {persp.iloc[i]!r} in data row {i + 1}. Codes are "
                        "'T.D' with topic T in 1..5 and dimension D in 1..5 (for example 2.3).")
    q = frame[[c for c in _RENAME if c in frame.columns]].rename(columns=_RENAME).astype("string")
    q = q.map(lambda v: " ".join(v.split()) if isinstance(v, str) else v)  # tidy whitespace only
    q["dimension"] = m[1].astype(int).to_numpy()
    q["question_set"] = "template"
    q["split"] = _split(name, frame)
    if "options" not in q.columns:
        q["options"] = None
    q["question_id"] = question_ids(q)
    q["_file"], q["_line"] = name, np.arange(1, len(q) + 1)
    answers, respondents = _answers(name, frame)
    if not answers:
        raise LoadError(f"{name}: no answer columns. Add 'gpt-4o-mini_role_N_answer' (0/1/2), raw replies in "
                        "'gpt-4o-mini_role_N', or '<model>_answer' columns.")
    a = pd.concat(answers, ignore_index=True)
    a["_file"] = name
    a["question_id"] = q["question_id"].to_numpy()[a.pop("_row").to_numpy()]
    return q, a, respondents


def _split(name: str, frame: pd.DataFrame) -> object:
    if "split" in {c.lower() for c in frame.columns}:
        col = next(c for c in frame.columns if c.lower() == "split")
        return frame[col].astype("string").str.lower().to_numpy()
    low = name.lower()
    return "test" if "test" in low else "train" if "train" in low else None


def _answers(name: str, frame: pd.DataFrame) -> tuple[list[pd.DataFrame], dict[str, dict]]:
    personas = persona_names()
    out, respondents = [], {}
    cols = list(frame.columns)
    role_ids = sorted({int(m.group(1)) for c in cols if (m := re.fullmatch(re.escape(PERSONA_PREFIX) + r"(\d+)(?:_answer)?", c))})
    for rid in role_ids:
        who = personas[rid - 1] if 1 <= rid <= len(personas) else f"Role {rid}"
        code_col, raw_col = f"{PERSONA_PREFIX}{rid}_answer", f"{PERSONA_PREFIX}{rid}"
        raw = frame[raw_col] if raw_col in frame.columns else None
        answer = _decode(name, frame[code_col]) if code_col in frame.columns else _parse_raw(raw)
        out.append(_long(who, answer, raw))
        respondents[who] = {"respondent": who, "kind": "persona",
                            "description": f"gpt-4o-mini role-playing persona {rid}",
                            "provenance": f"column {code_col if code_col in frame.columns else raw_col} of {name}"}
    for c in cols:
        if not c.endswith("_answer") or c.startswith(PERSONA_PREFIX) or c.lower() in _NOT_ANSWERS:
            continue
        who = canonical_model_name(c[: -len("_answer")])
        raw_col = c[: -len("_answer")]
        out.append(_long(who, _decode(name, frame[c]), frame[raw_col] if raw_col in frame.columns else None))
        respondents[who] = {"respondent": who, "kind": "model", **model_info(who),
                            "provenance": f"column {c} of {name}"}
    return out, respondents


def _decode(name: str, col: pd.Series) -> pd.Series:
    s = col.astype("string").str.strip().str.lower()
    decoded = s.map(_CODES, na_action="ignore")
    bad = s.notna() & (s != "") & decoded.isna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise LoadError(f"{name}: column {col.name!r} has the answer code {str(col.iloc[i])!r} in data row {i + 1} "
                        f"({int(bad.sum())} bad value(s) in all). Answer codes are 0/1/2 (or A/B/C); "
                        "leave a cell empty where there is no answer.")
    return decoded.astype("string")


def _parse_raw(raw: pd.Series | None) -> pd.Series:
    if raw is None:
        return pd.Series(dtype="string")
    return raw.map(lambda t: parse_reply(t) if isinstance(t, str) and t.strip() else pd.NA).astype("string")


def _long(who: str, answer: pd.Series, raw: pd.Series | None) -> pd.DataFrame:
    keep = answer.notna().to_numpy()
    rows = np.flatnonzero(keep)
    return pd.DataFrame({
        "_row": rows, "_line": rows + 1, "respondent": who, "answer": answer.to_numpy()[keep],
        "raw": raw.astype("string").to_numpy()[keep] if raw is not None else None,
    })


def _merge_duplicates(a: pd.DataFrame, q: pd.DataFrame) -> pd.DataFrame:
    """The same question answered twice by one respondent: an error within a file, merged across files."""
    key = ["question_id", "respondent"]
    dup = a.duplicated(key, keep=False)
    if not dup.any():
        return a
    d = a[dup].sort_values([*key, "_file", "_line"])
    first = d.iloc[0]
    same = d[(d["question_id"] == first["question_id"]) & (d["respondent"] == first["respondent"])]
    within = same["_file"].duplicated().any()
    conflict = (d.groupby(key)["answer"].nunique() > 1).any()
    if within or conflict:
        lines = ", ".join(f"{f} row {n}" for f, n in zip(same["_file"], same["_line"]))
        raise LoadError(f"duplicate rows for the same question and respondent {first['respondent']!r} ({lines})"
                        f"{' with different answers' if conflict else ''}. Keep one row per question.")
    return a.drop_duplicates(key)


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
