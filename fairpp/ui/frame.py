"""The shared frame around every page: data source box, link to the view, synthetic banner, global filters,
definitions, and in play mode (``?story=&slide=``) the slide bar instead of the sidebar."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

import streamlit as st

from fairpp.explore import sort_like_taxonomy
from fairpp.figures import DEFINITIONS, SYNTHETIC_BANNER, dimension_label
from fairpp.ui import data, params
from fairpp.ui.selection import FILTER_COLUMNS, Selection

__all__ = ["frame", "sidebar", "selection", "banner", "define", "source_kind"]

_SEL = "_fairpp.selection"  # the last selection, kept in the session for code outside a page run
_run = threading.local()  # the selection while app.py's frame runs a page on this thread
_KINDS = {"demo": "Synthetic demo", "hub": "Published dataset", "published": "Published dataset",
          "file": "User file", "mixed": "Mixed sources"}


def source_kind(src: dict[str, Any] | None) -> str:
    """"Published dataset", "User file", "Synthetic demo"... for the active source."""
    if not src:
        return "No data"
    return "Synthetic demo" if src.get("synthetic") else _KINDS.get(str(src.get("kind")), str(src.get("kind")))


@contextmanager
def frame(page_key: str) -> Iterator[Selection]:
    """Draw the shared frame (URL clean-up, sidebar, link, banner) around the page run inside the block.

    The selection is available to the page (:func:`selection`) only while the block runs. A move to another
    slide of a story (asked by a button's callback) happens here, before anything is drawn. After a page that
    ran to its end, the link shows the URL the page's widgets wrote.
    """
    from fairpp.ui import stories
    from fairpp.ui.nav import PAGES

    stories.follow()
    params.prune(page_key, known_prefixes=[p.key for p in PAGES])
    with st.sidebar:
        top = st.container()  # the link goes above the data source box
    sel = sidebar()
    with top:
        link = stories.link_control(page_key)
    stories.slide_bar(page_key)
    banner(sel.version)
    _run.selection = sel
    try:
        yield sel
        stories.update_link(link, page_key)  # not reached after st.stop() or a page switch
    finally:  # plain Python: after st.stop() every Streamlit call raises again, so none is made here
        _run.selection = None


def sidebar() -> Selection:
    """Draw the data source box and the global filters in the sidebar; return (and remember) the selection."""
    version = data.data_version()
    src = data.active_source(version)
    with st.sidebar:
        with st.container(border=True):
            st.markdown(f"**Data: {source_kind(src)}**")
            if src:
                st.caption(f"{src['label']}  \nloaded {str(src['loaded_at'])[:16]} UTC")
        sel = _filters(version)
    st.session_state[_SEL] = sel
    return sel


def selection() -> Selection:
    """The selection made in the sidebar on this run. Pages call this first, before drawing anything.

    Call it in the page's script, not inside an ``st.fragment`` (a fragment rerun does not redraw the frame):
    pass the selection to the fragment function instead.

    A page run without app.py's :func:`frame` around it is Streamlit's legacy ``pages/`` mode, which a fresh
    server uses for a first request that asks for a sub-page (``/personas``) before any session has called
    ``st.navigation`` (and which ``AppTest.switch_page`` uses on every run). Then this call runs app.py's
    navigation and frame around the page itself, and stops the outer run.
    """
    sel = getattr(_run, "selection", None)
    if sel is None:
        from fairpp.ui.nav import configure_page, navigation

        configure_page()
        page, spec = navigation()  # st.navigation also switches Streamlit out of the legacy mode
        with frame(spec.key):
            page.run()
        st.stop()
    return sel


def banner(version: str | None = None) -> None:
    """The unmissable banner shown on every page while the synthetic demo is loaded (``version``: the data version
    this run works on, asked of the database when not given)."""
    src = data.active_source(version or data.data_version())
    if src and src.get("synthetic"):
        st.warning(f"**{SYNTHETIC_BANNER}.** Load the published dataset or your own files on the Data page.",
                   icon=":material/science:")


def define(*keys: str) -> None:
    """Print the definitions of the numbers shown (see :data:`fairpp.figures.DEFINITIONS`)."""
    st.caption("  \n".join(DEFINITIONS[k] for k in keys))


def _reset() -> None:
    for name in [*FILTER_COLUMNS, "respondents"]:
        st.session_state[f"filters.{name}"] = []


def _filters(version: str) -> Selection:
    st.markdown("**Filters** · empty = all")
    chosen: dict[str, tuple] = {}

    def current() -> tuple:
        return tuple(sorted((c, v) for c, v in chosen.items() if v))

    narrowing = {"category": ("topic",), "group": ("group_type",)}
    for name, (column, param, label) in FILTER_COLUMNS.items():
        scope = tuple((c, v) for c, v in current() if c in [FILTER_COLUMNS[n][0] for n in narrowing.get(name, ())])
        options = data.distinct(version, column, scope)
        fmt: Any = str
        if column == "dimension":
            options = [int(d) for d in options]
            fmt = dimension_label
        elif column in ("topic", "problem_category", "group_type", "group_name"):
            options = sort_like_taxonomy(options, column)
        value = params.multiselect(label, options, key=f"filters.{name}", param=param, format_func=fmt,
                                   placeholder="All")
        chosen[column] = tuple(value)
    names = data.respondents(version)["respondent"].tolist()
    who = params.multiselect("Respondents", names, key="filters.respondents", param="respondents",
                             placeholder="All")
    if any(chosen.values()) or who:
        st.button("Reset filters", on_click=_reset, key="filters.reset", icon=":material/filter_alt_off:")
    return Selection(version=version, filters=current(), respondents=tuple(who) if who else None)
