"""Plain-text tables for terminal output (no dependency; aligned columns, optional colour-free marks)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence


def render(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, max_width: int = 72, wrap: bool = False
) -> str:
    """Aligned columns. Cells longer than `max_width` are clipped with "…", or with `wrap=True` continued
    on the next lines of the same column (for reasons that must be read whole)."""
    head = [str(h) for h in headers]
    body = [
        [textwrap.wrap(str(c), max_width) or [""] if wrap else [_clip(str(c), max_width)] for c in row]
        for row in rows
    ]
    widths = [max([len(head[i])] + [len(line) for r in body for line in r[i]]) for i in range(len(head))]
    lines = [_line(head, widths), "  ".join("-" * w for w in widths)]
    for row in body:
        for k in range(max(len(cell) for cell in row)):
            lines.append(_line([cell[k] if k < len(cell) else "" for cell in row], widths))
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
