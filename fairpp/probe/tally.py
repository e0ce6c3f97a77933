"""A run's bookkeeping, shared between the event loop, the writer thread and any reader thread.

:class:`Tally` holds the counters, the per-dimension expected counts (for the live interval widths
and the precision stop) and the stored answers, behind one condition variable, so that a page can
read :class:`Progress` snapshots and stream :class:`ProbeAnswer` objects while the run goes on.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

__all__ = ["ProbeAnswer", "Progress", "Tally"]

_COUNTERS = ("answered", "cached", "failed", "refused", "unparsed", "resumed", "in_flight", "requests", "retries",
             "prompt_tokens", "completion_tokens", "session")


@dataclass(frozen=True)
class ProbeAnswer:
    """One stored answer, as the run streams it (options already mapped back when swapped)."""

    question_id: Any
    sample: int
    dimension: int
    swapped: bool
    answer: str
    p_a: float | None
    p_b: float | None
    p_c: float | None
    raw: str
    cache_hit: bool
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    attempts: int


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run, safe to read from any thread.

    Counts cover the whole run (every session; ``resumed`` were answered before this one), ``rate``
    (answers per second) and ``eta_s`` this session; ``widths`` is the current 95% interval width
    per dimension; ``status`` is ``ready``, ``starting``, ``running``, then ``complete``, ``stopped``
    (a budget, the precision target or the deadline), ``incomplete`` (some questions failed),
    ``cancelled``, ``stalled`` (watchdog) or ``failed`` (see ``error``).
    """

    run_id: str
    status: str
    planned: int
    done: int
    answered: int
    cached: int
    failed: int
    refused: int
    unparsed: int
    resumed: int
    in_flight: int
    requests: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    elapsed_s: float
    rate: float
    eta_s: float | None
    stop_reason: str | None
    error: str | None
    widths: dict[int, float]

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def widths(sums: Sequence[Sequence[float]], dimensions: Iterable[int]) -> dict[int, float]:
    """95% Wilson interval width per dimension from expected (A, B) counts (1.0 with no answer)."""
    from fairpp.space import wilson_interval

    out = {}
    for d in dimensions:
        a, b = sums[d]
        low, high = wilson_interval(b, a + b)
        out[int(d)] = 1.0 if a + b <= 0 else float(high - low)
    return out


class Tally:
    """Counters, per-dimension sums and stored answers of one run (thread-safe)."""

    def __init__(self, dimensions: Iterable[int]) -> None:
        self.dimensions = [int(d) for d in dimensions]
        self.cond = threading.Condition()
        self.c = dict.fromkeys(_COUNTERS, 0)
        self.sums = [[0.0, 0.0] for _ in range(6)]  # expected A, B per dimension over first samples
        self.answers: list[ProbeAnswer] = []
        self.t0 = time.monotonic()
        self.t_end: float | None = None

    def add(self, **deltas: int) -> None:
        with self.cond:
            for k, v in deltas.items():
                self.c[k] += v

    def add_sums(self, d: int, pa: Any, pb: Any, answer: str) -> None:
        """Count an answer of a first sample towards the live widths (only A/B/C answers count)."""
        if answer not in ("A", "B", "C"):
            return
        pa = float(answer == "A") if pa is None or pa != pa else float(pa)
        pb = float(answer == "B") if pb is None or pb != pb else float(pb)
        with self.cond:
            self.sums[d][0] += pa
            self.sums[d][1] += pb

    def count_answer(self, a: ProbeAnswer) -> None:
        with self.cond:
            c = self.c
            c["answered"] += 1
            c["session"] += 1
            c["cached"] += a.cache_hit
            c["refused"] += a.answer == "refused"
            c["unparsed"] += a.answer == "unparsed"
            c["prompt_tokens"] += a.prompt_tokens
            c["completion_tokens"] += a.completion_tokens
        if a.sample == 0:
            self.add_sums(a.dimension, a.p_a, a.p_b, a.answer)

    def stored(self, answers: list[ProbeAnswer]) -> None:
        with self.cond:
            self.answers.extend(answers)
            self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.t_end = time.monotonic()
            self.cond.notify_all()

    def widths(self) -> dict[int, float]:
        with self.cond:
            sums = [list(x) for x in self.sums]
        return widths(sums, self.dimensions)

    def precise(self, target: float, min_answers: int) -> bool:
        """Every dimension has ``min_answers`` and an interval at most ``target`` wide."""
        with self.cond:
            sums = [list(x) for x in self.sums]
        return all(sum(sums[d]) >= min_answers for d in self.dimensions) and \
            max(widths(sums, self.dimensions).values()) <= target

    def snapshot(self, *, run_id: str, status: str, planned: int, cost: float, stop_reason: str | None,
                 error: str | None, finished: bool) -> Progress:
        with self.cond:
            c = dict(self.c)
            end = self.t_end if self.t_end is not None else time.monotonic()
        answered = c["answered"] + c["resumed"]
        done = answered + c["failed"]
        elapsed = max(end - self.t0, 1e-9)
        rate = c["session"] / elapsed
        remaining = max(planned - done, 0)
        eta = 0.0 if finished or remaining == 0 else (remaining / rate if rate > 0 else None)
        return Progress(run_id=run_id, status=status, planned=planned, done=done, answered=answered,
                        cached=c["cached"], failed=c["failed"], refused=c["refused"], unparsed=c["unparsed"],
                        resumed=c["resumed"], in_flight=c["in_flight"], requests=c["requests"],
                        retries=c["retries"], prompt_tokens=c["prompt_tokens"],
                        completion_tokens=c["completion_tokens"], cost=cost, elapsed_s=elapsed, rate=rate,
                        eta_s=eta, stop_reason=stop_reason, error=error, widths=self.widths())

    def since(self, i: int) -> list[ProbeAnswer]:
        with self.cond:
            return self.answers[i:]

    def stream(self, done: threading.Event, timeout: float | None) -> Iterator[ProbeAnswer]:
        """Stored answers as they come, until ``done`` (or ``timeout`` seconds without one)."""
        i = 0
        while True:
            with self.cond:
                self.cond.wait_for(lambda: len(self.answers) > i or done.is_set(), timeout)
                batch, finished = self.answers[i:], done.is_set()
            yield from batch
            i += len(batch)
            if not batch or (finished and i >= len(self.answers)):
                return
