"""One palette, one plotly template and the labels every figure uses.

Colour-blind-safe choices: the seven personas take the Okabe-Ito colours (the same colour for the
same persona on every chart and in the report); models are coloured by region (Paul Tol's "muted"
scheme, distinct from the persona colours) and drawn with a symbol per region, so a chart stays
readable in greyscale. Respondents the taxonomy does not know (probed models, custom personas)
get colours from a third, fixed list in order of appearance.

Examples
--------
>>> respondent_style("Progressive Activists", kind="persona")["color"]
'#D55E00'
>>> respondent_style("Qwen2.5-7B-Instruct", kind="model", region="East Asia (China)")["symbol"]
'diamond'
>>> dimension_label(1)
'1 · libertarianism vs egalitarianism'
"""
from __future__ import annotations

import math
import re
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from fairpp.schema import persona_names, taxonomy

__all__ = [
    "TEMPLATE", "PERSONA_COLOURS", "REGION_COLOURS", "REGION_SYMBOLS", "ANSWER_COLOURS", "EXTRA_COLOURS",
    "respondent_style", "dimension_label", "dimension_axis", "dimensions", "SEQUENTIAL", "DIVERGING",
    "POSITION_SCALE", "short_name", "fixed_margins", "legend_above", "legend_lift",
]

# Okabe & Ito (2008), in persona survey order; yellow replaced by black for contrast on white.
_OKABE_ITO = ["#D55E00", "#E69F00", "#CC79A7", "#009E73", "#0072B2", "#56B4E9", "#1A1A1A"]
#: Persona name -> colour, in survey order.
PERSONA_COLOURS: dict[str, str] = dict(zip(persona_names(), _OKABE_ITO))

# Paul Tol's "muted" scheme for the model regions (plus a grey for an unknown region).
_REGIONS = ["North America (US)", "Europe (France)", "East Asia (China)", "Southeast Asia", "Middle East (UAE)"]
#: Model region -> colour.
REGION_COLOURS: dict[str, str] = dict(zip(_REGIONS, ["#332288", "#117733", "#882255", "#999933", "#44AA99"]))
#: Model region -> plotly marker symbol.
REGION_SYMBOLS: dict[str, str] = dict(zip(_REGIONS, ["square", "triangle-up", "diamond", "star", "pentagon"]))
#: Colours for respondents outside the taxonomy (probes, custom personas), in order of appearance.
EXTRA_COLOURS = ["#EE3377", "#33BBEE", "#EE7733", "#009988", "#BBBBBB", "#0077BB", "#CC3311"]
#: Answer code -> colour (A = first pole, B = second pole, C = N/A, unparsed/refused grey).
ANSWER_COLOURS = {"A": "#0072B2", "B": "#E69F00", "C": "#BBBBBB", "unparsed": "#666666", "refused": "#333333"}
#: Colour scales: sequential (cividis is readable with every colour-vision deficiency) and diverging.
SEQUENTIAL = "Cividis"
DIVERGING = "PuOr"
#: Position scale (0 = first pole, 0.5 = balanced, 1 = second pole), in the answer colours of A and B.
POSITION_SCALE = [[0.0, "#0072B2"], [0.5, "#F7F7F7"], [1.0, "#E69F00"]]

_extra: dict[str, str] = {}


def _model_variant(name: str, region: str) -> str:
    """"" for the first taxonomy model of a region, "-open" for the second, "-dot" for a third."""
    same = [m["name"] for m in taxonomy()["models"] if m["region"] == region]
    rank = same.index(name) if name in same else len(same)
    return ("", "-open", "-dot", "-open-dot")[min(rank, 3)]


def respondent_style(name: str, *, kind: str | None = None, region: object = None) -> dict[str, Any]:
    """Marker colour, symbol, size and outline (``line``) of a respondent, the same on every chart.

    Parameters
    ----------
    name : the respondent.
    kind : ``persona``, ``model``, ``probe`` or ``custom`` (``None``: guessed from the name).
    region : a model's region (decides its colour and symbol); two models of one region differ by a filled
        and an open symbol. A missing region (``None``, NaN) is ignored.

    >>> respondent_style("Llama-3.1-8B-Instruct", kind="model", region="North America (US)")["symbol"]
    'square-open'
    """
    region = region if isinstance(region, str) and region else None
    if name in PERSONA_COLOURS:
        return {"color": PERSONA_COLOURS[name], "symbol": "circle", "size": 11,
                "line": {"width": 1, "color": "white"}}
    if kind == "model" or region is not None:
        symbol = REGION_SYMBOLS.get(region or "", "x")
        if region in REGION_SYMBOLS:
            symbol += _model_variant(name, region)
        colour = REGION_COLOURS.get(region or "", "#777777")
        line = {"width": 2, "color": colour} if "open" in symbol else {"width": 1, "color": "white"}
        return {"color": colour, "symbol": symbol, "size": 13, "line": line}
    if name not in _extra:
        _extra[name] = EXTRA_COLOURS[len(_extra) % len(EXTRA_COLOURS)]
    return {"color": _extra[name], "symbol": "star-diamond" if kind == "probe" else "hexagon", "size": 13,
            "line": {"width": 1, "color": "white"}}


