"""Personas: positions with intervals (radar, bars), the cluster map, distances and agreement."""
import streamlit as st

from fairpp import analysis, explore, figures, ui
from fairpp.schema import FairppError

UNITS = {"specific_problem": "specific problem", "problem_category": "problem category", "group_name": "group",
         "group_type": "group type"}
METRICS = {"js": "Jensen-Shannon distance", "agreement": "Agreement", "kappa": "Cohen's kappa"}

sel = ui.selection()
st.title("Personas")
resp = ui.data.respondents(sel.version)
regions = dict(zip(resp["respondent"], resp["region"]))
names = [n for n in resp["respondent"] if sel.respondents is None or n in sel.respondents]
persona_set = set(resp.loc[resp["kind"] == "persona", "respondent"])
personas = [n for n in names if n in persona_set]


def positions_tab() -> None:
    """Radar and bars of the 5-D positions with 95% intervals."""
    pos = ui.data.positions(sel)
    if pos.empty:
        st.info("No answers match the filters. Widen them in the sidebar.")
        st.stop()
    c1, c2 = st.columns([4, 1])
    show = ui.params.multiselect("Respondents shown", names, key="personas.show", default=personas or names[:7],
                                 where=c1)
    layout = ui.params.radio("Radar layout", ["overlay", "side by side"], key="personas.layout", where=c2)
    sub = pos[pos["respondent"].isin(show)]
    if sub.empty:
        st.info("Pick at least one respondent to see positions.")
        st.stop()
    side = layout == "side by side"
    left, right = (st.container(), st.container()) if side else ui.row(2)
    with left:
        if len(sel.dims) >= 3:
            # beside the bars the radar is about 460 px wide, which sizes the legend's room above it
            fig = ui.figure(figures.radar, sub, respondents=show, side_by_side=side, regions=regions, width=460)
            ui.chart(fig, key="personas.radar", data=sub, filename="fairpp-radar")
            if side:
                st.caption(" · ".join(f"D{d} = {figures.dimension_label(d, style='poles')}" for d in sel.dims))
        else:
            st.info("A radar needs at least three dimensions; the bars show the selected ones.")
    with right:
        # beside the radar the plot is about 300 px wide, which sizes the legend's room above it
        ui.chart(ui.figure(figures.dimension_bars, sub, respondents=show, regions=regions, width=900 if side else 300),
                 key="personas.bars", data=sub, filename="fairpp-positions")
    ui.define("position")


