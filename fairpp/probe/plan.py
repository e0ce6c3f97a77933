"""What a probe run is: its configuration, its identity, and the plan drawn before anything is sent.

The run id is a hash of everything that decides *what is asked* (endpoint URL without credentials,
model, parameters, sample size and seed, repeats, swap share, persona or system prompt, question
filters): running the same command twice gives the same run id and the same sample, so the second
run resumes the first and asks nothing already answered. Concurrency, budgets and retry settings
are not part of the identity (raise a budget and re-run to continue). ``fresh`` starts a new run.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import pandas as pd

import fairpp
from fairpp.probe.endpoint import Endpoint
from fairpp.probe.prompts import ProbeParams, persona_names_like, persona_prompt
from fairpp.probe.sampling import DEFAULT_SAMPLE_SEED, Task, expected_widths, stratified_sample, task_order
from fairpp.schema import FairppError
from fairpp.store.runs import RunStore

__all__ = ["RetryPolicy", "Budget", "ProbeConfig", "ProbePlan", "plan_probe", "MAX_CONCURRENCY"]

MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Retries on 429, 5xx, timeouts, connection errors and malformed replies.

    The wait before retry ``k`` (1-based) is drawn uniformly from ``[0, min(cap_s, base_s * 2**k)]``
    ("full jitter"); a ``retry-after`` from the server is honoured (waited at least, up to
    ``max_retry_after_s``), and a 429 pauses every worker, not just the one that got it.
    """

    max_attempts: int = 6
    base_s: float = 0.5
    cap_s: float = 30.0
    max_retry_after_s: float = 120.0

    def __post_init__(self) -> None:
        if int(self.max_attempts) < 1:
            raise FairppError(f"max_attempts={self.max_attempts!r} must be at least 1.")
        if self.base_s < 0 or self.cap_s < 0:
            raise FairppError("retry waits base_s and cap_s must be >= 0 seconds.")

    def delay(self, attempt: int, retry_after: float | None = None, *,
              rng: random.Random | None = None) -> float:
        """Seconds to wait before the next attempt after failed attempt ``attempt``.

        >>> RetryPolicy(base_s=1, cap_s=4).delay(5, rng=random.Random(0)) <= 4
        True
        >>> RetryPolicy(base_s=0.01).delay(1, retry_after=2.0) >= 2.0
        True
        """
        rng = rng or random
        jitter = rng.uniform(0.0, min(self.cap_s, self.base_s * 2.0 ** attempt))
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after_s) + rng.uniform(0.0, min(self.base_s, 1.0))
        return jitter


