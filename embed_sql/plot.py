"""Figures for notebooks and reports (matplotlib, optional: ``pip install 'embed-sql[plot]'``).

Everything here draws on a fresh ``Figure`` object (no pyplot global state), so it is safe
in scripts, servers and notebooks alike.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from embed_sql.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from embed_sql.pipelines.drift import DriftReport

__all__ = ["drift_figure", "drift_figure_html"]

_REFERENCE, _CURRENT = "#4c72b0", "#dd8452"


def _figure_class() -> type[Figure]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        msg = "figures need matplotlib; install the extra: pip install 'embed-sql[plot]'"
        raise MissingDependencyError(msg) from exc
    return Figure


def drift_figure(report: DriftReport) -> Figure:
    """Draw a drift report: both samples on the reference's first two principal components.

    The second panel shows the per-component KS statistics, drifted components marked.
    """
    fig = _figure_class()(figsize=(9, 3.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    if report.projection is not None:
        ref, cur = report.projection
        left.scatter(ref[:, 0], ref[:, 1], s=6, alpha=0.5, c=_REFERENCE, label="reference")
        left.scatter(cur[:, 0], cur[:, 1], s=6, alpha=0.5, c=_CURRENT, label="current")
        left.set(xlabel="PC 1", ylabel="PC 2", title="samples on the reference's PCs")
        left.legend(loc="best", fontsize="small", markerscale=2)
    pca = next((t for t in report.tests if t.name == "pca"), None)
    if pca is not None:
        stats = list(pca.extra["ks_statistic"])  # type: ignore[call-overload]
        flags = list(pca.extra["drifted"])  # type: ignore[call-overload]
        colors = [_CURRENT if d else _REFERENCE for d in flags]
        xs = range(1, len(stats) + 1)
        right.bar(xs, stats, color=colors)
        right.set(xlabel="principal component", ylabel="KS statistic", xticks=list(xs))
        right.set_title(f"drifted components: {pca.statistic:.0%} (orange)")
    fig.suptitle(f"drift check: {report.verdict} ({report.votes}/{len(report.tests)} tests)")
    return fig


def drift_figure_html(report: DriftReport) -> str:
    """Return the figure of :func:`drift_figure` as an inline ``<img>``.

    Empty without matplotlib or without tests to draw.
    """
    if not report.tests:
        return ""
    try:
        fig = drift_figure(report)
    except MissingDependencyError:
        return ""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode()
    return f"<img alt='drift figure' src='data:image/png;base64,{data}'/>"
