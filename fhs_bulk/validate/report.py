"""Writing a findings table to a file for the person fixing the sheet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fhs_bulk.sheets.write import write_table

FINDING_COLUMNS = ["row", "column", "severity", "code", "message", "value"]


def write_findings(report: Any, path: str | Path) -> Path:
    findings = ([report.sheet_error] if report.sheet_error else []) + report.errors + report.warnings
    rows = [[f.row, f.column, f.severity, f.code, f.message, f.value] for f in findings]
    return write_table(path, FINDING_COLUMNS, rows, sheet_title="findings")
