"""Drawing a figure: hover, PNG/SVG downloads at presentation size, the numbers behind it as CSV, selection events."""
from __future__ import annotations

import hashlib
import pickle
import re
import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Sequence, TypeVar

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fairpp.figures.browser import for_browser
from fairpp.figures.theme import fixed_margins

__all__ = ["chart", "download_frame", "download_figure", "figure", "selected", "slug", "styled_answers", "table",
           "static_table", "row", "FIGURE_SIZES"]

#: Image sizes offered for figure downloads: label -> (width, height) in pixels.
FIGURE_SIZES: dict[str, tuple[int, int]] = {"1600 × 900 (16:9 slide)": (1600, 900),
                                            "1920 × 1080 (16:9 full HD)": (1920, 1080),
                                            "1600 × 1200 (4:3 slide)": (1600, 1200),
                                            "1200 × 1200 (square)": (1200, 1200)}


def slug(text: str) -> str:
    """A file-name-safe version of a title.

    >>> slug("Personas: radar (D1-D5)")
    'personas-radar-d1-d5'
    """
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "chart"


def download_frame(frame: pd.DataFrame | Callable[[], pd.DataFrame], *, key: str, file_name: str,
                   label: str = "Numbers (CSV)", fmt: str = "csv", where: Any = None) -> None:
    """A download button for a frame (or a function returning one), serialised only when clicked.

    ``fmt`` is ``csv`` or ``parquet``. Nothing is read or serialised until the user clicks.
    """
    target = where if where is not None else st
    get = frame if callable(frame) else (lambda: frame)

    def data() -> bytes:
        f = get()
        return f.to_parquet(index=False) if fmt == "parquet" else f.to_csv(index=False).encode("utf-8")

    mime = "application/vnd.apache.parquet" if fmt == "parquet" else "text/csv"
    target.download_button(label, data=data, file_name=file_name, mime=mime, key=key, on_click="ignore",
                           icon=":material/download:")


def _synthetic_note() -> str | None:
    """The synthetic-data label when the loaded data are the demo (for exported images)."""
    from fairpp.figures import SYNTHETIC_BANNER
    from fairpp.ui import data

    sel = st.session_state.get("_fairpp.selection")
    src = data.active_source(sel.version if sel is not None else data.data_version())
    return SYNTHETIC_BANNER if src and src.get("synthetic") else None


def download_figure(fig: go.Figure, *, key: str, file_name: str, where: Any = None, title: str | None = None) -> None:
    """A compact "Image" popover: a size choice and PNG / SVG downloads, rendered only when clicked.

    The image is drawn by :func:`fairpp.figures.export.export_figure` (house theme, headless Chromium) with the
    synthetic-data label when the demo is loaded. Without Chromium the buttons are disabled and say why.
    """
    from fairpp.figures.export import MIME, export_available, export_figure

    target = where if where is not None else st
    problem = export_available()
    box = target.popover("Image", icon=":material/image:", help="PNG or SVG at presentation size")
    label = box.selectbox("Size (pixels)", list(FIGURE_SIZES), key=f"{key}.size")
    width, height = FIGURE_SIZES[label]
    note = _synthetic_note()

    def image(fmt: str) -> Callable[[], bytes]:  # export_figure draws a themed copy; ``fig`` is left as it is
        return lambda: export_figure(fig, fmt=fmt, width=width, height=height, title=title, note=note)

    buttons = box.container(horizontal=True)
    for fmt in ("png", "svg"):
        buttons.download_button(fmt.upper(), data=image(fmt), file_name=f"{file_name}-{width}x{height}.{fmt}",
                                mime=MIME[fmt], key=f"{key}.{fmt}", on_click="ignore", disabled=problem is not None,
                                icon=":material/download:", help=problem)
    if problem:
        box.caption(problem)


