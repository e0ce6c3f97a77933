"""The dashboard's Streamlit layer: the only part of fairpp that imports streamlit.

A page is a thin script: ``sel = ui.selection()`` first, then widgets (``ui.params.*``), one cached call
(``ui.data.*``) and ``ui.chart(figure, ...)`` with a builder from :mod:`fairpp.figures`. To add a page, write
``pages/<key>.py`` and append a :class:`PageSpec` to :data:`PAGES` (``fairpp/ui/nav.py``); its widget keys and
URL parameters are ``"<key>.<field>"``.

Frame (:mod:`.frame`, :mod:`.nav`)
    ``configure_page()``, ``navigation()`` and ``frame(page_key)`` are what app.py calls; ``frame`` draws the
    sidebar (data source box, global filters) and the synthetic-data banner around the page. ``selection()``
    returns the page's :class:`Selection` (call it first; pass it into fragments). ``define(*keys)`` prints the
    definitions of :data:`fairpp.figures.DEFINITIONS`. ``source_kind(src)`` names the data source.
URL-bound widgets (:mod:`.params`)
    ``params.selectbox / radio / multiselect / toggle / text_input / number_input(label, ..., key=, default=)``:
    the value lives in the URL under the widget key (``param=`` renames it), survives page switches and is
    restored from a copied link; ``params.url_value(name)`` reads one. Sections of a page: ``st.tabs(labels,
    key="<page>.section", bind="query-params")`` and draw only the tab whose ``.open`` is true.
Charts and tables (:mod:`.charts`)
    ``chart(fig, key=, data=, filename=, select=, caption=)`` draws a figure (hover, PNG from the modebar at 2x,
    a CSV download of ``data``; sent as ``figures.browser.for_browser(fig)``, so that Streamlit's second
    ``Plotly.react`` of each chart recomputes nothing) and returns the selected points; ``selected(points, columns)`` turns their
    ``customdata`` into a frame; ``download_frame(frame_or_callable, key=, file_name=, fmt=)``;
    ``table(frame)`` (a dataframe sized to its rows); ``static_table(frame)`` (a few rows as plain HTML, drawn
    faster than ``st.table``); ``row(n)`` (side-by-side containers that wrap on narrow screens);
    ``styled_answers(frame, mask)``.
Cached data (:mod:`.data`; keyed by the selection, invalidated by a load)
    ``data.get_store()``, ``data.positions(sel, by, who)``, ``data.answer_mix``, ``data.question_counts``,
    ``data.answer_matrix``, ``data.distances``, ``data.agreement``, ``data.unit_projection`` (UMAP runs in a
    worker process, only when asked), ``data.model_comparison``, ``data.model_map``, ``data.question_page``,
    ``data.page_answers``, ``data.respondents(version)``, ``data.sources(version)``, ``data.table_reader(name)``;
    loads (never cached): ``data.load_paths``, ``data.load_files``, ``data.load_hub``, ``data.load_demo``, then
    ``data.invalidate()``.
"""
from __future__ import annotations

from fairpp.ui import data, params
from fairpp.ui.charts import chart, download_frame, figure, row, selected, slug, static_table, styled_answers, table
from fairpp.ui.frame import banner, define, frame, selection, sidebar, source_kind
from fairpp.ui.nav import PAGES, PageSpec, configure_page, current_page, navigation
from fairpp.ui.selection import FILTER_COLUMNS, Selection

__all__ = [
    "data", "params", "frame", "chart", "download_frame", "figure", "selected", "slug", "styled_answers", "table",
    "static_table", "row",
    "banner", "define", "selection", "sidebar", "source_kind", "PAGES", "PageSpec", "configure_page",
    "current_page", "navigation", "FILTER_COLUMNS", "Selection",
]
