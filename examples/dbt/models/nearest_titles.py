"""A Python model: each title's nearest other title, with embed_sql's Polars namespace."""

import polars as pl

import embed_sql.polars  # noqa: F401 - adds the .embed namespace


def model(dbt, con):
    """Return (left_key, title, nearest, distance) per title: dbt stores it as a table."""
    articles = dbt.ref("articles").pl()
    pairs = articles.embed.knn_join(articles, k=2, vec="v", key="id")
    return (
        pairs.filter(pl.col("left_key") != pl.col("right_key"))
        .join(articles.select(pl.col("id").alias("left_key"), "title"), on="left_key")
        .join(
            articles.select(pl.col("id").alias("right_key"), pl.col("title").alias("nearest")),
            on="right_key",
        )
        .select("left_key", "title", "nearest", "distance")
    )
