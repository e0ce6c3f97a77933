"""Role-play generation: ask a model to answer as each persona, through the probe engine.

Each persona makes one probe run (concurrency, retries, cache, resume and run cards come from
:mod:`fairpp.probe`) with the persona's role-play system prompt. The run's answers carry the respondent name
``"<persona> (<model>)"``; after the run the respondent's kind is set to ``custom`` (a role-played persona),
so the personas pages and reweighting can use it beside the seven. Every persona and the question selection
are checked before the first request: an unknown persona or an empty selection writes nothing.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fairpp.generate.personas import (
    Persona,
    PersonaError,
    list_personas,
    resolve_persona,
    system_prompt,
)
from fairpp.probe import (
    Endpoint,
    ProbeConfig,
    ProbeParams,
    ProbePlan,
    ProbeRun,
    plan_probe,
)
from fairpp.store.personas import PersonaStore

__all__ = ["GenerationJob", "plan_generation", "respondent_name", "run_generation", "select_personas"]

log = logging.getLogger(__name__)


@dataclass
class GenerationJob:
    """One persona's planned run."""

    persona: Persona
    plan: ProbePlan

    @property
    def respondent(self) -> str:
        return self.plan.respondent


def respondent_name(persona: str, model: str) -> str:
    """The respondent a role-play run's answers carry.

    >>> respondent_name("Loyal Nationals", "qwen-7b")
    'Loyal Nationals (qwen-7b)'
    """
    return f"{persona} ({model})"


def select_personas(store: Any, names: Sequence[str] | None = None, *, all_personas: bool = False) -> list[Persona]:
    """The personas asked for (``all_personas``: every built-in and stored one); raises on unknown or none."""
    if all_personas:
        return list_personas(store)
    if not names:
        raise PersonaError("no persona selected; pass --persona NAME (repeatable) or --all.")
    out: list[Persona] = []
    for n in names:
        p = resolve_persona(store, n)
        if p not in out:
            out.append(p)
    return out


def plan_generation(store: Any, personas: Sequence[Persona], endpoint: Endpoint, *, n: int | None = 300,
                    filters: Mapping[str, Sequence[Any]] | None = None, concurrency: int = 8,
                    params: ProbeParams | None = None, sample_seed: int | None = None) -> list[GenerationJob]:
    """Plan one probe run per persona (same question sample for all); nothing is written.

    ``n=None`` asks every question of the selection. Raises :class:`fairpp.schema.FairppError` when the
    filters match no question.
    """
    if not personas:
        raise PersonaError("no persona selected; pass --persona NAME (repeatable) or --all.")
    jobs = []
    extra = {} if sample_seed is None else {"sample_seed": int(sample_seed)}
    for p in personas:
        who = {"persona": p.name} if p.builtin else {"system_prompt": system_prompt(p)}
        cfg = ProbeConfig(endpoint, n=n, concurrency=concurrency, params=params or ProbeParams(),
                          filters=dict(filters or {"question_set": ["template"]}),
                          label=respondent_name(p.name, endpoint.model), **who, **extra)
        jobs.append(GenerationJob(p, plan_probe(store, cfg)))
    return jobs


def run_generation(store: Any, jobs: Sequence[GenerationJob], *, backend: Any = None,
                   drive: Callable[[ProbeRun], None] | None = None) -> list[dict[str, Any]]:
    """Run the planned jobs one persona after the other; returns each run's summary (plus ``persona``).

    ``drive(run)`` starts the run and waits for it (the CLI's progress bar); default: ``run.run()``.
    """
    out = []
    for job in jobs:
        run = ProbeRun(store, job.plan, backend=backend)
        if drive is None:
            run.run()
        else:
            drive(run)
        summary = run.summary
        desc = (f"{job.persona.name} role-played by {job.plan.config.endpoint.model}"
                + ("" if job.persona.builtin else " (user-defined persona)"))
        PersonaStore(store).mark_custom(job.respondent, description=desc)
        if summary is None:
            out.append({"persona": job.persona.name, "respondent": job.respondent, "run_id": job.plan.run_id,
                        "status": "failed", "error": str(run.snapshot().error)})
            continue
        out.append({"persona": job.persona.name, **summary})
        log.info("generated %s: %s", job.respondent, summary.get("status"))
    return out