def short_name(name: str) -> str:
    """A compact label for narrow table columns: persona initials, model names without "-Instruct".

    >>> short_name("Disengaged Traditionalists"), short_name("Mistral-7B-Instruct-v0.3")
    ('DT', 'Mistral-7B')
    >>> short_name("Llama-SEA-LION-v3-8B-IT")
    'SEA-LION-v3-8B'
    """
    if name in PERSONA_COLOURS:
        return "".join(w[0] for w in name.split())
    out = name
    for suffix in ("-Instruct-v0.3", "-Instruct", "-IT"):
        if out.endswith(suffix):
            out = out[: -len(suffix)]
    out = out.replace("Llama-SEA-LION", "SEA-LION")
    return out if len(out) <= 16 else out[:15] + "…"


def dimensions() -> list[dict[str, Any]]:
    """The five dimensions of the taxonomy (number, name, poles and what each pole means)."""
    return list(taxonomy()["dimensions"])


def dimension_label(d: int, *, style: str = "long") -> str:
    """A dimension's label: ``long`` "1 · a vs b", ``short`` "D1", ``poles`` "a → b"."""
    info = next(x for x in dimensions() if int(x["number"]) == int(d))
    if style == "short":
        return f"D{d}"
    if style == "poles":
        return f"{info['pole_a']} → {info['pole_b']}"
    return f"{d} · {info['pole_a']} vs {info['pole_b']}"


def dimension_axis(d: int) -> str:
    """A two-line axis label naming the dimension and the direction of its scale (0 → 1)."""
    info = next(x for x in dimensions() if int(x["number"]) == int(d))
    return f"D{d}: {info['pole_a']} →<br>{info['pole_b']}"


#: The house plotly template ("fairpp"): white background, light grid, readable sans font.
TEMPLATE = go.layout.Template(
    layout=go.Layout(
        font={"family": "Inter, 'Source Sans Pro', 'DejaVu Sans', Arial, sans-serif", "size": 13, "color": "#222"},
        paper_bgcolor="white", plot_bgcolor="white",
        colorway=_OKABE_ITO,
        xaxis={"gridcolor": "#E6E6E6", "zerolinecolor": "#CCCCCC", "linecolor": "#999", "ticks": "outside",
               "automargin": True},
        yaxis={"gridcolor": "#E6E6E6", "zerolinecolor": "#CCCCCC", "linecolor": "#999", "ticks": "outside",
               "automargin": True},
        polar={"radialaxis": {"gridcolor": "#DDDDDD", "range": [0, 1]}, "angularaxis": {"gridcolor": "#DDDDDD"}},
        legend={"bgcolor": "rgba(255,255,255,0.8)", "font": {"size": 12}},
        hoverlabel={"font": {"size": 12}},
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        title={"font": {"size": 16}, "x": 0.0, "xanchor": "left"},
    )
)
pio.templates["fairpp"] = TEMPLATE


# -- margins without plotly's automargin ---------------------------------------------------------------------------
_EM = 0.62  # width of an average glyph of the house font, in em: a safe upper estimate for labels
_TAGS = re.compile(r"<[^>]+>")
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)


def _extent(texts: Any, size: float) -> tuple[float, int]:
    """Width in pixels of the longest line of ``texts`` (HTML line breaks split lines, tags are not drawn) and
    the largest number of lines."""
    width, lines = 0, 0
    for text in texts:
        parts = _BR.split(str(text))
        lines = max(lines, len(parts))
        width = max(width, *(len(_TAGS.sub("", part)) for part in parts))
    return width * _EM * size, lines


