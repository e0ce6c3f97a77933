"""Probe a model: point at any OpenAI-compatible endpoint and watch it land among the personas and models."""
import streamlit as st

from fairpp import explore, figures, probe, ui
from fairpp.figures.probe import probe_map
from fairpp.probe.summary import DEFINITION
from fairpp.schema import FairppError
from fairpp.ui import probe as pui

sel = ui.selection()
st.title("Probe a model")
st.caption("Ask a model the Fair-PP questions through any OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, "
           "Ollama, llama.cpp server, LM Studio) and see where it lands on the frozen PCA map of the personas and "
           "regional models. Answers are stored as they arrive; a run stopped at any point resumes without asking "
           "an answered question again. Keys are never stored.")
resp = ui.data.respondents(sel.version)
regions = dict(zip(resp["respondent"], resp["region"]))
try:
    base = pui.base_map(sel)
except FairppError as exc:
    base = None
    st.info(f"No map: {exc}. Probes still run; their positions show in the tables.")


def draw_map(run_ids: list[str], key: str) -> None:
    """The frozen PCA map with the given runs' points, bootstrap clouds and 95% ellipses."""
    if base is None:
        return
    points, clouds = pui.probe_layer(run_ids, base)
    fig = probe_map(base["placed"], clouds=base["cloud"], probes=points, probe_clouds=clouds, regions=regions,
                    axis_titles=base["titles"])
    ui.chart(fig, key=key, data=points, filename="fairpp-probe-map")
    st.caption("Stars are probed models, with their bootstrap cloud (questions resampled) and its 95% ellipse; "
               "the map is the Regional models page's, fitted on the personas and frozen.")


def run_tab() -> None:
    try:
        endpoint = pui.endpoint_form()
        if endpoint is None:
            st.info("Pick a preset or type the endpoint's base URL, and give the model id.")
            return
        pui.connection_test(endpoint)
        config = pui.config_form(endpoint)
        if config is None:  # the form showed what contradicts
            return
        plan = probe.plan_probe(ui.data.get_store(), config)
    except FairppError as exc:
        st.error(str(exc))
        return
    worst = max(plan.expected_widths.values())
    st.markdown(f"**Plan:** {plan.describe()}. Run id `{plan.run_id}`.")
    st.caption(f"Expected 95% interval width per dimension before the run: at most ±{worst / 2:.2f} around each "
               "position (worst case, p = 0.5); more questions narrow it.")
    run = pui.current_run()
    busy = run is not None and not run.finished
    if st.button("Start probe", key="probe.start", type="primary", disabled=busy, icon=":material/play_arrow:"):
        try:
            run = pui.start(plan)
        except FairppError as exc:
            st.error(str(exc))
        busy = run is not None and not run.finished
    if run is None:
        return
    live(run, busy)


def live(run, busy: bool) -> None:
    @st.fragment(run_every=1.0 if busy else None)
    def panel() -> None:
        if pui.finished_polling():
            st.rerun(scope="app")
        st.subheader(f"{run.respondent}")
        if not run.finished and st.button("Cancel", key="probe.cancel", icon=":material/stop:"):
            run.cancel()
        pui.progress(run.snapshot())
        draw_map([run.run_id], "probe.map")
        try:
            pui.nearest(run.run_id, regions)
        except FairppError as exc:
            st.info(str(exc))
    panel()
    if run.finished:
        compare(run.run_id)


def compare(run_id: str) -> None:
    """Per-dimension comparison of the run with the personas and regional models, on the run's questions."""
    st.subheader("Per dimension, against the personas and the regional models")
    pos = probe.probe_positions(ui.data.get_store(), run_id)
    if pos.empty:
        st.info("No answer yet.")
        return
    ui.chart(figures.position_strip(pos, regions=regions), key="probe.strip", data=pos, filename="fairpp-probe-dims")
    ui.table(explore.position_table(pos))
    st.caption(DEFINITION)


def past_tab() -> None:
    runs = pui.runs_frame()
    if runs.empty:
        st.info("No probe run yet: start one in the first tab, or import a probe pack below.")
    else:
        ui.table(runs, column_config={"completeness": st.column_config.ProgressColumn(
            format="percent", min_value=0.0, max_value=1.0)})
        names = dict(zip(runs["run_id"], runs["respondent"]))
        picked = ui.params.multiselect("Compare runs", list(names), default=list(names)[:2], key="probe.compare",
                                       format_func=names.get)
        if picked:
            draw_map(picked, "probe.compare_map")
            ui.table(pui.positions_table(picked))
    st.subheader("Probe packs")
    try:
        pui.pack_panel(runs)
    except FairppError as exc:
        st.error(str(exc))


LABELS = ["Run a probe", "Past runs & packs"]
for tab, draw in zip(st.tabs(LABELS, key="probe.section", bind="query-params"), (run_tab, past_tab)):
    if tab.open:
        with tab:
            draw()
