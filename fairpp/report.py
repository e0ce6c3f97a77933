"""One self-contained HTML report of what is loaded: source, definitions, positions, maps, distances, models, probes.

``build_report(store, sections=..., filters=...)`` returns one HTML document that opens without a network:
plotly.js is inlined once (by the first chart), no ``<script src>`` or ``<link href>`` points anywhere, and the
charts stay interactive. The figures are the dashboard's own builders (:mod:`fairpp.figures`), so the report
looks like the app; the numbers come from :mod:`fairpp.analysis`, the same calls the command line makes, and
are embedded machine-readably in ``<script type="application/json" id="fairpp-data">`` (its ``positions``
equal ``fairpp positions --json``, its ``distances`` equal ``fairpp distances --json``).

No streamlit and no duckdb here (the store is handed in).
"""
from __future__ import annotations

import html
import json
import logging
import math
import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from fairpp import analysis, explore, figures
from fairpp.schema import FairppError

__all__ = ["SECTIONS", "DEFAULT_SECTIONS", "FIGURES", "build_report", "html_table", "report_data", "report_figures"]

log = logging.getLogger("fairpp.report")

#: Every section, in the order they appear.
SECTIONS = ("source", "definitions", "positions", "clusters", "distances", "models", "probes", "experiments",
            "reweight")
#: The sections built when none are named (the reweighting summary only when a target is given).
DEFAULT_SECTIONS = tuple(s for s in SECTIONS if s != "reweight")
#: The columns of a position row, as ``fairpp positions --json`` prints them.
POSITION_COLUMNS = ["respondent", "kind", "dimension", "position", "ci_low", "ci_high", "na_rate", "n"]
UNIT_LABELS = {"specific_problem": "specific problem", "problem_category": "problem category",
               "group_name": "group", "group_type": "group type"}

_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}


# -- helpers ----------------------------------------------------------------------------------------------------
def _jsonable(obj: Any) -> Any:
    from fairpp.cli import _jsonable as plain

    if isinstance(obj, pd.DataFrame):
        return plain(obj.to_dict("records"))
    if isinstance(obj, (pd.Timestamp, datetime)):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    out = plain(obj)
    if out is obj and not isinstance(obj, (str, int, float, bool, type(None))):
        try:
            if pd.isna(obj):
                return None
        except (TypeError, ValueError):
            pass
        return str(obj)
    return out


def _md(text: str) -> str:
    """The definitions' tiny markdown (``**bold**``, ``*italic*``) as escaped HTML."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"\*(.+?)\*", r"<em>\1</em>", out)


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def html_table(frame: pd.DataFrame, *, cls: str = "", digits: int = 3, index: bool = False,
               formats: Mapping[str, Callable[[Any], str]] | None = None, wrap: str = "table-wrap") -> str:
    """An HTML table of ``frame`` in a ``<div class=WRAP>`` (every text escaped; floats to ``digits`` places;
    ``formats`` per column; numbers in ``td.num``).

    >>> html_table(pd.DataFrame({"who": ["<b>"], "x": [0.5]}), cls="t").split("<tbody>")[1]
    '<tr><td>&lt;b&gt;</td><td class=num>0.500</td></tr></tbody></table></div>'
    """
    frame = frame.reset_index() if index else frame
    formats = dict(formats or {})
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, v in zip(frame.columns, rec):
            text = formats[col](v) if col in formats else _fmt(v, digits)
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(f"<td{' class=num' if num else ''}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="{wrap}"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>")


class _Charts:
    """Turns figures into ``<div>`` fragments; the first one carries plotly.js (inlined once)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: Any, *, name: str) -> str:
        fig.update_layout(template="fairpp")
        if fig.layout.height is None:
            fig.update_layout(height=460)
        div = fig.to_html(full_html=False, include_plotlyjs="inline" if self.count == 0 else False,
                          config=_PLOT_CONFIG, div_id=f"chart-{name}", default_width="100%")
        self.count += 1
        return f'<figure class="chart" data-chart="{html.escape(name)}">{div}</figure>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def _define(*keys: str) -> str:
    return "".join(f'<p class="definition">{_md(figures.DEFINITIONS[k])}</p>' for k in keys)


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


