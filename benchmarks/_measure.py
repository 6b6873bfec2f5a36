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


def compile_package() -> None:
    """Bytecode for the package, as pip writes it when installing: in a working copy run with
    PYTHONDONTWRITEBYTECODE set, each timed process would otherwise compile what it imports (10-30 ms)."""
    import compileall
    from pathlib import Path

    import fhs_bulk

    compileall.compile_dir(str(Path(fhs_bulk.__file__).parent), quiet=1)


compile_package()
