"""Weighted DPO, evaluation and the four-condition comparison (fairpp.train).

The tests that train need the training extra (``pip install -r requirements-train.txt``); they build a
tiny randomly initialised Llama and a byte-level BPE tokenizer trained here on the question text, so no
weights are downloaded. Without the extra only the torch-free tests (storage, comparison, the import
boundary, the CLI's messages) run.
"""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from fairpp import analysis
from fairpp.cli import main
from fairpp.schema import Batch, persona_names
from fairpp.sources.files import read_files
from fairpp.store import Store
from fairpp.store import experiments as xp
from fairpp.store.core import StoreError
from fairpp.train.compare import bootstrap_counts, compare_conditions

from conftest import small_wide

# Not importorskip at module level: the torch-free tests below run in the main job too, and finding the
# package (rather than importing it) keeps TRL's import time out of test collection.
HAVE_TRL = importlib.util.find_spec("trl") is not None
requires_trl = pytest.mark.skipif(not HAVE_TRL, reason="training extra not installed (requirements-train.txt)")

PERSONAS = persona_names()
TARGET = PERSONAS[0]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- a hand-made store: 3 personas, 2 conditions, 8 questions over 2 dimensions ----------------------
HAND = {  # respondent -> answers to q1..q8
    "P1": "AABBAABB", "P2": "BBBBAAAC", "P3": "ABABABAB",
    "near": "AABBAABA", "far": "BBBBBBBB",
}


def hand_store() -> Store:
    qids = list(range(1, 9))
    questions = pd.DataFrame({"question_id": qids, "question_set": "t", "dimension": [1, 1, 1, 1, 2, 2, 2, 2],
                              "text": [f"q{i}" for i in qids], "options": "A. a\nB. b\nC. N/A", "split": "test"})
    resp = pd.DataFrame({"respondent": ["P1", "P2", "P3"], "kind": "persona"})
    answers = pd.DataFrame([{"question_id": q, "respondent": r, "answer": HAND[r][q - 1]}
                            for r in ("P1", "P2", "P3") for q in qids])
    s = Store(":memory:")
    s.load(Batch(questions, resp, answers, {"kind": "file", "label": "hand"}))
    for name in ("near", "far"):
        xp.save_model_answers(s, pd.DataFrame({"question_id": qids, "answer": list(HAND[name])}), respondent=name,
                              run_id=f"eval-{name}", provenance={"kind": "test"})
    return s


def test_comparison_matches_scipy_and_brackets_the_point_estimates():
    s = hand_store()
    card = compare_conditions(s, target="p1", conditions={"close": "near", "away": "far"}, n_boot=300, seed=1)
    assert card["target"] == "P1" and card["personas"] == ["P1", "P2", "P3"] and card["n_questions"] == 8
    dist = {r: np.bincount(["ABC".index(x) for x in HAND[r]], minlength=3) / 8 for r in HAND}
    for row in card["rows"]:
        cond = {"close": "near", "away": "far"}[row["condition"]]
        assert row["js"] == pytest.approx(jensenshannon(dist[cond], dist[row["persona"]], base=2), abs=1e-12)
        agree = np.mean([a == b for a, b in zip(HAND[cond], HAND[row["persona"]])])
        assert row["agreement"] == pytest.approx(agree)
        assert row["js_low"] <= row["js"] + 1e-12 and row["js"] <= row["js_high"] + 1e-12
        assert row["agreement_low"] <= row["agreement"] <= row["agreement_high"]
        assert row["is_target"] == (row["persona"] == "P1")
    close, away = card["summary"]
    assert close["nearest"] == "P1" and close["agreement_target"] == pytest.approx(7 / 8)
    others = [r["js"] for r in card["rows"] if r["condition"] == "close" and not r["is_target"]]
    assert close["js_others"] == pytest.approx(np.mean(others))
    assert close["gap"] == pytest.approx(close["js_others"] - close["js_target"])
    assert close["gap_low"] <= close["gap"] <= close["gap_high"]
    assert away["agreement_target"] == pytest.approx(4 / 8)
    (between,) = card["between"]
    assert between["js"] == pytest.approx(jensenshannon(dist["near"], dist["far"], base=2))
    pos = {(p["respondent"], p["dimension"]): p for p in card["positions"]}
    assert pos[("far", 1)]["position"] == 1.0 and pos[("P1", 2)]["position"] == 0.5
    assert pos[("P1", 3)]["position"] is None and pos[("P1", 3)]["n"] == 0
    # the same seed gives the same intervals; the paper-compatible base scales every distance
    again = compare_conditions(s, target="P1", conditions={"close": "near", "away": "far"}, n_boot=300, seed=1)
    assert again["rows"] == card["rows"]
    nat = compare_conditions(s, target="P1", conditions=[("close", "near")], base=math.e, n_boot=10)
    assert nat["rows"][0]["js"] == pytest.approx(card["rows"][0]["js"] * math.sqrt(math.log(2)))


