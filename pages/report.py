"""Report: the self-contained HTML report of the loaded data under the sidebar filters, with a preview and downloads."""
import tempfile
from pathlib import Path

import streamlit as st

from fairpp import report, ui
from fairpp.report_cli import chromium_path, write_pdf
from fairpp.schema import FairppError

sel = ui.selection()
st.title("Report")
st.caption("One HTML file that opens anywhere without a network: plotly is inlined, the charts stay interactive, "
           "and the numbers are embedded machine-readably (they equal `fairpp positions --json` and "
           "`fairpp distances --json`). Built for the data loaded now and the sidebar's question filters.")

LABELS = {"source": "Data source", "definitions": "Definitions", "positions": "Persona positions",
          "clusters": "Cluster map", "distances": "Distances", "models": "Regional models", "probes": "Probe runs",
          "experiments": "Training experiments", "reweight": "Reweighting summary"}

st.subheader("Sections")
boxes = st.container(horizontal=True, wrap=True, gap="medium")
chosen = [s for s in report.SECTIONS  # each choice is in the URL, so a copied link rebuilds the same report
          if ui.params.checkbox(LABELS.get(s, s), default=s in report.DEFAULT_SECTIONS, key=f"report.section.{s}",
                                where=boxes)]
target = None
if "reweight" in chosen:
    resp = ui.data.respondents(sel.version)
    personas = resp.loc[resp["kind"].isin(["persona", "custom"]), "respondent"].tolist()
    target = ui.params.selectbox("Target persona of the reweighting summary", personas, key="report.target")
c = st.columns([3, 1])
title = ui.params.text_input("Title", default="Fair-PP Explorer report", key="report.title", where=c[0])
base = ui.params.radio("JS log base", ["2", "e"], key="report.base", where=c[1],
                       help="2: distances in [0, 1] (default); e: the published code's natural log")
if sel.respondents is not None:
    st.caption("The report covers every respondent; the sidebar's respondent choice is not applied to it.")
if not chosen:
    st.info("Tick at least one section to build a report.")
    st.stop()


@st.cache_data(show_spinner="Building the report…", max_entries=4)
def _build(sel: ui.Selection, sections: tuple[str, ...], title: str, base: str, target: str | None) -> str:
    return report.build_report(ui.data.get_store(), sections=list(sections), filters=sel.as_filters(), title=title,
                               base=base, reweight_target=target)


try:
    doc = _build(sel, tuple(chosen), title.strip() or "Fair-PP Explorer report", base, target)
except FairppError as exc:
    st.error(str(exc))
    st.stop()

name = f"fairpp-report-{ui.slug(sel.describe())[:60]}"
info = ui.data.info(sel.version)
synthetic = bool(info["source"].get("synthetic"))
m = st.columns(3)
m[0].metric("Sections", len(chosen))
m[1].metric("Charts", doc.count('class="chart"'))
m[2].metric("Size", f"{len(doc.encode('utf-8')) / 1e6:.1f} MB")
st.caption(f"Filters: {sel.describe()}." + (" Labelled **synthetic demo data** throughout." if synthetic else ""))

b = st.container(horizontal=True, gap="small")
b.download_button("Report (HTML)", data=lambda: doc.encode("utf-8"), file_name=f"{name}.html", mime="text/html",
                  key="report.download_html", on_click="ignore", icon=":material/download:", type="primary")


def _pdf() -> bytes:
    """Print the report with headless Chromium (networking off) and return the PDF."""
    with tempfile.TemporaryDirectory(prefix="fairpp-report-") as tmp:
        html_path, pdf_path = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        html_path.write_text(doc, encoding="utf-8")
        write_pdf(html_path, pdf_path)
        return pdf_path.read_bytes()


no_pdf = None if chromium_path() else "A PDF needs Chromium (`apt-get install -y chromium`, or set FAIRPP_CHROMIUM)."
b.download_button("Report (PDF)", data=_pdf, file_name=f"{name}.pdf", mime="application/pdf",
                  key="report.download_pdf", on_click="ignore", icon=":material/picture_as_pdf:",
                  disabled=no_pdf is not None, help=no_pdf or "Printed by headless Chromium (takes a few seconds)")
st.caption("Same as `fairpp report --out FILE.html --sections " + ",".join(chosen)
           + (f' --target "{target}"' if target else "") + (" --base e" if base == "e" else "")
           + "`" + (" with `--slice` for each filter." if sel.filters else "."))

st.subheader("Preview")
if ui.params.toggle("Show the report here", key="report.preview", default=True):
    st.iframe(doc, height=900)
