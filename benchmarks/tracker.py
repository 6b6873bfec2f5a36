"""Tracker speed: `tracker update` of a 100,000-row tracker (target < 10 s), and `tracker reconcile
--write --report` of it against `srms serve --latency-ms 20` (target < 6 s; `--json` within 1.4x of a
bare batched fetch of the same tickets, measured in the same run).

    python benchmarks/tracker.py [--rows 100000] [--format xlsx|csv]
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _srms import TOKEN, Served, load_loop  # noqa: E402

from fhs_bulk.sheets.contract import tracker_headers  # noqa: E402
from fhs_bulk.srms.mock import catalogue  # noqa: E402


def cli(*args: str, env: dict[str, str]) -> float:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fhs_bulk", *args], env=env, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        raise SystemExit(f"{args[:2]} exited {out.returncode}: {out.stderr[-1500:]}")
    return time.perf_counter() - t


def bare_fetch(url: str, ids: list[str], connections: int = 4) -> float:
    from concurrent.futures import ThreadPoolExecutor

    chunks = [ids[i:i + 1000] for i in range(0, len(ids), 1000)]
    t = time.perf_counter()
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                      limits=httpx.Limits(max_connections=connections)) as c, \
            ThreadPoolExecutor(connections) as pool:
        list(pool.map(lambda ch: c.post("/v1/tickets/query", json={"ids": ch}).json(), chunks))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--format", choices=["xlsx", "csv"], default="xlsx")
    args = ap.parse_args()
    n = args.rows
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cat = catalogue.write(d / "catalogue.csv", catalogue.generate(n, seed=6, non_ods_every=0, ineligible_every=0))
        ids = [r["fk_order_id"] for r in catalogue.load(cat)]
        srv = Served(d, cat, "--latency-ms", "0")
        load_loop(srv.url, ids)  # register every order
        srv.stop()
        # An upload results file, from what SRMS registered.
        import sqlite3

        regs = sqlite3.connect(srv.db).execute("SELECT fk_order_id, reference_id, ticket_id FROM tickets").fetchall()
        results = d / "results.csv"
        with open(results, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "fk_order_id", "status", "code", "reference_id", "ticket_id", "message"])
            for i, (o, ref, tid) in enumerate(regs):
                w.writerow([i + 2, o, "registered", "", ref, tid, ""])
        # A tracker holding every order, IDs not yet filled in, with a person's remarks.
        tracker = d / f"tracker.{args.format}"
        headers = tracker_headers()
        if args.format == "csv":
            with open(tracker, "w", newline="") as fh:
                w = csv.writer(fh)
                w.writerow(headers)
                for o in ids:
                    w.writerow([o] + [""] * (len(headers) - 2) + ["customer asked for a morning slot"])
        else:
            from openpyxl import Workbook

            wb = Workbook(write_only=True)
            ws = wb.create_sheet("Tracker")
            ws.append(headers)
            for o in ids:
                ws.append([o] + [None] * (len(headers) - 2) + ["customer asked for a morning slot"])
            wb.save(tracker)
        env = dict(os.environ, FHS_STATE_DIR=str(d / "state"))
        t_update = cli("tracker", "update", str(tracker), "--from", str(results), env=env)
        t_again = cli("tracker", "update", str(tracker), "--from", str(results), env=env)
        served = Served(d, None, "--latency-ms", "20", db=srv.db)  # the registered db, now slow
        try:
            tids = [tid for _, _, tid in regs]
            t_bare = bare_fetch(served.url, tids)
            env_r = dict(env, FHS_SRMS_URL=served.url, FHS_SRMS_TOKEN=TOKEN)
            t_rec = cli("tracker", "reconcile", str(tracker), "--write", "--report", str(d / "report.xlsx"),
                        env=env_r)
            t_rec_json = cli("tracker", "reconcile", str(tracker), "--json", env=env_r)
        finally:
            served.stop()
    print(f"tracker update, {n:,}-row {args.format} tracker: {t_update:.2f}s (re-run, nothing to change: "
          f"{t_again:.2f}s); target < 10 s {'ok' if t_update < 10 else 'MISSED'}")
    print(f"reconcile --write --report, SRMS latency 20 ms: {t_rec:.2f}s (--json only: {t_rec_json:.2f}s); "
          f"bare batched fetch {t_bare:.2f}s; ratio {t_rec_json / t_bare:.2f}x (json) / {t_rec / t_bare:.2f}x "
          f"(write+report); targets < 6 s {'ok' if t_rec < 6 else 'MISSED'}, json <= 1.4x "
          f"{'ok' if t_rec_json / t_bare <= 1.4 else 'MISSED'}")


if __name__ == "__main__":
    main()
