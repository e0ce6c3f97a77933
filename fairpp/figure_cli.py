"""``fairpp figure``: one of the report's figures as a PNG or SVG file at presentation size.

``fairpp figure NAME --out FILE.png|FILE.svg [--width W --height H] [--scale S] [--slice COLUMN=VALUE ...]
[--target NAME [--alpha A --beta B]] [--db PATH] [--json]``. ``NAME`` is one of the report's figures
(:data:`fairpp.report.FIGURES`); the format follows the file's suffix. ``--json`` prints the path, the format,
the size and the byte count.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fairpp.cli import _store, emit, register
from fairpp.schema import FairppError


def _arguments(p: argparse.ArgumentParser) -> None:
    from fairpp.report import FIGURES

    p.add_argument("name", choices=list(FIGURES), metavar="NAME", help=f"the figure: {', '.join(FIGURES)}")
    p.add_argument("--out", type=Path, required=True, help="image file to write: .png or .svg")
    p.add_argument("--width", type=int, default=1600, help="image width in pixels (default 1600)")
    p.add_argument("--height", type=int, default=900, help="image height in pixels (default 900)")
    p.add_argument("--scale", type=float, default=1.5, help="zoom of text and markers (default 1.5)")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE", help="only these questions")
    p.add_argument("--base", choices=["2", "e"], default="2", help="JS distance log base (default 2)")
    p.add_argument("--target", default=None, help="target persona (the reweighting figures need one)")
    p.add_argument("--alpha", type=float, default=1.0, help="reweighting tier exponent (default 1)")
    p.add_argument("--beta", type=float, default=1.0, help="reweighting tier-size exponent (default 1)")
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _run(args: argparse.Namespace) -> int:
    from fairpp import analysis
    from fairpp.figures.export import FORMATS, export_figure
    from fairpp.report import report_figures

    fmt = Path(args.out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise FairppError(f"--out {args.out}: the file must end in .png or .svg")
    filters = analysis.parse_slices(args.slice)
    with _store(args, read_only=True) as store:
        if store.is_empty():
            raise FairppError("nothing is loaded; run `fairpp demo` or `fairpp load FILE` first")
        fig = report_figures(store, [args.name], filters=filters, reweight_target=args.target, alpha=args.alpha,
                             beta=args.beta, base=args.base)[args.name]
        synthetic = bool(store.info()["source"]["synthetic"])
    data = export_figure(fig, fmt=fmt, width=args.width, height=args.height, scale=args.scale)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    payload = {"path": str(out), "figure": args.name, "format": fmt, "width": args.width, "height": args.height,
               "bytes": len(data), "synthetic": synthetic}
    emit(args, payload, f"{'SYNTHETIC data. ' if synthetic else ''}wrote {out} ({args.width}x{args.height} "
                        f"{fmt}, {len(data):,} bytes)")
    return 0


register("figure", "one of the report's figures as PNG or SVG at presentation size", _arguments, _run)