def test_bootstrap_resamples_within_each_dimension():
    dims = np.array([1, 1, 1, 2, 2, 5])
    c = bootstrap_counts(dims, 200, np.random.default_rng(0))
    assert (c[:, :3].sum(axis=1) == 3).all() and (c[:, 3:5].sum(axis=1) == 2).all() and (c[:, 5] == 1).all()


def test_comparison_errors_name_the_fix():
    s = hand_store()
    with pytest.raises(Exception, match="LABEL=RESPONDENT"):
        compare_conditions(s, target="P1", conditions={})
    with pytest.raises(Exception, match="not in the store"):
        compare_conditions(s, target="P1", conditions={"x": "nobody"})
    with pytest.raises(Exception, match="no answers under the selection"):
        compare_conditions(s, target="P1", conditions={"x": "near"}, split="train")
    with pytest.raises(Exception, match="cannot be one of the personas"):
        compare_conditions(s, target="P1", conditions={"x": "P2"})


def test_model_answers_are_a_custom_respondent_that_survives_a_reload(tmp_path):
    csv = tmp_path / "fairpp_train.csv"
    small_wide(problems=1, groups=1, models=False).to_csv(csv, index=False)
    with Store(tmp_path / "s.duckdb") as s:
        s.load(read_files([csv]))
        qids = s.questions()["question_id"].tolist()
        probs = np.tile([0.2, 0.7, 0.1], (len(qids), 1))
        ans = pd.DataFrame({"question_id": qids, "answer": "B", "p_a": probs[:, 0], "p_b": probs[:, 1],
                            "p_c": probs[:, 2]})
        rep = xp.save_model_answers(s, ans, respondent="my-model", run_id="eval-1", provenance={"run_id": "abc"},
                                    description="weighted DPO of tiny")
        assert rep == {"respondent": "my-model", "source_id": rep["source_id"], "answers": len(qids), "replaced": 0}
        rep2 = xp.save_model_answers(s, ans.assign(answer="A"), respondent="my-model", run_id="eval-2")
        assert rep2["replaced"] == len(qids)
        s.load(read_files([csv]))  # a new dataset load keeps it, like a probe run
        row = s.respondents(kinds=["custom"]).iloc[0]
        assert row["respondent"] == "my-model" and json.loads(row["provenance"]) == {}
        got = s.answers(respondents=["my-model"])
        assert len(got) == len(qids) and set(got["answer"]) == {"A"} and set(got["run_id"]) == {"eval-2"}
        pos = analysis.positions(s, respondents=["my-model"])
        assert pos["position"].to_numpy() == pytest.approx(np.full(5, 0.7 / 0.9))  # soft answers: expected counts
        with pytest.raises(StoreError, match="already exists as a persona"):
            xp.save_model_answers(s, ans, respondent=PERSONAS[0], run_id="x")
        with pytest.raises(StoreError, match="not in the store"):
            xp.save_model_answers(s, ans.assign(question_id=ans["question_id"] + 1), respondent="m2", run_id="x")
        assert "m2" not in s.respondents()["respondent"].tolist()  # nothing written
        xp.save_experiment(s, "exp", {"target": "T", "conditions": [{"condition": "base", "respondent": "b"}]})
        assert xp.list_experiments(s)["experiment_id"].tolist() == ["exp"]
        assert xp.get_experiment(s, "exp")["target"] == "T"
        xp.delete_experiment(s, "exp")
        with pytest.raises(StoreError, match="no experiment"):
            xp.get_experiment(s, "exp")