def chart(fig: go.Figure, *, key: str, data: pd.DataFrame | None = None, filename: str | None = None,
          select: bool = False, selection_mode: Sequence[str] = ("points", "box", "lasso"),
          caption: str | None = None) -> list[dict[str, Any]]:
    """Draw a plotly figure with the house configuration.

    Parameters
    ----------
    fig : the figure (from :mod:`fairpp.figures`).
    key : widget key, "<page>.<chart>".
    data : the numbers behind the chart; adds a "Numbers (CSV)" download button.
    filename : base name of the images (the "Image" popover: PNG/SVG at presentation size; the modebar's
        camera, 2x scale) and of the CSV.
    select : listen to selection events (box, lasso, click); returns the selected points.
    caption : a definition or note printed under the chart.

    Returns
    -------
    list of dict
        The selected points (plotly event data: ``curve_number``, ``point_index``, ``x``, ``y``,
        ``customdata``...), empty without ``select`` or selection.
    """
    name = filename or slug(key)
    fixed_margins(fig)  # a figure not built through figure() (those come laid out, and are not changed again)
    config = {"displaylogo": False, "scrollZoom": False,
              "toImageButtonOptions": {"format": "png", "filename": name, "scale": 2},
              "modeBarButtonsToRemove": ["sendDataToCloud"]}
    event = st.plotly_chart(_sent(fig), key=key, on_select="rerun" if select else "ignore", theme=None, config=config,
                            width="stretch", **({"selection_mode": list(selection_mode)} if select else {}))
    if caption:
        st.caption(caption)
    bar = st.container(horizontal=True, gap="small")
    if data is not None:
        download_frame(data, key=f"{key}.csv", file_name=f"{name}.csv", where=bar)
    download_figure(fig, key=f"{key}.image", file_name=name, where=bar)
    if not select or event is None:
        return []
    try:
        return list(event["selection"]["points"])
    except (KeyError, TypeError):
        return []


