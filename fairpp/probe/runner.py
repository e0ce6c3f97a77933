"""The asynchronous probe runner: a run object a page or the command line can drive.

:class:`ProbeRun` asks the plan's questions through the backend with 1-64 concurrent requests,
retries 429/5xx/timeouts/malformed replies with jittered backoff (honouring ``retry-after``; a 429
pauses every worker), bounds each request with a timeout and the whole run with a watchdog, and
hands every answer to the writer thread, which stores it at once. Deterministic calls (temperature
0) are answered from the cache when they were paid for before. It runs in its own thread and event
loop; from any other thread you can read :meth:`ProbeRun.snapshot`, take :meth:`ProbeRun.answers`
or iterate :meth:`ProbeRun.stream`, and :meth:`ProbeRun.cancel` it. A run killed at any point
resumes: answered (question, sample) pairs are skipped.
"""
from __future__ import annotations

import asyncio
import collections
import json
import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from fairpp.probe.endpoint import CallError, ChatBackend, OpenAIBackend, redact
from fairpp.probe.extract import BadReply, Extracted, extract
from fairpp.probe.plan import ProbeConfig, ProbePlan, plan_probe
from fairpp.probe.prompts import SWAP, build_messages, cache_key, parse_options, request_body
from fairpp.probe.sampling import Task
from fairpp.probe.tally import ProbeAnswer, Progress, Tally
from fairpp.probe.writer import Item, Writer
from fairpp.schema import FairppError
from fairpp.store.runs import RunStore

__all__ = ["ProbeRun", "ProbeAnswer", "Progress"]

log = logging.getLogger(__name__)
_ACTIVE: set[str] = set()
_ACTIVE_LOCK = threading.Lock()


