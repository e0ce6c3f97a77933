"""Figure export (PNG/SVG through kaleido and Debian's chromium), the ``fairpp figure`` command, and the palette:
the same persona has the same colour-blind-safe colour in every figure builder."""
from __future__ import annotations

import io
import json
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import pytest
from PIL import Image

from conftest import PERSONAS
from fairpp import analysis, explore, figures
from fairpp.cli import main
from fairpp.figures.export import chromium_path, export_figure
from fairpp.figures.theme import PERSONA_COLOURS, short_name
from fairpp.schema import FairppError
from fairpp.store import Store
from test_pages import _write_db

REGIONS = {"Qwen2.5-7B-Instruct": "East Asia (China)", "Llama-SEA-LION-v3-8B-IT": "Southeast Asia"}
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "figures"


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return _write_db(tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def positions(db) -> pd.DataFrame:
    with Store(db, read_only=True) as store:
        return analysis.positions(store)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


def _svg_size(data: bytes) -> tuple[float, float]:
    root = re.search(rb"<svg\b[^>]*>", data).group(0).decode()
    return (float(re.search(r'\swidth="([\d.]+)"', root).group(1)),
            float(re.search(r'\sheight="([\d.]+)"', root).group(1)))


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _keep(name: str, data: bytes) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / name).write_bytes(data)


# -- PNG and SVG ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("designed", [435, 582, 638])
def test_png_size_is_exact_whatever_the_zoom(designed):
    # these heights make width / zoom * zoom land a hair under the requested width (one pixel short before)
    fig = go.Figure(go.Bar(x=[1, 2], y=[3, 4]), layout={"height": designed})
    assert _png_size(export_figure(fig, fmt="png", width=1600, height=900)) == (1600, 900)
    assert _png_size(export_figure(fig, fmt="png", width=1920, height=1080)) == (1920, 1080)


def test_png_has_the_requested_size_and_shows_the_chart(positions):
    fig = figures.dimension_bars(positions[positions["kind"] == "persona"], regions=REGIONS)
    before = fig.to_dict()
    data = export_figure(fig, fmt="png", width=1600, height=900)
    assert fig.to_dict() == before  # the figure itself is not changed by the export
    _keep("bars-1600x900.png", data)
    assert _png_size(data) == (1600, 900)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    assert img.size == (1600, 900)
    counts = img.getcolors(maxcolors=1 << 20)
    assert len(counts) > 200  # a drawn chart (antialiased text and marks), not a blank or uniform image
    colours = {c for _, c in counts}
    missing = [p for p in PERSONAS if _rgb(PERSONA_COLOURS[p]) not in colours]
    assert not missing, f"persona bars not drawn in their colours: {missing}"
    white = sum(n for n, c in counts if c == (255, 255, 255))
    assert 0.3 < white / (1600 * 900) < 0.97  # a white background with a chart on it


def test_png_other_size_and_note(positions):
    fig = figures.radar(positions[positions["kind"] == "persona"])
    data = export_figure(fig, fmt="png", width=1200, height=1200, title="Persona positions",
                         note="Synthetic demo data")
    _keep("radar-1200x1200.png", data)
    assert _png_size(data) == (1200, 1200)
    img = Image.open(io.BytesIO(data)).convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=1 << 20)}
    near = [p for p in PERSONAS
            if any(sum(abs(a - b) for a, b in zip(_rgb(PERSONA_COLOURS[p]), c)) <= 12 for c in colours)]
    assert len(near) == len(PERSONAS), near  # every persona's line is drawn in (nearly) its colour


def test_svg_has_the_requested_size_names_and_colours(positions):
    fig = figures.dimension_bars(positions[positions["kind"] == "persona"])
    data = export_figure(fig, fmt="svg", width=1920, height=1080, title="Positions", note="Synthetic demo data")
    _keep("bars-1920x1080.svg", data)
    assert data.lstrip().startswith(b"<svg")
    assert _svg_size(data) == (1920, 1080)
    text = data.decode("utf-8")
    view = [float(v) for v in re.search(r'viewBox="([^"]+)"', text).group(1).split()]
    assert view[2] / view[3] == pytest.approx(1920 / 1080, rel=1e-3)  # drawn in the same aspect
    for p in PERSONAS:
        assert f">{p}<" in text, p  # the legend names every trace
        r, g, b = _rgb(PERSONA_COLOURS[p])
        assert f"rgb({r}, {g}, {b})" in text, p
    assert "Synthetic demo data" in text and "Positions" in text
    assert "http://" not in text.replace("http://www.w3.org", "")  # nothing to fetch


def test_bad_arguments_and_missing_chromium(monkeypatch, tmp_path):
    import plotly.graph_objects as go

    fig = go.Figure(go.Bar(x=[1, 2], y=[2, 1]))
    with pytest.raises(FairppError, match="png or svg"):
        export_figure(fig, fmt="jpeg")
    with pytest.raises(FairppError, match="width=50"):
        export_figure(fig, width=50)
    with pytest.raises(FairppError, match="scale"):
        export_figure(fig, scale=10)
    monkeypatch.setenv("FAIRPP_CHROMIUM", str(tmp_path / "no-chromium"))
    assert chromium_path() is None
    with pytest.raises(FairppError, match=r"apt-get install -y chromium.*FAIRPP_CHROMIUM"):
        export_figure(fig)


