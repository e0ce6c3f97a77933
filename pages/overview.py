"""Overview: what is loaded (counts, provenance), the taxonomy, the answer mix, the five dimensions."""
import pandas as pd
import streamlit as st

from fairpp import explore, figures, ui

sel = ui.selection()
st.title("Overview")
info = ui.data.info(sel.version)
if not info["questions"]:
    st.info("No data is loaded. Load a file or the published dataset on the Data page.")
    st.stop()

tax = ui.data.question_counts(sel, ("topic", "problem_category", "specific_problem"))
people = info["respondents"]
cols = st.columns(5)
cols[0].metric("Questions shown", f"{int(tax['n'].sum()):,}", help=f"of {info['questions']:,} loaded")
cols[1].metric("Answers loaded", f"{info['answers']:,}")
cols[2].metric("Personas", people.get("persona", 0))
cols[3].metric("Regional models", people.get("model", 0))
cols[4].metric("Other respondents", sum(v for k, v in people.items() if k not in ("persona", "model")),
               help="probed models and custom personas")
st.caption(f"Filters: {sel.describe()}")

left, right = ui.row(2)
with left:
    st.subheader("Taxonomy")
    kind = ui.params.radio("View", ["sunburst", "treemap"], key="overview.taxonomy", label_visibility="collapsed")
    if tax.empty:
        st.info("No question matches the filters.")
    else:
        order = {t: i for i, t in enumerate(explore.taxonomy_order("topic"))}
        tax = tax.sort_values("topic", key=lambda s: s.map(order), kind="stable")
        ui.chart(ui.figure(figures.taxonomy_chart, tax, kind=kind), key="overview.taxonomy_chart", data=tax,
                 filename="fairpp-taxonomy",
                 caption="Topic → problem category (→ specific problem: click a sector to zoom in), sized by the "
                         "number of questions shown.")
with right:
    st.subheader("Answer mix")
    mix = ui.data.answer_mix(sel)
    if mix.empty:
        st.info("No answers match the filters.")
    else:
        # in its column the plot is about 220 px wide (the names take the rest), which sizes the legend's room
        ui.chart(ui.figure(figures.answer_mix, mix, width=220), key="overview.answer_mix", data=mix,
                 filename="fairpp-answer-mix")
        ui.define("answer_mix")

st.subheader("The five preference dimensions")
dims = pd.DataFrame([{"dimension": f"{d['number']} · {d['name']}",
                      "A · first pole (position 0)": f"{d['pole_a']}: {d['a_means']}",
                      "B · second pole (position 1)": f"{d['pole_b']}: {d['b_means']}"} for d in figures.dimensions()])
ui.static_table(dims)
ui.define("position")

st.subheader("Provenance")
prov = explore.provenance(ui.data.sources(sel.version))
ui.table(prov)
st.caption("Every load with its files and SHA-256 hashes; “in use” marks the loads behind the numbers shown.")
