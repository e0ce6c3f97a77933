"""Canonical names, answer codes, the taxonomy and the library's errors.

Every reader turns its input into three *canonical frames* (see :class:`Batch`):

``questions``
    ``question_id, question_set, topic, problem_category, specific_problem, group_type,
    group_name, dimension, template, text, options, split``
``respondents``
    ``respondent, kind, region, org, description, provenance``
``answers``
    ``question_id, respondent, answer, p_a, p_b, p_c, raw, run_id``

``answer`` is one of ``A`` (the dimension's first pole), ``B`` (second pole), ``C`` (N/A),
``unparsed`` (a reply that could not be read) or ``refused`` (an explicit refusal).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FairppError", "LoadError", "QUESTION_COLUMNS", "RESPONDENT_COLUMNS", "ANSWER_COLUMNS",
    "ANSWERS", "OPTION_ANSWERS", "RESPONDENT_KINDS", "SLICE_COLUMNS", "Batch", "taxonomy",
    "question_ids", "ID_FIELDS", "normalize_space", "canonical_model_name", "model_info", "persona_names",
]


class FairppError(Exception):
    """Base class of the errors the library raises on purpose (pages show these with ``st.error``)."""


class LoadError(FairppError):
    """Input that cannot be loaded. The message names the file, the column or row, and the fix."""


QUESTION_COLUMNS = [
    "question_id", "question_set", "topic", "problem_category", "specific_problem", "group_type",
    "group_name", "dimension", "template", "text", "options", "split",
]
RESPONDENT_COLUMNS = ["respondent", "kind", "region", "org", "description", "provenance"]
ANSWER_COLUMNS = ["question_id", "respondent", "answer", "p_a", "p_b", "p_c", "raw", "run_id"]

OPTION_ANSWERS = ("A", "B", "C")
ANSWERS = ("A", "B", "C", "unparsed", "refused")
RESPONDENT_KINDS = ("persona", "model", "probe", "custom")
#: Columns a slice (``--slice COLUMN=VALUE``) or a finer unit can use.
SLICE_COLUMNS = ("topic", "problem_category", "specific_problem", "group_type", "group_name",
                 "dimension", "template", "split", "question_set")


@lru_cache(maxsize=1)
def taxonomy() -> dict[str, Any]:
    """The packaged Fair-PP taxonomy (topics, groups, dimensions, personas, models).

    Examples
    --------
    >>> len(taxonomy()["personas"])
    7
    """
    text = resources.files("fairpp").joinpath("data/taxonomy.json").read_text(encoding="utf-8")
    return json.loads(text)


def persona_names() -> list[str]:
    """The seven persona names in survey order.

    >>> persona_names()[0]
    'Progressive Activists'
    """
    return [p["name"] for p in taxonomy()["personas"]]


# Column names used by the published files for the six models, mapped to the names users know.
_MODEL_ALIASES = {
    "llama3.1-8b-cpt-sea-lionv3-instruct": "Llama-SEA-LION-v3-8B-IT",
    "mistral-7b-instruct": "Mistral-7B-Instruct-v0.3",
}


def canonical_model_name(name: str) -> str:
    """Map a model name as it appears in a column to the name users know.

    >>> canonical_model_name("llama3.1-8b-cpt-sea-lionv3-instruct")
    'Llama-SEA-LION-v3-8B-IT'
    >>> canonical_model_name("Qwen2.5-7B-Instruct")
    'Qwen2.5-7B-Instruct'
    """
    key = name.strip().lower()
    if key in _MODEL_ALIASES:
        return _MODEL_ALIASES[key]
    for m in taxonomy()["models"]:
        if m["name"].lower() == key:
            return m["name"]
    return name.strip()


def published_model_column(name: str) -> str:
    """The name a model's answer column carries in the published files (inverse of the aliases).

    >>> published_model_column("Llama-SEA-LION-v3-8B-IT")
    'llama3.1-8b-cpt-sea-lionv3-instruct'
    """
    for alias, canonical in _MODEL_ALIASES.items():
        if canonical == name:
            return "Mistral-7B-Instruct" if alias == "mistral-7b-instruct" else alias
    return name


def model_info(name: str) -> dict[str, str | None]:
    """Region and organisation of a known model, or ``None`` values for an unknown one.

    >>> model_info("Qwen2.5-7B-Instruct")["region"]
    'East Asia (China)'
    """
    for m in taxonomy()["models"]:
        if m["name"] == name:
            return {"region": m["region"], "org": m["org"]}
    return {"region": None, "org": None}


ID_FIELDS = ["question_set", "topic", "problem_category", "specific_problem", "group_type",
              "group_name", "dimension", "text", "options"]


def question_ids(frame: pd.DataFrame, *, normalized: bool = False) -> pd.Series:
    """Content-derived question ids: the same question in two files gets the same id.

    The id is a 60-bit integer: the first 15 hex digits of the MD5 of the content (integers keep the
    answers table small and its joins fast).

    The id hashes the question set, the taxonomy fields, the dimension, the text and the options, with
    whitespace collapsed (``normalized=True``: the caller already did that with :func:`normalize_space`).

    >>> f = pd.DataFrame({c: ["x"] for c in ID_FIELDS})
    >>> bool(question_ids(f).iloc[0] == question_ids(f.copy()).iloc[0])
    True
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = []
    for c in ID_FIELDS:
        col = frame[c].astype("string[pyarrow]") if normalized else normalize_space(frame[c])
        arr = pa.array(col.fillna("").array)
        parts.append((arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr).cast(pa.large_string()))
    joined = pc.binary_join_element_wise(*parts, pa.scalar("\x1f", pa.large_string()))
    # Hash the UTF-8 bytes straight from the Arrow buffer (no Python strings), then read the first 8 bytes
    # of every digest at once as big-endian integers.
    data = memoryview(joined.buffers()[2] or b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset:joined.offset + len(joined) + 1].tolist()
    md5 = hashlib.md5
    digests = b"".join([md5(data[a:b]).digest() for a, b in zip(offsets[:-1], offsets[1:])])
    first = np.frombuffer(digests, dtype=">u8").reshape(-1, 2)[:, 0] if digests else np.zeros(0, dtype=">u8")
    return pd.Series((first >> np.uint64(4)).astype(np.int64), index=frame.index, dtype=np.int64)


