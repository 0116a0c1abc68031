"""Every table the plugin prints or writes (markdown or plain text), through one function."""

from __future__ import annotations

from typing import Sequence

from tabulate import tabulate


def render_table(headers: Sequence[str], rows: Sequence[Sequence], markdown: bool = True,
                 align: Sequence[str] | None = None) -> str:
    """``rows`` under ``headers``, as a GitHub markdown table (or aligned plain text).

    Cells are shown as given (numbers already formatted by the caller), so the table says
    exactly what the caller decided to show. ``align`` is one of left/right/center per column.
    """
    return tabulate([[("" if cell is None else str(cell)) for cell in row] for row in rows],
                    headers=list(headers), tablefmt="github" if markdown else "plain",
                    disable_numparse=True, colalign=align)