# -- the data ---------------------------------------------------------------------------------------------------
def report_data(store: Any, *, sections: Sequence[str], filters: Mapping[str, Sequence[Any]] | None = None,
                unit: str = "specific_problem", base: str = "2", reweight_target: str | None = None,
                alpha: float = 1.0, beta: float = 1.0) -> dict[str, Any]:
    """Every number the report shows, computed with the command line's calls (frames kept for the figures)."""
    filters = dict(filters or {})
    info = store.info()
    resp = store.respondents()
    out: dict[str, Any] = {"info": info, "filters": filters, "respondents": resp,
                           "regions": dict(zip(resp["respondent"], resp.get("region", pd.Series(dtype=object))))}
    need_pos = {"positions", "clusters"} & set(sections)
    if need_pos:
        out["positions"] = analysis.positions(store, filters)
    if "clusters" in sections:
        try:
            pos = analysis.positions(store, filters, by=[unit])
            pos = pos[pos["kind"] == "persona"] if (pos["kind"] == "persona").any() else pos
            dims = sorted(int(d) for d in pos["dimension"].unique())
            if len(dims) < 2:
                raise FairppError(f"a map needs two dimensions or more; the filters keep {len(dims)}")
            pts = explore.wide_points(pos, unit=unit, dims=dims)
            proj = explore.project(pts, dims=dims, method="pca", n_components=2)
            proj.attrs["dropped"] = pts.attrs["dropped"]
            out["clusters"] = {"unit": unit, "dims": dims, "points": proj}
        except (FairppError, ValueError) as exc:
            out["clusters"] = {"error": str(exc)}
    if "distances" in sections:
        out["distances"] = analysis.distances(store, filters, base=2.0 if base == "2" else math.e)
    if "models" in sections:
        models = resp.loc[resp["kind"] == "model", "respondent"].tolist()
        personas = resp.loc[resp["kind"] == "persona", "respondent"].tolist()
        if models:
            try:
                m = store.answer_matrix(filters, respondents=models + personas)
                comp = explore.compare_models(m, models=models, personas=personas)
                placed, cloud, explained = explore.model_map_frames(comp, personas=personas)
                out["models"] = {"comparison": comp, "placed": placed, "cloud": cloud, "explained": explained}
            except FairppError as exc:
                out["models"] = {"error": str(exc)}
        else:
            out["models"] = {"error": "no mainstream model is loaded"}
    if "probes" in sections:
        from fairpp import probe

        runs = probe.list_runs(store)
        cards = []
        for rid in (runs["run_id"].tolist() if "run_id" in runs else []):
            try:
                cards.append(probe.run_summary(store, rid))
            except FairppError as exc:  # pragma: no cover - a run deleted meanwhile
                log.warning("probe run %s: %s", rid, exc)
        out["probes"] = cards
    if "experiments" in sections:
        from fairpp.store import experiments

        ids = experiments.list_experiments(store)["experiment_id"].tolist()
        out["experiments"] = [{"experiment_id": i, **experiments.get_experiment(store, i)} for i in ids]
    if "reweight" in sections and reweight_target:
        from fairpp import reweight

        result, pairs = reweight.from_store(store, target=reweight_target, alpha=alpha, beta=beta, filters=filters)
        out["reweight"] = {"result": result, "pairs": len(pairs), "effect": reweight.weighting_effect(result)}
    return out


