"""Persona lab: define a persona, role-play it on a stratified sample against an endpoint, see where it lands."""
import pandas as pd
import streamlit as st

from fairpp import figures, ui
from fairpp.figures.probe import probe_map
from fairpp.generate.personas import add_persona, list_personas, remove_persona
from fairpp.generate.run import plan_generation
from fairpp.probe import Endpoint, ProbeRun, list_runs, probe_positions, run_summary
from fairpp.schema import FairppError
from fairpp.ui import probe as pui

sel = ui.selection()
st.title("Persona lab")
st.caption("Write a persona's portrayal, have a model role-play it on a stratified sample of the template "
           "questions, and see where it lands beside the seven built-in personas.")
store = ui.data.get_store()
RUN = "persona_lab.active_run"  # the ProbeRun started from this session (session state only)

has_own = any(not p.builtin for p in list_personas(store))
with st.expander("Define a persona", icon=":material/person_add:", expanded=not has_own), \
        st.form("persona_lab.define", clear_on_submit=True):
    name = st.text_input("Name", key="persona_lab.name", placeholder="e.g. Rural Pragmatists")
    portrayal = st.text_area("Portrayal (second person: “You are …”)", key="persona_lab.portrayal", height=140)
    description = st.text_input("One-line description (optional)", key="persona_lab.description")
    if st.form_submit_button("Save persona", icon=":material/save:"):
        try:
            saved = add_persona(store, name, portrayal, description)
            st.session_state["persona_lab.persona"] = saved.name  # select it below
            st.success(f"Saved {saved.name!r}.")
        except FairppError as exc:
            st.error(str(exc))

personas = list_personas(store)
names = [p.name for p in personas]
c = st.columns([3, 1])
chosen = ui.params.selectbox("Persona", names, key="persona_lab.persona", where=c[0],
                             default=next((p.name for p in personas if not p.builtin), names[0]))
persona = next(p for p in personas if p.name == chosen)
st.caption(f"**{'Built-in' if persona.builtin else 'Your'} persona.** {persona.portrayal}")
if not persona.builtin and c[1].button("Remove", key="persona_lab.remove", icon=":material/delete:"):
    remove_persona(store, persona.name)
    st.rerun()

st.subheader("Role-play it")
e = st.columns([3, 2, 1, 1])
base_url = ui.params.text_input("Base URL", key="persona_lab.base_url", where=e[0],
                                placeholder="http://localhost:8000/v1")
model = ui.params.text_input("Model", key="persona_lab.model", where=e[1])
n = ui.params.number_input("Questions", key="persona_lab.n", default=100, min_value=10, max_value=2000, step=10,
                           where=e[2])
api_key = e[3].text_input("API key", type="password", key="persona_lab.api_key", help="kept in this session only")

if st.button("Run", key="persona_lab.run", icon=":material/play_arrow:", type="primary",
             disabled=not (base_url and model)):
    try:
        endpoint = Endpoint(base_url, model, api_key=api_key or None)
        job = plan_generation(store, [persona], endpoint, n=int(n), concurrency=8)[0]
        st.session_state[RUN] = ProbeRun(store, job.plan).start()
    except FairppError as exc:
        st.error(str(exc))


@st.fragment(run_every=1.0 if st.session_state.get(RUN) is not None else None)  # poll only while a run is on
def progress() -> None:
    """Poll the active run; when it ends, mark its respondent as a custom persona and redraw the page."""
    run = st.session_state.get(RUN)
    if run is None:
        return
    s = run.snapshot()
    st.progress(min(s.done / max(len(run.plan.tasks), 1), 1.0),
                text=f"{run.respondent}: {s.done}/{len(run.plan.tasks)} answered, {s.failed} failed ({s.status})")
    if run.finished:
        from fairpp.store.personas import PersonaStore

        PersonaStore(store).mark_custom(run.respondent, description=f"{run.plan.config.endpoint.model} as "
                                        f"{run.plan.config.persona_name or 'a user-defined persona'}")
        del st.session_state[RUN]
        st.rerun()


progress()

st.subheader("Where it lands")
runs = list_runs(store)
if len(runs) and "respondent" in runs.columns:
    runs = runs[runs["respondent"].astype(str).str.startswith(f"{chosen} (")]
if runs.empty:
    st.info(f"No role-play run of {chosen!r} yet: give an endpoint and press Run, or use "
            f"`fairpp generate --persona \"{chosen}\" --base-url URL --model ID`.")
    st.stop()
run_id = ui.params.selectbox("Run", runs["run_id"].tolist(), key="persona_lab.run_id",
                             format_func=lambda r: f"{runs.set_index('run_id').loc[r, 'respondent']} · {r} · "
                                                   f"{runs.set_index('run_id').loc[r, 'status']}")
summary = run_summary(store, run_id)
pos = probe_positions(store, run_id, kinds=("persona",))
me = summary["respondent"]
shown = [me, *[p.name for p in personas if p.builtin]]
pos = pos[pos["respondent"].isin(shown) & pos["dimension"].isin(sel.dims)]
m = st.columns(3)
m[0].metric("Answered", f"{summary['answered']}/{summary['planned']}")
m[1].metric("Nearest persona", summary["nearest_persona"]["respondent"] if summary["nearest_persona"] else "–")
m[2].metric("Refused / unparsed", f"{summary['refused']} / {summary['unparsed']}")
def map_tab() -> None:
    """The frozen PCA map of the seven personas with this run's point, bootstrap cloud and 95% ellipse."""
    try:
        base = pui.base_map(sel)
    except FairppError as exc:
        st.info(f"No map: {exc}. The per-dimension view still shows the positions.")
        return
    placed, cloud = base["placed"], base["cloud"]
    points, clouds = pui.probe_layer([run_id], base)
    if points.empty:
        st.info("The run has no answer on every dimension of the map yet; the per-dimension view shows what it has.")
    fig = probe_map(placed[placed["respondent"].isin(shown)],
                    clouds=cloud[cloud["respondent"].isin(shown)] if "respondent" in cloud else cloud,
                    probes=points, probe_clouds=clouds, axis_titles=base["titles"])
    fig.update_traces(legendgrouptitle_text="Role-played persona", selector={"legendgroup": "Probed models"})
    fig.update_layout(legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.2, "yanchor": "top"})
    ui.chart(fig, key="persona_lab.map", data=points, filename=f"fairpp-persona-lab-map-{ui.slug(chosen)}")
    st.caption("The star is this run, with its bootstrap cloud (questions resampled) and 95% ellipse, on the "
               "map fitted on the seven personas and frozen (the Regional models page's map).")


def dimensions_tab() -> None:
    ui.chart(figures.dimension_bars(pos, respondents=shown), key="persona_lab.bars", data=pos,
             filename=f"fairpp-persona-lab-{ui.slug(chosen)}")
    ui.define("position")


for tab, draw in zip(st.tabs(["Map", "Per dimension"], key="persona_lab.section", bind="query-params"),
                     (map_tab, dimensions_tab)):
    if tab.open:
        with tab:
            draw()
st.markdown("**Nearest neighbours** (distance between 5-D positions, on the questions this run asked)")
if summary["distances"]:
    ui.table(pd.DataFrame(summary["distances"]), key="persona_lab.neighbours")
else:
    st.info("No distances yet: the run has no A/B answers to place it (only N/A, refused or unparsed).")
