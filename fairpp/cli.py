"""The ``fairpp`` console command. ``main(argv) -> int``; ``--json`` prints one JSON document on stdout."""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fairpp import analysis
from fairpp.schema import FairppError
from fairpp.store import Store

__all__ = ["main", "build_parser", "register"]

log = logging.getLogger("fairpp")

# Extra sub-commands from other modules: (name, help, add_arguments, handler).
_EXTRA: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = []


def register(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
             handler: Callable[[argparse.Namespace], int]) -> None:
    """Add a sub-command (used by the probe, generation and reweighting modules)."""
    _EXTRA.append((name, help, add_arguments, handler))


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    ap = argparse.ArgumentParser(prog="fairpp", description="Fair-PP Explorer: load, analyse and probe.")
    ap.add_argument("-v", "--verbose", action="store_true", help="log progress on stderr")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the synthetic demo dataset (not the paper's results)")
    _common(p)
    p.add_argument("--seed", type=int, default=None)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("load", help="load CSV/Parquet files (Fair-PP or tidy layout)")
    _common(p)
    p.add_argument("paths", nargs="+", type=Path)
    p.add_argument("--append", action="store_true", help="add to the loaded dataset instead of replacing it")
    p.set_defaults(func=_cmd_load)

    p = sub.add_parser("fetch", help="download tools-o/Fair-PP from the Hugging Face hub and load it")
    _common(p)
    p.add_argument("--simulation", action="store_true", help="also fetch tools-o/Fair-PP-simulation")
    p.add_argument("--repo", default="tools-o/Fair-PP")
    p.add_argument("--append", action="store_true")
    p.set_defaults(func=_cmd_fetch)

    p = sub.add_parser("info", help="what is loaded")
    _common(p)
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("positions", help="positions per respondent and dimension with 95%% intervals")
    _common(p)
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE")
    p.set_defaults(func=_cmd_positions)

    p = sub.add_parser("distances", help="Jensen-Shannon distances between respondents")
    _common(p)
    p.add_argument("--base", choices=["2", "e"], default="2", help="log base: 2 (default, in [0,1]) or e (paper)")
    p.add_argument("--dimension", type=int, choices=[1, 2, 3, 4, 5], default=None)
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE")
    p.set_defaults(func=_cmd_distances)

    p = sub.add_parser("agreement", help="question-level agreement and Cohen's kappa")
    _common(p)
    p.add_argument("--dimension", type=int, choices=[1, 2, 3, 4, 5], default=None)
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE")
    p.set_defaults(func=_cmd_agreement)

    for name, help_text, add_args, handler in _EXTRA:
        p = sub.add_parser(name, help=help_text)
        add_args(p)
        p.set_defaults(func=handler)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 usage or input error)."""
    _load_plugins()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except FairppError as exc:
        print(f"fairpp {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _load_plugins() -> None:
    """Import the modules that register extra sub-commands (each optional while being built)."""
    import importlib

    for mod in ("fairpp.probe.cli", "fairpp.generate.cli", "fairpp.reweight_cli", "fairpp.report_cli",
                "fairpp.figure_cli", "fairpp.story_cli", "fairpp.train.cli"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name is None or not mod.startswith(exc.name):
                raise


def emit(args: argparse.Namespace, payload: Any, text: str) -> None:
    """Print JSON (``--json``) or the human-readable text."""
    if getattr(args, "json", False):
        print(json.dumps(_jsonable(payload), ensure_ascii=False))
    else:
        print(text)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return None if math.isnan(obj) else float(obj)
    return obj


def _store(args: argparse.Namespace, *, read_only: bool = False) -> Store:
    from fairpp.config import settings

    path = Path(args.db) if args.db is not None else settings().db
    if read_only:
        if not path.exists():
            raise FairppError(f"no database at {path}. Run `fairpp demo` or `fairpp load FILE` first, "
                              "or point --db / FAIRPP_DB at an existing file.")
        return Store(path, read_only=True)
    return Store(path)


def _report(args: argparse.Namespace, store: Store, report: dict[str, Any]) -> int:
    info = store.info()
    emit(args, {"loaded": report, "info": info},
         f"loaded {report['questions']} questions, {report['answers']} answers from {info['source']['label']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from fairpp.sources.demo import build_demo

    batch = build_demo() if args.seed is None else build_demo(seed=args.seed)
    with _store(args) as store:
        return _report(args, store, store.load(batch))


def _cmd_load(args: argparse.Namespace) -> int:
    from fairpp.sources.files import read_files

    batch = read_files(args.paths)
    with _store(args) as store:
        return _report(args, store, store.load(batch, append=args.append))


def _cmd_fetch(args: argparse.Namespace) -> int:
    from fairpp.sources.hub import load_from_hub

    with _store(args) as store:
        report = load_from_hub(store, repo=args.repo, simulation=args.simulation, append=args.append)
        return _report(args, store, report)


def _cmd_info(args: argparse.Namespace) -> int:
    with _store(args, read_only=True) as store:
        info = store.info()
    src = info["source"]
    text = (f"source: {src['label']} ({src['kind']}{', SYNTHETIC' if src['synthetic'] else ''})\n"
            f"questions: {info['questions']}\nanswers: {info['answers']}\n"
            f"respondents: {', '.join(f'{k} {v}' for k, v in info['respondents'].items())}")
    emit(args, info, text)
    return 0


def _cmd_positions(args: argparse.Namespace) -> int:
    filters = analysis.parse_slices(args.slice)
    with _store(args, read_only=True) as store:
        pos = analysis.positions(store, filters)
    cols = ["respondent", "kind", "dimension", "position", "ci_low", "ci_high", "na_rate", "n"]
    rows = pos[cols].to_dict("records")
    emit(args, rows, pos[cols].round(3).to_string(index=False))
    return 0


def _square(args: argparse.Namespace, result: dict[str, Any], keys: Sequence[str]) -> int:
    payload = {"respondents": result["respondents"], **{k: result[k] for k in keys},
               "n_shared": result["n_shared"]}
    if "base" in result:
        payload["base"] = result["base"]
    text = "\n\n".join(f"{k}:\n{analysis.matrix_frame(result, k).round(3).to_string()}" for k in keys)
    emit(args, payload, text)
    return 0


def _cmd_distances(args: argparse.Namespace) -> int:
    base = 2.0 if args.base == "2" else math.e
    with _store(args, read_only=True) as store:
        result = analysis.distances(store, analysis.parse_slices(args.slice), base=base, dimension=args.dimension)
    return _square(args, result, ["js_distance"])


def _cmd_agreement(args: argparse.Namespace) -> int:
    with _store(args, read_only=True) as store:
        result = analysis.agreement(store, analysis.parse_slices(args.slice), dimension=args.dimension)
    return _square(args, result, ["agreement", "kappa"])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
