"""Figures from plain arrays (matplotlib, optional: ``pip install 'embed-sql[plot]'``).

Nothing here knows a pipeline: callers pass coordinates, statistics and labels. Everything
draws on a fresh ``Figure`` object (no pyplot global state), so it is safe in scripts,
servers and notebooks alike; a Figure renders inline in notebooks.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from embed_sql.exceptions import InvalidParameterError, MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["drift_figure", "embedding_map", "figure_html", "project"]

_REFERENCE, _CURRENT = "#4c72b0", "#dd8452"


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        msg = "figures need matplotlib; install the extra: pip install 'embed-sql[plot]'"
        raise MissingDependencyError(msg) from exc
    return Figure


def drift_figure(
    projection: tuple[np.ndarray, np.ndarray] | None,
    ks_statistic: Sequence[float] | None,
    drifted: Sequence[bool] | None,
    *,
    title: str = "drift check",
) -> Figure:
    """Draw two samples on two principal components, and per-component KS statistics.

    Parameters
    ----------
    projection
        ``(reference, current)``, each ``(n, 2)`` coordinates; None leaves the panel empty.
    ks_statistic, drifted
        One KS statistic and one drift flag per component (drifted bars in orange).
    title
        The figure's title.
    """
    fig = _figure_class()(figsize=(9, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    if projection is not None:
        ref, cur = projection
        left.scatter(ref[:, 0], ref[:, 1], s=6, alpha=0.5, c=_REFERENCE, label="reference")
        left.scatter(cur[:, 0], cur[:, 1], s=6, alpha=0.5, c=_CURRENT, label="current")
        left.set(xlabel="PC 1", ylabel="PC 2", title="samples on the reference's PCs")
        left.legend(loc="best", fontsize="small", markerscale=2)
    if ks_statistic is not None:
        flags = list(drifted) if drifted is not None else [False] * len(ks_statistic)
        xs = range(1, len(ks_statistic) + 1)
        right.bar(xs, list(ks_statistic), color=[_CURRENT if d else _REFERENCE for d in flags])
        right.set(xlabel="principal component", ylabel="KS statistic", xticks=list(xs))
        share = sum(flags) / max(len(flags), 1)
        right.set_title(f"drifted components: {share:.0%} (orange)")
    fig.suptitle(title)
    return fig


def project(vectors: np.ndarray, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """Return ``(n, 2)`` coordinates of ``vectors``: PCA (default) or UMAP (cosine).

    UMAP needs ``umap-learn`` (not a dependency: ``pip install umap-learn``); PCA is an SVD
    of the centred vectors, deterministic up to the sign of each axis (fixed here).
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        msg = f"a map needs at least two vectors as an (n, d) matrix, got shape {x.shape}"
        raise InvalidParameterError(msg)
    if not np.isfinite(x).all():
        msg = "vectors with NaN or Inf cannot be placed on a map; filter them out first"
        raise InvalidParameterError(msg)
    if method == "pca":
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axes = vt[:2]
        axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
        out = centred @ axes.T
        return out if out.shape[1] == 2 else np.column_stack([out, np.zeros(len(out))])
    if method == "umap":
        try:
            import umap  # type: ignore[import-not-found]
        except ImportError as exc:
            msg = "method='umap' needs umap-learn: pip install umap-learn (or use method='pca')"
            raise MissingDependencyError(msg) from exc
        reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed)
        return np.asarray(reducer.fit_transform(x))
    msg = f"method={method!r}: use 'pca' (default) or 'umap'"
    raise InvalidParameterError(msg)


# matplotlib's tab10 (distinct hues), then the light tones of tab20: 20 groups in colour
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
    "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip


