"""The analyst's morning report of a reconciliation: xlsx (native charts, a worklist sorted by urgency
with conditional formatting, a sheet per finding) or a self-contained HTML page (inline SVG)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from fhs_bulk.errors import UsageError
from fhs_bulk.sheets.write import atomic_path, set_text
from fhs_bulk.tracker.reconcile import FINDINGS, ReconcileResult

ID_COLUMNS = frozenset({1, 2, 5})  # fk_order_id, SRM ID, SPD: never wrapped in the HTML report
WORKLIST_COLUMNS = ["row", "fk_order_id", "SRM ID", "Status", "Sub-status", "SPD", "Days late", "Findings",
                    "Next action", "Action", "Command", "CRM tag", "Note"]


def write_report(result: ReconcileResult, path: str | Path) -> Path:
    p = Path(path)
    ext = p.suffix.lower()
    if ext == ".xlsx":
        with atomic_path(p) as tmp:
            _xlsx(result, tmp)
    elif ext in (".html", ".htm"):
        with atomic_path(p) as tmp:
            tmp.write_text(_html(result), encoding="utf-8")
    else:
        raise UsageError(f"{path}: a report is .xlsx or .html.", code="usage")
    return p


def _worklist(result: ReconcileResult) -> list[Any]:
    return sorted((r for r in result.rows if r.needs_attention), key=lambda r: r.urgency)


def _line(r: Any) -> list[Any]:
    return [r.row, r.fk_order_id, r.srm_id or "", r.status or "", r.sub_status or "", r.spd or "", r.days_late,
            ", ".join(r.findings), r.next_action, r.action, r.command or "", r.crm_tag or "", r.note]


def _xlsx(result: ReconcileResult, path: Path) -> None:
    from openpyxl import Workbook
    from openpyxl.chart import BarChart, Reference
    from openpyxl.formatting.rule import CellIsRule, ColorScaleRule
    from openpyxl.styles import Font, PatternFill

    summary = result.summary()
    wb: Any = Workbook()
    ws = wb.active
    ws.title = "Summary"
    bold = Font(bold=True)
    ws["A1"] = f"Tracker reconciliation as of {result.as_of.isoformat()}"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"{summary['rows']} rows, {summary['needing_attention']} need attention"
    row = 4
    charts = []
    for title, data, y in (("Tickets by status", summary["by_status"], "tickets"),
                           ("SPD-breached tickets by days late", summary["breached_by_days_late"], "tickets"),
                           ("Open tickets by age", summary["open_by_age"], "tickets")):
        ws.cell(row=row, column=1, value=title).font = bold
        ws.cell(row=row + 1, column=1, value="").font = bold
        ws.cell(row=row + 1, column=2, value=y).font = bold
        start = row + 2
        for i, (label, n) in enumerate(data.items()):
            set_text(ws.cell(row=start + i, column=1), label)
            ws.cell(row=start + i, column=2, value=n)
        end = start + max(len(data), 1) - 1
        chart = BarChart()
        chart.type = "col"
        chart.title = title
        chart.legend = None
        chart.y_axis.title = y
        chart.add_data(Reference(ws, min_col=2, min_row=row + 1, max_row=end), titles_from_data=True)
        chart.set_categories(Reference(ws, min_col=1, min_row=start, max_row=end))
        chart.height, chart.width = 7, 14
        charts.append(chart)
        row = end + 3
    ws.cell(row=row, column=1, value="Findings").font = bold
    for i, (code, n) in enumerate(summary["by_finding"].items(), 1):
        set_text(ws.cell(row=row + i, column=1), code)
        ws.cell(row=row + i, column=2, value=n)
        set_text(ws.cell(row=row + i, column=3), FINDINGS[code])
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["C"].width = 70  # the findings' meaning, clear of the charts
    for i, chart in enumerate(charts):
        ws.add_chart(chart, f"E{4 + i * 15}")
    ws.page_setup.orientation = "landscape"
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0

    wl = wb.create_sheet("Worklist")
    _table(wl, _worklist(result))
    n = wl.max_row
    red = PatternFill("solid", fgColor="F8CBAD")
    wl.conditional_formatting.add(f"G2:G{max(n, 2)}", ColorScaleRule(start_type="num", start_value=0,
                                                                     start_color="FFFFFF", end_type="max",
                                                                     end_color="F4B084"))
    wl.conditional_formatting.add(f"D2:D{max(n, 2)}", CellIsRule(operator="equal", formula=['""'], fill=red))
    for code in FINDINGS:
        rows = [r for r in result.rows if code in r.findings]
        if rows:
            _table(wb.create_sheet(code[:31]), sorted(rows, key=lambda r: r.urgency))
    wb.save(path)


def _table(ws: Any, rows: list[Any]) -> None:
    from openpyxl.styles import Font

    ws.append(WORKLIST_COLUMNS)
    for cell in ws[1]:
        cell.font = Font(bold=True)
    for r in rows:
        ws.append([None] * len(WORKLIST_COLUMNS))
        for c, value in enumerate(_line(r), 1):
            set_text(ws.cell(row=ws.max_row, column=c), value)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = f"A1:M{max(ws.max_row, 1)}"
    # Printed: landscape, one page wide, the header row on every page.
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.print_title_rows = "1:1"
    for letter, width in zip("ABCDEFGHIJKLM", (6, 24, 16, 16, 26, 12, 9, 30, 44, 12, 44, 60, 36), strict=True):
        ws.column_dimensions[letter].width = width


def _svg_bars(title: str, data: dict[str, int], colour: str) -> str:
    width, bar_h, gap, label_w = 560, 22, 8, 190
    peak = max(data.values(), default=0) or 1
    height = 30 + len(data) * (bar_h + gap)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}"><text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for i, (label, n) in enumerate(data.items()):
        y = 28 + i * (bar_h + gap)
        w = int((width - label_w - 60) * n / peak)
        parts.append(f'<text x="0" y="{y + 16}">{html.escape(label)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{max(w, 1)}" height="{bar_h}" fill="{colour}"/>'
                     f'<text x="{label_w + w + 6}" y="{y + 16}">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _td(column: int, value: Any) -> str:
    cls = ' class="id"' if column in ID_COLUMNS else ""
    return f"<td{cls}>{html.escape(str(value))}</td>"


def _html(result: ReconcileResult) -> str:
    s = result.summary()
    e = html.escape
    rows = "".join(
        "<tr>" + "".join(_td(i, v) for i, v in enumerate(_line(r))) + "</tr>" for r in _worklist(result))
    findings = "".join(f"<tr><td>{e(c)}</td><td>{n}</td><td>{e(FINDINGS[c])}</td></tr>"
                       for c, n in s["by_finding"].items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tracker reconciliation {result.as_of.isoformat()}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
th {{ background: #ddebf7; text-align: left; }} .charts {{ display: flex; flex-wrap: wrap; gap: 24px; }}
td.id {{ white-space: nowrap; }} .scroll {{ overflow-x: auto; max-width: 100%; }}
svg {{ max-width: 100%; height: auto; }}
@media (max-width: 600px) {{ body {{ margin: 8px; }} table {{ font-size: 12px; }} }}
svg text {{ font-size: 12px; font-family: system-ui, sans-serif; }}
</style></head><body>
<h1>Tracker reconciliation as of {result.as_of.isoformat()}</h1>
<p>{s['rows']} rows; <strong>{s['needing_attention']}</strong> need attention.</p>
<div class="charts">
{_svg_bars("Tickets by status", s["by_status"], "#5b9bd5")}
{_svg_bars("SPD-breached tickets by days late", s["breached_by_days_late"], "#ed7d31")}
{_svg_bars("Open tickets by age", s["open_by_age"], "#70ad47")}
</div>
<h2>Findings</h2>
<div class="scroll"><table><tr><th>finding</th><th>rows</th><th>meaning</th></tr>{findings}</table></div>
<h2>Worklist (most urgent first)</h2>
<div class="scroll"><table><tr>{"".join(f"<th>{e(c)}</th>" for c in WORKLIST_COLUMNS)}</tr>{rows}</table></div>
</body></html>
"""

