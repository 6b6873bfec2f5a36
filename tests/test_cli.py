"""The command line as a whole: instant help, version, no tracebacks, phone masking."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from fhs_bulk import __version__
from fhs_bulk.cli import main
from fhs_bulk.privacy import mask_phone

HEAVY = ("pyarrow", "pandas", "openpyxl", "httpx", "fastapi", "uvicorn", "numpy", "python_calamine", "pydantic")


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from fhs_bulk.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            f"print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "HEAVY=", out.stdout


def test_version_and_help() -> None:
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = CliRunner().invoke(main, ["--help"])
    assert r.exit_code == 0
    for cmd in ("validate", "upload", "srms", "sheets"):
        assert cmd in r.output


def test_usage_errors_exit_2_without_traceback() -> None:
    r = CliRunner().invoke(main, ["upload"])
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["nonsense"])
    assert r.exit_code == 2


def test_phone_masking() -> None:
    assert mask_phone("call 9876543210 now") == "call 98******10 now"
    assert mask_phone("+91 98765 43210") == "98******10"
    assert mask_phone("OD118034507542581000") == "OD118034507542581000"  # order IDs are not phones
    assert mask_phone("pincode 560001") == "pincode 560001"


def test_written_files_keep_their_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from fhs_bulk.sheets.write import write_table

    new = write_table(tmp_path / "new.csv", ["a"], [["=1"]])
    assert new.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(new, 0o640)
    write_table(new, ["a"], [["2"]])
    assert new.stat().st_mode & 0o777 == 0o640
    assert new.read_text().splitlines() == ["a", "2"]


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask
