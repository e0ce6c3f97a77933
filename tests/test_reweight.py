"""Reweighting: tiers and weights against values worked out by hand, pairs, exports, run cards, CLI, errors."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from fairpp import reweight as rw
from fairpp.cli import main
from fairpp.probe.prompts import build_messages
from fairpp.schema import FairppError
from fairpp.sources.files import file_sha256, read_files
from fairpp.store import Store

from conftest import PERSONAS, small_wide

# -- a hand-made table: 4 personas, 8 questions -------------------------------------------------------
P = ["P1", "P2", "P3", "P4"]
BASE = 2**59  # question ids are 60-bit integers
HAND = {  # question -> answers of P1..P4 (None: no answer at all)
    1: ["A", "A", "A", "A"],
    2: ["A", "B", "A", "A"],
    3: ["B", "A", "A", "C"],
    4: ["C", "C", "A", "B"],  # the target (P1) answers N/A
    5: ["A", "A", "B", "B"],
    6: ["B", "B", "B", "B"],
    7: ["A", None, "A", "A"],  # P2 skipped it
    8: ["A", "A", "refused", "A"],  # P3 refused: not an answer
}
# Worked out by hand for target P1, K = 4: tier = 1 + number of P2..P4 differing from P1.
TIERS_P1 = {1: 1, 2: 2, 3: 4, 4: 3, 5: 3, 6: 1}  # counts: tier1 2, tier2 1, tier3 2, tier4 1
# alpha = beta = 1: T = (1/4)(1/2), (2/4)(1/1), (3/4)(1/2), (4/4)(1/1) = .125, .5, .375, 1; sum over records 2.5
W_P1 = {1: 0.05, 2: 0.2, 3: 0.15, 4: 0.4}
# alpha = 2, beta = 0: T = 1/16, 4/16, 9/16, 16/16; sum over records 40/16
W_P1_A2B0 = {1: 0.025, 2: 0.1, 3: 0.225, 4: 0.4}
# target P4: tiers q1 1, q2 2, q3 4, q4 4, q5 3, q6 1; T = 1/8, 1/2, 3/4, 1/2; sum 2.5
TIERS_P4 = {1: 1, 2: 2, 3: 4, 4: 4, 5: 3, 6: 1}
W_P4 = {1: 0.05, 2: 0.2, 3: 0.3, 4: 0.2}
# P4 dropped (K = 3), target P1: tiers q1 1, q2 2, q3 3, q4 2, q5 2, q6 1; T = 1/6, 2/9, 1; sum 2
TIERS_K3 = {1: 1, 2: 2, 3: 3, 4: 2, 5: 2, 6: 1}
W_K3 = {1: 1 / 12, 2: 1 / 9, 3: 1 / 2}


def hand_answers(personas=P) -> pd.DataFrame:
    rows = [{"question_id": BASE + q, "respondent": p, "answer": a}
            for q, answers in HAND.items() for p, a in zip(P, answers) if a is not None and p in personas]
    return pd.DataFrame(rows)


def hand_questions() -> pd.DataFrame:
    return pd.DataFrame({
        "question_id": [BASE + q for q in HAND], "text": [f"  Question {q}: which is fairer? " for q in HAND],
        "options": ["A. By merit.\nB. Equally.\nC. N/A"] * len(HAND), "dimension": [1, 2, 3, 4, 5, 1, 2, 3],
        "topic": "t", "problem_category": "c", "specific_problem": "s", "group_type": "g", "group_name": "n",
        "split": ["train", "test"] * 4})


def hand(target="P1", personas=P, **kw) -> rw.Reweighting:
    return rw.reweight(rw.answer_table(hand_answers(personas), personas=personas), target=target, **kw)


def by_question(result: rw.Reweighting, col: str) -> dict[int, float]:
    return {int(q) - BASE: v for q, v in zip(result.records["question_id"], result.records[col])}


# -- tiers and weights ----------------------------------------------------------------------------------
@pytest.mark.parametrize("target, tiers, weights", [("P1", TIERS_P1, W_P1), ("P4", TIERS_P4, W_P4)])
def test_tiers_and_weights_match_the_hand_computation(target, tiers, weights):
    r = hand(target)
    assert r.K == 4 and r.n_questions == 8 and r.n_excluded == 2  # q7 (skipped) and q8 (refused) left out
    assert by_question(r, "tier") == tiers
    assert by_question(r, "weight") == pytest.approx({q: weights[t] for q, t in tiers.items()}, abs=1e-15)
    assert r.records["weight"].sum() == pytest.approx(1.0, abs=1e-15)
    counts = pd.Series(tiers).value_counts().reindex(range(1, 5), fill_value=0)
    assert r.tiers["count"].tolist() == counts.tolist()
    assert r.tiers["weight"].to_numpy() == pytest.approx([weights[t] for t in range(1, 5)])
    assert r.tiers["share"].sum() == pytest.approx(1.0)


def test_alpha_beta_change_the_weights_as_the_formula_says():
    r = hand(alpha=2, beta=0)
    assert by_question(r, "weight") == pytest.approx({q: W_P1_A2B0[t] for q, t in TIERS_P1.items()})
    flat = hand(alpha=0, beta=0)
    assert flat.records["weight"].to_numpy() == pytest.approx(np.full(6, 1 / 6))


def test_k_follows_the_number_of_personas():
    r = hand(personas=["P1", "P2", "P3"])
    assert r.K == 3 and r.tiers["tier"].tolist() == [1, 2, 3]
    assert by_question(r, "tier") == TIERS_K3
    assert by_question(r, "weight") == pytest.approx({q: W_K3[t] for q, t in TIERS_K3.items()})
    assert r.records["weight"].sum() == pytest.approx(1.0)


def test_empty_tiers_are_reported_with_count_zero_and_no_weight():
    answers = hand_answers()
    answers = answers[answers["question_id"].isin([BASE + 1, BASE + 2, BASE + 6])]
    r = rw.reweight(rw.answer_table(answers), target="P1")
    # T1 = (1/4)(1/2) = 1/8, T2 = (2/4)(1/1) = 1/2; sum 2/8 + 1/2 = 3/4 -> 1/6 and 2/3
    assert r.tiers["count"].tolist() == [2, 1, 0, 0]
    assert r.tiers["weight"].iloc[:2].tolist() == pytest.approx([1 / 6, 2 / 3])
    s = r.summary()
    assert s["tier_counts"] == {"1": 2, "2": 1, "3": 0, "4": 0}
    assert s["tier_weights"]["3"] is None and s["tier_weights"]["4"] is None


def test_answer_table_reads_the_long_frame():
    t = rw.answer_table(hand_answers(), personas=["P4", "P1", "Nobody"])
    assert list(t.columns) == ["P4", "P1"]  # the order asked for; absent personas are not present
    assert t.index.tolist() == [BASE + q for q in HAND]
    assert t.loc[BASE + 8, "P1"] == "A" and t.loc[BASE + 4, "P4"] == "B"
    full = rw.answer_table(hand_answers())
    assert pd.isna(full.loc[BASE + 8, "P3"]) and pd.isna(full.loc[BASE + 7, "P2"])  # refused, skipped
    rep = pd.DataFrame({"question_id": [1, 1, 1, 1, 2], "respondent": ["p", "p", "p", "q", "q"],
                        "answer": ["A", "B", "B", "C", "unparsed"]})
    votes = rw.answer_table(rep)
    assert votes.loc[1, "p"] == "B" and votes.loc[1, "q"] == "C" and pd.isna(votes.loc[2, "q"])


@pytest.mark.parametrize("layout", ["grouped", "shuffled", "categorical", "object"])
def test_answer_table_reads_any_row_order_and_dtype(layout):
    answers = hand_answers()
    extra = pd.DataFrame({"question_id": [BASE + 1, BASE + 2, BASE + 3, BASE + 5, BASE + 6],
                          "respondent": ["P2", None, "P9", "P4", "P1"], "answer": ["a", "A", "B", "AB", None]})
    answers = pd.concat([answers, extra], ignore_index=True)  # lower case, no respondent, unknown, not a letter
    expected = rw.answer_table(hand_answers())
    if layout == "shuffled":
        answers = answers.sample(frac=1, random_state=3).reset_index(drop=True)
    elif layout == "categorical":
        answers = answers.astype({"respondent": "category", "answer": "category"})
    elif layout == "object":
        answers = answers.astype({"respondent": object, "answer": object})
    table = rw.answer_table(answers)
    first_seen = list(dict.fromkeys(r for r in answers["respondent"] if isinstance(r, str)))
    assert list(table.columns) == first_seen  # every respondent present, in order of first appearance
    assert table["P9"].isna().tolist() == [q != BASE + 3 for q in table.index] and table.loc[BASE + 3, "P9"] == "B"
    assert table[P].equals(expected[P])  # the extra rows are no answers (P2 q1 keeps its "A")
    assert rw.answer_table(answers, personas=["P3", "P1"]).equals(expected[["P3", "P1"]])


def test_answer_table_reads_persona_major_blocks():
    """Every persona's answers in the same question order (as a loader writes them), and almost so."""
    rng = np.random.default_rng(5)
    order = rng.permutation([BASE + i for i in range(50)])
    long = pd.DataFrame([{"question_id": q, "respondent": p, "answer": "ABC"[rng.integers(3)]}
                         for p in ("P1", "P2", "P3") for q in order])

    def table(frame):
        return rw.answer_table(frame, personas=["P1", "P2", "P3"])

    shuffled = table(long.sample(frac=1, random_state=0))
    assert table(long).equals(shuffled) and shuffled.index.is_monotonic_increasing
    assert [table(long).loc[q, "P2"] for q in order] == long["answer"].iloc[50:100].tolist()
    swapped = long.copy()
    swapped.loc[[50, 51], "question_id"] = swapped.loc[[51, 50], "question_id"].to_numpy()  # P2's first two
    assert table(swapped).equals(table(swapped.sample(frac=1, random_state=0)))
    assert table(swapped).loc[order[0], "P2"] == long.loc[51, "answer"]


def test_target_names_resolve_like_elsewhere():
    assert hand("p4").target == "P4"
    t = rw.answer_table(hand_answers()).rename(columns={"P1": "Loyal Nationals"})
    assert rw.reweight(t, target="loyal").target == "Loyal Nationals"


# -- pairs ----------------------------------------------------------------------------------------------
def test_pairs_layout_na_handling_and_weights():
    r = hand()
    pairs = rw.training_pairs(r, hand_questions())
    assert list(pairs.columns) == rw.PAIR_COLUMNS
    assert len(pairs) == 12  # two per record: every option the target did not pick
    assert (pairs["chosen"] != pairs["rejected"]).all()
    assert (pairs["chosen"].str[0] != pairs["rejected"].str[0]).all()
    assert pairs["weight"].sum() == pytest.approx(1.0, abs=1e-15)
    per_q = pairs.groupby("question_id")["weight"].sum()
    assert {int(q) - BASE: w for q, w in per_q.items()} == pytest.approx({q: W_P1[t] for q, t in TIERS_P1.items()})
    q4 = pairs[pairs["question_id"] == BASE + 4]  # the target answered N/A: C chosen, A and B rejected
    assert q4["chosen"].tolist() == ["C. N/A", "C. N/A"]
    assert sorted(q4["rejected"]) == ["A. By merit.", "B. Equally."]
    assert q4["weight"].tolist() == pytest.approx([W_P1[3] / 2] * 2)
    q3 = pairs[pairs["question_id"] == BASE + 3]
    assert q3["chosen"].tolist() == ["B. Equally."] * 2 and sorted(q3["rejected"]) == ["A. By merit.", "C. N/A"]
    assert set(pairs["question_id"] - BASE) == set(TIERS_P1)  # skipped/refused questions give no pairs
    q = hand_questions().set_index("question_id")
    for _, row in pairs.iterrows():
        assert row["prompt"] == build_messages(q.loc[row["question_id"], "text"],
                                               q.loc[row["question_id"], "options"])[-1]["content"]
        assert row["tier"] == TIERS_P1[row["question_id"] - BASE]
        assert row["dimension"] == q.loc[row["question_id"], "dimension"]
    assert pairs["prompt"].iloc[0].endswith("Answer with a single letter: A, B or C.")


