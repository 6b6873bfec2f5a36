"""What cron sees on a bad night: Ctrl-C and SIGTERM, a rate-limited SRMS, a full disk, a damaged
ledger, outputs that cannot be written, --debug, the log's last line, private state."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhs_bulk.srms.mock import catalogue
from tests.conftest import GOOD, cli_env, order_sheet, read_results, run_cli


def big_sheet(tmp_path: Path, n: int, seed: int = 41) -> tuple[Path, Path, list[str]]:
    cat = catalogue.write(tmp_path / "catalogue.csv",
                          catalogue.generate(n, seed=seed, non_ods_every=0, ineligible_every=0))
    ids = [r["fk_order_id"] for r in catalogue.load(cat)]
    sheet = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    return cat, sheet, ids


def registered_in_srms(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*), count(DISTINCT fk_order_id) FROM tickets").fetchone()


@pytest.mark.slow
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_sending_writes_results_and_rerun_finishes(srms_factory, tmp_path: Path, sig: int,
                                                                 code: int) -> None:  # type: ignore[no-untyped-def]
    cat, sheet, ids = big_sheet(tmp_path, 20_000)
    srv = srms_factory("--latency-ms", "40", catalogue=cat)
    env = cli_env(tmp_path, srv)
    out = tmp_path / "r.csv"
    log = tmp_path / "night.log"
    proc = subprocess.Popen([sys.executable, "-m", "fhs_bulk", "upload", str(sheet), "--out", str(out), "--batch-size",
                             "100", "--log-file", str(log)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and registered_in_srms(srv.db)[0] < 1000:
        time.sleep(0.05)
    proc.send_signal(sig)
    sent_at = time.monotonic()
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - sent_at
    assert proc.returncode == code, err
    assert took < 5, took
    assert "Traceback" not in err
    rows = read_results(out)
    assert len(rows) == len(ids)  # every row is in the results
    statuses = {r["status"] for r in rows}
    assert statuses == {"registered", "failed"}, statuses
    assert {r["code"] for r in rows if r["status"] == "failed"} == {"interrupted"}
    done_then = registered_in_srms(srv.db)[0]
    assert done_then < len(ids)  # it really stopped early
    time.sleep(1.0)
    assert registered_in_srms(srv.db)[0] <= done_then + 400  # no new batch after the grace period
    last = log.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert f"outcome: exit {code}" in last and str(out) in last
    again = run_cli("upload", str(sheet), "--out", str(out), "--batch-size", "100", env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    rows = read_results(out)
    assert {r["status"] for r in rows} <= {"registered", "already-registered"}
    assert registered_in_srms(srv.db) == (len(ids), len(ids))
    refs = [r["reference_id"] for r in rows]
    assert len(set(refs)) == len(ids)


@pytest.mark.slow
def test_rate_limited_srms_is_waited_out_until_the_deadline(srms_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cat, sheet, ids = big_sheet(tmp_path, 120, seed=43)
    srv = srms_factory("--rate-limit", "5", catalogue=cat)
    env = cli_env(tmp_path, srv)
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--batch-size", "5", "--json", env=env,
                timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert doc["counts"]["registered"] == 120 and doc["counts"]["failed"] == 0 and doc["retries"] > 0


def test_srms_down_gives_up_at_the_deadline_with_exit_3(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    srms.stop()
    t0 = time.monotonic()
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), "--deadline", "1", env=env)
    assert r.returncode == 3 and time.monotonic() - t0 < 20, r.stderr
    assert r.stderr.count("error:") == 0  # a run that went to the end: results written, exit 3 says re-run


@pytest.mark.parametrize("debug", [[], ["--debug"]])
def test_debug_changes_no_exit_code(srms, tmp_path: Path, debug: list[str]) -> None:  # type: ignore[no-untyped-def]
    sheet = order_sheet(tmp_path, GOOD[:2])
    wrong = cli_env(tmp_path, srms, FHS_SRMS_TOKEN="not-the-token")
    r = run_cli(*debug, "upload", str(sheet), env=wrong)
    assert r.returncode == 2 and "error:" in r.stderr and "not-the-token" not in r.stderr, r.stderr
    assert ("Traceback" in r.stderr) == bool(debug)
    env = cli_env(tmp_path, srms)
    srms.stop()
    r = run_cli(*debug, "upload", str(sheet), "--deadline", "1", env=env)
    assert r.returncode == 3, r.stderr
    r = run_cli(*debug, "ticket", "show", "SRM-0000000001", "--deadline", "1", env=env)
    assert r.returncode == 3 and "error:" in r.stderr


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a real full disk (needs root, as CI has)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path, leave: int = 0) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    if leave:
        with open(filler, "r+b") as fh:
            fh.truncate(max(0, filler.stat().st_size - leave))
    return filler


def test_full_disk_under_the_state_dir_before_the_upload(srms, tiny_disk: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    state = tiny_disk / "state"
    filler = fill(tiny_disk)
    env = cli_env(tmp_path, srms, FHS_STATE_DIR=str(state))
    sheet = order_sheet(tmp_path, GOOD[:5])
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), env=env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and len(errors) == 1 and errors[0].endswith("[disk-full]"), r.stderr
    assert str(tiny_disk) in errors[0] and "Exception ignored" not in r.stderr
    assert registered_in_srms(srms.db)[0] == 0
    filler.unlink()
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), env=env)
    assert r.returncode == 0 and {x["status"] for x in read_results(tmp_path / "r.csv")} == {"registered"}


@pytest.mark.slow
def test_full_disk_during_the_upload_stops_sending(srms_factory, tiny_disk: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cat, sheet, ids = big_sheet(tmp_path, 6000, seed=47)
    srv = srms_factory(catalogue=cat)
    state = tiny_disk / "state"
    env = cli_env(tmp_path, srv, FHS_STATE_DIR=str(state))
    # Leave room for the ledger to open and plan, not for every answer.
    fill(tiny_disk, leave=600_000)
    out = tmp_path / "r.csv"
    r = run_cli("upload", str(sheet), "--out", str(out), "--batch-size", "50", env=env, timeout=300)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and errors and errors[-1].endswith("[disk-full]"), r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr
    partial = registered_in_srms(srv.db)[0]
    assert 0 < partial < len(ids), partial  # sending stopped early
    (tiny_disk / "filler").unlink()
    r = run_cli("upload", str(sheet), "--out", str(out), "--batch-size", "50", env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    rows = read_results(out)
    assert len(rows) == len(ids) and {x["status"] for x in rows} <= {"registered", "already-registered"}
    assert registered_in_srms(srv.db) == (len(ids), len(ids))


@pytest.mark.parametrize("name", ["r.csv", "r.xlsx"])
def test_full_disk_under_the_output(srms, tiny_disk: Path, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    fill(tiny_disk)
    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:30])
    r = run_cli("upload", str(sheet), "--out", str(tiny_disk / name), env=env)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and errors[-1].endswith("[disk-full]") and str(tiny_disk) in errors[-1], r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
    (tiny_disk / "filler").unlink()
    r = run_cli("upload", str(sheet), "--out", str(tiny_disk / name), env=env)
    assert r.returncode == 0, r.stderr


def test_full_disk_under_the_temporary_results(tiny_disk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long sheet's results past the first rows go to a temporary file: a full disk there is
    disk-full naming the directory, not an internal error."""
    import tempfile

    from fhs_bulk.errors import DiskFull
    from fhs_bulk.upload import run

    fill(tiny_disk)
    monkeypatch.setattr(tempfile, "tempdir", str(tiny_disk))
    monkeypatch.setattr(run, "COMPRESS_AFTER", 2)
    rows = run.ResultRows()
    with pytest.raises(DiskFull) as err:
        for i in range(0, 400, 2):
            rows.add([[i + 2, f"OD{i:018d}", "registered", None, "BK-" + "x" * 36 * 50, None, ""],
                      [i + 3, f"OD{i + 1:018d}", "registered", None, "BK-" + os.urandom(900).hex(), None, ""]])
    assert err.value.code == "disk-full" and str(tiny_disk) in err.value.message


