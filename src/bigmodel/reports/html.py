"""Self-contained HTML pages (inline CSS, images as base64 ``data:`` URIs): one file to open or mail."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td.s { text-align: left; }
tr.incomplete td { color: #999; }
img { max-width: 100%; border: 1px solid #eee; margin: 6px 0; }
.note { color: #666; font-size: 13px; }
"""


def img_tag(png: bytes, alt: str, id_: str = "") -> str:
    """An ``<img>`` holding ``png`` inline."""
    data = base64.b64encode(png).decode("ascii")
    id_attr = f' id="{html.escape(id_)}"' if id_ else ""
    return f'<img{id_attr} alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def table(
    columns: Sequence[tuple[str, str, str]],
    rows: Sequence[dict[str, Any]],
    fmt: Any,
    id_: str,
    row_class: Any = None,
) -> str:
    """An HTML table; each cell shows ``fmt(value, kind)`` and keeps the raw value in ``data-value`` (JSON
    numbers as ``repr``), so a test or script can read the exact numbers back."""
    head = "".join(f'<th data-key="{html.escape(k)}">{html.escape(h)}</th>' for k, h, _ in columns)
    body = []
    for row in rows:
        cells = []
        for key, _, kind in columns:
            v = row.get(key)
            raw = "" if v is None else repr(v) if isinstance(v, float) else str(v)
            cls = ' class="s"' if kind == "s" else ""
            cells.append(
                f'<td{cls} data-key="{key}" data-value="{html.escape(raw)}">{html.escape(fmt(v, kind))}</td>'
            )
        klass = f' class="{row_class(row)}"' if row_class else ""
        body.append(f"<tr{klass}>{''.join(cells)}</tr>")
    return f'<table id="{id_}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def page(title: str, sections: Sequence[str]) -> str:
    """A whole HTML document."""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