def cluster_tab() -> None:
    """Respondent x slice points on a frozen PCA (or UMAP on request), with hulls or density."""
    c = st.columns([3, 2, 2, 3, 2])
    unit = ui.params.selectbox("One point per respondent ×", list(UNITS), key="personas.unit", format_func=UNITS.get,
                               where=c[0])
    method = ui.params.radio("Projection", ["PCA", "UMAP"], key="personas.projection", where=c[1])
    view = ui.params.radio("View", ["2-D", "3-D"], key="personas.view", where=c[2])
    overlay = ui.params.radio("Overlay", ["hulls", "density", "none"], key="personas.overlay", where=c[3])
    with_models = ui.params.toggle("Include models", key="personas.models", where=c[4])
    n_comp = 3 if view == "3-D" else 2
    kinds = None if with_models else ("persona",)
    if len(sel.dims) < 2:
        st.info("The map needs at least two dimensions; clear the dimension filter.")
        st.stop()
    try:
        proj = ui.data.unit_projection(sel, unit, "pca", n_comp, kinds)
        if method == "UMAP":
            if ui.data.umap_done(sel, unit, n_comp, kinds):
                proj = ui.data.unit_projection(sel, unit, "umap", n_comp, kinds)
            else:
                st.info("UMAP runs only when asked (the first run in a server process takes 15-25 s). "
                        "The PCA map is shown meanwhile.")
                if st.button("Compute UMAP", key="personas.umap_run", icon=":material/play_arrow:"):
                    with st.spinner("Computing UMAP…"):
                        ui.data.unit_projection(sel, unit, "umap", n_comp, kinds)
                    st.rerun()
    except FairppError as exc:
        st.error(str(exc))
        st.stop()
    axes = proj.attrs["axes"]
    titles = axes
    if "explained" in proj.attrs:
        what = "" if n_comp == 3 else " of persona variance"
        titles = [f"{a} ({r:.0%}{what})" for a, r in zip(axes, proj.attrs["explained"])]
    if overlay == "density" and n_comp == 3:
        st.caption("Density contours are drawn in 2-D only; the 3-D map shows hulls instead.")
    fig = ui.figure(figures.cluster_map, proj, x=axes[0], y=axes[1],
                    z=axes[2] if n_comp == 3 and len(axes) > 2 else None,
                    overlay="hulls" if overlay == "density" and n_comp == 3 else overlay,
                    regions=regions, unit_label=UNITS[unit], axis_titles=titles)
    picked = ui.chart(fig, key=f"personas.map_{n_comp}d", data=proj, filename=f"fairpp-cluster-map-{unit}",
                      select=n_comp == 2)
    ui.define("units", "umap" if "UMAP1" in proj.columns else "pca")
    dropped = proj.attrs.get("dropped", 0)
    st.caption(f"{len(proj):,} points over dimensions {', '.join(map(str, sel.dims))}"
               + (f"; {dropped} slice(s) left out (a dimension had no A/B answer)." if dropped else ".")
               + (" Box- or lasso-select points to list the slices and questions behind them." if n_comp == 2 else ""))
    rows = ui.selected(picked, ["respondent", "slice"])
    if not rows.empty:
        st.markdown(f"**Selected: {len(rows)} point(s)**")
        chosen = proj.merge(rows, on=["respondent", "slice"])
        ui.table(chosen.drop(columns=axes))
        qs, total = ui.data.question_page(sel.with_filters(**{unit: sorted(set(rows["slice"]))}), sort="divided",
                                          limit=100)
        st.caption(f"Questions behind the selected {UNITS[unit]}s: {total:,} (first 100, most divided first).")
        ui.table(qs[["text", "specific_problem", "group_name", "dimension", "split", "divided"]])


def distances_tab() -> None:
    """JS distance / agreement / kappa heatmap over the questions each pair shares."""
    c = st.columns(3)
    metric = ui.params.radio("Measure", list(METRICS), key="personas.metric", format_func=METRICS.get, where=c[0])
    base = ui.params.radio("Log base", ["2", "e"], key="personas.base", where=c[1],
                           format_func=lambda b: "base 2 (0..1)" if b == "2" else "natural log (paper)",
                           disabled=metric != "js")
    dim = ui.params.selectbox("Questions", ["all", *sel.dims], key="personas.matrix_dim", where=c[2],
                              format_func=lambda d: "all dimensions" if d == "all" else figures.dimension_label(d))
    dimension = None if dim == "all" else int(dim)
    res = ui.data.distances(sel, base, dimension) if metric == "js" else ui.data.agreement(sel, dimension)
    key = "js_distance" if metric == "js" else metric
    frame = analysis.matrix_frame(res, key)
    fig = ui.figure(figures.matrix_heatmap, frame, n_shared=res["n_shared"], metric=metric, base_label=base)
    ui.chart(fig, key="personas.matrix", data=explore.matrix_long(frame, res["n_shared"], value=key),
             filename=f"fairpp-{metric}")
    ui.define(metric)
    if metric == "js":
        st.caption("Base 2 keeps distances within [0, 1]; the natural log (the published code's scipy default) "
                   "tops out at √ln 2 ≈ 0.83. Shown: " + ("base 2." if base == "2" else "natural log."))


LABELS = ["Positions", "Cluster map", "Distances & agreement"]
for tab, draw in zip(st.tabs(LABELS, key="personas.section", bind="query-params"),
                     (positions_tab, cluster_tab, distances_tab)):
    if tab.open:
        with tab:
            draw()
