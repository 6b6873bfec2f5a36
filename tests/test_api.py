"""The Python API as a script or notebook uses it, the error registry, and the architecture rules
(no client module imports the mock; no import circles)."""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

import fhs_bulk
from fhs_bulk.errors import CODES, Exit
from tests.conftest import GOOD, NON_ODS, ROOT, SAMPLES, cli_env, order_sheet

PACKAGE = ROOT / "fhs_bulk"
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_example_runs(tmp_path: Path) -> None:
    """The README's Python API example, run as written (its printed comments are checked too)."""
    section = README.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copytree(SAMPLES, tmp_path / "samples")
    env = cli_env(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    expected = [m.group(1).strip() for m in re.finditer(r"print\(.*\)\s+# (.+)", code)]
    lines = out.stdout.splitlines()
    assert len(lines) == len(expected) == 4
    for line, want in zip(lines, expected, strict=True):
        assert line.startswith(want.split(":")[0].split(" ...")[0]), (line, want)
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "state" / "ledger.sqlite").is_file()


def test_upload_and_reconcile_from_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sheet = order_sheet(tmp_path, GOOD[:4] + [NON_ODS[0]], extra=[["od1", "typo"]])
    with fhs_bulk.Session(embedded_db=tmp_path / "srms.sqlite", state_dir=tmp_path / "state") as session:
        assert "token" not in repr(session).lower() or "***" in repr(session)
        result = fhs_bulk.upload(session, sheet, out=tmp_path / "r.xlsx")
        assert result.counts["registered"] == 4 and result.counts["rejected"] == 1
        assert result.counts["invalid"] == 1 and result.exit_code == Exit.DATA
        df = result.to_pandas()
        assert list(df.columns) == ["row", "fk_order_id", "status", "code", "reference_id", "ticket_id", "message"]
        assert df.loc[df.status == "registered", "reference_id"].str.startswith("BK-").all()
        import pandas as pd

        assert pd.api.types.is_string_dtype(df.fk_order_id)  # IDs stay text
        tracker = tmp_path / "tracker.csv"
        tracker.write_text("fk_order_id,SRM ID\n", encoding="utf-8")
        upd = fhs_bulk.update_tracker(tracker, fhs_bulk.registrations_from_ledger(session))
        assert upd.added == 4 and upd.exit_code == 0
        from fhs_bulk.tracker.reconcile import JsonRows

        streamed = JsonRows()
        rec = fhs_bulk.reconcile(session, tracker, as_of=date.today(), on_judged=streamed)
        assert len(rec.rows) == 4 and all(r.status == "CREATED" for r in rec.rows)
        # The JSON written a part at a time (rows encoded as they were judged) is the document at once.
        whole = json.dumps(rec.as_dict(), sort_keys=True, ensure_ascii=False) + "\n"
        for parts in (streamed.parts, None):
            buf = io.StringIO()
            rec.write_json(buf, parts)
            assert buf.getvalue() == whole
        frame = rec.to_pandas()
        assert set(frame.srm_id.str[:4]) == {"SRM-"}
        again = fhs_bulk.upload(session, sheet, out=tmp_path / "r.xlsx")
        assert again.counts["already-registered"] == 4 and again.counts["registered"] == 0


def test_errors_are_caught_by_class(tmp_path: Path) -> None:
    with fhs_bulk.Session(embedded_db=tmp_path / "srms.sqlite", state_dir=tmp_path / "state") as session:
        with pytest.raises(fhs_bulk.SheetError) as err:
            fhs_bulk.upload(session, tmp_path / "FK_ODS_ORDER_CREATE.xlsx")
        assert err.value.code == "sheet-not-found" and err.value.exit_code == 2 and err.value.fix
        sheet = order_sheet(tmp_path, GOOD[:1])
        with pytest.raises(fhs_bulk.OutputError) as out_err:
            fhs_bulk.upload(session, sheet, out=tmp_path / "no-such-dir" / "r.csv")
        assert out_err.value.code == "output-dir-missing"
    with pytest.raises(fhs_bulk.ConfigError):
        fhs_bulk.Session(url="http://127.0.0.1:9")  # a URL with no token
    report = fhs_bulk.validate_sheet(sheet)
    assert report.exit_code == 0 and report.to_pandas().empty


