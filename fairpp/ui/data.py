"""Cached accessors: the Store (``st.cache_resource``) and frames keyed by a hashable :class:`Selection`.

Every cached function takes the selection (or the data ``version``) first, so a load — which changes the
version — invalidates what was cached for the old data; :func:`invalidate` also clears the caches at once.
Writes (loads) are never cached.
"""
from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from fairpp import analysis, explore
from fairpp.config import settings
from fairpp.schema import persona_names
from fairpp.store import Store, browse
from fairpp.ui.selection import Selection
from fairpp.ui.umap_worker import UmapWorker

__all__ = [
    "get_store", "data_version", "ensure_data", "invalidate", "info", "active_source", "sources", "respondents",
    "distinct", "positions", "answer_mix", "question_counts", "answer_matrix", "distances", "agreement",
    "unit_projection", "model_comparison", "model_map", "question_page", "page_answers", "table_reader",
    "load_files", "load_paths", "load_hub", "load_demo", "umap_done",
]

_MAX = 24  # entries per cached function; keeps server memory bounded


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    return Store(path)


def get_store() -> Store:
    """The app's Store (one per server process, shared by sessions; DuckDB cursors are thread-safe)."""
    return _open_store(str(settings().db))


def data_version() -> str:
    """A token that changes whenever a load changes the database (from the ``sources`` table)."""
    key = str(settings().db) + "\n" + get_store().sources_token()
    return hashlib.sha1(key.encode()).hexdigest()[:12]


def invalidate() -> None:
    """Forget every cached frame (after a load)."""
    st.cache_data.clear()


def ensure_data() -> None:
    """Build and load the synthetic demo when the database holds no data (first start only)."""
    store = get_store()
    if store.is_empty():
        with st.spinner("No data yet: building the synthetic demo (once, a few seconds)…"):
            load_demo()


# -- what is loaded ---------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=_MAX)
def info(version: str) -> dict[str, Any]:
    return get_store().info()


@st.cache_data(show_spinner=False, max_entries=_MAX)
def active_source(version: str) -> dict[str, Any] | None:
    return get_store().active_source()


@st.cache_data(show_spinner=False, max_entries=_MAX)
def sources(version: str) -> pd.DataFrame:
    return get_store().sources()


@st.cache_data(show_spinner=False, max_entries=_MAX)
def respondents(version: str) -> pd.DataFrame:
    """Respondents in display order (personas, models, others) with kind and region."""
    return get_store().respondents()


@st.cache_data(show_spinner=False, max_entries=4 * _MAX)
def distinct(version: str, column: str, filters: tuple = ()) -> list[Any]:
    return get_store().distinct(column, {c: list(v) for c, v in filters})


def _who(sel: Selection, kinds: Sequence[str] | None = None) -> list[str] | None:
    """Respondents of the selection, optionally of some kinds only (``None``: everyone)."""
    if kinds is None:
        return None if sel.respondents is None else list(sel.respondents)
    frame = respondents(sel.version)
    names = frame.loc[frame["kind"].isin(list(kinds)), "respondent"].tolist()
    return [n for n in names if sel.respondents is None or n in sel.respondents]


