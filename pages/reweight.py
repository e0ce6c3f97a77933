"""Reweighting: tiers and weights for a target persona, what the weighting does, weighted DPO pair export."""
import json
import tempfile
from pathlib import Path

import streamlit as st

from fairpp import reweight, ui
from fairpp.figures.reweight import distribution_chart, js_chart, tier_chart

sel = ui.selection()
st.title("Reweighting")
st.caption("For a target persona, every question all personas answered gets a tier: 1 + the number of the "
           "other K−1 personas whose answer (A, B or N/A) differs from the target's. A record in tier i weighs "
           "T_i = (i/K)^α · (1/N_i)^β, normalised so all weights sum to 1 (α = β = 1 in the paper).")

resp = ui.data.respondents(sel.version)
personas = [n for n in resp.loc[resp["kind"] == "persona", "respondent"]
            if sel.respondents is None or n in sel.respondents]
targets = personas + [n for n in resp.loc[resp["kind"] == "custom", "respondent"]]
if len(personas) < 2:
    st.info("Reweighting needs at least two personas. Load a dataset with personas on the Data page, "
            "or select more personas in the sidebar.")
    st.stop()


def _slider(label: str, key: str, *, default: float = 1.0, where=st) -> float:
    """A 0..3 slider whose value lives in the URL (``?reweight.alpha=2``)."""
    keep = f"_keep.{key}"
    if key not in st.session_state:
        url = ui.params.url_value(key, kind=float)
        start = st.session_state.get(keep, default if url is None else url)
        st.session_state[key] = float(min(max(start, 0.0), 3.0))
    value = float(where.slider(label, min_value=0.0, max_value=3.0, step=0.1, key=key))
    st.session_state[keep] = value
    if abs(value - default) < 1e-9:
        st.query_params.pop(key, None)
    elif st.query_params.get(key) != f"{value:g}":
        st.query_params[key] = f"{value:g}"
    return value


c = st.columns([3, 2, 2])
target = ui.params.selectbox("Target persona", targets, key="reweight.target", where=c[0])
alpha = _slider("α (favours high tiers: questions where the target stands apart)", "reweight.alpha", where=c[1])
beta = _slider("β (evens out tier sizes)", "reweight.beta", where=c[2])


@st.cache_data(show_spinner="Computing tiers and weights…", max_entries=4)
def _compute(sel: ui.Selection, target: str, alpha: float, beta: float, personas: tuple[str, ...]):
    return reweight.from_store(ui.data.get_store(), target=target, alpha=alpha, beta=beta,
                               filters=sel.as_filters(), personas=list(personas))


try:
    result, pairs = _compute(sel, target, alpha, beta, tuple(personas))
except reweight.ReweightError as exc:
    st.error(str(exc))
    st.stop()

m = st.columns(4)
m[0].metric("K (personas)", result.K)
m[1].metric("Records (answered by all)", f"{len(result.records):,}")
m[2].metric("Left out", f"{result.n_excluded:,}", help="questions some persona did not answer (or unparsed)")
m[3].metric("Preference pairs", f"{len(pairs):,}")

tiers = result.tiers[["tier", "count", "t_value", "weight", "share"]].rename(
    columns={"count": "records", "t_value": "T_i", "weight": "weight per record", "share": "share of weight"})
left, right = ui.row(2)
with left:
    st.subheader("Tiers and weights")
    ui.chart(tier_chart(result.tiers), key="reweight.tiers", data=tiers, filename=f"fairpp-tiers-{ui.slug(target)}")
    ui.table(tiers, key="reweight.tier_table", column_config={
        "weight per record": st.column_config.NumberColumn(format="%.3e"),
        "T_i": st.column_config.NumberColumn(format="%.3e"),
        "share of weight": st.column_config.NumberColumn(format="percent")})

effect = reweight.weighting_effect(result)
with right:
    st.subheader("What the weighting does")
    ui.chart(distribution_chart(effect), key="reweight.distribution", data=effect,
             filename=f"fairpp-weighted-distribution-{ui.slug(target)}",
             caption="The training set's chosen answers are the target's; weighting shifts their mix.")
st.subheader("Jensen-Shannon distance to the training set, before and after weighting")
ui.chart(js_chart(effect), key="reweight.js", filename=f"fairpp-js-before-after-{ui.slug(target)}")
shown = effect.assign(change=effect["js_after"] - effect["js_before"])
ui.table(shown, key="reweight.effect_table", column_config={
    c: st.column_config.NumberColumn(format="%.4f") for c in ("A", "B", "C", "js_before", "js_after", "change")})
ui.define("js")
st.caption("Distances over the records only (questions every persona answered), base 2, in [0, 1]. "
           f"N/A handling: {reweight.NA_HANDLING}. Pair weights: {reweight.PAIR_WEIGHTING}.")

# -- export ---------------------------------------------------------------------------------------------------
st.subheader("Export weighted preference pairs")
source = reweight.source_info(ui.data.get_store())
if source["synthetic"]:
    st.warning("These pairs come from the **synthetic demo**: the run card is labelled synthetic. "
               "Do not train on them for results.", icon=":material/science:")
base = f"fairpp-pairs-{ui.slug(target)}-a{alpha:g}-b{beta:g}"


def _export(fmt: str, *, card: bool = False) -> bytes:
    """Write pairs and card to a temporary folder (export_pairs does it atomically); return one as bytes."""
    with tempfile.TemporaryDirectory(prefix="fairpp-reweight-") as tmp:
        out = Path(tmp) / f"{base}.{fmt}"
        written = reweight.export_pairs(pairs, out, result=result, source=source, filters=sel.as_filters(), fmt=fmt)
        return json.dumps(written, indent=2).encode("utf-8") if card else out.read_bytes()


b = st.columns(3)
b[0].download_button("Pairs (JSONL)", data=lambda: _export("jsonl"), file_name=f"{base}.jsonl",
                     mime="application/jsonl", key="reweight.export_jsonl", on_click="ignore",
                     icon=":material/download:")
b[1].download_button("Pairs (Parquet)", data=lambda: _export("parquet"), file_name=f"{base}.parquet",
                     mime="application/vnd.apache.parquet", key="reweight.export_parquet", on_click="ignore",
                     icon=":material/download:")
b[2].download_button("Run card (JSON)", data=lambda: _export("jsonl", card=True), file_name=f"{base}.jsonl.card.json",
                     mime="application/json", key="reweight.export_card", on_click="ignore",
                     icon=":material/description:")
st.caption("Columns: prompt, chosen, rejected (TRL's DPO trainer reads these), weight, question metadata and tier. "
           f"Same as `fairpp reweight --target \"{target}\" --alpha {alpha:g} --beta {beta:g} --out FILE`.")
