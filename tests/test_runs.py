"""The morning after: run history (`fhs-bulk runs`) and notifications, through a real webhook receiver
on loopback and a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import GOOD, NON_ODS, cli_env, free_port, order_sheet, read_results, run_cli


class Receiver:
    """An incoming-webhook endpoint: records every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers.get("Content-Length", "0"))
                outer.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_two_nights_then_the_morning_check(srms, receiver: Receiver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The README's cron line twice (a good night, then SRMS down), then `runs` in the morning."""
    env = cli_env(tmp_path, srms, FHS_NOTIFY=receiver.url)
    good = order_sheet(tmp_path, GOOD[:8])
    out = tmp_path / "results.csv"
    first = run_cli("upload", str(good), "--out", str(out), "--log-file", str(tmp_path / "night.log"), "-q", env=env)
    assert first.returncode == 0, first.stderr
    srms.stop()
    bad_dir = tmp_path / "night2"
    bad_dir.mkdir()
    bad = order_sheet(bad_dir, GOOD[8:14])
    out2 = tmp_path / "results2.csv"
    second = run_cli("upload", str(bad), "--out", str(out2), "--deadline", "1", "-q", env=env)
    assert second.returncode == 3, second.stderr
    listing = run_cli("runs", "--json", env=env)
    found = json.loads(listing.stdout)["runs"]
    assert [(r["command"], r["exit_code"]) for r in found] == [("upload", 3), ("upload", 0)]
    assert found[0]["id"] > found[1]["id"]  # sortable ids, newest first
    shown = json.loads(run_cli("runs", "show", "last", "--json", env=env).stdout)
    assert shown["exit_code"] == 3 and len(shown["problems"]) == 6
    assert {p["status"] for p in shown["problems"]} == {"failed"} and shown["outputs"]["results"] == str(out2)
    again = tmp_path / "again.csv"
    assert run_cli("runs", "results", shown["id"], "--out", str(again), env=env).returncode == 0
    assert again.read_bytes() == out2.read_bytes()
    assert len(receiver.bodies) == 1  # only the bad night (default --notify-on problems)
    text = receiver.bodies[0]["text"]
    assert "exit 3" in text and "re-run later" in text and shown["id"] in text and str(bad) in text
    plain = run_cli("runs", env=env)
    assert plain.returncode == 0 and shown["id"] in plain.stdout and "\t3" in plain.stdout


def test_runs_of_every_command_and_dry_runs_are_recorded(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:2] + [NON_ODS[0]])
    assert run_cli("upload", str(sheet), "--dry-run", env=env).returncode == 0
    assert run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), env=env).returncode == 1
    tracker = tmp_path / "tracker.csv"
    tracker.write_text("fk_order_id,SRM ID\n", encoding="utf-8")
    assert run_cli("tracker", "update", str(tracker), "--from", str(tmp_path / "r.csv"), env=env).returncode == 0
    assert run_cli("tracker", "reconcile", str(tracker), env=env).returncode in (0, 1)
    r = run_cli("ticket", "create", "--order", GOOD[5], "--name", "Asha", "--phone", "9876543210", "--address",
                "1 MG Road", "--city", "Pune", "--pincode", "411001", "--service", "SP TV", "--preferred-date",
                (date.today() + timedelta(days=3)).isoformat(), env=env)
    assert r.returncode == 0, r.stderr
    found = json.loads(run_cli("runs", "--json", env=env).stdout)["runs"]
    assert [r["command"] for r in found] == ["ticket create", "tracker reconcile", "tracker update", "upload",
                                             "upload"]
    assert [r["dry_run"] for r in found][-2:] == [False, True]
    assert "9876543210" not in json.dumps(found)  # the phone on the command line is masked
    assert [r["command"] for r in json.loads(run_cli("runs", "--command", "upload", "--json",
                                                     env=env).stdout)["runs"]] == ["upload", "upload"]
    assert json.loads(run_cli("runs", "--since", "2999-01-01", "--json", env=env).stdout)["runs"] == []
    rejected = json.loads(run_cli("runs", "show", found[3]["id"], "--json", env=env).stdout)["problems"]
    assert [p["code"] for p in rejected] == ["fsn-not-ods"]


