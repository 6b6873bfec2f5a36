"""Make samples/FK_ODS_ORDER_CREATE.xlsx and its .csv twin from the bundled catalogue.

A realistic night's sheet: mostly good orders, a few that SRMS rejects (non-ODS FSN, a service that
is not bulk-eligible, an order it does not know) and a handful of the mistakes people make when
typing or pasting IDs. Run: python samples/make_samples.py
"""

from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook

from fhs_bulk import domain
from fhs_bulk.srms.mock import catalogue

HERE = Path(__file__).parent


def rows() -> list[tuple[object, str]]:
    cat = catalogue.load(catalogue.bundled_path())
    good = [r for r in cat if r["fsn"].startswith("ODS") and domain.eligible_service(r["service"])]
    non_ods = [r for r in cat if not r["fsn"].startswith("ODS")]
    ineligible = [r for r in cat if r["fsn"].startswith("ODS") and not domain.eligible_service(r["service"])]
    out: list[tuple[object, str]] = [(r["fk_order_id"], f"{r['service']} - {r['city']}") for r in good[:30]]
    out.insert(5, (non_ods[0]["fk_order_id"], "product order, not a service"))
    out.insert(12, (ineligible[0]["fk_order_id"], ineligible[0]["service"]))
    out.insert(18, ("OD999999999999999901", "order typed from a phone call"))
    out.insert(8, (good[30]["fk_order_id"].lower(), "typed in lower case"))
    out.insert(14, (good[31]["fk_order_id"][:10] + "\u00a0" + good[31]["fk_order_id"][10:], "pasted from a web page"))
    out.insert(20, (float(good[32]["fk_order_id"][2:]), "Excel turned it into a number"))
    out.insert(24, (good[3]["fk_order_id"], "pasted twice"))
    out.insert(27, ("  " + good[33]["fk_order_id"] + " ", "extra spaces around the ID"))
    out.insert(30, (good[34]["fk_order_id"][:-1], "one digit short"))
    return out


def main() -> None:
    data = rows()
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append([domain.ORDER_ID_COLUMN, "remarks"])
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 40
    for oid, remark in data:
        ws.append([oid, remark])
        if isinstance(oid, str):
            ws.cell(row=ws.max_row, column=1).number_format = "@"
    wb.save(HERE / f"{domain.ORDER_SHEET_NAME}.xlsx")
    with open(HERE / f"{domain.ORDER_SHEET_NAME}.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([domain.ORDER_ID_COLUMN, "remarks"])
        for oid, remark in data:
            w.writerow([f"{oid:.14E}".replace("E+", "E+") if isinstance(oid, float) else oid, remark])


if __name__ == "__main__":
    main()
