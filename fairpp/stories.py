"""Stories: saved views (slides) to click through full-screen. The model, reordering and the JSON file format.

A *slide* is a view of the app: the page key (``"personas"``), the view's URL query parameters (ordered
``(name, value)`` pairs; a parameter may repeat, e.g. ``group=men&group=women``), a title and notes. A
*story* is a titled, ordered list of slides. Stories live in the database (:mod:`fairpp.store.stories`);
this module never touches it, nor Streamlit.

Export format (``fairpp story export``, the Stories page)::

    {"format": "fairpp-story", "version": 1, "title": "...",
     "slides": [{"title": "...", "notes": "...", "page": "personas", "params": [["topic", "fair rewards"]]}]}

>>> s = Story("Findings", (Slide("Radar", "personas", (("topic", "fair rewards"),)),))
>>> story_from_json(story_to_json(s)) == s
True
>>> permalink("personas", [("topic", "fair rewards"), ("dimension", "1")])
'personas?topic=fair+rewards&dimension=1'
"""
from __future__ import annotations

import json
import re
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from fairpp.schema import FairppError

__all__ = ["StoryError", "Slide", "Story", "FORMAT", "VERSION", "PLAY_PARAMS", "STORY_PARAM", "SLIDE_PARAM",
           "view_params", "permalink", "parse_permalink", "moved", "story_to_json", "story_from_json",
           "read_story", "dumps", "check_title", "check_slide"]

FORMAT = "fairpp-story"
VERSION = 1
STORY_PARAM = "story"  # play mode: the story being shown (its id) ...
SLIDE_PARAM = "slide"  # ... and the slide (1-based)
PLAY_PARAMS = (STORY_PARAM, SLIDE_PARAM)
_PAGE = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_TITLE = 200
_MAX_NOTES = 20_000
_MAX_SLIDES = 500


class StoryError(FairppError):
    """A story, a slide or a story file is not valid (the message names the field and the fix)."""


@dataclass(frozen=True)
class Slide:
    """One saved view: ``title``, ``page`` key, URL ``params`` (``(name, value)`` pairs) and ``notes``."""

    title: str
    page: str
    params: tuple[tuple[str, str], ...] = ()
    notes: str = ""

    @property
    def link(self) -> str:
        """The view's permalink relative to the app's root (``"personas?topic=..."``)."""
        return permalink(self.page, self.params)


@dataclass(frozen=True)
class Story:
    """A titled, ordered list of :class:`Slide`."""

    title: str
    slides: tuple[Slide, ...] = field(default_factory=tuple)


def view_params(pairs: Iterable[tuple[str, Any]]) -> tuple[tuple[str, str], ...]:
    """The view's parameters: ``(name, value)`` pairs as strings, without the play-mode ones.

    >>> view_params([("topic", "x"), ("story", "3"), ("slide", "1"), ("dimension", 2)])
    (('topic', 'x'), ('dimension', '2'))
    """
    return tuple((str(k), str(v)) for k, v in pairs if str(k) not in PLAY_PARAMS)


def permalink(page: str, params: Iterable[tuple[str, Any]] = ()) -> str:
    """``page?query`` for a page key and its parameters (the default page ``overview`` included by name)."""
    query = urllib.parse.urlencode(list(params))
    return f"{page}?{query}" if query else page


def parse_permalink(link: str, *, pages: Sequence[str], default: str | None = None) -> tuple[str, tuple]:
    """A copied link (absolute or relative) -> ``(page key, params)``; the play-mode parameters are dropped.

    ``pages`` are the known page keys; a link to the app's root is the ``default`` page (the first of
    ``pages`` unless given).

    >>> parse_permalink("http://host:8501/personas?topic=a&topic=b&story=1", pages=["overview", "personas"])
    ('personas', (('topic', 'a'), ('topic', 'b')))
    >>> parse_permalink("http://host:8501/?dimension=2", pages=["overview", "personas"])
    ('overview', (('dimension', '2'),))
    """
    text = str(link).strip()
    if not text:
        raise StoryError("the link is empty; paste a link copied from the app (Copy link in the sidebar).")
    parts = urllib.parse.urlsplit(text if "//" in text or text.startswith("/") else "/" + text)
    segment = parts.path.rstrip("/").rsplit("/", 1)[-1]
    page = segment or (default or (pages[0] if pages else ""))
    if page not in pages:
        raise StoryError(f"the link points at {parts.path!r}, not a page of this app ({', '.join(pages)}); "
                         "copy the link from the app's Copy link control.")
    return page, view_params(urllib.parse.parse_qsl(parts.query, keep_blank_values=False))


