"""A local Google Sheets + Drive API for the tests: the subset of the real protocol the tool uses, with
Google's shapes (checked against recorded responses in test_gsheets.py), grid limits, trimmed values,
Google's error body, and 403/404/429 on demand. Never a 401 (google-auth would try to refresh)."""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass
class Sheet:
    sheet_id: int
    title: str
    rows: int = 1000
    cols: int = 26
    values: list[list[str]] = field(default_factory=list)


@dataclass
class Book:
    key: str
    title: str
    sheets: list[Sheet]


class GoogleState:
    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.calls: list[tuple[str, str, dict]] = []  # (method, path, query)
        self.fail: dict[str, int] = {}  # key -> status to answer (403/404) every time
        self.fail_once: dict[str, int] = {}  # key -> status to answer once (429)
        self.writes: list[dict] = []
        self._next_id = 100

    def add(self, key: str, title: str, sheets: dict[str, list[list[str]]]) -> Book:
        book = Book(key, title, [])
        for name, values in sheets.items():
            self._next_id += 1
            book.sheets.append(Sheet(self._next_id, name, rows=max(1000, len(values)),
                                     cols=max([26] + [len(r) for r in values]), values=[list(r) for r in values]))
        self.books[key] = book
        return book

    def count(self, method: str | None = None) -> int:
        return sum(1 for m, _, _ in self.calls if method is None or m == method)


def error(code: int, message: str) -> JSONResponse:
    status = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}[code]
    return JSONResponse({"error": {"code": code, "message": message, "status": status}}, status_code=code)


