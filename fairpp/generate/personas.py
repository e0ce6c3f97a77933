"""Personas to role-play: the seven built-in survey segments and user-defined ones stored in the database.

A persona has a ``name``, a ``portrayal`` (second person: "You are ...", the heart of the role-play system
prompt) and an optional ``description``. Built-in portrayals are the project's own wording, in the packaged
taxonomy; user-defined personas live in the store's ``personas`` table.

>>> p = builtin_personas()[0]
>>> p.name, p.builtin, system_prompt(p).startswith("You are one of the Progressive Activists")
('Progressive Activists', True, True)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from fairpp.probe.prompts import INSTRUCTION, persona_prompt
from fairpp.schema import FairppError, taxonomy
from fairpp.store.personas import PersonaStore

__all__ = [
    "MAX_PORTRAYAL",
    "Persona",
    "PersonaError",
    "add_persona",
    "builtin_personas",
    "list_personas",
    "remove_persona",
    "resolve_persona",
    "system_prompt",
]

MAX_PORTRAYAL = 4000


class PersonaError(FairppError):
    """An unknown, ambiguous or badly defined persona."""


@dataclass(frozen=True)
class Persona:
    """A persona: ``builtin`` for the seven survey segments."""

    name: str
    portrayal: str
    description: str | None = None
    builtin: bool = False


def builtin_personas() -> list[Persona]:
    """The seven survey segments, in survey order."""
    return [Persona(p["name"], p["portrayal"], p.get("summary"), True) for p in taxonomy()["personas"]]


def list_personas(store: Any | None = None) -> list[Persona]:
    """Built-in personas, then the user-defined ones of ``store`` (if given)."""
    out = builtin_personas()
    if store is not None:
        for r in PersonaStore(store).list().itertuples(index=False):
            out.append(Persona(r.name, r.portrayal, None if pd.isna(r.description) else r.description, False))
    return out


def add_persona(store: Any, name: str, portrayal: str, description: str | None = None, *,
                replace: bool = False) -> Persona:
    """Store a user-defined persona; its name must not be a built-in one.

    Raises :class:`PersonaError` for an empty or too long portrayal, a bad name or a taken name.
    """
    name = " ".join(str(name).split())
    portrayal = str(portrayal).strip()
    if not name or len(name) > 80 or any(c in name for c in "()·"):
        raise PersonaError(f"persona name {name!r} must be 1-80 characters without '(', ')' or '·'.")
    if not portrayal:
        raise PersonaError(f"persona {name!r} needs a portrayal: a few sentences in the second person "
                           "('You are ...') describing who they are and what they value.")
    if len(portrayal) > MAX_PORTRAYAL:
        raise PersonaError(f"the portrayal of {name!r} has {len(portrayal)} characters; keep it under {MAX_PORTRAYAL}.")
    if name.lower() in {p.name.lower() for p in builtin_personas()}:
        raise PersonaError(f"{name!r} is a built-in persona; choose another name for your own.")
    PersonaStore(store).add(name, portrayal, (description or "").strip() or None, replace=replace)
    return Persona(name, portrayal, (description or "").strip() or None, False)


def remove_persona(store: Any, name: str) -> None:
    """Remove a user-defined persona (answers generated with it stay)."""
    if name.lower() in {p.name.lower() for p in builtin_personas()}:
        raise PersonaError(f"{name!r} is a built-in persona and cannot be removed.")
    if not PersonaStore(store).remove(name):
        raise PersonaError(f"no user-defined persona {name!r}; `fairpp personas list` shows them.")


def resolve_persona(store: Any | None, name: str) -> Persona:
    """A persona by name: exact, case-insensitive, or a unique prefix, over built-in and stored personas."""
    every = list_personas(store)
    key = str(name).strip().lower()
    found = ([p for p in every if p.name == name] or [p for p in every if p.name.lower() == key]
             or [p for p in every if p.name.lower().startswith(key)])
    if len(found) != 1 or not key:
        raise PersonaError(f"persona {name!r} {'is ambiguous' if len(found) > 1 else 'is unknown'}; known personas: "
                           f"{[p.name for p in every]}. Add your own with `fairpp personas add NAME --portrayal TEXT`.")
    return found[0]


def system_prompt(persona: Persona) -> str:
    """The role-play system prompt: the portrayal and how to answer (the probe's wording for built-ins)."""
    if persona.builtin:
        return persona_prompt(persona.name)
    return (f"{persona.portrayal}\n\nAnswer every question as this person would, from their point of view. "
            f"{INSTRUCTION}")
