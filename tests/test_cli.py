"""The `fairpp` command through main(argv): JSON on stdout only, errors on stderr with exit status 2."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import cohen_kappa_score

from fairpp.cli import main

from conftest import PERSONAS


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def loaded(db_path, wide_csv, capsys):
    assert run(capsys, "load", wide_csv, "--db", db_path)[0] == 0
    return db_path


def test_load_and_info(loaded, capsys, wide):
    info = run_json(capsys, "info", "--db", loaded)
    assert info["source"] == {"kind": "file", "label": "fairpp_train.csv", "synthetic": False}
    assert info["questions"] == len(wide)
    assert info["respondents"] == {"persona": 7, "model": 2}
    n_model = int(wide.filter(like="Instruct").notna().sum().sum() + wide.filter(like="sea-lion").notna().sum().sum())
    assert info["answers"] == 7 * len(wide) + n_model


def test_positions_json_matches_raw_file(loaded, capsys, wide):
    rows = run_json(capsys, "positions", "--db", loaded, "--slice", "dimension=3")
    assert {r["dimension"] for r in rows} == {3}
    assert set(rows[0]) == {"respondent", "kind", "dimension", "position", "ci_low", "ci_high", "na_rate", "n"}
    assert [r["respondent"] for r in rows[:7]] == PERSONAS
    sub = wide[wide["Perspective"].str.endswith(".3")]["gpt-4o-mini_role_2_answer"]
    n_a, n_b = (sub == 0).sum(), (sub == 1).sum()
    row = next(r for r in rows if r["respondent"] == PERSONAS[1])
    assert row["position"] == pytest.approx(n_b / (n_a + n_b))
    assert row["n"] == len(sub)


def test_positions_slice_by_topic(loaded, capsys, wide):
    topic = wide["Topic"].iloc[-1]
    rows = run_json(capsys, "positions", "--db", loaded, "--slice", f"topic={topic}")
    sub = wide[wide["Topic"] == topic]
    assert rows[0]["n"] == len(sub[sub["Perspective"].str.endswith(".1")])


def _dist(codes):
    return np.bincount(codes, minlength=3) / len(codes)


@pytest.mark.parametrize("base", ["2", "e"])
def test_distances_equal_scipy_on_shared_questions(loaded, capsys, wide, base):
    res = run_json(capsys, "distances", "--db", loaded, "--base", base)
    names = res["respondents"]
    js = np.array(res["js_distance"], dtype=float)
    assert np.allclose(js, js.T) and np.allclose(np.diag(js), 0)
    a = wide["gpt-4o-mini_role_1_answer"].to_numpy()
    b = wide["Qwen2.5-7B-Instruct_answer"]
    shared = b.notna().to_numpy()
    expected = jensenshannon(_dist(a[shared]), _dist(b[shared].astype(int).to_numpy()),
                             base=2 if base == "2" else math.e)
    i, j = names.index(PERSONAS[0]), names.index("Qwen2.5-7B-Instruct")
    assert js[i, j] == pytest.approx(expected)
    assert res["n_shared"][i][j] == shared.sum()
    assert res["base"] == base
    if base == "2":
        assert (js >= 0).all() and (js <= 1).all()


def test_distances_per_dimension(loaded, capsys, wide):
    res = run_json(capsys, "distances", "--db", loaded, "--dimension", "4")
    d4 = wide["Perspective"].str.endswith(".4").to_numpy()
    a = wide["gpt-4o-mini_role_1_answer"].to_numpy()[d4]
    b = wide["gpt-4o-mini_role_7_answer"].to_numpy()[d4]
    assert res["js_distance"][0][6] == pytest.approx(jensenshannon(_dist(a), _dist(b), base=2))


def test_agreement_and_kappa_equal_sklearn(loaded, capsys, wide):
    res = run_json(capsys, "agreement", "--db", loaded)
    a = wide["gpt-4o-mini_role_2_answer"].to_numpy()
    b = wide["gpt-4o-mini_role_5_answer"].to_numpy()
    i, j = res["respondents"].index(PERSONAS[1]), res["respondents"].index(PERSONAS[4])
    assert res["agreement"][i][j] == pytest.approx((a == b).mean())
    assert res["kappa"][i][j] == pytest.approx(cohen_kappa_score(a, b, labels=[0, 1, 2]))
    assert res["agreement"][i][i] == 1.0


def test_demo_command_is_labelled_synthetic(db_path, capsys):
    out = run_json(capsys, "demo", "--db", db_path)
    assert out["info"]["source"]["synthetic"] is True
    assert out["info"]["questions"] == 28420
    assert out["info"]["respondents"] == {"persona": 7, "model": 6}


def test_bad_file_is_exit_2_with_message_and_keeps_data(loaded, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("")
    before = run_json(capsys, "info", "--db", loaded)
    code, out, err = run(capsys, "load", bad, "--db", loaded)
    assert code == 2 and out == ""
    assert "bad.csv: the file is empty" in err
    assert run_json(capsys, "info", "--db", loaded) == before


def test_bad_slice_and_missing_db(tmp_path, capsys, loaded):
    code, _, err = run(capsys, "positions", "--db", loaded, "--slice", "colour=red")
    assert code == 2 and "COLUMN=VALUE" in err
    code, _, err = run(capsys, "info", "--db", tmp_path / "none.duckdb")
    assert code == 2 and "fairpp demo" in err


def test_text_output_is_readable(loaded, capsys):
    code, out, _ = run(capsys, "info", "--db", loaded)
    assert code == 0 and "questions: 60" in out and not out.lstrip().startswith("{")


def test_load_append_via_cli(db_path, tmp_path, wide, capsys):
    wide.iloc[:30].to_csv(tmp_path / "a.csv", index=False)
    wide.iloc[30:].to_csv(tmp_path / "b.csv", index=False)
    run(capsys, "load", tmp_path / "a.csv", "--db", db_path)
    out = run_json(capsys, "load", tmp_path / "b.csv", "--db", db_path, "--append")
    assert out["info"]["questions"] == 60
    frame = pd.read_csv(tmp_path / "a.csv")
    assert len(frame) == 30
