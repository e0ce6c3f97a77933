"""The self-contained HTML report: no external URLs, the synthetic label, the CLI's numbers, and it draws offline."""
from __future__ import annotations

import html as htmlmod
import json
import re
from pathlib import Path

import pytest

from conftest import small_wide
from fairpp.cli import main
from fairpp.figures import SYNTHETIC_BANNER
from fairpp.report import build_report
from fairpp.sources.files import read_files
from fairpp.store import Store


def _file_db(tmp_path: Path) -> Path:
    csv = tmp_path / "fairpp_train.csv"
    small_wide().to_csv(csv, index=False)
    db = tmp_path / "files.duckdb"
    with Store(db) as store:
        store.load(read_files([csv]))
    return db


@pytest.fixture(scope="module")
def file_db(tmp_path_factory) -> Path:
    return _file_db(tmp_path_factory.mktemp("report_files"))


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    from fairpp.sources.demo import build_demo

    db = tmp_path_factory.mktemp("report_demo") / "demo.duckdb"
    with Store(db) as store:
        store.load(build_demo())
    return db


@pytest.fixture(scope="module")
def file_report(file_db, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report_out") / "report.html"
    assert main(["report", "--db", str(file_db), "--out", str(out)]) == 0
    return out


def _embedded(doc: str) -> dict:
    m = re.search(r'<script type="application/json" id="fairpp-data">(.*?)</script>', doc, re.S)
    assert m, "the machine-readable data block is missing"
    return json.loads(m.group(1))


def _cli_json(capsys, argv: list[str]):
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _external_refs(doc: str) -> list[str]:
    bad = re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?([^\"' >]+)", doc, re.I)
    bad += [h for tag in re.findall(r"<link[^>]*>", doc, re.I)
            for h in re.findall(r"\bhref\s*=\s*[\"']?([^\"' >]+)", tag, re.I)]
    bad += re.findall(r"@import\s+(?:url\()?[\"']?(https?:[^\"')]+)", doc, re.I)
    return bad


# -- content ----------------------------------------------------------------------------------------------------
def test_report_is_self_contained(file_report):
    doc = file_report.read_text(encoding="utf-8")
    assert doc.startswith("<!DOCTYPE html>")
    assert _external_refs(doc) == []  # no <script src> / <link href> at all, let alone http(s)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)\s*=\s*[\"']?(https?:)?//", doc, re.I)
    # plotly.js inlined exactly once, every chart after the first reuses it
    assert doc.count("plotly.js v") == 1
    assert doc.count('class="plotly-graph-div"') >= 4


def test_synthetic_label_only_on_demo(file_report, demo_db):
    doc = file_report.read_text(encoding="utf-8")
    assert SYNTHETIC_BANNER not in doc and htmlmod.escape(SYNTHETIC_BANNER) not in doc
    assert _embedded(doc)["source"]["synthetic"] is False
    with Store(demo_db, read_only=True) as store:
        demo = build_report(store, sections=["source", "positions"])
    assert htmlmod.escape(SYNTHETIC_BANNER) in demo
    assert 'class="synthetic"' in demo
    assert _embedded(demo)["source"]["synthetic"] is True


def test_positions_equal_cli_json(file_db, file_report, capsys):
    doc = file_report.read_text(encoding="utf-8")
    data = _embedded(doc)
    cli = _cli_json(capsys, ["positions", "--json", "--db", str(file_db)])
    assert data["positions"] == cli  # same rows, same order, same floats
    # the formatted table cells are those numbers
    for row in cli:
        if row["position"] is None:
            continue
        cell = f"{row['position']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
        assert f">{cell}</td>" in doc, cell
    for row in cli[:10]:
        assert f">{row['na_rate']:.3f}</td>" in doc


def test_distances_equal_cli_json(file_db, file_report, capsys):
    doc = file_report.read_text(encoding="utf-8")
    data = _embedded(doc)
    cli = _cli_json(capsys, ["distances", "--json", "--db", str(file_db)])
    assert data["distances"] == cli
    names = cli["respondents"]
    for i, name in enumerate(names):
        row = re.search(rf"<tr><td>{re.escape(htmlmod.escape(name))}</td>(.*?)</tr>",
                        doc.split('class="distances')[1], re.S)
        assert row, name
        cells = re.findall(r"<td class=num>([^<]*)</td>", row.group(1))
        assert cells == [f"{v:.3f}" for v in cli["js_distance"][i]]


def test_sections_and_json_summary(file_db, tmp_path, capsys):
    out = tmp_path / "sub" / "r.html"
    summary = _cli_json(capsys, ["report", "--db", str(file_db), "--out", str(out), "--sections", "positions,distances",
                                 "--json"])
    assert summary["path"] == str(out) and summary["bytes"] == out.stat().st_size
    assert summary["sections"] == ["positions", "distances"]
    doc = out.read_text(encoding="utf-8")
    assert 'id="positions"' in doc and 'id="distances"' in doc and 'id="models"' not in doc
    assert set(_embedded(doc)) >= {"positions", "distances"}


def test_reweight_only_with_target(file_db, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(file_db), "--out", str(out), "--sections", "reweight"]) == 2
    assert "target" in capsys.readouterr().err
    assert main(["report", "--db", str(file_db), "--out", str(out), "--sections", "bogus"]) == 2
    assert main(["report", "--db", str(file_db), "--out", str(out), "--target", "Progressive Activists"]) == 0
    doc = out.read_text(encoding="utf-8")
    assert 'id="reweight"' in doc
    rw = _embedded(doc)["reweight"]
    cli = _cli_json(capsys, ["reweight", "--db", str(file_db), "--target", "Progressive Activists",
                             "--out", str(tmp_path / "p.jsonl"), "--json"])
    assert rw["tier_counts"] == cli["tier_counts"] and rw["K"] == cli["K"]


def test_slice_filters_apply(file_db, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "--db", str(file_db), "--out", str(out), "--sections", "positions",
                 "--slice", "dimension=2"]) == 0
    cli = _cli_json(capsys, ["positions", "--json", "--db", str(file_db), "--slice", "dimension=2"])
    assert _embedded(out.read_text(encoding="utf-8"))["positions"] == cli
    assert {r["dimension"] for r in cli} == {2}


# -- the browser ------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_report_draws_offline_in_chromium(file_report, tmp_path):
    from browser_util import CHROMIUM_FLAGS, require_chromium
    from playwright.sync_api import sync_playwright

    exe = require_chromium()  # raises (fails, not skips) without chromium
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_FLAGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.set_offline(True)

            def route(r):
                requests.append(r.request.url)
                return r.continue_() if r.request.url.startswith("file:") else r.abort()

            context.route("**/*", route)
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(file_report.resolve().as_uri(), wait_until="load", timeout=60_000)
            page.wait_for_function("""() => { const els = [...document.querySelectorAll('.js-plotly-plot')];
                return els.length > 0 && els.every(el => el.querySelector('.main-svg')); }""", timeout=60_000)
            charts = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(el => ({
                id: el.id, svg: !!el.querySelector('.main-svg'), traces: (el.data || []).length,
                marks: el.querySelectorAll('.main-svg .trace, .main-svg .hm, .main-svg image').length}))""")
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    expected = {"chart-radar", "chart-positions-bars", "chart-cluster-map", "chart-distances", "chart-models-map"}
    assert {c["id"] for c in charts} == expected
    for c in charts:
        assert c["svg"] and c["traces"] > 0 and c["marks"] > 0, c
    assert errors == []
    assert requests == [file_report.resolve().as_uri()]  # the file itself, nothing else
    assert (tmp_path / "report.png").stat().st_size > 10_000
