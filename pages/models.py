"""Regional models: the models and the personas on one frozen PCA map, nearest personas, per-dimension comparison."""
import streamlit as st

from fairpp import explore, figures, ui
from fairpp.schema import FairppError

sel = ui.selection()
st.title("Regional models")
resp = ui.data.respondents(sel.version)
if not (resp["kind"] == "model").any():
    st.info("No mainstream model is loaded. The published dataset holds six; load it on the Data page.")
    st.stop()
try:
    comp = ui.data.model_comparison(sel)
except FairppError as exc:
    st.info(str(exc))
    st.stop()
regions = dict(zip(resp["respondent"], resp["region"]))
personas = resp.loc[resp["kind"] == "persona", "respondent"].tolist()
st.caption(f"Every number on this page is computed on the **{comp.n_questions:,} questions that every shown model "
           f"and persona answered** (in the published data, the test split), so all respondents are measured on "
           f"the same questions. Filters: {sel.describe()}.")


def map_tab() -> None:
    """The frozen PCA map with bootstrap clouds, and each model's nearest persona."""
    c1, c2 = st.columns(2)
    clouds = ui.params.toggle("Bootstrap clouds (100 replicates per model)", key="models.clouds", default=True,
                              where=c1)
    labels = ui.params.toggle("Label models on the map", key="models.labels", where=c2)
    try:
        if len(comp.dims) < 2:
            raise FairppError("the map needs at least two dimensions; clear the dimension filter")
        placed, cloud, explained = ui.data.model_map(sel, tuple(personas))
    except FairppError as exc:
        st.info(f"No map: {exc}. The table below still applies.")
    else:
        titles = [f"PC{i + 1} ({r:.0%} of persona variance)" for i, r in enumerate(explained)] + ["PC2"]
        fig = ui.figure(figures.model_map, placed, clouds=cloud if clouds else None, regions=regions,
                        axis_titles=titles[:2], label_models=labels)
        picked = ui.chart(fig, key="models.map", data=placed, filename="fairpp-models-map", select=True)
        ui.define("pca")
        st.caption("The two axes are not drawn to the same scale; distances in the table below are measured in the "
                   "full position space. Colours and symbols of models mark their region (two models of one region: "
                   "filled and open). "
                   "The faint clouds show where each model's point moves when the questions are resampled. "
                   "Click a point (shift-click for more) to see its positions.")
        rows = ui.selected(picked, ["respondent"])
        if not rows.empty:
            ui.table(explore.position_table(comp.positions[comp.positions["respondent"].isin(rows["respondent"])]))
    st.subheader("Nearest persona of each model")
    summary = explore.nearest_summary(comp.nearest)
    summary.insert(1, "region", summary["model"].map(regions))
    ui.table(summary, column_config={
        "distance": st.column_config.NumberColumn(format="%.3f"),
        "share nearest": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)})
    ui.define("nearest")
    with st.expander("All model × persona distances"):
        ui.table(comp.nearest)
    ui.download_frame(comp.nearest, key="models.nearest.csv", file_name="fairpp-nearest-persona.csv",
                      label="Distances (CSV)")


def dimensions_tab() -> None:
    """Models against personas, dimension by dimension, with 95% intervals."""
    order = [*personas, *[r for r in resp["respondent"] if r not in personas]]
    shown = [r for r in order if r in set(comp.positions["respondent"])]
    ui.chart(ui.figure(figures.position_strip, comp.positions, respondents=shown, regions=regions), key="models.strip",
             data=comp.positions, filename="fairpp-models-vs-personas")
    wide = explore.position_table(comp.positions)
    ui.static_table(wide.set_index("respondent").loc[shown].reset_index())
    ui.define("position")


LABELS = ["Map & nearest persona", "Per-dimension comparison"]
for tab, draw in zip(st.tabs(LABELS, key="models.section", bind="query-params"), (map_tab, dimensions_tab)):
    if tab.open:
        with tab:
            draw()
