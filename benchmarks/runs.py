"""`fhs-bulk runs` and `runs show` over a long history: 1,000 recorded runs of 10,000 orders each.

    python benchmarks/runs.py [--runs 1000] [--orders 10000]

Target: each answers in under 1 s. Baseline in the same run: `fhs-bulk --version` (the CLI's start).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import PY, run  # noqa: E402
from fhs_bulk.state.ledger import Ledger  # noqa: E402
from fhs_bulk.state.runs import RunLog  # noqa: E402
from fhs_bulk.upload.run import RESULT_COLUMNS  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--orders", type=int, default=10_000)
    args = ap.parse_args()
    rng = random.Random(3)
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        ledger = Ledger(state)
        log = RunLog(ledger)
        statuses = ["registered"] * 90 + ["already-registered"] * 6 + ["rejected"] * 2 + ["invalid", "failed"]
        for n in range(args.runs):
            rows = []
            for i in range(args.orders):
                st = rng.choice(statuses)
                rows.append([i + 2, f"OD{rng.randrange(10**17, 10**18)}", st, None if st.endswith("registered")
                             else "fsn-not-ods", f"BK-{rng.getrandbits(128):036x}" if "registered" in st else None,
                             None, ""])
            rid = log.start("upload", ["upload", f"night{n}.xlsx"], srms="https://srms.example", sheet=f"night{n}.xlsx")
            counts: dict[str, int] = {}
            for r in rows:
                counts[r[2]] = counts.get(r[2], 0) + 1
            log.finish(rid, 1, counts=counts, outputs={"results": f"r{n}.csv"}, columns=RESULT_COLUMNS, rows=rows)
        ledger.close()
        size = sum(f.stat().st_size for f in state.iterdir()) / 2**20
        env = dict(os.environ, FHS_STATE_DIR=str(state))
        base, _, _ = run([PY, "-m", "fhs_bulk", "--version"], repeat=5, env=env)
        print(f"history: {args.runs:,} runs x {args.orders:,} orders, ledger {size:,.0f} MiB")
        print(f"{'command':<34}{'time':>9}{'vs --version':>14}  target")
        for label, cmd in (("fhs-bulk runs", ["runs"]), ("fhs-bulk runs --json --limit 1000", ["runs", "--json",
                                                                                             "--limit", "1000"]),
                           ("fhs-bulk runs show last", ["runs", "show", "last"]),
                           ("fhs-bulk runs show last --json", ["runs", "show", "last", "--json"])):
            t, _, code = run([PY, "-m", "fhs_bulk", *cmd], repeat=5, env=env)
            assert code == 0, (cmd, code)
            print(f"{label:<34}{t:>8.3f}s{t / base:>13.1f}x  < 1 s {'ok' if t < 1 else 'MISSED'}")
        print(f"{'(baseline) fhs-bulk --version':<34}{base:>8.3f}s")


if __name__ == "__main__":
    main()
