"""The dataset card's plots (PNG, matplotlib's object API: no pyplot state, no GUI backend).

Every category gets one row on shared axes, in the same order and colour in every plot, so
categories are compared by eye rather than read off separate scales.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

PLOT_DIR = "plots"
TOKEN_PANELS = (("prompt_tokens_len", "prompt"), ("reasoning_content_tokens_len", "reasoning"),
                ("content_tokens_len", "answer"))
SCORES = list(range(11))  # final scores are integers 0-10
DPI = 100


@dataclass(frozen=True)
class Plot:
    path: str       # relative to the export folder
    alt: str
    caption: str    # one line, shown under the image


def write_plots(table: pa.Table, cats: list[str], out_dir: Path) -> list[Plot]:
    """Write the plots the table's columns allow under ``out_dir/plots``."""
    order = sorted(set(cats))
    if not order:
        return []
    (out_dir / PLOT_DIR).mkdir(exist_ok=True)
    plots = []
    if "score" in table.column_names:
        plots.append(_scores(table.column("score").to_pylist(), cats, order, out_dir))
    panels = [(c, label) for c, label in TOKEN_PANELS if c in table.column_names]
    if panels:
        plots.append(_token_lengths(table, panels, cats, order, out_dir))
    return [p for p in plots if p is not None]


def _figure(width: float, rows: int):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, 1.3 + 0.42 * rows), layout="constrained", dpi=DPI)


def _colours(order: list[str]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return {c: palette(i % 10) for i, c in enumerate(order)}


def _labels(order: list[str], counts: Counter) -> list[str]:
    return [f"{c} (n={counts[c]:,})" for c in order]


def _scores(scores: list, cats: list[str], order: list[str], out_dir: Path) -> Plot | None:
    from matplotlib import colormaps

    counts = Counter(c for c, s in zip(cats, scores) if s is not None)
    by = Counter((c, int(s)) for c, s in zip(cats, scores) if s is not None)
    if not counts:
        return None
    shade = colormaps["RdYlGn"]
    fig = _figure(8.0, len(order))
    ax = fig.subplots()
    y = np.arange(len(order))
    left = np.zeros(len(order))
    for score in SCORES:
        share = np.array([100.0 * by[(c, score)] / counts[c] if counts[c] else 0.0 for c in order])
        if not share.any():
            continue
        colour = shade(score / 10)
        bars = ax.barh(y, share, left=left, color=colour, edgecolor="white", linewidth=0.8, label=str(score))
        ink = "white" if 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2] < 0.5 else "black"
        for bar, pct, c in zip(bars, share, order):
            if pct >= 7:
                ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + bar.get_height() / 2,
                        str(by[(c, score)]), ha="center", va="center", fontsize=8, color=ink)
        left += share
    ax.set_yticks(y, _labels(order, counts))
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the category's rows (%)")
    fig.legend(*ax.get_legend_handles_labels(), title="score", loc="outside right upper", frameon=False)
    return _save(fig, out_dir, "scores_by_category.png", "final score per category",
                 "Final score (0-10) of each category's rows, as shares of the category; numbers are rows. "
                 "Math and Exam rows are Math-Verify checks (10 = verified), the rest the judge's 0-10.")


def _token_lengths(table: pa.Table, panels: list[tuple[str, str]], cats: list[str], order: list[str],
                   out_dir: Path) -> Plot | None:
    labels = np.asarray(cats)
    columns = {c: table.column(c).cast(pa.float64()).to_numpy(zero_copy_only=False) for c, _ in panels}
    if not any(np.isfinite(v).any() for v in columns.values()):
        return None
    counts = Counter(cats)
    colours = _colours(order)
    fig = _figure(3.0 * len(panels) + 1.4, len(order))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, squeeze=False)[0])
    logged = []
    for ax, (column, title) in zip(axes, panels):
        values = columns[column]
        data = [values[(labels == c) & np.isfinite(values)] for c in order]
        present = [d for d in data if d.size]
        spread = [d[d > 0] for d in present]
        low = min((d.min() for d in spread if d.size), default=1.0)
        high = max((d.max() for d in present), default=1.0)
        parts = ax.boxplot([d if d.size else [np.nan] for d in data], orientation="horizontal", patch_artist=True,
                           widths=0.6, flierprops={"markersize": 3, "alpha": 0.6},
                           medianprops={"color": "black"})
        for patch, c in zip(parts["boxes"], order):
            patch.set_facecolor((*colours[c][:3], 0.55))
        if high / max(low, 1.0) > 30:
            ax.set_xscale("log")
            logged.append(title)
        ax.set_title(f"{title} tokens")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(np.arange(1, len(order) + 1), _labels(order, counts))
    axes[0].invert_yaxis()
    scale = f"{', '.join(logged)} on a log scale; " if logged else ""
    return _save(fig, out_dir, "token_lengths_by_category.png", "token lengths per category",
                 f"Token lengths per category ({scale}boxes span the middle half of the rows, the line is "
                 "the median, whiskers reach 1.5x the box, dots are rows beyond).")


def _save(fig, out_dir: Path, name: str, alt: str, caption: str) -> Plot:
    relative = f"{PLOT_DIR}/{name}"
    fig.savefig(out_dir / relative, dpi=DPI, metadata={"Software": None})
    return Plot(relative, alt, caption)
