"""Sheet contracts as pydantic models: the one source for templates, JSON Schemas and docs.

``fhs-bulk sheets templates`` writes ``sheets/`` from these models; a test fails when the files
there drift from them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fhs_bulk import domain

EligibleService = Literal[domain.BULK_ELIGIBLE_SERVICES]  # type: ignore[valid-type]

OrderId = Annotated[str, Field(pattern=domain.ORDER_ID_PATTERN, min_length=20, max_length=20,
                               description="Flipkart order ID: OD followed by 18 digits",
                               examples=["OD118034507542581000"])]


class OrderSheetRow(BaseModel):
    """One row of the FK_ODS_ORDER_CREATE sheet. Only fk_order_id is required; other columns are kept."""

    model_config = ConfigDict(extra="allow", title=domain.ORDER_SHEET_NAME,
                              json_schema_extra={"x-sheet-name": domain.ORDER_SHEET_NAME})

    fk_order_id: OrderId
    fsn: Annotated[str | None, Field(pattern=r"^ODS[0-9A-Z]{13}$",
                                     description="Flipkart product ID; must start with ODS")] = None
    service: Annotated[EligibleService | None, Field(
        description="one of the bulk-eligible services (compared case- and space-insensitively)")] = None


def _col(header: str, description: str, *, owned: bool = True) -> Any:
    return Field(default=None, alias=header, description=description,
                 json_schema_extra={"x-owner": "fhs-bulk" if owned else "person"})


class TrackerRow(BaseModel):
    """One row of the 'Tracker for installation (ODS)' sheet.

    Columns marked ``x-owner: fhs-bulk`` are written by the tool; ``person`` columns (and any extra
    column a person adds) are never touched.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, title=domain.TRACKER_SHEET_NAME,
                              json_schema_extra={"x-sheet-name": domain.TRACKER_SHEET_NAME})

    fk_order_id: OrderId = Field(alias="fk_order_id", json_schema_extra={"x-owner": "person"})
    srm_id: str | None = _col("SRM ID", "SRMS Service Ticket ID")
    reference_id: str | None = _col("Reference ID", "bulk registration reference (BK-...)")
    service: str | None = _col("Service", "service booked")
    customer_name: str | None = _col("Customer name", "customer's name")
    phone: str | None = _col("Phone", "customer's mobile number, stored as text")
    pincode: str | None = _col("Pincode", "6-digit PIN code")
    preferred_date: str | None = _col("Preferred date", "ISO date the customer asked for")
    status: str | None = _col("Status", "SRMS ticket status")
    sub_status: str | None = _col("Sub-status", "SRMS ticket sub-status")
    spd: str | None = _col("SPD", "service promised date (ISO)")
    spd_breached: str | None = _col("SPD breached", "'yes (N days)' or 'no'")
    next_action: str | None = _col("Next action", "what L1 support does next")
    crm_tag: str | None = _col("CRM tag", "Kapture tagging for that action")
    last_checked: str | None = _col("Last checked", "when the row was last reconciled")
    earlier_srm_ids: str | None = _col("Earlier SRM IDs", "SRM IDs this order had before a reopen, oldest first")
    remarks: str | None = _col("Remarks", "free text for people", owned=False)


def tracker_headers() -> list[str]:
    return template_headers(TrackerRow)


def tracker_owned_headers() -> list[str]:
    return list(_owned_headers())


@lru_cache(maxsize=1)
def _owned_headers() -> tuple[str, ...]:
    out = []
    for name, f in TrackerRow.model_fields.items():
        extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
        if extra.get("x-owner") == "fhs-bulk":
            out.append(f.alias or name)
    return tuple(out)


def is_tracker_owned(header: str) -> bool:
    """Whether the tool owns (and may write) a tracker column: asked once per cell written."""
    return header in _owned_headers()


# The columns a template shows, in order, and whether the column is formatted as Text.
TEXT_FORMAT = "@"


def schema_of(model: type[BaseModel]) -> dict:
    return model.model_json_schema()


def write_templates(out_dir: str | Path) -> list[Path]:
    """Write every sheet template and JSON Schema into ``out_dir``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in contract_models().items():
        schema_path = out / f"{name}.schema.json"
        schema_path.write_text(json.dumps(schema_of(model), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        xlsx_path = out / f"{name}.xlsx"
        _write_template_xlsx(xlsx_path, name, template_headers(model))
        written += [schema_path, xlsx_path]
    return written


def template_headers(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def contract_models() -> dict[str, type[BaseModel]]:
    return {domain.ORDER_SHEET_NAME: OrderSheetRow, domain.TRACKER_SHEET_NAME: TrackerRow}


TEMPLATE_ROWS = 2000  # rows pre-formatted as Text below the header


def _write_template_xlsx(path: Path, title: str, headers: list[str]) -> None:
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb: Any = Workbook()
    ws = wb.active
    ws.title = title[:31]
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDEBF7")
    for c, header in enumerate(headers, 1):
        cell = ws.cell(row=1, column=c, value=header)
        cell.font = bold
        cell.fill = fill
        cell.number_format = TEXT_FORMAT
        letter = get_column_letter(c)
        ws.column_dimensions[letter].width = max(14, len(header) + 4)
        ws.column_dimensions[letter].number_format = TEXT_FORMAT
        for r in range(2, TEMPLATE_ROWS + 2):
            ws.cell(row=r, column=c).number_format = TEXT_FORMAT
    ws.freeze_panes = "A2"
    wb.properties.creator = "fhs-bulk"
    wb.save(path)
