"""The reweighting page renders through app.py on the fixture database; the sliders change the weights."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from test_pages import _app, _ok, _write_db

PAGE = "pages/reweight.py"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = _write_db(tmp_path)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    return path


def _open(**query):
    at = _app(**query)
    at.switch_page(PAGE)
    at.run()
    _ok(at)
    return at


def _tiers(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "weight per record" in d.value.columns)


def _effect(at) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if "js_after" in d.value.columns)


def test_page_renders_tiers_weights_and_effect(db):
    at = _open()
    assert at.title[0].value == "Reweighting"
    tiers = _tiers(at)
    assert tiers["tier"].tolist() == list(range(1, 8))  # K = 7 personas in the fixture
    counts = tiers["records"].to_numpy()
    w = tiers["weight per record"].fillna(0).to_numpy()
    assert abs((counts * w).sum() - 1.0) < 1e-9  # record weights sum to 1
    eff = _effect(at)
    assert eff["respondent"].tolist()[:2] == ["training (uniform)", "training (weighted)"]
    assert (eff["kind"] == "target").sum() == 1
    assert len(at.get("plotly_chart")) == 3
    assert {b.proto.id for b in at.get("download_button")}  # export buttons drawn
    assert not any("synthetic" in w.value.lower() for w in at.warning)  # the fixture is a user file


def test_sliders_change_the_weights_and_the_url(db):
    at = _open()
    before = _tiers(at)["weight per record"].to_numpy()
    at.slider(key="reweight.alpha").set_value(2.0).run()
    _ok(at)
    after = _tiers(at)["weight per record"].to_numpy()
    assert not pd.Series(before).equals(pd.Series(after))
    assert at.query_params["reweight.alpha"] in ("2", ["2"])
    at.slider(key="reweight.beta").set_value(0.0).run()
    _ok(at)
    tiers = _tiers(at)
    # beta = 0: a record's weight depends on its tier only, proportional to i/K with alpha = 2
    nonempty = tiers[tiers["records"] > 0]
    ratio = nonempty["weight per record"] / (nonempty["tier"] / 7) ** 2
    assert ratio.max() - ratio.min() < 1e-12


def test_target_and_exponents_come_from_the_url(db):
    at = _open(**{"reweight.target": "Loyal Nationals", "reweight.alpha": "0.5", "reweight.beta": "2"})
    assert at.selectbox(key="reweight.target").value == "Loyal Nationals"
    assert at.slider(key="reweight.alpha").value == pytest.approx(0.5)
    assert at.slider(key="reweight.beta").value == pytest.approx(2.0)
    eff = _effect(at)
    assert eff.loc[eff["kind"] == "target", "respondent"].item() == "Loyal Nationals"


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "abc"])
def test_a_bad_exponent_in_the_url_falls_back_to_the_default(db, bad):
    at = _open(**{"reweight.alpha": bad, "reweight.beta": "0.5"})  # _open checks: no exception, no error box
    assert at.slider(key="reweight.alpha").value == pytest.approx(1.0)
    assert at.slider(key="reweight.beta").value == pytest.approx(0.5)  # the good one is kept
    assert "reweight.alpha" not in at.query_params  # the link no longer carries the bad value
    assert _tiers(at)["weight per record"].notna().any()


def test_demo_data_is_labelled_synthetic(tmp_path, monkeypatch):
    from fairpp.sources.demo import build_demo
    from fairpp.store import Store

    batch = build_demo()
    keep = set(batch.questions["question_id"].iloc[:300])
    batch.questions = batch.questions[batch.questions["question_id"].isin(keep)]
    batch.answers = batch.answers[batch.answers["question_id"].isin(keep)]
    path = tmp_path / "demo.duckdb"
    with Store(path) as s:
        s.load(batch)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    at = _open()
    assert any("synthetic" in w.value.lower() and "run card" in w.value for w in at.warning)


def test_export_bytes_carry_the_card(db):
    """The bytes the download buttons serve: the same export_pairs the CLI uses (checked without a click)."""
    from fairpp import reweight
    from fairpp.store import Store

    with Store(db, read_only=True) as store:
        result, pairs = reweight.from_store(store, target="Civic Pragmatists")
        card = reweight.export_pairs(pairs, db.parent / "p.jsonl", result=result, source=reweight.source_info(store))
    lines = (db.parent / "p.jsonl").read_text().splitlines()
    assert len(lines) == len(pairs) == card["pairs"]
    assert set(json.loads(lines[0])) >= {"prompt", "chosen", "rejected", "weight"}
