"""Alpha sweeps: parse a range, write the rows as CSV, plot them (matplotlib, optional)."""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Values are rounded to this many decimals so 0.1 * 3 prints and compares as 0.3.
_DECIMALS = 10


@dataclass(frozen=True, slots=True)
class SweepRow:
    """One point of a sweep: a series (e.g. ``"min_max"``), its alpha and the metrics there."""

    series: str
    alpha: float
    metrics: Mapping[str, float]


def parse_sweep(spec: str) -> list[float]:
    """Parse ``"start:stop:step"`` (both ends inclusive), ``"a,b,c"`` or a single number.

    ``"0.0:1.0:0.1"`` gives the 11 values 0.0, 0.1, …, 1.0 computed as ``start + i · step``
    and rounded to 10 decimals, so accumulated float error neither drops nor adds the end
    point. ``stop`` is included when it lies on the grid (within 1e-9 steps).

    Raises:
        ValueError: not numbers, a non-positive step, ``stop < start``, or more than
            100,000 points.
    """
    text = spec.strip()
    try:
        if ":" not in text:
            values = [float(part) for part in text.split(",")]
        else:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError("expected start:stop:step")
            start, stop, step = (float(p) for p in parts)
            if not all(math.isfinite(v) for v in (start, stop, step)):
                raise ValueError("bounds and step must be finite")
            if step <= 0.0:
                raise ValueError("step must be > 0")
            if stop < start:
                raise ValueError("stop must be >= start")
            count = math.floor((stop - start) / step + 1e-9) + 1
            if count > 100_000:
                raise ValueError("more than 100,000 points")
            values = [round(start + i * step, _DECIMALS) for i in range(count)]
    except ValueError as exc:
        raise ValueError(f"bad sweep {spec!r}: {exc}") from exc
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"bad sweep {spec!r}: values must be finite")
    return values


def _metric_names(rows: Sequence[SweepRow]) -> list[str]:
    names: list[str] = []
    for row in rows:
        names.extend(name for name in row.metrics if name not in names)
    return names


def write_sweep_csv(rows: Sequence[SweepRow], path: str | Path) -> None:
    """Write ``series,alpha,<metric>...`` with one line per row (metrics to 6 decimals)."""
    names = _metric_names(rows)
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["series", "alpha", *names])
        for row in rows:
            cells = [f"{row.metrics[n]:.6f}" if n in row.metrics else "" for n in names]
            writer.writerow([row.series, f"{row.alpha:g}", *cells])


def plot_alpha_sweep(
    rows: Sequence[SweepRow],
    single_arm: Mapping[str, float],
    rrf: float | None,
    out_png: str | Path,
    title: str,
    *,
    metric: str = "nDCG@10",
) -> None:
    """Plot ``metric`` against alpha, one line per series, with each single arm's value (e.g.
    ``{"BM25": .685, "dense": .645}``) and RRF's as horizontal reference lines; save a PNG.

    matplotlib (the ``eval`` extra) is imported here, with the non-interactive Agg backend,
    so the server never needs it.
    """
    import matplotlib  # noqa: PLC0415 - optional dependency, only for plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure, axes = plt.subplots(figsize=(7, 4.5))
    try:
        series = list(dict.fromkeys(row.series for row in rows))
        for name in series:
            points = sorted((r.alpha, r.metrics[metric]) for r in rows if r.series == name)
            axes.plot([a for a, _ in points], [v for _, v in points], marker="o", label=name)
        styles = ["--", ":", "-."]
        for i, (label, value) in enumerate(single_arm.items()):
            axes.axhline(
                value,
                linestyle=styles[i % len(styles)],
                color="grey",
                label=f"{label} ({value:.3f})",
            )
        if rrf is not None:
            axes.axhline(rrf, linestyle="--", color="black", label=f"RRF ({rrf:.3f})")
        axes.set_xlabel("alpha (weight of the dense side)")
        axes.set_ylabel(metric)
        axes.set_title(title)
        axes.grid(alpha=0.3)
        axes.legend(loc="best", fontsize="small")
        figure.tight_layout()
        figure.savefig(Path(out_png), format="png", dpi=120)
    finally:
        plt.close(figure)
