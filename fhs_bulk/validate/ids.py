"""A validated sheet's order IDs, kept small for the upload that walks them twice.

A valid order ID is "OD" and 18 digits, which validation has already read as one int64: kept as
that, a row costs 8 bytes instead of the ~24 its text takes in the sheet's column (a million-row
sheet: 8 MB, not 24 MB and the reader's buffers around them). The text is made again a chunk at a
time when the upload asks for it; the rows that are not valid IDs keep their own text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ODD_SHARE = 16  # kept as digits only when at most one data row in this many is not a valid ID
TEXTS_AT_ONCE = 65_536  # IDs made at once (a 1.3 MB temporary)
# "00" to "99" as the two bytes of one little-endian uint16 each, and "OD" likewise.
_PAIRS = np.frombuffer("".join(f"{i:02d}" for i in range(100)).encode(), dtype=np.uint16)
_OD = int(np.frombuffer(b"OD", dtype=np.uint16)[0])


def id_texts(digits: np.ndarray) -> list[str]:
    """'OD' + the 18 digits (zero-padded) of each value: three six-digit parts, each written as three
    pairs of characters from a table, then one arrow string array turned into Python strings."""
    import pyarrow as pa

    m = len(digits)
    if m == 0:
        return []
    out = np.empty((m, 10), dtype=np.uint16)
    out[:, 0] = _OD
    rest = digits % np.int64(10**12)
    parts = (digits // np.int64(10**12), rest // np.int64(10**6), rest % np.int64(10**6))
    for p, part in enumerate(parts):
        high, low = np.divmod(part.astype(np.uint32), np.uint32(100))
        first, second = np.divmod(high, np.uint32(100))
        out[:, 3 * p + 1] = _PAIRS[first]
        out[:, 3 * p + 2] = _PAIRS[second]
        out[:, 3 * p + 3] = _PAIRS[low]
    offsets = np.arange(0, 20 * m + 1, 20, dtype=np.int32)
    array = pa.Array.from_buffers(pa.string(), m, [None, pa.py_buffer(offsets), pa.py_buffer(out)])
    return list(array.to_pylist())


class CompactIds:
    """The ID of every sheet row: valid rows as their digits, the others' text (shown as validation
    left it: trimmed where it was trimmed) in sheet order beside their row indices."""

    def __init__(self, digits: np.ndarray, odd_at: np.ndarray, odd: Any) -> None:
        """``odd``: the odd rows' text, a list or a pyarrow string array (as ``column_take`` reads)."""
        self.digits, self.odd_at, self.odd = digits, odd_at, odd

    @classmethod
    def of(cls, column: Any, digits: np.ndarray, ok: np.ndarray, nonblank: np.ndarray,
           overrides: dict[int, str]) -> CompactIds | None:
        """From validation's arrays (``digits`` is kept, not copied); None when the sheet's column is
        cheaper kept as it is: one read as Python strings (its rows are those strings), or one of mostly
        odd rows."""
        from fhs_bulk.sheets.read import column_take

        if isinstance(column, list):
            return None
        odd_at = np.nonzero(nonblank & ~ok)[0]
        if len(odd_at) * ODD_SHARE > int(np.count_nonzero(nonblank)):
            return None
        odd = column_take(column, odd_at)
        digits[odd_at] = 0  # whatever the scan left there, in range for id_texts (the text is the odd one)
        if overrides:
            odd = [overrides.get(i, text) for i, text in zip(odd_at.tolist(), odd, strict=True)]
        return cls(digits, odd_at, odd)

    def texts(self, idx: np.ndarray) -> list[str]:
        """The IDs of sheet rows ``idx`` (ascending)."""
        if len(idx) == 0:
            return []
        out: list[str] = []
        for start in range(0, len(idx), TEXTS_AT_ONCE):  # bounded temporaries, however many are asked
            out += id_texts(self.digits[idx[start:start + TEXTS_AT_ONCE]])
        lo, hi = np.searchsorted(self.odd_at, [idx[0], idx[-1] + 1])
        if hi > lo:
            from fhs_bulk.sheets.read import column_take

            at = self.odd_at[lo:hi]
            pos = np.minimum(np.searchsorted(idx, at), len(idx) - 1)
            hit = idx[pos] == at  # an odd row among these (every one is, unless a caller skips rows)
            texts = column_take(self.odd, np.nonzero(hit)[0] + lo)
            for p, text in zip(pos[hit].tolist(), texts, strict=True):
                out[p] = text
        return out
