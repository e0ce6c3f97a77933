"""``for_browser``: the figure the app sends draws exactly as the figure built, and its second draw recomputes nothing.

Streamlit's chart component calls ``Plotly.react`` a second time with a deep copy of the figure right after
the first draw; plotly.js recomputed every chart then (typed arrays, no ``datarevision``, a template object).
The browser test draws every figure builder's output (the fixture of ``test_margins``) both ways with
plotly.js in headless Chromium, compares the pixels, and repeats Streamlit's second call on each.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import plotly
import plotly.graph_objects as go

import browser_util as bu
from fairpp.figures.browser import for_browser
from fairpp.figures.theme import TEMPLATE, fixed_margins
from test_margins import built  # noqa: F401  (the module's figures: every builder, on the fixture data)


def test_numbers_go_as_lists_and_the_house_template_into_the_layout(built):  # noqa: F811
    bars = fixed_margins(go.Figure(built["dimension_bars"]))
    sent = json.loads(for_browser(bars).to_json())
    assert '"bdata"' in bars.to_json() and '"bdata"' not in json.dumps(sent)  # no typed arrays
    assert sent["data"][0]["x"] == list(bars.data[0].x)
    radar = fixed_margins(go.Figure(built["radar"]))
    before = radar.to_json()
    spec = json.loads(for_browser(radar).to_json())
    assert spec["layout"]["template"] is None
    assert spec["layout"]["colorway"] == list(TEMPLATE.layout.colorway)
    assert spec["layout"]["font"]["family"] == TEMPLATE.layout.font.family
    # the figure's own settings win over the template's, down to nested keys
    assert spec["layout"]["polar"]["radialaxis"]["range"] == list(radar.layout.polar.radialaxis.range)
    assert spec["layout"]["polar"]["radialaxis"]["gridcolor"] == TEMPLATE.layout.polar.radialaxis.gridcolor
    assert spec["data"][0]["r"] == list(radar.data[0].r)
    assert radar.to_json() == before  # the figure itself is not changed


def test_datarevision_follows_the_numbers():
    def fig(y):
        return go.Figure(go.Scatter(x=np.arange(3), y=np.array(y, dtype=float)), layout={"template": "fairpp"})

    same = [for_browser(fig([1, 2, 3])).layout.datarevision for _ in range(2)]
    other = for_browser(fig([1, 2, 3.5])).layout.datarevision
    assert same[0] == same[1] and other != same[0]


def test_line_switches_keep_plotlys_defaults():
    bars = go.Figure(go.Bar(x=np.array([0.2, 0.4]), y=["a", "b"], orientation="h"), layout={"template": "fairpp"})
    spec = for_browser(bars).to_dict()["layout"]
    # plotly.js shows an axis line only for a colour the figure gives, and no grid along bars' categories
    assert spec["xaxis"]["showline"] is False and spec["xaxis"]["showgrid"] is True
    assert spec["yaxis"]["showgrid"] is False and spec["yaxis"]["zeroline"] is False
    hist = go.Figure(go.Histogram(y=np.array([1.0, 2.0, 2.0])), layout={"template": "fairpp"})  # horizontal
    spec = for_browser(hist).to_dict()["layout"]
    assert spec["yaxis"]["showgrid"] is False and spec["xaxis"]["showgrid"] is True
    own = go.Figure(go.Scatter(x=[1, 2], y=[1, 2]), layout={"template": "fairpp", "xaxis": {"linewidth": 2}})
    assert "showline" not in for_browser(own).to_dict()["layout"]["xaxis"]  # the figure's width shows it


def test_templates_it_cannot_write_out_are_kept():
    plain = go.Figure(go.Scatter(x=[1, 2], y=[3, 4]))  # plotly's default template sets trace defaults
    assert for_browser(plain).to_dict()["layout"]["template"]["data"]
    box = go.Figure(go.Box(y=[1, 2, 3]), layout={"template": "fairpp"})  # plotly.js guesses the orientation
    assert for_browser(box).to_dict()["layout"]["template"]["layout"]["colorway"]


_REACT = """async ([spec]) => { const g = document.getElementById('g'); const first = g.calcdata;
  await Plotly.react(g, JSON.parse(JSON.stringify(spec.data)), JSON.parse(JSON.stringify(spec.layout)));
  return g.calcdata === first; }"""


def test_the_sent_figure_draws_the_same_and_is_not_recomputed_on_the_second_call(built, tmp_path):  # noqa: F811
    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    page_file = tmp_path / "chart.html"
    page_file.write_text(f"<html><body style='margin:0'><div id='g' style='width:900px'></div><script>{js}</script>"
                         "</body></html>", encoding="utf-8")
    differ, recomputed, kept_before = [], [], []
    with bu.chromium() as browser:
        page = browser.new_page()
        page.goto(page_file.as_uri())
        for name, fig in built.items():
            fig = fixed_margins(go.Figure(fig))
            shots, kept = [], []
            for spec in (json.loads(fig.to_json()), json.loads(for_browser(fig).to_json())):
                page.evaluate("async ([spec]) => { const g = document.getElementById('g'); Plotly.purge(g);"
                              " await Plotly.newPlot(g, spec.data, spec.layout, {responsive: false}); }", [spec])
                shots.append(page.locator("#g").screenshot())
                kept.append(page.evaluate(_REACT, [copy.deepcopy(spec)]))
            if shots[0] != shots[1]:
                (tmp_path / f"{name}-built.png").write_bytes(shots[0])
                (tmp_path / f"{name}-sent.png").write_bytes(shots[1])
                differ.append(name)
            if not kept[1]:
                recomputed.append(name)
            if kept[0]:
                kept_before.append(name)
    assert not differ, f"drawn differently: {differ} (images in {tmp_path})"
    assert not recomputed, f"recomputed on the second call: {recomputed}"
    # the control: the figures as built were recomputed by the same second call
    assert not kept_before, kept_before
