"""Validate speed: the whole `fhs-bulk validate --json` process against a process that only reads
the same file (pyarrow for CSV, python-calamine for xlsx), in the same run.

    python benchmarks/validate.py [--rows 1000000] [--xlsx-rows 200000]

Targets: a 1,000,000-row CSV within 1.6x of the bare read (5,000,000 rows: 2.0x), xlsx within 1.5x, peak
RSS under 1 GiB; a 100-row sheet within 2.5x of `python -c "import click"`.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _measure import PY, run  # noqa: E402

BARE_CSV = ("import sys, pyarrow as pa, pyarrow.csv as c; "
            "t = c.read_csv(sys.argv[1], convert_options=c.ConvertOptions(column_types={'fk_order_id': pa.string(), "
            "'remarks': pa.string()})); print(t.num_rows)")
BARE_XLSX = ("import sys; from python_calamine import CalamineWorkbook as W; "
             "rows = W.from_path(sys.argv[1]).get_sheet_by_index(0).to_python(); print(len(rows))")


def make_ids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    ids = [f"OD{v:018d}" for v in rng.sample(range(10**17, 10**18), n)]
    # A realistic sprinkle of mistakes: 0.1% of rows.
    for i in range(0, n, 1000):
        ids[i] = [ids[i].lower(), ids[i][:19], ids[i - 1] if i else ids[i], " " + ids[i]][(i // 1000) % 4]
    return ids


def make_sheets(d: Path, rows: int, xlsx_rows: int) -> None:
    with open(d / "FK_ODS_ORDER_CREATE.csv", "w", encoding="utf-8") as fh:
        fh.write("fk_order_id,remarks\n")
        fh.writelines(f"{i},night batch\n" for i in make_ids(rows))
    (d / "x").mkdir()
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Sheet1")
    ws.append(["fk_order_id", "remarks"])
    for i in make_ids(xlsx_rows, seed=2):
        ws.append([i, "night batch"])
    wb.save(d / "x" / "FK_ODS_ORDER_CREATE.xlsx")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--xlsx-rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--make", help=argparse.SUPPRESS)  # the sheets are made in a child process
    args = ap.parse_args()
    if args.make:
        make_sheets(Path(args.make), args.rows, args.xlsx_rows)
        return
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        # Made in a child: a child's peak RSS counts its parent's pages from before exec, and millions
        # of IDs held here would count against every process measured.
        subprocess.run([PY, __file__, "--make", tmp, "--rows", str(args.rows), "--xlsx-rows", str(args.xlsx_rows)],
                       check=True)
        csv_path = d / "FK_ODS_ORDER_CREATE.csv"
        xlsx_path = d / "x" / "FK_ODS_ORDER_CREATE.xlsx"

        print(f"{'case':<28}{'bare read':>12}{'validate':>12}{'ratio':>8}{'peak RSS (bare)':>20}  target")
        for label, bare, path, target in (
                (f"CSV {args.rows:,} rows", BARE_CSV, csv_path, 1.6 if args.rows <= 1_000_000 else 2.0),
                (f"xlsx {args.xlsx_rows:,} rows", BARE_XLSX, xlsx_path, 1.5)):
            base_t, base_rss, _ = run([PY, "-c", bare, str(path)], repeat=args.repeat)
            t, rss, code = run([PY, "-m", "fhs_bulk", "validate", "--json", str(path)], repeat=args.repeat)
            assert code == 1, f"validate exited {code}"
            ratio = t / base_t
            print(f"{label:<28}{base_t:>11.3f}s{t:>11.3f}s{ratio:>7.2f}x{rss:>7.0f} MiB ({base_rss:>4.0f} MiB)"
                  f"  <= {target}x "
                  f"{'ok' if ratio <= target and rss < 1024 else 'MISSED'}")
        small = d / "s" / "FK_ODS_ORDER_CREATE.csv"
        small.parent.mkdir()
        small.write_text("fk_order_id,remarks\n" + "".join(f"{i},night batch\n" for i in make_ids(100, seed=3)))
        click_t, _, _ = run([PY, "-c", "import click"], repeat=5)
        small_t, _, _ = run([PY, "-m", "fhs_bulk", "validate", "--json", str(small)], repeat=5)
        print(f"{'validate, 100-row CSV':<28}{click_t:>11.3f}s{small_t:>11.3f}s{small_t / click_t:>7.2f}x"
              f"{'':>20}  <= 2.5x {'ok' if small_t / click_t <= 2.5 else 'MISSED'} "
              "(baseline: python -c 'import click')")
        help_base, _, _ = run([PY, "-c", "import click"], repeat=5)
        help_t, _, _ = run([PY, "-m", "fhs_bulk", "--help"], repeat=5)
        print(f"{'fhs-bulk --help':<28}{help_base:>11.3f}s{help_t:>11.3f}s{help_t / help_base:>7.2f}x"
              f"{'':>20}  <= 3.0x (baseline: python -c 'import click')")


if __name__ == "__main__":
    main()
