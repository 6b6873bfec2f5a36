"""Spreadsheet column names ('A', 'AA') and numbers, the one place for them.

Kept here rather than taken from openpyxl.utils because the read path must not import openpyxl
(about 0.1 s) just to name a column.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)  # a sheet has few columns and asks for them once per cell
def column_number(letters: str | bytes) -> int:
    """'A' -> 1, 'AA' -> 27."""
    n = 0
    for ch in letters.encode() if isinstance(letters, str) else letters:
        n = n * 26 + ch - 64
    return n


@lru_cache(maxsize=1024)
def column_letter(index: int) -> str:
    """1 -> 'A', 27 -> 'AA'."""
    letters = ""
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
