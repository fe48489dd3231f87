"""The catalog as one static HTML page: the lineage graph (inline SVG, a column per layer) and a table of every
dataset. No script and nothing fetched: it opens from a file, in any browser, without a server."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from barecount.consume.catalog import LAYERS, Dataset

NODE_WIDTH, NODE_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 240, 26, 60, 10, 20
LAYER_COLOURS = {
    "calendar": "#e8e8e8",
    "raw": "#fde2c4",
    "gdp": "#d4e8fb",
    "kpi": "#e3d7f7",
    "published": "#cdebd3",
}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1d1d1f; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pii { color: #a3361f; font-weight: 600; } .muted { color: #777; }
svg text { font-size: 12px; font-family: system-ui, sans-serif; }
"""


def _positions(datasets: Sequence[Dataset]) -> dict[str, tuple[int, int]]:
    """Each dataset's top-left corner: its layer's column, in the order the catalog lists them."""
    placed: dict[str, tuple[int, int]] = {}
    for column, layer in enumerate(LAYERS):
        members = [d for d in datasets if d.layer == layer]
        for row, dataset in enumerate(members):
            placed[dataset.ref] = (
                MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
                MARGIN + 24 + row * (NODE_HEIGHT + ROW_GAP),
            )
    return placed


def lineage_svg(datasets: Sequence[Dataset]) -> str:
    placed = _positions(datasets)
    width = MARGIN * 2 + len(LAYERS) * NODE_WIDTH + (len(LAYERS) - 1) * COLUMN_GAP
    height = max(y for _, y in placed.values()) + NODE_HEIGHT + MARGIN if placed else 100
    parts = [
        f'<svg id="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="Lineage of every dataset">'
    ]
    for column, layer in enumerate(LAYERS):
        x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP)
        parts.append(f'<text x="{x}" y="{MARGIN + 10}" font-weight="600">{escape(layer)}</text>')
    for dataset in datasets:
        for parent in dataset.upstream:
            if parent not in placed:
                continue
            (x1, y1), (x2, y2) = placed[parent], placed[dataset.ref]
            start, end = (x1 + NODE_WIDTH, y1 + NODE_HEIGHT // 2), (x2, y2 + NODE_HEIGHT // 2)
            bend = (end[0] - start[0]) // 2 if end[0] > start[0] else 40
            parts.append(
                f'<path class="edge" data-from="{escape(parent)}" data-to="{escape(dataset.ref)}" fill="none" '
                f'stroke="#8a8a94" stroke-width="1" d="M{start[0]},{start[1]} C{start[0] + bend},{start[1]} '
                f'{end[0] - bend},{end[1]} {end[0]},{end[1]}"/>'
            )
    for dataset in datasets:
        x, y = placed[dataset.ref]
        colour = LAYER_COLOURS.get(dataset.layer, "#eee")
        parts.append(
            f'<g class="node" data-ref="{escape(dataset.ref)}"><title>{escape(dataset.description)}</title>'
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="5" fill="{colour}" '
            f'stroke="#555"/><text x="{x + 8}" y="{y + 18}">{escape(dataset.ref)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _columns_cell(dataset: Dataset) -> str:
    if not dataset.columns:
        return '<span class="muted">not built yet</span>'
    shown = []
    for column in dataset.columns:
        text = f"{escape(column.name)} <span class='muted'>{escape(column.type)}</span>"
        if column.pii:
            text += f" <span class='pii'>[{escape(column.pii)}]</span>"
        shown.append(text)
    tagged = sum(1 for c in dataset.columns if c.pii)
    summary = f"{len(dataset.columns)} columns" + (f", <span class='pii'>{tagged} personal</span>" if tagged else "")
    return f"<details><summary>{summary}</summary>{'<br>'.join(shown)}</details>"


def catalog_page(org: str, datasets: Sequence[Dataset], generated_at: str) -> str:
    rows = []
    for d in datasets:
        rows.append(
            "<tr>"
            f"<td id='{escape(d.ref)}'><b>{escape(d.ref)}</b><br>"
            f"<span class='muted'>{escape(d.description)}</span></td>"
            f"<td>{escape(d.layer)}</td><td>{escape(d.owner)}</td><td>{escape(d.version)}</td>"
            f"<td>{escape(d.last_period or ('snapshot' if d.built_at else '-'))}</td>"
            f"<td class='num'>{'-' if d.rows is None else f'{d.rows:,}'}</td>"
            f"<td>{escape(d.built_at or '-')}</td>"
            f"<td>{escape(', '.join(d.upstream) or '-')}</td><td>{escape(', '.join(d.downstream) or '-')}</td>"
            f"<td>{_columns_cell(d)}</td>"
            "</tr>"
        )
    header = "".join(
        f"<th>{h}</th>"
        for h in ("dataset", "layer", "owner", "version", "last period", "rows", "built at (UTC)", "upstream",
                  "downstream", "columns")
    )  # fmt: skip
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>BareCount catalog: {escape(org)}</title><style>{STYLE}</style></head><body>"
        f"<h1>Datasets of {escape(org)}</h1>"
        f"<p class='muted'>{len(datasets)} datasets, generated {escape(generated_at)} from the project files and "
        "the warehouse's evidence.</p>"
        f"<h2>Lineage</h2>{lineage_svg(datasets)}"
        f"<h2>Datasets</h2><table id='datasets'><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody>"
        "</table></body></html>\n"
    )
