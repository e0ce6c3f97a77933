"""``fairpp probe``, ``fairpp probe-pack`` and ``fairpp probe-runs``: probing from the command line.

``fairpp probe --base-url URL --model ID`` asks a stratified sample of questions (300 by default),
shows a progress bar on stderr and prints where the model lands; ``--json`` prints only the run
summary on stdout. Running the same command again resumes the run and asks nothing already answered.
The key comes from ``OPENAI_API_KEY`` or the variable named by ``--api-key-env``; it is never stored.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from fairpp.cli import register
from fairpp.schema import FairppError

log = logging.getLogger(__name__)


def _db_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print only the JSON result on stdout")


def _store(args: argparse.Namespace) -> Any:
    from fairpp.config import settings
    from fairpp.store import Store

    return Store(Path(args.db) if args.db is not None else settings().db)


def _probe_args(p: argparse.ArgumentParser) -> None:
    from fairpp.probe.sampling import DEFAULT_SAMPLE_SEED

    g = p.add_argument_group("endpoint")
    g.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    g.add_argument("--model", required=True, help="model id the endpoint serves")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                   help="environment variable holding the API key (default OPENAI_API_KEY; never stored)")
    g.add_argument("--header", action="append", default=[], metavar="NAME=VALUE",
                   help="extra request header (its value is never stored)")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    g.add_argument("--check", action="store_true", help="only test the connection and report what it supports")
    g = p.add_argument_group("what to ask")
    g.add_argument("--n", type=int, default=300, help="sample size (stratified; default 300)")
    g.add_argument("--all", action="store_true", help="ask every question (overrides --n)")
    g.add_argument("--sample-seed", type=int, default=DEFAULT_SAMPLE_SEED)
    g.add_argument("--split", choices=["train", "test"], default=None, help="only this split")
    g.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE",
                   help="only these questions (repeatable), e.g. topic=\"fair rewards\" or "
                        "question_set=scenario-generated (default question set: template)")
    g.add_argument("--persona", default=None, help="role-play this persona (system prompt)")
    g.add_argument("--system-prompt", default=None, help="a custom system prompt")
    g.add_argument("--repeats", type=int, default=1, metavar="K", help="ask each question K times")
    g.add_argument("--swap-share", type=float, default=0.0, metavar="S",
                   help="share of questions asked with options A and B swapped (position bias)")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--max-tokens", type=int, default=5)
    g.add_argument("--seed", type=int, default=None, help="request seed passed to the endpoint")
    g.add_argument("--no-logprobs", action="store_true", help="do not ask for logprobs")
    g.add_argument("--tag", default=None, help="start a separate run (the same tag again resumes it)")
    g.add_argument("--label", default=None, help="respondent name for the run")
    g = p.add_argument_group("how")
    g.add_argument("--concurrency", type=int, default=8, help="parallel requests, 1-64 (default 8)")
    g.add_argument("--max-attempts", type=int, default=6, help="tries per question (default 6)")
    g.add_argument("--max-requests", type=int, default=None, help="stop after this many requests")
    g.add_argument("--max-tokens-budget", type=int, default=None, help="stop after this many tokens")
    g.add_argument("--max-cost", type=float, default=None, help="stop after this much money (needs prices)")
    g.add_argument("--price-in", type=float, default=None, help="price per million prompt tokens")
    g.add_argument("--price-out", type=float, default=None, help="price per million completion tokens")
    g.add_argument("--target-width", type=float, default=None,
                   help="stop once every dimension's 95%% interval is at most this wide")
    g.add_argument("--deadline", type=float, default=None, help="stop after this many seconds")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    _db_json(p)


def _config(args: argparse.Namespace) -> Any:
    from fairpp.probe import Budget, Endpoint, ProbeConfig, ProbeParams, RetryPolicy, api_key_from_env, parse_headers

    key = api_key_from_env(args.api_key_env)
    if key is None and args.api_key_env != "OPENAI_API_KEY":
        raise FairppError(f"--api-key-env {args.api_key_env}: that environment variable is empty; export it first.")
    headers = parse_headers(args.header)
    endpoint = Endpoint(args.base_url, args.model, api_key=key, headers=headers, timeout=args.timeout)
    filters: dict[str, list[str]] = {"question_set": ["template"]}
    from fairpp.analysis import parse_slices

    filters.update(parse_slices(args.slice))  # a question_set given here replaces the template default
    if args.split:
        filters["split"] = [args.split]
    return endpoint, ProbeConfig(
        endpoint, n=None if args.all else args.n, sample_seed=args.sample_seed, repeats=args.repeats,
        swap_share=args.swap_share, persona=args.persona, system_prompt=args.system_prompt,
        params=ProbeParams(temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
                           logprobs=not args.no_logprobs),
        concurrency=args.concurrency, filters=filters, retry=RetryPolicy(max_attempts=args.max_attempts),
        budget=Budget(max_requests=args.max_requests, max_tokens=args.max_tokens_budget, max_cost=args.max_cost,
                      price_in=args.price_in, price_out=args.price_out, target_width=args.target_width,
                      deadline_s=args.deadline),
        label=args.label, fresh=args.tag)


def _quiet_transport() -> None:
    for name in ("httpx2", "httpcore2", "httpx", "httpcore", "openai"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _cmd_probe(args: argparse.Namespace) -> int:
    from fairpp.probe import ProbeRun, check_connection, plan_probe

    _quiet_transport()
    endpoint, config = _config(args)
    if args.check:
        report = check_connection(endpoint, timeout=args.timeout)
        _emit(args, report.as_dict(), report.describe())
        return 0 if report.ok else 1
    with _store(args) as store:
        plan = plan_probe(store, config)
        print(f"fairpp probe {plan.run_id}: {plan.describe()}", file=sys.stderr)
        run = ProbeRun(store, plan)
        _drive(run, progress=not args.no_progress)
        summary = run.summary
        if summary is None:
            raise FairppError(f"probe run {run.run_id} failed: {run.snapshot().error}")
    _emit(args, summary, _text(summary))
    if summary["status"] in ("complete", "stopped"):
        return 0
    print(f"fairpp probe: run {summary['run_id']} is {summary['status']}"
          + (f" ({summary['error']})" if summary.get("error") else "")
          + "; run the same command again to resume it.", file=sys.stderr)
    return 1


def _drive(run: Any, *, progress: bool) -> None:
    """Start the run and show a progress bar on stderr until it ends; Ctrl-C cancels it."""
    from tqdm import tqdm

    bar = tqdm(total=len(run.plan.tasks), file=sys.stderr, disable=not progress, unit="q", dynamic_ncols=True,
               desc=run.run_id)
    run.start()
    try:
        while True:
            ended = run.wait(0.2)
            s = run.snapshot()
            bar.n = s.done
            bar.set_postfix(cached=s.cached, failed=s.failed, refused=s.refused, tokens=s.tokens, refresh=False)
            bar.refresh()
            if ended:
                break
    except KeyboardInterrupt:
        run.cancel()
        run.wait()
    finally:
        bar.close()


def _text(s: dict[str, Any]) -> str:
    lines = [f"run {s['run_id']} ({s['respondent']}): {s['status']}"
             + (f", stopped by {s['stop_reason']}" if s.get("stop_reason") else ""),
             f"answered {s['answered']}/{s['planned']} (cached {s['cached']}, refused {s['refused']}, unparsed "
             f"{s['unparsed']}), failed {s['failed']}; {s['requests']} requests, "
             f"{s['prompt_tokens'] + s['completion_tokens']} tokens",
             "dimension  position  95% interval      N/A rate   n"]
    for p in s["positions"]:
        pos = "   -  " if p["position"] is None else f"{p['position']:.3f}"
        ci = "      -       " if p["ci_low"] is None else f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]"
        lines.append(f"{p['dimension']:>9}  {pos:>8}  {ci}  {p['na_rate'] or 0:>8.3f}  {p['n'] or 0:>4.0f}")
    for k in ("nearest_persona", "nearest_model"):
        if s.get(k):
            lines.append(f"{k.replace('_', ' ')}: {s[k]['respondent']} (distance {s[k]['distance']:.3f})")
    lines.append(f"({s['definition']})")
    return "\n".join(lines)


def _emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    from fairpp.cli import emit

    emit(args, payload, text)


def _pack_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="pack_command", required=True)
    e = sub.add_parser("export", help="write a run to one file")
    e.add_argument("run_id")
    e.add_argument("file", type=Path, nargs="?", default=None,
                   help="output file (default RUN_ID.fairpp-probe.json.gz)")
    _db_json(e)
    i = sub.add_parser("import", help="add a run from a probe pack")
    i.add_argument("file", type=Path)
    i.add_argument("--replace", action="store_true", help="overwrite the run if it is already here")
    _db_json(i)


def _cmd_pack(args: argparse.Namespace) -> int:
    from fairpp.probe import default_pack_name, export_pack, import_pack

    with _store(args) as store:
        if args.pack_command == "export":
            path = export_pack(store, args.run_id, args.file or Path(default_pack_name(args.run_id)))
            _emit(args, {"run_id": args.run_id, "file": str(path)}, f"wrote {path}")
        else:
            run_id = import_pack(store, args.file, replace=args.replace)
            _emit(args, {"run_id": run_id, "file": str(args.file)}, f"imported run {run_id} from {args.file}")
    return 0


def _runs_args(p: argparse.ArgumentParser) -> None:
    _db_json(p)


def _cmd_runs(args: argparse.Namespace) -> int:
    from fairpp.probe import list_runs

    with _store(args) as store:
        runs = list_runs(store)
    cols = [c for c in ("run_id", "respondent", "model", "endpoint_host", "status", "answered", "n_planned",
                        "started_at", "ended_at") if c in runs.columns]
    rows = json.loads(runs[cols].to_json(orient="records", date_format="iso")) if len(runs) else []
    _emit(args, rows, runs[cols].to_string(index=False) if len(runs) else "no probe runs yet")
    return 0


register("probe", "probe a model through an OpenAI-compatible endpoint", _probe_args, _cmd_probe)
register("probe-pack", "export a probe run to one file, or import one", _pack_args, _cmd_pack)
register("probe-runs", "list probe runs", _runs_args, _cmd_runs)
