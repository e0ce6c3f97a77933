"""The writer thread: answers, request-log rows and cache entries go to DuckDB as they arrive.

The event loop never waits on the database: it hands each finished request to this thread, which
commits in one transaction whatever arrives within ``linger_s`` (0.25 s) of the first item it is
holding, then tells the run which answers are now safely stored. A commit costs a few milliseconds
of CPU and a WAL flush whatever its size, so grouping keeps the writer from competing with the
event loop at hundreds of answers per second; a process killed mid-run loses at most that last
fraction of a second of answers, which the resumed run simply asks again.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

__all__ = ["Item", "Writer"]

log = logging.getLogger(__name__)


@dataclass
class Item:
    """What one finished task (or failed attempt) adds to the database."""

    answer: Sequence[Any] | None = None
    requests: list[Sequence[Any]] = field(default_factory=list)
    cache: Sequence[Any] | None = None
    payload: Any = None  # handed back to ``on_commit`` once stored


_STOP = object()


class Writer:
    """Batching writer over :meth:`fairpp.store.runs.RunStore.write`.

    ``on_commit(payloads)`` runs in the writer thread after each commit. A failed write is kept in
    :attr:`error`; later items are dropped and the run, which checks it, stops with status ``failed``.
    """

    def __init__(self, runs: Any, *, source_id: int | None, on_commit: Callable[[list[Any]], None],
                 name: str = "", max_batch: int = 1000, linger_s: float = 0.25) -> None:
        self.name = name
        self.runs = runs
        self.source_id = source_id
        self.on_commit = on_commit
        self.max_batch = max_batch
        self.linger_s = linger_s
        self.error: BaseException | None = None
        self.committed = 0
        self._q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fairpp-probe-writer", daemon=True)

    def start(self) -> "Writer":
        self._thread.start()
        return self

    def put(self, item: Item) -> None:
        self._q.put(item)

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, then stop the thread."""
        self._closing.set()
        self._q.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        stop = False
        while not stop:
            batch = [self._q.get()]
            if batch[0] is not _STOP and self.linger_s > 0:
                self._closing.wait(self.linger_s)  # let more arrive without waking up for each one
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            stop = any(b is _STOP for b in batch)
            items = [b for b in batch if b is not _STOP]
            if not items or self.error is not None:
                continue
            try:
                self.runs.write(answers=[i.answer for i in items if i.answer is not None],
                                requests=[r for i in items for r in i.requests],
                                cache=[i.cache for i in items if i.cache is not None], source_id=self.source_id)
            except Exception as exc:  # noqa: BLE001 - reported through the run's status, not lost
                log.error("probe writer: could not store %d item(s): %s", len(items), exc)
                self.error = exc
                continue
            self.committed += sum(1 for i in items if i.answer is not None)
            payloads = [i.payload for i in items if i.payload is not None]
            log.info("run %s: stored %d answer(s), %d this session", self.name, len(payloads), self.committed)
            if payloads:
                self.on_commit(payloads)
