"""``fairpp questions``, ``fairpp personas`` and ``fairpp generate``: the generation framework on the command line.

``fairpp questions build [--taxonomy FILE]``: expand the taxonomy + templates file into questions (idempotent).
``fairpp questions check [--taxonomy FILE]``: validate the file only.
``fairpp personas list | add NAME --portrayal TEXT [--description TEXT] | remove NAME``.
``fairpp generate --persona NAME|--all --base-url URL --model ID [--n N | --all-questions] [--concurrency C]``
asks the model to answer as each persona through the probe engine (live), or with ``--batch-file FILE``
writes the requests in the OpenAI Batch API format (``--submit`` also uploads, polls and ingests them).
``fairpp generate ingest FILE``: store the answers of a batch output file.
``fairpp generate scenarios --base-url URL --model ID [--n N | --all-questions] [--slice COLUMN=VALUE]``
asks the model to rewrite template questions as short vignettes per option, stored as question set
``scenario-generated`` (see :mod:`fairpp.generate.scenario`); answer them with
``fairpp generate --persona NAME --slice question_set=scenario-generated``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fairpp.cli import _store, emit, register
from fairpp.schema import FairppError


def _db_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


# -- questions --------------------------------------------------------------------------------------------
def _questions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["build", "check"], help="build: store the questions; check: validate only")
    p.add_argument("--taxonomy", type=Path, default=None, help="taxonomy + templates file, JSON or YAML "
                   "(default: the packaged fairpp/data/taxonomy.json)")
    _db_json(p)


def _cmd_questions(args: argparse.Namespace) -> int:
    from fairpp.generate.bank import expand, load_taxonomy, taxonomy_sha256
    from fairpp.store.personas import PersonaStore

    tax = load_taxonomy(args.taxonomy)  # validated before the database is opened
    questions = expand(tax)
    name = args.taxonomy.name if args.taxonomy else "packaged taxonomy"
    counts = {"topics": len(tax["topics"]), "problems": sum(len(c["problems"]) for t in tax["topics"]
                                                           for c in t["problem_categories"]),
              "groups": sum(len(y["groups"]) for y in tax["group_types"]), "dimensions": len(tax["dimensions"]),
              "templates": len(tax["templates"]), "questions": len(questions)}
    if args.action == "check":
        emit(args, {"taxonomy": name, "valid": True, **counts}, f"{name}: valid; {counts}")
        return 0
    with _store(args) as store:
        report = PersonaStore(store).add_questions(questions, label=f"question bank from {name}",
                                                 sha256=taxonomy_sha256(tax))
    emit(args, {"taxonomy": name, **counts, **report},
         f"{name}: {report['questions']:,} questions, {report['added']:,} added, {report['existing']:,} already stored")
    return 0


# -- personas ---------------------------------------------------------------------------------------------
def _personas_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="personas_command", required=True)
    _db_json(sub.add_parser("list", help="built-in and user-defined personas"))
    a = sub.add_parser("add", help="define a persona")
    a.add_argument("name")
    a.add_argument("--portrayal", required=True, help="who they are, in the second person ('You are ...')")
    a.add_argument("--description", default=None, help="one line shown beside the name")
    a.add_argument("--replace", action="store_true", help="overwrite a persona of that name")
    _db_json(a)
    r = sub.add_parser("remove", help="remove a user-defined persona (its answers stay)")
    r.add_argument("name")
    _db_json(r)


def _cmd_personas(args: argparse.Namespace) -> int:
    from fairpp.generate.personas import add_persona, list_personas, remove_persona

    with _store(args) as store:
        if args.personas_command == "list":
            rows = [{"name": p.name, "builtin": p.builtin, "description": p.description, "portrayal": p.portrayal}
                    for p in list_personas(store)]
            text = "\n".join(f"{'built-in' if r['builtin'] else 'custom  '}  {r['name']}"
                             + (f" — {r['description']}" if r["description"] else "") for r in rows)
            emit(args, rows, text)
        elif args.personas_command == "add":
            p = add_persona(store, args.name, args.portrayal, args.description, replace=args.replace)
            emit(args, {"name": p.name, "added": True}, f"added persona {p.name!r}")
        else:
            remove_persona(store, args.name)
            emit(args, {"name": args.name, "removed": True}, f"removed persona {args.name!r}")
    return 0


# -- generate ---------------------------------------------------------------------------------------------
def _generate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", nargs="?", choices=["ingest", "scenarios"],
                   help="ingest FILE: store a batch output file; scenarios: write vignette questions")
    p.add_argument("file", nargs="?", type=Path, help="the batch output file (with ingest)")
    p.add_argument("--persona", action="append", default=None, metavar="NAME", help="persona to role-play (repeat)")
    p.add_argument("--all", action="store_true", help="every built-in and user-defined persona")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1")
    p.add_argument("--model", default=None, help="model id the endpoint serves")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="NAME", help="variable holding the API key")
    p.add_argument("--n", type=int, default=300, help="questions per persona (stratified sample; default 300)")
    p.add_argument("--all-questions", action="store_true", help="every template question (overrides --n)")
    p.add_argument("--split", choices=["train", "test"], default=None, help="only this split")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE",
                   help="only these questions (repeat), e.g. question_set=scenario-generated or topic=...")
    p.add_argument("--concurrency", type=int, default=8, help="parallel requests, 1-64 (default 8)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--max-tokens", type=int, default=None,
                   help="reply length bound (default 5 for answers, 700 for scenarios)")
    p.add_argument("--no-logprobs", action="store_true", help="do not ask for logprobs")
    p.add_argument("--batch-file", type=Path, default=None, help="write the requests to this Batch API file")
    p.add_argument("--submit", action="store_true", help="with --batch-file: upload, poll and ingest the batch")
    p.add_argument("--poll", type=float, default=10.0, help="seconds between batch status checks (default 10)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _db_json(p)


def _cmd_generate(args: argparse.Namespace) -> int:
    from fairpp.generate import batch as batch_mod
    from fairpp.generate.run import plan_generation, run_generation, select_personas
    from fairpp.probe import Endpoint, ProbeParams, api_key_from_env

    if args.action == "ingest":
        if args.file is None:
            raise FairppError("ingest needs the batch output FILE: fairpp generate ingest FILE.")
        with _store(args) as store:
            report = batch_mod.ingest(store, args.file)
        emit(args, report, _ingest_text(report))
        return 0
    if not args.base_url or not args.model:
        raise FairppError("give --base-url URL and --model ID (or `fairpp generate ingest FILE`).")
    if args.submit and args.batch_file is None:
        raise FairppError("--submit needs --batch-file FILE (where the requests are written).")
    endpoint = Endpoint(args.base_url, args.model, api_key=api_key_from_env(args.api_key_env))
    from fairpp.analysis import parse_slices

    filters: dict[str, list[str]] = {"question_set": ["template"], **parse_slices(args.slice)}
    if args.split:
        filters["split"] = [args.split]
    if args.action == "scenarios":
        return _cmd_scenarios(args, endpoint, filters)
    with _store(args) as store:
        personas = select_personas(store, args.persona, all_personas=args.all)
        params = ProbeParams(temperature=args.temperature, logprobs=not args.no_logprobs,
                             **({} if args.max_tokens is None else {"max_tokens": args.max_tokens}))
        jobs = plan_generation(store, personas, endpoint, n=None if args.all_questions else args.n, filters=filters,
                               concurrency=args.concurrency, params=params)
        if args.batch_file is not None:
            written = batch_mod.write_requests(store, jobs, args.batch_file)
            payload: dict[str, Any] = {"batch_file": written}
            text = f"wrote {written['requests']} requests for {len(jobs)} persona(s) to {written['path']}"
            if args.submit:
                out = args.batch_file.with_name(args.batch_file.stem + ".output.jsonl")
                info = batch_mod.submit(endpoint, args.batch_file, out, poll_s=args.poll, on_status=lambda b: print(
                    f"batch {b.get('id')}: {b.get('status')}", file=sys.stderr))
                report = batch_mod.ingest(store, out)
                payload.update(batch_id=info.get("id"), output=str(out), ingest=report)
                text += "\n" + _ingest_text(report)
            emit(args, payload, text)
            return 0
        for job in jobs:
            print(f"fairpp generate {job.respondent}: {job.plan.describe()}", file=sys.stderr)
        from fairpp.probe.cli import _drive

        results = run_generation(store, jobs, drive=lambda run: _drive(run, progress=not args.no_progress))
    text = "\n".join(f"{r['respondent']}: {r['status']}, answered {r.get('answered', 0)}/{r.get('planned', '?')}"
                     + (f" ({r['error']})" if r.get("error") else "") for r in results)
    emit(args, results, text)
    return 0 if all(r["status"] in ("complete", "stopped") for r in results) else 1


def _cmd_scenarios(args: argparse.Namespace, endpoint: Any, filters: dict[str, list[str]]) -> int:
    from fairpp.generate.scenario import ScenarioConfig, plan_scenarios, run_scenarios
    from fairpp.probe import ProbeParams

    if args.persona or args.all or args.batch_file is not None:
        raise FairppError("fairpp generate scenarios writes questions: it takes no --persona/--all/--batch-file; "
                          "answer the scenarios afterwards with --slice question_set=scenario-generated.")
    params = ProbeParams(temperature=args.temperature, logprobs=False,
                         max_tokens=700 if args.max_tokens is None else args.max_tokens)
    cfg = ScenarioConfig(endpoint, n=None if args.all_questions else args.n, filters=filters,
                         concurrency=args.concurrency, params=params)
    progress = not args.no_progress and not args.json

    def show(p: dict[str, int]) -> None:
        print(f"\rfairpp generate scenarios: {p['done']}/{p['pending']} asked, {p['stored']} stored, "
              f"{p['failed']} failed", end="", file=sys.stderr, flush=True)

    with _store(args) as store:
        plan = plan_scenarios(store, cfg)
        print(f"fairpp generate scenarios {plan.run_id}: {plan.describe()}", file=sys.stderr)
        summary = run_scenarios(store, plan, on_progress=show if progress else None)
    if progress and len(plan.pending):
        print(file=sys.stderr)
    text = (f"{summary['run_id']}: {summary['status']}; {summary['stored']} scenario question(s) stored, "
            f"{summary['failed']} failed, {summary['already']} already written; question set "
            f"{summary['question_set']!r} now holds {summary['total_stored']} from this run"
            + (f" ({summary['error']})" if summary.get("error") else ""))
    emit(args, summary, text)
    return 0 if summary["status"] == "complete" else 1


def _ingest_text(r: dict[str, Any]) -> str:
    return (f"{r['lines']} result lines: {r['stored']} stored, {r['failed']} failed, {r['duplicate']} already stored\n"
            + "\n".join(f"  {v['respondent']}: {v['answered']}/{v['planned']} ({v['status']})" for v in r["runs"].values()))


register("questions", "build the question bank from the taxonomy + templates file", _questions_args, _cmd_questions)
register("personas", "list, add or remove role-play personas", _personas_args, _cmd_personas)
register("generate", "role-play personas on a model (live or Batch API), or write scenario questions", _generate_args,
         _cmd_generate)
