"""Hostile and odd sheets: every one ends in exit 1 or 2 with one `error:` line naming the file and the
fix, never a crash, a hang or a traceback, in bounded time and memory (the night-shift issue's list)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from samples.hostile import (
    encrypted_ods,
    garbage_csv,
    inline,
    long_line_csv,
    lying_sizes,
    many_small_strings,
    write_xlsx,
)
from samples.hostile import one_gib_string as build_one_gib_string
from tests.conftest import GOOD, cli_env, run_cli


def run_bounded(*args: str, env: dict[str, str], timeout: float = 30) -> tuple[subprocess.CompletedProcess, float,
                                                                                 float]:
    """(result, seconds, peak RSS in MiB) of one CLI process (VmHWM: ru_maxrss would carry the forking
    test process's own peak over the exec)."""
    code = ("import resource, runpy, sys; sys.argv = ['fhs-bulk', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('fhs_bulk', run_name='__main__')\n"
            "finally:\n    hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]\n"
            "    print(f'RSS={hwm[0]}', file=sys.stderr)\n")
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - t0
    rss = [int(line[4:]) for line in res.stderr.splitlines() if line.startswith("RSS=")]
    return res, took, (rss[-1] / 1024 if rss else 0.0)


def assert_refused(res: subprocess.CompletedProcess, code: str, path: Path, took: float, rss: float) -> None:
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.returncode == 2, res.stderr
    assert len(errors) == 1 and errors[0].endswith(f"[{code}]") and str(path) in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert took < 30 and rss < 1024, (took, rss)


def test_sparse_cell_at_the_last_cell_is_refused_fast(tmp_path: Path) -> None:
    p = write_xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx",
                   [(1, [b'<c r="A1" t="s"><v>0</v></c>']), (2, [inline("A2", GOOD[0])]),
                    (1048576, [inline("XFD1048576", "x")])])
    assert p.stat().st_size < 2000
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", p, took, rss)
    assert "XFD1048576" in res.stderr


def test_one_stray_cell_far_out_is_refused_not_read(tmp_path: Path) -> None:
    p = write_xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx",
                   [(1, [b'<c r="A1" t="s"><v>0</v></c>']), (2, [inline("A2", GOOD[0])]),
                    (200000, [inline("ZZ200000", "stray")])])
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", p, took, rss)
    assert "ZZ200000" in res.stderr and "delete the stray cells" in res.stderr


