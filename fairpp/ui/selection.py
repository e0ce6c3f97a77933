"""The global selection (sidebar filters) as one hashable value that cached accessors take as their key."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fairpp.figures import dimension_label

__all__ = ["Selection", "FILTER_COLUMNS"]

#: Global filter -> (question column, URL parameter, label), in sidebar order.
FILTER_COLUMNS: dict[str, tuple[str, str, str]] = {
    "topic": ("topic", "topic", "Topic"),
    "category": ("problem_category", "category", "Problem category"),
    "group_type": ("group_type", "group_type", "Group type"),
    "group": ("group_name", "group", "Group"),
    "dimension": ("dimension", "dimension", "Dimension"),
    "split": ("split", "split", "Split"),
}


@dataclass(frozen=True)
class Selection:
    """What the sidebar selects: the data version, question filters and respondents.

    ``version`` changes whenever the database changes (a load), so every cache keyed by a selection is
    invalidated by it. ``filters`` is a sorted tuple of ``(question column, values)``; ``respondents`` is
    ``None`` for "all".

    >>> s = Selection(version="v1", filters=(("dimension", (1, 2)),), respondents=None)
    >>> s.as_filters(), s.dims
    ({'dimension': [1, 2]}, (1, 2))
    """

    version: str
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    respondents: tuple[str, ...] | None = None

    def as_filters(self) -> dict[str, list[Any]]:
        """The filters as :data:`fairpp.store.Filters` (``{column: [values]}``)."""
        return {col: list(vals) for col, vals in self.filters}

    def value(self, column: str) -> tuple[Any, ...]:
        """The selected values of one question column (empty: all)."""
        return dict(self.filters).get(column, ())

    @property
    def dims(self) -> tuple[int, ...]:
        """The dimensions in view (the dimension filter, or 1..5)."""
        return tuple(sorted(int(d) for d in self.value("dimension"))) or (1, 2, 3, 4, 5)

    def with_filters(self, **columns: Any) -> "Selection":
        """A copy with some question columns replaced (an empty list removes a filter)."""
        merged = dict(self.filters)
        for col, vals in columns.items():
            if vals:
                merged[col] = tuple(vals)
            else:
                merged.pop(col, None)
        return Selection(self.version, tuple(sorted(merged.items())), self.respondents)

    def describe(self) -> str:
        """A one-line summary of the filters for captions and file names."""
        parts = []
        for col, vals in self.filters:
            shown = [dimension_label(int(v), style="short") if col == "dimension" else str(v) for v in vals]
            parts.append(f"{col.replace('_', ' ')} = {', '.join(shown)}")
        if self.respondents is not None:
            parts.append(f"{len(self.respondents)} respondent(s)")
        return "; ".join(parts) or "all questions, all respondents"
