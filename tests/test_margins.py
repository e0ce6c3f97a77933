"""Chart margins computed from the labels (``fixed_margins``) instead of plotly's automargin, which draws a chart twice.

The browser test draws every figure builder's output, with the app's margins, in headless Chromium (plotly.js from
the plotly package) at a wide and a narrow width, and checks that no tick label or axis title is cut off or lies on
another (the legend included). It needs Debian's chromium at /usr/bin/chromium and fails without it (CI installs it).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import plotly
import plotly.graph_objects as go
import pytest

import browser_util as bu
from conftest import PERSONAS
from fairpp import analysis, explore, figures
from fairpp.figures.export import _themed
from fairpp.figures.theme import fixed_margins
from fairpp.store import Store
from test_pages import _write_db

REGIONS = {"Qwen2.5-7B-Instruct": "East Asia (China)", "Llama-SEA-LION-v3-8B-IT": "Southeast Asia"}


def _heatmap(names: list[str]) -> go.Figure:
    frame = pd.DataFrame([[0.1 * (i != j) for j in range(len(names))] for i in range(len(names))], index=names,
                         columns=names)
    return figures.matrix_heatmap(frame, n_shared=frame.to_numpy() * 0 + 10, metric="js")


def test_margins_make_room_for_the_longest_label_and_automargin_is_off():
    names = [*PERSONAS, "Llama-SEA-LION-v3-8B-IT"]
    fig = fixed_margins(_heatmap(names))
    assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False
    longest = max(len(n) for n in names) * 13 * 0.5  # a glyph of the house font is at least half an em
    assert fig.layout.margin.l >= longest
    assert fig.layout.margin.b >= longest * math.sin(math.radians(40))  # tick labels at -40 degrees
    # shorter labels: less room
    short = fixed_margins(_heatmap(["Qwen", "Falcon", "Mistral"]))
    assert short.layout.margin.l < fig.layout.margin.l and short.layout.margin.b < fig.layout.margin.b
    # laid out once: a figure kept between reruns (and drawn by several sessions) is not changed again
    fig.update_layout(margin={"l": 5})
    assert fixed_margins(fig).layout.margin.l == 5
    # a margin the builder asked for is kept when it is larger
    big = go.Figure(go.Bar(y=["a"], x=[1], orientation="h"), layout={"template": "fairpp", "margin": {"l": 300}})
    assert fixed_margins(big).layout.margin.l == 300


def test_figures_without_axes_or_with_something_below_the_plot_keep_automargin():
    sunburst = go.Figure(go.Sunburst(ids=["a", "b"], labels=["a", "b"], parents=["", "a"]))
    assert fixed_margins(sunburst).layout.margin.l is None
    legend_below = go.Figure(go.Scatter(x=[1, 2], y=[1, 2]), layout={"template": "fairpp", "legend": {
        "orientation": "h", "y": -0.2}})
    assert fixed_margins(legend_below).layout.xaxis.automargin is not False
    colour_bar = go.Figure(go.Heatmap(z=[[1, 2]], x=["a", "b"], y=["c"], colorbar={"orientation": "h"}))
    assert fixed_margins(colour_bar).layout.yaxis.automargin is not False


def test_exported_images_use_plotlys_own_margins():
    fig = fixed_margins(_heatmap(PERSONAS))
    themed, _ = _themed(fig, width=1600, height=900, scale=None, title=None, note=None)
    assert themed.layout.xaxis.automargin is True and themed.layout.yaxis.automargin is True
    assert fig.layout.xaxis.automargin is False  # the app's figure is left as it was


# -- drawn in a browser ---------------------------------------------------------------------------------------------
_CHECK = """() => {
  const svg = document.querySelector('#g .main-svg').getBoundingClientRect();
  const boxes = sel => [...document.querySelectorAll('#g ' + sel)].map(t => [t.textContent, t.getBoundingClientRect()])
      .filter(([, b]) => b.width > 0);
  const out = [];
  for (const [text, b] of boxes('g.xtick text, g.ytick text'))
    if (b.left < svg.left - 1 || b.right > svg.right + 1 || b.top < svg.top - 1 || b.bottom > svg.bottom + 1)
      out.push('cut off: ' + text);
  // axis titles across the margin (a title longer than a phone-wide chart runs off its ends whatever the margins)
  for (const [text, b] of boxes('g.g-xtitle text'))
    if (b.top < svg.top - 1 || b.bottom > svg.bottom + 1) out.push('cut off: ' + text);
  for (const [text, b] of boxes('g.g-ytitle text'))
    if (b.left < svg.left - 1 || b.right > svg.right + 1) out.push('cut off: ' + text);
  const legend = document.querySelector('#g g.legend');
  if (legend) {  // inside the figure, clear of every label, title and of the plot itself
    const l = legend.querySelector('rect.bg').getBoundingClientRect();
    if (l.top < svg.top - 1 || l.bottom > svg.bottom + 1) out.push('legend cut off');
    const over = b => l.left < b.right - 1 && b.left < l.right - 1 && l.top < b.bottom - 1 && b.top < l.bottom - 1;
    for (const [text, b] of boxes('g.xtick text, g.ytick text, g.g-xtitle text, g.g-ytitle text, .gtitle, '
                                  + 'g.angularaxistick text, g.radialaxistick text'))
      if (over(b)) out.push('legend on ' + text);
    for (const drag of document.querySelectorAll('#g .nsewdrag, #g .polar .maindrag'))
      if (over(drag.getBoundingClientRect())) out.push('legend on the plot');
  }
  for (const axis of ['x', 'y']) {
    const titles = boxes(`g.g-${axis}title text`), ticks = boxes(`g.${axis}tick text`);
    for (const [title, t] of titles) for (const [tick, b] of ticks)
      if (t.left < b.right - 1 && b.left < t.right - 1 && t.top < b.bottom - 1 && b.top < t.bottom - 1)
        out.push(`title ${title} on tick ${tick}`);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, go.Figure]:
    from fairpp import reweight
    from fairpp.figures.reweight import js_chart

    db = _write_db(tmp_path_factory.mktemp("margins"))
    with Store(db, read_only=True) as store:
        positions = analysis.positions(store)
        units = explore.wide_points(analysis.positions(store, by=["specific_problem"]), unit="specific_problem")
        m = store.answer_matrix()
        counts = store.counts(None)
        result, _ = reweight.from_store(store, target=PERSONAS[2])
        d = analysis.distances(store)
        grid = analysis.positions(store, by=["group_name", "problem_category"])
    names = d["respondents"]
    comp = explore.compare_models(m, models=list(REGIONS), personas=PERSONAS, n_boot=20)
    placed, cloud, _ = explore.model_map_frames(comp, personas=PERSONAS)
    grid = grid[grid["dimension"] == 1].rename(columns={"group_name": "x", "problem_category": "y"})
    return {
        "answer_mix": figures.answer_mix(explore.answer_mix(counts)),
        "matrix_heatmap": figures.matrix_heatmap(pd.DataFrame(d["js_distance"], index=names, columns=names),
                                                 n_shared=d["n_shared"], metric="js"),
        "dimension_bars": figures.dimension_bars(positions, regions=REGIONS),
        "radar": figures.radar(positions, regions=REGIONS),
        "position_strip": figures.position_strip(positions, regions=REGIONS),
        "cluster_map": figures.cluster_map(explore.project(units, dims=[1, 2, 3, 4, 5]), x="PC1", y="PC2",
                                           regions=REGIONS),
        "model_map": figures.model_map(placed, clouds=cloud, regions=REGIONS),
        "slice_grid": figures.slice_grid(grid, x="x", y="y"),
        "js_chart": js_chart(reweight.weighting_effect(result)),
    }


def test_legends_sit_above_the_plot_with_automargin_off(built):
    for name in ("dimension_bars", "position_strip", "cluster_map", "model_map", "radar", "answer_mix"):
        fig = fixed_margins(go.Figure(built[name]))
        assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1, name  # radar: above its top label
        if name != "radar":  # a polar plot has no x and y axes
            assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False, name
        assert fig.layout.margin.t >= 50, name  # a row of entries at least


def test_no_label_is_cut_off_or_covered_in_the_browser(built, tmp_path):
    js = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text(encoding="utf-8")
    page_file = tmp_path / "chart.html"
    page_file.write_text(f"<html><body style='margin:0'><div id='g'></div><script>{js}</script></body></html>",
                         encoding="utf-8")
    problems = {}
    with bu.chromium() as browser:
        page = browser.new_page()
        page.goto(page_file.as_uri())
        for name, fig in built.items():
            spec = json.loads(fixed_margins(go.Figure(fig)).to_json())
            for width in (1100, 420):  # a wide column and a phone
                page.evaluate("""async ([spec, width]) => { const g = document.getElementById('g'); Plotly.purge(g);
                                  g.style.width = width + 'px';
                                  await Plotly.newPlot(g, spec.data, spec.layout, {responsive: false}); }""",
                              [spec, width])
                found = page.evaluate(_CHECK)
                if width == 1100 and fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1:
                    # the room made above the plot holds the legend: plotly did not push the margin (no redraw)
                    pushed = page.evaluate("() => { const L = document.getElementById('g')._fullLayout;"
                                           " return L._size.t > L.margin.t; }")
                    found += ["the legend pushed the top margin"] if pushed else []
                if found:
                    problems[f"{name} at {width}px"] = found[:3]
    assert not problems, problems
