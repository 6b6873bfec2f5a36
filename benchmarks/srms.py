"""The mock SRMS's ceiling: orders registered per second through bulk jobs (catalogue checks and
ticket creation included), driven by a plain load loop over several connections.

    python benchmarks/srms.py [--orders 100000] [--connections 4]

Target on a 2-core machine: >= 20,000 orders/s with --latency-ms 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _srms import Served, load_loop  # noqa: E402

from fhs_bulk.srms.mock import catalogue  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=100_000)
    ap.add_argument("--connections", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cat = catalogue.write(d / "catalogue.csv", catalogue.generate(args.orders, seed=3, non_ods_every=0,
                                                                      ineligible_every=0))
        ids = [r["fk_order_id"] for r in catalogue.load(cat)]
        srv = Served(d, cat, "--latency-ms", "0")
        try:
            load_loop(srv.url, ids[:2000], connections=args.connections)  # warm up
            r = load_loop(srv.url, ids[2000:], connections=args.connections)
        finally:
            srv.stop()
    print(f"SRMS ceiling: {r['orders_per_s']:,.0f} orders/s over {args.connections} connections "
          f"({len(ids) - 2000:,} orders, 1,000 per job; job p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms); "
          f"target >= 20,000: {'ok' if r['orders_per_s'] >= 20_000 else 'MISSED'}")


if __name__ == "__main__":
    main()