@dataclass
class _Prepared:
    task: Task
    shown: dict[str, str]
    bodies: dict[bool, dict[str, Any]]
    keys: dict[bool, str]


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class ProbeRun:
    """One probe run (new or resumed).

    Parameters
    ----------
    store : the :class:`fairpp.store.Store` holding the questions; answers are written to it.
    config : a :class:`~fairpp.probe.plan.ProbeConfig`, or a plan from :func:`plan_probe`.
    backend : the client seam (default: :class:`~fairpp.probe.endpoint.OpenAIBackend`).
    on_answer : called with each :class:`ProbeAnswer` once it is stored (from the writer thread).

    Examples
    --------
    ``run = ProbeRun(store, cfg).start()`` then poll ``run.snapshot()``, read ``run.answers(since)``,
    ``run.cancel()``; or ``summary = ProbeRun(store, cfg).run()`` to block until done.
    """

    def __init__(self, store: Any, config: ProbeConfig | ProbePlan, *, backend: ChatBackend | None = None,
                 on_answer: Callable[[ProbeAnswer], None] | None = None) -> None:
        self.store = store
        self.plan = config if isinstance(config, ProbePlan) else plan_probe(store, config)
        self.config = self.plan.config
        self.run_id = self.plan.run_id
        self.respondent = self.plan.respondent
        self.runs = RunStore(store)
        self._backend = backend
        self._on_answer = on_answer
        self._secrets = self.config.endpoint.secrets()
        self._rng = random.Random()
        self._tally = Tally(self.plan.n_per_dimension)
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._workers: list[asyncio.Task[Any]] = []
        self._status, self._stop_reason, self._error = "ready", None, None
        self._cancel_requested = False
        self._logprobs = bool(self.config.params.logprobs)
        self._pause_until = 0.0
        self._pending: collections.deque[Task] = collections.deque()
        self._prepared: dict[tuple[Any, int], _Prepared] = {}
        self._texts: dict[Any, dict[str, Any]] = {}
        self._cache: dict[str, str] = {}
        self.summary: dict[str, Any] | None = None

    # -- control from any thread ----------------------------------------------------------------------
    def start(self) -> "ProbeRun":
        """Start in a background thread; returns at once."""
        with _ACTIVE_LOCK:
            if self.run_id in _ACTIVE:
                raise FairppError(f"probe run {self.run_id} is already running in this process; wait for it "
                                  "or cancel it first.")
            _ACTIVE.add(self.run_id)
        self._status = "starting"
        self._tally.t0 = time.monotonic()
        self._thread = threading.Thread(target=self._main, name=f"fairpp-{self.run_id}", daemon=True)
        self._thread.start()
        return self

    def run(self) -> dict[str, Any]:
        """Start, wait until the run ends, and return its summary (see :func:`fairpp.probe.run_summary`)."""
        self.start()
        self.wait()
        if self.summary is None:
            raise FairppError(f"probe run {self.run_id} failed: {self._error}") from self._error
        return self.summary

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has ended (``True``) or ``timeout`` seconds passed (``False``)."""
        return self._done.wait(timeout)

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def cancel(self) -> None:
        """Stop now: in-flight requests are abandoned (not stored); the run can be resumed later."""
        self._cancel_requested = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._halt, "cancelled", True)
            except RuntimeError:  # the loop closed in between: nothing left to stop
                pass

    def snapshot(self) -> Progress:
        """Where the run stands (thread-safe): see :class:`~fairpp.probe.tally.Progress`."""
        c = self._tally.c
        return self._tally.snapshot(
            run_id=self.run_id, status=self._status, planned=len(self.plan.tasks),
            cost=self.config.budget.cost(c["prompt_tokens"], c["completion_tokens"]), stop_reason=self._stop_reason,
            error=None if self._error is None else str(self._error), finished=self._done.is_set())

    def answers(self, since: int = 0) -> list[ProbeAnswer]:
        """Answers stored in this session, from index ``since`` on (thread-safe)."""
        return self._tally.since(since)

    def stream(self, *, timeout: float | None = None) -> Iterator[ProbeAnswer]:
        """Yield answers as they are stored, until the run ends (or ``timeout`` s pass without one)."""
        return self._tally.stream(self._done, timeout)

    # -- the thread -----------------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            asyncio.run(self._amain())
        except Exception as exc:  # noqa: BLE001 - reported through status/error, never lost
            log.exception("probe run %s failed", self.run_id)
            self._error, self._status, self._stop_reason = exc, "failed", self._stop_reason or "error"
        finally:
            with _ACTIVE_LOCK:
                _ACTIVE.discard(self.run_id)
            self._done.set()
            self._tally.finish()

    async def _amain(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._last_tick = self._loop.time()
        row = await asyncio.to_thread(self._setup)
        self._writer = Writer(self.runs, source_id=row.get("source_id"), on_commit=self._committed,
                              name=self.run_id).start()
        backend = self._backend or OpenAIBackend(self.config.endpoint, max_connections=self.config.concurrency)
        self._status = "running"
        try:
            if self._cancel_requested:
                self._halt("cancelled", True)
            n = min(self.config.concurrency, max(len(self._pending), 1))
            self._workers = [asyncio.create_task(self._worker(backend)) for _ in range(n)]
            watchdog = asyncio.create_task(self._watchdog())
            deadline = self.config.budget.deadline_s
            timer = self._loop.call_later(deadline, self._halt, "deadline", True) if deadline else None
            results = await asyncio.gather(*self._workers, return_exceptions=True)
            watchdog.cancel()
            bugs = [r for r in results if isinstance(r, Exception)]
            if bugs:  # not a network problem (those are handled per request): end the run as failed
                log.error("run %s: a worker failed: %r", self.run_id, bugs[0])
                self._error, self._stop_reason = bugs[0], "error"
            if timer is not None:
                timer.cancel()
        finally:
            if self._backend is None:
                await backend.aclose()
            await asyncio.to_thread(self._writer.close)
            await asyncio.to_thread(self._finish)

    def _setup(self) -> dict[str, Any]:
        row = self.runs.start_run(self.plan.card(), respondent_row={
            "respondent": self.respondent, "org": self.config.endpoint.host,
            "description": f"probe of {self.config.endpoint.model} at {self.config.endpoint.host}"
                           + (f", role-playing {self.config.persona_name}" if self.config.persona else ""),
            "provenance": f"probe run {self.run_id}"})
        done = self.runs.answered_tasks(self.run_id)
        counts = self.runs.run_counts(self.run_id)
        self._pending = collections.deque(t for t in self.plan.tasks if (t.question_id, t.sample) not in done)
        self._texts = self.plan.questions[["text", "options"]].to_dict("index")
        if self.config.params.deterministic:  # cache keys first: every reply paid for before is looked up at once
            self._prepared = {(t.question_id, t.sample): _prepare(self.plan, self._texts, t) for t in self._pending}
            self._cache = self.runs.cache_lookup(k for p in self._prepared.values() for k in p.keys.values())
        self._tally.add(resumed=len(done), requests=counts["requests"], prompt_tokens=counts["prompt_tokens"],
                        completion_tokens=counts["completion_tokens"])
        if done:  # a resumed run: its stored answers count toward the live positions
            prior = self.runs.run_answers(self.run_id)
            first = prior[(prior["sample"] == 0) & prior["answer"].isin(["A", "B", "C"])]
            for d, pa, pb, ans in zip(first["dimension"], first["p_a"], first["p_b"], first["answer"]):
                self._tally.add_sums(int(d), pa, pb, ans)
        log.info("run %s: %d planned, %d already answered, %d cached replies available", self.run_id,
                 len(self.plan.tasks), len(done), len(self._cache))
        return row

    def _finish(self) -> None:
        reason = self._stop_reason
        if self._writer.error is not None:
            self._error, reason = self._writer.error, "writer"
        answered = self._tally.c["answered"] + self._tally.c["resumed"]
        status = ("failed" if reason in ("writer", "auth", "not_found", "error") else
                  "cancelled" if reason == "cancelled" else "stalled" if reason == "stalled" else
                  "complete" if answered >= len(self.plan.tasks) else "stopped" if reason else "incomplete")
        self._status, self._stop_reason = status, reason
        counts = self.runs.run_counts(self.run_id)
        self.runs.finish_run(self.run_id, status=status, stop_reason=reason, counters={
            "cost": self.config.budget.cost(counts["prompt_tokens"], counts["completion_tokens"])},
            extra_card={"error": redact(str(self._error), self._secrets) if self._error else None,
                        "logprobs_used": self._logprobs})
        from fairpp.probe.summary import run_summary

        self.summary = run_summary(self.store, self.run_id)

    # -- workers --------------------------------------------------------------------------------------
    async def _worker(self, backend: ChatBackend) -> None:
        while self._stop_reason is None and self._pending:
            if self._writer.error is not None:  # answers could no longer be stored: stop paying for them
                self._halt("writer", True)
                return
            task = self._pending.popleft()
            prep = self._prepared.get((task.question_id, task.sample)) or _prepare(self.plan, self._texts, task)
            hit = self._cache.get(prep.keys.get(self._logprobs, ""))
            if hit is not None:
                try:
                    ex = extract(json.loads(hit), swapped=prep.task.swapped, shown_options=prep.shown)
                except (BadReply, ValueError):
                    hit = None
                else:
                    self._emit(prep, ex, cache_hit=True, latency_ms=0.0, usage={}, attempt=0, response=None)
                    continue
            over = self._over_budget()
            if over:
                self._pending.appendleft(prep.task)
                self._halt(over, False)
                return
            await self._ask(backend, prep)

    async def _ask(self, backend: ChatBackend, prep: _Prepared) -> None:
        retry, timeout = self.config.retry, self.config.endpoint.timeout
        attempt = 0
        while attempt < retry.max_attempts:
            attempt += 1
            await self._gate()
            over = self._over_budget()
            if self._stop_reason is not None or over:
                if over:
                    self._halt(over, False)
                return  # left unanswered: a later session asks it
            body = prep.bodies[self._logprobs]
            self._tally.add(requests=1, in_flight=1)
            at, t0 = _now(), time.perf_counter()
            self._ticked()
            try:
                async with asyncio.timeout(timeout + 1.0):
                    data = await backend.chat(body, timeout=timeout)
                ex = extract(data, swapped=prep.task.swapped, shown_options=prep.shown)
            except TimeoutError:
                err = CallError("timeout", f"no reply within {timeout:g} s")
            except CallError as exc:
                err = exc
            except BadReply as exc:
                err = CallError("bad_response", str(exc))
            else:
                err = None
            finally:
                self._tally.add(in_flight=-1)
                self._ticked()
            latency = (time.perf_counter() - t0) * 1000.0
            if err is None:
                self._emit(prep, ex, cache_hit=False, latency_ms=latency, usage=data.get("usage") or {},
                           attempt=attempt, response=data, at=at)
                return
            self._log_failure(prep, err, attempt=attempt, at=at, latency_ms=latency)
            if err.kind == "client" and "logprobs" in body and "logprob" in str(err).lower():
                if self._logprobs:  # the endpoint refuses logprobs: ask again (every worker) without them
                    log.warning("run %s: the endpoint refuses logprobs; continuing with parsed letters",
                                self.run_id)
                self._logprobs = False
                attempt -= 1
                continue
            if err.kind in ("auth", "not_found"):
                self._error = CallError(err.kind, redact(str(err), self._secrets), status=err.status)
                self._halt(err.kind, True)
                return
            if not err.retryable or attempt >= retry.max_attempts:
                break
            delay = retry.delay(attempt, err.retry_after, rng=self._rng)
            if err.kind == "rate_limit":
                self._pause_until = max(self._pause_until, self._loop.time() + delay)
            self._tally.add(retries=1)
            await self._nap(delay)
        self._tally.add(failed=1, session=1)

    async def _gate(self) -> None:
        while self._stop_reason is None and self._loop.time() < self._pause_until:
            await self._nap(self._pause_until - self._loop.time())

    async def _nap(self, seconds: float) -> None:
        self._ticked()
        try:
            await asyncio.wait_for(self._wake.wait(), max(seconds, 0.0))
        except TimeoutError:
            pass

    def _ticked(self) -> None:
        """Progress: a request sent or finished, or a pause begun (what the watchdog waits for)."""
        self._last_tick = self._loop.time()

    async def _watchdog(self) -> None:
        retry, budget = self.config.retry, self.config.budget
        stall = budget.stall_s or (2 * self.config.endpoint.timeout + max(retry.cap_s, retry.max_retry_after_s) + 5)
        while True:  # wakes once per stall period at most, not at every tick
            left = self._last_tick + stall - self._loop.time()
            if left <= 0:
                log.warning("run %s: no progress for %.0f s; stopping (watchdog)", self.run_id, stall)
                self._halt("stalled", True)
                return
            await asyncio.sleep(left)

    def _halt(self, reason: str, hard: bool) -> None:
        """Stop taking tasks; a hard stop also abandons in-flight requests."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._wake.set()
        if hard:
            for w in self._workers:
                w.cancel()

    def _over_budget(self) -> str | None:
        b, c = self.config.budget, self._tally.c
        if b.max_requests is not None and c["requests"] >= b.max_requests:
            return "budget_requests"
        if b.max_tokens is not None and c["prompt_tokens"] + c["completion_tokens"] >= b.max_tokens:
            return "budget_tokens"
        if b.max_cost is not None and b.cost(c["prompt_tokens"], c["completion_tokens"]) >= b.max_cost:
            return "budget_cost"
        return None

    # -- results --------------------------------------------------------------------------------------
    def _emit(self, prep: _Prepared, ex: Extracted, *, cache_hit: bool, latency_ms: float,
              usage: dict[str, Any], attempt: int, response: dict[str, Any] | None,
              at: datetime | None = None) -> None:
        t = prep.task
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        raw = redact(ex.raw, self._secrets)
        ans = ProbeAnswer(t.question_id, t.sample, t.dimension, t.swapped, ex.answer, ex.p_a, ex.p_b, ex.p_c, raw,
                          cache_hit, latency_ms, pt, ct, attempt)
        key = prep.keys.get(self._logprobs)
        req = (self.run_id, t.question_id, t.sample, t.swapped, attempt, at or _now(), latency_ms,
               "cached" if cache_hit else "ok", None if cache_hit else 200, None, pt, ct, cache_hit, key)
        cache_row = None
        if response is not None and key is not None:
            cache_row = (key, self.config.endpoint.public_url, self.config.endpoint.model, t.sample,
                         redact(json.dumps(response, ensure_ascii=False), self._secrets), _now())
        answer_row = (t.question_id, self.respondent, ex.answer, ex.p_a, ex.p_b, ex.p_c, raw, self.run_id, t.sample)
        self._tally.count_answer(ans)
        self._writer.put(Item(answer=answer_row, requests=[req], cache=cache_row, payload=ans))
        b = self.config.budget
        if b.target_width is not None and self._stop_reason is None and self._tally.precise(b.target_width,
                                                                                           b.min_answers):
            self._halt("precision", False)

    def _log_failure(self, prep: _Prepared, err: CallError, *, attempt: int, at: datetime,
                     latency_ms: float) -> None:
        t = prep.task
        row = (self.run_id, t.question_id, t.sample, t.swapped, attempt, at, latency_ms, err.kind, err.status,
               redact(str(err), self._secrets)[:500], None, None, False, prep.keys.get(self._logprobs))
        self._writer.put(Item(requests=[row]))

    def _committed(self, payloads: list[ProbeAnswer]) -> None:
        self._tally.stored(payloads)
        if self._on_answer is not None:
            for a in payloads:
                try:
                    self._on_answer(a)
                except Exception:  # noqa: BLE001 - a caller's callback must not stop the writer
                    log.exception("on_answer callback failed")


def _prepare(plan: ProbePlan, texts: dict[Any, dict[str, Any]], t: Task) -> _Prepared:
    """A task's messages, request bodies (with and without logprobs), cache keys and shown options.

    Sampled runs prepare each task when a worker takes it (the event loop is idle while requests are in
    flight); deterministic runs prepare all before the first request, to look their cache keys up at once.
    """
    cfg = plan.config
    q = texts[t.question_id]
    messages = build_messages(q["text"], q["options"], swap=t.swapped, system=cfg.system)
    bodies = {lp: request_body(cfg.endpoint.model, messages, cfg.params, logprobs=lp) for lp in (True, False)}
    keys = ({lp: cache_key(cfg.endpoint.public_url, b, t.sample) for lp, b in bodies.items()}
            if cfg.params.deterministic else {})
    opts = parse_options(q["options"])
    return _Prepared(t, {k: opts[SWAP[k]] for k in "ABC"} if t.swapped else opts, bodies, keys)