def _machine(data: Mapping[str, Any], sections: Sequence[str]) -> dict[str, Any]:
    """The JSON block embedded in the report: the same shapes as the command line's ``--json``."""
    doc: dict[str, Any] = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "sections": list(sections), "source": data["info"]["source"], "info": data["info"],
                           "filters": data["filters"]}
    if "positions" in data and "positions" in sections:
        doc["positions"] = data["positions"][POSITION_COLUMNS].to_dict("records")
    if "distances" in data:
        d = data["distances"]
        doc["distances"] = {"respondents": d["respondents"], "js_distance": d["js_distance"],
                            "n_shared": d["n_shared"], "base": d["base"]}
    if "clusters" in data and "points" in data["clusters"]:
        proj = data["clusters"]["points"]
        doc["clusters"] = {"unit": data["clusters"]["unit"], "dims": data["clusters"]["dims"],
                           "axes": proj.attrs.get("axes"), "explained": proj.attrs.get("explained"),
                           "points": len(proj)}
    if "models" in data and "comparison" in data["models"]:
        comp = data["models"]["comparison"]
        doc["models"] = {"n_questions": comp.n_questions, "nearest": comp.nearest.to_dict("records"),
                         "placed": data["models"]["placed"].to_dict("records")}
    if "probes" in data:
        doc["probes"] = data["probes"]
    if "experiments" in data:
        doc["experiments"] = [{k: x.get(k) for k in ("experiment_id", "target", "n_questions", "split", "base",
                                                     "conditions", "summary")} for x in data["experiments"]]
    if "reweight" in data:
        rw = data["reweight"]
        doc["reweight"] = {**rw["result"].summary(), "pairs": rw["pairs"],
                           "effect": rw["effect"].to_dict("records")}
    return _jsonable(doc)


# -- the sections -----------------------------------------------------------------------------------------------
def _source_html(data: Mapping[str, Any]) -> str:
    info = data["info"]
    src = info["source"]
    counts = ", ".join(f"{v} {k}{'s' if v != 1 else ''}" for k, v in info.get("respondents", {}).items())
    rows = [("Source", f"{src.get('label') or '–'} ({src.get('kind') or 'nothing loaded'})"),
            ("Questions", f"{info.get('questions', 0):,}"), ("Answers", f"{info.get('answers', 0):,}"),
            ("Respondents", counts or "–")]
    if data["filters"]:
        rows.append(("Filters", "; ".join(f"{k} = {', '.join(map(str, v))}" for k, v in data["filters"].items())))
    else:
        rows.append(("Filters", "none (every loaded question)"))
    body = "<dl class=facts>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in rows)
    return body + "</dl>"


def _definitions_html(base: str) -> str:
    js_base = ("Jensen-Shannon distances use log base 2, so they lie in [0, 1]. The published code used the "
               "natural log (scipy's default), whose maximum is √ln 2 ≈ 0.83." if base == "2" else
               "Jensen-Shannon distances use the natural log (the published code's setting, maximum √ln 2 ≈ 0.83); "
               "base 2 would keep them within [0, 1].")
    return (_define("position") + f'<p class="definition"><strong>Interval</strong>: 95% Wilson score interval of '
            f"the position per dimension (n = n_A + n_B answers). <strong>N/A rate</strong> = n_C / n over every "
            f"answer of the dimension.</p>" + _define("js") + f'<p class="definition"><strong>JS base</strong>: '
            f"{html.escape(js_base)}</p>" + _define("pca", "units", "nearest"))


def _positions_html(data: Mapping[str, Any], chart: _Charts) -> str:
    pos = data["positions"]
    if pos.empty:
        return _note("No answers match the filters.")
    regions = data["regions"]
    names = list(dict.fromkeys(pos["respondent"]))
    dims = sorted(int(d) for d in pos["dimension"].unique())
    parts = []
    personas = [n for n in names if (pos.loc[pos["respondent"] == n, "kind"] == "persona").any()]
    shown = personas or names
    sub = pos[pos["respondent"].isin(shown)]
    if len(dims) >= 3:
        parts.append(chart(figures.radar(sub, respondents=shown, regions=regions), name="radar"))
    parts.append(chart(figures.dimension_bars(sub, respondents=shown, regions=regions), name="positions-bars"))
    table = explore.position_table(pos)
    na = pos.pivot_table(index="respondent", columns="dimension", values="na_rate", aggfunc="first", sort=False)
    parts.append('<p class="caption">Position [95% interval] per dimension: '
                 + html.escape(" · ".join(f"D{d} = {figures.dimension_label(d, style='poles')}" for d in dims))
                 + ".</p>")
    parts.append(html_table(table, cls="positions"))
    rates = na.reindex(columns=dims).rename(columns=lambda d: f"D{d}").rename_axis("respondent").reset_index()
    parts.append('<p class="caption">N/A rate n_C / n per dimension (the answers left out of the position).</p>')
    parts.append(html_table(rates, cls="na-rates"))
    parts.append(_define("position"))
    return "".join(parts)


