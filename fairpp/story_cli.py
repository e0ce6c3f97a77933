"""``fairpp story list|export|import``: the stories (presentation mode) stored in the database.

``fairpp story list [--json]`` lists them; ``fairpp story export STORY_ID FILE`` writes one as JSON (the format
of :mod:`fairpp.stories`); ``fairpp story import FILE`` validates a story file and adds it as a new story (a bad
file writes nothing). Every form takes ``--db PATH`` and ``--json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from fairpp.cli import _store, emit, register
from fairpp.schema import FairppError


def _arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    for name, help_text in (("list", "the stored stories"), ("export", "write a story to a JSON file"),
                            ("import", "add a story from a JSON file")):
        q = sub.add_parser(name, help=help_text)
        if name == "export":
            q.add_argument("story_id", type=int, help="the story's id (see `fairpp story list`)")
            q.add_argument("file", type=Path, help="JSON file to write")
        elif name == "import":
            q.add_argument("file", type=Path, help="a story file exported by Fair-PP Explorer")
        q.add_argument("--db", type=Path, default=None, help="DuckDB file (default: FAIRPP_DB or data/fairpp.duckdb)")
        q.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def _run(args: argparse.Namespace) -> int:
    from fairpp import stories
    from fairpp.store import stories as db

    if args.action == "list":
        with _store(args, read_only=True) as store:
            frame = db.list_stories(store)
        rows = [{"story_id": int(r.story_id), "title": r.title, "slides": int(r.slides),
                 "updated_at": str(r.updated_at)[:19]} for r in frame.itertuples()]
        text = "\n".join(f"{r['story_id']:>4}  {r['title']}  ({r['slides']} slides, {r['updated_at']})"
                         for r in rows) or "no story yet (add views on any page: Link to this view > Add slide)"
        emit(args, {"stories": rows}, text)
    elif args.action == "export":
        with _store(args, read_only=True) as store:
            story = db.get_story(store, args.story_id)
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(stories.dumps(story), encoding="utf-8")
        emit(args, {"path": str(args.file), "title": story.title, "slides": len(story.slides)},
             f"wrote {args.file} ({story.title!r}, {len(story.slides)} slides)")
    else:
        try:
            content = args.file.read_bytes()
        except OSError as exc:
            raise FairppError(f"cannot read {args.file}: {exc.strerror}; check the path.") from None
        try:
            story = stories.read_story(content)
        except FairppError as exc:
            raise FairppError(f"{args.file}: {exc}") from None
        with _store(args) as store:
            story_id = db.import_story(store, story)
        emit(args, {"story_id": story_id, "title": story.title, "slides": len(story.slides)},
             f"imported {story.title!r} as story {story_id} ({len(story.slides)} slides)")
    return 0


register("story", "stories of saved views: list, export, import", _arguments, _run)
