"""The upload against the SRMS ceiling: `fhs-bulk upload` of a 100,000-order sheet next to a plain load
loop over the same server, in the same run, with --latency-ms 0 and 50.

    python benchmarks/upload.py [--orders 100000]

Targets: the upload reaches >= 90% of the ceiling at both latencies; a re-run of the fully registered
sheet (whole process) < 0.8 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _srms import TOKEN, Served, load_loop  # noqa: E402

from fhs_bulk.srms.mock import catalogue  # noqa: E402


def upload(sheet: Path, srv: Served, state: Path, *extra: str) -> tuple[float, dict]:
    env = dict(os.environ, FHS_SRMS_URL=srv.url, FHS_SRMS_TOKEN=TOKEN, FHS_STATE_DIR=str(state))
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "fhs_bulk", "upload", str(sheet), "--out", str(state / "r.csv"),
                          "--json", "-q", *extra], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"upload exited {out.returncode}: {out.stderr[-2000:]}")
    return elapsed, json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=2, help="best of N, each on fresh servers (2 cores are noisy)")
    args = ap.parse_args()
    n = args.orders
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cat = catalogue.write(d / "catalogue.csv", catalogue.generate(n, seed=4, non_ods_every=0,
                                                                      ineligible_every=0))
        ids = [r["fk_order_id"] for r in catalogue.load(cat)]
        sheet = d / "FK_ODS_ORDER_CREATE.csv"
        sheet.write_text("fk_order_id\n" + "\n".join(ids[:n]) + "\n")
        print(f"{'SRMS latency':<14}{'ceiling (loop)':>18}{'upload':>16}{'ratio':>8}{'wall':>9}{'re-run':>9}  targets")
        for latency in ("0", "50"):
            best_ceiling, best_rate, wall, rerun = 0.0, 0.0, 0.0, 0.0
            for attempt in range(args.repeat):
                # Each measurement on a fresh server, so neither pays for the other's data.
                loop_srv = Served(d, cat, "--latency-ms", latency)
                try:
                    ceiling = load_loop(loop_srv.url, ids[:n], connections=args.concurrency)
                finally:
                    loop_srv.stop()
                srv = Served(d, cat, "--latency-ms", latency)
                state = d / f"state-{latency}-{attempt}"
                state.mkdir()
                try:
                    w, summary = upload(sheet, srv, state, "--concurrency", str(args.concurrency))
                    r, again = upload(sheet, srv, state)
                finally:
                    srv.stop()
                assert summary["counts"]["registered"] == n and again["sent"] == 0
                if summary["orders_per_s"] > best_rate:
                    best_rate, wall = summary["orders_per_s"], w
                best_ceiling = max(best_ceiling, ceiling["orders_per_s"])
                rerun = max(rerun, r)
            rate = best_rate
            ceiling = {"orders_per_s": best_ceiling}
            ratio = rate / best_ceiling
            print(f"{latency + ' ms':<14}{ceiling['orders_per_s']:>12,.0f} ord/s{rate:>10,.0f} ord/s{ratio:>7.0%}"
                  f"{wall:>8.2f}s{rerun:>8.2f}s  >= 90% {'ok' if ratio >= 0.9 else 'MISSED'}, "
                  f"re-run < 0.8 s {'ok' if rerun < 0.8 else 'MISSED'}")
        print(f"(best of {args.repeat}; upload ord/s: orders sent / upload time incl. validation and the ledger; "
              "wall: whole process; re-run: the slowest)")


if __name__ == "__main__":
    main()
