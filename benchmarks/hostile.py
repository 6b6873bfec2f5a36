"""Each hostile or odd sheet of the night-shift list: its exit code, wall time and peak RSS.

    python benchmarks/hostile.py

Every case must end in exit 1 or 2 (or 0 where the file is fine, e.g. CR-only CSV) in under 30 s and
under 1 GiB; the baseline line is `fhs-bulk validate` of the bundled sample sheet in the same run.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._measure import PY, run  # noqa: E402
from fhs_bulk.srms.mock import catalogue  # noqa: E402
from samples import hostile  # noqa: E402


def main() -> None:
    good = [r["fk_order_id"] for r in catalogue.load(catalogue.bundled_path()) if r["fsn"].startswith("ODS")]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        cases: list[tuple[str, Path]] = []

        def case(name: str, path: Path) -> None:
            cases.append((name, path))

        def fresh(sub: str, ext: str) -> Path:
            (d / sub).mkdir()
            return d / sub / f"FK_ODS_ORDER_CREATE{ext}"

        case("sample sheet (baseline)", ROOT / "samples" / "FK_ODS_ORDER_CREATE.xlsx")
        case("xlsx, cells at A1, A2, XFD1048576", hostile.write_xlsx(fresh("a", ".xlsx"), [
            (1, [b'<c r="A1" t="s"><v>0</v></c>']), (2, [hostile.inline("A2", good[0])]),
            (1048576, [hostile.inline("XFD1048576", "x")])]))
        case("xlsx, one stray cell at ZZ200000", hostile.write_xlsx(fresh("b", ".xlsx"), [
            (1, [b'<c r="A1" t="s"><v>0</v></c>']), (2, [hostile.inline("A2", good[0])]),
            (200000, [hostile.inline("ZZ200000", "stray")])]))
        bomb = hostile.one_gib_string(fresh("c", ".xlsx"))
        case(f"xlsx bomb, one 1 GiB string ({bomb.stat().st_size / 1e6:.1f} MB)", bomb)
        case("same bomb, declared sizes lie", hostile.lying_sizes(bomb, fresh("d", ".xlsx")))
        small = hostile.many_small_strings(fresh("e", ".xlsx"))
        case(f"xlsx bomb, 720 MiB of small strings ({small.stat().st_size / 1e6:.1f} MB)", small)
        case("CSV with a 200 MB line", hostile.long_line_csv(fresh("f", ".csv"), good[0], good[1]))
        case("CSV, 2,000,000 garbage rows", hostile.garbage_csv(fresh("g", ".csv")))
        cr = fresh("h", ".csv")
        cr.write_bytes(("fk_order_id\r" + "\r".join(good[:50]) + "\r").encode())
        case("CSV with CR-only line endings", cr)
        case("ods, password-protected", hostile.encrypted_ods(fresh("i", ".ods")))
        fifo = fresh("j", ".csv")
        os.mkfifo(fifo)
        case("a FIFO named .csv", fifo)
        print(f"{'case':<52}{'exit':>5}{'time':>9}{'peak RSS':>11}")
        for name, path in cases:
            t, rss, code = run([PY, "-m", "fhs_bulk", "validate", "--json", str(path)], repeat=1)
            ok = code in (0, 1, 2) and t < 30 and rss < 1024
            print(f"{name:<52}{code:>5}{t:>8.2f}s{rss:>7.0f} MiB  {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