def _clusters_html(data: Mapping[str, Any], chart: _Charts) -> str:
    cl = data["clusters"]
    if "error" in cl:
        return _note(f"No cluster map: {cl['error']}.")
    proj = cl["points"]
    axes = proj.attrs["axes"]
    titles = [f"{a} ({r:.0%} of persona variance)" for a, r in zip(axes, proj.attrs.get("explained", []))] or axes
    label = UNIT_LABELS.get(cl["unit"], cl["unit"])
    fig = figures.cluster_map(proj, x=axes[0], y=axes[1] if len(axes) > 1 else axes[0], overlay="hulls",
                              regions=data["regions"], unit_label=label, axis_titles=titles)
    dropped = proj.attrs.get("dropped", 0)
    cap = (f"One point per respondent × {label}: {len(proj):,} points over dimensions "
           f"{', '.join(map(str, cl['dims']))}" + (f"; {dropped} slice(s) left out." if dropped else "."))
    return chart(fig, name="cluster-map") + f'<p class="caption">{html.escape(cap)}</p>' + _define("units", "pca")


def _distances_html(data: Mapping[str, Any], chart: _Charts) -> str:
    res = data["distances"]
    frame = analysis.matrix_frame(res, "js_distance")
    fig = figures.matrix_heatmap(frame, n_shared=res["n_shared"], metric="js", base_label=res["base"])
    shared = pd.DataFrame(res["n_shared"], index=frame.index, columns=frame.columns)
    cap = (f"Log base {res['base']}. Each pair is compared on the questions both answered "
           f"({int(shared.values.min()):,} to {int(shared.values.max()):,} per pair).")
    return (chart(fig, name="distances") + f'<p class="caption">{html.escape(cap)}</p>'
            + html_table(frame.rename_axis("respondent"), cls="distances matrix", index=True) + _define("js"))


def _models_html(data: Mapping[str, Any], chart: _Charts) -> str:
    md = data["models"]
    if "error" in md:
        return _note(f"No regional-model comparison: {md['error']}.")
    comp = md["comparison"]
    regions = data["regions"]
    titles = [f"PC{i + 1} ({r:.0%} of persona variance)" for i, r in enumerate(md["explained"])] + ["PC2"]
    fig = figures.model_map(md["placed"], clouds=md["cloud"], regions=regions, axis_titles=titles[:2],
                            label_models=False)
    summary = explore.nearest_summary(comp.nearest)
    summary.insert(1, "region", summary["model"].map(regions))
    cap = (f"Every number in this section is computed on the {comp.n_questions:,} questions that every model and "
           "persona answered. The PCA is fitted on the personas and frozen; the faint clouds are bootstrap "
           "replicates of each model's point.")
    return (f'<p class="caption">{html.escape(cap)}</p>' + chart(fig, name="models-map")
            + "<h3>Nearest persona of each model</h3>"
            + html_table(summary, formats={"share nearest": lambda v: f"{v:.0%}"}) + _define("nearest"))


