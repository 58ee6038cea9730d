"""Workflows built on models and vectors, host-agnostic (Arrow in, Arrow out)."""

from __future__ import annotations

from embed_sql.pipelines.drift import DriftCheck, DriftReport, DriftTest
from embed_sql.pipelines.outliers import OutlierScorer, outlier_scores
from embed_sql.pipelines.preprocess import aggregate, chunk, clean, clean_text

__all__ = [
    "DriftCheck",
    "DriftReport",
    "DriftTest",
    "OutlierScorer",
    "aggregate",
    "chunk",
    "clean",
    "clean_text",
    "outlier_scores",
]
