"""Exactly once across kill -9: uploads killed at random moments against a flaky, dropping,
restarting SRMS; the next run completes with every order holding exactly one reference ID."""

from __future__ import annotations

import csv
import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fhs_bulk.srms.mock import catalogue
from tests.conftest import cli_env, run_cli

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("knobs", [("--fail-rate", "0.2", "--latency-ms", "30", "--seed", "21"),
                                   ("--drop-rate", "0.1", "--latency-ms", "30", "--seed", "22")])
def test_kill_9_at_random_moments_then_exactly_once(srms_factory, tmp_path: Path, knobs: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    cat_path = catalogue.write(tmp_path / "catalogue.csv",
                               catalogue.generate(3000, seed=99, non_ods_every=0, ineligible_every=0))
    ids = [r["fk_order_id"] for r in catalogue.load(cat_path)]
    srv = srms_factory(*knobs, catalogue=cat_path)
    sheet = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(ids) + "\n")
    env = cli_env(tmp_path, srv)
    rng = random.Random(5)
    cmd = [sys.executable, "-m", "fhs_bulk", "upload", str(sheet), "--out", str(tmp_path / "r.csv"),
           "--batch-size", "20", "--concurrency", "4", "-q"]
    interrupted = 0  # batches a kill left without a recorded answer
    for attempt in range(8):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ledger = tmp_path / "state" / "ledger.sqlite"
        if ledger.exists():
            with sqlite3.connect(ledger) as led:
                interrupted += led.execute("SELECT count(*) FROM batches WHERE state='pending'").fetchone()[0]
        if attempt == 4:
            srv.restart()  # SRMS restarts in the middle too
    final = None
    for _ in range(10):
        final = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--batch-size", "20", "--json",
                        env=env, timeout=600)
        if final.returncode != 3:
            break
    assert final is not None and final.returncode == 0, final.stderr[-2000:]
    assert interrupted > 0, "no kill landed mid-upload: the test proved nothing"
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    refs = [r["reference_id"] for r in rows]
    assert len(rows) == 3000 and all(refs) and len(set(refs)) == 3000
    db = sqlite3.connect(srv.db)
    assert db.execute("SELECT count(*), count(DISTINCT fk_order_id) FROM tickets").fetchone() == (3000, 3000)
    server = dict(db.execute("SELECT fk_order_id, reference_id FROM tickets"))
    assert all(server[r["fk_order_id"]] == r["reference_id"] for r in rows)
    # A later run changes nothing.
    again = run_cli("upload", str(sheet), "--out", str(tmp_path / "r2.csv"), "--json", env=env, timeout=600)
    assert again.returncode == 0 and json.loads(again.stdout)["sent"] == 0
    with open(tmp_path / "r2.csv", newline="") as fh:
        assert [r["reference_id"] for r in csv.DictReader(fh)] == refs
