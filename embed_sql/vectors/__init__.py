"""Everything about vectors once they exist: Arrow layout, metrics, indexes, joins."""

from __future__ import annotations

from embed_sql.vectors.arrow import from_numpy, to_numpy

__all__ = ["from_numpy", "to_numpy"]
