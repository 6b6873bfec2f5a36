"""The mock SRMS's ceiling: orders registered per second through bulk jobs (catalogue checks and
ticket creation included), driven by a plain load loop over several connections; and, as the
baseline in the same run, its storage alone: the same store (schema, pragmas, synchronous=FULL,
1,000-order transactions, the same per-batch queries) driven in-process with no HTTP.

    python benchmarks/srms.py [--orders 100000] [--connections 4]

Targets on a 2-core machine: >= 20,000 orders/s with --latency-ms 0; ceiling / storage >= 0.85.
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
        storage = _storage_only(d, cat, ids)
    print(f"SRMS ceiling: {r['orders_per_s']:,.0f} orders/s over {args.connections} connections "
          f"({len(ids) - 2000:,} orders, 1,000 per job; job p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms); "
          f"target >= 20,000: {'ok' if r['orders_per_s'] >= 20_000 else 'MISSED'}")
    ratio = r["orders_per_s"] / storage
    print(f"storage alone (same store, in-process, no HTTP): {storage:,.0f} orders/s; ceiling / storage "
          f"{ratio:.2f}; target >= 0.85: {'ok' if ratio >= 0.85 else 'MISSED'}")


def _storage_only(d: Path, cat: Path, ids: list[str]) -> float:
    """Orders/s of Store.create_job + job_results on a fresh db, one 1,000-order transaction per job."""
    import time
    import uuid

    from fhs_bulk.srms.mock.catalogue import open_store

    store, _ = open_store(d / "storage-only.sqlite", cat)
    try:
        batches = [ids[i:i + 1000] for i in range(0, len(ids), 1000)]
        for b in batches[:2]:  # the same warm-up as the served run
            job, _ = store.create_job(str(uuid.uuid4()), b)
            store.job_results(job["job_id"])
        start = time.perf_counter()
        for b in batches[2:]:
            job, _ = store.create_job(str(uuid.uuid4()), b)
            store.job_results(job["job_id"])
        return sum(len(b) for b in batches[2:]) / (time.perf_counter() - start)
    finally:
        store.close()


if __name__ == "__main__":
    main()
