"""Every page renders through app.py on a small fixture database; key interactions by widget key."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import PERSONAS, small_wide
from fairpp.sources.files import read_files
from fairpp.store import Store
from fairpp.ui.nav import PAGES

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 120


def _write_db(tmp_path: Path, name: str = "fixture.duckdb", **kwargs) -> Path:
    csv = tmp_path / f"{name}.csv"
    small_wide(**kwargs).to_csv(csv, index=False)
    db = tmp_path / name
    store = Store(db)
    store.load(read_files([csv]))
    store.close()
    return db


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = _write_db(tmp_path)
    monkeypatch.setenv("FAIRPP_DB", str(path))
    return path


def _app(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in query.items():
        at.query_params[k] = v
    return at


def _open(page: str, **query) -> AppTest:
    at = _app(**query)
    at.switch_page(page)
    at.run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _static_tables(at: AppTest) -> list[pd.DataFrame]:
    """The tables drawn by ``ui.static_table`` (st.html elements), read back from their HTML, cells as text."""
    from html.parser import HTMLParser

    class Cells(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tables: list[list[list[str]]] = []
            self.cell: list[str] | None = None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append("".join(self.cell))
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell.append(data)

    parser = Cells()
    for el in at.get("html"):
        if "fairpp-static" in el.proto.body:
            parser.feed(el.proto.body)
    return [pd.DataFrame(rows[1:], columns=rows[0]) for rows in parser.tables]


def _qp(at: AppTest, name: str) -> list[str]:
    value = at.query_params[name]
    return value if isinstance(value, list) else [value]


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.mark.parametrize("page", [p.path for p in PAGES])
def test_every_page_renders_through_the_app(db, page):
    at = _app()
    at.run()
    _ok(at)
    at.switch_page(page)
    at.run()
    _ok(at)
    assert at.title, f"{page} drew no title"
    # The sidebar always shows the data source; this fixture is a user file, not the demo.
    assert any("Data: User file" in m.value for m in at.sidebar.markdown)
    assert not any("Synthetic demo data" in w.value for w in at.warning)
    at.run()  # again: the frame is drawn on every run, also after a page ended with st.stop()
    _ok(at)
    assert at.multiselect(key="filters.topic") and any("Data: User file" in m.value for m in at.sidebar.markdown)


def test_overview_counts_and_provenance(db):
    at = _open("pages/overview.py")
    _ok(at)
    assert _metric(at, "Questions shown") == "60"
    assert _metric(at, "Personas") == "7"
    assert _metric(at, "Regional models") == "2"
    assert len(at.get("plotly_chart")) == 2  # taxonomy and answer mix
    [dims] = _static_tables(at)  # the five dimensions and their poles
    assert len(dims) == 5 and dims.iloc[0, 0] == "1 · libertarianism vs egalitarianism"
    assert dims.iloc[0, 2].startswith("egalitarianism: ")
    at.radio(key="overview.taxonomy").set_value("treemap").run()
    _ok(at)
    assert any("fairpp_train.csv" in str(df.value.to_dict()) or "fixture" in str(df.value.to_dict())
               for df in at.dataframe)


def test_filters_change_the_numbers(db):
    at = _open("pages/overview.py")
    assert _metric(at, "Questions shown") == "60"
    at.multiselect(key="filters.topic").set_value(["fair essentials"]).run()
    _ok(at)
    assert _metric(at, "Questions shown") == "20"
    at.multiselect(key="filters.dimension").set_value([1, 2]).run()
    assert _metric(at, "Questions shown") == "8"
    assert _qp(at, "topic") == ["fair essentials"]
    assert _qp(at, "dimension") == ["1", "2"]
    at.button(key="filters.reset").click().run()
    assert _metric(at, "Questions shown") == "60"
    assert "topic" not in at.query_params


def test_filters_change_the_positions(db):
    at = _open("pages/personas.py")
    _ok(at)
    before = at.get("plotly_chart")[1].proto.spec
    at.multiselect(key="filters.group").set_value(["men"]).run()
    _ok(at)
    assert at.get("plotly_chart")[1].proto.spec != before  # the bars were redrawn with other numbers
    at.multiselect(key="filters.respondents").set_value(["Civic Pragmatists", "Loyal Nationals"]).run()
    _ok(at)
    assert at.multiselect(key="personas.show").options == ["Civic Pragmatists", "Loyal Nationals"]


def test_url_restores_the_view(db):
    at = _open("pages/personas.py", topic="fair treatment", dimension=["1", "2", "3"],
               **{"personas.section": "Cluster map", "personas.unit": "group_name", "personas.view": "3-D",
                  "personas.overlay": "none"})
    _ok(at)
    assert at.multiselect(key="filters.topic").value == ["fair treatment"]
    assert at.multiselect(key="filters.dimension").value == [1, 2, 3]
    assert at.selectbox(key="personas.unit").value == "group_name"
    assert at.radio(key="personas.view").value == "3-D"
    assert at.radio(key="personas.overlay").value == "none"
    assert _qp(at, "personas.unit") == ["group_name"]
    assert any("points over dimensions 1, 2, 3" in c.value for c in at.caption)
    at = _open("pages/personas.py", **{"personas.section": "Distances & agreement", "personas.metric": "kappa"})
    _ok(at)
    assert at.radio(key="personas.metric").value == "kappa"
    assert any(c.value.startswith("**Cohen's kappa**") for c in at.caption)


def test_unknown_url_values_are_ignored(db):
    at = _open("pages/personas.py", topic="no such topic",
               **{"personas.section": "Cluster map", "personas.unit": "nonsense"})
    _ok(at)
    assert at.multiselect(key="filters.topic").value == []
    assert at.selectbox(key="personas.unit").value == "specific_problem"


def test_personas_tabs_and_switches(db):
    at = _open("pages/personas.py")
    assert len(at.get("plotly_chart")) == 2  # only the open tab runs: radar and bars
    at.radio(key="personas.layout").set_value("side by side").run()
    at.multiselect(key="personas.show").set_value(["Civic Pragmatists", "Qwen2.5-7B-Instruct"]).run()
    _ok(at)
    at.query_params["personas.section"] = "Cluster map"
    at.run()
    assert len(at.get("plotly_chart")) == 1
    at.radio(key="personas.overlay").set_value("density").run()
    at.toggle(key="personas.models").set_value(True).run()
    at.selectbox(key="personas.unit").set_value("problem_category").run()
    at.radio(key="personas.view").set_value("3-D").run()
    _ok(at)
    at.query_params["personas.section"] = "Distances & agreement"
    at.run()
    for metric in ("agreement", "kappa", "js"):
        at.radio(key="personas.metric").set_value(metric).run()
        _ok(at)
    at.radio(key="personas.base").set_value("e").run()
    at.selectbox(key="personas.matrix_dim").set_value(2).run()
    _ok(at)
    assert _qp(at, "personas.base") == ["e"]
    assert any("Shown: natural log" in c.value for c in at.caption)  # the heatmap names its log base


def test_umap_runs_only_when_asked(db):
    at = _open("pages/personas.py", **{"personas.section": "Cluster map", "personas.projection": "UMAP"})
    _ok(at)
    assert at.button(key="personas.umap_run")  # PCA shown, UMAP waits for the button
    assert any("PCA" in c.value for c in at.caption)
    at.button(key="personas.umap_run").click().run(timeout=240)
    _ok(at)
    assert any("UMAP" in c.value for c in at.caption)


def test_models_page_nearest_persona(db):
    at = _open("pages/models.py")
    _ok(at)
    summary = at.dataframe[0].value
    assert set(summary["model"]) == {"Qwen2.5-7B-Instruct", "Llama-SEA-LION-v3-8B-IT"}
    assert summary["distance"].between(0, 5 ** 0.5).all()
    at.toggle(key="models.clouds").set_value(False).run()
    at.toggle(key="models.labels").set_value(True).run()
    at.multiselect(key="filters.group_type").set_value(["Gender"]).run()
    _ok(at)
    at.query_params["models.section"] = "Per-dimension comparison"
    at.run()
    _ok(at)
    assert len(at.get("plotly_chart")) == 1
    [table] = _static_tables(at)  # one row per respondent, "position [interval]" per dimension
    assert list(table.columns[:3]) == ["respondent", "kind", "D1"] and "Qwen2.5-7B-Instruct" in set(table["respondent"])
    assert table["D1"].str.fullmatch(r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]|–").all()
    at.multiselect(key="filters.dimension").set_value([4]).run()  # one dimension: no map, still the numbers
    _ok(at)
    assert list(_static_tables(at)[0].columns) == ["respondent", "kind", "D4"]


def test_explore_slices_and_questions(db):
    at = _open("pages/explore.py")
    _ok(at)
    at.radio(key="explore.mode").set_value("bubble").run()
    at.selectbox(key="explore.dimension").set_value(3).run()
    _ok(at)
    at.radio(key="explore.view").set_value("questions").run()
    _ok(at)
    grid = at.dataframe[0].value
    assert len(grid) == 50 and "divided" in grid.columns
    assert grid["divided"].is_monotonic_decreasing
    at.text_input(key="explore.search").set_value("latino").run()
    _ok(at)
    assert any(c.value.startswith("30 questions match") for c in at.caption)
    assert _qp(at, "explore.search") == ["latino"]


def test_bad_upload_shows_the_error_and_keeps_the_data(db):
    at = _open("pages/data.py")
    _ok(at)
    at.file_uploader(key="data.upload").set_value(("ragged.csv", b"Perspective,Question\n1.1,a,b\n", "text/csv"))
    at.run()
    at.button(key="data.load_upload").click().run()
    assert at.error and "ragged" in at.error[0].value
    at.switch_page("pages/overview.py")
    at.run()
    assert _metric(at, "Questions shown") == "60"


def test_bad_path_shows_the_error_and_keeps_the_data(db, tmp_path):
    at = _open("pages/data.py")
    at.text_input(key="data.path").set_value(str(tmp_path / "missing.csv")).run()
    at.button(key="data.load_path").click().run()
    assert at.error and "no such file" in at.error[0].value
    at.switch_page("pages/overview.py")
    at.run()
    assert _metric(at, "Questions shown") == "60"


def test_good_path_replaces_the_data(db, tmp_path):
    csv = tmp_path / "other.csv"
    small_wide(problems=2, groups=1, models=False).to_csv(csv, index=False)
    at = _open("pages/data.py")
    at.text_input(key="data.path").set_value(str(csv)).run()
    at.button(key="data.load_path").click().run()
    _ok(at)
    assert at.success and "20 questions" in at.success[0].value
    at.switch_page("pages/overview.py")
    at.run()
    assert _metric(at, "Questions shown") == "20"
    assert _metric(at, "Regional models") == "0"
    at.switch_page("pages/models.py")
    at.run()
    _ok(at)
    assert at.info  # no model loaded: a guard, not an error


def test_offline_hub_fails_fast_and_keeps_the_data(db, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("FAIRPP_HUB_TIMEOUT", "3")
    at = _open("pages/data.py")
    at.button(key="data.fetch").click().run(timeout=30)
    assert at.error and "127.0.0.1:9" in at.error[0].value
    at.switch_page("pages/overview.py")
    at.run()
    assert _metric(at, "Questions shown") == "60"


def test_empty_database_starts_on_the_demo_with_the_banner(tmp_path, monkeypatch):
    monkeypatch.setenv("FAIRPP_DB", str(tmp_path / "empty.duckdb"))
    at = _app()
    at.run(timeout=TIMEOUT)
    _ok(at)
    assert any("Synthetic demo data — not the Fair-PP paper's results" in w.value for w in at.warning)
    assert _metric(at, "Questions shown") == "28,420"
    at.switch_page("pages/data.py")
    at.run()
    assert any("Synthetic demo data" in w.value for w in at.warning)  # on every page


def test_figure_builders_take_every_option(tmp_path):
    """The figure builders (shared with the report) draw every variant without streamlit."""
    from fairpp import analysis, explore, figures

    db = _write_db(tmp_path)
    with Store(db, read_only=True) as store:
        pos = analysis.positions(store)
        grid = analysis.positions(store, by=["group_name", "problem_category"])
        m = store.answer_matrix()
        counts = store.counts()
        units = explore.wide_points(analysis.positions(store, by=["specific_problem"]), unit="specific_problem")
    regions = {"Qwen2.5-7B-Instruct": "East Asia (China)", "Llama-SEA-LION-v3-8B-IT": "Southeast Asia"}
    for side in (False, True):
        assert figures.radar(pos, side_by_side=side, regions=regions).data
    assert figures.dimension_bars(pos, regions=regions).data
    assert figures.position_strip(pos, regions=regions).data
    proj2 = explore.project(units, dims=[1, 2, 3, 4, 5])
    proj3 = explore.project(units, dims=[1, 2, 3, 4, 5], n_components=3)
    for overlay in ("hulls", "density", "none"):
        assert figures.cluster_map(proj2, x="PC1", y="PC2", overlay=overlay, regions=regions).data
    assert figures.cluster_map(proj3, x="PC1", y="PC2", z="PC3").data
    rng = np.random.default_rng(0)
    cloud3 = pd.DataFrame({"respondent": "Civic Pragmatists", "kind": "persona", "slice": list("abcdefgh"),
                           "PC1": rng.random(8), "PC2": rng.random(8), "PC3": rng.random(8)})
    assert any(t.type == "mesh3d" for t in figures.cluster_map(cloud3, x="PC1", y="PC2", z="PC3").data)
    comp = explore.compare_models(m, models=list(regions), personas=PERSONAS, n_boot=50)
    placed, cloud, _ = explore.model_map_frames(comp, personas=PERSONAS)
    fig = figures.model_map(placed, clouds=cloud, regions=regions, label_models=True)
    assert {t.marker.symbol for t in fig.data if t.name in regions} == {"diamond", "star"}
    from fairpp import space
    res = space.js_distances(m)
    frame = analysis.matrix_frame(res, "js_distance")
    for metric in ("js", "agreement", "kappa"):
        assert figures.matrix_heatmap(frame, n_shared=res["n_shared"], metric=metric, base_label="e").data
    tax = pd.DataFrame({"topic": ["t", "t"], "problem_category": ["c", "d"], "specific_problem": ["p", "q"],
                        "n": [10, 20]})
    for kind in ("sunburst", "treemap"):
        assert figures.taxonomy_chart(tax, kind=kind).data
    assert figures.answer_mix(explore.answer_mix(counts)).data
    cells = explore.slice_positions(grid, dimension=1)
    for mode in ("heat", "bubble"):
        fig = figures.slice_grid(cells, x="problem_category", y="group_name", mode=mode)
        assert all(t.customdata is not None for t in fig.data if t.type == "scatter")
    # one colour per persona everywhere
    assert len(set(figures.PERSONA_COLOURS.values())) == 7


def test_models_positions_match_the_store(tmp_path):
    """Positions on the models page (from the answer matrix) equal the store's on the same questions."""
    from fairpp import analysis, explore

    db = _write_db(tmp_path)
    with Store(db, read_only=True) as store:
        m = store.answer_matrix()
        qids = store.answers(respondents=["Qwen2.5-7B-Instruct"])["question_id"].tolist()
        ref = analysis.positions(store, respondents=["Civic Pragmatists"])
    mask = np.isin(np.asarray(m.question_ids), np.asarray(qids))
    mine = explore.matrix_positions(m, mask)
    assert mask.sum() == len(set(qids))
    full = explore.matrix_positions(m)
    a = full[full["respondent"] == "Civic Pragmatists"]["position"].to_numpy()
    assert np.allclose(a, ref["position"].to_numpy())
    assert set(mine["respondent"]) >= {"Civic Pragmatists", "Qwen2.5-7B-Instruct"}


