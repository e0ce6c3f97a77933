"""Static figure export (PNG, SVG) at presentation size, through plotly's kaleido and a headless Chromium.

``export_figure(fig, fmt="png", width=1600, height=900)`` returns the image as bytes: ``width`` x ``height``
pixels (PNG) or user units (the SVG's ``width``/``height``), drawn in the house template ``"fairpp"``.
``scale`` is the zoom of the drawing: the layout is laid out at ``width / scale`` x ``height / scale`` and
magnified, so text and markers stay readable on a slide (``scale=1`` gives the app's own, smaller, text).

Offline by construction: kaleido loads plotly.js from the installed plotly package and MathJax is switched
off, so no request leaves the machine. The browser is Chromium: ``FAIRPP_CHROMIUM`` or ``BROWSER_PATH`` when
set, else the first ``chromium`` / ``chromium-browser`` / ``google-chrome`` on ``PATH``, else
``/usr/bin/chromium``. Every export starts and stops one browser (a few seconds).

Examples
--------
>>> PRESETS["slide"]
(1600, 900)
>>> chromium_path() is None or chromium_path().startswith("/")
True
"""
from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
from typing import Any

import plotly.graph_objects as go

from fairpp.figures import theme  # noqa: F401  (registers the "fairpp" template)
from fairpp.figures.theme import legend_above, legend_lift
from fairpp.schema import FairppError

__all__ = ["FORMATS", "PRESETS", "MIME", "export_figure", "chromium_path", "export_available", "INSTALL_HINT"]

log = logging.getLogger(__name__)

#: The formats :func:`export_figure` writes.
FORMATS = ("png", "svg")
#: MIME type per format.
MIME = {"png": "image/png", "svg": "image/svg+xml"}
#: Presentation sizes in pixels: name -> (width, height).
PRESETS: dict[str, tuple[int, int]] = {"slide": (1600, 900), "slide-hd": (1920, 1080), "4:3": (1600, 1200),
                                       "square": (1200, 1200), "wide": (2400, 1000)}
#: What to do when no browser is found.
INSTALL_HINT = ("Figure export needs Chromium: install it (`apt-get install -y chromium` on Debian/Ubuntu) or "
                "point FAIRPP_CHROMIUM (or BROWSER_PATH) at a Chromium/Chrome binary.")
_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def chromium_path() -> str | None:
    """The Chromium binary kaleido will drive, or ``None`` when there is none."""
    for var in ("FAIRPP_CHROMIUM", "BROWSER_PATH"):
        path = os.environ.get(var)
        if path:
            return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    fallback = "/usr/bin/chromium"
    return fallback if os.path.isfile(fallback) and os.access(fallback, os.X_OK) else None


def export_available() -> str | None:
    """``None`` when figures can be exported here, else the reason and the fix (for a disabled button)."""
    if importlib.util.find_spec("kaleido") is None:
        return "Figure export needs the Python package kaleido (`pip install kaleido==1.5.0`)."
    if chromium_path() is None:
        bad = os.environ.get("FAIRPP_CHROMIUM") or os.environ.get("BROWSER_PATH")
        return (f"No Chromium at {bad!r}. " if bad else "") + INSTALL_HINT
    return None


_TITLE_PX, _NOTE_PX = 40, 24  # room above the plot for a title line and a note line


def _header(title: str | None, note: str | None) -> tuple[dict[str, Any], int]:
    """The layout title (with ``note`` as its subtitle) and the pixels it needs above the plot."""
    if not title and not note:
        return {}, 0
    head: dict[str, Any] = {"text": title or note, "x": 0.012, "xanchor": "left", "yref": "container",
                            "y": 0.985, "yanchor": "top", "font": {"size": 18}}
    if title and note:
        head["subtitle"] = {"text": note, "font": {"size": 13, "color": "#8A6100"}}
    elif note:
        head["font"] = {"size": 14, "color": "#8A6100"}
    return head, _TITLE_PX + (_NOTE_PX if title and note else 0)


