"""Google Sheets, through gspread: the only module that knows about Google.

Sources: a ``https://docs.google.com/spreadsheets/d/KEY/...`` URL (``#gid=`` picks a worksheet), a
bare key, or ``gsheet:TITLE`` / ``gsheet:TITLE/WORKSHEET`` (found through Drive by title). Reads are
one values request per worksheet (formatted values, as the user sees them); writes are one batched
values update with ``valueInputOption=RAW``, so no text ever becomes a formula.

For tests and emulators, ``FHS_GOOGLE_API_BASE`` (e.g. ``http://127.0.0.1:8765``) sends every call to
that base URL instead of Google's hosts, authenticated with the static token ``FHS_GOOGLE_TOKEN``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fhs_bulk.errors import FhsError, GoogleError, SheetError
from fhs_bulk.sheets.columns import column_letter
from fhs_bulk.sheets.ref import GoogleRef

GOOGLE_HOSTS = ("https://sheets.googleapis.com", "https://www.googleapis.com")
SCOPES = ["https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive.readonly"]


def _http_client_class() -> Any:
    from gspread.http_client import BackOffHTTPClient

    base = os.environ.get("FHS_GOOGLE_API_BASE", "").rstrip("/")

    class FhsHTTPClient(BackOffHTTPClient):
        """gspread's client with quota back-off (429) kept short, and Google's hosts rewritten to
        FHS_GOOGLE_API_BASE when it is set."""

        _MAX_BACKOFF = 16

        def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
            if base:
                for host in GOOGLE_HOSTS:
                    if endpoint.startswith(host):
                        endpoint = base + endpoint[len(host):]
                        break
            return super().request(method, endpoint, *args, **kwargs)

    return FhsHTTPClient


def _credentials(credentials_file: str | None) -> tuple[Any, str | None]:
    """(credentials, service account email or None), in the order the gspread ecosystem uses."""
    if os.environ.get("FHS_GOOGLE_API_BASE"):
        from google.oauth2.credentials import Credentials

        return Credentials(token=os.environ.get("FHS_GOOGLE_TOKEN", "test")), None
    path = credentials_file or os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if path:
        from google.oauth2.service_account import Credentials as ServiceAccount

        p = Path(path).expanduser()
        try:
            creds = ServiceAccount.from_service_account_file(str(p), scopes=SCOPES)
        except FileNotFoundError:
            raise GoogleError(f"Google credentials file {p} does not exist; pass --credentials FILE or set "
                           "GOOGLE_APPLICATION_CREDENTIALS to a service account JSON key.", code="google-credentials"
                           ) from None
        except (OSError, ValueError, KeyError) as exc:
            raise GoogleError(f"Google credentials file {p} cannot be used ({type(exc).__name__}): it must be a "
                           "service account JSON key from the Google Cloud console.", code="google-credentials"
                           ) from None
        return creds, creds.service_account_email
    try:
        import gspread

        client = gspread.oauth(scopes=SCOPES)
        return client.http_client.auth, None
    except Exception as exc:
        raise GoogleError(f"no Google credentials: pass --credentials FILE (service account JSON) or set "
                       f"GOOGLE_APPLICATION_CREDENTIALS ({type(exc).__name__}).", code="google-credentials") from None


class Google:
    """An authorised gspread client with the tool's error messages."""

    def __init__(self, credentials_file: str | None = None) -> None:
        import gspread

        creds, self.email = _credentials(credentials_file)
        self.client = gspread.Client(auth=creds, http_client=_http_client_class())

    def _explain(self, exc: Exception, ref: GoogleRef) -> FhsError:
        import gspread

        code = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, gspread.exceptions.SpreadsheetNotFound) or code == 404:
            return SheetError(f"{ref}: no such Google spreadsheet (check the URL or key, or the title).",
                              code="google-not-found", path=str(ref))
        if isinstance(exc, PermissionError) or code == 403:
            who = self.email or "the account you signed in with"
            return SheetError(f"{ref}: access denied; share the sheet with {who}.", code="google-forbidden",
                              path=str(ref))
        if code == 429:
            return GoogleError(f"{ref}: Google's quota is exhausted even after backing off; try again in a minute.",
                            code="google-quota")
        return GoogleError(f"{ref}: Google Sheets answered {code or type(exc).__name__}: {str(exc)[:200]}",
                        code="google-error")

    def open(self, ref: GoogleRef) -> Any:
        import gspread

        try:
            if ref.key:
                return self.client.open_by_key(ref.key)
            files = self.client.list_spreadsheet_files(title=ref.title)
            matches = [f for f in files if f.get("name") == ref.title]
            if not matches:
                raise SheetError(f"gsheet:{ref.title}: no spreadsheet with that title is shared with "
                                 f"{self.email or 'this account'}.", code="google-not-found", path=str(ref))
            if len(matches) > 1:
                keys = ", ".join(f["id"] for f in matches)
                raise SheetError(f"gsheet:{ref.title}: {len(matches)} spreadsheets have that title ({keys}); "
                                 "name one by its key or URL.", code="google-ambiguous", path=str(ref))
            return self.client.open_by_key(matches[0]["id"])
        except (gspread.exceptions.GSpreadException, PermissionError) as exc:
            raise self._explain(exc, ref) from None

    def read(self, ref: GoogleRef) -> tuple[str, str, list[list[str]]]:
        """(spreadsheet title, worksheet title, rows of formatted values): one values request."""
        import gspread

        sh = self.open(ref)
        try:
            if ref.gid is not None:
                ws = sh.get_worksheet_by_id(ref.gid)
            elif ref.worksheet:
                ws = sh.worksheet(ref.worksheet)
            else:
                ws = sh.get_worksheet(0)
            if ws is None:
                raise gspread.exceptions.WorksheetNotFound(ref.worksheet or str(ref.gid))
            data = sh.values_get(quote_title(ws.title), params={"valueRenderOption": "FORMATTED_VALUE"})
        except gspread.exceptions.WorksheetNotFound:
            raise SheetError(f"{ref}: no worksheet {ref.worksheet or ref.gid} in '{sh.title}'.",
                             code="google-not-found", path=str(ref)) from None
        except gspread.exceptions.GSpreadException as exc:
            raise self._explain(exc, ref) from None
        return sh.title, ws.title, data.get("values", [])

    def write_cells(self, ref: GoogleRef, worksheet: str, cells: dict[tuple[int, int], str], *, rows: int,
                    cols: int, quote: Any = None) -> None:
        """Set individual cells (row, column: 1-based) in one batched RAW write, growing the grid first
        when the cells reach beyond it."""
        import gspread

        sh = self.open(ref)
        try:
            ws = sh.worksheet(worksheet)
            if rows > ws.row_count or cols > ws.col_count:
                sh.batch_update({"requests": [{"updateSheetProperties": {
                    "properties": {"sheetId": ws.id, "gridProperties": {
                        "rowCount": max(rows, ws.row_count), "columnCount": max(cols, ws.col_count)}},
                    "fields": "gridProperties(rowCount,columnCount)"}}]})
            sh.values_batch_update({"valueInputOption": "RAW", "data": _runs(cells, quote or quote_title, worksheet)})
        except gspread.exceptions.GSpreadException as exc:
            raise self._explain(exc, ref) from None

    def write(self, ref: GoogleRef, worksheet: str, columns: list[str], rows: list[list[Any]]) -> str:
        """Replace (or create) ``worksheet`` with the table, sized to fit, in one RAW values write."""
        import gspread

        sh = self.open(ref)
        values = [list(columns)] + [["" if v is None else str(v) for v in r] for r in rows]
        n_rows, n_cols = len(values), max(len(columns), 1)
        try:
            try:
                ws = sh.worksheet(worksheet)
                sh.batch_update({"requests": [{"updateSheetProperties": {
                    "properties": {"sheetId": ws.id, "gridProperties": {"rowCount": n_rows, "columnCount": n_cols}},
                    "fields": "gridProperties(rowCount,columnCount)"}}]})  # the write below fills every cell
            except gspread.exceptions.WorksheetNotFound:
                sh.add_worksheet(worksheet, rows=n_rows, cols=n_cols)
            sh.values_batch_update({"valueInputOption": "RAW",
                                    "data": [{"range": f"{quote_title(worksheet)}!A1", "values": values}]})
        except gspread.exceptions.GSpreadException as exc:
            raise self._explain(exc, ref) from None
        return f"{sh.title}/{worksheet}"


def _runs(cells: dict[tuple[int, int], str], quote: Any, worksheet: str) -> list[dict]:
    """Contiguous vertical runs of cells, as value ranges: few ranges for many cells."""
    out = []
    by_col: dict[int, list[int]] = {}
    for r, c in cells:
        by_col.setdefault(c, []).append(r)
    for c, rows in sorted(by_col.items()):
        rows.sort()
        start: int = rows[0]
        prev: int = rows[0]
        nxt: list[int | None] = [*rows[1:], None]
        for nr in nxt:
            if nr is not None and nr == prev + 1:
                prev = nr
                continue
            letter = column_letter(c)
            out.append({"range": f"{quote(worksheet)}!{letter}{start}:{letter}{prev}",
                        "values": [[cells[(i, c)]] for i in range(start, prev + 1)]})
            if nr is not None:
                start = nr
                prev = nr
    return out


def quote_title(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"
