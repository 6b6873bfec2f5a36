"""Rehearsing a real night without writing Python: a catalogue of N known orders for a seed (what
`srms serve --orders N --seed S` loads) and a matching order sheet with a realistic share of the
mistakes the validator and SRMS catch (what `samples make` writes)."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

from fhs_bulk import domain
from fhs_bulk.srms.mock import catalogue

# Shares of a night's rows, from the sample sheets people really send.
MISTAKES: tuple[tuple[str, float], ...] = (
    ("lowercase", 0.004), ("no-break-space", 0.003), ("duplicate", 0.004), ("one-digit-short", 0.003),
    ("spaces-around", 0.004), ("unknown-order", 0.002),
)


def orders(n: int, seed: int = 7) -> list[dict[str, str]]:
    """N catalogue orders, the same for the same seed (1 in 40 non-ODS, 1 in 35 not bulk-eligible)."""
    return list(catalogue.generate(n, seed=seed))


def sheet_rows(n: int, seed: int = 7) -> list[tuple[str, str]]:
    """(fk_order_id cell, remarks) for every catalogue order, mistakes mixed in at MISTAKES' shares."""
    rng = random.Random(f"sheet:{seed}")
    cat = orders(n, seed)
    out: list[tuple[str, str]] = []
    for r in cat:
        oid = r["fk_order_id"]
        roll = rng.random()
        edge = 0.0
        kind = ""
        for name, share in MISTAKES:
            edge += share
            if roll < edge:
                kind = name
                break
        if kind == "lowercase":
            out.append((oid.lower(), "typed in lower case"))
        elif kind == "no-break-space":
            out.append((oid[:10] + "\u00a0" + oid[10:], "pasted from a web page"))
        elif kind == "one-digit-short":
            out.append((oid[:-1], "one digit short"))
        elif kind == "spaces-around":
            out.append((f"  {oid} ", "extra spaces around the ID"))
        elif kind == "unknown-order":
            out.append((f"OD9{rng.randrange(10**16, 10**17):017d}", "order typed from a phone call"))
        else:
            out.append((oid, f"{r['service']} - {r['city']}"))
        if kind == "duplicate":
            out.append((oid, "pasted twice"))
    return out


def write_sheet(out_dir: str | Path, n: int, seed: int = 7, *, fmt: str = "csv") -> Path:
    """Write FK_ODS_ORDER_CREATE.csv (or .xlsx) for the catalogue of ``n`` orders and ``seed``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{domain.ORDER_SHEET_NAME}.{fmt}"
    rows = sheet_rows(n, seed)
    if fmt == "csv":
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow([domain.ORDER_ID_COLUMN, "remarks"])
            w.writerows(rows)
        return path
    from openpyxl import Workbook

    wb: Any = Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    ws.append([domain.ORDER_ID_COLUMN, "remarks"])
    for row in rows:
        ws.append(list(row))
    wb.save(path)
    return path
