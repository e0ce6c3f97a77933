"""The figure as the browser gets it: the same drawing, in a form plotly.js redraws without recomputing it.

Streamlit's chart component draws a figure, then hands plotly.js a deep copy of it (``Plotly.react``) right
after. plotly.js recomputes and redraws everything on that second call when

- an array arrives as a typed array (how plotly.py sends numpy arrays): typed arrays are compared by identity;
- ``layout.datarevision`` is unset: every array is then compared by identity;
- the template is a new object (``layout.template`` is compared by identity too).

So every chart was computed and drawn twice. :func:`for_browser` sends numeric arrays as lists, sets
``datarevision`` to a hash of the traces, and writes the template's layout into the figure's own layout
(the figure's settings win), so the second call finds nothing changed. Where plotly.js reads a setting
differently when the figure gives it than when a template does, the template's default is kept:

- an axis range turns autorange off only when the figure gives it, so a template's range is left out
  unless the figure sets ``autorange`` itself;
- a line, grid or zero-line colour or width shows that line on a cartesian axis only when the figure
  gives it; so where only the template gives one, the line is switched on or off explicitly, as plotly.js
  would have (axis lines off; grid and zero lines on, except along the categories of bars).

A template this module cannot write out (trace defaults, item defaults, other subplot kinds) and
figures whose bar-like traces leave their orientation to plotly.js keep their template: they are drawn
as before, only without the saving. ``fig`` itself is never changed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import numpy as np
import plotly.graph_objects as go

# bar-like traces: plotly.js draws no grid or zero line along their categories
_ORIENTED = {"bar", "histogram", "box", "violin", "funnel", "waterfall"}
# traces drawn on other subplots than cartesian axes (or on none)
_NOT_CARTESIAN = {"scatterpolar", "scatterpolargl", "barpolar", "scatter3d", "surface", "mesh3d", "cone",
                  "streamtube", "volume", "isosurface", "scatterternary", "scattergeo", "choropleth", "pie",
                  "treemap", "sunburst", "icicle", "funnelarea", "sankey", "table", "parcoords", "parcats",
                  "indicator", "scattermap", "scattermapbox", "choroplethmap", "choroplethmapbox", "densitymap",
                  "densitymapbox", "carpet", "scattercarpet", "contourcarpet", "scattersmith"}
_POLAR = {"scatterpolar", "scatterpolargl", "barpolar"}
# template layout keys written out here: the rest (other subplot kinds, item defaults) keep the template
_OTHER_SUBPLOTS = re.compile(r"(scene|ternary|geo|mapbox|map|smith|coloraxis)\d*$|.*defaults$")
# cartesian axis switches whose default plotly.js takes from the figure's own settings only
_SWITCHES = {"showline": ("linecolor", "linewidth"), "showgrid": ("gridcolor", "gridwidth", "griddash"),
             "zeroline": ("zerolinecolor", "zerolinewidth")}
# other settings whose presence changes a cartesian default (tick marks, spikes, minor grid): not written out
_OTHER_TRIGGERS = ("ticklen", "tickwidth", "tickcolor", "spikecolor", "spikethickness", "spikedash",
                   "spikemode", "spikesnap", "minor")


def for_browser(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` that draws the same and that plotly.js redraws without recomputing (module docstring).

    >>> fig = go.Figure(go.Bar(x=np.array([1.0, 2.0]), y=["a", "b"], orientation="h"), layout={"template": "fairpp"})
    >>> spec = for_browser(fig).to_dict()
    >>> spec["data"][0]["x"], spec["layout"]["template"], spec["layout"]["yaxis"]["showgrid"]
    ([1.0, 2.0], None, False)
    """
    spec = _plain(fig.to_dict())
    layout = spec.setdefault("layout", {})
    traces = spec.setdefault("data", [])
    template = layout.get("template") or {}
    axes = _axes(traces, layout)
    if axes is not None and _writable(template):
        del layout["template"]
        for key, value in template.get("layout", {}).items():
            if key in ("xaxis", "yaxis"):
                for name, oriented in axes.items():
                    if name.startswith(key):
                        layout[name] = _cartesian_axis(value, layout.get(name) or {}, oriented=oriented)
            elif key == "polar":
                for name in _polars(traces, layout):
                    layout[name] = _polar(value, layout.get(name) or {})
            else:
                layout[key] = _under(value, layout.get(key))
    text = json.dumps(traces, separators=(",", ":"), sort_keys=True, default=str)
    layout["datarevision"] = hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
    out = go.Figure(spec, _validate=False)  # the spec comes from a validated figure
    if "template" not in layout:
        out.layout.template = None  # sent as null, so plotly.py adds no default template
    return out


