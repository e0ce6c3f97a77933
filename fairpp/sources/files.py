"""Read CSV / Parquet files strictly and hand them to the reader of their layout."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fairpp.schema import Batch, LoadError

__all__ = ["read_table", "read_files", "file_sha256", "SUFFIXES"]

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (its provenance hash)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_table(path: str | Path, *, name: str | None = None) -> pd.DataFrame:
    """Read one CSV or Parquet file into a frame, refusing anything malformed.

    ``name`` is the file name used in messages (defaults to the path's name; uploads pass theirs).
    Raises :class:`LoadError` for a missing, empty, header-only, ragged or mistyped file.
    """
    path = Path(path)
    label = name or path.name
    kind = SUFFIXES.get(Path(label).suffix.lower())
    if kind is None:
        raise LoadError(f"{label}: unsupported file type {Path(label).suffix or '(no extension)'!r}. "
                        "Give a .csv or .parquet file in the Fair-PP or the tidy layout.")
    if not path.is_file():
        raise LoadError(f"{label}: no such file. Check the path.")
    if path.stat().st_size == 0:
        raise LoadError(f"{label}: the file is empty. Export the data again or pick another file.")
    table = _read_parquet(path, label) if kind == "parquet" else _read_csv(path, label)
    if table.num_rows == 0:
        raise LoadError(f"{label}: the file has a header but no rows. Give a file with data rows.")
    return table.to_pandas(types_mapper=_types)


def _types(t: pa.DataType) -> object:
    return pd.StringDtype("pyarrow") if pa.types.is_string(t) or pa.types.is_large_string(t) else None


def _read_parquet(path: Path, label: str) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise LoadError(f"{label}: not a readable Parquet file ({exc}). If it is a CSV file, give it a .csv "
                        "extension; otherwise export it again as Parquet.") from exc


def _read_csv(path: Path, label: str) -> pa.Table:
    bad: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        bad.append(row)
        return "skip"

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                              invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=True),
        )
    except pa.ArrowInvalid as exc:
        raise LoadError(f"{label}: cannot be read as CSV ({exc}). Check that it is a comma-separated text "
                        "file with one header line.") from exc
    if bad:
        first = bad[0]
        where = f"line {first.number}" if first.number else "a row"
        raise LoadError(
            f"{label}: {len(bad)} ragged row(s); {where} has {first.actual_columns} fields where the header "
            f"has {first.expected_columns} (text: {first.text[:80]!r}). Quote fields that contain commas "
            "and make every row have as many fields as the header.")
    return table


def read_files(paths: Sequence[str | Path], *, names: Sequence[str] | None = None,
               kind: str = "file") -> Batch:
    """Read one or more files of the same layout (published wide, or tidy long) into one batch.

    Files are told apart by their columns: a ``Perspective`` column means the published layout,
    ``respondent`` and ``answer`` columns mean the tidy layout.
    """
    from fairpp.sources import published, tidy

    if not paths:
        raise LoadError("no file given: name at least one CSV or Parquet file")
    names = list(names) if names else [Path(p).name for p in paths]
    frames = []
    for p, n in zip(paths, names):
        frame = read_table(p, name=n)
        frames.append((n, frame, file_sha256(p)))
    layouts = {n: _layout(n, f) for n, f, _ in frames}
    if len(set(layouts.values())) > 1:
        raise LoadError(f"files in different layouts cannot be loaded together: {layouts}. Load them one "
                        "at a time, using --append for the second.")
    reader = published if next(iter(layouts.values())) == "published" else tidy
    batch = reader.to_batch(frames)
    batch.source.update(kind=kind, layout="published" if reader is published else "tidy",
                        files=[{"name": n, "sha256": h, "rows": len(f)} for n, f, h in frames])
    batch.source.setdefault("label", " + ".join(names))
    batch.source.setdefault("synthetic", False)
    return batch


def _layout(name: str, frame: pd.DataFrame) -> str:
    cols = {c.strip().lower() for c in frame.columns}
    if "perspective" in cols:
        return "published"
    if {"respondent", "answer"} <= cols:
        return "tidy"
    raise LoadError(
        f"{name}: cannot tell the layout from the columns {list(frame.columns)[:12]}. The Fair-PP layout needs "
        "'Perspective', 'Specific Problem', 'Group', 'Question' and answer columns such as "
        "'gpt-4o-mini_role_1_answer'; the tidy layout needs 'text', 'dimension', 'respondent', 'answer'.")