def moved(items: Sequence[Any], index: int, step: int) -> list[Any]:
    """``items`` with the one at ``index`` moved ``step`` places (clamped to the ends).

    >>> moved(["a", "b", "c"], 0, 1)
    ['b', 'a', 'c']
    >>> moved(["a", "b", "c"], 2, 5)
    ['a', 'b', 'c']
    """
    out = list(items)
    if not 0 <= index < len(out):
        raise StoryError(f"slide index {index} is out of range (the story has {len(out)} slides).")
    target = min(max(index + step, 0), len(out) - 1)
    out.insert(target, out.pop(index))
    return out


# -- JSON ------------------------------------------------------------------------------------------------------
def story_to_json(story: Story) -> dict[str, Any]:
    """The export document of a story (see the module docstring)."""
    return {"format": FORMAT, "version": VERSION, "title": story.title,
            "slides": [{"title": s.title, "notes": s.notes, "page": s.page, "params": [list(p) for p in s.params]}
                       for s in story.slides]}


def dumps(story: Story) -> str:
    """The export document as indented JSON text."""
    return json.dumps(story_to_json(story), ensure_ascii=False, indent=2)


def _text(value: Any, where: str, *, limit: int, required: bool) -> str:
    if value is None:
        if required:
            raise StoryError(f"{where} is missing; give it a title.")
        return ""
    if not isinstance(value, str):
        raise StoryError(f"{where} must be text, got {type(value).__name__}; write it as a JSON string.")
    value = value.strip() if required else value
    if required and not value:
        raise StoryError(f"{where} is empty; give it a title.")
    if len(value) > limit:
        raise StoryError(f"{where} has {len(value):,} characters; keep it under {limit:,}.")
    return value


def check_title(title: Any, where: str = "the title") -> str:
    """A valid (stripped, non-empty, not too long) title, or :class:`StoryError`."""
    return _text(title, where, limit=_MAX_TITLE, required=True)


def check_slide(slide: Slide, where: str = "the slide") -> Slide:
    """The slide with its title stripped; raises :class:`StoryError` naming the bad field."""
    title = check_title(slide.title, f"{where}: title")
    notes = _text(slide.notes, f"{where}: notes", limit=_MAX_NOTES, required=False)
    if not isinstance(slide.page, str) or not _PAGE.match(slide.page):
        raise StoryError(f"{where}: page {slide.page!r} is not a page key (lower-case letters, digits and _, "
                         "e.g. \"personas\").")
    params = []
    for i, pair in enumerate(slide.params):
        if (not isinstance(pair, (list, tuple)) or len(pair) != 2
                or not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in pair)):
            raise StoryError(f"{where}: params[{i}] must be a [name, value] pair of texts, got {pair!r}.")
        params.append((str(pair[0]), str(pair[1])))
    return Slide(title=title, page=slide.page, params=view_params(params), notes=notes)


def story_from_json(doc: Any) -> Story:
    """Validate an export document and return the :class:`Story`; :class:`StoryError` says what is wrong.

    >>> story_from_json({"format": "fairpp-story", "version": 1, "title": "T", "slides": [{"page": "x"}]})
    Traceback (most recent call last):
    ...
    fairpp.stories.StoryError: slide 1: title is missing; give it a title.
    """
    if not isinstance(doc, Mapping):
        raise StoryError(f"a story file holds one JSON object, not {type(doc).__name__}; export a story from "
                         "the Stories page or with `fairpp story export`.")
    if doc.get("format") != FORMAT:
        raise StoryError(f"not a Fair-PP story file (format is {doc.get('format')!r}, expected {FORMAT!r}); "
                         "export a story from the Stories page or with `fairpp story export`.")
    if doc.get("version") != VERSION:
        raise StoryError(f"story file version {doc.get('version')!r} is not supported (this version reads "
                         f"{VERSION}); export it again with this version of Fair-PP Explorer.")
    title = check_title(doc.get("title"), "the story's title")
    slides = doc.get("slides")
    if not isinstance(slides, list):
        raise StoryError("the story file has no \"slides\" list; every story file has one (possibly empty).")
    if len(slides) > _MAX_SLIDES:
        raise StoryError(f"the story has {len(slides)} slides; at most {_MAX_SLIDES} are allowed.")
    out = []
    for i, s in enumerate(slides, start=1):
        if not isinstance(s, Mapping):
            raise StoryError(f"slide {i} must be a JSON object with title, page, params and notes.")
        params = s.get("params", [])
        if not isinstance(params, list):
            raise StoryError(f"slide {i}: params must be a list of [name, value] pairs.")
        out.append(check_slide(Slide(title=s.get("title"), page=s.get("page"), params=tuple(params),  # type: ignore[arg-type]
                                     notes=s.get("notes") or ""), f"slide {i}"))
    return Story(title=title, slides=tuple(out))


def read_story(data: bytes | str) -> Story:
    """Parse and validate a story file's content (bytes or text)."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StoryError(f"the story file is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                             "export it again from Fair-PP Explorer.") from None
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise StoryError(f"the story file is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                         "export it again from Fair-PP Explorer.") from None
    return story_from_json(doc)
