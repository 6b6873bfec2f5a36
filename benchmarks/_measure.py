"""Timing whole processes: wall time and peak RSS of one child, best of N runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def run(cmd: list[str], *, repeat: int = 3, env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """Best wall time (s), its peak RSS (MiB), and the exit code of the last run."""
    best = (float("inf"), 0.0, 0)
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if elapsed < best[0]:
            best = (elapsed, usage.ru_maxrss / 1024, proc.returncode)
    return best


PY = sys.executable