def _probes_html(data: Mapping[str, Any]) -> str:
    cards = data["probes"]
    if not cards:
        return _note("No probe run is stored.")
    parts = []
    for c in cards:
        near = c.get("nearest_persona") or {}
        facts = [("Run", c["run_id"]), ("Model", f"{c.get('model') or '–'} @ {c.get('endpoint_host') or '–'}"),
                 ("Persona prompt", c.get("persona") or "none"),
                 ("Status", f"{c.get('status')}" + (f" ({c['stop_reason']})" if c.get("stop_reason") else "")),
                 ("Answered", f"{c['answered']:,} of {c['planned']:,} planned ({c['completeness']:.0%}); "
                              f"failed {c['failed']}, refused {c['refused']}, unparsed {c['unparsed']}, "
                              f"cached {c['cached']}"),
                 ("Tokens", f"{c['prompt_tokens']:,} prompt, {c['completion_tokens']:,} completion"),
                 ("Started / ended", f"{c['started_at']} / {c['ended_at']}"),
                 ("Nearest persona", f"{near['respondent']} ({near['distance']:.3f})" if near else "–")]
        body = "<dl class=facts>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                                           for k, v in facts) + "</dl>"
        pos = pd.DataFrame(c["positions"])
        if not pos.empty:
            pos = pos.assign(interval=[f"[{_fmt(lo)}, {_fmt(hi)}]" for lo, hi in zip(pos["ci_low"], pos["ci_high"])])
            body += html_table(pos[["dimension", "position", "interval", "na_rate", "n"]],
                           formats={"dimension": lambda d: figures.dimension_label(int(d)),
                                    "n": lambda v: _fmt(v, 1)})
        parts.append(f'<article class="card"><h3>{html.escape(str(c["respondent"]))}</h3>{body}</article>')
    from fairpp.probe.summary import DEFINITION

    return "".join(parts) + f'<p class="definition">{html.escape(DEFINITION)}</p>'


def _experiments_html(data: Mapping[str, Any]) -> str:
    cards = data["experiments"]
    if not cards:
        return _note("No training experiment is stored (`fairpp compare ... --save NAME` stores one).")
    parts = []
    for x in cards:
        facts = [("Target persona", x.get("target")), ("Questions", f"{x.get('n_questions', 0):,}"),
                 ("Split", x.get("split") or "all"), ("JS base", x.get("base")),
                 ("Intervals", f"{x.get('level', 0.95):.0%} bootstrap, {x.get('n_boot', '–')} replicates")]
        body = "<dl class=facts>" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
                                           for k, v in facts) + "</dl>"
        rows = pd.DataFrame(x.get("summary") or [])
        if not rows.empty:
            span = lambda r, k: f"{_fmt(r.get(k))} [{_fmt(r.get(k + '_low'))}, {_fmt(r.get(k + '_high'))}]"
            rows = pd.DataFrame([{"condition": r["condition"], "respondent": r.get("respondent"),
                                  "JS to target": span(r, "js_target"), "mean JS to others": span(r, "js_others"),
                                  "gap (others − target)": span(r, "gap"),
                                  "agreement with target": span(r, "agreement_target"),
                                  "nearest persona": r.get("nearest")} for r in rows.to_dict("records")])
            body += html_table(rows)
        parts.append(f'<article class="card"><h3>{html.escape(str(x["experiment_id"]))}</h3>{body}</article>')
    return "".join(parts) + _note("A positive gap: the condition sits nearer the target than the other personas.")


def _reweight_html(data: Mapping[str, Any], chart: _Charts) -> str:
    from fairpp.figures import reweight as rwfig

    rw = data["reweight"]
    result = rw["result"]
    s = result.summary()
    cap = (f"Target {result.target}, K = {result.K} personas, alpha = {result.alpha:g}, beta = {result.beta:g}: "
           f"{s['records']:,} questions answered by every persona ({s['excluded']:,} left out), {rw['pairs']:,} "
           "training pairs. Weight of a record in tier i: T_i = (i / K)^alpha · (1 / N_i)^beta, normalised to sum 1.")
    tiers = result.tiers[["tier", "count", "weight", "share"]]
    return (f'<p class="caption">{html.escape(cap)}</p>' + chart(rwfig.tier_chart(result.tiers), name="tiers")
            + html_table(tiers, digits=6, formats={"tier": str, "count": lambda v: f"{int(v):,}"})
            + chart(rwfig.distribution_chart(rw["effect"]), name="weighting-effect")
            + chart(rwfig.js_chart(rw["effect"]), name="weighting-js"))


