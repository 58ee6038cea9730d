"""The outcome of a drift check: one :class:`DriftTest` per test and the verdict.

Its views: JSON (written atomically), Arrow, text, HTML with a figure.
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from embed_sql._io import write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DriftReport", "DriftTest"]


@dataclass(frozen=True)
class DriftTest:
    """One test of a :class:`DriftReport`: its statistic, p-values and whether it rejects.

    ``p_value`` is the test's own p-value; ``p_adjusted`` is Holm's adjustment over the
    tests of the report, and ``drift`` is ``p_adjusted < alpha`` (None when not decided).
    """

    name: str
    statistic: float
    p_value: float | None
    threshold: str
    drift: bool | None
    detail: str
    n_reference: int
    n_current: int
    p_adjusted: float | None = None
    extra: dict[str, object] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DriftReport:
    """The outcome of a drift check: one :class:`DriftTest` per test and an overall verdict.

    The verdict is ``"drift"`` when some test's Holm-adjusted p-value is below ``alpha``
    (equivalently: the smallest p-value is below ``alpha`` / the number of tests), so the
    chance of a false alarm is at most ``alpha``.
    """

    verdict: str
    tests: tuple[DriftTest, ...]
    n_reference: int
    n_current: int
    dim: int
    alpha: float
    seed: int
    model: str | None = None
    notes: tuple[str, ...] = ()
    projection: tuple[np.ndarray, np.ndarray] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def drift(self) -> bool:
        """True when the verdict is ``"drift"``."""
        return self.verdict == "drift"

    @property
    def rejections(self) -> int:
        """How many tests reject "no drift" (Holm-adjusted p-value below ``alpha``)."""
        return sum(bool(t.drift) for t in self.tests)

    @property
    def p_value(self) -> float | None:
        """The smallest Holm-adjusted p-value: the overall test's p-value (None: no test)."""
        adjusted = [t.p_adjusted for t in self.tests if t.p_adjusted is not None]
        return min(adjusted) if adjusted else None

    def test(self, name: str) -> DriftTest:
        """Return the test called ``name`` (one of :data:`TESTS`)."""
        for t in self.tests:
            if t.name == name:
                return t
        msg = f"no test {name!r} in this report; it ran {[t.name for t in self.tests]}"
        raise KeyError(msg)

    def to_dict(self) -> dict[str, object]:
        """Return the report as plain JSON-ready data (no projection coordinates)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("tests", "projection")
        }
        out["notes"] = list(self.notes)
        out["rejections"] = self.rejections
        out["p_value"] = self.p_value
        out["tests"] = [dataclasses.asdict(t) for t in self.tests]
        return _plain(out)  # type: ignore[return-value]

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """Return the report as JSON; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            write_text_atomic(path, text)
        return text

    def to_arrow(self) -> pa.Table:
        """Return one row per test plus an ``overall`` row.

        The overall row's statistic is the number of tests that reject, its p-values the
        smallest Holm-adjusted one.
        """
        rows = [
            (t.name, t.statistic, t.p_value, t.p_adjusted, t.threshold, t.drift, t.detail)
            for t in self.tests
        ]
        rows.append(
            (
                "overall",
                float(self.rejections),
                self.p_value,
                self.p_value,
                f"smallest Holm-adjusted p < {self.alpha:g}",
                None if self.verdict == "insufficient data" else self.drift,
                self.verdict,
            )
        )
        names = ["test", "statistic", "p_value", "p_adjusted", "threshold", "drift", "detail"]
        types = [
            pa.string(),
            pa.float64(),
            pa.float64(),
            pa.float64(),
            pa.string(),
            pa.bool_(),
            pa.string(),
        ]
        columns = [pa.array([r[i] for r in rows], t) for i, t in enumerate(types)]
        return pa.table(columns, names=names)

    def __str__(self) -> str:
        overall = "" if self.p_value is None else f"p={self.p_value:.4f}, "
        lines = [
            f"drift check: {self.verdict} ({overall}{self.rejections} of {len(self.tests)} "
            f"tests reject at Holm-adjusted alpha={self.alpha:g}; reference "
            f"{self.n_reference:,} rows, current {self.n_current:,} rows, dim {self.dim})"
        ]
        for t in self.tests:
            p = "" if t.p_value is None else f"  p={t.p_value:.4f}"
            adj = "" if t.p_adjusted is None else f" adj={t.p_adjusted:.4f}"
            vote = {True: "DRIFT", False: "ok", None: "n/a"}[t.drift]
            lines.append(f"  {t.name:<10} {t.statistic:10.4f}{p}{adj}  {vote}")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_html(self, *, figure: bool = True) -> str:
        """Return a small HTML table, with the figure inlined when matplotlib is installed."""
        head = "".join(
            f"<th>{h}</th>"
            for h in ("test", "statistic", "p-value", "Holm-adjusted", "rejects when", "drift")
        )
        body = []
        for t in self.tests:
            p = "" if t.p_value is None else f"{t.p_value:.4f}"
            adj = "" if t.p_adjusted is None else f"{t.p_adjusted:.4f}"
            vote = {True: "<b>drift</b>", False: "no", None: "n/a"}[t.drift]
            body.append(
                f"<tr><td title='{html.escape(t.detail, quote=True)}'>{t.name}</td>"
                f"<td>{t.statistic:.4f}</td><td>{p}</td><td>{adj}</td>"
                f"<td>{html.escape(t.threshold)}</td><td>{vote}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        img = self._figure_html() if figure else ""
        return (
            f"<div><p><b>Drift check: {html.escape(self.verdict)}</b> — {self.rejections} of "
            f"{len(self.tests)} tests reject at Holm-adjusted alpha={self.alpha:g} "
            f"(reference {self.n_reference:,} rows, current {self.n_current:,} rows, dim "
            f"{self.dim}).</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{f'<ul>{notes}</ul>' if notes else ''}{img}</div>"
        )

    def figure(self) -> Figure:
        """Draw the report (matplotlib) as a Figure.

        Both samples on the first two principal components of the pooled rows, and the
        per-component KS statistics with the drifted components marked.
        """
        from embed_sql import plot

        pca = next((t for t in self.tests if t.name == "pca"), None)
        return plot.drift_figure(
            self.projection,
            None if pca is None else list(pca.extra["ks_statistic"]),  # type: ignore[call-overload]
            None if pca is None else list(pca.extra["drifted"]),  # type: ignore[call-overload]
            title=f"drift check: {self.verdict} ({self.rejections}/{len(self.tests)} tests reject)",
        )

    def _figure_html(self) -> str:
        from embed_sql import plot
        from embed_sql.exceptions import MissingDependencyError

        if not self.tests:
            return ""
        try:
            return plot.figure_html(self.figure(), alt="drift figure")
        except MissingDependencyError:
            return ""

    def _repr_html_(self) -> str:
        return self.to_html()


def _plain(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