# -- analysis -------------------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=_MAX)
def positions(sel: Selection, by: tuple[str, ...] = (), who: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Positions with Wilson intervals per respondent x dimension (x ``by``) under the selection."""
    names = list(who) if who is not None else _who(sel)
    return analysis.positions(get_store(), sel.as_filters(), by=list(by), respondents=names)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def answer_mix(sel: Selection) -> pd.DataFrame:
    """Share of A / B / C / unparsed replies per respondent under the selection."""
    return explore.answer_mix(get_store().counts(sel.as_filters(), respondents=_who(sel)))


@st.cache_data(show_spinner=False, max_entries=_MAX)
def question_counts(sel: Selection, by: tuple[str, ...]) -> pd.DataFrame:
    return browse.question_counts(get_store(), sel.as_filters(), by=list(by))


@st.cache_data(show_spinner=False, max_entries=8)
def answer_matrix(sel: Selection, who: tuple[str, ...] | None = None):  # -> AnswerMatrix
    names = list(who) if who is not None else _who(sel)
    return get_store().answer_matrix(sel.as_filters(), respondents=names)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def distances(sel: Selection, base: str = "2", dimension: int | None = None) -> dict[str, Any]:
    """JS distances (``base`` "2" or "e") over the questions each pair shares."""
    import math

    from fairpp import space

    return space.js_distances(answer_matrix(sel), base=2.0 if base == "2" else math.e, dimension=dimension)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def agreement(sel: Selection, dimension: int | None = None) -> dict[str, Any]:
    from fairpp import space

    return space.agreement(answer_matrix(sel), dimension=dimension)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def unit_projection(sel: Selection, unit: str, method: str = "pca", n_components: int = 2,
                    kinds: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Respondent x ``unit`` points over the selected dimensions, projected (frozen PCA on personas, or UMAP).

    ``kinds`` keeps only respondents of those kinds (e.g. ``("persona",)``); ``None`` keeps everyone.
    """
    pos = positions(sel, (unit,))
    if kinds is not None:
        pos = pos[pos["kind"].isin(list(kinds))]
    pts = explore.wide_points(pos, unit=unit, dims=sel.dims)
    out = explore.project(pts, dims=sel.dims, method=method, n_components=n_components, embed=_umap_in_worker)
    out.attrs["dropped"] = pts.attrs["dropped"]
    if method == "umap":
        _umap_keys().add((sel, unit, n_components, kinds))
    return out


@st.cache_resource(show_spinner=False)
def _umap_worker() -> UmapWorker:
    """One UMAP worker process per server: the numba JIT and its memory stay out of the server process."""
    return UmapWorker()


def _umap_in_worker(x: np.ndarray, *, n_components: int, seed: int) -> np.ndarray:
    return _umap_worker().embed(x, n_components=n_components, seed=seed)


@st.cache_resource(show_spinner=False)
def _umap_keys() -> set:
    return set()


def umap_done(sel: Selection, unit: str, n_components: int, kinds: tuple[str, ...] | None = None) -> bool:
    """Whether this UMAP view was already computed in this server process (then it shows at once)."""
    return (sel, unit, n_components, kinds) in _umap_keys()


@st.cache_data(show_spinner=False, max_entries=_MAX)
def model_comparison(sel: Selection, n_boot: int = 200) -> explore.ModelComparison:
    """Models vs personas on the questions every selected model answered (see :func:`explore.compare_models`)."""
    models = _who(sel, ["model"])
    personas = [p for p in _who(sel, ["persona"]) if p in persona_names()] or _who(sel, ["persona"])
    m = answer_matrix(sel, tuple(models + personas))
    return explore.compare_models(m, models=models, personas=personas, n_boot=n_boot)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def model_map(sel: Selection, personas: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame, list[float]]:
    """The models map's frames for the selection (see :func:`explore.model_map_frames`): placed points, bootstrap
    clouds, explained variance. Raises :class:`FairppError` when no map can be drawn."""
    return explore.model_map_frames(model_comparison(sel), personas=list(personas))


@st.cache_data(show_spinner=False, max_entries=_MAX)
def question_page(sel: Selection, search: str = "", sort: str = "divided", limit: int = 50,
                  offset: int = 0) -> tuple[pd.DataFrame, int]:
    return browse.question_page(get_store(), sel.as_filters(), search=search or None,
                                respondents=_who(sel, ["persona"]), sort=sort, limit=limit, offset=offset)


@st.cache_data(show_spinner=False, max_entries=_MAX)
def page_answers(sel: Selection, question_ids: tuple[str, ...]) -> pd.DataFrame:
    return get_store().answers(None, respondents=_who(sel), question_ids=list(question_ids))


def table_reader(name: str) -> Callable[[], pd.DataFrame]:
    """A function reading a whole table when called (for a download: nothing is read until the click)."""
    store = get_store()
    return lambda: store.table(name)


# -- loads (writes: never cached) -----------------------------------------------------------------------------
def _after_load(report: dict[str, Any]) -> dict[str, Any]:
    invalidate()
    st.session_state["data.report"] = report
    return report


def load_paths(paths: Sequence[str | Path], *, names: Sequence[str] | None = None, append: bool = False
               ) -> dict[str, Any]:
    """Read files strictly and load them; a LoadError leaves the database as it was."""
    from fairpp.sources.files import read_files

    batch = read_files([Path(p) for p in paths], names=names)
    report = get_store().load(batch, append=append)
    return _after_load({**report, "label": batch.source.get("label"), "files": batch.source.get("files")})


def load_files(files: Sequence[Any], *, append: bool = False) -> dict[str, Any]:
    """Load uploaded files (``st.file_uploader`` objects): written to a temporary folder, then read strictly."""
    with tempfile.TemporaryDirectory(prefix="fairpp-upload-") as tmp:
        paths = []
        for i, f in enumerate(files):
            path = Path(tmp) / f"{i}-{Path(f.name).name}"
            path.write_bytes(f.getvalue())
            paths.append(path)
        return load_paths(paths, names=[f.name for f in files], append=append)


def load_hub(*, simulation: bool = False, append: bool = False) -> dict[str, Any]:
    """Download the published dataset from the hub and load it (fails fast and clearly offline)."""
    from fairpp.sources.hub import load_from_hub

    return _after_load(load_from_hub(get_store(), simulation=simulation, append=append))


def load_demo() -> dict[str, Any]:
    """Build the synthetic demo and load it, replacing the dataset."""
    from fairpp.sources.demo import build_demo

    batch = build_demo()
    return _after_load({**get_store().load(batch), "label": batch.source.get("label")})