def _themed(fig: go.Figure, *, width: int, height: int, scale: float | None, title: str | None,
            note: str | None) -> tuple[go.Figure, float]:
    """A copy in the house template, sized so that the image is ``width`` x ``height`` pixels; returns the zoom."""
    out = go.Figure(fig)
    lift = legend_lift(fig)  # in pixels, before the copy is resized
    head, extra = _header(title if not out.layout.title.text else None, note)
    designed = float(out.layout.height or 600) + extra
    zoom = float(scale) if scale is not None else min(max(height / designed, 1.0), 2.5)
    out.update_layout(template="fairpp", width=width / zoom, height=height / zoom, autosize=False,
                      paper_bgcolor="white")
    # the app's charts carry margins computed for the screen (fixed_margins); an image can afford plotly's own
    out.update_xaxes(automargin=True)
    out.update_yaxes(automargin=True)
    if lift is not None:  # a legend above the plot: rows for the image's width, as high above it as before
        margin = out.layout.margin
        legend_above(out, width=width / zoom - (margin.l or 80) - (margin.r or 80), clear=lift)
    if head:
        top = out.layout.margin.t if out.layout.margin.t is not None else 50
        out.update_layout(title=head if not out.layout.title.text else {"subtitle": head.get("subtitle")},
                          margin={"t": top + extra})
    return out, zoom


def _svg_size(svg: bytes, width: int, height: int) -> bytes:
    """Set the root ``<svg>``'s width/height to the requested size (its viewBox keeps the drawing's units)."""
    text = svg.decode("utf-8")
    head_end = text.index(">", text.index("<svg"))
    head = text[:head_end]
    head = re.sub(r'\swidth="[^"]*"', f' width="{width}"', head, count=1)
    head = re.sub(r'\sheight="[^"]*"', f' height="{height}"', head, count=1)
    return (head + text[head_end:]).encode("utf-8")


def export_figure(fig: go.Figure, *, fmt: str = "png", width: int = 1600, height: int = 900,
                  scale: float | None = None, title: str | None = None, note: str | None = None,
                  timeout: float = 90.0) -> bytes:
    """The figure as a PNG or SVG image of ``width`` x ``height`` pixels in the house theme.

    Parameters
    ----------
    fig : a plotly figure (not changed; a copy is themed and sized).
    fmt : ``"png"`` or ``"svg"``.
    width, height : the image size in pixels (PNG) or SVG units, 100 to 8000 each.
    scale : zoom of text, lines and markers (the layout is ``width / scale`` pixels wide), 0.5 to 4. ``None``
        (default) keeps the figure's designed height (``fig.layout.height``, else 600) and zooms it to fill
        ``height``, within 1 to 2.5.
    title : a title drawn above the plot when the figure has none (charts in the app carry theirs outside).
    note : a second line under the title, e.g. the synthetic-data label.
    timeout : seconds to wait for the browser to draw.

    Raises
    ------
    FairppError
        A bad argument, kaleido missing, no Chromium (the message says how to install it) or a render failure.

    Examples
    --------
    >>> export_figure(go.Figure(), fmt="gif")
    Traceback (most recent call last):
    ...
    fairpp.schema.FairppError: fmt='gif' is not a figure format; use png or svg.
    """
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise FairppError(f"fmt={fmt!r} is not a figure format; use {' or '.join(FORMATS)}.")
    for name, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 8000:
            raise FairppError(f"{name}={value!r} must be a whole number of pixels from 100 to 8000.")
    if scale is not None and not 0.5 <= float(scale) <= 4:
        raise FairppError(f"scale={scale!r} must be between 0.5 and 4 (or None to fit the figure's height).")
    problem = export_available()
    if problem:
        raise FairppError(problem)
    import kaleido
    from kaleido.errors import KaleidoError

    themed, zoom = _themed(fig, width=width, height=height, scale=scale, title=title, note=note)
    # the browser floors layout size x zoom: a hair more keeps 1599.9999 from becoming a 1599-pixel image
    opts = {"format": fmt, "width": width / zoom * (1 + 1e-9), "height": height / zoom * (1 + 1e-9), "scale": zoom}
    kopts: dict[str, Any] = {"mathjax": False, "path": chromium_path(), "timeout": timeout}
    log.info("exporting a %dx%d %s (zoom %.2f) with %s", width, height, fmt, zoom, kopts["path"])
    try:
        data = kaleido.calc_fig_sync(themed.to_dict(), opts=opts, kopts=kopts)
    except (KaleidoError, RuntimeError, OSError, TimeoutError) as exc:  # browser start or draw failures
        raise FairppError(f"figure export failed in Chromium ({kopts['path']}): {exc}. {INSTALL_HINT}") from exc
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _svg_size(data, width, height) if fmt == "svg" else bytes(data)
