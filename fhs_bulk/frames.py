"""DataFrames for notebooks: every result object's ``to_pandas()`` comes through here.

pandas is imported only when a frame is asked for, so the CLI (and ``--help``) never pays for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def frame(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Any:
    """A pandas DataFrame with these columns; ID-like columns stay text (dtype ``string``)."""
    try:
        import pandas as pd
    except ImportError as exc:  # pandas is a dependency; a broken install should say what to do
        from fhs_bulk.errors import UsageError

        raise UsageError("to_pandas() needs pandas: pip install pandas", code="usage") from exc
    df = pd.DataFrame([list(r) for r in rows], columns=list(columns))
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].astype("string")
    return df
