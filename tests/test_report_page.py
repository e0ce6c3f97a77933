"""The report page through app.py on real DuckDB fixtures: it renders, its HTML download is the report (labelled
synthetic on the demo), the section checkboxes change the content; charts offer PNG/SVG downloads."""
from __future__ import annotations

import html as htmlmod
import re
import shutil

import pytest
from streamlit.runtime.media_file_manager import MediaFileManager

from conftest import demo_template_db
from fairpp.figures import SYNTHETIC_BANNER
from test_pages import _app, _ok, _write_db

PAGE = "pages/report.py"


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = _write_db(tmp_path)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    return path


@pytest.fixture
def downloads(monkeypatch) -> dict[str, object]:
    """The callables behind deferred download buttons, by file name (the bytes a click would fetch)."""
    seen: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def record(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        seen[str(file_name)] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return seen


def _open(**query):
    at = _app(**query)
    at.switch_page(PAGE)
    at.run()
    _ok(at)
    return at


def _html(downloads: dict[str, object]) -> str:
    names = [n for n in downloads if n.endswith(".html")]
    assert len(names) == 1, names
    return downloads.pop(names[0])().decode("utf-8")


def _sections(doc: str) -> list[str]:
    return re.findall(r'<section id="([a-z]+)">', doc)


def test_report_page_renders_and_serves_the_report(db, downloads):
    at = _open()
    assert at.title[0].value == "Report"
    assert {b.proto.label for b in at.get("download_button")} >= {"Report (HTML)", "Report (PDF)"}
    doc = _html(downloads)
    assert doc.startswith("<!DOCTYPE html>")
    assert _sections(doc) == ["source", "definitions", "positions", "clusters", "distances", "models", "probes",
                              "experiments"]
    assert "fairpp_train.csv" in doc or "User file" in doc or "fixture" in doc
    assert SYNTHETIC_BANNER not in doc and htmlmod.escape(SYNTHETIC_BANNER) not in doc  # a user file, not the demo
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sections"] == "8"
    assert int(metrics["Charts"]) == doc.count('class="chart"') >= 4


def test_section_choice_changes_the_content(db, downloads):
    at = _open()
    downloads.clear()
    for s in ("definitions", "clusters", "distances", "models", "probes", "experiments"):
        at.checkbox(key=f"report.section.{s}").uncheck()
    at.run()
    _ok(at)
    doc = _html(downloads)
    assert _sections(doc) == ["source", "positions"]
    assert 'data-chart="distances"' not in doc and 'data-chart="positions-bars"' in doc
    at.checkbox(key="report.section.reweight").check().run()
    _ok(at)
    at.selectbox(key="report.target").set_value("Loyal Nationals").run()
    _ok(at)
    doc = _html(downloads)
    assert _sections(doc) == ["source", "positions", "reweight"]
    assert "Target Loyal Nationals" in doc
    for s in ("source", "positions", "reweight"):
        at.checkbox(key=f"report.section.{s}").uncheck()
    at.run()
    _ok(at)
    assert at.info and not at.get("download_button")  # nothing ticked: a guard, no report


def test_filters_reach_the_report(db, downloads):
    at = _open(topic="fair essentials")
    doc = _html(downloads)
    assert "topic = fair essentials" in doc or "topic = fair essentials" in htmlmod.unescape(doc)
    assert '"filters": {"topic": ["fair essentials"]}' in doc


def test_demo_report_is_labelled_synthetic(tmp_path_factory, tmp_path, monkeypatch, downloads):
    db = tmp_path / "demo.duckdb"
    shutil.copy(demo_template_db(tmp_path_factory), db)
    monkeypatch.setenv("FAIRPP_DB", str(db))
    at = _open(dimension=["1", "2"])
    _html(downloads)
    for s in ("clusters", "distances", "models"):  # a smaller report
        at.checkbox(key=f"report.section.{s}").uncheck()
    at.run()
    _ok(at)
    doc = _html(downloads)
    assert _sections(doc) == ["source", "definitions", "positions", "probes", "experiments"]
    assert htmlmod.escape(SYNTHETIC_BANNER) in doc and 'class="synthetic"' in doc
    assert any("synthetic demo data" in c.value for c in at.caption)


def test_charts_offer_png_and_svg_downloads(db, downloads):
    """Every chart on a page gets an image popover with a size choice and PNG/SVG buttons (no image made yet)."""
    at = _app()
    at.switch_page("pages/personas.py")
    at.run()
    _ok(at)
    labels = [b.proto.label for b in at.get("download_button")]
    charts = len(at.get("plotly_chart"))
    assert labels.count("PNG") == labels.count("SVG") == charts == 2
    pngs = sorted(n for n in downloads if n.endswith(".png"))
    assert pngs and all(n.endswith("-1600x900.png") for n in pngs)
    size = at.selectbox(key="personas.radar.image.size")
    size.set_value("1920 × 1080 (16:9 full HD)").run()
    _ok(at)
    assert any(n.endswith("-1920x1080.png") for n in downloads)


def test_without_chromium_the_image_buttons_say_why(db, monkeypatch, tmp_path):
    monkeypatch.setenv("FAIRPP_CHROMIUM", str(tmp_path / "no-chromium"))
    at = _app()
    at.switch_page("pages/personas.py")
    at.run()
    _ok(at)
    images = [b for b in at.get("download_button") if b.proto.label in ("PNG", "SVG")]
    assert images and all(b.proto.disabled for b in images)
    assert any("apt-get install -y chromium" in c.value for c in at.caption)


def test_stored_experiment_is_in_the_report(db, downloads):
    from fairpp.store import Store
    from fairpp.store.experiments import save_experiment

    card = {"target": "Loyal Nationals", "n_questions": 60, "split": "test", "base": "2", "level": 0.95,
            "n_boot": 100, "conditions": [{"condition": "weighted DPO", "respondent": "Qwen2.5-7B-Instruct"}],
            "summary": [{"condition": "weighted DPO", "respondent": "Qwen2.5-7B-Instruct", "js_target": 0.1234,
                         "js_target_low": 0.1, "js_target_high": 0.15, "gap": 0.0456, "gap_low": 0.01,
                         "gap_high": 0.08, "nearest": "Loyal Nationals"}]}
    with Store(db) as store:
        save_experiment(store, "my-wdpo-run", card)
    _open()
    doc = _html(downloads)
    part = doc.split('<section id="experiments">')[1].split("</section>")[0]
    assert "my-wdpo-run" in part and "0.123 [0.100, 0.150]" in part and "0.046 [0.010, 0.080]" in part
    assert '"experiment_id": "my-wdpo-run"' in doc


def test_a_link_rebuilds_the_same_report(db, downloads):
    """The section choice, the target, the title and the log base are in the URL."""
    at = _open(**{"report.section.clusters": "0", "report.section.distances": "0", "report.section.models": "0",
                  "report.section.reweight": "1", "report.target": "Loyal Nationals", "report.title": "Board pack",
                  "report.base": "e"})
    assert at.checkbox(key="report.section.reweight").value and not at.checkbox(key="report.section.models").value
    assert at.selectbox(key="report.target").value == "Loyal Nationals"
    doc = _html(downloads)
    assert "clusters" not in _sections(doc) and "reweight" in _sections(doc)
    assert "Target Loyal Nationals" in doc and "Board pack" in doc
    at.checkbox(key="report.section.probes").uncheck().run()
    _ok(at)
    assert at.query_params["report.section.probes"] in ("0", ["0"])