def _raised_codes() -> set[str]:
    codes: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if kw.arg == "code" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                        codes.add(kw.value.value)
    return codes


def test_every_raised_code_is_registered_and_documented() -> None:
    from fhs_bulk.validate.check import CODES as FINDING_CODES

    raised = _raised_codes() - set(FINDING_CODES) - {"invalid", "not-sent", "interrupted"}
    assert raised <= set(CODES), raised - set(CODES)
    table = README.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    for code, spec in CODES.items():
        assert f"| `{code}` | {int(spec.exit)} |" in table, code
        assert hasattr(fhs_bulk.errors, spec.kind), spec.kind
    for code in FINDING_CODES:
        assert f"`{code}`" in README, code


@pytest.mark.parametrize("code", sorted(CODES))
def test_registered_code_gives_its_exit(code: str) -> None:
    spec = CODES[code]
    cls = getattr(fhs_bulk.errors, spec.kind)
    err = (cls(400, code, "refused") if spec.kind == "SrmsError"
           else cls("x") if spec.kind == "LockHeld"
           else cls("x", code=code))
    assert isinstance(err, fhs_bulk.FhsError) and err.exit_code == spec.exit and err.fix == spec.fix


def _module_imports(path: Path) -> tuple[str, set[str], set[str]]:
    """(module, top-level fhs_bulk imports, all fhs_bulk imports) of one source file."""
    rel = path.relative_to(ROOT).with_suffix("")
    module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top: set[str] = set()
    every: set[str] = set()

    def names(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom) and node.module:
            return [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        return []

    for node in ast.walk(tree):
        every.update(n for n in names(node) if n.startswith("fhs_bulk"))
    for node in tree.body:
        if isinstance(node, ast.If):  # TYPE_CHECKING blocks do not run
            continue
        top.update(n for n in names(node) if n.startswith("fhs_bulk"))
    return module, top, every


def test_no_client_module_imports_the_mock() -> None:
    # embedded mode, and the mock's own commands
    allowed = {"fhs_bulk.session", "fhs_bulk.cli.srms", "fhs_bulk.cli.samples"}
    for path in PACKAGE.rglob("*.py"):
        module, _, every = _module_imports(path)
        if module.startswith("fhs_bulk.srms.mock") or module in allowed:
            continue
        assert not any(n.startswith("fhs_bulk.srms.mock") for n in every), module


def test_no_import_circles() -> None:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        module, top, _ = _module_imports(path)
        modules[module] = top
    graph = {m: {t for t in deps if t in modules and t != m} for m, deps in modules.items()}
    graph = {m: {d for d in deps if d != "fhs_bulk"} for m, deps in graph.items()}  # the lazy root re-exports
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                pytest.fail("import circle: " + " -> ".join([*stack[stack.index(d):], d]))
            if d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_import_is_light() -> None:
    code = "import sys, fhs_bulk, fhs_bulk.cli; print(sorted(m for m in ('pandas', 'pyarrow', 'numpy', 'httpx', " \
           "'fastapi', 'openpyxl') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("first", ["import fhs_bulk.upload.run as run", "from fhs_bulk.upload import run",
                                   "import fhs_bulk; fhs_bulk.upload"])
def test_upload_is_callable_whatever_is_imported_first(first: str) -> None:
    """fhs_bulk.upload is the function the README calls and the package holding it, in any import order."""
    code = (f"{first}\nimport fhs_bulk, fhs_bulk.upload.run as run\n"
            "assert callable(fhs_bulk.upload) and run.upload.__name__ == 'upload'\n"
            "import inspect; assert 'session' in inspect.signature(run.upload).parameters\n"
            "try:\n    fhs_bulk.upload()\nexcept TypeError as e:\n    assert 'session' in str(e), e\n"
            "else:\n    raise AssertionError('no session accepted')\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
