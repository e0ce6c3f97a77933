"""The scenario variant: turn template questions into short vignettes per option, through the probe engine's seam.

For each selected template question the model is asked (with this project's own instruction,
:data:`WRITER_PROMPT`) for one JSON object ``{"A": ..., "B": ..., "C": ...}``: a short scenario in which
option A's principle is applied, one for option B's, and one for C, which keeps its meaning (no side
taken / not applicable). The reply is validated strictly (:func:`parse_vignettes`); a valid one becomes a
new question in question set :data:`SCENARIO_SET` (``"scenario-generated"``, apart from the published
``"scenario"`` set so model-written and published vignettes never mix) with the source question's
taxonomy fields, dimension, template and split, and a row in ``question_links`` pointing at the source
question (:mod:`fairpp.store.scenarios`). The generated questions are answerable like template questions:
``fairpp generate --persona NAME --slice question_set=scenario-generated``.

Requests go through :class:`fairpp.probe.OpenAIBackend` (the only ``openai`` importer) with the probe
engine's retry policy (429/5xx/timeouts, jittered backoff honouring ``retry-after``), 1-64 concurrent
requests, the request log and the deterministic-call cache (temperature 0). A bad reply (not JSON, wrong
keys, empty or too short/long vignettes) is logged as failed with its reason and raw text and stores
nothing. The run id hashes the endpoint, model, parameters and instruction: rerunning skips the source
questions already turned into scenarios by that run and asks only the rest (failed ones again).
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

import fairpp
from fairpp.probe.endpoint import (
    CallError,
    ChatBackend,
    Endpoint,
    OpenAIBackend,
    redact,
)
from fairpp.probe.plan import MAX_CONCURRENCY, RetryPolicy
from fairpp.probe.prompts import ProbeParams, cache_key, parse_options, request_body
from fairpp.probe.sampling import DEFAULT_SAMPLE_SEED, stratified_sample
from fairpp.schema import QUESTION_COLUMNS, FairppError, question_ids
from fairpp.store.runs import RunStore
from fairpp.store.scenarios import ScenarioStore

__all__ = [
    "MAX_CHARS",
    "MIN_CHARS",
    "SCENARIO_SET",
    "WRITER_PROMPT",
    "ScenarioConfig",
    "ScenarioPlan",
    "VignetteError",
    "parse_vignettes",
    "plan_scenarios",
    "run_scenarios",
    "scenario_question",
    "vignette_messages",
]

log = logging.getLogger(__name__)

#: The question set generated scenario questions are stored in.
SCENARIO_SET = "scenario-generated"
#: Length bounds of one vignette, in characters (after whitespace is collapsed).
MIN_CHARS, MAX_CHARS = 20, 600
#: Appended to the source question's text in the generated question.
SCENARIO_NOTE = "Each option below is told as a short scenario."

WRITER_PROMPT = (
    "You write short, concrete vignettes for a survey on fairness. You receive a survey question and its "
    "three answer options A, B and C. Rewrite each option as a brief everyday scenario of two or three "
    "sentences (at most 80 words) about the same people and the same resource, in which that option's "
    "reasoning is what happens or what someone argues. Keep each option's meaning exactly: the scenario "
    "for A must stand for option A and the one for B for option B; option C means taking no side or "
    "finding the question not applicable, so its scenario shows someone who sees neither reasoning as "
    "deciding the matter. Do not say which option is better and do not mention the letters.\n"
    'Reply with one JSON object and nothing else: {"A": "...", "B": "...", "C": "..."}'
)


class VignetteError(FairppError):
    """A reply that is not three valid vignettes; the message says what is wrong."""


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def vignette_messages(text: str, options: str) -> list[dict[str, str]]:
    """The chat messages asking for the vignettes of one question.

    >>> m = vignette_messages("Who should get more?", "A. merit\\nB. need\\nC. N/A")
    >>> [x["role"] for x in m], m[1]["content"].splitlines()[-1]
    (['system', 'user'], 'C. N/A')
    """
    opts = parse_options(options)
    user = f"Question: {str(text).strip()}\n\nOptions:\n" + "\n".join(f"{k}. {opts[k]}" for k in "ABC")
    return [{"role": "system", "content": WRITER_PROMPT}, {"role": "user", "content": user}]


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def parse_vignettes(reply: Any, *, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS) -> dict[str, str]:
    """Three vignettes from a reply: one JSON object with exactly the keys ``A``, ``B`` and ``C``.

    The object may sit inside one Markdown code fence; nothing else is accepted. Each value must be a
    string of ``min_chars`` to ``max_chars`` characters once whitespace is collapsed (each vignette
    becomes one option line), and A and B must differ. Raises :class:`VignetteError` naming the problem.

    >>> parse_vignettes('{"A": "Ann wins the open race and keeps the prize.", '
    ...                 '"B": "Ben gets extra help because he started behind.", "C": "Cal thinks neither matters."}')["C"]
    'Cal thinks neither matters.'
    >>> parse_vignettes('{"A": "x"}')
    Traceback (most recent call last):
    ...
    fairpp.generate.scenario.VignetteError: the JSON object must have exactly the keys A, B and C (got ['A'])
    """
    if not isinstance(reply, str) or not reply.strip():
        raise VignetteError("the reply is empty")
    text = reply.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VignetteError(f"the reply is not one JSON object ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise VignetteError(f"the reply is JSON but not an object (a {type(data).__name__})")
    if sorted(data) != ["A", "B", "C"]:
        raise VignetteError(f"the JSON object must have exactly the keys A, B and C (got {sorted(map(str, data))})")
    out = {}
    for k in "ABC":
        v = data[k]
        if not isinstance(v, str):
            raise VignetteError(f"vignette {k} is not a string")
        v = " ".join(v.split())
        if not v:
            raise VignetteError(f"vignette {k} is empty")
        if not min_chars <= len(v) <= max_chars:
            raise VignetteError(f"vignette {k} has {len(v)} characters; it must have {min_chars} to {max_chars}")
        out[k] = v
    if out["A"].lower() == out["B"].lower():
        raise VignetteError("vignettes A and B are the same text")
    return out


def scenario_question(source: Mapping[str, Any], vignettes: Mapping[str, str]) -> dict[str, Any]:
    """The generated question (``QUESTION_COLUMNS``, content id included) for a source question.

    >>> src = {"question_id": 1, "question_set": "template", "topic": "t", "problem_category": "c",
    ...        "specific_problem": "p", "group_type": "g", "group_name": "n", "dimension": 2, "template": 1,
    ...        "text": "Who should get more?", "options": "A. a\\nB. b\\nC. N/A", "split": None}
    >>> q = scenario_question(src, {"A": "Ann won.", "B": "Ben needed it.", "C": "Cal shrugs."})
    >>> q["question_set"], q["dimension"], q["options"].splitlines()[1]
    ('scenario-generated', 2, 'B. Ben needed it.')
    """
    q = {c: source.get(c) for c in QUESTION_COLUMNS}
    q["question_set"] = SCENARIO_SET
    q["text"] = f"{' '.join(str(source['text']).split())} {SCENARIO_NOTE}"
    q["options"] = "\n".join(f"{k}. {vignettes[k]}" for k in "ABC")
    frame = pd.DataFrame([q])
    q["question_id"] = int(question_ids(frame).iloc[0])
    q["dimension"] = None if pd.isna(q["dimension"]) else int(q["dimension"])
    q["template"] = None if pd.isna(q["template"]) else int(q["template"])
    q["split"] = None if q["split"] is None or pd.isna(q["split"]) else q["split"]
    return q


@dataclass(frozen=True)
class ScenarioConfig:
    """A scenario-writing run. Endpoint, model, parameters and the instruction make its identity (run id);
    ``n``, ``filters`` and ``sample_seed`` choose which source questions this session covers.

    >>> cfg = ScenarioConfig(Endpoint("http://localhost:8000/v1", "m"), n=5)
    >>> cfg.run_id == ScenarioConfig(Endpoint("http://localhost:8000/v1", "m"), n=50).run_id
    True
    """

    endpoint: Endpoint
    n: int | None = 300
    filters: Mapping[str, Sequence[Any]] = field(default_factory=lambda: {"question_set": ["template"]})
    sample_seed: int = DEFAULT_SAMPLE_SEED
    concurrency: int = 8
    params: ProbeParams = field(default_factory=lambda: ProbeParams(max_tokens=700, logprobs=False))
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= int(self.concurrency) <= MAX_CONCURRENCY:
            raise FairppError(f"concurrency={self.concurrency!r} is out of range; use 1 to {MAX_CONCURRENCY}.")
        if self.n is not None and int(self.n) < 1:
            raise FairppError(f"n={self.n!r}: ask for at least one question (or every question).")
        sets = [str(s) for s in self.filters.get("question_set", [])]
        if SCENARIO_SET in sets or "scenario" in sets:
            raise FairppError("scenarios are written from template questions; drop the question_set slice "
                              f"{sets} (or use question_set=template).")

    def identity(self) -> dict[str, Any]:
        params = {**self.params.as_dict(), "logprobs": False}
        return {"kind": "scenario", "base_url": self.endpoint.public_url, "model": self.endpoint.model,
                "params": params, "instruction_sha256": hashlib.sha256(WRITER_PROMPT.encode()).hexdigest()}

    @property
    def run_id(self) -> str:
        doc = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return "scenario-" + hashlib.sha256(doc.encode()).hexdigest()[:12]


@dataclass
class ScenarioPlan:
    """The source questions of a session: all selected, and those still to ask (not yet stored by this run)."""

    config: ScenarioConfig
    questions: pd.DataFrame
    pending: pd.DataFrame

    @property
    def run_id(self) -> str:
        return self.config.run_id

    def card(self) -> dict[str, Any]:
        cfg = self.config
        return {"run_id": self.run_id, **cfg.endpoint.card(), "question_set": SCENARIO_SET,
                "params": cfg.identity()["params"], "instruction": WRITER_PROMPT, "n": cfg.n,
                "filters": {k: sorted(map(str, v)) for k, v in cfg.filters.items()}, "sample_seed": cfg.sample_seed,
                "n_planned": len(self.questions), "concurrency": int(cfg.concurrency),
                "code_version": fairpp.__version__, "min_chars": MIN_CHARS, "max_chars": MAX_CHARS}

    def describe(self) -> str:
        return (f"{len(self.questions)} template questions selected, {len(self.questions) - len(self.pending)} "
                f"already written as scenarios, {len(self.pending)} to ask")


def plan_scenarios(store: Any, config: ScenarioConfig) -> ScenarioPlan:
    """Draw the source questions (stratified, like a probe sample) and find those still to ask; writes nothing.

    Raises :class:`FairppError` when the filters match no question.
    """
    runs = RunStore(store)
    filters = dict(config.filters)
    filters.setdefault("question_set", ["template"])
    strata = runs.question_strata(filters)
    if strata.empty:
        raise FairppError(f"no questions match {filters}; build the question bank (`fairpp questions build`) or "
                          "load data first, or loosen the --slice filters.")
    sample = stratified_sample(strata, config.n, seed=config.sample_seed)
    questions = runs.question_texts(sample["question_id"].tolist()).set_index("question_id", drop=False)
    questions = questions.loc[sample["question_id"]]
    done = ScenarioStore(store).linked_sources(config.run_id)
    pending = questions[~questions["question_id"].astype("int64").isin(done)]
    return ScenarioPlan(config, questions, pending)


def run_scenarios(store: Any, config: ScenarioConfig | ScenarioPlan, *, backend: ChatBackend | None = None,
                  on_progress: Callable[[dict[str, int]], None] | None = None) -> dict[str, Any]:
    """Ask for the vignettes of every pending source question and store the valid ones; returns the summary.

    Summary keys: ``run_id, question_set, status`` (``complete`` when every selected question has its
    scenario, else ``incomplete``, or ``failed`` on an auth/not-found error), ``planned, already, stored,
    failed, requests, cached, source_id`` and ``error``. ``on_progress`` gets ``{"done", "stored",
    "failed", "pending"}`` after each question (from the event loop's thread).
    """
    plan = config if isinstance(config, ScenarioPlan) else plan_scenarios(store, config)
    cfg = plan.config
    sstore = ScenarioStore(store)
    label = f"scenario questions written by {cfg.endpoint.model} at {cfg.endpoint.host} ({plan.run_id})"
    row = sstore.start_run(plan.card(), label=label)
    runner = _Runner(sstore, plan, int(row["source_id"]), backend, on_progress)
    asyncio.run(runner.main())
    counts = sstore.counts(plan.run_id)
    stored_now = len(sstore.linked_sources(plan.run_id) & set(plan.questions["question_id"].astype("int64")))
    status = ("failed" if runner.error is not None else
              "complete" if stored_now >= len(plan.questions) else "incomplete")
    sstore.finish_run(plan.run_id, status=status, extra_card={"error": runner.error})
    return {"run_id": plan.run_id, "question_set": SCENARIO_SET, "status": status, "planned": len(plan.questions),
            "already": len(plan.questions) - len(plan.pending), "stored": runner.stored, "failed": runner.failed,
            "requests": runner.requests, "cached": runner.cached, "total_stored": counts["stored"],
            "source_id": int(row["source_id"]), "error": runner.error}


class _Runner:
    """The session's asyncio workers (one event loop, writes serialised through a lock)."""

    def __init__(self, sstore: ScenarioStore, plan: ScenarioPlan, source_id: int, backend: ChatBackend | None,
                 on_progress: Callable[[dict[str, int]], None] | None) -> None:
        self.sstore, self.plan, self.source_id = sstore, plan, source_id
        self.cfg = plan.config
        self.backend = backend
        self.on_progress = on_progress
        self.secrets = self.cfg.endpoint.secrets()
        self.rng = random.Random()
        self.stored = self.failed = self.requests = self.cached = 0
        self.error: str | None = None
        self.queue = list(plan.pending.to_dict("records"))
        self.queue.reverse()

    async def main(self) -> None:
        if not self.queue:
            return
        self.lock = asyncio.Lock()
        prepared = {int(q["question_id"]): self._body(q) for q in self.queue}
        keys = [k for _, k in prepared.values() if k]
        self.cache = await asyncio.to_thread(self.sstore.runs.cache_lookup, keys) if keys else {}
        self.prepared = prepared
        backend = self.backend or OpenAIBackend(self.cfg.endpoint, max_connections=self.cfg.concurrency)
        try:
            n = min(int(self.cfg.concurrency), len(self.queue))
            await asyncio.gather(*(self._worker(backend) for _ in range(n)))
        finally:
            if self.backend is None:
                await backend.aclose()

    def _body(self, q: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        body = request_body(self.cfg.endpoint.model, vignette_messages(q["text"], q["options"]), self.cfg.params,
                            logprobs=False)
        key = cache_key(self.cfg.endpoint.public_url, body, 0) if self.cfg.params.deterministic else None
        return body, key

    async def _worker(self, backend: ChatBackend) -> None:
        while self.queue and self.error is None:
            q = self.queue.pop()
            await self._one(backend, q)
            if self.on_progress is not None:
                self.on_progress({"done": self.stored + self.failed, "stored": self.stored, "failed": self.failed,
                                  "pending": len(self.plan.pending)})

    async def _one(self, backend: ChatBackend, q: dict[str, Any]) -> None:
        qid = int(q["question_id"])
        body, key = self.prepared[qid]
        hit = self.cache.get(key) if key else None
        if hit is not None:
            self.cached += 1
            await self._handle(q, json.loads(hit), attempt=0, latency=0.0, cached=True, key=key)
            return
        retry = self.cfg.retry
        for attempt in range(1, retry.max_attempts + 1):
            at, t0 = _now(), time.perf_counter()
            self.requests += 1
            try:
                data = await backend.chat(body, timeout=self.cfg.endpoint.timeout)
            except CallError as err:
                latency = (time.perf_counter() - t0) * 1000.0
                await self._log(qid, attempt, at, latency, err.kind, err.status, str(err), {}, key)
                if err.kind in ("auth", "not_found"):
                    self.error = redact(str(err), self.secrets)
                    return
                if not err.retryable or attempt >= retry.max_attempts:
                    break
                await asyncio.sleep(retry.delay(attempt, err.retry_after, rng=self.rng))
                continue
            latency = (time.perf_counter() - t0) * 1000.0
            await self._handle(q, data, attempt=attempt, latency=latency, cached=False, key=key, at=at)
            return
        self.failed += 1

    async def _handle(self, q: dict[str, Any], data: Any, *, attempt: int, latency: float, cached: bool,
                      key: str | None, at: datetime | None = None) -> None:
        qid = int(q["question_id"])
        usage = (data.get("usage") if isinstance(data, dict) else None) or {}
        pt, ct = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        raw = _content(data)
        try:
            vignettes = parse_vignettes(raw)
        except VignetteError as exc:
            self.failed += 1
            text = redact(f"{exc}; raw reply: {raw!r}", self.secrets)[:4000]
            await self._log(qid, attempt, at or _now(), latency, "bad_vignettes", None if cached else 200, text,
                            usage, key, cached=cached)
            return
        question = scenario_question(q, vignettes)
        request = (self.plan.run_id, qid, 0, False, attempt, at or _now(), latency, "cached" if cached else "ok",
                   None if cached else 200, None, pt, ct, cached, key)
        cache = None
        if key is not None and not cached:
            cache = (key, self.cfg.endpoint.public_url, self.cfg.endpoint.model, 0,
                     redact(json.dumps(data, ensure_ascii=False), self.secrets), _now())
        async with self.lock:
            await asyncio.to_thread(self.sstore.store_question, question, source_question_id=qid,
                                    run_id=self.plan.run_id, source_id=self.source_id, request=request, cache=cache)
        self.stored += 1

    async def _log(self, qid: int, attempt: int, at: datetime, latency: float, status: str, http: int | None,
                   error: str, usage: Mapping[str, Any], key: str | None, *, cached: bool = False) -> None:
        row = (self.plan.run_id, qid, 0, False, attempt, at, latency, status, http,
               redact(error, self.secrets)[:4000], int(usage.get("prompt_tokens") or 0),
               int(usage.get("completion_tokens") or 0), cached, key)
        async with self.lock:
            await asyncio.to_thread(self.sstore.log_requests, [row])


def _content(data: Any) -> str | None:
    """The first choice's message text of a chat-completions reply, or ``None``."""
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None