def _tick_labels(fig: go.Figure, name: str, axis: Any) -> list[Any]:
    """What an axis writes at its ticks: its ``ticktext``, the category values of its traces, or numbers
    (represented by their widest likely label)."""
    if axis.showticklabels is False:
        return []
    if axis.ticktext is not None:
        return list(axis.ticktext)
    letter, ref = name[0], name[0] + name[5:]
    values: set[Any] = set()
    numeric = False
    for trace in fig.data:
        if f"{letter}axis" not in trace or (trace[f"{letter}axis"] or letter) != ref or trace[letter] is None:
            continue
        data = trace[letter]
        if len(data) and isinstance(data[0], str):
            values.update(data)
        elif len(data):
            numeric = True
    if axis.categoryarray is not None and values:
        values.update(axis.categoryarray)
    if numeric:
        values.add("100%" if "%" in str(axis.tickformat or "") else "-0.25")
    return sorted(values, key=str)


def _bottom_shared(fig: go.Figure) -> bool:
    """Whether a horizontal colour bar or a legend below the plot shares the bottom margin with the x tick labels
    and title: plotly's automargin places them apart; an estimate here could not."""
    bars = [fig.layout[k].colorbar for k in fig.layout if re.fullmatch(r"coloraxis\d*", k)]
    bars += [t.marker.colorbar if "marker" in t and "colorbar" in t.marker else None for t in fig.data]
    bars += [t.colorbar if "colorbar" in t else None for t in fig.data]
    if any(b is not None and b.orientation == "h" for b in bars):
        return True
    legend = fig.layout.legend
    if fig.layout.showlegend is False or legend.y is None:
        return False
    return legend.y < 0 if legend.yref in (None, "paper") else legend.y <= 0.1  # below the plot, or at its foot


_LEGEND_ITEM = 45.0  # a legend entry's symbol and gaps, in pixels, besides its text
_LEGEND_EM = 0.56  # legend text width per character, in em (measured: 0.49; a little more, to be safe)
_LEGEND_ROW = 20.0  # height of a row of legend entries at 11 px text (measured: 19)


