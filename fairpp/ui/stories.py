"""Permalinks and stories on screen: the Link control of the frame, play mode and the Stories page's panels.

- :func:`link_control` (drawn by the frame in the sidebar): the current view's full URL in a code box (with its
  copy button) and "Add this view to a story".
- Play mode: ``?story=<id>&slide=<n>`` in the URL. :func:`slide_bar` hides the sidebar and the app's header and
  shows the slide's title and notes with Previous / n of N / Next / Exit; moving to a slide goes through
  :func:`follow`, which the frame calls first on every run (a button's callback cannot switch pages itself).
- :func:`story_panel`, :func:`slides_editor`, :func:`import_panel`: the Stories page.

Going to a slide forgets the state of the URL-bound widgets (:mod:`fairpp.ui.params` keeps a copy of each while
its page is hidden, and that copy would win over the slide's URL) and of the pages' section tabs, so the slide's
parameters decide the view.
"""
from __future__ import annotations

import urllib.parse
from typing import Any, Sequence

import streamlit as st

from fairpp import stories as lib
from fairpp.schema import FairppError
from fairpp.store import stories as db
from fairpp.ui import data, params

__all__ = ["current_params", "current_url", "link_control", "update_link", "follow", "play_state", "slide_bar",
           "play", "story_panel", "slides_editor", "import_panel", "add_from_link"]

_GOTO = "_fairpp.goto"  # (page key, query params) to switch to at the start of the next run
_NOTICE = "_fairpp.story_notice"  # a message to show once after a callback
_SECTION = ".section"  # key suffix of the pages' section tabs (st.tabs bound to the URL by Streamlit)
_PLAY_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
header[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] {display: none !important;}
[data-testid="stMainBlockContainer"] {padding-top: 1.2rem !important; max-width: 100% !important;}
</style>"""


# -- the current view ------------------------------------------------------------------------------------------
def current_params() -> list[tuple[str, str]]:
    """The URL's query parameters now, in order, repeated names as repeated pairs."""
    qp = st.query_params
    return [(k, v) for k in qp.keys() for v in qp.get_all(k)]


def current_url(page_key: str, pairs: Sequence[tuple[str, str]] | None = None) -> str:
    """The full URL of the view: the browser's address (``st.context.url``) and the query parameters.

    Without a browser (AppTest) the URL is relative to the app's root: ``/personas?topic=...``.
    """
    from fairpp.ui.nav import PAGES

    pairs = current_params() if pairs is None else list(pairs)
    base = st.context.url
    if not base:
        base = "/" if page_key == PAGES[0].key else f"/{page_key}"
    base = base.split("?", 1)[0].split("#", 1)[0]
    query = urllib.parse.urlencode(pairs)
    return f"{base}?{query}" if query else base


def _page_title(page_key: str) -> str:
    from fairpp.ui.nav import PAGES

    return next((p.title for p in PAGES if p.key == page_key), page_key)


def _default_title(page_key: str, pairs: Sequence[tuple[str, str]]) -> str:
    section = dict(pairs).get(f"{page_key}{_SECTION}")
    return _page_title(page_key) + (f" · {section}" if section else "")


def _notice() -> None:
    msg = st.session_state.pop(_NOTICE, None)
    if msg:
        kind, text = msg
        (st.success if kind == "ok" else st.error)(text)


# -- the Link control ------------------------------------------------------------------------------------------
def link_control(page_key: str) -> Any:
    """The sidebar's Link popover: the view's URL (copy button) and "add this view to a story".

    Returns the placeholder of the URL, to be refreshed by :func:`update_link` after the page ran (its
    widgets may have written new parameters to the URL).
    """
    pairs = current_params()
    with st.popover("Link to this view", icon=":material/link:", width="stretch"):
        st.caption("This link reopens this exact view (page, filters, the page's choices). Copy it with the "
                   "button that shows at the box's top right when you point at it.")
        slot = st.empty()
        slot.code(current_url(page_key, pairs), language=None, wrap_lines=True)
        st.markdown("**Add this view to a story**")
        _notice()
        try:
            have = db.list_stories(data.get_store())
        except FairppError as exc:
            st.error(str(exc))
            return slot
        names = dict(zip(have["story_id"].astype(int), have["title"]))
        target = st.selectbox("Story", [*names, 0], key="link.story",
                              format_func=lambda i: names.get(i, "New story…"))
        if target == 0:
            st.text_input("New story's title", key="link.new_title", placeholder="Findings for the board")
        st.text_input("Slide title", key="link.title", placeholder=_default_title(page_key, pairs))
        st.text_area("Notes (shown with the slide)", key="link.notes", height=80)
        st.button("Add slide", key="link.add", icon=":material/add_to_queue:", on_click=_add_current,
                  args=(page_key,), width="stretch")
    return slot


