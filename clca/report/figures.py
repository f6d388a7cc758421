"""Generic matplotlib (Agg) figures and HTML page helpers shared by every clca report.

Figures are written as PNG files; :func:`img_tag` embeds them as base64 so a page opens offline with no
external resource (no CDN, no JavaScript). Every piece of text from data or models goes through
:func:`esc` before it reaches HTML.
"""

from __future__ import annotations

import base64
import html
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def esc(text: object) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(text), quote=True)


def _wrap(label: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(label, width)[:3]) or label


def bar_chart_model_vs_human(
    path: str | Path,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    title: str,
    *,
    ylabel: str = "share",
) -> Path:
    """Grouped bars: one group per option label, one bar per series (e.g. "human", "plain", "cultural")."""
    p = Path(path)
    n = max(len(series), 1)
    x = np.arange(len(labels))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) + 2), 3.6), dpi=110)
    for i, (name, vals) in enumerate(series.items()):
        ax.bar(x + (i - (n - 1) / 2) * width, list(vals), width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([_wrap(str(lab)) for lab in labels], fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.set_title("\n".join(textwrap.wrap(title, 70)[:2]), fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(p)
    plt.close(fig)
    return p


def heatmap(
    path: str | Path,
    matrix: Sequence[Sequence[float | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    *,
    cmap: str = "viridis_r",
    vmin: float = 0.0,
    vmax: float = 1.0,
    annotate: bool = True,
) -> Path:
    """A labelled heatmap (missing cells blank) with a colour bar; values printed when the grid is small."""
    p = Path(path)
    arr = np.array([[np.nan if v is None else float(v) for v in row] for row in matrix], dtype=float)
    rows, cols = arr.shape if arr.size else (0, 0)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * cols + 2.5), max(3.0, 0.28 * rows + 1.5)), dpi=110)
    im = ax.imshow(np.ma.masked_invalid(arr), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_xticks(range(cols))
    ax.set_xticklabels([str(c) for c in col_labels], rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([str(r) for r in row_labels], fontsize=7)
    if annotate and rows * cols <= 400:
        for i in range(rows):
            for j in range(cols):
                if not np.isnan(arr[i, j]):
                    if vmin < 0 < vmax:  # a diverging map is dark at both ends
                        dark = abs(arr[i, j]) / (max(-vmin, vmax) or 1.0) > 0.6
                    else:
                        dark = ((arr[i, j] - vmin) / ((vmax - vmin) or 1.0) > 0.5) == cmap.endswith("_r")
                    colour = "white" if dark else "black"
                    ax.text(j, i, f"{arr[i, j]:.2f}", ha="center", va="center", fontsize=6, color=colour)
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    fig.savefig(p)
    plt.close(fig)
    return p


def img_tag(path: str | Path, alt: str) -> str:
    """An ``<img>`` with the PNG embedded as base64 (the page needs no other file)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def html_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain HTML table; every cell escaped; floats shown with 4 decimals."""

    def cell(v: object) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:.4f}"
        return esc(v)

    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#f2f2f2}img{max-width:100%;margin:.5em 0}pre{background:#f7f7f7;padding:.6em;white-space:pre-wrap}
.note{color:#555;font-size:13px}
.v-yes{background:#d6f0d6;font-weight:600}.v-no{background:#f6d3d3;font-weight:600}.v-ns{background:#f1f1f1}
td.own{outline:2px solid #333}
"""


def html_page(title: str, body_html: str) -> str:
    """A complete, self-contained HTML page (inline CSS, no scripts). ``body_html`` must be escaped already."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{esc(title)}</h1>{body_html}</body></html>\n"
    )