def test_a_sheet_with_wide_but_sane_columns_still_reads(tmp_path: Path) -> None:
    cells = [b'<c r="A1" t="s"><v>0</v></c>', inline("AB1", "note")]
    p = write_xlsx(tmp_path / "FK_ODS_ORDER_CREATE.xlsx", [(1, cells), (2, [inline("A2", GOOD[0])])])
    res = run_cli("validate", str(p), "--json", env=cli_env(tmp_path))
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def one_gib_string(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An xlsx of about 1 MB whose shared strings part holds one 1 GiB string."""
    return build_one_gib_string(tmp_path_factory.mktemp("bomb") / "FK_ODS_ORDER_CREATE.xlsx")


@pytest.mark.slow
def test_zip_bomb_by_declared_size(one_gib_string: Path, tmp_path: Path) -> None:
    assert one_gib_string.stat().st_size < 2 << 20
    res, took, rss = run_bounded("validate", str(one_gib_string), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", one_gib_string, took, rss)
    assert "MiB" in res.stderr and "limit" in res.stderr


@pytest.mark.slow
def test_zip_bomb_that_lies_about_its_size(one_gib_string: Path, tmp_path: Path) -> None:
    """The same bomb with its declared sizes rewritten to 1 KiB: the real inflated size is what counts."""
    p = lying_sizes(one_gib_string, tmp_path / "FK_ODS_ORDER_CREATE.xlsx")
    with zipfile.ZipFile(p) as zf:
        assert zf.getinfo("xl/sharedStrings.xml").file_size == 1024
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", p, took, rss)


@pytest.mark.slow
def test_many_small_strings_bomb(tmp_path: Path) -> None:
    p = many_small_strings(tmp_path / "FK_ODS_ORDER_CREATE.xlsx")
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", p, took, rss)


def test_csv_with_a_200_mb_line(tmp_path: Path) -> None:
    p = long_line_csv(tmp_path / "FK_ODS_ORDER_CREATE.csv", GOOD[0], GOOD[1])
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-too-large", p, took, rss)
    assert "line 3 holds a cell longer than 1 MiB" in res.stderr


@pytest.mark.slow
def test_csv_with_two_million_garbage_rows_stays_bounded(tmp_path: Path) -> None:
    p = garbage_csv(tmp_path / "FK_ODS_ORDER_CREATE.csv")
    res, took, rss = run_bounded("validate", str(p), "--json", env=cli_env(tmp_path), timeout=60)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert took < 30 and rss < 1024, (took, rss)
    import json

    doc = json.loads(res.stdout)
    assert doc["rows"] == doc["invalid"] == 2_000_000 and len(doc["errors"]) == 100_000
    truncated = [w for w in doc["warnings"] if w["code"] == "findings-truncated"]
    assert len(truncated) == 1 and "1,900,000 more" in truncated[0]["message"]


def test_csv_with_cr_only_line_endings(tmp_path: Path) -> None:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    p.write_bytes(("fk_order_id,remarks\r" + "\r".join(f"{g},night" for g in GOOD[:3]) + "\r").encode())
    res = run_cli("validate", str(p), "--json", env=cli_env(tmp_path))
    assert res.returncode == 0, res.stderr
    assert '"rows": 3' in res.stdout and '"valid": 3' in res.stdout


def test_password_protected_xlsx(tmp_path: Path) -> None:
    pytest.importorskip("msoffcrypto")
    from openpyxl import Workbook

    plain = tmp_path / "plain.xlsx"
    wb = Workbook()
    wb.active.append(["fk_order_id"])
    wb.active.append([GOOD[0]])
    wb.save(plain)
    p = tmp_path / "FK_ODS_ORDER_CREATE.xlsx"
    with open(plain, "rb") as src, open(p, "wb") as dst:
        from msoffcrypto.format.ooxml import OOXMLFile

        office = OOXMLFile(src)
        office.encrypt("secret", dst)
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-encrypted", p, took, rss)
    assert "password-protected: save a copy without a password" in res.stderr


def test_password_protected_ods(tmp_path: Path) -> None:
    p = encrypted_ods(tmp_path / "FK_ODS_ORDER_CREATE.ods")
    res, took, rss = run_bounded("validate", str(p), env=cli_env(tmp_path))
    assert_refused(res, "sheet-encrypted", p, took, rss)


@pytest.mark.parametrize("command", [["validate"], ["upload", "--dry-run"], ["tracker", "update", "--from-ledger"]])
def test_fifo_device_and_symlink_are_not_files(tmp_path: Path, command: list[str]) -> None:
    fifo = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    os.mkfifo(fifo)
    link = tmp_path / "link" / "FK_ODS_ORDER_CREATE.xlsx"
    link.parent.mkdir()
    link.symlink_to(fifo)
    env = cli_env(tmp_path)
    for target in (fifo, link, Path("/dev/zero")):
        args = [*command[:1], *(command[1:2] if command[0] != "tracker" else command[1:2]), str(target),
                *command[2 if command[0] == "tracker" else 1:]]
        res, took, _ = run_bounded(*args, env=env, timeout=20)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        assert res.returncode == 2 and len(errors) == 1 and errors[0].endswith("[sheet-not-a-file]"), res.stderr
        assert took < 10 and str(target) in errors[0]


def test_peak_rss_probe_works() -> None:
    """The bounded runner reports a plausible RSS for a tiny command (guards the other tests)."""
    res, _, rss = run_bounded("--version", env=dict(os.environ))
    assert res.returncode == 0 and 10 < rss < 300
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
