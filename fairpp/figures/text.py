"""The definitions printed beside the numbers (in the app, and in the report).

They restate ``design/science.md`` in one sentence each, so every number on screen says what it is.

>>> "n_B / (n_A + n_B)" in DEFINITIONS["position"]
True
"""
from __future__ import annotations

__all__ = ["DEFINITIONS", "SYNTHETIC_BANNER"]

#: The banner shown on every page while the synthetic demo is loaded.
SYNTHETIC_BANNER = "Synthetic demo data — not the Fair-PP paper's results"

DEFINITIONS: dict[str, str] = {
    "position": (
        "**Position** on a dimension = n_B / (n_A + n_B) over the questions shown: the share of answers "
        "choosing the dimension's second pole (0 = always the first pole, 1 = always the second). N/A answers "
        "(C) are left out of the position and reported as the **N/A rate** n_C / n. Intervals are 95% Wilson "
        "intervals; two respondents are distinguishable on a dimension only when their intervals do not overlap."
    ),
    "js": (
        "**Jensen-Shannon distance** between two respondents' answer distributions over {A, B, C}, computed on "
        "the questions both answered (hover shows how many). It ignores which question got which answer."
    ),
    "agreement": (
        "**Agreement** = share of the questions both answered on which the two gave the same answer (A, B or C)."
    ),
    "kappa": (
        "**Cohen's kappa** = agreement corrected for the agreement expected by chance from each respondent's "
        "answer mix (1 = identical, 0 = chance level, < 0 = less than chance)."
    ),
    "units": (
        "Each point is one respondent × one slice: the respondent's 5-D position computed on that slice's "
        "questions only. Slices where a dimension has no A/B answer are left out."
    ),
    "pca": (
        "**PCA** is fitted on the personas' points only and then frozen: other respondents are placed with the "
        "same axes, so adding a model never moves the map."
    ),
    "umap": (
        "**UMAP** (seeded, n_neighbors = 15) is a non-linear view of the same points; distances between far-apart "
        "clusters are not meaningful."
    ),
    "nearest": (
        "**Nearest persona**: Euclidean distance between 5-D positions, the persona's computed on the questions the "
        "model answered. The interval is the 2.5-97.5 percentile of the distance over bootstrap replicates "
        "(questions resampled within each dimension, for the model and the persona); *share nearest* is how often "
        "that persona was the nearest one across replicates."
    ),
    "divided": (
        "**Divided** = share of the personas who did not give the personas' most common answer (0 = unanimous; "
        "with 7 personas at most 4/7 ≈ 0.57)."
    ),
    "answer_mix": (
        "**Answer mix**: share of each respondent's replies that were A (first pole), B (second pole), C (N/A) or "
        "could not be parsed, over the questions under the filters."
    ),
}