# Texts a loader may hand over: whitespace around, quotes, backslashes, tabs, blank lines, control characters,
# non-ASCII, texts that are prefixes of others and texts equal once stripped (equal prompts, two questions).
TRICKY_TEXTS = ["  Is it fair?  ", "Is it fair", "Is it fair\nreally?", "Is it fair?", 'He said "share" \\ split',
                "Two paragraphs.\n\nWhich is fairer?", "Tab\tseparated?", "Ctrl \x01 and \r return, \x1f",
                "Ünïcödé — fair\u2028share 😀?", "Is it fair?\n", "Is it fair\tor not?"]
TRICKY_OPTIONS = ["A. By merit.\nB. Equally.\nC. N/A", 'A. "Quoted" merit\nB. back\\slash\nC. N/A',
                  "A. pole one B. pole two C. N/A", "A. Tab\there\nB. ünï\nC. N/A"]


def no_record(i: int) -> bool:
    """Questions of many() that one persona skips (after the first two rounds of texts)."""
    return i >= 2 * len(TRICKY_TEXTS) and i % 7 == 0


def many_questions(n: int, texts=TRICKY_TEXTS) -> pd.DataFrame:
    """``n`` questions cycling through ``texts`` (numbered so most prompts differ) and TRICKY_OPTIONS."""
    return pd.DataFrame({
        "question_id": [BASE + i for i in range(n)],
        "text": [t if i < 2 * len(texts) else f"{t} #{i // len(texts)}" for i, t in
                 ((i, texts[i % len(texts)]) for i in range(n))],
        "options": [TRICKY_OPTIONS[(i // 3) % len(TRICKY_OPTIONS)] for i in range(n)],
        "dimension": [1 + i % 5 for i in range(n)], "topic": [f"topic {i % 7}" for i in range(n)],
        "problem_category": ['cat "q"' if i % 2 else "cat" for i in range(n)],
        "specific_problem": ["never a record" if no_record(i) else "s" for i in range(n)],
        "group_type": [f"g{i % 3}" for i in range(n)], "group_name": "ñ", "split": ["train", "test"] * (n // 2)})


def many(n: int, texts=TRICKY_TEXTS, seed: int = 0) -> tuple[rw.Reweighting, pd.DataFrame, pd.DataFrame]:
    questions = many_questions(n, texts)
    rng = np.random.default_rng(seed)
    answers = pd.DataFrame([{"question_id": q, "respondent": p, "answer": "ABC"[rng.integers(3)]}
                            for q in questions["question_id"] for p in ("P1", "P2", "P3")
                            if p != "P3" or not no_record(q - BASE)])  # P3 skipped them: no records
    r = rw.reweight(rw.answer_table(answers), target="P2")
    assert r.n_excluded == sum(map(no_record, range(n))) > 0
    return r, rw.training_pairs(r, questions), questions


def expected_pairs(r: rw.Reweighting, questions: pd.DataFrame) -> list[dict]:
    """The pairs built row by row with the probe's prompt builder (the definition the vectorised code follows)."""
    from fairpp.probe.prompts import parse_options

    q = questions.set_index("question_id")
    rows = []
    for qid, answer, tier, weight in r.records[["question_id", "answer", "tier", "weight"]].itertuples(index=False):
        row = q.loc[qid]
        try:
            opts = parse_options(row["options"])
            prompt = build_messages(row["text"], row["options"])[-1]["content"]
        except FairppError:  # the loader collapsed the line breaks: the same prompt from the options read by hand
            opts = dict(zip("ABC", [x.strip() for x in re.split(r"\s*[ABC]\. ", " " + row["options"])[1:]]))
            prompt = build_messages(row["text"], "\n".join(f"{x}. {opts[x]}" for x in "ABC"))[-1]["content"]
        for rej in (x for x in "ABC" if x != answer):
            rows.append({"prompt": prompt,
                         "chosen": f"{answer}. {opts[answer]}", "rejected": f"{rej}. {opts[rej]}",
                         "weight": weight / 2, "question_id": int(qid), "dimension": int(row["dimension"]),
                         **{c: row[c] for c in rw.PAIR_COLUMNS[6:12]}, "tier": int(tier)})
    return rows


TEXT_COLUMNS = ["prompt", "chosen", "rejected", *rw.PAIR_COLUMNS[6:12]]


def plain(pairs: pd.DataFrame) -> pd.DataFrame:
    """The pairs with plain string columns (what training_pairs returned before its Categoricals)."""
    return pairs.astype(dict.fromkeys(TEXT_COLUMNS, "str"))


@pytest.mark.parametrize("texts", [TRICKY_TEXTS, ["Is it fair", "Is it fair?", "Is it fair\nreally?", "Fair?"]],
                         ids=["tricky", "plain"])
def test_pairs_equal_the_row_by_row_construction(texts):
    r, pairs, questions = many(60, texts)
    expected = expected_pairs(r, questions)
    assert plain(pairs).to_dict("records") == expected
    for c in TEXT_COLUMNS:  # each distinct text once, in sorted order: sorting works as on strings
        assert isinstance(pairs[c].dtype, pd.CategoricalDtype)
        assert pairs[c].cat.categories.tolist() == sorted({e[c] for e in expected}), c
    assert pairs["chosen"].cat.categories.equals(pairs["rejected"].cat.categories)
    assert (pairs["chosen"] != pairs["rejected"]).all()
    by_text = plain(pairs).sort_values(["prompt", "rejected"], kind="stable")
    assert pairs.sort_values(["prompt", "rejected"], kind="stable").index.tolist() == by_text.index.tolist()
    same = pairs[pairs["prompt"] == build_messages("Is it fair?", TRICKY_OPTIONS[0])[-1]["content"]]
    if texts is TRICKY_TEXTS:  # "  Is it fair?  " and "Is it fair?" give one prompt for two questions
        assert same["question_id"].nunique() == 2


@pytest.mark.parametrize("n", [60, 5000], ids=["few", "many-distinct"])
def test_exports_hold_exactly_the_pairs(tmp_path, n):
    r, pairs, _ = many(n)
    records = plain(pairs).to_dict("records")
    card = rw.export_pairs(pairs, tmp_path / "p.jsonl", result=r)
    raw = (tmp_path / "p.jsonl").read_bytes()
    assert card["file"]["sha256"] == file_sha256(tmp_path / "p.jsonl")  # hashed while written, in blocks
    # JSONL: one compact json.dumps per pair; floats as repr, so weights come back bit for bit
    assert raw == "".join(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n"
                          for rec in records).encode("utf-8")
    back = [json.loads(line) for line in raw.decode("utf-8").split("\n")[:-1]]  # U+2028 is no line end
    assert back == records
    assert [b["weight"].hex() for b in back] == [float(w).hex() for w in pairs["weight"]]
    # Parquet: plain string columns (not dictionary), same schema, metadata and values as to_parquet of the
    # plain-string frame, so pandas, pyarrow and Hugging Face datasets read what they read before
    import pyarrow as pa
    import pyarrow.parquet as pq

    rw.export_pairs(pairs, tmp_path / "p.parquet", result=r)
    plain(pairs).to_parquet(tmp_path / "ref.parquet", index=False)
    got, ref = pq.read_table(tmp_path / "p.parquet"), pq.read_table(tmp_path / "ref.parquet")
    assert all(got.schema.field(c).type == pa.large_string() for c in TEXT_COLUMNS)
    assert got.equals(ref, check_metadata=True)
    assert pq.ParquetFile(tmp_path / "p.parquet").metadata.metadata == \
        pq.ParquetFile(tmp_path / "ref.parquet").metadata.metadata
    assert got.to_pylist() == records
    assert pd.read_parquet(tmp_path / "p.parquet").equals(pd.read_parquet(tmp_path / "ref.parquet"))
    # min/max statistics as to_parquet writes them, except for the prompts (left out: costly and of no use)
    mine, theirs = pq.ParquetFile(tmp_path / "p.parquet").metadata, pq.ParquetFile(tmp_path / "ref.parquet").metadata
    for rg in range(mine.num_row_groups):
        for j in range(mine.num_columns):
            col, ref_col = mine.row_group(rg).column(j), theirs.row_group(rg).column(j)
            if col.path_in_schema == "prompt":
                assert not col.is_stats_set
            else:
                assert col.statistics == ref_col.statistics, col.path_in_schema


def jsonl_of(frame: pd.DataFrame) -> bytes:
    """The JSONL file of ``frame`` written row by row with json.dumps (missing values as null)."""
    rows = [{k: None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for k, v in rec.items()}
            for rec in plain(frame).astype(object).to_dict("records")]
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rows).encode("utf-8")


@pytest.mark.parametrize("rows", ["shuffled", "odd", "offset", "extra columns"])
def test_jsonl_of_any_frame_equals_json_dumps_per_row(tmp_path, monkeypatch, rows):
    monkeypatch.setattr(rw, "_JSONL_CHUNK", 8)  # many blocks
    r, pairs, _ = many(60)
    frame = {"shuffled": pairs.sample(frac=1, random_state=1), "odd": pairs.iloc[:-1], "offset": pairs.iloc[1:-1],
             "extra columns": pairs.assign(
                 ok=[True, False] * (len(pairs) // 2), n=pd.array([1, None] * (len(pairs) // 2), "Int64"),
                 note=["x", None] * (len(pairs) // 2), score=[0.1, float("nan")] * (len(pairs) // 2))}[rows]
    card = rw.export_pairs(frame, tmp_path / "p.jsonl", result=r)
    assert (tmp_path / "p.jsonl").read_bytes() == jsonl_of(frame)
    assert card["file"]["sha256"] == file_sha256(tmp_path / "p.jsonl")


def test_exports_take_plain_string_frames_too(tmp_path):
    import pyarrow.parquet as pq

    r, pairs, _ = many(60)
    flat = plain(pairs)
    for name in ("a.jsonl", "b.jsonl", "a.parquet", "b.parquet"):
        rw.export_pairs(pairs if name.startswith("a") else flat, tmp_path / name, result=r)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert pq.read_table(tmp_path / "a.parquet").equals(pq.read_table(tmp_path / "b.parquet"), check_metadata=True)
    # extra columns a caller added (Python strings, a nullable integer) are written as to_parquet writes them
    extra = pairs.assign(note=["x", None] * (len(pairs) // 2), votes=pd.array([1, None] * (len(pairs) // 2), "Int64"))
    rw.export_pairs(extra, tmp_path / "c.parquet", result=r)
    plain(extra).to_parquet(tmp_path / "ref.parquet", index=False)
    assert pq.read_table(tmp_path / "c.parquet").equals(pq.read_table(tmp_path / "ref.parquet"), check_metadata=True)


def test_weighting_effect_against_scipy():
    r = hand()
    eff = rw.weighting_effect(r).set_index("respondent")
    # target P1 on the 6 records: A A B C A B; weighted: A = .05 + .2 + .15, B = .4 + .05, C = .15
    uniform, weighted = np.array([3, 2, 1]) / 6, np.array([0.4, 0.45, 0.15])
    assert eff.loc["training (uniform)", ["A", "B", "C"]].to_numpy(dtype=float) == pytest.approx(uniform)
    assert eff.loc["training (weighted)", ["A", "B", "C"]].to_numpy(dtype=float) == pytest.approx(weighted)
    assert eff.loc["P1", "kind"] == "target" and eff.loc["P1", "js_before"] == pytest.approx(0.0, abs=1e-12)
    p4 = np.array([2, 3, 1]) / 6  # P4 on the records q1..q6: A A C B B B
    assert eff.loc["P4", ["A", "B", "C"]].to_numpy(dtype=float) == pytest.approx(p4)
    assert eff.loc["P4", "js_before"] == pytest.approx(jensenshannon(p4, uniform, base=2))
    assert eff.loc["P4", "js_after"] == pytest.approx(jensenshannon(p4, weighted, base=2))
    assert eff.loc["P1", "js_after"] == pytest.approx(jensenshannon(uniform, weighted, base=2))


# -- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, words", [
    ({"target": "P9"}, ["'P9'", "unknown", "P1", "P4"]),
    ({"target": "P1", "alpha": -0.5}, ["alpha=-0.5", ">= 0"]),
    ({"target": "P1", "beta": float("nan")}, ["beta=nan"]),
    ({"target": "P1", "beta": True}, ["beta=True"]),
])
def test_bad_arguments_name_the_problem(kw, words):
    with pytest.raises(rw.ReweightError) as exc:
        rw.reweight(rw.answer_table(hand_answers()), **kw)
    assert isinstance(exc.value, FairppError)
    assert all(w in str(exc.value) for w in words)


def test_structural_errors():
    with pytest.raises(rw.ReweightError, match="at least 2 personas"):
        rw.reweight(rw.answer_table(hand_answers(["P1"])), target="P1")
    gaps = hand_answers()
    gaps = gaps[~((gaps["respondent"] == "P2") & (gaps["question_id"] <= BASE + 4))
                & ~((gaps["respondent"] == "P3") & (gaps["question_id"] > BASE + 4))]
    with pytest.raises(rw.ReweightError, match="no question was answered by all 4 personas"):
        rw.reweight(rw.answer_table(gaps), target="P1")
    with pytest.raises(rw.ReweightError, match="matches nothing|holds no answers"):
        rw.reweight(rw.answer_table(hand_answers().iloc[:0]).reindex(columns=P), target="P1")
    with pytest.raises(rw.ReweightError, match="no text"):
        rw.training_pairs(hand(), hand_questions().iloc[2:])
    no_options = hand_questions()
    no_options.loc[3, "options"] = None
    with pytest.raises(rw.ReweightError, match=f"question {BASE + 4} has no options"):
        rw.training_pairs(hand(), no_options)
    edited = hand()
    edited.records.loc[0, "answer"] = "D"
    with pytest.raises(rw.ReweightError, match="other than A, B or C"):
        rw.training_pairs(edited, hand_questions())
    with pytest.raises(rw.ReweightError, match=r"\.jsonl or \.parquet"):
        rw.output_format("pairs.csv")


# -- export and run card ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["pairs.jsonl", "pairs.parquet"])
def test_export_is_readable_in_the_trl_layout(tmp_path, name):
    r = hand()
    pairs = rw.training_pairs(r, hand_questions())
    out = tmp_path / "sub" / name
    card = rw.export_pairs(pairs, out, result=r, source={"kind": "file", "synthetic": False, "sha256": ["abc"]})
    back = pd.read_json(out, lines=True, precise_float=True) if name.endswith("jsonl") else pd.read_parquet(out)
    assert list(back.columns) == rw.PAIR_COLUMNS
    assert back["question_id"].tolist() == pairs["question_id"].tolist()  # 60-bit ids survive
    assert back["weight"].tolist() == pairs["weight"].tolist() and back["weight"].sum() == pytest.approx(1.0)
    for c in ("prompt", "chosen", "rejected", "split"):
        assert back[c].tolist() == pairs[c].tolist()
    if name.endswith("jsonl"):
        lines = out.read_text(encoding="utf-8").splitlines()
        assert len(lines) == 12 and json.loads(lines[0])["prompt"] == pairs["prompt"].iloc[0]
    saved = json.loads((tmp_path / "sub" / f"{name}.card.json").read_text())
    assert saved == card
    assert saved["target"] == "P1" and saved["K"] == 4 and saved["pairs"] == 12 and saved["synthetic"] is False
    assert saved["tier_counts"] == {"1": 2, "2": 1, "3": 2, "4": 1}
    assert saved["tier_weights"] == pytest.approx({"1": 0.05, "2": 0.2, "3": 0.15, "4": 0.4})
    assert saved["source"]["sha256"] == ["abc"] and saved["file"]["sha256"] == file_sha256(out)
    assert {"created_at", "fairpp_version", "alpha", "beta", "na_handling", "pair_weighting"} <= set(saved)
    assert "warning" not in saved
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([name, f"{name}.card.json"])


def test_failed_export_leaves_nothing_half_written(tmp_path, monkeypatch):
    r = hand()
    pairs = rw.training_pairs(r, hand_questions())
    out = tmp_path / "pairs.jsonl"
    out.write_text("previous\n")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(rw, "_card", boom)
    with pytest.raises(rw.ReweightError, match="disk full"):
        rw.export_pairs(pairs, out, result=r)
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.jsonl"]  # no card, no temp file


def test_module_stays_free_of_duckdb_and_streamlit():
    code = ("import sys, fairpp.reweight\n"
            "print(sorted({k.split('.')[0] for k in sys.modules} & {'duckdb', 'streamlit'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- the command line on a real DuckDB file -------------------------------------------------------------
@pytest.fixture
def small_db(tmp_path):
    wide = small_wide()
    csv = tmp_path / "fairpp_train.csv"
    wide.to_csv(csv, index=False)
    db = tmp_path / "store.duckdb"
    with Store(db) as store:
        store.load(read_files([csv]))
    return db, wide, csv


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_matches_an_independent_computation(small_db, tmp_path, capsys):
    db, wide, csv = small_db
    out = tmp_path / "pairs.jsonl"
    code, stdout, err = cli(capsys, "reweight", "--db", db, "--target", PERSONAS[2], "--out", out, "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    # independent: row by row on the raw file's answer codes, persona i in column gpt-4o-mini_role_{i}_answer
    codes = wide[[f"gpt-4o-mini_role_{i}_answer" for i in range(1, 8)]].to_numpy()
    tiers = [1 + sum(int(row[j] != row[2]) for j in range(7) if j != 2) for row in codes]
    counts = {i: tiers.count(i) for i in range(1, 8)}
    t_value = {i: (i / 7) * (1 / counts[i]) for i in counts if counts[i]}
    total = sum(t_value[i] * counts[i] for i in t_value)
    assert doc["K"] == 7 and doc["target"] == PERSONAS[2] and doc["pairs"] == 2 * len(wide)
    assert doc["tier_counts"] == {str(i): counts[i] for i in range(1, 8)}
    for i in range(1, 8):
        expected = t_value[i] / total if counts[i] else None
        assert doc["tier_weights"][str(i)] == (pytest.approx(expected) if expected else None)
    assert doc["out"] == str(out) and doc["synthetic"] is False
    pairs = pd.read_json(out, lines=True, precise_float=True)
    assert list(pairs.columns) == rw.PAIR_COLUMNS and len(pairs) == doc["pairs"]
    # the loader collapsed the options' line breaks ("A. pole one B. pole two C. N/A"); pairs still read them
    assert set(pairs["chosen"]) | set(pairs["rejected"]) == {"A. pole one", "B. pole two", "C. N/A"}
    assert pairs["prompt"].iloc[0].endswith("\n\nA. pole one\nB. pole two\nC. N/A\n\n"
                                            "Answer with a single letter: A, B or C.")
    assert pairs["weight"].sum() == pytest.approx(1.0) and (pairs["chosen"] != pairs["rejected"]).all()
    card = json.loads((tmp_path / "pairs.jsonl.card.json").read_text())
    assert card["synthetic"] is False and card["source"]["sha256"] == [file_sha256(csv)]
    assert card["tier_counts"] == doc["tier_counts"] and card["alpha"] == 1.0 and card["beta"] == 1.0


def test_cli_drop_a_persona_slice_and_parquet(small_db, tmp_path, capsys):
    db, wide, _ = small_db
    out = tmp_path / "pairs.data"
    keep = [p for p in PERSONAS if p != PERSONAS[6]]
    argv = ["reweight", "--db", db, "--target", "progressive", "--alpha", "2", "--beta", "0.5", "--out", out,
            "--format", "parquet", "--slice", "dimension=3", "--json"]
    for p in keep:
        argv += ["--persona", p]
    code, stdout, err = cli(capsys, *argv)
    assert code == 0, err
    doc = json.loads(stdout)
    n = int(wide["Perspective"].str.endswith(".3").sum())
    assert doc["K"] == 6 and len(doc["tier_counts"]) == 6 and sum(doc["tier_counts"].values()) == n
    pairs = pd.read_parquet(out)
    assert len(pairs) == 2 * n and set(pairs["dimension"]) == {3}
    card = json.loads((tmp_path / "pairs.data.card.json").read_text())
    assert card["K"] == 6 and card["alpha"] == 2.0 and card["beta"] == 0.5 and card["filters"] == {"dimension": ["3"]}
    assert card["personas"] == keep


@pytest.mark.parametrize("extra, words", [
    (["--target", "Nobody"], ["unknown", PERSONAS[0]]),
    (["--target", PERSONAS[0], "--alpha", "-1"], ["alpha=-1.0"]),
    (["--target", PERSONAS[0], "--slice", "topic=no such topic"], ["widen or drop --slice"]),
    (["--target", PERSONAS[0], "--persona", PERSONAS[0]], ["at least 2 personas"]),
])
def test_cli_errors_write_nothing(small_db, tmp_path, capsys, extra, words):
    db, _, _ = small_db
    out = tmp_path / "out" / "pairs.jsonl"
    code, stdout, err = cli(capsys, "reweight", "--db", db, "--out", out, *extra)
    assert code == 2 and stdout == ""
    assert all(w in err for w in words), err
    assert not out.exists() and not (tmp_path / "out" / "pairs.jsonl.card.json").exists()


def test_cli_unwritable_out_is_a_clean_error(small_db, tmp_path, capsys):
    db, _, _ = small_db
    (tmp_path / "taken.jsonl").mkdir()
    code, stdout, err = cli(capsys, "reweight", "--db", db, "--target", PERSONAS[0], "--out", tmp_path / "taken.jsonl")
    assert code == 2 and "cannot write" in err and "--out" in err
    assert not (tmp_path / "taken.jsonl.card.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cli_text_output(small_db, tmp_path, capsys):
    db, _, _ = small_db
    code, stdout, _ = cli(capsys, "reweight", "--db", db, "--target", PERSONAS[0], "--out", tmp_path / "p.jsonl")
    assert code == 0 and "K=7" in stdout and "training (weighted)" in stdout and "SYNTHETIC" not in stdout


def test_card_says_synthetic_on_demo_data(tmp_path, capsys):
    db = tmp_path / "demo.duckdb"
    assert cli(capsys, "demo", "--db", db)[0] == 0
    out = tmp_path / "demo.parquet"
    code, stdout, err = cli(capsys, "reweight", "--db", db, "--target", PERSONAS[4], "--out", out,
                            "--slice", "problem_category=basic material needs", "--json")
    assert code == 0, err
    doc = json.loads(stdout)
    card = json.loads((tmp_path / "demo.parquet.card.json").read_text())
    assert doc["synthetic"] is True and card["synthetic"] is True and card["source"]["synthetic"] is True
    assert "SYNTHETIC" in card["warning"] and card["source"]["kind"] == "demo" and card["source"]["sha256"]
    assert card["K"] == 7 and card["pairs"] == len(pd.read_parquet(out)) == doc["pairs"]
    assert math.isclose(sum(c * (w or 0) for c, w in zip(doc["tier_counts"].values(), doc["tier_weights"].values())),
                        1.0)
