"""The page list: the one place where pages join the navigation.

To add a page (probe, persona lab, reweighting, report): write ``pages/<key>.py`` and append a
:class:`PageSpec` to :data:`PAGES` (``section`` groups pages in the sidebar). The page's widget keys and
URL parameters start with ``"<key>."``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

__all__ = ["PageSpec", "PAGES", "navigation", "current_page", "configure_page"]


@dataclass(frozen=True)
class PageSpec:
    """A page: its script (relative to app.py), title, icon, URL path / key prefix and sidebar section."""

    path: str
    title: str
    icon: str
    key: str
    section: str = "Explore"


PAGES: list[PageSpec] = [
    PageSpec("pages/overview.py", "Overview", ":material/dashboard:", "overview"),
    PageSpec("pages/personas.py", "Personas", ":material/groups:", "personas"),
    PageSpec("pages/models.py", "Regional models", ":material/public:", "models"),
    PageSpec("pages/explore.py", "Slices & questions", ":material/travel_explore:", "explore"),
    PageSpec("pages/data.py", "Data", ":material/database:", "data", section="Data"),
    PageSpec("pages/probe.py", "Probe a model", ":material/smart_toy:", "probe", section="Probe"),
    PageSpec("pages/reweight.py", "Reweighting", ":material/balance:", "reweight", section="Align"),
    PageSpec("pages/persona_lab.py", "Persona lab", ":material/science:", "persona_lab", section="Align"),
    PageSpec("pages/experiments.py", "Training experiments", ":material/model_training:", "experiments", "Align"),
    PageSpec("pages/stories.py", "Stories", ":material/slideshow:", "stories", section="Present"),
    PageSpec("pages/report.py", "Report", ":material/summarize:", "report", section="Present"),
]


def configure_page() -> None:
    """The app-wide page configuration (title, icon, wide layout)."""
    st.set_page_config(page_title="Fair-PP Explorer", page_icon=":material/balance:", layout="wide")


def navigation() -> tuple[Any, PageSpec]:
    """Register :data:`PAGES` with ``st.navigation``; returns the page to run (``st.Page``) and its spec."""
    sections: dict[str, list] = {}
    by_title: dict[str, PageSpec] = {}
    for i, spec in enumerate(PAGES):
        page = st.Page(spec.path, title=spec.title, icon=spec.icon, url_path=spec.key, default=i == 0)
        sections.setdefault(spec.section, []).append(page)
        by_title[spec.title] = spec
    pg = st.navigation(sections, position="sidebar")
    spec = by_title.get(pg.title, PAGES[0])
    st.session_state["_fairpp.page"] = spec.key
    return pg, spec


def current_page() -> str:
    """The key of the page being drawn (e.g. ``"personas"``)."""
    return str(st.session_state.get("_fairpp.page", PAGES[0].key))