def update_link(slot: Any, page_key: str) -> None:
    """Refresh the URL shown by :func:`link_control` after the page wrote its parameters."""
    slot.code(current_url(page_key), language=None, wrap_lines=True)


def _add_current(page_key: str) -> None:
    # The URL now (a callback runs before the script): what the viewer sees, after the page's widgets wrote it.
    pairs = current_params()
    ss = st.session_state
    store = data.get_store()
    try:
        story_id = int(ss.get("link.story") or 0)
        if story_id == 0:
            story_id = db.create_story(store, ss.get("link.new_title") or "")
        title = (ss.get("link.title") or "").strip() or _default_title(page_key, pairs)
        n = db.add_slide(store, story_id, lib.Slide(title=title, page=page_key, params=lib.view_params(pairs),
                                                    notes=ss.get("link.notes") or ""))
    except FairppError as exc:
        ss[_NOTICE] = ("error", str(exc))
        return
    count = len(db.story_slides(store, story_id))
    ss["link.story"] = story_id
    ss["link.title"] = ""
    ss["link.notes"] = ""
    ss[_NOTICE] = ("ok", f"Added as slide {count} (id {n}). Play the story on the Stories page.")


# -- going to a slide ------------------------------------------------------------------------------------------
def _forget_view_state(wanted: dict[str, str]) -> None:
    """Drop what would override the target's URL: URL-bound widgets' state and copies, section tabs' state."""
    ss = st.session_state
    keep = params._KEEP  # the copies fairpp.ui.params keeps of hidden widgets
    for k in [k for k in list(ss.keys()) if str(k).startswith(keep)]:
        ss.pop(str(k)[len(keep):], None)
        del ss[k]
    for k in [k for k in list(ss.keys()) if str(k).endswith(_SECTION)]:
        if k in wanted:
            ss[k] = wanted[k]  # a tab bound to the URL by Streamlit takes its value from the session state
        else:
            del ss[k]


