"""ui.figure: a page rerun with the same numbers reuses the built figure; other numbers build a new one."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fairpp import ui


def _builder(calls):
    def build(frame, *, title=None, who=()):
        calls.append(1)
        return go.Figure(go.Bar(x=frame["x"], y=frame["y"]), layout={"title": title})
    return build


def test_same_content_reuses_the_figure_and_other_content_rebuilds():
    calls: list[int] = []
    build = _builder(calls)
    build.__qualname__ = f"build_{np.random.default_rng().integers(1 << 40)}"  # no hit from an earlier run
    frame = pd.DataFrame({"x": ["a", "b"], "y": [1.0, 2.0]})
    first = ui.figure(build, frame, title="t", who=["P1", "P2"])
    again = ui.figure(build, frame.copy(), title="t", who=["P1", "P2"])  # a copy, as cache_data accessors return
    assert again is first and len(calls) == 1
    changed = frame.assign(y=[1.0, 2.5])
    assert ui.figure(build, changed, title="t", who=["P1", "P2"]) is not first
    assert ui.figure(build, frame, title="other", who=["P1", "P2"]) is not first
    assert ui.figure(build, frame, title="t", who=["P2", "P1"]) is not first
    assert len(calls) == 4
    assert list(ui.figure(build, changed, title="t", who=["P1", "P2"]).data[0].y) == [1.0, 2.5]


def test_frames_with_unhashable_cells_are_keyed_too():
    calls: list[int] = []
    build = _builder(calls)
    build.__qualname__ = f"build_{np.random.default_rng().integers(1 << 40)}"
    frame = pd.DataFrame({"x": ["a", "b"], "y": [1.0, 2.0], "extra": [[1, 2], [3]]})
    assert ui.figure(build, frame) is ui.figure(build, frame.copy())
    assert ui.figure(build, frame.assign(extra=[[1], [3]])) is not ui.figure(build, frame)
    assert len(calls) == 2


def test_the_browser_form_is_made_once_per_kept_figure():
    from fairpp.ui import charts

    first = go.Figure(go.Bar(x=np.array([1.0, 2.0]), y=["a", "b"], orientation="h"), layout={"template": "fairpp"})
    sent = charts._sent(first)
    assert charts._sent(first) is sent  # a rerun drawing the kept figure reuses its browser form
    assert sent.to_dict()["layout"]["template"] is None and list(sent.data[0].x) == [1.0, 2.0]
    other = go.Figure(first)  # equal content, another figure: converted on its own
    assert charts._sent(other) is not sent
    assert charts._sent(other).layout.datarevision == sent.layout.datarevision