@pytest.mark.parametrize("query, guards", [
    ({"respondents": ["Qwen2.5-7B-Instruct"]},
     {"models": "needs at least one model and one persona", "reweight": "needs at least two personas"}),
    ({"respondents": ["Qwen2.5-7B-Instruct", "Civic Pragmatists"]},
     {"models": "No map: the map needs at least two personas", "reweight": "needs at least two personas"}),
    ({"dimension": ["2"], "personas.section": "Cluster map"},
     {"personas": "The map needs at least two dimensions", "models": "No map: the map needs at least two dimensions"}),
    ({"topic": ["fair treatment"], "group": ["men"], "dimension": ["5"]},
     {"personas": "A radar needs at least three dimensions", "models": "the map needs at least two dimensions"}),
    ({"explore.view": "questions", "explore.page": "99"}, {"explore": "go back to page 1"}),
])
def test_narrow_selections_show_guards_not_errors(db, query, guards):
    """Every page copes with a narrow selection; where a view cannot be drawn, its page says why and what to do."""
    for page in [p.path for p in PAGES]:
        at = _open(page, **query)
        _ok(at)
        guard = guards.get(Path(page).stem)
        if guard:
            assert any(guard in m.value for m in at.info), (page, [m.value for m in at.info])


def test_the_app_config_turns_off_the_full_gc_after_every_run():
    """Streamlit, started from the project root as the README says, reads .streamlit/config.toml: no forced full
    garbage collection after each script run (it held the GIL 60-200 ms a click), headless, no usage statistics."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    code = ("from streamlit import config; config.get_config_options(force_reparse=True); "
            "print([config.get_option(k) for k in ('runner.postScriptGC', 'server.headless', "
            "'browser.gatherUsageStats')], config.get_where_defined('runner.postScriptGC'))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True).stdout
    assert out.split("]")[0] + "]" == "[False, True, False]"
    assert out.strip().endswith(str(root / ".streamlit" / "config.toml"))