def test_a_killed_run_shows_unfinished(srms_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from fhs_bulk.srms.mock import catalogue

    cat = catalogue.write(tmp_path / "cat.csv", catalogue.generate(3000, seed=5, non_ods_every=0, ineligible_every=0))
    ids = [r["fk_order_id"] for r in catalogue.load(cat)]
    srv = srms_factory("--latency-ms", "50", catalogue=cat)
    sheet = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    sheet.write_text("fk_order_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    env = cli_env(tmp_path, srv)
    proc = subprocess.Popen([sys.executable, "-m", "fhs_bulk", "upload", str(sheet), "--batch-size", "20", "-q"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ledger = tmp_path / "state" / "ledger.sqlite"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ledger.exists():
            try:
                with sqlite3.connect(ledger) as db:
                    if db.execute("SELECT count(*) FROM batches").fetchone()[0]:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    found = json.loads(run_cli("runs", "--json", env=env).stdout)["runs"]
    assert found[0]["state"] == "unfinished" and found[0]["exit_code"] is None
    assert "unfinished" in run_cli("runs", env=env).stdout


def test_prune_forgets_runs_not_the_exactly_once_records(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:3])
    assert run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), env=env).returncode == 0
    assert run_cli("runs", "prune", "--older-than", "90", env=env).returncode == 0
    assert len(json.loads(run_cli("runs", "--json", env=env).stdout)["runs"]) == 1
    assert run_cli("runs", "prune", "--older-than", "0", env=env).returncode == 0
    assert json.loads(run_cli("runs", "--json", env=env).stdout)["runs"] == []
    again = run_cli("upload", str(sheet), "--out", str(tmp_path / "r.csv"), "--json", env=env)
    assert json.loads(again.stdout)["sent"] == 0  # the ledger still answers every order


def test_history_written_by_an_older_version_still_reads(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Older versions kept a run's rows as one blob; `runs show` and `runs results` read both forms."""
    import zlib

    env = cli_env(tmp_path, srms)
    assert run_cli("upload", str(order_sheet(tmp_path, GOOD[:2])), "--out", str(tmp_path / "r.csv"),
                   env=env).returncode == 0
    run_id = json.loads(run_cli("runs", "--json", env=env).stdout)["runs"][0]["id"]
    old_rows = [[2, GOOD[0], "registered", None, "BK-x", "SRM-1", ""], [3, "od1", "invalid", "order-id-lowercase",
                                                                       None, None, "lower case"]]
    with sqlite3.connect(tmp_path / "state" / "ledger.sqlite") as db:
        db.execute("DELETE FROM run_row_chunks")
        db.execute("UPDATE run_rows SET rows = ? WHERE run_id = ?",
                   (zlib.compress(json.dumps(old_rows).encode()), run_id))
    shown = json.loads(run_cli("runs", "show", run_id, "--json", env=env).stdout)
    assert [p["fk_order_id"] for p in shown["problems"]] == ["od1"]
    again = tmp_path / "again.csv"
    assert run_cli("runs", "results", run_id, "--out", str(again), env=env).returncode == 0
    assert [r["fk_order_id"] for r in read_results(again)] == [GOOD[0], "od1"]


def test_notify_on_always_and_failure(srms, receiver: Receiver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    sheet = order_sheet(tmp_path, GOOD[:2], extra=[["od1", "typo"]])
    r = run_cli("upload", str(sheet), "--notify", receiver.url, "--notify-on", "failure", env=env)
    assert r.returncode == 1 and receiver.bodies == []  # data problems are not a failure
    r = run_cli("upload", str(sheet), "--notify", receiver.url, "--notify-on", "always", env=env)
    assert r.returncode == 1 and len(receiver.bodies) == 1
    assert "fix rows 4 in the sheet" in receiver.bodies[0]["text"]


def test_an_unreachable_target_warns_and_changes_nothing(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path, srms)
    dead = f"http://127.0.0.1:{free_port()}/hooks/secret-path"
    t0 = time.monotonic()
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:2], extra=[["od1", "x"]])), "--notify", dead, env=env)
    assert r.returncode == 1 and time.monotonic() - t0 < 30
    assert "warning: notification to http://127.0.0.1" in r.stderr and "secret-path" not in r.stderr
    bad = run_cli("upload", str(order_sheet(tmp_path, GOOD[:2])), "--notify", "ftp://x", env=env)
    assert bad.returncode == 2 and "--notify" in bad.stderr


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Message]]]:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    received: list[Message] = []

    class Handler:
        async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
            received.append(email.message_from_bytes(envelope.content))  # type: ignore[attr-defined]
            return "250 OK"

    port = free_port()
    controller = aiosmtpd.Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, received
    controller.stop()


def test_mailto_sends_the_summary_and_the_results(srms, smtp_server: tuple[int, list[Message]], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port, received = smtp_server
    config = tmp_path / "config.toml"
    config.write_text(f'notify = ["mailto:ops@example.com"]\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
                      'from = "fhs-bulk@night.example"\n', encoding="utf-8")
    env = cli_env(tmp_path, srms, FHS_CONFIG=str(config))
    out = tmp_path / "r.csv"
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:3] + [NON_ODS[0]])), "--out", str(out), env=env)
    assert r.returncode == 1, r.stderr
    assert len(received) == 1
    msg = received[0]
    assert msg["To"] == "ops@example.com" and "exit 1" in msg["Subject"]
    parts = list(msg.walk())
    body = next(p for p in parts if p.get_content_type() == "text/plain" and not p.get_filename())
    assert "rejected 1" in body.get_payload(decode=True).decode()
    attached = next(p for p in parts if p.get_filename() == "r.csv")
    assert attached.get_payload(decode=True) == out.read_bytes()


def test_a_notify_setting_of_the_wrong_type_is_a_config_error(srms, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "config.toml"
    config.write_text("notify = 5\n", encoding="utf-8")
    r = run_cli("upload", str(order_sheet(tmp_path, GOOD[:1])), env=cli_env(tmp_path, srms, FHS_CONFIG=str(config)))
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert r.returncode == 2 and errors[0].endswith("[config]") and "Traceback" not in r.stderr