def legend_above(fig: Any, *, width: float = 900.0, grow: bool = False, font_size: float = 11.0,
                 clear: float = 0.0) -> Any:
    """Put the legend of ``fig`` in horizontal rows just above the plot and make room for it in the top margin,
    counting the rows it takes on a plot ``width`` pixels wide. ``fig`` is a figure or a figure's spec (a dict
    with ``data``, a list of trace dicts, and ``layout``, a dict); it is changed in place and returned.

    Above the plot rather than below: a legend below shares the bottom margin with the x-axis labels and title,
    which only plotly's automargin can sort out, at the price of drawing the chart a second time. Above, the
    room is known beforehand. Like plotly, entries fill one row when they fit and otherwise wrap into columns
    as wide as the widest entry. On a plot narrower than ``width`` the legend takes more rows: plotly then makes
    room itself (the legend pushes the top margin: one more drawing), so the legend never covers the plot.

    ``grow`` makes the figure taller by the legend's rows (the plot keeps its height). A title goes to the top
    edge, above the legend. ``clear`` lifts the legend that many pixels above the plot, for labels drawn above
    it (a radar's top axis label); :func:`legend_lift` reads it back.

    >>> f = legend_above(go.Figure([go.Scatter(name=n) for n in ["Progressive Activists", "Civic Pragmatists"]]))
    >>> f.layout.legend.yanchor, f.layout.margin.t
    ('bottom', 50)
    >>> spec = {"data": [{"name": "Disengaged Traditionalists"}] * 7, "layout": {}}
    >>> legend_above(spec, width=450)["layout"]["margin"]
    {'t': 110}
    """
    spec = isinstance(fig, dict)
    traces = fig["data"] if spec else [{"name": t.name, "showlegend": t.showlegend} for t in fig.data]
    names = [str(t["name"]) for t in traces if t.get("showlegend") is not False and t.get("name")]
    widths = [_LEGEND_ITEM + len(n) * _LEGEND_EM * font_size for n in names]
    if not names or sum(widths) <= width - 10:
        rows = 1
    else:  # columns as wide as the widest entry
        rows = math.ceil(len(names) / max(1, int((width - 10) // max(widths))))
    room = math.ceil(rows * _LEGEND_ROW + 10 + clear)
    title = fig["layout"].get("title") if spec else fig.layout.title.text
    patch: dict[str, Any] = {"legend": {"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.0,
                                        "yanchor": "bottom", "font": {"size": font_size}},
                             "margin": {"t": 20 + room}}  # plotly sets the legend 12 px below the top edge
    if title:
        patch["title"] = {"yref": "container", "y": 1.0, "yanchor": "top", "pad": {"t": 8}}
        patch["margin"]["t"] += 28
    if not spec:
        fig.update_layout(patch)
        if grow:
            fig.layout.height = (fig.layout.height or 450) + room
        if clear:
            plot_h = (fig.layout.height or 450) - fig.layout.margin.t - (fig.layout.margin.b or 50)
            fig.layout.legend.y = 1 + clear / plot_h
        return fig
    layout = fig["layout"]
    for key, value in patch.items():
        old = layout.get(key)
        if key == "title" and isinstance(old, str):
            old = {"text": old}
        layout[key] = {**old, **value} if isinstance(old, dict) else value
    if grow:
        layout["height"] = (layout.get("height") or 450) + room
    if clear:
        plot_h = (layout.get("height") or 450) - layout["margin"]["t"] - layout["margin"].get("b", 50)
        layout["legend"]["y"] = 1 + clear / plot_h
    return fig


def legend_lift(fig: go.Figure) -> float | None:
    """How many pixels above the plot :func:`legend_above` lifted the legend of ``fig`` (0 at the plot's top
    edge); None when its legend is not above the plot in rows.

    >>> legend_lift(legend_above(go.Figure(go.Scatter(name="a"), layout={"height": 400}), clear=30))
    30.0
    """
    legend, margin = fig.layout.legend, fig.layout.margin
    if legend.orientation != "h" or legend.yanchor != "bottom" or legend.y is None or legend.y < 1:
        return None
    plot_h = (fig.layout.height or 450) - (margin.t if margin.t is not None else 100) - (margin.b or 50)
    return round((legend.y - 1) * plot_h, 6)


def fixed_margins(fig: go.Figure, *, font_size: float = 13.0) -> go.Figure:
    """Turn plotly's ``automargin`` off on every cartesian axis and make the margins room for the tick labels
    and axis titles instead (computed from the labels here). Returns ``fig``, changed in place.

    ``automargin`` makes the browser measure the labels after a first drawing and draw the chart again: about
    half the drawing time of a chart with long category labels (a heatmap of respondents, horizontal bars).
    The estimate errs on the wide side (an average glyph of 0.62 em). Static exports turn ``automargin``
    back on (:func:`fairpp.figures.export.export_figure`). Figures without cartesian axes are left as they are.

    >>> f = fixed_margins(go.Figure(go.Bar(y=["Progressive Activists"], x=[0.4], orientation="h")))
    >>> f.layout.yaxis.automargin, f.layout.margin.l > 13 * 0.62 * len("Progressive Activists")
    (False, True)
    """
    if getattr(fig, "_fairpp_margins", False):
        return fig
    fig._fairpp_margins = True  # done once per figure object (a figure kept between reruns is not changed again)
    if _bottom_shared(fig):
        return fig
    base = fig.layout.font.size or font_size
    edges = {"l": 0.0, "r": 0.0, "t": 0.0, "b": 0.0}
    axes = [name for name in fig.layout if re.fullmatch(r"[xy]axis\d*", name)]
    for name in axes:
        axis = fig.layout[name]
        labels = _tick_labels(fig, name, axis)
        title = axis.title.text if axis.title is not None else None
        if not labels and not title:
            continue
        size = (axis.tickfont.size if axis.tickfont is not None else None) or base
        width, lines = _extent(labels, size) if labels else (0.0, 0)
        line_px = 1.3 * size * lines
        need = 8.0 + (5.0 if axis.ticks == "outside" or axis.ticks is None else 0.0)
        if name[0] == "y":
            need += width
            side = "r" if axis.side == "right" else "l"
        else:
            angle = abs(math.radians(axis.tickangle)) if isinstance(axis.tickangle, (int, float)) else 0.0
            need += width * math.sin(angle) + line_px * math.cos(angle) if labels else 0.0
            side = "t" if axis.side == "top" else "b"
        if title:
            title_size = (axis.title.font.size if axis.title.font is not None else None) or base
            need += 1.3 * title_size * len(_BR.split(str(title))) + 6.0
        edges[side] = max(edges[side], need)
        axis.automargin = False
    if not any(edges.values()):
        return fig
    current = fig.layout.margin
    default = TEMPLATE.layout.margin
    fig.update_layout(margin={k: max(getattr(current, k) if getattr(current, k) is not None else getattr(default, k),
                                      math.ceil(v)) for k, v in edges.items()})
    return fig
