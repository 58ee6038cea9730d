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
    """One test of a :class:`DriftReport`: its statistic, p-value, threshold and vote.

    ``drift`` is None when the test could not run (too few rows).
    """

    name: str
    statistic: float
    p_value: float | None
    threshold: str
    drift: bool | None
    detail: str
    n_reference: int
    n_current: int
    extra: dict[str, object] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class DriftReport:
    """The outcome of a drift check: one :class:`DriftTest` per test and an overall verdict."""

    verdict: str
    tests: tuple[DriftTest, ...]
    n_reference: int
    n_current: int
    dim: int
    min_votes: int
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
    def votes(self) -> int:
        """How many tests flagged drift."""
        return sum(bool(t.drift) for t in self.tests)

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
        out["votes"] = self.votes
        out["tests"] = [dataclasses.asdict(t) for t in self.tests]
        return _plain(out)  # type: ignore[return-value]

    def to_json(self, path: str | os.PathLike[str] | None = None, *, indent: int = 2) -> str:
        """Return the report as JSON; also write it atomically to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            write_text_atomic(path, text)
        return text

    def to_arrow(self) -> pa.Table:
        """Return one row per test plus an ``overall`` row (its statistic is the vote count)."""
        rows = [
            (t.name, t.statistic, t.p_value, t.threshold, t.drift, t.detail) for t in self.tests
        ]
        rows.append(
            (
                "overall",
                float(self.votes),
                None,
                f"at least {self.min_votes} tests flag drift",
                None if self.verdict == "insufficient data" else self.drift,
                self.verdict,
            )
        )
        names = ["test", "statistic", "p_value", "threshold", "drift", "detail"]
        types = [pa.string(), pa.float64(), pa.float64(), pa.string(), pa.bool_(), pa.string()]
        columns = [pa.array([r[i] for r in rows], t) for i, t in enumerate(types)]
        return pa.table(columns, names=names)

    def __str__(self) -> str:
        lines = [
            f"drift check: {self.verdict} ({self.votes} of {len(self.tests)} tests flag drift; "
            f"reference {self.n_reference:,} rows, current {self.n_current:,} rows, dim {self.dim})"
        ]
        for t in self.tests:
            p = "" if t.p_value is None else f"  p={t.p_value:.4f}"
            vote = {True: "DRIFT", False: "ok", None: "n/a"}[t.drift]
            lines.append(f"  {t.name:<10} {t.statistic:10.4f}{p:<12} {vote:<6} [{t.threshold}]")
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_html(self, *, figure: bool = True) -> str:
        """Return a small HTML table, with the figure inlined when matplotlib is installed."""
        head = "".join(
            f"<th>{h}</th>" for h in ("test", "statistic", "p-value", "flags when", "drift")
        )
        body = []
        for t in self.tests:
            p = "" if t.p_value is None else f"{t.p_value:.4f}"
            vote = {True: "<b>drift</b>", False: "no", None: "n/a"}[t.drift]
            body.append(
                f"<tr><td title='{html.escape(t.detail, quote=True)}'>{t.name}</td>"
                f"<td>{t.statistic:.4f}</td><td>{p}</td><td>{html.escape(t.threshold)}</td>"
                f"<td>{vote}</td></tr>"
            )
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        img = self._figure_html() if figure else ""
        return (
            f"<div><p><b>Drift check: {html.escape(self.verdict)}</b> — {self.votes} of "
            f"{len(self.tests)} tests flag drift (reference {self.n_reference:,} rows, current "
            f"{self.n_current:,} rows, dim {self.dim}).</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f"{f'<ul>{notes}</ul>' if notes else ''}{img}</div>"
        )

    def figure(self) -> Figure:
        """Draw the report (matplotlib) as a Figure.

        Both samples on the reference's first two PCs, and the per-component KS statistics
        with the drifted components marked.
        """
        from embed_sql import plot

        pca = next((t for t in self.tests if t.name == "pca"), None)
        return plot.drift_figure(
            self.projection,
            None if pca is None else list(pca.extra["ks_statistic"]),  # type: ignore[call-overload]
            None if pca is None else list(pca.extra["drifted"]),  # type: ignore[call-overload]
            title=f"drift check: {self.verdict} ({self.votes}/{len(self.tests)} tests)",
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
