"""The tidy long layout for users' own data: one row per (question, respondent) answer.

Required columns: ``text``, ``dimension`` (1..5), ``respondent``, ``answer`` (A/B/C or 0/1/2).
Optional: ``topic, problem_category, specific_problem, group_type, group`` (or ``group_name``),
``template, options, split, question_set, kind, region, org, description, p_a, p_b, p_c, raw, run_id``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from fairpp.schema import (
    RESPONDENT_KINDS, Batch, LoadError, model_info, persona_names, question_ids, taxonomy,
)

__all__ = ["to_batch", "REQUIRED"]

REQUIRED = ["text", "dimension", "respondent", "answer"]
_CODES = {"0": "A", "1": "B", "2": "C", "0.0": "A", "1.0": "B", "2.0": "C", "a": "A", "b": "B", "c": "C",
          "unparsed": "unparsed", "refused": "refused"}
_Q_FIELDS = ["question_set", "topic", "problem_category", "specific_problem", "group_type", "group_name",
             "dimension", "template", "text", "options", "split"]


def to_batch(frames: Sequence[tuple[str, pd.DataFrame, str]]) -> Batch:
    """Turn tidy files into one batch."""
    parts = []
    for name, frame, _ in frames:
        f = frame.rename(columns=lambda c: str(c).strip().lower().replace(" ", "_"))
        f = f.rename(columns={"group": "group_name", "question": "text"})
        missing = [c for c in REQUIRED if c not in f.columns]
        if missing:
            raise LoadError(f"{name}: missing required column(s) {missing}. The tidy layout needs {REQUIRED}; "
                            "rename your columns or use the Fair-PP wide layout.")
        f = f.assign(_file=name, _line=np.arange(1, len(f) + 1))
        parts.append(_validate(name, f))
    df = pd.concat(parts, ignore_index=True)
    for c in _Q_FIELDS:
        if c not in df.columns:
            df[c] = "template" if c == "question_set" else None
    df["question_id"] = question_ids(df)
    dup = df.duplicated(["question_id", "respondent"], keep=False)
    if dup.any():
        d = df[dup].sort_values(["question_id", "respondent", "_file", "_line"]).head(2)
        lines = ", ".join(f"{f} row {n}" for f, n in zip(d["_file"], d["_line"]))
        raise LoadError(f"duplicate rows for the same question and respondent {d.iloc[0]['respondent']!r} "
                        f"({lines}). Keep one answer per question and respondent.")
    questions = df.drop_duplicates("question_id")[["question_id", *_Q_FIELDS]]
    answers = df[[c for c in ["question_id", "respondent", "answer", "p_a", "p_b", "p_c", "raw", "run_id"]
                  if c in df.columns]]
    return Batch(questions=questions, respondents=_respondents(df), answers=answers,
                 source={"rows_read": len(df), "rows_rejected": 0})


def _validate(name: str, f: pd.DataFrame) -> pd.DataFrame:
    for col in ("text", "respondent", "dimension", "answer"):
        empty = f[col].isna() | (f[col].astype("string").str.strip() == "")
        if empty.any():
            raise LoadError(f"{name}: column {col!r} is empty in data row {int(np.argmax(empty.to_numpy())) + 1}. "
                            "Every row needs a question text, a dimension, a respondent and an answer.")
    dim = pd.to_numeric(f["dimension"], errors="coerce")
    bad = ~dim.isin([1, 2, 3, 4, 5])
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise LoadError(f"{name}: dimension {str(f['dimension'].iloc[i])!r} in data row {i + 1} is not 1..5. "
                        "Use the dimension number (1 libertarianism/egalitarianism .. 5 moral/law).")
    f["dimension"] = dim.astype(int)
    code = f["answer"].astype("string").str.strip().str.lower().map(_CODES, na_action="ignore")
    bad = code.isna()
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        raise LoadError(f"{name}: answer {str(f['answer'].iloc[i])!r} in data row {i + 1} is not an answer code "
                        f"({int(bad.sum())} bad value(s) in all). Use A/B/C (or 0/1/2).")
    f["answer"] = code
    if "kind" in f.columns:
        bad = ~f["kind"].fillna("custom").isin(RESPONDENT_KINDS)
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise LoadError(f"{name}: kind {str(f['kind'].iloc[i])!r} in data row {i + 1}; use one of {RESPONDENT_KINDS}.")
    for c in ("p_a", "p_b", "p_c"):
        if c in f.columns:
            f[c] = pd.to_numeric(f[c], errors="coerce")
    f["respondent"] = f["respondent"].astype("string").str.strip()
    return f


def _respondents(df: pd.DataFrame) -> pd.DataFrame:
    personas = set(persona_names())
    models = {m["name"] for m in taxonomy()["models"]}
    rows = []
    for who, g in df.groupby("respondent", sort=False):
        first = g.iloc[0]
        kind = first.get("kind") if isinstance(first.get("kind"), str) else (
            "persona" if who in personas else "model" if who in models else "custom")
        info = model_info(who)
        rows.append({"respondent": who, "kind": kind,
                     "region": first.get("region") if isinstance(first.get("region"), str) else info["region"],
                     "org": first.get("org") if isinstance(first.get("org"), str) else info["org"],
                     "description": first.get("description") if isinstance(first.get("description"), str) else None,
                     "provenance": f"file {first['_file']}"})
    return pd.DataFrame(rows)