# -- single figures ------------------------------------------------------------------------------------------------
#: The report's named figures -> the section that draws them (``fairpp figure NAME``).
FIGURES = {"radar": "positions", "positions-bars": "positions", "cluster-map": "clusters", "distances": "distances",
           "models-map": "models", "tiers": "reweight", "weighting-effect": "reweight", "weighting-js": "reweight"}
_DRAW = {"positions": _positions_html, "clusters": _clusters_html, "distances": _distances_html,
         "models": _models_html, "reweight": _reweight_html}


def report_figures(store: Any, names: Sequence[str], *, filters: Mapping[str, Sequence[Any]] | None = None,
                   reweight_target: str | None = None, **options: Any) -> dict[str, Any]:
    """The report's own figures by name (see :data:`FIGURES`), drawn as the report draws them.

    Raises :class:`FairppError` for an unknown name or one the data cannot draw (e.g. no models loaded).
    """
    bad = [n for n in names if n not in FIGURES]
    if bad:
        raise FairppError(f"unknown figure(s) {', '.join(bad)}: use {', '.join(FIGURES)}")
    sections = list(dict.fromkeys(FIGURES[n] for n in names))
    if "reweight" in sections and not reweight_target:
        raise FairppError("the reweighting figures need a target persona (--target NAME)")
    data = report_data(store, sections=sections, filters=filters, reweight_target=reweight_target, **options)
    drawn: dict[str, Any] = {}

    def keep(fig: Any, *, name: str) -> str:
        drawn[name] = fig
        return ""

    for sid in sections:
        _DRAW[sid](data, keep)  # type: ignore[arg-type]
    missing = [n for n in names if n not in drawn]
    if missing:
        raise FairppError(f"no {', '.join(missing)} figure for these data and filters (too few dimensions, "
                          "respondents or models); see the report's note")
    return {n: drawn[n] for n in names}


# -- the document -----------------------------------------------------------------------------------------------
_CSS = """
:root { --ink: #1a1a1a; --muted: #5a5a5a; --line: #dcdcdc; --accent: #0072B2; }
* { box-sizing: border-box; }
body { font-family: "Source Sans Pro", "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink);
       margin: 0; background: #fafafa; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 2rem; margin: 0.2em 0; } h2 { border-bottom: 2px solid var(--line); padding-bottom: 4px;
     margin-top: 2.2em; } h3 { margin-top: 1.4em; }
.subtitle { color: var(--muted); margin: 0 0 1em; }
.synthetic { background: #fff3cd; border: 2px solid #d39e00; color: #5c4400; font-weight: 700;
             font-size: 1.15rem; padding: 12px 16px; border-radius: 6px; margin: 12px 0; }
nav.toc { font-size: 0.95rem; margin: 8px 0 0; } nav.toc a { margin-right: 14px; color: var(--accent); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 8px 0; }
dl.facts dt { font-weight: 600; color: var(--muted); } dl.facts dd { margin: 0; }
.table-wrap { overflow-x: auto; margin: 10px 0; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; white-space: nowrap; }
th { background: #f2f2f2; }
table.matrix { font-size: 0.76rem; }
table.matrix th { white-space: normal; overflow-wrap: anywhere; max-width: 6.2em; vertical-align: bottom; padding: 3px 4px; }
table.matrix td { padding: 3px 4px; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.chart { margin: 10px 0; border: 1px solid #eee; border-radius: 4px; padding: 4px; }
.definition { color: var(--muted); font-size: 0.92rem; margin: 6px 0; }
.caption { color: var(--muted); font-size: 0.92rem; }
.note { background: #f2f6fa; border-left: 4px solid var(--accent); padding: 8px 12px; }
article.card { border: 1px solid var(--line); border-radius: 6px; padding: 4px 16px 10px; margin: 12px 0; }
footer { color: var(--muted); font-size: 0.85rem; margin-top: 3em; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { body { background: #fff; } main { max-width: none; padding: 0 8mm; }
               section, figure.chart, article.card { break-inside: avoid; } th { position: static; } }
"""

