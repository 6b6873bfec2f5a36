"""Shared fixtures: a real `fhs-bulk srms serve` subprocess on a free loopback port, and the CLI run
as a real process with an isolated state directory."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from fhs_bulk import domain
from fhs_bulk.srms.mock import catalogue

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
TOKEN = "test-token-0123456789abcdef"

# Shared test data: orders of the bundled catalogue by what SRMS will answer for them.
CAT = catalogue.load(catalogue.bundled_path())
GOOD = [r["fk_order_id"] for r in CAT if r["fsn"].startswith("ODS") and domain.eligible_service(r["service"])]
NON_ODS = [r["fk_order_id"] for r in CAT if not r["fsn"].startswith("ODS")]
INELIGIBLE = [r["fk_order_id"] for r in CAT if r["fsn"].startswith("ODS") and not domain.eligible_service(r["service"])]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run the slow crash and soak tests (CI does)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The default run leaves the slow tests out; --slow, or any -m expression, decides otherwise."""
    if config.getoption("--slow") or config.option.markexpr:
        return
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def order_sheet(tmp_path: Path, ids: list[str], extra: list[list[str]] | None = None) -> Path:
    p = tmp_path / "FK_ODS_ORDER_CREATE.csv"
    with open(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["fk_order_id", "remarks"])
        for i in ids:
            w.writerow([i, ""])
        for row in extra or []:
            w.writerow(row)
    return p


def read_results(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))




def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    db: Path
    token: str = TOKEN
    args: list[str] = field(default_factory=list)
    catalogue: Path | None = None
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.port = self.port or free_port()
        cmd = [sys.executable, "-m", "fhs_bulk", "srms", "serve", "--port", str(self.port), "--db", str(self.db),
               *self.args]
        if self.catalogue:
            cmd += ["--catalogue", str(self.catalogue)]
        env = dict(os.environ, FHS_SRMS_TOKEN=self.token)
        self.log = self.db.with_suffix(".log")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"srms serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("srms serve did not come up")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def restart(self, *args: str) -> Server:
        self.stop()
        if args:
            self.args = list(args)
        return self.start()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30)


@pytest.fixture
def srms_factory(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def make(*args: str, catalogue: Path | None = None, db: Path | None = None) -> Server:
        srv = Server(db=db or tmp_path / f"srms{len(servers)}.sqlite", args=list(args), catalogue=catalogue)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        srv.stop(signal.SIGKILL)


@pytest.fixture
def srms(srms_factory) -> Server:  # type: ignore[no-untyped-def]
    return srms_factory()


def cli_env(tmp_path: Path, server: Server | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHS_")}
    env.update(FHS_STATE_DIR=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "xdg-data"),
               XDG_CONFIG_HOME=str(tmp_path / "xdg-config"), XDG_STATE_HOME=str(tmp_path / "xdg-state"))
    if server is not None:
        env.update(FHS_SRMS_URL=server.url, FHS_SRMS_TOKEN=server.token)
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 300, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fhs_bulk", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
