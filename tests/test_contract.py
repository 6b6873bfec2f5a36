"""Templates in sheets/ are generated from the pydantic contracts and must not drift."""

from __future__ import annotations

import json
from pathlib import Path

from openpyxl import load_workbook

from fhs_bulk.sheets import contract
from tests.conftest import ROOT


def test_sheets_dir_matches_the_models(tmp_path: Path) -> None:
    fresh = contract.write_templates(tmp_path)
    for path in fresh:
        committed = ROOT / "sheets" / path.name
        assert committed.exists(), f"{committed} missing: run `fhs-bulk sheets templates`"
        if path.suffix == ".json":
            assert json.loads(committed.read_text()) == json.loads(path.read_text()), f"{committed} drifted"
        else:
            a, b = load_workbook(committed).active, load_workbook(path).active
            assert [c.value for c in a[1]] == [c.value for c in b[1]], f"{committed} headers drifted"
            assert [c.number_format for c in a[2]] == [c.number_format for c in b[2]]


def test_order_template_formats_the_id_column_as_text() -> None:
    ws = load_workbook(ROOT / "sheets" / "FK_ODS_ORDER_CREATE.xlsx").active
    assert ws["A1"].value == "fk_order_id"
    assert ws["A2"].number_format == "@" and ws["A2000"].number_format == "@"


def test_tracker_headers_are_the_contract() -> None:
    assert contract.tracker_headers() == [
        "fk_order_id", "SRM ID", "Reference ID", "Service", "Customer name", "Phone", "Pincode", "Preferred date",
        "Status", "Sub-status", "SPD", "SPD breached", "Next action", "CRM tag", "Last checked", "Earlier SRM IDs",
        "Remarks"]
    assert "Remarks" not in contract.tracker_owned_headers()
    assert "fk_order_id" not in contract.tracker_owned_headers()


def test_order_schema_matches_the_validator() -> None:
    schema = contract.OrderSheetRow.model_json_schema()
    assert schema["required"] == ["fk_order_id"]
    assert schema["properties"]["fk_order_id"]["pattern"] == "^OD[0-9]{18}$"
