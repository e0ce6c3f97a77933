"""Fair-PP Explorer: load, analyse, probe and present Fair-PP personalised-preference data.

The library never imports streamlit (only :mod:`fairpp.ui` does); only :mod:`fairpp.store` imports duckdb.
"""
__version__ = "0.1.0"

from fairpp.schema import Batch, FairppError, LoadError  # noqa: E402

__all__ = ["__version__", "Batch", "FairppError", "LoadError"]