def test_export_works_offline(tmp_path):
    """kaleido's page loads plotly.js from the plotly package and no MathJax: nothing leaves the machine."""
    from kaleido import PageGenerator

    page = PageGenerator(mathjax=False).generate_index()
    assert "http" not in re.sub(r"http://www\.w3\.org[^\"']*", "", page)
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-rn", "true"]).returncode != 0:
        pytest.skip("no network namespace here (unshare -rn); the page check above still ran")
    out = tmp_path / "offline.png"
    code = ("import sys, plotly.graph_objects as go; from fairpp.figures.export import export_figure; "
            "open(sys.argv[1], 'wb').write(export_figure(go.Figure(go.Bar(x=[1, 2], y=[2, 1])), width=800, height=450))")
    run = subprocess.run(["unshare", "-rn", sys.executable, "-c", code, str(out)], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr[-2000:]
    assert _png_size(out.read_bytes()) == (800, 450)


# -- the command ------------------------------------------------------------------------------------------------
def test_figure_command_writes_png_and_svg(db, tmp_path, capsys):
    capsys.readouterr()
    out = tmp_path / "figs" / "radar.png"
    assert main(["figure", "radar", "--db", str(db), "--out", str(out), "--width", "1280", "--height", "720",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"path": str(out), "figure": "radar", "format": "png", "width": 1280, "height": 720,
                       "bytes": out.stat().st_size, "synthetic": False}
    assert _png_size(out.read_bytes()) == (1280, 720)
    _keep("cli-radar-1280x720.png", out.read_bytes())
    svg = tmp_path / "distances.svg"
    assert main(["figure", "distances", "--db", str(db), "--out", str(svg)]) == 0
    assert _svg_size(svg.read_bytes()) == (1600, 900)
    assert "Civic Pragmatists" in svg.read_text()


def test_figure_command_errors(db, tmp_path, capsys):
    assert main(["figure", "radar", "--db", str(db), "--out", str(tmp_path / "x.jpg")]) == 2
    assert main(["figure", "tiers", "--db", str(db), "--out", str(tmp_path / "t.png")]) == 2
    assert "--target" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["figure", "nonsense", "--db", str(db), "--out", str(tmp_path / "n.png")])
    assert not list(tmp_path.glob("*.png"))


# -- the palette ------------------------------------------------------------------------------------------------
def _persona_of(trace) -> str | None:
    shorts = {short_name(p): p for p in PERSONAS}
    custom = getattr(trace, "customdata", None)
    first = custom[0][0] if custom is not None and len(custom) and len(custom[0]) else None
    for label in (trace.name, trace.legendgroup, first):
        if label in PERSONA_COLOURS:
            return label
        if isinstance(label, str) and label.replace(" (target)", "") in shorts:
            return shorts[label.replace(" (target)", "")]
    return None


def _colours(trace) -> set[str]:
    out = set()
    for part in ("marker", "line"):
        obj = getattr(trace, part, None)
        colour = getattr(obj, "color", None) if obj is not None else None
        if isinstance(colour, str):
            out.add(colour.upper())
    if getattr(trace, "color", None) and isinstance(trace.color, str):  # mesh3d
        out.add(trace.color.upper())
    return out


def test_every_builder_draws_a_persona_in_its_palette_colour(db, positions):
    """Okabe-Ito colours per persona (colour-blind safe), identical on every chart that shows personas."""
    from fairpp import reweight
    from fairpp.figures.reweight import js_chart

    assert len(set(PERSONA_COLOURS.values())) == len(PERSONAS)  # one distinct colour per persona
    with Store(db, read_only=True) as store:
        units = explore.wide_points(analysis.positions(store, by=["specific_problem"]), unit="specific_problem")
        m = store.answer_matrix()
        result, _ = reweight.from_store(store, target=PERSONAS[2])
    comp = explore.compare_models(m, models=list(REGIONS), personas=PERSONAS, n_boot=20)
    placed, cloud, _ = explore.model_map_frames(comp, personas=PERSONAS)
    proj2 = explore.project(units, dims=[1, 2, 3, 4, 5])
    proj3 = explore.project(units, dims=[1, 2, 3, 4, 5], n_components=3)
    built = {
        "radar": figures.radar(positions, regions=REGIONS),
        "radar side by side": figures.radar(positions, side_by_side=True, regions=REGIONS),
        "dimension_bars": figures.dimension_bars(positions, regions=REGIONS),
        "position_strip": figures.position_strip(positions, regions=REGIONS),
        "cluster_map 2-D": figures.cluster_map(proj2, x="PC1", y="PC2", regions=REGIONS),
        "cluster_map 3-D": figures.cluster_map(proj3, x="PC1", y="PC2", z="PC3", regions=REGIONS),
        "model_map": figures.model_map(placed, clouds=cloud, regions=REGIONS),
        "js_chart": js_chart(reweight.weighting_effect(result)),
    }
    for label, fig in built.items():
        seen: dict[str, set[str]] = {}
        for trace in fig.data:
            persona = _persona_of(trace)
            if persona is not None:
                seen.setdefault(persona, set()).update(c for c in _colours(trace) if c.startswith("#"))
        assert set(seen) == set(PERSONAS), f"{label}: personas drawn {sorted(seen)}"
        for persona, colours in seen.items():
            assert colours == {PERSONA_COLOURS[persona].upper()}, f"{label}: {persona} drawn in {colours}"
