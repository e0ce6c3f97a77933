"""The canonical Fair-PP store: one embedded DuckDB file. The only place that imports duckdb.

Tables (documented in ``data/README.md``): ``sources``, ``questions``, ``respondents``, ``answers``.
"""
from fairpp.store.core import Filters, Store, StoreError

__all__ = ["Store", "StoreError", "Filters"]
from fairpp.store.runs import RunStore  # noqa: E402,F401  (probe runs: cards, request log, cache)