def goto(page_key: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Callback: open ``page_key`` with exactly these URL parameters on the next run (see :func:`follow`)."""
    wanted = dict(pairs)
    _forget_view_state(wanted)
    ss = st.session_state
    passed = [(k, v) for k, v in pairs if not (k.endswith(_SECTION) and k in ss)]
    ss[_GOTO] = (page_key, passed)


def follow() -> None:
    """Switch to the page a callback asked for (called by the frame before it draws anything)."""
    from fairpp.ui.nav import PAGES

    target = st.session_state.pop(_GOTO, None)
    if target is None:
        return
    page_key, pairs = target
    spec = next((p for p in PAGES if p.key == page_key), None)
    if spec is not None:
        grouped: dict[str, list[str]] = {}  # a repeated name must arrive as one list, not as pairs
        for k, v in pairs:
            grouped.setdefault(k, []).append(v)
        st.switch_page(spec.path, query_params={k: v if len(v) > 1 else v[0] for k, v in grouped.items()})


def _slide_pairs(story_id: int, slides: Any, n: int) -> tuple[str, list[tuple[str, str]]]:
    row = slides.iloc[n - 1]
    import json

    pairs = [(str(k), str(v)) for k, v in json.loads(row["params"])]
    return str(row["page"]), [*pairs, (lib.STORY_PARAM, str(story_id)), (lib.SLIDE_PARAM, str(n))]


def play(story_id: int, n: int = 1) -> None:
    """Callback: show slide ``n`` (1-based) of a story in play mode."""
    try:
        slides = db.story_slides(data.get_store(), story_id)
    except FairppError as exc:
        st.session_state[_NOTICE] = ("error", str(exc))
        return
    if slides.empty:
        st.session_state[_NOTICE] = ("error", "This story has no slide yet: add views with the sidebar's "
                                              "Link to this view control.")
        return
    page, pairs = _slide_pairs(story_id, slides, min(max(n, 1), len(slides)))
    goto(page, pairs)


def _exit(story_id: int) -> None:
    goto("stories", [("stories.story", str(story_id))])


def play_state() -> tuple[int, int] | None:
    """``(story id, slide number)`` when the URL asks for play mode, else ``None``."""
    story = params.url_value(lib.STORY_PARAM, kind=int)
    if story is None:
        return None
    return int(story), int(params.url_value(lib.SLIDE_PARAM, kind=int) or 1)


def slide_bar(page_key: str) -> bool:
    """In play mode: hide the app's chrome and draw the slide bar; returns whether play mode is on."""
    state = play_state()
    if state is None:
        return False
    story_id, n = state
    try:
        story = db.get_story(data.get_store(), story_id)
    except FairppError as exc:
        st.warning(f"Cannot play this link's story: {exc}", icon=":material/slideshow:")
        return False
    total = len(story.slides)
    if not 1 <= n <= total:
        st.warning(f"Story {story.title!r} has {total} slide(s); there is no slide {n}.",
                   icon=":material/slideshow:")
        st.button("Exit the story", key="play.exit", on_click=_exit, args=(story_id,))
        return False
    slide = story.slides[n - 1]
    st.html(_PLAY_CSS)
    with st.container(border=True, key="play.bar"):
        # one row that wraps instead of stacking on a phone: where we are, then the controls
        with st.container(horizontal=True, vertical_alignment="center", gap="small"):
            st.markdown(f"**{n} / {total}** · {story.title}", width="stretch")
            st.button("Previous", key="play.prev", icon=":material/arrow_back:", disabled=n <= 1,
                      on_click=play, args=(story_id, n - 1))
            st.button("Next", key="play.next", icon=":material/arrow_forward:", disabled=n >= total,
                      on_click=play, args=(story_id, n + 1), type="primary")
            st.button("Exit", key="play.exit", icon=":material/close:", on_click=_exit, args=(story_id,))
        st.markdown(f"### {slide.title}")
        if slide.notes.strip():
            st.markdown(slide.notes)
        if slide.page != page_key:
            st.caption(f"This view was moved away from the slide's page ({_page_title(slide.page)}).")
    return True


# -- the Stories page ------------------------------------------------------------------------------------------
def _call(fn: Any, *args: Any, ok: str | None = None, **kwargs: Any) -> None:
    """Callback wrapper: run a store write, keep its error (or ``ok``) for :func:`_notice`."""
    try:
        fn(data.get_store(), *args, **kwargs)
    except FairppError as exc:
        st.session_state[_NOTICE] = ("error", str(exc))
        return
    if ok:
        st.session_state[_NOTICE] = ("ok", ok)


def _create() -> None:
    ss = st.session_state
    try:
        ss["stories.story"] = db.create_story(data.get_store(), ss.get("stories.new_title") or "")
    except FairppError as exc:
        ss[_NOTICE] = ("error", str(exc))
        return
    ss["stories.new_title"] = ""


def _rename(story_id: int) -> None:
    _call(db.rename_story, story_id, st.session_state.get(f"stories.title_{story_id}") or "", ok="Renamed.")


def _delete(story_id: int) -> None:
    _call(db.delete_story, story_id, ok="Story deleted.")
    st.session_state.pop("stories.story", None)


def story_panel(stories_frame: Any, story_id: int) -> None:
    """Title, play, rename, export and delete of one story."""
    _notice()
    row = stories_frame[stories_frame["story_id"] == story_id].iloc[0]
    n = int(row["slides"])
    left, right = st.columns([2, 3], vertical_alignment="bottom")
    left.text_input("Title", value=str(row["title"]), key=f"stories.title_{story_id}")
    story = db.get_story(data.get_store(), story_id)
    with right.container(horizontal=True, gap="small"):  # wraps, never stacks, on a phone
        st.button("Rename", key="stories.rename", on_click=_rename, args=(story_id,), icon=":material/edit:")
        st.button("Play", key="stories.play", type="primary", on_click=play, args=(story_id, 1), disabled=n == 0,
                  icon=":material/slideshow:")
        st.download_button("Export JSON", data=lib.dumps(story), file_name=f"story-{story_id}.json",
                           mime="application/json", key="stories.export", icon=":material/download:",
                           on_click="ignore")
    with st.expander("Delete this story"):
        st.caption(f"Deletes {story.title!r} and its {n} slide(s); the data and the views stay.")
        st.button("Delete story", key="stories.delete", on_click=_delete, args=(story_id,),
                  icon=":material/delete:")


def _save_slide(slide_id: int) -> None:
    ss = st.session_state
    _call(db.update_slide, slide_id, title=ss.get(f"stories.slide_title_{slide_id}") or "",
          notes=ss.get(f"stories.slide_notes_{slide_id}") or "", ok="Slide saved.")


def slides_editor(story_id: int) -> None:
    """Each slide: title and notes (editable), its view, open / up / down / delete."""
    import json

    from fairpp.ui.nav import PAGES

    slides = db.story_slides(data.get_store(), story_id)
    if slides.empty:
        st.info("No slide yet. Open any view, then use **Link to this view → Add slide** in the sidebar; or paste "
                "a copied link below.")
        return
    pages = {p.key for p in PAGES}
    for i, r in enumerate(slides.itertuples(), start=1):
        sid = int(r.slide_id)
        pairs = [(str(k), str(v)) for k, v in json.loads(r.params)]
        with st.container(border=True, key=f"stories.slide_{i}"):
            head, tools = st.columns([5, 3], vertical_alignment="top")
            with head:
                st.text_input(f"Slide {i}", value=r.title, key=f"stories.slide_title_{sid}")
                st.text_area("Notes", value=r.notes or "", key=f"stories.slide_notes_{sid}", height=68)
                st.caption(f"View: **{_page_title(r.page)}** · `{lib.permalink(r.page, pairs)}`")
            with tools, st.container(horizontal=True, gap="small"):
                st.button("Save", key=f"stories.save_{sid}", on_click=_save_slide, args=(sid,), icon=":material/save:")
                st.button("Play from here", key=f"stories.play_{sid}", on_click=play, args=(story_id, i),
                          icon=":material/play_arrow:")
                st.button("Up", key=f"stories.up_{sid}", on_click=_call, args=(db.move_slide, sid, -1),
                          disabled=i == 1, icon=":material/arrow_upward:")
                st.button("Down", key=f"stories.down_{sid}", on_click=_call, args=(db.move_slide, sid, 1),
                          disabled=i == len(slides), icon=":material/arrow_downward:")
                st.button("Delete", key=f"stories.del_{sid}", on_click=_call, args=(db.delete_slide, sid),
                          icon=":material/delete:")
                st.button("Open this view", key=f"stories.open_{sid}", on_click=goto, args=(r.page, pairs),
                          disabled=r.page not in pages, icon=":material/open_in_new:", type="tertiary")


def add_from_link(story_id: int) -> None:
    """Paste a copied link to add it as a slide."""
    from fairpp.ui.nav import PAGES

    c = st.columns([5, 3, 2], vertical_alignment="bottom")
    link = c[0].text_input("Add a slide from a copied link", key="stories.link",
                           placeholder="http://localhost:8501/personas?topic=fair+rewards")
    title = c[1].text_input("Its title", key="stories.link_title")
    if c[2].button("Add", key="stories.link_add", icon=":material/add:", width="stretch"):
        try:
            page, pairs = lib.parse_permalink(link, pages=[p.key for p in PAGES])
            db.add_slide(data.get_store(), story_id, lib.Slide(title=title.strip() or _default_title(page, pairs),
                                                                page=page, params=pairs))
        except FairppError as exc:
            st.error(str(exc))
        else:
            st.rerun()


def import_panel() -> None:
    """Create a story, or import one from an exported JSON file."""
    c = st.columns([5, 2], vertical_alignment="bottom")
    c[0].text_input("New story", key="stories.new_title", placeholder="Title, e.g. Findings for the board")
    c[1].button("Create", key="stories.create", on_click=_create, icon=":material/add:", width="stretch")
    up = st.file_uploader("Import a story (JSON exported from Fair-PP Explorer)", type=["json"],
                          key="stories.upload")
    if up is not None and st.button("Import", key="stories.import", icon=":material/upload:"):
        try:
            story_id = db.import_story(data.get_store(), lib.read_story(up.getvalue()))
        except FairppError as exc:
            st.error(f"{up.name}: {exc}")
        else:
            st.session_state["stories.story"] = story_id
            st.rerun()
