"""Tiers, weights and weighted preference pairs for one target persona (Fair-PP's alignment method).

Definitions follow ``design/science.md`` (reweighting section):

- Only questions that **every** persona present answered with A, B or C are records (an ``unparsed`` or
  ``refused`` reply, or no reply, means "not answered"). ``K`` is the number of personas present.
- ``tier = 1 + number of the other K-1 personas whose answer differs from the target's``; N/A (C)
  counts as an answer like A and B, so tier counts cover every record.
- ``T_i = (i / K)**alpha * (1 / N_i)**beta`` with ``N_i`` the records in tier ``i``; each record of tier
  ``i`` weighs ``T_i / sum_j N_j T_j``, so record weights sum to 1. Empty tiers have count 0, no weight.

Training pairs (documented choices):

- **N/A.** A target's C is kept: chosen is ``"C. N/A"`` and A and B are rejected. The target declining a
  question is part of its preference, and keeping it means every tier-counted record is in the
  training set, so the pairs carry exactly the weights the tiers define.
- **Rejected.** Each option the target did not pick (C included): every record gives exactly two pairs,
  and chosen never equals rejected.
- **Pair weight.** A pair carries its record's weight divided by the record's number of pairs (2).
  Pair weights sum to 1 and each record's pairs together weigh what the paper gives the record, so a
  weighted DPO loss (``sum weight * loss``) equals the paper's per-record weighting.

Prompts come from the probe's builder (:func:`fairpp.probe.prompts.build_messages`: the question, its
options and an instruction to answer with one letter); ``chosen``/``rejected`` are ``"B. <option text>"``.
Exports are JSONL or Parquet with TRL's DPO columns (``prompt``, ``chosen``, ``rejected``) plus ``weight``
and question metadata, written atomically with a run card beside them (``FILE.card.json``).
Pure pandas/numpy: this module never imports duckdb or streamlit; :func:`from_store` only calls a
:class:`fairpp.store.Store` it is given.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from fairpp.schema import FairppError

__all__ = ["ReweightError", "Reweighting", "answer_table", "reweight", "training_pairs", "weighting_effect",
           "export_pairs", "output_format", "from_store", "source_info", "PAIR_COLUMNS", "FORMATS"]

log = logging.getLogger(__name__)

LETTERS = ("A", "B", "C")
#: Columns of an exported pair file, in order (TRL's DPO trainer reads prompt/chosen/rejected).
PAIR_COLUMNS = ["prompt", "chosen", "rejected", "weight", "question_id", "dimension", "topic", "problem_category",
                "specific_problem", "group_type", "group_name", "split", "tier"]
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_META = PAIR_COLUMNS[5:12]
_REJECTED = np.array([[1, 2], [0, 2], [0, 1]])  # options the target did not pick, in letter order
_LETTER_DTYPE = pd.CategoricalDtype(list(LETTERS))
NA_HANDLING = "target C kept: chosen 'C. N/A', rejected A and B"
PAIR_WEIGHTING = "record weight / number of the record's pairs (2); pair weights sum to 1"


class ReweightError(FairppError):
    """A reweighting that cannot be computed as asked; the message names the problem and the fix."""


@dataclass
class Reweighting:
    """Tiers and weights for one target.

    ``records``: ``question_id, answer`` (the target's), ``tier``, ``weight`` (sums to 1), one row per
    question every persona answered. ``tiers``: ``tier, count, t_value`` (``T_i`` before normalising),
    ``weight`` (of one record; NaN for an empty tier), ``share`` (of the total weight).
    ``codes[r, k]`` is persona ``k``'s answer (0/1/2 for A/B/C) on record ``r``.
    """

    target: str
    alpha: float
    beta: float
    personas: list[str]
    records: pd.DataFrame
    tiers: pd.DataFrame
    codes: np.ndarray = field(repr=False)
    n_questions: int = 0

    @property
    def K(self) -> int:  # noqa: N802 - the paper's name
        return len(self.personas)

    @property
    def n_excluded(self) -> int:
        """Questions dropped because some persona did not answer them."""
        return self.n_questions - len(self.records)

    def summary(self) -> dict[str, Any]:
        """Target, alpha, beta, K, personas, question counts and per-tier counts and weights (JSON-ready)."""
        tiers = [{"tier": t, "count": c, "weight": None if c == 0 else w, "share": s}
                 for t, c, w, s in zip(*(self.tiers[c].tolist() for c in ("tier", "count", "weight", "share")))]
        return {"target": self.target, "alpha": self.alpha, "beta": self.beta, "K": self.K,
                "personas": list(self.personas), "questions": self.n_questions, "records": len(self.records),
                "excluded": self.n_excluded, "tier_counts": {str(t["tier"]): t["count"] for t in tiers},
                "tier_weights": {str(t["tier"]): t["weight"] for t in tiers}, "tiers": tiers}


def answer_table(answers: pd.DataFrame, *, personas: Sequence[str] | None = None) -> pd.DataFrame:
    """Persona answers as a table: index ``question_id`` (sorted), one categorical A/B/C column per persona.

    ``answers`` is long (``question_id, respondent, answer``, e.g. ``store.answers(respondents=...)``).
    ``unparsed``/``refused`` become missing; repeated answers give the most frequent letter (ties go to
    the earlier letter). Columns follow ``personas`` (those present in ``answers``) or first appearance.

    >>> a = pd.DataFrame({"question_id": [1, 1, 2, 2], "respondent": ["p", "q", "p", "q"],
    ...                   "answer": ["A", "C", "refused", "B"]})
    >>> t = answer_table(a)
    >>> t.index.tolist(), t["p"].tolist(), t["q"].tolist()
    ([1, 2], ['A', nan], ['C', 'B'])
    """
    missing = {"question_id", "respondent", "answer"} - set(answers.columns)
    if missing:
        raise ReweightError(f"answers lacks column(s) {sorted(missing)}; pass the frame store.answers() returns.")
    run, run_values, present = _runs(answers["respondent"])
    qcode, qids = _question_codes(answers["question_id"], int(np.argmax(run != run[0])) if len(run) else 0)
    names = present if personas is None else [p for p in personas if p in set(present)]
    pcode, acode = _index_in(run_values, names)[run], _letters(answers["answer"])
    ok = (pcode >= 0) & (acode >= 0)
    key = pcode[ok] * len(qids) + qcode[ok]  # persona-major: one contiguous row of codes per persona
    codes = np.full(len(qids) * len(names), -1, dtype=np.int64)
    if len(key) == 0 or np.bincount(key).max() <= 1:  # one answer per question and persona: no vote needed
        codes[key] = acode[ok]
    else:
        counts = np.bincount(key * 3 + acode[ok], minlength=codes.size * 3).reshape(-1, 3)
        codes = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)
    codes = codes.reshape(len(names), len(qids))
    return pd.DataFrame({n: pd.Categorical.from_codes(codes[j], dtype=_LETTER_DTYPE) for j, n in enumerate(names)},
                        index=pd.Index(np.asarray(qids), name="question_id"))


def reweight(table: pd.DataFrame, *, target: str, alpha: float = 1.0, beta: float = 1.0) -> Reweighting:
    """Tiers and weights for ``target`` (see the module docstring for the definitions).

    Parameters
    ----------
    table : an :func:`answer_table` (question_id x persona -> A/B/C, missing where not answered).
    target : the target persona: a column name (exact, case-insensitive or a unique prefix).
    alpha, beta : exponents of ``T_i = (i/K)**alpha * (1/N_i)**beta``, each >= 0 (1 and 1 in the paper).

    Examples
    --------
    >>> t = pd.DataFrame({"p": list("AAB"), "q": list("ABB"), "r": list("ACB")}, index=[1, 2, 3])
    >>> rw = reweight(t, target="p")
    >>> rw.records["tier"].tolist(), rw.records["weight"].round(4).tolist()
    ([1, 3, 1], [0.125, 0.75, 0.125])
    """
    alpha, beta = _exponent("alpha", alpha), _exponent("beta", beta)
    personas = [str(c) for c in table.columns]
    if len(personas) < 2:
        raise ReweightError(f"reweighting needs at least 2 personas; found {len(personas)} ({personas}). Load a "
                            "dataset with personas (fairpp demo / fairpp load) or name more of them.")
    if table.empty:
        raise ReweightError("the selection holds no answers: the filters (--slice) match nothing; widen or drop them.")
    t = personas.index(_resolve(target, personas))
    codes = np.stack([_codes(table.iloc[:, j]) for j in range(len(personas))])  # persona-major: (K, questions)
    complete = (codes >= 0).all(axis=0)
    if not complete.any():
        have = (codes >= 0).sum(axis=1)
        raise ReweightError(f"no question was answered by all {len(personas)} personas; answers per persona: "
                            f"{dict(zip(personas, have.tolist()))}. Leave out the persona with the fewest answers "
                            "or widen the selection.")
    codes = codes[:, complete]
    k = len(personas)
    tier = 1 + (codes != codes[t]).sum(axis=0)
    count = np.bincount(tier, minlength=k + 1)[1:]
    i = np.arange(1, k + 1, dtype=float)
    with np.errstate(divide="ignore"):
        t_value = np.where(count > 0, (i / k) ** alpha * (1.0 / np.maximum(count, 1)) ** beta, np.nan)
    total = float(np.nansum(t_value * count))
    w_tier = t_value / total
    records = pd.DataFrame({"question_id": np.asarray(table.index)[complete],
                            "answer": _strings(LETTERS, codes[t]), "tier": tier.astype(np.int64),
                            "weight": w_tier[tier - 1]})
    tiers = pd.DataFrame({"tier": np.arange(1, k + 1), "count": count, "t_value": t_value, "weight": w_tier,
                          "share": np.nan_to_num(w_tier * count)})
    log.info("reweight %s: K=%d, %d records, %d excluded", personas[t], k, len(records), len(table) - len(records))
    return Reweighting(target=personas[t], alpha=alpha, beta=beta, personas=personas, records=records,
                       tiers=tiers, codes=np.ascontiguousarray(codes.T, dtype=np.int64), n_questions=len(table))


def training_pairs(result: Reweighting, questions: pd.DataFrame) -> pd.DataFrame:
    """Weighted preference pairs in TRL's DPO layout (columns :data:`PAIR_COLUMNS`), two per record.

    ``questions`` needs ``question_id, text, options`` and the metadata columns (``store.questions()``).
    The text columns (``prompt``, ``chosen``, ``rejected``, ``topic`` ... ``split``) are pandas Categoricals
    of strings: each distinct text is held once, the categories are the distinct values in sorted order (so
    sorting and comparing behave as on plain strings; ``chosen`` and ``rejected`` share one set, so they
    compare with each other), and :func:`export_pairs` writes them as plain string columns.
    """
    from fairpp.probe.prompts import INSTRUCTION, format_options, parse_options  # the probe's prompt builder

    need = {"question_id", "text", "options", *_META} - set(questions.columns)
    if need:
        raise ReweightError(f"questions lacks column(s) {sorted(need)}; pass the frame store.questions() returns.")
    rec = result.records
    qi = questions.drop_duplicates("question_id")
    pos = pd.Index(qi["question_id"].to_numpy(dtype=np.int64)).get_indexer(rec["question_id"].to_numpy())
    if (pos < 0).any():
        raise ReweightError(f"question {rec['question_id'].iloc[int(np.argmin(pos))]} has answers but no text; "
                            "load its questions (same source) first.")
    ocode, opts = _encode(qi["options"], pos)
    if (ocode < 0).any():
        raise ReweightError(f"question {rec['question_id'].iloc[int(np.argmin(ocode))]} has no options; load its "
                            "questions again (options 'A. ...', 'B. ...', 'C. N/A').")
    parsed = [_parse_options(o, parse_options) for o in opts]
    # Same text as build_messages(text, options)[-1]["content"]: stripped text + option block, each built once.
    bcode, blocks = _factorize([f"\n\n{format_options(p)}\n\n{INSTRUCTION}" for p in parsed])
    lcode, labels = _factorize([f"{x}. {p[x]}" for p in parsed for x in LETTERS])  # 3 per options string
    tcode, texts = _encode(qi["text"].astype("str").str.strip(), pos)
    pcode, prompts = _prompts(tcode, texts, bcode[ocode], blocks)
    chosen = _letters(rec["answer"])
    if (chosen < 0).any():
        raise ReweightError("result.records holds an answer other than A, B or C; pass the result reweight() returns.")
    rows = np.repeat(np.arange(len(rec)), 2)
    label = ocode[rows] * 3
    out = {"prompt": _categorical(pcode[rows], prompts),
           "chosen": _categorical(lcode[label + chosen[rows]], labels),
           "rejected": _categorical(lcode[label + _REJECTED[chosen].ravel()], labels),
           "weight": rec["weight"].to_numpy()[rows] / 2.0,
           "question_id": rec["question_id"].to_numpy(dtype=np.int64)[rows]}
    for c in _META:
        if c == "dimension":
            out[c] = qi[c].to_numpy(dtype=np.int64)[pos[rows]]
        else:
            codes, values = _encode(qi[c], pos)
            out[c] = _categorical(codes[rows], values)
    out["tier"] = rec["tier"].to_numpy()[rows]
    return pd.DataFrame(out, columns=PAIR_COLUMNS)


def weighting_effect(result: Reweighting, *, base: float = 2.0) -> pd.DataFrame:
    """What the weighting does to the training set's answer distribution.

    Rows: ``training (uniform)`` and ``training (weighted)`` (the distribution of chosen answers with
    uniform and with tier weights), then every persona (``kind`` target/persona) on the same records.
    Columns ``A, B, C`` (shares), ``js_before`` and ``js_after``: Jensen-Shannon distance (base 2 by
    default, in [0, 1]) from the persona to the uniform and to the weighted training distribution.
    """
    rec = result.records
    onehot = np.eye(3)[result.codes]  # (R, K, 3)
    chosen = onehot[:, result.personas.index(result.target)]
    before = chosen.mean(axis=0)
    after = (chosen * rec["weight"].to_numpy()[:, None]).sum(axis=0) / rec["weight"].sum()
    dist = onehot.mean(axis=0)  # (K, 3)
    names = ["training (uniform)", "training (weighted)", *result.personas]
    kinds = ["training", "training", *("target" if p == result.target else "persona" for p in result.personas)]
    probs = np.vstack([before, after, dist])
    js_b = np.r_[np.nan, np.nan, _js(dist, before, base)]
    js_a = np.r_[np.nan, np.nan, _js(dist, after, base)]
    return pd.DataFrame({"respondent": names, "kind": kinds, "A": probs[:, 0], "B": probs[:, 1], "C": probs[:, 2],
                         "js_before": js_b, "js_after": js_a})


def export_pairs(pairs: pd.DataFrame, out: str | Path, *, result: Reweighting,
                 source: Mapping[str, Any] | None = None, filters: Mapping[str, Any] | None = None,
                 fmt: str | None = None) -> dict[str, Any]:
    """Write ``pairs`` (JSONL or Parquet) and its run card ``OUT.card.json``, both atomically.

    ``fmt`` defaults from the suffix (``.jsonl``/``.json``, ``.parquet``/``.pq``). On any error neither file
    is left behind (a previous file at ``out`` stays as it was). Returns the card.
    """
    out = Path(out)
    fmt = output_format(out, fmt)
    if list(pairs.columns[:len(PAIR_COLUMNS)]) != PAIR_COLUMNS or pairs.empty:
        raise ReweightError("pairs must be the non-empty frame training_pairs() returns.")
    card_path = out.with_name(out.name + ".card.json")
    tmp, tmp_card = (p.with_name(f".{p.name}.{uuid.uuid4().hex}.tmp") for p in (out, card_path))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        sha256 = (_write_jsonl if fmt == "jsonl" else _write_parquet)(pairs, tmp)  # each hashes what it writes
        card = _card(pairs, result=result, source=source, filters=filters, out=out, fmt=fmt, sha256=sha256)
        tmp_card.write_text(json.dumps(card, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, out)
        os.replace(tmp_card, card_path)
    except OSError as exc:
        raise ReweightError(f"cannot write {out}: {exc}; choose another --out path.") from exc
    finally:
        tmp.unlink(missing_ok=True)
        tmp_card.unlink(missing_ok=True)
    log.info("wrote %d pairs to %s", len(pairs), out)
    return card


def output_format(out: str | Path, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format the suffix of ``out`` names; raises when neither says.

    >>> output_format("pairs.parquet"), output_format("pairs.out", "jsonl")
    ('parquet', 'jsonl')
    """
    fmt = fmt or FORMATS.get(Path(out).suffix.lower())
    if fmt not in ("jsonl", "parquet"):
        raise ReweightError(f"cannot tell the format of {Path(out).name!r}; end the name in .jsonl or .parquet, "
                            "or pass --format jsonl|parquet.")
    return fmt


def source_info(store: Any) -> dict[str, Any]:
    """The active dataset's provenance for a run card: kind, label, synthetic, sha256 (list), files."""
    src = store.active_source() or {}
    rows = store.sources()
    rows = rows[(rows["role"] == "dataset") & rows["active"].astype(bool)] if not rows.empty else rows
    hashes = [h for h in rows.get("sha256", pd.Series(dtype=object)).tolist() if h]
    hashes += [f["sha256"] for f in src.get("files", []) if f.get("sha256") and f["sha256"] not in hashes]
    return {"kind": src.get("kind"), "label": src.get("label"), "synthetic": bool(src.get("synthetic", False)),
            "sha256": hashes, "files": src.get("files", []), "loaded_at": src.get("loaded_at")}


def from_store(store: Any, *, target: str, alpha: float = 1.0, beta: float = 1.0,
               filters: Mapping[str, Sequence[Any]] | None = None,
               personas: Sequence[str] | None = None) -> tuple[Reweighting, pd.DataFrame]:
    """Tiers, weights and pairs from a :class:`fairpp.store.Store` (personas default to kind ``persona``).

    Checks ``alpha``/``beta`` before reading anything. Returns ``(result, pairs)``.
    """
    _exponent("alpha", alpha), _exponent("beta", beta)
    known = store.respondents(kinds=["persona", "custom"])["respondent"].tolist()
    if not known:
        raise ReweightError("no personas are loaded; run `fairpp demo` or `fairpp load FILE` first.")
    if personas is None:
        personas = store.respondents(kinds=["persona"])["respondent"].tolist()
    else:
        personas = [_resolve(p, known) for p in personas]
    target = _resolve(target, known)
    if target not in personas:
        personas = [*personas, target]  # a named target (e.g. a custom persona) joins the set
    answers = store.answers(filters, respondents=personas)
    if answers.empty:
        raise ReweightError(f"no persona answers under the selection {dict(filters or {})}; widen or drop --slice."
                            if filters else "no persona answers are loaded; run `fairpp demo` or `fairpp load FILE`.")
    table = answer_table(answers, personas=personas)
    if len(table.columns) < len(personas):
        log.warning("personas without answers under the selection (K counts only the others): %s",
                    sorted(set(personas) - set(table.columns)))
    result = reweight(table, target=target, alpha=alpha, beta=beta)
    return result, training_pairs(result, store.questions(filters))


# -- helpers -------------------------------------------------------------------------------------------
def _exponent(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ReweightError(f"{name}={value!r} is out of range; pass a finite number >= 0 (the paper uses 1).")
    return float(value)


def _resolve(name: str, names: Sequence[str]) -> str:
    key = str(name).strip().lower()
    found = [n for n in names if n == name] or [n for n in names if n.lower() == key] \
        or [n for n in names if n.lower().startswith(key)]
    if len(found) != 1:
        raise ReweightError(f"persona {name!r} {'is ambiguous' if found else 'is unknown'}; known personas: "
                            f"{list(names)}.")
    return found[0]


_ONE_LINE = re.compile(r"^\s*\(?A[.):]\s*(.*?)\s+\(?B[.):]\s*(.*?)(?:\s+\(?C[.):]\s*(.*?))?\s*$", re.S)


def _parse_options(options: str, parse: Any) -> dict[str, str]:
    """The probe's option parser, plus blocks whose line breaks a loader collapsed ("A. x B. y C. N/A")."""
    try:
        return parse(options)
    except FairppError:
        m = _ONE_LINE.match(str(options))
        if not m:
            raise
        return {"A": m.group(1), "B": m.group(2), "C": m.group(3) or "N/A"}


def _question_codes(col: pd.Series, period: int) -> tuple[np.ndarray, Any]:
    """``pd.factorize(col, sort=True)``; when ``col`` repeats its first ``period`` values over and over (every
    respondent's answers in the same question order), only those are factorized."""
    values = col.to_numpy()
    n = len(values)
    if 0 < period < n and n % period == 0 and values.dtype.kind in "iu" \
            and (values.reshape(-1, period) == values[:period]).all():
        uniques, codes = np.unique(values[:period], return_inverse=True)
        return np.tile(codes, n // period), uniques
    return pd.factorize(col, sort=True)


def _runs(col: pd.Series) -> tuple[np.ndarray, Any, list[str]]:
    """Runs of equal neighbours in a text column: ``(run, values, present)``, each row's run, each run's value
    (Arrow, missing as null) and the values present in order of first appearance (missing left out).

    Answers come grouped by respondent, so looking up each run's value, not each row's, skips almost all
    of the string hashing; a Categorical column is read through its codes.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        values = pa.array(np.asarray([str(c) for c in col.cat.categories], dtype=object), pa.large_string())
        run = codes.astype(np.int64)
        run[codes < 0] = len(values)
        values = pa.concat_arrays([values, pa.nulls(1, pa.large_string())])
        first = pd.unique(run)
        return run, values, [str(v) for v in values.take(first[first < len(values) - 1]).to_pylist()]
    runs = pc.run_end_encode(_large_strings(col.astype("str")))
    ends = runs.run_ends.to_numpy(zero_copy_only=False).astype(np.int64)
    run = np.repeat(np.arange(len(ends)), np.diff(ends, prepend=0))
    present = [str(v) for v in pc.unique(runs.values).drop_null().to_pylist()]  # in order of first appearance
    return run, runs.values, present


def _index_in(values: Any, names: Sequence[str]) -> np.ndarray:
    """Position of each of the Arrow strings ``values`` in ``names`` (-1 where absent or missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    found = pc.index_in(values, value_set=pa.array(list(names), values.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


def _strings(values: Sequence[str], codes: np.ndarray) -> Any:
    """``values[codes]`` as a pandas string array (an Arrow take: no Python strings per row)."""
    import pyarrow as pa

    return pd.array(pa.array(list(values), pa.large_string()).take(codes), dtype="str", copy=False)


def _letters(col: pd.Series) -> np.ndarray:
    """0/1/2 where ``col`` is exactly "A"/"B"/"C", else -1 (unparsed, refused, missing), from the bytes."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        lookup = np.asarray([LETTERS.index(c) if c in LETTERS else -1 for c in col.cat.categories] + [-1])
        return lookup[col.cat.codes.to_numpy()]
    arr = _large_strings(col.astype("str"))
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    one = np.diff(offsets) == 1
    first = np.zeros(len(arr), dtype=np.int64)
    if one.any():
        first[one] = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[:-1][one]]
    code = np.where(one & (first >= ord("A")) & (first <= ord("C")), first - ord("A"), -1)
    if arr.null_count:
        code[arr.is_null().to_numpy(zero_copy_only=False)] = -1
    return code


def _factorize(values: Any) -> tuple[np.ndarray, Any]:
    """Codes (-1 where missing) and the sorted distinct values (a pandas string array) of strings."""
    if not isinstance(values, pd.api.extensions.ExtensionArray):
        values = pd.array(values, dtype="str", copy=False)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), uniques


def _encode(col: pd.Series, pos: np.ndarray) -> tuple[np.ndarray, Any]:
    """``_factorize(col.take(pos))`` for a text column (codes -1 where missing), hashing each string once.

    Arrow's dictionary encoding of the whole column; only the distinct values used at ``pos`` are kept.
    """
    import pyarrow.compute as pc

    enc = pc.dictionary_encode(_large_strings(col.astype("str")))
    idx = enc.indices if enc.indices.null_count == 0 else pc.fill_null(enc.indices, -1)
    codes = idx.to_numpy(zero_copy_only=False).astype(np.int64)[pos]
    n = len(enc.dictionary)
    keep = np.flatnonzero(np.bincount(codes[codes >= 0], minlength=n))
    values = enc.dictionary if len(keep) == n else enc.dictionary.take(keep)
    order = pc.array_sort_indices(values).to_numpy(zero_copy_only=False)
    rank = np.full(n + 1, -1, dtype=np.int64)  # the last slot maps missing (-1) to -1
    rank[keep[order]] = np.arange(len(keep))
    return rank[codes], pd.array(values.take(order), dtype="str", copy=False)


def _categorical(codes: np.ndarray, values: Any) -> pd.Categorical:
    """Categorical of ``values`` (distinct and sorted by construction) at ``codes``.

    pandas' public constructor checks the categories are distinct by hashing them all again (10+ ms for
    the full dataset's prompts); they are distinct by construction here, so its fast path is used when
    present.
    """
    cats = pd.Index(values, dtype="str", copy=False)
    try:
        dtype = pd.CategoricalDtype._from_fastpath(cats, False)  # private: checked below, with a fallback
    except (AttributeError, TypeError):
        dtype = None
    if not isinstance(dtype, pd.CategoricalDtype) or dtype.categories is not cats:
        dtype = pd.CategoricalDtype(cats, ordered=False)
    return pd.Categorical.from_codes(codes, dtype=dtype)


def _prompts(text: np.ndarray, texts: Any, block: np.ndarray, blocks: Any) -> tuple[np.ndarray, Any]:
    """Codes and sorted distinct values of ``texts[text] + blocks[block]`` (one prompt per record).

    Texts are stripped and every block starts with a blank line ("\\n\\n"), so when no text holds a blank
    line or a character below "\\n", different (text, block) pairs give different prompts and the prompts
    sort as the pairs do (text first): each distinct pair is joined once and no prompt is hashed or compared.
    Otherwise (or with a missing text) the joined prompts are factorized.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    t_arr, b_arr = _large_strings(texts), _large_strings(blocks)
    empty = pa.scalar("", pa.large_string())
    if len(text) and (text >= 0).all() and _plain_text(t_arr):
        n = len(b_arr)
        keys, codes = np.unique(text.astype(np.int64) * n + block, return_inverse=True)
        joined = pc.binary_join_element_wise(t_arr.take(keys // n), b_arr.take(keys % n), empty)
        return codes.reshape(-1), pd.array(joined, dtype="str", copy=False)
    joined = pc.binary_join_element_wise(t_arr.take(pa.array(text, mask=text < 0)), b_arr.take(block), empty)
    return _factorize(pd.array(joined, dtype="str", copy=False))


def _plain_text(arr: Any) -> bool:
    """True when no string of ``arr`` is missing or holds a blank line or a character below "\\n"."""
    if arr.null_count:
        return False
    b = _utf8_bytes(arr)
    nl = b == 10
    return not (b < 10).any() and not (nl[1:] & nl[:-1]).any()


def _utf8_bytes(arr: Any) -> np.ndarray:
    """The character data of a large-string Arrow array, as bytes (no copy)."""
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    if data is None or len(offsets) < 2:
        return np.zeros(0, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]]


def _large_strings(values: Any) -> Any:
    """``values`` (a pandas string array, Index or Series, or an Arrow array) as one Arrow large-string array."""
    import pyarrow as pa

    if isinstance(values, (pd.Series, pd.Index)):
        values = values.array
    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, pa.large_string())
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else pa.concat_arrays(arr.chunks) if arr.num_chunks \
            else pa.array([], pa.large_string())
    return arr


def _codes(col: pd.Series) -> np.ndarray:
    """0/1/2 for A/B/C, -1 where missing (int8, as pandas holds them)."""
    if isinstance(col.dtype, pd.CategoricalDtype) and list(col.cat.categories) == list(LETTERS):
        return col.cat.codes.to_numpy()
    return pd.Categorical(col, categories=list(LETTERS)).codes


def _js(p: np.ndarray, q: np.ndarray, base: float) -> np.ndarray:
    """Jensen-Shannon distance between each row of ``p`` and the distribution ``q`` (scipy's definition)."""
    q = np.broadcast_to(q, p.shape)
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(p > 0, p * np.log(p / m), 0.0).sum(axis=1) + np.where(q > 0, q * np.log(q / m), 0.0).sum(axis=1)
    return np.sqrt(np.clip(kl / (2.0 * math.log(base)), 0.0, None))


def _write_parquet(frame: pd.DataFrame, path: Path) -> str:
    """``frame.to_parquet(path, index=False)`` as if its Categorical text columns were plain strings; returns
    the SHA-256 of the file (built in memory, hashed and written at once: it is not read back).

    Categorical columns are written as Arrow dictionary arrays, so Parquet's dictionary pages come
    from the categories (each distinct text once) instead of hashing every row's text again. The file
    keeps the schema and pandas metadata of the plain-string frame: readers (pandas, pyarrow, Hugging
    Face ``datasets``) get the same ``large_string`` columns and values as from ``to_parquet``.
    """
    import base64

    import pyarrow as pa
    import pyarrow.parquet as pq

    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)
            and frame[c].cat.categories.dtype == "str"]
    dtypes = ["str" if c in cats else d for c, d in zip(frame.columns, frame.dtypes)]
    if all(d == "str" or (isinstance(d, np.dtype) and d.kind in "iufb") for d in dtypes):
        plain = _plain_schema(tuple(frame.columns), tuple(str(d) for d in dtypes))
    else:  # pandas records what an object column holds, so it is asked about the values
        plain = pa.Table.from_pandas(frame.astype(dict.fromkeys(cats, "str")), preserve_index=False).schema
    columns, fields, dict_bytes = [], [], 0
    for c, f in zip(frame.columns, plain):
        col = frame[c]
        if c in cats:
            codes = col.cat.codes.to_numpy()
            values = _large_strings(col.cat.categories)
            col = pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes < 0) if (codes < 0).any() else codes,
                                                 values)
            dict_bytes = max(dict_bytes, values.nbytes)
        elif isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf":
            col = pa.array(col.to_numpy(), f.type)
        else:
            col = pa.Table.from_pandas(frame[[c]], preserve_index=False).column(0)
        columns.append(col)
        fields.append(pa.field(f.name, col.type, f.nullable, f.metadata))
    table = pa.Table.from_arrays(columns, schema=pa.schema(fields))
    # a dictionary larger than the page limit would fall back to plain encoding (hashing every row again);
    # the writer takes statistics of each batch of a dictionary column apart (a unique + take per batch), so
    # large batches save that work: the file's bytes do not depend on the batch size. The prompts get no
    # min/max statistics: nobody filters on the alphabetically first prompt, and they cost the most to take.
    sink = pa.BufferOutputStream()
    stats = [c for c in table.column_names if c != "prompt"]
    with pq.ParquetWriter(sink, table.schema, store_schema=False, write_batch_size=64 * 1024, write_statistics=stats,
                          dictionary_pagesize_limit=max(1 << 20, 2 * dict_bytes)) as writer:
        writer.write_table(table)
        # the plain frame's metadata, ARROW:schema as pyarrow stores it: readers rebuild the string columns
        writer.add_key_value_metadata({**plain.metadata, b"ARROW:schema": base64.b64encode(plain.serialize())})
    data = memoryview(sink.getvalue())
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=8)
def _plain_schema(columns: tuple[str, ...], dtypes: tuple[str, ...]) -> Any:
    """The Arrow schema (pandas metadata included) ``to_parquet`` writes for a frame of these dtypes."""
    import pyarrow as pa

    empty = pd.DataFrame({c: pd.Series(dtype=d) for c, d in zip(columns, dtypes)}, columns=list(columns))
    return pa.Table.from_pandas(empty, preserve_index=False).schema


def _write_jsonl(frame: pd.DataFrame, path: Path) -> str:
    """One JSON object per row, built column-wise with Arrow (exact floats, unlike ``to_json``'s 10 digits).

    Each column is a list of JSON literals, one per distinct value (its key glued on), and each row's
    position in it; lines are Arrow joins of those. When consecutive rows come in pairs that share some
    columns' values (training pairs share all but ``rejected``), those columns are joined once per pair
    and used for both lines. Returns the SHA-256 of the file: the bytes are hashed as they are written (in
    their own thread: hashing ~40 MB costs about as much as building them), so the file is not read back.
    """
    from concurrent.futures import ThreadPoolExecutor

    last = len(frame.columns) - 1
    columns = [_json_values(frame[c], ("{" if i == 0 else ",") + json.dumps(str(c)) + ":", "}\n" if i == last else "")
               for i, c in enumerate(frame.columns)]
    n = len(frame)
    shared = [bool(np.array_equal(idx[0::2], idx[1::2])) for _, idx in columns] if n % 2 == 0 else [False]
    group = 2 if any(shared) else 1  # rows per pair
    if group == 1:
        shared = [True] * len(columns)
    segments: list[list[int]] = []  # runs of shared columns, and each other column alone
    for j, s in enumerate(shared):
        if s and segments and shared[segments[-1][0]]:
            segments[-1].append(j)
        else:
            segments.append([j])
    digest, pending = hashlib.sha256(), []
    with open(path, "wb") as f, ThreadPoolExecutor(1) as writer, ThreadPoolExecutor(1) as hasher:
        for start in range(0, n, _JSONL_CHUNK):
            stop = min(start + _JSONL_CHUNK, n)
            lines: list[list[Any]] = [[] for _ in range(group)]  # the parts of each pair's first and second line
            for seg in segments:
                if shared[seg[0]]:
                    once = _join([columns[j][0].take(np.ascontiguousarray(columns[j][1][start:stop:group]))
                                  for j in seg])
                    for parts in lines:
                        parts.append(once)
                else:
                    lit, idx = columns[seg[0]]
                    for m, parts in enumerate(lines):
                        parts.append(lit.take(np.ascontiguousarray(idx[start + m:stop:group])))
            data = memoryview(_utf8_bytes(_join([p for parts in lines for p in parts])))
            # one thread writes and one hashes the blocks, each in order, while this one builds the next
            pending.append((writer.submit(f.write, data), hasher.submit(digest.update, data)))
            if len(pending) > 2:  # at most three blocks in memory
                for done in pending.pop(0):
                    done.result()
        for block in pending:
            for done in block:
                done.result()
    return digest.hexdigest()


_JSONL_CHUNK = 4096  # rows per block of JSON lines (a few MB); even, so pairs stay whole


def _join(parts: list[Any]) -> Any:
    """Element-wise concatenation of Arrow string arrays (and scalars)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, pa.scalar("", pa.large_string()))


def _json_values(col: pd.Series, before: str = "", after: str = "") -> tuple[Any, np.ndarray]:
    """A column as JSON literals, one per distinct value (strings escaped, floats as ``repr``, NaN/None as
    ``null``), each between ``before`` and ``after``, and each row's position in them."""
    import pyarrow as pa

    if isinstance(col.dtype, pd.CategoricalDtype):  # each category is encoded once
        codes, uniq = col.cat.codes.to_numpy(), col.cat.categories
    else:
        codes, uniq = pd.factorize(col)  # each distinct value is encoded once
    missing = bool((codes < 0).any())
    if len(uniq) > 4096 and uniq.dtype.kind in "iu" and isinstance(uniq.dtype, np.dtype):
        lit = _join([pa.scalar(before, pa.large_string()), pa.array(np.asarray(uniq)).cast(pa.large_string()),
                     pa.scalar(after, pa.large_string())])
    elif len(uniq) > 4096 and uniq.dtype.kind not in "iufb":
        lit = _json_strings(_large_strings(pd.Index(uniq).astype("str")), before, after)
    else:
        lit = pa.array([before + _json_literal(x) + after for x in uniq], pa.large_string())
    if missing:
        lit = pa.concat_arrays([lit, pa.array([before + "null" + after], pa.large_string())])
    return lit, np.where(codes < 0, len(uniq), codes) if missing else codes


def _json_literal(x: Any) -> str:
    """``json.dumps`` of one value as the JSONL writer encodes it (floats as ``repr``: exact)."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        return repr(float(x))
    return json.dumps(str(x), ensure_ascii=False)


def _json_strings(arr: Any, before: str = "", after: str = "") -> Any:
    """JSON string literals (``json.dumps(s, ensure_ascii=False)``) of many strings (none missing) at once,
    each between ``before`` and ``after``.

    Newlines, quotes and backslashes are escaped for all strings together (``bytes.replace`` over the
    character data; each escape adds one byte, which moves the offsets); the rare strings with other
    control characters (tabs, returns) are encoded by ``json.dumps`` one by one.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    b = _utf8_bytes(arr)
    start = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    start = start - start[0]
    data, esc = b.tobytes(), b < 0x20  # control characters: the newlines, and maybe rarer ones
    if b'"' in data or b"\\" in data:
        esc |= (b == 0x22) | (b == 0x5C)
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    at = np.flatnonzero(esc)
    rarer = (b[at] < 0x20) & (b[at] != 0x0A)  # tabs, returns, other control characters
    other = at[rarer]
    at = at[~rarer] if len(other) else at  # the bytes replace() escapes
    body = pa.LargeStringArray.from_buffers(len(arr), pa.py_buffer(start + np.searchsorted(at, start)),
                                            pa.py_buffer(data.replace(b"\n", b"\\n")))
    out = pc.binary_join_element_wise(pa.scalar(before + '"', pa.large_string()), body,
                                      pa.scalar('"' + after, pa.large_string()), pa.scalar("", pa.large_string()))
    if len(other):  # json.dumps encodes the strings holding them
        rare = np.unique(np.searchsorted(start, other, side="right") - 1)
        mask = np.zeros(len(arr), dtype=bool)
        mask[rare] = True
        fixed = [before + json.dumps(arr[int(j)].as_py(), ensure_ascii=False) + after for j in rare]
        out = pc.replace_with_mask(out, pa.array(mask), pa.array(fixed, pa.large_string()))
    return out


def _card(pairs: pd.DataFrame, *, result: Reweighting, source: Mapping[str, Any] | None,
          filters: Mapping[str, Any] | None, out: Path, fmt: str, sha256: str) -> dict[str, Any]:
    from fairpp import __version__

    src = dict(source or {"kind": None, "label": None, "synthetic": None, "sha256": []})
    card = {"kind": "fairpp.reweight", "fairpp_version": __version__,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "synthetic": src.get("synthetic"), "source": src, "filters": {k: list(v) if isinstance(v, (list, tuple))
                                                                          else v for k, v in (filters or {}).items()},
            **result.summary(), "pairs": len(pairs), "pair_weight_sum": float(pairs["weight"].sum()),
            "na_handling": NA_HANDLING, "pair_weighting": PAIR_WEIGHTING,
            "file": {"name": out.name, "format": fmt, "sha256": sha256, "columns": list(pairs.columns)}}
    if src.get("synthetic"):
        card["warning"] = "SYNTHETIC source data (demo): not the Fair-PP dataset; do not train on it for results."
    return card
