"""Settings read once from ``FAIRPP_*`` environment variables."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "settings", "DEFAULT_DB"]

#: The default database: ``data/fairpp.duckdb`` beside the package.
DEFAULT_DB = Path(__file__).resolve().parents[1] / "data" / "fairpp.duckdb"


@dataclass(frozen=True)
class Settings:
    """Process-wide settings.

    ``db``: the DuckDB file (``FAIRPP_DB``); ``hub_timeout``: seconds before a hub download gives up
    (``FAIRPP_HUB_TIMEOUT``).
    """

    db: Path
    hub_timeout: float


def settings() -> Settings:
    """Read the settings from the environment.

    >>> settings().db.name.endswith(".duckdb") or True
    True
    """
    return Settings(
        db=Path(os.environ.get("FAIRPP_DB") or DEFAULT_DB),
        hub_timeout=float(os.environ.get("FAIRPP_HUB_TIMEOUT", "8")),
    )
