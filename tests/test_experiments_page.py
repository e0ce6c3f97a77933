"""The Training experiments page renders stored four-condition comparisons through app.py (no torch needed).

The fixture stores four ``custom`` respondents whose answers are the target persona's answers with a share of
them replaced by a far persona's answers (5%, 30%, 60%, 100%), so the conditions are ordered by construction;
``compare_conditions`` and ``save_experiment`` store the comparison as ``fairpp compare --save`` does.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_pages import _ok
from test_pages import _open as _open_page
from test_pages import db  # noqa: F401  (the fixture database, FAIRPP_DB pointing at it)

from conftest import PERSONAS
from fairpp.store import Store
from fairpp.store.experiments import save_experiment, save_model_answers
from fairpp.train.compare import compare_conditions

PAGE = "pages/experiments.py"
TARGET, FAR = PERSONAS[0], PERSONAS[6]
#: condition -> share of the target's answers replaced by the far persona's
NOISE = {"base": 1.0, "role-play": 0.6, "DPO": 0.3, "weighted DPO": 0.05}


def store_experiment(store: Store, name: str, *, seed: int = 0, synthetic: bool = False,
                     n_boot: int = 200) -> dict:
    """Store four conditions derived from the target with controlled noise and save their comparison."""
    ans = store.answers(None, respondents=[TARGET, FAR])
    wide = ans.pivot(index="question_id", columns="respondent", values="answer")
    rng = np.random.default_rng(seed)
    conditions = {}
    for label, noise in NOISE.items():
        swap = rng.random(len(wide)) < noise
        answers = np.where(swap, wide[FAR], wide[TARGET])
        respondent = f"{name} {label}"
        train = None if label in ("base", "role-play") else {
            "kind": "fairpp.train", "method": label, "base": "tiny-base", "target": TARGET, "steps": 6,
            "final_loss": 0.61, "synthetic": synthetic, "created_at": "2026-11-27T12:00:00+00:00"}
        prov = {"kind": "fairpp.evaluate", "model": f"runs/{label}", "base": "tiny-base", "split": None,
                "persona": TARGET if label == "role-play" else None, "questions": len(wide),
                "train_card": train, "synthetic": synthetic}
        save_model_answers(store, pd.DataFrame({"question_id": wide.index, "answer": answers}),
                           respondent=respondent, run_id=f"eval-{respondent}", provenance=prov,
                           description=f"{label} (test)")
        conditions[label] = respondent
    card = compare_conditions(store, target=TARGET, conditions=conditions, n_boot=n_boot, seed=seed)
    save_experiment(store, name, card)
    return card


@pytest.fixture
def cards(db) -> dict[str, dict]:  # noqa: F811
    with Store(db) as store:
        a = store_experiment(store, "exp-a", seed=1)
        b = store_experiment(store, "exp-b", seed=2, synthetic=True)
    return {"exp-a": json.loads(json.dumps(a)), "exp-b": json.loads(json.dumps(b))}


def _open(**query):
    at = _open_page(PAGE, **query)
    _ok(at)
    return at


def _summary(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "JS to target" in d.value.columns)


def _check_table(at, card: dict) -> None:
    table = _summary(at)
    assert table["condition"].tolist() == list(NOISE)
    kappa = {r["condition"]: r["kappa"] for r in card["rows"] if r["is_target"]}
    for row, s in zip(table.to_dict("records"), card["summary"]):
        assert row["condition"] == s["condition"] and row["respondent"] == s["respondent"]
        assert row["JS to target"] == pytest.approx(s["js_target"], abs=1e-12)
        assert row["95% interval"] == f"[{s['js_target_low']:.3f}, {s['js_target_high']:.3f}]"
        assert row["agreement"] == pytest.approx(s["agreement_target"], abs=1e-12)
        assert row["kappa"] == pytest.approx(kappa[s["condition"]], abs=1e-12)
        assert row["JS to others (mean)"] == pytest.approx(s["js_others"], abs=1e-12)
        assert row["gap"] == pytest.approx(s["gap"], abs=1e-12)
        assert row["nearest persona"] == s["nearest"]
        assert row["questions"] == card["n_questions"] == 60


def test_page_shows_the_newest_experiment_with_the_cards_numbers(cards):
    at = _open()
    assert at.title[0].value == "Training experiments"
    assert at.selectbox(key="experiments.experiment").value == "exp-b"  # newest first
    _check_table(at, cards["exp-b"])
    assert len(at.get("plotly_chart")) == 2  # the map and the distances
    # the data behave as built: weighted DPO nearest the target, the base model furthest, largest gap last
    js = _summary(at).set_index("condition")["JS to target"]
    assert js["weighted DPO"] < js["DPO"] < js["base"]
    assert _summary(at).set_index("condition").loc["weighted DPO", "nearest persona"] == TARGET


def test_synthetic_training_is_unmissable_and_only_where_it_applies(cards):
    at = _open(**{"experiments.experiment": "exp-b"})
    assert any("SYNTHETIC" in w.value and "not a Fair-PP result" in w.value for w in at.warning)
    prov = next(d.value for d in at.dataframe if "synthetic" in d.value.columns)
    assert prov["synthetic"].all() and prov["condition"].tolist() == list(NOISE)
    assert prov.set_index("condition").loc["weighted DPO", "method"] == "weighted DPO"
    at = _open(**{"experiments.experiment": "exp-a"})
    assert not any("SYNTHETIC" in w.value for w in at.warning)


def test_the_url_restores_and_records_the_chosen_experiment(cards):
    at = _open(**{"experiments.experiment": "exp-a"})
    assert at.selectbox(key="experiments.experiment").value == "exp-a"
    _check_table(at, cards["exp-a"])
    at.selectbox(key="experiments.experiment").set_value("exp-b").run()
    _ok(at)
    assert "experiments.experiment" not in at.query_params  # the default (newest) keeps the link short
    _check_table(at, cards["exp-b"])
    at.selectbox(key="experiments.experiment").set_value("exp-a").run()
    _ok(at)
    assert at.query_params["experiments.experiment"] in ("exp-a", ["exp-a"])
    _check_table(at, cards["exp-a"])
    at = _open(**{"experiments.experiment": "no-such-experiment"})  # a stale link falls back to the newest
    assert at.selectbox(key="experiments.experiment").value == "exp-b"


def test_empty_state_names_the_commands(db):  # noqa: F811
    at = _open()
    assert at.title[0].value == "Training experiments"
    text = " ".join(i.value for i in at.info)
    for needle in ("fairpp train", "fairpp evaluate", "fairpp compare", "--save", "docs/training.md"):
        assert needle in text, needle
    assert not at.get("plotly_chart") and not at.dataframe


def test_map_places_the_conditions_on_the_frozen_persona_pca(cards):
    """The map's persona points are a PCA of the personas' card positions; conditions are projected, not fitted."""
    from fairpp.figures.experiments import map_frames
    from fairpp.projection import FrozenPCA

    card = cards["exp-a"]
    placed, ellipses, explained = map_frames(card)
    pos = pd.DataFrame(card["positions"]).pivot(index="label", columns="dimension", values="position")
    pca = FrozenPCA.fit(pos.loc[card["personas"]], n_components=2)
    expect = pca.transform(pos.loc[list(NOISE)])
    got = placed.set_index("respondent").loc[list(NOISE), ["PC1", "PC2"]]
    np.testing.assert_allclose(got.to_numpy(), expect.to_numpy(), atol=1e-12)
    assert set(ellipses["label"]) == set(NOISE) and sum(explained) <= 1 + 1e-12
    assert (placed.loc[placed["kind"] == "condition", ["sd1", "sd2"]] > 0).all().all()
    # the 95% ellipse of a 2-D normal reaches sqrt(chi2_2(0.95)) = 2.448 sd along each axis
    for label, e in ellipses.groupby("label"):
        row = placed.set_index("respondent").loc[label]
        reach = (e["PC1"] - row["PC1"]).abs().max()
        assert reach == pytest.approx(np.sqrt(5.991464547107979) * row["sd1"], rel=0.01)
