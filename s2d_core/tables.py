"""Markdown tables from pandas, in the one style of the book and the benchmark records.

``| a | b |`` rows under a ``|---|---|`` rule, cells as they are: tabulate's own "pipe" and
"github" formats pad every column to its widest cell, which makes diffs of committed tables
noisy. Cells are formatted by the caller (the numbers' precision is the caller's choice).
"""

from __future__ import annotations

import pandas as pd
from tabulate import DataRow, TableFormat

__all__ = ["to_markdown"]

_ROW = DataRow("|", "|", "|")
_UNPADDED = TableFormat(lineabove=None, linebelowheader=lambda widths, aligns: "|" + "---|" * len(widths),
                        linebetweenrows=None, linebelow=None, headerrow=_ROW, datarow=_ROW, padding=1,
                        with_header_hide=None)


def to_markdown(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame``'s cells as text, its columns as the header, no index."""
    return frame.astype(str).to_markdown(index=False, tablefmt=_UNPADDED, stralign=None, numalign=None,
                                         disable_numparse=True)
