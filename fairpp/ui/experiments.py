"""Cached access to the stored training experiments (``fairpp compare --save``) for the Training experiments page.

``listing()`` is read on every run (one small query), so an experiment saved from the command line while the
app runs shows up on the next rerun; ``view(...)`` is cached by the experiment's name and the time it was saved
(a re-saved experiment is read again) and the data version (which changes when ``fairpp evaluate`` stores a
condition's answers).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from fairpp.figures import experiments as fx
from fairpp.store import experiments as stored
from fairpp.ui import data

__all__ = ["ExperimentView", "listing", "view"]


@dataclass(frozen=True)
class ExperimentView:
    """Everything the page draws for one experiment, built from its stored card."""

    card: dict[str, Any]
    summary: pd.DataFrame
    distances: pd.DataFrame
    between: pd.DataFrame
    provenance: pd.DataFrame
    synthetic: bool
    placed: pd.DataFrame | None
    ellipses: pd.DataFrame | None
    explained: list[float]
    map_note: str | None


def listing() -> pd.DataFrame:
    """The stored experiments, newest first (``experiment_id, target, created_at, conditions``)."""
    return stored.list_experiments(data.get_store())


@st.cache_data(show_spinner=False, max_entries=16)
def view(experiment_id: str, saved_at: str, version: str) -> ExperimentView:
    """The experiment's card and the frames built from it; raises :class:`fairpp.store.StoreError` if it is gone."""
    card = stored.get_experiment(data.get_store(), experiment_id)
    provenance = fx.provenance_table(card, data.respondents(version), data.sources(version))
    synthetic = fx.is_synthetic(provenance) or bool(card.get("synthetic"))
    try:
        placed, ellipses, explained = fx.map_frames(card)
        note = None
    except ValueError as exc:
        placed, ellipses, explained, note = None, None, [], str(exc)
    return ExperimentView(card=card, summary=fx.summary_table(card), distances=fx.distance_frame(card),
                          between=pd.DataFrame(card.get("between", [])), provenance=provenance,
                          synthetic=synthetic, placed=placed, ellipses=ellipses, explained=explained, map_note=note)
