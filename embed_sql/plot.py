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

from embed_sql.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["drift_figure", "figure_html"]

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


def figure_html(fig: Figure, *, alt: str = "figure", dpi: int = 80) -> str:
    """Return ``fig`` as an inline ``<img>`` (PNG, base64)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img alt='{alt}' src='data:image/png;base64,{data}'/>"
