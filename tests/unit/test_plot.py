"""The embedding map: a Figure with a legend per group, spread labels, clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

import embed_sql.polars  # noqa: F401  (the .embed namespace)
from embed_sql.exceptions import InvalidParameterError, MissingDependencyError
from embed_sql.plot import embedding_map, project


def blobs(n: int = 60) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3] * 5
    groups = [f"g{i % 3}" for i in range(n)]
    x = np.stack([centres[i % 3] for i in range(n)]) + rng.normal(size=(n, 8)) * 0.3
    return x.astype(np.float32), groups


def test_pca_separates_the_groups_and_is_deterministic() -> None:
    x, groups = blobs()
    xy = project(x)
    assert xy.shape == (60, 2)
    np.testing.assert_array_equal(xy, project(x[:, :]))
    centres = np.array([xy[np.array(groups) == g].mean(0) for g in ("g0", "g1", "g2")])
    spread = max(np.linalg.norm(xy[np.array(groups) == "g0"] - centres[0], axis=1))
    assert min(np.linalg.norm(centres[0] - centres[1:], axis=1)) > 2 * spread


def test_map_has_a_legend_entry_per_group_and_the_labels_asked_for(tmp_path: Path) -> None:
    x, groups = blobs()
    texts = [f"point {i}" for i in range(60)]
    fig = embedding_map(x, groups, labels=texts, max_labels=5, title="blobs")
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["g0", "g1", "g2"]
    assert len(ax.texts) == 5
    assert ax.get_title() == "blobs"
    fig.savefig(tmp_path / "map.png")
    assert (tmp_path / "map.png").stat().st_size > 1_000


def test_polars_plot_skips_null_vectors_and_colours_by_a_column() -> None:
    x, groups = blobs(30)
    df = pl.DataFrame({"v": x.tolist(), "topic": groups}).with_columns(
        pl.col("v").cast(pl.Array(pl.Float32, 8))
    )
    df = pl.concat([df, pl.DataFrame({"v": [None], "topic": ["none"]}, schema=df.schema)])
    fig = df.embed.plot("v", color="topic")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["g0", "g1", "g2"]  # the NULL row is not drawn


def test_refusals() -> None:
    x, groups = blobs()
    with pytest.raises(InvalidParameterError, match="one per vector"):
        embedding_map(x, groups[:5])
    with pytest.raises(InvalidParameterError, match="at least two vectors"):
        project(x[:1])
    with pytest.raises(InvalidParameterError, match="NaN or Inf"):
        project(np.full((3, 2), np.nan))
    with pytest.raises(InvalidParameterError, match="use 'pca'"):
        project(x, "tsne")
    try:
        import umap  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        with pytest.raises(MissingDependencyError, match="pip install umap-learn"):
            project(x, "umap")