_TITLES = {"source": "Data source", "definitions": "Definitions used", "positions": "Persona positions",
           "clusters": "Cluster map", "distances": "Distances", "models": "Regional models",
           "probes": "Probe runs", "experiments": "Training experiments", "reweight": "Reweighting summary"}


def _sections(sections: Sequence[str] | None, reweight_target: str | None) -> list[str]:
    if sections is None:
        wanted = list(DEFAULT_SECTIONS) + (["reweight"] if reweight_target else [])
    else:
        wanted = [s.strip().lower() for s in sections if s.strip()]
        bad = [s for s in wanted if s not in SECTIONS]
        if bad:
            raise FairppError(f"unknown report section(s) {', '.join(bad)}: use {', '.join(SECTIONS)}")
        if "reweight" in wanted and not reweight_target:
            raise FairppError("the reweight section needs a target persona (--target NAME)")
    return [s for s in SECTIONS if s in wanted]


def build_report(store: Any, *, sections: Sequence[str] | None = None,
                 filters: Mapping[str, Sequence[Any]] | None = None, title: str = "Fair-PP Explorer report",
                 unit: str = "specific_problem", base: str = "2", reweight_target: str | None = None,
                 alpha: float = 1.0, beta: float = 1.0) -> str:
    """One self-contained HTML document of the ``sections`` (default: all but ``reweight``) under ``filters``.

    The reweighting summary is built only when ``reweight_target`` is given. Raises :class:`FairppError` on an
    unknown section or when nothing is loaded.
    """
    chosen = _sections(sections, reweight_target)
    if store.is_empty():
        raise FairppError("nothing is loaded; run `fairpp demo` or `fairpp load FILE` first")
    data = report_data(store, sections=chosen, filters=filters, unit=unit, base=base,
                       reweight_target=reweight_target, alpha=alpha, beta=beta)
    synthetic = bool(data["info"]["source"].get("synthetic"))
    chart = _Charts()
    body = []
    for sid in chosen:
        if sid == "source":
            inner = _source_html(data)
        elif sid == "definitions":
            inner = _definitions_html(base)
        elif sid == "positions":
            inner = _positions_html(data, chart)
        elif sid == "clusters":
            inner = _clusters_html(data, chart)
        elif sid == "distances":
            inner = _distances_html(data, chart)
        elif sid == "models":
            inner = _models_html(data, chart)
        elif sid == "probes":
            inner = _probes_html(data)
        elif sid == "experiments":
            inner = _experiments_html(data)
        else:
            inner = _reweight_html(data, chart)
        body.append(_section(sid, _TITLES[sid], inner))
    machine = json.dumps(_machine(data, chosen), ensure_ascii=False, allow_nan=False)
    machine = machine.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    src = data["info"]["source"]
    banner = (f'<div class="synthetic" role="alert">⚠ {html.escape(figures.SYNTHETIC_BANNER)}</div>'
              if synthetic else "")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    toc = " ".join(f'<a href="#{s}">{html.escape(_TITLES[s])}</a>' for s in chosen)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style>
</head><body><main>
<header><h1>{html.escape(title)}</h1>
<p class="subtitle">Data: {html.escape(str(src.get('label') or '–'))} · generated {stamp}</p>
{banner}<nav class="toc">{toc}</nav></header>
{''.join(body)}
<footer>Built by <code>fairpp report</code>. Self-contained: the charts are interactive and need no network.
{'Synthetic demo data — every number here is made up.' if synthetic else ''}</footer>
<script type="application/json" id="fairpp-data">{machine}</script>
</main></body></html>
"""
