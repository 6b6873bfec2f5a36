"""Shared by the SRMS and upload benchmarks: a served mock SRMS and a plain load loop."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
from _measure import compile_package  # noqa: F401  (importing it compiles the package's bytecode)

TOKEN = "bench-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, workdir: Path, catalogue: Path | None, *knobs: str, db: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = db or workdir / f"srms-{self.port}.sqlite"
        cmd = [sys.executable, "-m", "fhs_bulk", "srms", "serve", "--port", str(self.port), "--db", str(self.db),
               *(["--catalogue", str(catalogue)] if catalogue else []), *knobs]
        self.proc = subprocess.Popen(cmd, env=dict(os.environ, FHS_SRMS_TOKEN=TOKEN), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 600  # a catalogue of millions of orders takes a while to load
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("srms serve did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def load_loop(url: str, order_ids: list[str], *, connections: int = 4, batch: int = 1000) -> dict[str, float]:
    """Register ``order_ids`` with a bare loop: create job + fetch results per batch, ``connections`` threads."""
    batches = [order_ids[i:i + batch] for i in range(0, len(order_ids), batch)]
    latencies: list[float] = []
    lock = threading.Lock()
    next_batch = iter(batches)

    def worker() -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as c:
            while True:
                with lock:
                    ids = next(next_batch, None)
                if ids is None:
                    return
                t = time.perf_counter()
                job = c.post("/v1/bulk-jobs", json={"order_ids": ids},
                             headers={"Idempotency-Key": str(uuid.uuid4())}).json()
                c.get(f"/v1/bulk-jobs/{job['job_id']}/results").raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {"orders_per_s": len(order_ids) / elapsed, "elapsed_s": elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}