@dataclass(frozen=True)
class Budget:
    """When to stop before the plan is done: requests, tokens, money, precision or time.

    ``max_cost`` needs ``price_in`` and ``price_out`` (currency per million prompt / completion
    tokens). ``target_width`` stops once every dimension's 95% interval is at most that wide (after
    ``min_answers`` answers per dimension). ``stall_s`` is the watchdog: a run with no progress for
    that long is stopped (default: twice the request timeout plus the longest retry wait).
    """

    max_requests: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    price_in: float | None = None
    price_out: float | None = None
    target_width: float | None = None
    min_answers: int = 10
    deadline_s: float | None = None
    stall_s: float | None = None

    def __post_init__(self) -> None:
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise FairppError("a money budget (max_cost) needs prices: give price_in and price_out per "
                              "million prompt and completion tokens.")
        if self.target_width is not None and not 0 < self.target_width <= 1:
            raise FairppError(f"target_width={self.target_width!r} must be in (0, 1], e.g. 0.15.")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Money spent on the given tokens (0 without prices)."""
        return ((self.price_in or 0.0) * prompt_tokens + (self.price_out or 0.0) * completion_tokens) / 1e6


@dataclass(frozen=True)
class ProbeConfig:
    """Everything a probe run needs. See the module docstring for which fields make the run's identity.

    Examples
    --------
    >>> cfg = ProbeConfig(Endpoint("http://localhost:8000/v1", "m", api_key="sk-secret-1"), n=50)
    >>> cfg.run_id == ProbeConfig(Endpoint("http://localhost:8000/v1", "m"), n=50, concurrency=2).run_id
    True
    >>> cfg.run_id == ProbeConfig(Endpoint("http://localhost:8000/v1", "m"), n=51).run_id
    False
    """

    endpoint: Endpoint
    n: int | None = 300
    sample_seed: int = DEFAULT_SAMPLE_SEED
    repeats: int = 1
    swap_share: float = 0.0
    persona: str | None = None
    system_prompt: str | None = None
    params: ProbeParams = field(default_factory=ProbeParams)
    concurrency: int = 8
    filters: Mapping[str, Sequence[Any]] = field(default_factory=lambda: {"question_set": ["template"]})
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    budget: Budget = field(default_factory=Budget)
    label: str | None = None
    fresh: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= int(self.concurrency) <= MAX_CONCURRENCY:
            raise FairppError(f"concurrency={self.concurrency!r} is out of range; use 1 to {MAX_CONCURRENCY} "
                              "(8 is a safe default for hosted APIs).")
        if int(self.repeats) < 1:
            raise FairppError(f"repeats={self.repeats!r} must be at least 1.")
        if not 0.0 <= float(self.swap_share) <= 1.0:
            raise FairppError(f"swap_share={self.swap_share!r} must be between 0 and 1 (e.g. 0.5).")
        if self.n is not None and int(self.n) < 1:
            raise FairppError(f"n={self.n!r}: ask at least one question (or None for every question).")
        if self.persona and self.system_prompt:
            raise FairppError("give a persona or a system prompt, not both.")
        if self.persona and len(persona_names_like(self.persona)) != 1:
            persona_prompt(self.persona)  # raises with the list of names

    @property
    def system(self) -> str | None:
        """The system prompt sent with every question (persona role-play or custom), if any."""
        return persona_prompt(self.persona) if self.persona else (self.system_prompt or None)

    @property
    def persona_name(self) -> str | None:
        return persona_names_like(self.persona)[0] if self.persona else None

    def identity(self) -> dict[str, Any]:
        """The fields that decide what is asked (hashed into the run id; no secrets)."""
        system = self.system
        return {"base_url": self.endpoint.public_url, "model": self.endpoint.model, "params": self.params.as_dict(),
                "n": self.n, "sample_seed": int(self.sample_seed), "repeats": int(self.repeats),
                "swap_share": float(self.swap_share), "persona": self.persona_name,
                "system_sha256": hashlib.sha256(system.encode()).hexdigest() if system else None,
                "filters": {k: sorted(map(str, v)) for k, v in sorted(self.filters.items())}, "fresh": self.fresh}

    @property
    def run_id(self) -> str:
        doc = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return "probe-" + hashlib.sha256(doc.encode()).hexdigest()[:12]


@dataclass
class ProbePlan:
    """The questions and tasks of a run, drawn before anything is sent, and the precision to expect."""

    config: ProbeConfig
    questions: pd.DataFrame
    tasks: list[Task]
    n_per_dimension: dict[int, int]
    expected_widths: dict[int, float]

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def respondent(self) -> str:
        """The name the run's answers carry in the ``answers`` table."""
        cfg = self.config
        if cfg.label:
            return cfg.label
        who = cfg.endpoint.model + (f" as {cfg.persona_name}" if cfg.persona else "")
        who += " with custom prompt" if cfg.system_prompt else ""
        return f"{who} · {self.run_id}"

    def card(self) -> dict[str, Any]:
        """The run card (no key, no header values)."""
        cfg = self.config
        return {"run_id": self.run_id, "respondent": self.respondent, "label": cfg.label,
                **cfg.endpoint.card(), "persona": cfg.persona_name, "params": cfg.params.as_dict(),
                "sample_seed": int(cfg.sample_seed), "n_planned": len(self.tasks), "n_questions": len(self.questions),
                "code_version": fairpp.__version__, "identity": cfg.identity(), "concurrency": int(cfg.concurrency),
                "retry": asdict(cfg.retry), "budget": asdict(cfg.budget), "system_prompt": cfg.system,
                "expected_widths": {str(k): v for k, v in self.expected_widths.items()}}

    def describe(self) -> str:
        """One line for people: sample size and the interval width to expect."""
        worst = max(self.expected_widths.values()) if self.expected_widths else float("nan")
        per = ", ".join(f"d{d}: {n}" for d, n in sorted(self.n_per_dimension.items()))
        return (f"{len(self.questions)} questions x {self.config.repeats} = {len(self.tasks)} requests "
                f"({per}); expected 95% interval width per dimension <= {worst:.2f} (worst case p = 0.5)")


def plan_probe(store: Any, config: ProbeConfig) -> ProbePlan:
    """Draw the run's sample from the store's questions and lay out its tasks (nothing is sent).

    Raises :class:`FairppError` when the filters leave no question.
    """
    runs = RunStore(store)
    strata = runs.question_strata(dict(config.filters))
    if strata.empty:
        raise FairppError(f"no questions match {dict(config.filters)}; load data first (`fairpp demo` or "
                          "`fairpp load FILE`) or loosen the filters.")
    sample = stratified_sample(strata, config.n, seed=config.sample_seed)
    tasks = task_order(sample, repeats=config.repeats, swap_share=config.swap_share, seed=config.sample_seed)
    per_dim = {int(d): int(n) for d, n in sample["dimension"].value_counts().sort_index().items()}
    questions = runs.question_texts(sample["question_id"].tolist()).set_index("question_id", drop=False)
    return ProbePlan(config=config, questions=questions.loc[sample["question_id"]], tasks=tasks,
                     n_per_dimension=per_dim, expected_widths=expected_widths(per_dim))
