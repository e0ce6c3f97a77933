"""Data: load files (upload or path), fetch the published dataset, the data-quality report, downloads."""
import streamlit as st

from fairpp import explore, ui
from fairpp.config import settings
from fairpp.schema import FairppError

TABLES = ["questions", "answers", "respondents", "sources"]

sel = ui.selection()
st.title("Data")
flash = st.session_state.pop("data.flash", None)
if flash:
    st.success(flash, icon=":material/check_circle:")


def _refused(exc: FairppError) -> None:
    """Show why a load was refused, and keep the reason for the data-quality report."""
    st.error(str(exc), icon=":material/block:")
    st.session_state["data.refused"] = str(exc)


def _loaded(report: dict) -> None:
    """After a successful load: remember a message and redraw everything on the new data."""
    st.session_state.pop("data.refused", None)
    source = report.get("label") or "the files"
    st.session_state["data.flash"] = (f"Loaded {report.get('questions', 0):,} questions and "
                                      f"{report.get('answers', 0):,} answers from {source}.")
    st.rerun()


src = ui.data.active_source(sel.version)
st.subheader(f"In use: {ui.source_kind(src)}")
if src:
    st.markdown(f"{src['label']} · loaded {str(src['loaded_at'])[:19]} UTC · database `{settings().db}`")

# -- load ------------------------------------------------------------------------------------------------------
st.subheader("Load your data")
st.caption("CSV or Parquet in the Fair-PP layout (columns such as `Perspective`, `Question`, "
           "`gpt-4o-mini_role_1_answer`) or the tidy layout (`text`, `dimension`, `respondent`, `answer`). Files are "
           "read strictly: a malformed file is refused with the reason, and the data in use stays as it was.")
append = st.checkbox("Add to the data in use instead of replacing it", key="data.append")
up, path_col = st.columns(2, gap="large")
with up:
    files = st.file_uploader("Upload files", type=["csv", "tsv", "parquet", "pq"], accept_multiple_files=True,
                             key="data.upload")
    if st.button("Load uploaded files", key="data.load_upload", disabled=not files, icon=":material/upload:"):
        try:
            report = ui.data.load_files(files, append=append)
        except FairppError as exc:
            _refused(exc)
        else:
            _loaded(report)
with path_col:
    paths = st.text_input("…or paths on the server (comma-separated)", key="data.path",
                          placeholder="/data/fairpp_train.csv, /data/fairpp_test.csv")
    if st.button("Load from path", key="data.load_path", disabled=not paths.strip(), icon=":material/folder_open:"):
        try:
            report = ui.data.load_paths([p.strip() for p in paths.split(",") if p.strip()], append=append)
        except FairppError as exc:
            _refused(exc)
        else:
            _loaded(report)

c1, c2 = st.columns(2, gap="large")
with c1:
    st.markdown("**Published dataset** (Hugging Face hub, `tools-o/Fair-PP`)")
    simulation = st.checkbox("Also the scenario (simulation) set", key="data.simulation")
    if st.button("Fetch the published dataset", key="data.fetch", icon=":material/cloud_download:"):
        with st.spinner(f"Contacting the hub (gives up after {settings().hub_timeout:g} s without an answer)…"):
            try:
                report = ui.data.load_hub(simulation=simulation, append=append)
            except FairppError as exc:
                _refused(exc)
            else:
                _loaded(report)
with c2:
    st.markdown("**Synthetic demo** (for trying the tool; not the paper's results)")
    if st.button("Rebuild the synthetic demo", key="data.demo", icon=":material/science:"):
        with st.spinner("Building the demo…"):
            _loaded(ui.data.load_demo())

# -- quality ---------------------------------------------------------------------------------------------------
st.subheader("Data quality")
report = st.session_state.get("data.report")
if src:
    m = st.columns(4)
    m[0].metric("Rows read", f"{src['rows_read']:,}")
    m[1].metric("Rows rejected", f"{src['rows_rejected']:,}",
                help="The readers are strict: a file with a malformed row is refused as a whole, with the reason.")
    if report:
        m[2].metric("Questions (last load)", f"{report.get('questions', 0):,}")
        m[3].metric("Answers (last load)", f"{report.get('answers', 0):,}")
if st.session_state.get("data.refused"):
    st.warning(f"Last refused load (nothing was changed): {st.session_state['data.refused']}",
               icon=":material/report:")
mix = ui.data.answer_mix(ui.Selection(version=sel.version))
quality = mix.pivot_table(index=["respondent", "kind"], columns="answer", values="count", sort=False).reset_index()
quality.insert(2, "replies", quality[[c for c in ("A", "B", "C", "unparsed") if c in quality]].sum(axis=1))
ui.table(quality, column_config={c: st.column_config.NumberColumn(format="%d")
                                 for c in ("replies", "A", "B", "C", "unparsed")})
st.caption("Replies per respondent over all loaded questions: A, B, C (N/A) and unparsed or refused replies, "
           "which are counted apart and never silently turned into C.")
ui.table(explore.provenance(ui.data.sources(sel.version)))

# -- download --------------------------------------------------------------------------------------------------
st.subheader("Download")
c = st.columns([2, 1, 2])
name = ui.params.selectbox("Table", TABLES, key="data.table", where=c[0])
fmt = ui.params.radio("Format", ["csv", "parquet"], key="data.format", where=c[1])
with c[2]:
    st.write("")
    ui.download_frame(ui.data.table_reader(name), key="data.download", file_name=f"fairpp-{name}.{fmt}",
                      fmt=fmt, label=f"Download {name} ({fmt.upper()})")