def selected(points: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """The ``customdata`` of selected points as a frame (points without customdata are skipped)."""
    rows = [list(p["customdata"])[: len(columns)] for p in points if isinstance(p.get("customdata"), (list, tuple))]
    return pd.DataFrame(rows, columns=list(columns)).drop_duplicates().reset_index(drop=True)


_DISAGREE = "background-color: #FFD8A8; font-weight: 600"
_QUIET = "color: #888"


def styled_answers(frame: pd.DataFrame, mask: pd.DataFrame) -> Any:
    """A Styler for an answer table: cells where ``mask`` is true (disagreement) get a warm background."""
    cols = [c for c in mask.columns if c in frame.columns]

    def css(block: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame("", index=block.index, columns=block.columns)
        for c in cols:
            flags = mask[c].reindex(block.index).fillna(False)
            out[c] = [_DISAGREE if m else (_QUIET if v in ("C", "–") else "") for v, m in zip(block[c], flags)]
        return out

    return frame.style.apply(css, axis=None, subset=cols).format(precision=2, na_rep="")


def table(frame: pd.DataFrame, *, max_rows: int = 16, **kwargs: Any) -> Any:
    """``st.dataframe`` without the index, tall enough to show up to ``max_rows`` rows without scrolling."""
    height = 38 + 35 * min(len(frame), max_rows)
    return st.dataframe(frame, hide_index=True, width="stretch", height=height, **kwargs)


# st.table's look: thin inner lines, a rounded outline, muted headers; colours follow the theme's text colour
_STATIC_CSS = """<style>
div.fairpp-table {overflow-x: auto; border: 1px solid rgba(128, 128, 128, 0.22); border-radius: 0.5rem;
                  margin-bottom: 0.5rem;}
table.fairpp-static {border-collapse: collapse; border-style: hidden; width: 100%; font-size: 14px; line-height: 1.5;}
table.fairpp-static th, table.fairpp-static td {border: 1px solid rgba(128, 128, 128, 0.22); padding: 4px 6px;
                                                text-align: left; vertical-align: middle;}
table.fairpp-static th, table.fairpp-static.row-heads td:first-child {font-weight: 400;
                                                color: color-mix(in srgb, currentColor 70%, transparent);}
table.fairpp-static td.num {text-align: right; font-variant-numeric: tabular-nums;}
</style>"""


def static_table(frame: pd.DataFrame, *, row_heads: bool = True, digits: int = 3) -> None:
    """A small table drawn as plain HTML (:func:`fairpp.report.html_table`: every text escaped), muted like
    row headers in its first column when ``row_heads``.

    For a handful of rows that need no sorting or scrolling: ``st.table`` renders every cell as markdown,
    which made a 13-row table cost about 80 ms of drawing on each visit to its tab.
    """
    from fairpp.report import html_table

    cls = "fairpp-static row-heads" if row_heads else "fairpp-static"
    st.html(_STATIC_CSS + html_table(frame, cls=cls, digits=digits, wrap="fairpp-table"))


def row(count: int, *, width: int = 460, gap: str = "medium") -> list[Any]:
    """``count`` containers side by side that wrap onto separate lines on a narrow screen.

    Each is ``width`` pixels wide at least where room allows (a flex row with wrapping), unlike ``st.columns``,
    which squeezes its columns until the screen is very narrow.
    """
    box = st.container(horizontal=True, wrap=True, gap=gap)
    return [box.container(width=width) for _ in range(count)]


# -- built figures, kept between reruns -----------------------------------------------------------------------
_FIGURES_KEPT = 64
T = TypeVar("T")
_figures_lock = threading.Lock()


@st.cache_resource(show_spinner=False)
def _figures() -> OrderedDict[str, go.Figure]:
    return OrderedDict()


@st.cache_resource(show_spinner=False)
def _sent_figures() -> OrderedDict[int, tuple[weakref.ref, go.Figure]]:
    return OrderedDict()


def _sent(fig: go.Figure) -> go.Figure:
    """``for_browser(fig)`` (the same drawing, in a form the component's second ``Plotly.react`` does not
    recompute), kept while ``fig`` lives: the figures :func:`figure` shares between reruns are converted once."""
    return _kept(_sent_figures(), id(fig), lambda: (weakref.ref(fig), for_browser(fig)),
                 fresh=lambda hit: hit[0]() is fig)[1]


def _kept(cache: OrderedDict, key: Any, build: Callable[[], T], *, fresh: Callable[[T], bool] = lambda _: True) -> T:
    """``cache[key]`` if there (and ``fresh``), else ``build()`` stored under ``key``; the least recently used of
    more than ``_FIGURES_KEPT`` entries are dropped. ``build`` runs outside the lock."""
    with _figures_lock:
        hit = cache.get(key)
        if hit is not None and fresh(hit):
            cache.move_to_end(key)
            return hit
    value = build()
    with _figures_lock:
        cache[key] = value
        while len(cache) > _FIGURES_KEPT:
            cache.popitem(last=False)
    return value


def _fingerprint(value: Any) -> Any:
    """A hashable stand-in for a builder argument: frames and arrays by content, containers element-wise."""
    if isinstance(value, (pd.DataFrame, pd.Series)):
        try:
            digest = int(pd.util.hash_pandas_object(value, index=True).sum())
        except TypeError:  # unhashable cells (lists, dicts): fall back to the pickled bytes
            digest = hashlib.sha1(pickle.dumps(value)).hexdigest()
        frame = isinstance(value, pd.DataFrame)
        cols = tuple(map(str, value.columns)) if frame else str(value.name)
        dtypes = tuple(map(str, value.dtypes)) if frame else (str(value.dtype),)
        return (type(value).__name__, value.shape, cols, dtypes, digest)
    if isinstance(value, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(value).tobytes()).hexdigest()
        return ("ndarray", value.shape, str(value.dtype), digest)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_fingerprint(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), _fingerprint(v)) for k, v in value.items()))
    return repr(value)


def figure(builder: Callable[..., go.Figure], *args: Any, **kwargs: Any) -> go.Figure:
    """``builder(*args, **kwargs)``, kept by the content of its arguments so that a rerun with the same numbers
    (a page switch, a widget elsewhere on the page) reuses the figure instead of rebuilding and re-validating it.

    The figure is shared between reruns and sessions: draw it, never modify it (build a new one instead).
    """
    key = hashlib.sha1(repr((builder.__module__, builder.__qualname__, _fingerprint(args),
                             _fingerprint(kwargs))).encode()).hexdigest()
    return _kept(_figures(), key, lambda: fixed_margins(builder(*args, **kwargs)))