def normalize_space(col: pd.Series) -> pd.Series:
    """Collapse runs of whitespace to one space and trim (vectorised with Arrow).

    >>> normalize_space(pd.Series(["  a \\n b  ", None])).tolist()
    ['a b', <NA>]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array(col.astype("string[pyarrow]").array)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = arr.dictionary_encode()  # check and normalise each distinct value once
    values = enc.dictionary
    if pc.any(pc.match_substring_regex(values, pattern=r"\s\s|[\t\n\r\f\v]|^\s|\s$")).as_py():
        clean = pc.utf8_trim_whitespace(pc.replace_substring_regex(values, pattern=r"\s+", replacement=" "))
        arr = clean.take(enc.indices)
    return pd.Series(pd.arrays.ArrowStringArray(arr), index=col.index)


@dataclass
class Batch:
    """Canonical frames produced by a reader, plus where they came from.

    ``source`` holds ``kind`` (``published``, ``file``, ``hub`` or ``demo``), ``label``, ``file_name``,
    ``sha256``, ``synthetic`` and ``rows_read`` / ``rows_rejected`` for the data-quality report.
    """

    questions: pd.DataFrame
    respondents: pd.DataFrame
    answers: pd.DataFrame
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.questions = _conform(self.questions, QUESTION_COLUMNS)
        self.respondents = _conform(self.respondents, RESPONDENT_COLUMNS)
        self.answers = _conform(self.answers, ANSWER_COLUMNS)


def _conform(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The frame's ``columns`` in order; a column the reader did not give is all missing, typed: probabilities
    as NaN, the rest as Arrow strings (a full-size answers frame would otherwise carry 233k ``None`` objects
    per column, which every later step has to look at one by one)."""
    import pyarrow as pa

    n = len(frame)
    fill = {c: np.full(n, np.nan) if c in _PROBABILITIES else pd.arrays.ArrowStringArray(pa.nulls(n, pa.large_string()))
            for c in columns if c not in frame.columns}
    # copy-on-write (pandas >= 3): the selection shares the reader's arrays until someone writes to them
    return (frame.assign(**fill) if fill else frame)[columns].reset_index(drop=True)


_PROBABILITIES = ("p_a", "p_b", "p_c")


@dataclass
class AnswerMatrix:
    """Answers of several respondents as one dense array, the input of distances and agreement.

    ``probs[r, q]`` is respondent ``r``'s distribution over (A, B, C) on question ``q``: one-hot for a
    plain answer, the renormalised probabilities for a soft one, the mean over repeated samples, and
    ``NaN`` where the respondent gave no A/B/C answer (unanswered, unparsed or refused).
    ``dimension[q]`` is the question's dimension (1..5).
    """

    respondents: list[str]
    kinds: list[str]
    question_ids: list[int]
    dimension: "Any"  # numpy int array, shape (Q,)
    probs: "Any"  # numpy float array, shape (R, Q, 3)

    def answered(self) -> "Any":
        """Boolean array (R, Q): whether each respondent has an A/B/C answer on each question."""
        import numpy as np

        return ~np.isnan(self.probs[:, :, 0])
