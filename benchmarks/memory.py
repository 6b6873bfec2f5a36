"""Peak client memory of `fhs-bulk upload` by sheet size: the first upload and the re-run, each in its
own process against a served mock SRMS. Flat means the 1,000,000-order run needs little more than the
100,000-order one; the baseline is the same process importing what an upload imports and doing nothing.

    python benchmarks/memory.py [--orders 100000,1000000]

Target: < 300 MiB at 1,000,000 orders, flat in N.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _srms import TOKEN, Served  # noqa: E402

MAKE = """
import sys
from pathlib import Path
from fhs_bulk.srms.mock import catalogue
d, n = Path(sys.argv[1]), int(sys.argv[2])
cat = catalogue.write(d / "catalogue.csv", catalogue.generate(n, seed=4, non_ods_every=0, ineligible_every=0))
ids = [r["fk_order_id"] for r in catalogue.load(cat)]
(d / "FK_ODS_ORDER_CREATE.csv").write_text("fk_order_id\\n" + "\\n".join(ids) + "\\n")
"""


def peak_mib(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MiB, seconds) of one child process, which must exit 0."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{cmd[3:5]} exited {code}: {err[-2000:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", default="100000,1000000")
    args = ap.parse_args()
    sizes = [int(x) for x in args.orders.split(",")]
    base_cmd = [sys.executable, "-c", "import fhs_bulk.upload.run, fhs_bulk.srms.client, fhs_bulk.validate.check, "
                "numpy, pyarrow.csv, pyarrow.compute"]
    base, _ = peak_mib(base_cmd, dict(os.environ))
    print(f"baseline (the upload's imports, no work): {base:.0f} MiB")
    print(f"{'orders':>10}{'upload peak':>14}{'re-run peak':>14}{'upload s':>10}{'re-run s':>10}")
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            d = Path(tmp) / str(n)
            d.mkdir()
            # Made in a child process: a child's peak RSS counts its parent's pages from before exec.
            subprocess.run([sys.executable, "-c", MAKE, str(d), str(n)], check=True)
            cat, sheet = d / "catalogue.csv", d / "FK_ODS_ORDER_CREATE.csv"
            srv = Served(d, cat)
            try:
                env = dict(os.environ, FHS_SRMS_URL=srv.url, FHS_SRMS_TOKEN=TOKEN, FHS_STATE_DIR=str(d / "state"))
                cmd = [sys.executable, "-m", "fhs_bulk", "upload", str(sheet), "--out", str(d / "r.csv"), "-q"]
                up, up_s = peak_mib(cmd, env)
                again, again_s = peak_mib(cmd, env)
            finally:
                srv.stop()
            peaks[n] = max(up, again)
            print(f"{n:>10,}{up:>10.0f} MiB{again:>10.0f} MiB{up_s:>10.1f}{again_s:>10.1f}")
    top = max(sizes)
    print(f"peak at {top:,}: {peaks[top]:.0f} MiB = {peaks[top] / base:.1f}x the baseline "
          f"(< 300 MiB {'ok' if peaks[top] < 300 else 'MISSED'})")
    if len(sizes) > 1:
        low = min(sizes)
        per = (peaks[top] - peaks[low]) / (top - low) * 1024 * 1024
        print(f"growth {low:,} -> {top:,}: {per:.0f} bytes per order")


if __name__ == "__main__":
    main()
