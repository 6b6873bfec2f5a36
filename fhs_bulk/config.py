"""Where settings come from: command-line flags, then environment, then the config file.

Config file: ``$FHS_CONFIG`` or ``<user config dir>/fhs-bulk/config.toml``::

    [srms]
    url = "https://srms.example.net"
    token_file = "/etc/fhs-bulk/srms.token"   # or token = "..." (keep the file private)

    [upload]
    state_dir = "/var/lib/fhs-bulk"
"""

from __future__ import annotations

import errno
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhs_bulk.errors import ConfigError, DiskFull


def config_path() -> Path:
    env = os.environ.get("FHS_CONFIG")
    if env:
        return Path(env)
    from platformdirs import user_config_path

    return user_config_path("fhs-bulk", appauthor=False) / "config.toml"


def load_config(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.is_file():
        if os.environ.get("FHS_CONFIG"):
            raise ConfigError(f"FHS_CONFIG names {path}, which is not a file.", code="config")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc}).", code="config") from exc


def read_token_file(path: str | Path) -> str:
    p = Path(path).expanduser()
    try:
        token = p.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"token file {p}: cannot be read ({exc.strerror}).", code="token-file") from exc
    if not token:
        raise ConfigError(f"token file {p} is empty.", code="token-file")
    return token


@dataclass(frozen=True)
class SrmsSettings:
    url: str | None
    token: str | None = None

    def __repr__(self) -> str:  # never the token
        return f"SrmsSettings(url={self.url!r}, token={'***' if self.token else None})"


def srms_settings(url: str | None = None, token_file: str | None = None,
                  config: dict[str, Any] | None = None) -> SrmsSettings:
    """Flags beat environment, which beats the config file."""
    cfg = (config if config is not None else load_config()).get("srms", {})
    resolved_url = url or os.environ.get("FHS_SRMS_URL") or cfg.get("url") or None
    token: str | None
    if token_file:
        token = read_token_file(token_file)
    elif os.environ.get("FHS_SRMS_TOKEN"):
        token = os.environ["FHS_SRMS_TOKEN"].strip()
    elif os.environ.get("FHS_SRMS_TOKEN_FILE"):
        token = read_token_file(os.environ["FHS_SRMS_TOKEN_FILE"])
    elif cfg.get("token_file"):
        token = read_token_file(cfg["token_file"])
    else:
        token = cfg.get("token") or None
    if resolved_url and not token:
        raise ConfigError("SRMS is set (FHS_SRMS_URL or config) but no token is: set FHS_SRMS_TOKEN, "
                       "FHS_SRMS_TOKEN_FILE or --token-file.", code="no-token")
    return SrmsSettings(url=resolved_url.rstrip("/") if resolved_url else None, token=token)


def state_dir(flag: str | None = None, config: dict[str, Any] | None = None, *, create: bool = True) -> Path:
    """The state directory (ledger and lock): flag, FHS_STATE_DIR, config ``[upload] state_dir``, or the
    user's state directory."""
    cfg = (config if config is not None else load_config()).get("upload", {})
    chosen = flag or os.environ.get("FHS_STATE_DIR") or cfg.get("state_dir")
    if chosen:
        path = Path(chosen).expanduser()
    else:
        from platformdirs import user_state_path

        path = user_state_path("fhs-bulk", appauthor=False)
    return ensure_state_dir(path) if create else path


def ensure_state_dir(path: Path | None) -> Path:
    """Create the state directory private (0700, whatever the umask): the ledger holds order IDs."""
    if path is None:
        path = state_dir(create=False)
    try:
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(path, 0o700)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise DiskFull(f"state directory {path}: cannot be created: the disk is full. Free space there and "
                           "run the same command again.", code="disk-full", path=str(path)) from exc
        raise ConfigError(f"state directory {path}: cannot be created ({exc.strerror}).", code="state-dir") from exc
    return path