def embedding_map(
    vectors: np.ndarray,
    color: Sequence[object] | None = None,
    *,
    labels: Sequence[str | None] | None = None,
    method: str = "pca",
    title: str | None = None,
    max_labels: int = 12,
    seed: int = 0,
) -> Figure:
    """Draw an embedding column on a 2-D map, coloured by a label or cluster.

    Parameters
    ----------
    vectors
        ``(n, d)`` vectors (NULL rows already dropped).
    color
        One group per point (a topic, a cluster id); a legend names each group. Up to 20
        groups get their own colour; more are drawn grey.
    labels
        Texts to write beside a few points: up to ``max_labels`` of them, spread over the
        map (the point farthest from those already labelled comes next; none that would
        crowd another), cut to 40 characters.
    method
        ``"pca"`` (default) or ``"umap"`` (needs ``umap-learn``).
    title
        The figure's title (default: the method and the number of points).

    Returns
    -------
    matplotlib.figure.Figure
        Shown inline in notebooks; ``fig.savefig("map.png")`` writes a PNG.
    """
    xy = project(vectors, method, seed=seed)
    fig = _figure_class()(figsize=(8, 6), layout="constrained")
    ax = fig.subplots()
    if color is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=10, alpha=0.6, c=_PALETTE[0], linewidths=0)
    else:
        groups = [str(g) for g in color]
        if len(groups) != len(xy):
            msg = f"color has {len(groups)} values for {len(xy)} vectors; give one per vector"
            raise InvalidParameterError(msg)
        names = sorted(set(groups), key=lambda g: (-groups.count(g), g))
        palette = _PALETTE
        for i, name in enumerate(names):
            at = np.array([g == name for g in groups])
            shown = name if i < 20 else None
            ax.scatter(
                xy[at, 0], xy[at, 1], s=10, alpha=0.7, linewidths=0,
                c=palette[i] if i < 20 else "#bbbbbb", label=shown,
            )  # fmt: skip
        extra = f" (+{len(names) - 20} more in grey)" if len(names) > 20 else ""
        ax.legend(
            loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small", markerscale=2,
            frameon=False, title=f"{len(names)} groups{extra}",
        )  # fmt: skip
    if labels is not None:
        _annotate(ax, xy, labels, max_labels)
    axis = "PC" if method == "pca" else "UMAP"
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", xticks=[], yticks=[])
    ax.set_title(title or f"{len(xy):,} vectors, {method.upper()}")
    return fig


def _annotate(ax: object, xy: np.ndarray, labels: Sequence[str | None], most: int) -> None:
    """Label up to ``most`` points, spread out: each next one farthest from those taken."""
    texts = list(labels)
    if len(texts) != len(xy):
        msg = f"labels has {len(texts)} values for {len(xy)} vectors; give one per vector"
        raise InvalidParameterError(msg)
    have = [i for i, t in enumerate(texts) if t]
    if not have or most <= 0:
        return
    span = np.ptp(xy, axis=0)
    # a label is wide and short: points count as close when within a third of the map's
    # width and a tenth of its height; labels stop when none is clear of those taken
    scaled = (xy / np.where(span == 0, 1, span)) * np.array([3.0, 10.0])
    picked = [have[int(np.argmin(np.linalg.norm(scaled[have] - scaled[have].mean(0), axis=1)))]]
    gap = np.linalg.norm(scaled[have] - scaled[picked[0]], axis=1)
    while len(picked) < min(most, len(have)) and gap.max() > 1.0:
        nxt = have[int(np.argmax(gap))]
        picked.append(nxt)
        gap = np.minimum(gap, np.linalg.norm(scaled[have] - scaled[nxt], axis=1))
    middle = xy.min(axis=0) + span / 2
    for i in picked:
        text = str(texts[i])
        short = text if len(text) <= 40 else text[:39] + "…"
        right, top = xy[i, 0] > middle[0], xy[i, 1] > middle[1]  # write towards the centre
        ax.annotate(  # type: ignore[attr-defined]
            short, xy[i], xytext=(-4 if right else 4, -4 if top else 4),
            textcoords="offset points", fontsize=7, ha="right" if right else "left",
            va="top" if top else "bottom",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
        )  # fmt: skip


def figure_html(fig: Figure, *, alt: str = "figure", dpi: int = 80) -> str:
    """Return ``fig`` as an inline ``<img>`` (PNG, base64)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img alt='{alt}' src='data:image/png;base64,{data}'/>"