@pytest.mark.parametrize("damage", ["garbage", "truncated", "page"])
def test_damaged_ledger_is_moved_aside_and_nothing_registers_twice(srms, tmp_path: Path, damage: str) -> None:  # type: ignore[no-untyped-def]
    import sqlite3

    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:20])
    first = run_cli("upload", str(sheet), "--out", str(tmp_path / "r1.csv"), env=env)
    assert first.returncode == 0, first.stderr
    ledger = tmp_path / "state" / "ledger.sqlite"
    db = sqlite3.connect(ledger)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'orders'").fetchone()
    db.close()
    data = ledger.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    if damage == "page":  # a page of the per-order table, in a ledger checked page by page an hour ago
        ledger.write_bytes(data[:(root - 1) * 4096] + b"\xde\xad" * 2048 + data[root * 4096:])
        r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r2.csv"), env=env)
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert r.returncode == 2 and errors[-1].endswith("[ledger-damaged]") and str(ledger) in errors[-1], r.stderr
        assert "Traceback" not in r.stderr and registered_in_srms(srms.db) == (20, 20)
    else:
        ledger.write_bytes(os.urandom(len(data)) if damage == "garbage" else data[: len(data) // 3])
    r = run_cli("upload", str(sheet), "--out", str(tmp_path / "r2.csv"), env=env)
    assert r.returncode == 0, r.stderr
    moved = [p for p in (tmp_path / "state").glob("ledger.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and str(moved[0]) in r.stderr and "warning" in r.stderr.lower()
    rows = read_results(tmp_path / "r2.csv")
    assert {x["status"] for x in rows} == {"already-registered"}
    assert [x["reference_id"] for x in rows] == [x["reference_id"] for x in read_results(tmp_path / "r1.csv")]
    assert registered_in_srms(srms.db) == (20, 20)


@pytest.mark.parametrize("option", ["--out", "--log-file"])
def test_outputs_are_checked_before_anything_is_sent(srms, tmp_path: Path, option: str) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    target = tmp_path / "no-such-dir" / ("r.csv" if option == "--out" else "night.log")
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3])), option, str(target), env=env)
    assert r.returncode == 2 and str(target.parent) in r.stderr, r.stderr
    assert registered_in_srms(srms.db)[0] == 0


