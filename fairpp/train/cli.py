"""``fairpp train``, ``fairpp evaluate`` and ``fairpp compare`` (the training extra is imported only when run).

::

    fairpp train --pairs FILE --base MODEL --out DIR [--weighted | --unweighted] [--lora] [--epochs N]
                 [--beta B] [--lr LR] [--max-steps N] [--batch-size N] [--json]
    fairpp evaluate --model MODEL_OR_DIR --respondent NAME [--persona P | --system-prompt TEXT]
                    [--condition LABEL] [--split test|train|all] [--limit N] [--db PATH] [--json]
    fairpp compare --target PERSONA --condition LABEL=RESPONDENT ... [--split test] [--n-boot N]
                   [--base 2|e] [--save NAME] [--db PATH] [--json]
    fairpp compare --list | --show NAME [--db PATH] [--json]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from fairpp.cli import _store, emit, register


def _db_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


# -- train ---------------------------------------------------------------------------------------------
def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", type=Path, required=True, help="pair file from `fairpp reweight` (.jsonl or .parquet)")
    p.add_argument("--base", required=True, help="causal LM: a local directory, or a hub id while online")
    p.add_argument("--out", type=Path, required=True, help="directory for the adapter/model and the run card")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--weighted", dest="weighted", action="store_true", default=True,
                   help="weight each pair's loss by its reweighting weight (default)")
    g.add_argument("--unweighted", dest="weighted", action="store_false", help="plain DPO on the same pairs")
    p.add_argument("--lora", action="store_true", help="train a LoRA adapter (PEFT) instead of the whole model")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--beta", type=float, default=0.1, help="DPO beta (default 0.1)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (default 5e-6, or 5e-5 with --lora)")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many optimiser steps")
    p.add_argument("--batch-size", type=int, default=8, help="pairs per device batch (default 8)")
    p.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default 1)")
    p.add_argument("--max-length", type=int, default=1024, help="max tokens of prompt + completion (default 1024)")
    p.add_argument("--weight-norm", choices=["batch", "dataset"], default="batch",
                   help="batch: sum w*loss / sum w per batch (default); dataset: mean of w*loss, w of mean 1")
    p.add_argument("--prompt-format", choices=["auto", "chat", "plain"], default="auto",
                   help="chat template (auto when the tokenizer has one) or plain text")
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--lora-alpha", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 weights and autocast (default: on a GPU that supports it)")
    p.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None,
                   help="trade compute for memory (default: on a GPU)")
    p.add_argument("--precompute-ref", action="store_true", help="compute reference log-probs once, before training")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    p.add_argument("--json", action="store_true", help="print the run card as one JSON document on stdout")


def _train(args: argparse.Namespace) -> int:
    from fairpp.train.run import TrainConfig, train

    cfg = TrainConfig(pairs=args.pairs, base=args.base, out=args.out, weighted=args.weighted, lora=args.lora,
                      epochs=args.epochs, beta=args.beta, lr=args.lr, max_steps=args.max_steps,
                      batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
                      weight_norm=args.weight_norm, seed=args.seed, prompt_format=args.prompt_format,
                      lora_r=args.lora_r, lora_alpha=args.lora_alpha, bf16=args.bf16,
                      gradient_checkpointing=args.gradient_checkpointing, precompute_ref=args.precompute_ref,
                      overwrite=args.overwrite)

    def progress(entry: dict[str, Any]) -> None:
        if not args.json:
            print(f"step {entry['step']}: loss {entry['loss']:.4f}", file=sys.stderr, flush=True)

    card = train(cfg, progress=progress)
    text = (f"{card.get('warning', '')}\n" if card.get("warning") else "") + (
        f"{card['method']} of {card['base']} on {card['pairs']['name']} ({card['pairs']['rows']} pairs): "
        f"{card['steps']} steps, final loss {card['final_loss']:.4f} -> {args.out} (run card fairpp_train_card.json)")
    emit(args, card, text)
    return 0


# -- evaluate ------------------------------------------------------------------------------------------
def _evaluate_args(p: argparse.ArgumentParser) -> None:
    _db_json(p)
    p.add_argument("--model", required=True, help="a directory `fairpp train` wrote, or a base model (path or id)")
    p.add_argument("--respondent", required=True, help="name the answers are stored under (kind custom)")
    p.add_argument("--base", default=None, help="base model of an adapter (default: from its run card)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--persona", default=None, help="role-play this persona (the probe's system prompt)")
    g.add_argument("--system-prompt", default=None, help="a custom system prompt")
    p.add_argument("--condition", default=None, help="label kept in the evaluation card (e.g. role-play)")
    p.add_argument("--split", choices=["test", "train", "all"], default="test",
                   help="questions to answer (default test); training questions are always left out")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE", help="only these questions")
    p.add_argument("--exclude-pairs", type=Path, default=None, help="also leave out the questions of this pair file")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (by id)")
    p.add_argument("--batch-size", type=int, default=16)


def _evaluate(args: argparse.Namespace) -> int:
    from fairpp import analysis
    from fairpp.train.evaluate import evaluate_model

    def progress(done: int, total: int) -> None:
        if not args.json:
            print(f"\rscored {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    filters = analysis.parse_slices(args.slice)
    with _store(args) as store:
        report = evaluate_model(store, args.model, respondent=args.respondent, persona=args.persona,
                                system_prompt=args.system_prompt, split=None if args.split == "all" else args.split,
                                filters=filters, exclude_pairs=args.exclude_pairs, base=args.base, limit=args.limit,
                                batch_size=args.batch_size, condition=args.condition, progress=progress)
    counts = report["answer_counts"]
    text = (f"{report['respondent']}: {report['questions']} questions answered "
            f"(A {counts['A']}, B {counts['B']}, C {counts['C']}; mean letter mass {report['mean_letter_mass']:.3f}), "
            f"{report['excluded_training_questions']} training questions left out; stored as kind custom")
    emit(args, {k: v for k, v in report.items() if k != "train_card"} | {"train_run": (report.get("train_card") or {})
                                                                        .get("run_id")}, text)
    return 0


# -- compare -------------------------------------------------------------------------------------------
def _compare_args(p: argparse.ArgumentParser) -> None:
    _db_json(p)
    p.add_argument("--target", default=None, help="target persona (name, case-insensitive, or a unique prefix)")
    p.add_argument("--condition", action="append", default=[], metavar="LABEL=RESPONDENT",
                   help="a condition and the stored respondent that answered for it (repeat; e.g. base=my-base)")
    p.add_argument("--persona", action="append", default=None, metavar="NAME",
                   help="personas to compare with (repeat; default every built-in persona loaded)")
    p.add_argument("--split", choices=["test", "train", "all"], default="test", help="questions (default test)")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE", help="only these questions")
    p.add_argument("--base", choices=["2", "e"], default="2", help="JS log base: 2 (default, in [0,1]) or e (paper)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates for the intervals (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, metavar="NAME", help="store the comparison as experiment NAME")
    p.add_argument("--list", action="store_true", help="list stored experiments")
    p.add_argument("--show", default=None, metavar="NAME", help="print a stored experiment")


def _compare(args: argparse.Namespace) -> int:
    from fairpp import analysis
    from fairpp.store import experiments
    from fairpp.train.compare import compare_conditions
    from fairpp.train.data import TrainError

    if args.list or args.show:
        with _store(args, read_only=True) as store:
            if args.list:
                df = experiments.list_experiments(store)
                emit(args, df.astype({"created_at": str}).to_dict("records"),
                     df.to_string(index=False) if not df.empty else "no stored experiments")
                return 0
            card = experiments.get_experiment(store, args.show)
        emit(args, card, _compare_text(card))
        return 0
    if not args.target or not args.condition:
        raise TrainError("fairpp compare needs --target PERSONA and at least one --condition LABEL=RESPONDENT.")
    conds = []
    for item in args.condition:
        label, sep, resp = item.partition("=")
        if not sep or not label.strip() or not resp.strip():
            raise TrainError(f"--condition {item!r}: write LABEL=RESPONDENT, e.g. --condition 'weighted DPO=wdpo'.")
        conds.append((label.strip(), resp.strip()))
    with _store(args, read_only=args.save is None) as store:
        card = compare_conditions(store, target=args.target, conditions=conds, personas=args.persona,
                                  split=None if args.split == "all" else args.split,
                                  filters=analysis.parse_slices(args.slice), base=2.0 if args.base == "2" else math.e,
                                  n_boot=args.n_boot, seed=args.seed)
        if args.save:
            experiments.save_experiment(store, args.save, card)
            card["saved_as"] = args.save
    emit(args, card, _compare_text(card))
    return 0


def _fmt(row: dict[str, Any], key: str) -> str:
    v, lo, hi = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    return "n/a" if v is None else f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None else f"{v:.3f}"


def _compare_text(card: dict[str, Any]) -> str:
    lines = [f"target {card['target']}: {card['n_questions']} questions answered by every condition and persona; "
             f"JS distance base {card['base']}, {int(card['level'] * 100)}% bootstrap intervals ({card['n_boot']})"]
    for row in card["summary"]:
        lines.append(f"  {row['condition']:<14} JS to target {_fmt(row, 'js_target')}  to others "
                     f"{_fmt(row, 'js_others')}  gap {_fmt(row, 'gap')}  agreement with target "
                     f"{_fmt(row, 'agreement_target')}  nearest {row['nearest']}")
    return "\n".join(lines)


register("train", "(weighted) DPO on a pair file from fairpp reweight (needs the training extra)", _train_args, _train)
register("evaluate", "a local model answers held-out questions; stored as a respondent (needs the training extra)",
         _evaluate_args, _evaluate)
register("compare", "base / role-play / DPO / weighted DPO: JS distance and agreement to every persona",
         _compare_args, _compare)
