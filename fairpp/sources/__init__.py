"""Readers that turn inputs into canonical :class:`fairpp.schema.Batch` frames.

``files`` (CSV/Parquet, strict), ``published`` (the Fair-PP wide layout), ``tidy`` (long layout),
``hub`` (download from the Hugging Face hub), ``demo`` (the synthetic demo generator).
"""
