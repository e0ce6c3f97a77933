"""``fairpp report``: one self-contained HTML report (and optionally a PDF through headless Chromium).

``fairpp report --out FILE.html [--sections S ...] [--slice COLUMN=VALUE ...] [--target NAME [--alpha A]
[--beta B]] [--base 2|e] [--pdf FILE.pdf] [--db PATH] [--json]``; ``--json`` prints the path, the sections
and the size in bytes (and the PDF's, when one was written).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from fairpp.cli import _store, emit, register
from fairpp.schema import FairppError

#: The Chromium binary used for ``--pdf`` (Debian's package; FAIRPP_CHROMIUM overrides).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """The Chromium binary, or None when there is none."""
    path = os.environ.get("FAIRPP_CHROMIUM", "/usr/bin/chromium")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def write_pdf(html_path: Path, pdf_path: Path, *, timeout_ms: int = 120_000) -> int:
    """Print the report to PDF with headless Chromium, networking off; returns the PDF's size in bytes."""
    exe = chromium_path()
    if exe is None:
        raise FairppError("--pdf needs Chromium (`apt-get install -y chromium`, or point FAIRPP_CHROMIUM at one)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise FairppError("--pdf needs the Python package playwright (`pip install playwright`)") from exc
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 900}, offline=True)
            page = context.new_page()
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
                       else route.abort())
            page.goto(Path(html_path).resolve().as_uri(), wait_until="load", timeout=timeout_ms)
            page.wait_for_function("""() => [...document.querySelectorAll('.js-plotly-plot')].every(
                el => el.querySelector('.main-svg'))""", timeout=timeout_ms)
            page.emulate_media(media="print")
            page.pdf(path=str(pdf_path), format="A4", print_background=True,
                     margin={"top": "12mm", "bottom": "12mm", "left": "8mm", "right": "8mm"})
        finally:
            browser.close()
    return Path(pdf_path).stat().st_size


def _arguments(p: argparse.ArgumentParser) -> None:
    from fairpp.report import SECTIONS

    p.add_argument("--out", type=Path, required=True, help="HTML file to write")
    p.add_argument("--sections", nargs="+", default=None, metavar="SECTION",
                   help=f"sections to include (default: all but reweight): {', '.join(SECTIONS)}; "
                        "commas also separate")
    p.add_argument("--slice", action="append", default=[], metavar="COLUMN=VALUE", help="only these questions")
    p.add_argument("--base", choices=["2", "e"], default="2", help="JS distance log base (default 2, in [0,1])")
    p.add_argument("--target", default=None, help="target persona: adds the reweighting summary")
    p.add_argument("--alpha", type=float, default=1.0, help="reweighting tier exponent (default 1)")
    p.add_argument("--beta", type=float, default=1.0, help="reweighting tier-size exponent (default 1)")
    p.add_argument("--title", default="Fair-PP Explorer report")
    p.add_argument("--pdf", type=Path, default=None, help="also print the report to this PDF (headless Chromium)")
    p.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _run(args: argparse.Namespace) -> int:
    from fairpp import analysis
    from fairpp.report import _sections, build_report

    sections = None
    if args.sections is not None:
        sections = [s for item in args.sections for s in item.split(",") if s.strip()]
    chosen = _sections(sections, args.target)  # check before any work
    filters = analysis.parse_slices(args.slice)
    with _store(args, read_only=True) as store:
        doc = build_report(store, sections=sections, filters=filters, title=args.title, base=args.base,
                           reweight_target=args.target, alpha=args.alpha, beta=args.beta)
        synthetic = bool(store.info()["source"]["synthetic"])
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    payload = {"path": str(out), "sections": chosen, "bytes": out.stat().st_size, "synthetic": synthetic}
    if args.pdf is not None:
        payload["pdf"] = str(args.pdf)
        payload["pdf_bytes"] = write_pdf(out, args.pdf)
    text = (f"{'SYNTHETIC data. ' if synthetic else ''}wrote {out} ({payload['bytes']:,} bytes; sections: "
            f"{', '.join(chosen)})" + (f"\nwrote {args.pdf} ({payload['pdf_bytes']:,} bytes)" if args.pdf else ""))
    emit(args, payload, text)
    return 0


register("report", "one self-contained HTML report (optional PDF)", _arguments, _run)