def test_tracker_and_reports_checked_before_sending(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    tracker = tmp_path / "tracker.csv"
    tracker.write_text("fk_order_id,SRM ID\n", encoding="utf-8")
    tracker.chmod(0o444)
    try:
        r = run_cli("ticket", "create", "--order", GOOD[0], "--name", "Asha", "--phone", "9876543210", "--address",
                    "1 MG Road", "--city", "Pune", "--pincode", "411001", "--service", "SP TV", "--tracker",
                    str(tracker), env=env)
    finally:
        tracker.chmod(0o644)
    if os.geteuid() != 0:  # root may write a read-only file; the directory check still runs
        assert r.returncode == 2 and "tracker" in r.stderr, r.stderr
        assert registered_in_srms(srms.db)[0] == 0
    r = run_cli("tracker", "reconcile", str(tracker), "--report", str(tmp_path / "nodir" / "x.xlsx"), env=env)
    assert r.returncode == 2 and "[output-dir-missing]" in r.stderr


def test_state_dir_and_ledger_are_private_whatever_the_umask(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    code = "import os, runpy, sys; os.umask(0); sys.argv = ['fhs-bulk', *sys.argv[1:]]; " \
           "runpy.run_module('fhs_bulk', run_name='__main__')"
    r = subprocess.run([sys.executable, "-c", code, "upload", str(order_sheet(tmp_path, GOOD[:2])), "-q"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    state = tmp_path / "state"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    for f in state.iterdir():
        if f.name.startswith("ledger.sqlite") or f.suffix == ".lock":
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f, oct(f.stat().st_mode))


def test_log_file_ends_with_the_outcome(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    log = tmp_path / "night.log"
    out = tmp_path / "r.csv"
    sheet = order_sheet(tmp_path, GOOD[:3], extra=[["od1", "typo"]])
    r = run_cli("upload", str(sheet), "--out", str(out), "--log-file", str(log), "-q", env=env)
    assert r.returncode == 1
    lines = log.read_text(encoding="utf-8").strip().splitlines()
    last = lines[-1]
    assert "outcome: exit 1 (data problems)" in last and "registered 3" in last and "invalid 1" in last
    assert str(out) in last and last[19] in "+-"  # the timestamp carries its UTC offset
    r = run_cli("upload", str(tmp_path / "FK_ODS_ORDER_CREATE.xlsx"), "--log-file", str(log), env=env)
    assert r.returncode == 2
    assert "outcome: exit 2" in log.read_text(encoding="utf-8").strip().splitlines()[-1]


def test_formula_defusing_sees_through_invisible_prefixes(tmp_path: Path) -> None:
    from fhs_bulk.sheets.write import write_table

    values = ["\ufeff=HYPERLINK(1)", "\u200b+1", "\u200d@SUM(A1)", "-2", "plain", "\u2060=1"]
    out = write_table(tmp_path / "x.csv", ["v"], [[v] for v in values])
    with open(out, newline="", encoding="utf-8") as fh:
        got = [row[0] for row in csv.reader(fh)][1:]
    assert got[:4] == ["'" + v for v in values[:4]] and got[4] == "plain" and got[5] == "'" + values[5]