def test_importing_fairpp_and_its_cli_needs_no_training_extra():
    code = ("import sys, fairpp, fairpp.cli, fairpp.train, fairpp.train.data, fairpp.train.compare\n"
            "fairpp.cli._load_plugins(); fairpp.cli.build_parser()\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'trl', 'transformers', 'peft', 'datasets', 'accelerate'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_messages(capsys, tmp_path):
    code, _, err = cli(capsys, "train", "--pairs", tmp_path / "none.jsonl", "--base", "x", "--out", tmp_path / "o")
    assert code == 2 and ("no such file" in err or "training extra" in err)
    db = tmp_path / "db.duckdb"
    Store(db).close()
    code, _, err = cli(capsys, "compare", "--db", db, "--target", TARGET)
    assert code == 2 and "--condition" in err
    code, _, err = cli(capsys, "compare", "--db", db, "--target", TARGET, "--condition", "nolabel")
    assert code == 2 and "LABEL=RESPONDENT" in err


# -- (1) the weighted loss, by hand ---------------------------------------------------------------------
def _tiny_tokenizer(texts, path=None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<eos>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<pad>")
    if path is not None:
        hf.save_pretrained(path)
    return hf


def _tiny_llama(tokenizer, seed=0, path=None):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    if path is not None:
        model.save_pretrained(path)
    return model


def _hand_logps(model, batch):
    """Summed completion log-probabilities, straight from the logits (not through TRL)."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    lp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    tok = lp.gather(-1, batch["input_ids"][:, 1:, None]).squeeze(-1)
    per = (tok * batch["completion_mask"][:, 1:]).sum(dim=1).tolist()
    n = len(per) // 2
    return per[:n], per[n:]


@requires_trl
def test_weighted_loss_is_the_hand_computed_weighted_mean(tmp_path):
    import datasets
    import torch
    from trl import DPOConfig, DPOTrainer

    from fairpp.train.loss import weighted_dpo_loss
    from fairpp.train.trainer import WeightedDPOTrainer

    # the function alone, on made-up log-probabilities
    pc, pr = torch.tensor([-3.0, -5.0, -2.0]), torch.tensor([-4.0, -1.0, -2.5])
    rc, rr = torch.tensor([-3.5, -4.0, -2.0]), torch.tensor([-3.0, -2.0, -3.0])
    w, beta = torch.tensor([0.2, 1.0, 3.0]), 0.5
    hand = [-math.log(1 / (1 + math.exp(-beta * ((a - c) - (b - d)))))
            for a, b, c, d in zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())]
    loss, per = weighted_dpo_loss(pc, pr, rc, rr, w, beta=beta)
    assert per.tolist() == pytest.approx(hand, rel=1e-6)
    assert loss.item() == pytest.approx(sum(x * y for x, y in zip(w.tolist(), hand)) / w.sum().item(), rel=1e-6)
    assert weighted_dpo_loss(pc, pr, rc, rr, torch.full((3,), 7.0), beta=beta)[0].item() == pytest.approx(
        np.mean(hand), rel=1e-6)
    assert weighted_dpo_loss(pc, pr, rc, rr, w, beta=beta, norm="dataset")[0].item() == pytest.approx(
        np.mean([x * y for x, y in zip(w.tolist(), hand)]), rel=1e-6)

    # inside the trainer, on a real batch: policy and a different reference model
    texts = ["Is it fair? A. yes B. no C. N/A Answer with a single letter: A, B or C.\nAnswer: A. yes B. no"] * 3
    tok = _tiny_tokenizer(texts)
    policy, ref = _tiny_llama(tok, seed=0), _tiny_llama(tok, seed=1)
    weights = [0.5, 2.0, 1.0, 0.25]
    ds = datasets.Dataset.from_dict({
        "prompt": ["Is it fair?\nAnswer:", "Is it fair? A. yes\nAnswer:", "Q\nAnswer:", "Is it?\nAnswer:"],
        "chosen": [" A. yes", " B. no", " C. N/A", " A. yes"], "rejected": [" B. no", " C. N/A", " A. yes", " C. N/A"],
        "weight": weights})
    settings = dict(output_dir=str(tmp_path / "o"), beta=beta, report_to="none", bf16=False, use_cpu=True,
                    activation_checkpointing=False, per_device_train_batch_size=4)
    args = DPOConfig(**settings)
    trainer = WeightedDPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=ds, processing_class=tok)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    assert batch["weight"].tolist() == weights
    (pol_c, pol_r), (ref_c, ref_r) = _hand_logps(policy, batch), _hand_logps(ref, batch)
    per_hand = [-math.log(1 / (1 + math.exp(-beta * ((a - c) - (b - d)))))
                for a, b, c, d in zip(pol_c, pol_r, ref_c, ref_r)]
    assert len(set(np.round(per_hand, 6))) == 4  # the pairs really differ, so the weights matter
    weighted = trainer.compute_loss(policy, batch).item()
    assert weighted == pytest.approx(np.dot(weights, per_hand) / sum(weights), rel=1e-5)
    assert weighted != pytest.approx(np.mean(per_hand), rel=1e-3)
    # all-equal weights: the plain DPO loss, by hand and as TRL's own DPOTrainer computes it
    equal = trainer.compute_loss(policy, {**batch, "weight": torch.full((4,), 0.3)}).item()
    assert equal == pytest.approx(np.mean(per_hand), rel=1e-5)
    stock = DPOTrainer(model=_tiny_llama(tok, seed=0), ref_model=_tiny_llama(tok, seed=1), args=args,
                       train_dataset=ds, processing_class=tok)
    plain = {k: v for k, v in batch.items() if k != "weight"}
    assert stock.compute_loss(stock.model, plain).item() == pytest.approx(equal, rel=1e-5)
    # reference log-probabilities precomputed once give the same loss
    pre = WeightedDPOTrainer(model=_tiny_llama(tok, seed=0), ref_model=_tiny_llama(tok, seed=1), train_dataset=ds,
                             args=DPOConfig(**settings, precompute_ref_log_probs=True),
                             processing_class=tok)
    pre_batch = pre.data_collator([pre.train_dataset[i] for i in range(4)])
    assert pre_batch["ref_chosen_logps"].tolist() == pytest.approx(ref_c, rel=1e-5)
    assert pre.compute_loss(pre.model, pre_batch).item() == pytest.approx(weighted, rel=1e-5)


# -- (2) end to end on a tiny local model -----------------------------------------------------------------
@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """A store with a train/test split, pairs for the target, a tiny model, two trainings, four evaluations."""
    if not HAVE_TRL:
        pytest.skip("training extra not installed (requirements-train.txt)")
    from fairpp.probe.prompts import persona_prompt
    from fairpp.train.data import PLAIN_SUFFIX

    root = tmp_path_factory.mktemp("train")
    wide = small_wide(problems=3, groups=2)
    wide["split"] = np.where(np.arange(len(wide)) % 3 == 0, "test", "train")
    csv = root / "fairpp.csv"
    wide.to_csv(csv, index=False)
    db = root / "store.duckdb"
    with Store(db) as store:
        store.load(read_files([csv]))
        questions = store.questions()
    texts = [f"{t}\n\n{o}\n\nAnswer with a single letter: A, B or C.{PLAIN_SUFFIX} A. B. C."
             for t, o in zip(questions["text"], questions["options"])] + [persona_prompt(TARGET)]
    tok = _tiny_tokenizer(texts, path=root / "tiny")
    _tiny_llama(tok, seed=0, path=root / "tiny")
    pairs = root / "pairs.jsonl"
    assert main(["reweight", "--db", str(db), "--target", TARGET, "--slice", "split=train", "--out", str(pairs)]) == 0
    return {"root": root, "db": db, "pairs": pairs, "tiny": root / "tiny", "questions": questions}


def test_train_evaluate_and_compare_end_to_end(experiment, capsys):
    root, db, pairs, tiny = (experiment[k] for k in ("root", "db", "pairs", "tiny"))
    n_test = int((experiment["questions"]["split"] == "test").sum())
    cards = {}
    # one batch holds every pair (80), so each step sees the same pairs and the loss can only go down by learning
    trainings = (("wdpo", ["--weighted", "--lora", "--lr", "0.005"]), ("dpo", ["--unweighted", "--lr", "0.002"]))
    for name, extra in trainings:
        code, out, err = cli(capsys, "train", "--pairs", pairs, "--base", tiny, "--out", root / name, "--max-steps", 6,
                             "--batch-size", 128, "--beta", 0.5, "--json", *extra)
        assert code == 0, err
        assert "step 1: loss" not in out  # progress goes to stderr, stdout is one JSON document
        card = cards[name] = json.loads(out)
        assert json.loads((root / name / "fairpp_train_card.json").read_text()) == card
        losses = card["losses"]
        assert card["steps"] == 6 and len(losses) == 6 and card["final_loss"] == losses[-1]
        assert losses[0] == pytest.approx(math.log(2), abs=1e-4)  # policy == reference at the first step
        assert losses[-1] < losses[0] - 0.1 and np.mean(losses[-3:]) < np.mean(losses[:3]), losses  # going down
        assert card["pairs"]["sha256"] and card["pairs"]["rows"] == len(pd.read_json(pairs, lines=True)) == 80
        assert card["target"] == TARGET and card["base"] == str(tiny) and card["prompt_format"] == "plain"
        assert card["hyperparameters"]["beta"] == 0.5 and card["fairpp_version"] and card["created_at"]
    assert cards["wdpo"]["weighted"] and cards["wdpo"]["model_kind"] == "lora-adapter"
    assert (root / "wdpo" / "adapter_config.json").is_file()
    assert not cards["dpo"]["weighted"] and cards["dpo"]["model_kind"] == "full"
    code, _, err = cli(capsys, "train", "--pairs", pairs, "--base", tiny, "--out", root / "dpo")
    assert code == 2 and "not empty" in err

    runs = {"base": ["--model", tiny], "role-play": ["--model", tiny, "--persona", TARGET],
            "DPO": ["--model", root / "dpo"], "weighted DPO": ["--model", root / "wdpo"]}
    for label, argv in runs.items():
        code, out, err = cli(capsys, "evaluate", "--db", db, "--respondent", f"tiny {label}", "--condition", label,
                             "--json", *argv)
        assert code == 0, err
        doc = json.loads(out)
        assert doc["questions"] == n_test and sum(doc["answer_counts"].values()) == n_test
        assert doc["excluded_training_questions"] == (0 if label in ("base", "role-play") else
                                                      pd.read_json(pairs, lines=True)["question_id"].nunique())
        assert doc["train_run"] == (cards.get({"DPO": "dpo", "weighted DPO": "wdpo"}.get(label, ""), {}).get("run_id"))
    with Store(db, read_only=True) as store:
        custom = store.respondents(kinds=["custom"]).set_index("respondent")
        assert sorted(custom.index) == sorted(f"tiny {label}" for label in runs)
        prov = json.loads(custom.loc["tiny weighted DPO", "provenance"])
        assert prov["train_card"]["run_id"] == cards["wdpo"]["run_id"] and prov["split"] == "test"
        assert json.loads(custom.loc["tiny role-play", "provenance"])["system_prompt"].startswith("You are one of")
        ans = store.answers(respondents=["tiny weighted DPO"])
        assert len(ans) == n_test and set(ans["split"]) == {"test"}
        assert ans[["p_a", "p_b", "p_c"]].sum(axis=1).to_numpy() == pytest.approx(np.ones(n_test))
        base_ans = store.answers(respondents=["tiny base"]).set_index("question_id")
        dpo_ans = store.answers(respondents=["tiny DPO"]).set_index("question_id").loc[base_ans.index]
        assert not np.allclose(base_ans["p_a"], dpo_ans["p_a"])  # training changed the model

    conds = [f"--condition={label}=tiny {label}" for label in runs]
    code, out, err = cli(capsys, "compare", "--db", db, "--target", TARGET, *conds, "--n-boot", 200,
                         "--save", "tiny-exp", "--json")
    assert code == 0, err
    card = json.loads(out)
    assert [c["condition"] for c in card["conditions"]] == list(runs)
    assert card["n_questions"] == n_test and len(card["rows"]) == 4 * 7 and len(card["summary"]) == 4
    assert len(card["between"]) == 6 and card["saved_as"] == "tiny-exp"
    with Store(db, read_only=True) as store:
        ref = analysis.distances(store, {"split": ["test"]}, respondents=[f"tiny {x}" for x in runs] + PERSONAS)
        agr = analysis.agreement(store, {"split": ["test"]}, respondents=[f"tiny {x}" for x in runs] + PERSONAS)
    names = ref["respondents"]
    for row in card["rows"]:
        i, j = names.index(row["respondent"]), names.index(row["persona"])
        assert row["js"] == pytest.approx(ref["js_distance"][i, j], abs=1e-9)
        assert row["agreement"] == pytest.approx(agr["agreement"][i, j], abs=1e-12)
        assert row["js_low"] <= row["js"] + 1e-9 <= row["js_high"] + 2e-9
    for s in card["summary"]:
        assert s["js_target"] == pytest.approx(next(r["js"] for r in card["rows"]
                                                    if r["condition"] == s["condition"] and r["is_target"]))
    code, out, err = cli(capsys, "compare", "--db", db, "--show", "tiny-exp", "--json")
    assert code == 0 and json.loads(out)["rows"] == card["rows"]
    code, out, _ = cli(capsys, "compare", "--db", db, "--target", TARGET, *conds, "--n-boot", 50)
    assert code == 0 and "weighted DPO" in out and "JS to target" in out
