"""Plotly figure builders, shared by the dashboard and the self-contained report (no streamlit here).

Every builder takes plain pandas frames from :mod:`fairpp.analysis` / :mod:`fairpp.explore` and returns a
``plotly.graph_objects.Figure`` drawn with the house template ``"fairpp"`` and the one palette of
:mod:`fairpp.figures.theme` (the same colour for the same persona everywhere, region colours and symbols
for models). Definitions to print beside the numbers are in :data:`DEFINITIONS`.

Builders
--------
radar, dimension_bars, position_strip      positions with 95% intervals (:mod:`.positions`)
cluster_map, model_map                     maps of the preference space (:mod:`.maps`)
matrix_heatmap                             JS distance / agreement / kappa (:mod:`.matrices`)
taxonomy_chart, answer_mix, slice_grid     what is loaded and how it splits (:mod:`.slices`)

The dashboard sends each figure through :func:`fairpp.figures.browser.for_browser` (the same drawing, in a
form plotly.js redraws without recomputing); exports and the report use the figures as built.
"""
from __future__ import annotations

from fairpp.figures.maps import cluster_map, hull_path, model_map
from fairpp.figures.matrices import METRICS, matrix_heatmap
from fairpp.figures.positions import dimension_bars, position_strip, radar, rgba
from fairpp.figures.slices import answer_mix, slice_grid, taxonomy_chart
from fairpp.figures.text import DEFINITIONS, SYNTHETIC_BANNER
from fairpp.figures.theme import (
    ANSWER_COLOURS, PERSONA_COLOURS, POSITION_SCALE, REGION_COLOURS, REGION_SYMBOLS, TEMPLATE, dimension_axis,
    dimension_label, dimensions, respondent_style, short_name,
)

__all__ = [
    "radar", "dimension_bars", "position_strip", "cluster_map", "model_map", "hull_path", "matrix_heatmap",
    "METRICS", "taxonomy_chart", "answer_mix", "slice_grid", "DEFINITIONS", "SYNTHETIC_BANNER", "ANSWER_COLOURS",
    "PERSONA_COLOURS", "POSITION_SCALE", "REGION_COLOURS", "REGION_SYMBOLS", "TEMPLATE", "dimension_axis",
    "dimension_label", "dimensions", "respondent_style", "rgba", "short_name",
]
