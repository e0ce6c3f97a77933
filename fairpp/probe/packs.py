"""Probe packs: one file holding a run (card, answers, request log, the questions it asked and the
cached replies it paid for), so a colleague can import it and replay the run at no cost.

The file is JSON, gzip-compressed when its name ends in ``.gz`` (the default name does). It never
holds a key: nothing in the store does.
"""
from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fairpp
from fairpp.schema import FairppError
from fairpp.store.runs import RunStore

__all__ = ["PACK_FORMAT", "PACK_VERSION", "export_pack", "import_pack", "read_pack", "pack_bytes",
           "default_pack_name"]

PACK_FORMAT = "fairpp-probe-pack"
PACK_VERSION = 1


def default_pack_name(run_id: str) -> str:
    """``<run_id>.fairpp-probe.json.gz``."""
    return f"{run_id}.fairpp-probe.json.gz"


def pack_bytes(store: Any, run_id: str, *, compress: bool = True) -> bytes:
    """The pack of ``run_id`` as bytes (for a download button)."""
    data = {"format": PACK_FORMAT, "version": PACK_VERSION, "code_version": fairpp.__version__,
            "exported_at": datetime.now(timezone.utc).isoformat(), **RunStore(store).pack_tables(run_id)}
    raw = json.dumps(data, ensure_ascii=False, default=str).encode("utf-8")
    return gzip.compress(raw, mtime=0) if compress else raw


def export_pack(store: Any, run_id: str, path: str | Path) -> Path:
    """Write the pack of ``run_id`` to ``path`` (gzip when the name ends in ``.gz``); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pack_bytes(store, run_id, compress=path.name.endswith(".gz")))
    return path


def read_pack(source: str | Path | bytes) -> dict[str, Any]:
    """Decode a pack (a path or the file's bytes) and check its format."""
    name = "the upload"
    if isinstance(source, (str, Path)):
        name = str(source)
        try:
            source = Path(source).read_bytes()
        except OSError as exc:
            raise FairppError(f"cannot read probe pack {name}: {exc}") from exc
    raw = gzip.decompress(source) if source[:2] == b"\x1f\x8b" else source
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FairppError(f"{name} is not a probe pack (not JSON: {exc}); export one with "
                          "`fairpp probe-pack export RUN_ID FILE`.") from exc
    if not isinstance(data, dict) or data.get("format") != PACK_FORMAT:
        raise FairppError(f"{name} is not a probe pack (format {data.get('format') if isinstance(data, dict) else None!r});"
                          " export one with `fairpp probe-pack export RUN_ID FILE`.")
    if int(data.get("version", 0)) > PACK_VERSION:
        raise FairppError(f"{name} is a version {data['version']} probe pack; this fairpp reads up to version "
                          f"{PACK_VERSION}. Upgrade fairpp.")
    for key in ("run", "answers", "questions"):
        if key not in data:
            raise FairppError(f"{name} lacks its {key!r} table; export the pack again.")
    return data


def import_pack(store: Any, source: str | Path | bytes, *, replace: bool = False) -> str:
    """Import a pack (path or bytes) into the store; returns the run id.

    Questions it asked are added if missing; its answers, card, request log and cached replies are
    stored, so re-running the same probe here asks nothing already answered. Raises
    :class:`FairppError` when the run is already here (pass ``replace=True`` to overwrite).
    """
    return RunStore(store).import_tables(read_pack(source), replace=replace)
