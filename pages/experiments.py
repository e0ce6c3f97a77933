"""Training experiments: a stored four-condition comparison (base, role-play, DPO, weighted DPO) against the target."""
import streamlit as st

from fairpp import ui
from fairpp.figures.experiments import condition_map, distance_chart
from fairpp.store import StoreError
from fairpp.ui import experiments as ux

sel = ui.selection()
st.title("Training experiments")
saved = ux.listing()
if saved.empty:
    st.info("**No training experiment is stored in this database yet.** An experiment compares a base model, "
            "the base model role-playing the target persona, plain DPO and weighted DPO with the target and the "
            "other personas. Build one from the command line (the training extra: "
            "`pip install -r requirements-train.txt`), then reload this page:\n\n"
            "1. `fairpp reweight --target NAME --slice split=train --out pairs.jsonl` — weighted preference pairs\n"
            "2. `fairpp train --pairs pairs.jsonl --base MODEL --out DIR --weighted` (and `--unweighted`)\n"
            "3. `fairpp evaluate --model MODEL_OR_DIR --respondent NAME --condition LABEL` — once per condition\n"
            "4. `fairpp compare --target NAME --condition LABEL=RESPONDENT ... --split test --save EXPERIMENT`\n\n"
            "The whole recipe (and what a GPU run costs) is in `docs/training.md`.",
            icon=":material/model_training:")
    st.stop()

ids = saved["experiment_id"].tolist()
when = dict(zip(ids, saved["created_at"].astype(str).str[:16]))
targets = dict(zip(ids, saved["target"]))
name = ui.params.selectbox("Experiment", ids, key="experiments.experiment",
                           format_func=lambda e: f"{e} · target {targets[e]} · saved {when[e]} UTC")
try:
    v = ux.view(name, when[name], sel.version)
except StoreError as exc:
    st.error(str(exc))
    st.stop()
card, target = v.card, v.card["target"]
if v.synthetic:
    st.warning("**SYNTHETIC: these conditions were trained or evaluated on synthetic demo data.** The numbers below "
             "check the tool's plumbing; they are not a Fair-PP result and say nothing about alignment.",
             icon=":material/science:")
level = float(card.get("level", 0.95))
base = "base 2, in [0, 1]" if str(card.get("base")) == "2" else f"base {card.get('base')} (paper-compatible)"
tag = " · SYNTHETIC data" if v.synthetic else ""
slug = f"fairpp-experiment-{ui.slug(name)}"
st.caption(f"Target persona **{target}** · {len(card['conditions'])} conditions · compared with "
           f"{len(card['personas'])} personas on the **{card['n_questions']:,} questions every condition and "
           f"persona answered** (split: {card.get('split') or 'all'}) · Jensen-Shannon distance {base} · "
           f"{level:.0%} intervals: percentile bootstrap over questions stratified by dimension "
           f"({card.get('n_boot')} replicates, seed {card.get('seed')}). Stored by `fairpp compare --save {name}`; "
           "the sidebar filters do not apply to a stored experiment.")

st.subheader("The conditions on the persona map")
if v.placed is None:
    st.info(f"No map: {v.map_note}.")
else:
    titles = [f"PC{i + 1} ({r:.0%} of variance)" for i, r in enumerate(v.explained)] + ["PC2"]
    ui.chart(condition_map(v.placed, ellipses=v.ellipses, target=target, axis_titles=titles[:2],
                           title=f"{name}{tag}"),
             key="experiments.map", data=v.placed, filename=f"{slug}-map")
    ui.define("pca")
    st.caption("Each point is a 5-D position (n_B / (n_A + n_B) per dimension) on the experiment's questions. "
               f"The dotted ellipses are approximate {level:.0%} regions: the per-dimension bootstrap intervals, "
               "taken as independent, carried through the frozen projection. The ring marks the target; the axes "
               "are not drawn to the same scale; each axis title gives its share of the personas' variance.")

st.subheader("Distance to the target and to the other personas")
table = v.summary.assign(**{"95% interval": [f"[{lo:.3f}, {hi:.3f}]" for lo, hi in
                                             zip(v.summary["JS low"], v.summary["JS high"])]})
ui.table(table[["condition", "respondent", "JS to target", "95% interval", "agreement", "kappa",
                "JS to others (mean)", "gap", "nearest persona", "questions"]], key="experiments.summary",
         column_config={c: st.column_config.NumberColumn(format="%.3f")
                        for c in ("JS to target", "agreement", "kappa", "JS to others (mean)", "gap")})
ui.download_frame(v.summary, key="experiments.summary.csv", file_name=f"{slug}-summary.csv",
                  label="Table with intervals (CSV)")
st.caption("**gap** = mean JS distance to the other personas − JS distance to the target. The paper's claim: "
           "weighted DPO is nearest the target (small distance) and furthest from the others (large gap). "
           "Agreement and kappa are to the target; the CSV holds every interval.")
ui.chart(distance_chart(v.distances, target=target, base_label=f"base {card.get('base')}", level=level,
                        title=f"{name}: JS distance{tag}"),
         key="experiments.distances", data=v.distances, filename=f"{slug}-distances")
ui.define("js", "agreement", "kappa")

st.subheader("Provenance")
with st.expander("Conditions: stored respondents, evaluation and training run cards", expanded=v.synthetic):
    ui.table(v.provenance, key="experiments.provenance")
    if not v.between.empty:
        st.markdown("**Distances between the conditions**")
        ui.table(v.between, key="experiments.between")
    st.caption(f"Question set fingerprint {card.get('question_ids_sha')} · filters {card.get('filters') or 'none'} "
               "· the whole card: `fairpp compare --show " + name + " --json`.")
