"""``fairpp reweight``: tiers, weights and a weighted DPO pair file for one target persona.

``fairpp reweight --target NAME [--alpha A] [--beta B] --out FILE [--format jsonl|parquet]
[--slice COLUMN=VALUE ...] [--persona NAME ...] [--db PATH] [--json]`` writes FILE (TRL's DPO layout plus
``weight`` and question metadata) and ``FILE.card.json``; ``--json`` prints K, the tier counts, the weight
of each tier, the number of pairs and the output path as one JSON document.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fairpp.cli import _store, emit, register


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", required=True, help="target persona (name, case-insensitive, or a unique prefix)")
    p.add_argument("--alpha", type=float, default=1.0, help="tier exponent alpha >= 0 (default 1, as in the paper)")
    p.add_argument("--beta", type=float, default=1.0, help="tier-size exponent beta >= 0 (default 1, as in the paper)")
    p.add_argument("--out", type=Path, required=True, help="pair file to write (.jsonl or .parquet)")
    p.add_argument("--format", choices=["jsonl", "parquet"], default=None, help="default: from the --out suffix")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE", help="only these questions")
    p.add_argument("--persona", action="append", default=None, metavar="NAME",
                   help="personas that define the tiers (repeat; default: every built-in persona loaded)")
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _run(args: argparse.Namespace) -> int:
    from fairpp import analysis, reweight

    filters = analysis.parse_slices(args.slice)
    fmt = reweight.output_format(args.out, args.format)  # before any work
    with _store(args, read_only=True) as store:
        result, pairs = reweight.from_store(store, target=args.target, alpha=args.alpha, beta=args.beta,
                                            filters=filters, personas=args.persona)
        source = reweight.source_info(store)
    card = reweight.export_pairs(pairs, args.out, result=result, source=source, filters=filters, fmt=fmt)
    effect = reweight.weighting_effect(result)
    summary = result.summary()
    payload = {"out": str(args.out), "card": str(args.out) + ".card.json", "format": card["file"]["format"],
               "target": result.target, "alpha": result.alpha, "beta": result.beta, "K": result.K,
               "records": summary["records"], "excluded": summary["excluded"], "pairs": len(pairs),
               "tier_counts": summary["tier_counts"], "tier_weights": summary["tier_weights"],
               "synthetic": source["synthetic"],
               "effect": effect[["respondent", "kind", "A", "B", "C", "js_before", "js_after"]].to_dict("records")}
    tiers = result.tiers[["tier", "count", "weight", "share"]].to_string(index=False, float_format=lambda x: f"{x:.6g}")
    text = (f"{'SYNTHETIC data. ' if source['synthetic'] else ''}target {result.target}, K={result.K}, "
            f"alpha={result.alpha:g}, beta={result.beta:g}: {summary['records']} questions answered by every persona "
            f"({summary['excluded']} left out), {len(pairs)} pairs -> {args.out}\n{tiers}\n\n"
            f"answer distribution and JS distance (base 2) to the training set before/after weighting:\n"
            f"{effect.round(3).to_string(index=False)}")
    emit(args, payload, text)
    return 0


register("reweight", "weighted DPO pairs for one target persona (tiers, weights, run card)", _arguments, _run)