def col_letter(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def parse_range(book: Book, a1: str) -> tuple[Sheet | None, int, int]:
    """(sheet, first row, first column) of an A1 range with an optionally quoted sheet name."""
    a1 = unquote(a1)
    m = re.fullmatch(r"(?:'((?:[^']|'')+)'|([^!]+?))(?:!([A-Z]+)?([0-9]+)?(?::[A-Z]*[0-9]*)?)?", a1)
    if not m:
        return None, 1, 1
    title = (m.group(1) or "").replace("''", "'") if m.group(1) is not None else m.group(2)
    sheet = next((s for s in book.sheets if s.title == title), None)
    col = col_number(m.group(3)) if m.group(3) else 1
    row = int(m.group(4)) if m.group(4) else 1
    return sheet, row, col


def trimmed(values: list[list[str]]) -> list[list[str]]:
    out = [list(r) for r in values]
    for r in out:
        while r and r[-1] == "":
            r.pop()
    while out and not out[-1]:
        out.pop()
    return out


def create_app(state: GoogleState) -> FastAPI:
    app = FastAPI()

    @app.middleware("http")
    async def record(request: Request, call_next: Any) -> Any:
        state.calls.append((request.method, request.url.path, dict(request.query_params)))
        m = re.match(r"/v4/spreadsheets/([^/:]+)", request.url.path)
        key = m.group(1) if m else None
        if key in state.fail:
            return error(state.fail[key], "The caller does not have permission" if state.fail[key] == 403
                         else "Requested entity was not found.")
        if key in state.fail_once:
            return error(state.fail_once.pop(key), "Quota exceeded for quota metric 'Read requests'")
        return await call_next(request)

    def book_or_404(key: str) -> Book | JSONResponse:
        book = state.books.get(key)
        return book if book else error(404, "Requested entity was not found.")

    def metadata(book: Book) -> dict:
        return {"spreadsheetId": book.key,
                "properties": {"title": book.title, "locale": "en_US", "autoRecalc": "ON_CHANGE",
                               "timeZone": "Asia/Calcutta"},
                "sheets": [{"properties": {"sheetId": s.sheet_id, "title": s.title, "index": i, "sheetType": "GRID",
                                           "gridProperties": {"rowCount": s.rows, "columnCount": s.cols}}}
                           for i, s in enumerate(book.sheets)],
                "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{book.key}/edit"}

    @app.get("/v4/spreadsheets/{key}")
    async def get_spreadsheet(key: str) -> Any:
        book = book_or_404(key)
        return book if isinstance(book, JSONResponse) else metadata(book)

    def write(book: Book, a1: str, values: list[list[Any]], option: str | None) -> dict | JSONResponse:
        sheet, row, col = parse_range(book, a1)
        if sheet is None:
            return error(400, f"Unable to parse range: {unquote(a1)}")
        if option not in ("RAW", "USER_ENTERED"):
            return error(400, "Invalid valueInputOption")
        height = len(values)
        width = max([len(r) for r in values] + [0])
        if row - 1 + height > sheet.rows or col - 1 + width > sheet.cols:
            return error(400, f"Range ('{sheet.title}'!{col_letter(col)}{row}) exceeds grid limits. Max rows: "
                              f"{sheet.rows}, max columns: {sheet.cols}")
        while len(sheet.values) < row - 1 + height:
            sheet.values.append([])
        for i, r in enumerate(values):
            target = sheet.values[row - 1 + i]
            while len(target) < col - 1 + len(r):
                target.append("")
            for j, v in enumerate(r):
                target[col - 1 + j] = "" if v is None else str(v)
        state.writes.append({"range": unquote(a1), "valueInputOption": option, "rows": height})
        end = f"{col_letter(col - 1 + max(width, 1))}{row - 1 + max(height, 1)}"
        return {"spreadsheetId": book.key, "updatedRange": f"'{sheet.title}'!{col_letter(col)}{row}:{end}",
                "updatedRows": height, "updatedColumns": width, "updatedCells": sum(len(r) for r in values)}

    @app.get("/v4/spreadsheets/{key}/values/{a1:path}")
    async def get_values(key: str, a1: str) -> Any:
        book = book_or_404(key)
        if isinstance(book, JSONResponse):
            return book
        sheet, _, _ = parse_range(book, a1)
        if sheet is None:
            return error(400, f"Unable to parse range: {unquote(a1)}")
        out = {"range": f"'{sheet.title}'!A1:{col_letter(sheet.cols)}{sheet.rows}", "majorDimension": "ROWS"}
        values = trimmed(sheet.values)
        if values:
            out["values"] = values
        return out

    @app.put("/v4/spreadsheets/{key}/values/{a1:path}")
    async def put_values(key: str, a1: str, request: Request) -> Any:
        book = book_or_404(key)
        if isinstance(book, JSONResponse):
            return book
        body = await request.json()
        result = write(book, a1, body.get("values", []), request.query_params.get("valueInputOption"))
        return result

    @app.post("/v4/spreadsheets/{key}/values/{a1:path}")
    async def append_values(key: str, a1: str, request: Request) -> Any:
        book = book_or_404(key)
        if isinstance(book, JSONResponse):
            return book
        if not a1.endswith(":append"):
            return error(404, "Not found")
        sheet, _, _ = parse_range(book, a1[: -len(":append")])
        if sheet is None:
            return error(400, "Unable to parse range")
        body = await request.json()
        start = len(trimmed(sheet.values)) + 1
        updates = write(book, f"'{sheet.title}'!A{start}", body.get("values", []),
                        request.query_params.get("valueInputOption"))
        if isinstance(updates, JSONResponse):
            return updates
        return {"spreadsheetId": book.key, "tableRange": f"'{sheet.title}'!A1", "updates": updates}

    @app.post("/v4/spreadsheets/{key}/values:batchUpdate")
    async def batch_update_values(key: str, request: Request) -> Any:
        book = book_or_404(key)
        if isinstance(book, JSONResponse):
            return book
        body = await request.json()
        responses = []
        for item in body.get("data", []):
            r = write(book, item["range"], item.get("values", []), body.get("valueInputOption"))
            if isinstance(r, JSONResponse):
                return r
            responses.append(r)
        return {"spreadsheetId": key, "totalUpdatedRows": sum(r["updatedRows"] for r in responses),
                "totalUpdatedCells": sum(r["updatedCells"] for r in responses), "responses": responses}

    @app.post("/v4/spreadsheets/{key}:batchUpdate")
    async def batch_update(key: str, request: Request) -> Any:
        book = book_or_404(key)
        if isinstance(book, JSONResponse):
            return book
        body = await request.json()
        replies: list[dict] = []
        for req in body.get("requests", []):
            if "addSheet" in req:
                props = req["addSheet"].get("properties", {})
                if any(s.title == props.get("title") for s in book.sheets):
                    return error(400, f"Invalid requests[0].addSheet: A sheet with the name \"{props['title']}\" "
                                      "already exists. Please enter another name.")
                state._next_id += 1
                grid = props.get("gridProperties", {})
                sheet = Sheet(state._next_id, props["title"], grid.get("rowCount", 1000), grid.get("columnCount", 26))
                book.sheets.append(sheet)
                replies.append({"addSheet": {"properties": {
                    "sheetId": sheet.sheet_id, "title": sheet.title, "index": len(book.sheets) - 1,
                    "sheetType": "GRID", "gridProperties": {"rowCount": sheet.rows, "columnCount": sheet.cols}}}})
            elif "updateSheetProperties" in req:
                props = req["updateSheetProperties"]["properties"]
                sheet = next((s for s in book.sheets if s.sheet_id == props.get("sheetId")), None)
                if sheet is None:
                    return error(400, "No grid with id")
                grid = props.get("gridProperties", {})
                sheet.rows = grid.get("rowCount", sheet.rows)
                sheet.cols = grid.get("columnCount", sheet.cols)
                sheet.values = [r[: sheet.cols] for r in sheet.values[: sheet.rows]]
                replies.append({})
            elif "deleteSheet" in req:
                book.sheets = [s for s in book.sheets if s.sheet_id != req["deleteSheet"]["sheetId"]]
                replies.append({})
            else:
                return error(400, f"unsupported request {list(req)}")
        return {"spreadsheetId": key, "replies": replies}

    @app.get("/drive/v3/files")
    async def list_files(q: str = "") -> Any:
        m = re.search(r'name = "((?:[^"\\]|\\.)*)"', q)
        title = m.group(1) if m else None
        files = [{"kind": "drive#file", "id": b.key, "name": b.title, "mimeType":
                  "application/vnd.google-apps.spreadsheet", "createdTime": "2026-11-01T10:00:00.000Z",
                  "modifiedTime": "2026-11-24T10:00:00.000Z"}
                 for b in state.books.values() if title is None or b.title == title]
        return {"kind": "drive#fileList", "incompleteSearch": False, "files": files}

    return app


class LocalGoogle:
    """The app on a free loopback port, in a background thread."""

    def __init__(self) -> None:
        import uvicorn

        self.state = GoogleState()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(self.state), log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(5)
