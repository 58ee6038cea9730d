"""Workflows built on models and vectors, host-agnostic (Arrow in, Arrow out)."""

from __future__ import annotations

from embed_sql.pipelines.preprocess import aggregate, chunk, clean, clean_text

__all__ = ["aggregate", "chunk", "clean", "clean_text"]
