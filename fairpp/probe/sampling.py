"""Which questions a probe asks: a stratified sample, the task list, and the precision to expect.

The sample is stratified by dimension x topic x group type and drawn with a fixed default seed, by
ranking questions on a hash of (seed, question id): the same questions and seed always give the
same sample, whatever order the database returns them in, so running a command twice asks the
same questions. Pure functions (pandas and numpy only).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from fairpp.schema import FairppError

__all__ = ["DEFAULT_SAMPLE_SEED", "STRATA", "stratified_sample", "expected_widths", "swapped_for",
           "Task", "task_order"]

#: The default sample seed (the arXiv number of the Fair-PP paper).
DEFAULT_SAMPLE_SEED = 11861
STRATA = ("dimension", "topic", "group_type")


def _unit(seed: int, *parts: object) -> float:
    h = hashlib.blake2b("\x1f".join(map(str, (seed, *parts))).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0 ** 64


def stratified_sample(questions: pd.DataFrame, n: int | None, *,
                      seed: int = DEFAULT_SAMPLE_SEED) -> pd.DataFrame:
    """A sample of ``n`` questions, allocated to strata (dimension x topic x group type) in proportion.

    Each stratum gets ``floor(n * share)`` questions; the leftover go to the strata with the largest
    remainders (ties broken by the seed). Within a stratum the questions with the smallest
    ``hash(seed, question_id)`` are taken. ``n=None`` (or ``n >= len``) takes every question.

    Examples
    --------
    >>> q = pd.DataFrame({"question_id": [f"q{i}" for i in range(40)], "dimension": [1, 2] * 20,
    ...                   "topic": ["t"] * 40, "group_type": ["g"] * 40})
    >>> s = stratified_sample(q, 10)
    >>> len(s), s["dimension"].value_counts().tolist(), s.equals(stratified_sample(q.iloc[::-1], 10))
    (10, [5, 5], True)
    """
    missing = [c for c in ("question_id", *STRATA) if c not in questions.columns]
    if missing:
        raise FairppError(f"questions lack column(s) {missing}; pass Store.questions() output.")
    frame = questions.drop_duplicates("question_id").sort_values("question_id").reset_index(drop=True)
    if n is None or n >= len(frame):
        return frame
    if int(n) < 1:
        raise FairppError(f"n={n!r}: a sample needs at least one question.")
    combined = np.zeros(len(frame), dtype=np.int64)
    levels = []
    for col in STRATA:  # one integer per (dimension, topic, group type), without building tuples
        col_codes, uniques = pd.factorize(frame[col], use_na_sentinel=False)
        combined = combined * len(uniques) + col_codes
        levels.append(list(map(str, uniques)))
    present, codes = np.unique(combined, return_inverse=True)
    keys = []  # each stratum's name, "dimension\x1ftopic\x1fgroup type", for the seeded tie-break
    for value in present.tolist():
        names = []
        for names_of in reversed(levels):
            value, i = divmod(value, len(names_of))
            names.append(names_of[i])
        keys.append("\x1f".join(reversed(names)))
    sizes = np.bincount(codes, minlength=len(keys))
    exact = sizes * (int(n) / len(frame))
    quota = np.floor(exact).astype(int)
    left = int(n) - int(quota.sum())
    order = sorted(range(len(keys)), key=lambda i: (-(exact[i] - quota[i]), _unit(seed, "stratum", keys[i])))
    quota[order[:left]] += 1
    # within a stratum, the questions with the smallest hash(seed, question id) (= _unit(seed, q) * 2**64)
    seeded = hashlib.blake2b(f"{seed}\x1f".encode(), digest_size=8)
    digests = []
    for q in frame["question_id"]:
        h = seeded.copy()
        h.update(str(q).encode())
        digests.append(h.digest())
    rank_key = np.frombuffer(b"".join(digests), dtype=">u8").astype(np.uint64)
    by = np.lexsort((rank_key, codes))  # stable: equal hashes keep question id order
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    keep = np.zeros(len(frame), dtype=bool)
    keep[by] = np.arange(len(frame)) - starts[codes[by]] < quota[codes[by]]
    return frame[keep].reset_index(drop=True)


def expected_widths(n_per_dimension: Mapping[int, int], *, p: float = 0.5) -> dict[int, float]:
    """Expected width of each dimension's 95% Wilson interval with ``n`` answered questions.

    ``p = 0.5`` gives the widest (worst) case; N/A answers narrow nothing, so expect a little wider.

    >>> {d: round(w, 3) for d, w in expected_widths({1: 60, 2: 0}).items()}
    {1: 0.245, 2: 1.0}
    """
    from fairpp.space import wilson_interval

    out = {}
    for d, n in n_per_dimension.items():
        if n <= 0:
            out[int(d)] = 1.0
            continue
        low, high = wilson_interval(p * n, n)
        out[int(d)] = float(high - low)
    return out


def swapped_for(question_id: Any, sample: int, *, share: float, seed: int = DEFAULT_SAMPLE_SEED) -> bool:
    """Whether this (question, sample) is asked with options A and B swapped (a ``share`` of them).

    >>> sum(swapped_for(f"q{i}", 0, share=0.3) for i in range(1000)) in range(250, 350)
    True
    """
    if not 0.0 <= share <= 1.0:
        raise FairppError(f"swap share {share!r} must be between 0 and 1.")
    return share > 0 and _unit(seed, "swap", question_id, sample) < share


@dataclass(frozen=True)
class Task:
    """One request to make: question ``question_id``, repeat ``sample``, options swapped or not."""

    question_id: Any  # the store's question id (an integer; any hashable works)
    sample: int
    dimension: int
    swapped: bool
    order: float


def task_order(sample: pd.DataFrame, *, repeats: int, swap_share: float,
               seed: int = DEFAULT_SAMPLE_SEED) -> list[Task]:
    """Every (question, repeat) of the sample, in an order that keeps any prefix balanced.

    Repeat 0 of every question comes first, then repeat 1, and so on; within a repeat the order
    is the seeded hash, so an early stop leaves a representative subsample.

    >>> s = pd.DataFrame({"question_id": ["a", "b"], "dimension": [1, 2]})
    >>> [t.sample for t in task_order(s, repeats=2, swap_share=0)]
    [0, 0, 1, 1]
    """
    if int(repeats) < 1:
        raise FairppError(f"repeats={repeats!r} must be at least 1.")
    tasks = []
    for k in range(int(repeats)):
        for qid, dim in zip(sample["question_id"], sample["dimension"]):
            qid = qid.item() if hasattr(qid, "item") else qid  # numpy scalar -> Python
            tasks.append(Task(qid, k, int(dim), swapped_for(qid, k, share=swap_share, seed=seed),
                              k + _unit(seed, "order", qid)))
    return sorted(tasks, key=lambda t: t.order)