def _plain(obj: Any) -> Any:
    """``obj`` with plotly's typed-array specs (``{"dtype", "bdata", "shape"}``) and numpy arrays as lists."""
    if isinstance(obj, dict):
        if "bdata" in obj and "dtype" in obj:
            arr = np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]))
            if obj.get("shape"):
                arr = arr.reshape([int(x) for x in str(obj["shape"]).split(",")])
            return arr.tolist()
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    return obj


def _writable(template: dict) -> bool:
    """Whether the template only holds layout settings this module writes out."""
    layout = template.get("layout", {})
    return bool(template) and not template.get("data") and not any(_OTHER_SUBPLOTS.match(k) for k in layout) \
        and not any(k in (layout.get(a) or {}) for a in ("xaxis", "yaxis") for k in _OTHER_TRIGGERS)


def _axes(traces: list[dict], layout: dict) -> dict[str, bool] | None:
    """The cartesian axes (``xaxis``, ``yaxis2``...), each with whether bars stand along it (no grid by
    default); ``None`` when a bar-like trace leaves its orientation to plotly.js (it may guess from the data)."""
    axes = {k: False for k in layout if re.fullmatch(r"[xy]axis\d*", k)}
    for t in traces:
        kind = t.get("type", "scatter")
        if kind in _NOT_CARTESIAN:
            continue
        x, y = "x" + str(t.get("xaxis", "x"))[1:], "y" + str(t.get("yaxis", "y"))[1:]
        x, y = x[0] + "axis" + x[1:], y[0] + "axis" + y[1:]
        axes.setdefault(x, False)
        axes.setdefault(y, False)
        if kind in _ORIENTED:
            orientation = t.get("orientation")
            if orientation is None and kind == "bar":  # plotly.js: horizontal when only x is given
                orientation = "h" if "x" in t and "y" not in t else "v"
            elif orientation is None and kind == "histogram":  # horizontal when only y is given
                orientation = "h" if "y" in t and "x" not in t else "v"
            if orientation not in ("h", "v"):
                return None
            axes[y if orientation == "h" else x] = True
    return axes


def _polars(traces: list[dict], layout: dict) -> list[str]:
    names = [k for k in layout if re.fullmatch(r"polar\d*", k)]
    names += [str(t.get("subplot", "polar")) for t in traces if t.get("type") in _POLAR]
    return list(dict.fromkeys(names))


def _cartesian_axis(base: dict, own: dict, *, oriented: bool) -> dict:
    out = _under(_no_range(base, own), own)
    for switch, triggers in _SWITCHES.items():
        if switch in out or any(k in own for k in triggers) or not any(k in base for k in triggers):
            continue  # set by someone, or plotly.js's default is the same either way
        out[switch] = switch != "showline" and not oriented
    return out


def _polar(base: dict, own: dict) -> dict:
    """Polar axes show their line and grid by default, so only the range needs care."""
    out = _under(base, own)
    for name in ("radialaxis", "angularaxis"):
        if isinstance(base.get(name), dict):
            out[name] = _under(_no_range(base[name], own.get(name) or {}), own.get(name))
    return out


def _no_range(base: dict, own: dict) -> dict:
    return base if "autorange" in own or "range" not in base else {k: v for k, v in base.items() if k != "range"}


def _under(base: Any, over: Any) -> Any:
    """``over`` with ``base``'s settings where ``over`` has none (dicts merged key by key)."""
    if over is None:
        return base
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _under(base.get(k), v) for k, v in over.items()}}
    return over
