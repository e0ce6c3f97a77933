"""Loading the published and tidy layouts into a real DuckDB file: correctness, strictness, atomicity."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fairpp import analysis
from fairpp.schema import LoadError
from fairpp.sources.files import read_files
from fairpp.store import Store

from conftest import PERSONAS, small_wide


def _load(db_path, *paths, append=False):
    with Store(db_path) as store:
        return store.load(read_files(list(paths)), append=append)


def _snapshot(db_path):
    with Store(db_path) as store:
        return store.info(), store.table("answers").sort_values(["question_id", "respondent"]).reset_index(drop=True)


def test_published_csv_loads_with_expected_counts(db_path, wide_csv, wide):
    report = _load(db_path, wide_csv)
    assert report["questions"] == len(wide) == 60
    with Store(db_path) as store:
        info = store.info()
        resp = store.respondents()
    model_answers = int(wide["Qwen2.5-7B-Instruct_answer"].notna().sum()
                        + wide["llama3.1-8b-cpt-sea-lionv3-instruct_answer"].notna().sum())
    assert info["answers"] == 7 * len(wide) + model_answers
    assert info["respondents"] == {"persona": 7, "model": 2}
    assert info["source"]["kind"] == "file" and info["source"]["synthetic"] is False
    assert resp["respondent"].tolist()[:7] == PERSONAS
    sea = resp.set_index("respondent").loc["Llama-SEA-LION-v3-8B-IT"]
    assert sea["region"] == "Southeast Asia" and sea["kind"] == "model"


def test_positions_in_duckdb_equal_pandas_on_raw_file(db_path, wide_csv, wide):
    _load(db_path, wide_csv)
    with Store(db_path) as store:
        pos = analysis.positions(store).set_index(["respondent", "dimension"])
    dim = wide["Perspective"].str.split(".").str[1].astype(int)
    for i, name in enumerate(PERSONAS, start=1):
        col = wide[f"gpt-4o-mini_role_{i}_answer"]
        for d in range(1, 6):
            codes = col[dim == d]
            n_a, n_b, n_c = (codes == 0).sum(), (codes == 1).sum(), (codes == 2).sum()
            row = pos.loc[(name, d)]
            assert row["position"] == pytest.approx(n_b / (n_a + n_b))
            assert row["na_rate"] == pytest.approx(n_c / (n_a + n_b + n_c))
            assert row["n"] == n_a + n_b + n_c
            assert row["ci_low"] <= row["position"] <= row["ci_high"]


def test_parquet_and_csv_give_the_same_store(tmp_path, wide):
    wide.to_csv(tmp_path / "a.csv", index=False)
    wide.to_parquet(tmp_path / "a.parquet", index=False)
    _load(tmp_path / "csv.duckdb", tmp_path / "a.csv")
    _load(tmp_path / "pq.duckdb", tmp_path / "a.parquet")
    a = _snapshot(tmp_path / "csv.duckdb")[1].drop(columns="source_id")
    b = _snapshot(tmp_path / "pq.duckdb")[1].drop(columns="source_id")
    pd.testing.assert_frame_equal(a, b)


def test_train_and_test_together_share_questions_by_content(tmp_path, wide):
    train, test = wide.iloc[:40], wide.iloc[30:]  # rows 30..39 are in both files
    train.to_csv(tmp_path / "fairpp_train.csv", index=False)
    test.to_csv(tmp_path / "fairpp_test.csv", index=False)
    report = _load(tmp_path / "db.duckdb", tmp_path / "fairpp_train.csv", tmp_path / "fairpp_test.csv")
    assert report["questions"] == 60
    with Store(tmp_path / "db.duckdb") as store:
        splits = store.table("questions")["split"].value_counts().to_dict()
        n_persona_answers = (store.table("answers")["respondent"] == PERSONAS[0]).sum()
    assert splits == {"train": 40, "test": 20}
    assert n_persona_answers == 60


def test_raw_replies_are_parsed_when_no_codes(tmp_path, wide):
    raw_only = wide.drop(columns=[c for c in wide.columns if c.endswith("_answer")])
    raw_only.loc[0, "gpt-4o-mini_role_1"] = "I'm not sure, both seem reasonable"
    raw_only.to_csv(tmp_path / "raw.csv", index=False)
    _load(tmp_path / "db.duckdb", tmp_path / "raw.csv")
    with Store(tmp_path / "db.duckdb") as store:
        ans = store.answers(respondents=[PERSONAS[0]])
    counts = ans["answer"].value_counts()
    assert counts["unparsed"] == 1
    expected = wide["gpt-4o-mini_role_1_answer"].iloc[1:].map({0: "A", 1: "B", 2: "C"}).value_counts()
    for letter in "ABC":
        assert counts.get(letter, 0) == expected.get(letter, 0)


def test_tidy_layout(tmp_path):
    rows = [{"text": f"q{i}", "dimension": 1 + i % 5, "respondent": who, "answer": "AB"[(i % 5 + k) % 2]}
            for i in range(20) for k, who in enumerate(["Alice", "Progressive Activists"])]
    pd.DataFrame(rows).to_csv(tmp_path / "mine.csv", index=False)
    _load(tmp_path / "db.duckdb", tmp_path / "mine.csv")
    with Store(tmp_path / "db.duckdb") as store:
        info = store.info()
        pos = analysis.positions(store)
    assert info["respondents"] == {"custom": 1, "persona": 1} and info["questions"] == 20
    alice = pos[pos["respondent"] == "Alice"].set_index("dimension")["position"]
    assert alice[1] == 0.0 and alice[2] == 1.0  # Alice: A on odd dimensions, B on even


def test_append_adds_and_replace_replaces(tmp_path):
    small_wide(seed=1, problems=2).to_csv(tmp_path / "one.csv", index=False)
    small_wide(seed=2, problems=3).iloc[40:].to_csv(tmp_path / "two.csv", index=False)
    db = tmp_path / "db.duckdb"
    _load(db, tmp_path / "one.csv")
    _load(db, tmp_path / "two.csv", append=True)
    assert _snapshot(db)[0]["questions"] == 60
    _load(db, tmp_path / "two.csv")
    assert _snapshot(db)[0]["questions"] == 20
    with pytest.raises(LoadError, match="already has an answer"):
        _load(db, tmp_path / "two.csv", append=True)


# -- bad input: a clear message, and the previous data survives -------------------------------------

def _bad_files(tmp_path, wide):
    files = {}
    (tmp_path / "empty.csv").write_bytes(b"")
    files["empty"] = (tmp_path / "empty.csv", "empty")
    wide.iloc[:0].to_csv(tmp_path / "header.csv", index=False)
    files["header only"] = (tmp_path / "header.csv", "header but no rows")
    wide.drop(columns=["Perspective", "Group"]).assign(respondent_x=1).to_csv(tmp_path / "nocols.csv", index=False)
    files["layout unknown"] = (tmp_path / "nocols.csv", "cannot tell the layout")
    wide.drop(columns=["Group"]).to_csv(tmp_path / "missing.csv", index=False)
    files["missing column"] = (tmp_path / "missing.csv", r"missing required column\(s\) \['Group'\]")
    text = wide.assign(Option="A. one; B. two; C. N/A").to_csv(index=False).splitlines()  # a row a line
    text[5] = text[5] + ',"extra"'
    (tmp_path / "ragged.csv").write_text("\n".join(text) + "\n")
    files["ragged"] = (tmp_path / "ragged.csv", "ragged row.*line 6")
    bad = wide.copy()
    bad["gpt-4o-mini_role_3_answer"] = bad["gpt-4o-mini_role_3_answer"].astype(object)
    bad.loc[7, "gpt-4o-mini_role_3_answer"] = 3
    bad.to_csv(tmp_path / "code.csv", index=False)
    files["bad code"] = (tmp_path / "code.csv", "gpt-4o-mini_role_3_answer.*'3'.*data row 8.*0/1/2")
    bad = wide.copy()
    bad.loc[4, "Perspective"] = "6.1"
    bad.to_csv(tmp_path / "persp.csv", index=False)
    files["bad perspective"] = (tmp_path / "persp.csv", "unknown Perspective code '6.1' in data row 5")
    pd.concat([wide, wide.iloc[[3]]]).to_csv(tmp_path / "dup.csv", index=False)
    files["duplicate"] = (tmp_path / "dup.csv", "duplicate rows.*row 4.*row 61")
    (tmp_path / "data.xlsx").write_bytes(b"PK\x03\x04 not really")
    files["wrong type"] = (tmp_path / "data.xlsx", "unsupported file type '.xlsx'")
    (tmp_path / "fake.parquet").write_text(wide.to_csv(index=False))
    files["not parquet"] = (tmp_path / "fake.parquet", "not a readable Parquet file")
    files["no file"] = (tmp_path / "nowhere.csv", "no such file")
    return files


@pytest.mark.parametrize("case", ["empty", "header only", "layout unknown", "missing column", "ragged",
                                  "bad code", "bad perspective", "duplicate", "wrong type", "not parquet",
                                  "no file"])
def test_bad_input_names_the_problem_and_keeps_old_data(case, tmp_path, wide, wide_csv):
    db = tmp_path / "db.duckdb"
    _load(db, wide_csv)
    before_info, before_answers = _snapshot(db)
    path, message = _bad_files(tmp_path, wide)[case]
    with pytest.raises(LoadError, match=message) as err:
        _load(db, path)
    assert path.name in str(err.value) or case == "duplicate"
    after_info, after_answers = _snapshot(db)
    assert after_info == before_info
    pd.testing.assert_frame_equal(after_answers, before_answers)


def test_failure_inside_the_transaction_rolls_back(tmp_path, wide_csv, monkeypatch):
    db = tmp_path / "db.duckdb"
    _load(db, wide_csv)
    before = _snapshot(db)
    batch = read_files([wide_csv])
    batch.answers.loc[0, "answer"] = None  # NOT NULL violation, raised by DuckDB mid-load
    with Store(db) as store, pytest.raises(Exception):
        store.load(batch)
    after = _snapshot(db)
    assert after[0] == before[0]
    pd.testing.assert_frame_equal(after[1], before[1])


def test_question_ids_depend_on_content_only(tmp_path, wide):
    shuffled = wide.sample(frac=1.0, random_state=3)
    wide.to_csv(tmp_path / "a.csv", index=False)
    shuffled.to_csv(tmp_path / "b.csv", index=False)
    qa = read_files([tmp_path / "a.csv"]).questions.set_index("question_id")
    qb = read_files([tmp_path / "b.csv"]).questions.set_index("question_id")
    assert set(qa.index) == set(qb.index)
    assert np.array_equal(qa.loc[qb.index, "text"].to_numpy(), qb["text"].to_numpy())


def test_a_kept_question_learns_its_split_from_a_later_load(tmp_path, wide):
    """Questions stored apart from the dataset (a question bank) get the split of a dataset that has them."""
    from fairpp.store.personas import PersonaStore

    db = tmp_path / "db.duckdb"
    bank = read_files([_write(tmp_path / "bank.csv", wide)]).questions.assign(split=None)
    with Store(db) as store:
        PersonaStore(store).add_questions(bank, label="bank", sha256="x")
        assert store.table("questions")["split"].isna().all()
        store.load(read_files([_write(tmp_path / "fairpp_test.csv", wide)]))
        splits = store.table("questions")["split"].value_counts(dropna=False).to_dict()
    assert splits == {"test": len(wide)}


def _write(path, frame):
    frame.to_csv(path, index=False)
    return path


def test_whitespace_normalising_equals_the_plain_regex_rule():
    """Checking and normalising each distinct value once (not each row) gives what the rule gives row by row."""
    import random

    import pyarrow as pa
    import pyarrow.compute as pc

    from fairpp.schema import normalize_space

    def rule(values):  # the definition: if any value needs it, collapse \s runs and trim, value by value
        arr = pa.array(values, pa.large_string())
        if pc.any(pc.match_substring_regex(arr, pattern=r"\s\s|[\t\n\r\f\v]|^\s|\s$")).as_py():
            arr = pc.utf8_trim_whitespace(pc.replace_substring_regex(arr, pattern=r"\s+", replacement=" "))
        return arr.to_pylist()

    rng = random.Random(7)
    chars = [" ", "a", "b", "é", "\t", "\n", "\r", "\f", "\v", "\u00a0", "\u2003"]
    for _ in range(2000):
        values = [None if rng.random() < 0.1 else "".join(rng.choice(chars) for _ in range(rng.randint(0, 6)))
                  for _ in range(rng.randint(1, 6))]
        got = normalize_space(pd.Series(values, dtype="string[pyarrow]")).tolist()
        assert [None if pd.isna(v) else v for v in got] == rule(values), values


def test_a_large_load_is_written_to_the_database_file_at_commit(tmp_path):
    """A load checkpoints at commit (its rows are not written to the WAL first) and leaves DuckDB's
    checkpoint threshold as it was, also when the load fails."""
    from fairpp.sources.demo import build_demo

    db = tmp_path / "db.duckdb"
    batch = build_demo()
    with Store(db) as store:
        default = store._scalar("SELECT current_setting('checkpoint_threshold')")
        store.load(batch)
        wal = db.with_name(db.name + ".wal")
        assert not wal.exists() or wal.stat().st_size < 1 << 20
        assert store._scalar("SELECT current_setting('checkpoint_threshold')") == default
        broken = read_files([_write(tmp_path / "x.csv", small_wide())])
        broken.answers.loc[0, "answer"] = None  # NOT NULL violation inside the transaction
        with pytest.raises(Exception):
            store.load(broken)
        assert store._scalar("SELECT current_setting('checkpoint_threshold')") == default
        assert store.info()["answers"] == len(batch.answers)
    with Store(db, read_only=True) as store:
        assert store.info()["answers"] == len(batch.answers)
