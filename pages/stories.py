"""Stories: saved views (slides) to present full-screen; create, edit, reorder, export and import them."""
import streamlit as st

from fairpp import ui
from fairpp.store import stories as db
from fairpp.ui import stories as sui

sel = ui.selection()
st.title("Stories")
st.caption("A story is a list of saved views (slides) to click through full-screen. Add the view you are looking "
           "at with **Link to this view → Add slide** in the sidebar, then reorder, annotate and play it here. "
           "Stories live in the database (a data reload keeps them) and export to a JSON file.")
have = db.list_stories(ui.data.get_store())
with st.expander("New story or import", expanded=have.empty):
    sui.import_panel()
if have.empty:
    st.info("No story yet: create one above, or add a view from any page's sidebar.")
    st.stop()
names = dict(zip(have["story_id"].astype(int), have["title"]))
story_id = ui.params.selectbox("Story", list(names), key="stories.story",
                               format_func=lambda i: f"{names[i]} ({int(have.set_index('story_id').loc[i, 'slides'])}"
                                                     " slides)")
sui.story_panel(have, story_id)
st.subheader("Slides")
sui.slides_editor(story_id)
sui.add_from_link(story_id)
