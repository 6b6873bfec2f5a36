"""A CSV tracker is a person's file: every cell the tool does not own survives byte for byte (quoted
newlines, quotes, commas, cells under no header, blank lines), in the file's own delimiter, line
ending, BOM and encoding."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.conftest import GOOD, cli_env, run_cli

REMARK = 'call first\nthen ring "the" bell, twice'


def results_file(tmp_path: Path) -> Path:
    p = tmp_path / "results.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "fk_order_id", "status", "code", "reference_id", "ticket_id", "message"])
        w.writerow([2, GOOD[0], "registered", "", "BK-" + "a" * 36, "SRM-0000000001", ""])
        w.writerow([3, GOOD[1], "registered", "", "BK-" + "b" * 36, "SRM-0000000002", ""])
    return p


@pytest.mark.parametrize("delimiter, ending, bom", [(",", "\r\n", False), (";", "\n", True), ("\t", "\r\n", False),
                                                   (",", "\r", False)])
def test_csv_tracker_keeps_what_it_does_not_own(tmp_path: Path, delimiter: str, ending: str, bom: bool) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=ending)
    w.writerow(["Installs, November", "", "", ""])  # a title row above the table
    w.writerow(["fk_order_id", "SRM ID", "Remarks", ""])  # a column with no header
    w.writerow([GOOD[0], "", REMARK if ending != "\r" else "call first, then ring", "kept; as is"])
    w.writerow([])  # a blank line between rows
    w.writerow([GOOD[1], "", "Ünïcödé ✓ =not a formula", ""])
    text = buf.getvalue()
    tracker = tmp_path / "tracker.csv"
    tracker.write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    r = run_cli("tracker", "update", str(tracker), "--from", str(results_file(tmp_path)), "--json",
                env=cli_env(tmp_path))
    assert r.returncode == 0, r.stderr
    data = tracker.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf") == bom
    written = data.decode("utf-8-sig")
    if ending == "\r":
        assert "\n" not in written
    else:
        assert written.count(ending) >= 5 and (ending == "\r\n" or "\r" not in written.replace(REMARK, ""))
    rows = list(csv.reader(io.StringIO(written.replace("\r", "\n") if ending == "\r" else written, newline=""),
                           delimiter=delimiter))
    assert rows[0][0] == "Installs, November"
    header = rows[1]
    assert header[:4] == ["fk_order_id", "SRM ID", "Remarks", ""]
    assert rows[2][:4] == [GOOD[0], "SRM-0000000001", REMARK if ending != "\r" else "call first, then ring",
                           "kept; as is"]
    assert rows[3] == []
    assert rows[4][:3] == [GOOD[1], "SRM-0000000002", "Ünïcödé ✓ =not a formula"]
    ref = header.index("Reference ID")
    assert rows[2][ref] == "BK-" + "a" * 36
    # Once more: nothing changes, byte for byte.
    again = run_cli("tracker", "update", str(tracker), "--from", str(results_file(tmp_path)), "--json",
                    env=cli_env(tmp_path))
    assert again.returncode == 0 and tracker.read_bytes() == data
