"""Slices & questions: the slice explorer (position by group x problem category) and the question browser."""
import streamlit as st

from fairpp import explore, figures, ui

ROWS = {"group_name": "group", "group_type": "group type"}
COLS = {"problem_category": "problem category", "topic": "topic", "specific_problem": "specific problem"}
PAGE = 50

sel = ui.selection()
st.title("Slices & questions")
resp = ui.data.respondents(sel.version)
names = resp["respondent"].tolist() if sel.respondents is None else list(sel.respondents)
personas = resp.loc[resp["kind"] == "persona", "respondent"].tolist()
view = ui.params.radio("View", ["slices", "questions"], key="explore.view", label_visibility="collapsed",
                       format_func={"slices": "Slice explorer", "questions": "Question browser"}.get)

if view == "slices":
    c = st.columns([1, 2, 1, 1, 1])
    d = ui.params.selectbox("Dimension", list(sel.dims), key="explore.dimension", where=c[0],
                            format_func=figures.dimension_label)
    default_who = [n for n in names if n in personas][:1] + [n for n in names if n not in personas][:1]
    who = ui.params.multiselect("Respondents (up to 6)", names, key="explore.who", default=default_who or names[:2],
                                max_selections=6, where=c[1])
    rows = ui.params.selectbox("Rows", list(ROWS), key="explore.rows", format_func=ROWS.get, where=c[2])
    cols = ui.params.selectbox("Columns", list(COLS), key="explore.cols", format_func=COLS.get, where=c[3])
    mode = ui.params.radio("Grid", ["heat", "bubble"], key="explore.mode", where=c[4])
    if not who:
        st.info("Pick at least one respondent.")
        st.stop()
    pos = ui.data.positions(sel, (rows, cols), tuple(who))
    frame = explore.slice_positions(pos, dimension=d)
    if frame.empty:
        st.info("No A/B answers on this dimension under the filters.")
        st.stop()
    fig = ui.figure(figures.slice_grid, frame, x=cols, y=rows, mode=mode, x_order=explore.taxonomy_order(cols),
                             y_order=explore.taxonomy_order(rows), x_label=COLS[cols], y_label=ROWS[rows])
    picked = ui.chart(fig, key=f"explore.grid_{mode}", data=frame, filename=f"fairpp-slices-d{d}", select=True)
    ui.define("position")
    st.caption(f"Dimension {figures.dimension_label(d)}: blue = first pole, orange = second pole; "
               + ("bubble size = number of questions. " if mode == "bubble" else "")
               + "A cell from few questions is noisy: its hover shows n and the 95% interval. "
               + "Click a cell (shift-click to add more, or use the box tool) to list the slices and the questions "
               "behind them.")
    cells = ui.selected(picked, ["respondent", cols, rows])
    if not cells.empty:
        chosen = frame.merge(cells, on=["respondent", cols, rows])
        ui.table(chosen.drop(columns=["kind"]))
        behind = sel.with_filters(**{cols: sorted(set(cells[cols])), rows: sorted(set(cells[rows])), "dimension": [d]})
        qs, total = ui.data.question_page(behind, sort="divided", limit=100)
        st.caption(f"{total:,} questions in the selected cells (their {ROWS[rows]} × {COLS[cols]} slices, "
                   f"dimension {d}); the first 100, most divided first.")
        ui.table(qs[["text", "specific_problem", "group_name", "dimension", "split", "divided"]])
    st.stop()

# -- question browser ------------------------------------------------------------------------------------------
c = st.columns([3, 1, 1])
search = ui.params.text_input("Search the questions (text, problem or group)", key="explore.search", where=c[0])
sort = ui.params.radio("Sort", ["divided", "taxonomy"], key="explore.sort", where=c[1],
                       format_func={"divided": "most divided first", "taxonomy": "taxonomy order"}.get)
page_no = ui.params.number_input("Page", key="explore.page", default=1, min_value=1, max_value=10_000, where=c[2])
page, total = ui.data.question_page(sel, search.strip(), sort, PAGE, (page_no - 1) * PAGE)
if page.empty:
    st.info("No question matches." if total == 0 else f"Only {total:,} questions match; go back to page 1.")
    st.stop()
answers = ui.data.page_answers(sel, tuple(page["question_id"]))
shown = [n for n in names if n in set(answers["respondent"])]
grid = explore.answer_grid(page, answers, shown, personas=personas)
st.caption(f"{total:,} questions match · page {page_no} of {-(-total // PAGE)} · cells differing from the personas' "
           "majority answer are highlighted; “–” = no answer.")
cols = ["divided", *shown, "dimension", "specific_problem", "group_name", "text"]
styled = ui.styled_answers(grid[cols], explore.disagreement(grid, shown))
config = {r: st.column_config.TextColumn(figures.short_name(r), help=r, width=44 if r in personas else 104)
          for r in shown}
event = st.dataframe(styled, hide_index=True, width="stretch", height=560, on_select="rerun",
                     selection_mode="single-row", key="explore.table", column_config={
                         **config, "divided": st.column_config.NumberColumn(format="%.2f", width=64),
                         "dimension": st.column_config.NumberColumn("dim", width=40),
                         "specific_problem": "problem", "group_name": "group",
                         "text": st.column_config.TextColumn(width="large")})
st.caption("Columns: " + " · ".join(f"{figures.short_name(r)} = {r}" for r in shown if figures.short_name(r) != r)
           + ". Select a row to read the question and every reply.")
ui.define("divided")
ui.download_frame(grid, key="explore.table.csv", file_name="fairpp-questions.csv", label="This page (CSV)")
picked = event.selection.rows if event is not None else []
if picked:
    q = grid.iloc[picked[0]]
    st.markdown(f"**{q['text']}**")
    st.text(str(q["options"]))
    detail = answers[answers["question_id"] == q["question_id"]][["respondent", "kind", "answer", "raw"]]
    ui.table(detail)
