"""Shared fixtures: small files in the published layout, written by hand (not by the code under test)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fairpp.schema import persona_names, taxonomy

MODELS_IN_FILE = ["Qwen2.5-7B-Instruct", "llama3.1-8b-cpt-sea-lionv3-instruct"]


def small_wide(*, seed: int = 0, problems: int = 3, groups: int = 2, models: bool = True) -> pd.DataFrame:
    """A small frame in the published Fair-PP layout: problems x groups x 5 dimensions x 2 templates."""
    rng = np.random.default_rng(seed)
    tax = taxonomy()
    probs = [(t["number"], t["name"], c["name"], p) for t in tax["topics"] for c in t["problem_categories"]
             for p in c["problems"]]
    picked = [probs[i] for i in (0, 40, 80, 20, 60, 90)[:problems]]
    grps = [(g["name"], x) for g in tax["group_types"] for x in g["groups"]][:: 7][:groups]
    rows = []
    for tn, topic, cat, prob in picked:
        for gt, g in grps:
            for d in range(1, 6):
                for tpl in (1, 2):
                    rows.append({"Topic": topic, "Problem Category": cat, "Specific Problem": prob,
                                 "Group Type": gt, "Group": g, "Perspective": f"{tn}.{d}",
                                 "Option": f"A. pole one\nB. pole two\nC. N/A",
                                 "Question": f"Template {tpl}: how should {g} get {prob}? (dimension {d})"})
    df = pd.DataFrame(rows)
    lean = np.linspace(0.2, 0.8, 7)
    for i in range(7):
        p_b = lean[i] * 0.9
        codes = rng.choice([0, 1, 2], size=len(df), p=[0.9 - p_b, p_b, 0.1])
        df[f"gpt-4o-mini_role_{i + 1}"] = [f"{'ABC'[c]}. reply" for c in codes]
        df[f"gpt-4o-mini_role_{i + 1}_answer"] = codes
    if models:
        for j, m in enumerate(MODELS_IN_FILE):
            codes = rng.choice([0, 1, 2], size=len(df), p=[0.5, 0.4, 0.1]).astype(float)
            codes[: len(df) // 3] = np.nan  # some questions not answered
            df[f"{m}_answer"] = pd.array(codes, dtype="Float64").astype("Int64")
    return df


@pytest.fixture
def wide() -> pd.DataFrame:
    return small_wide()


@pytest.fixture
def wide_csv(tmp_path, wide):
    path = tmp_path / "fairpp_train.csv"
    wide.to_csv(path, index=False)
    return path


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "store.duckdb"


PERSONAS = persona_names()


def demo_template_db(factory: pytest.TempPathFactory) -> Path:
    """A database holding the full synthetic demo, built once per session; tests copy it before writing."""
    from fairpp.sources.demo import build_demo
    from fairpp.store import Store

    path = factory.getbasetemp() / "probe-template.duckdb"
    if not path.exists():
        with Store(path) as store:
            store.load(build_demo())
    return path
