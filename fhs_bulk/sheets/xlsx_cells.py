"""Setting text cells of an existing xlsx by rewriting only the worksheet's XML part.

openpyxl loads and saves a whole workbook (about 9 s each way for a 100,000-row tracker); a tracker
write only changes a few columns. This rewrites the rows that change and copies every other byte of
the worksheet, and every other part of the package, unchanged, so formatting, other sheets, filters,
frozen panes and columns the tool does not own stay exactly as they were.

It handles the worksheets Excel, LibreOffice, Google Sheets and openpyxl write. Anything else (a
namespace prefix, a row or cell without its reference, a formula in a cell to be overwritten) makes
``set_cells`` return False without writing, and the caller falls back to openpyxl.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from fhs_bulk.sheets.columns import column_letter, column_number

_ROW = re.compile(rb"<row\b([^>]*?)(/>|>(.*?)</row>)", re.S)
_CELL = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_ATTR_R = re.compile(rb'\br="([A-Z]+)?([0-9]+)"')
_CELL_HEAD = re.compile(rb'r="([A-Z]+)[0-9]+"([^>]*)>')  # a cell after its '<c ', as known writers put it
_ATTR_S = re.compile(rb'\bs="([0-9]+)"')
_SPANS = re.compile(rb'\s+spans="[^"]*"')
_DIMENSION = re.compile(rb'<dimension ref="([A-Z]+)([0-9]+)(?::([A-Z]+)([0-9]+))?"\s*/>')
_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
# Every <si> entry; the group holds its text when the entry is one plain <t>.
_SI_TEXT = re.compile(rb'<si\b[^>]*?(?:/>|>(?:<t(?: xml:space="preserve")?>([^<]*)</t>(?=</si>))?.*?</si>)', re.S)
_EMPTY_SST = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
              b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"></sst>')
_SST_TYPE = b"http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
_SST_CONTENT = b"application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"


def worksheet_part(zf: zipfile.ZipFile, name: str | None) -> str | None:
    """The zip path of the worksheet called ``name`` (None: the first worksheet)."""
    try:
        workbook = zf.read("xl/workbook.xml")
        rels = zf.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    for m in re.finditer(rb"<(?:\w+:)?sheet\b[^>]*>", workbook):
        tag = m.group(0)
        title = re.search(rb'name="([^"]*)"', tag)
        rid = re.search(rb'r:id="([^"]+)"', tag)
        if not title or not rid or (name is not None and _unescape(title.group(1).decode()) != name):
            continue
        for rel in re.finditer(rb"<Relationship\b[^>]*>", rels):
            if re.search(rb'\bId="' + re.escape(rid.group(1)) + rb'"', rel.group(0)):
                target = re.search(rb'Target="([^"]+)"', rel.group(0))
                if target:
                    t = target.group(1).decode()
                    return t.lstrip("/") if t.startswith("/") else "xl/" + t
    return None


def _unescape(text: str) -> str:
    return (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&apos;", "'")
            .replace("&amp;", "&"))


def _cell_xml(ref: bytes, value: str, style: bytes | None, strings: SharedStrings | None = None) -> bytes:
    s_attr = b' s="' + style + b'"' if style else b""
    if value == "":
        return b'<c r="' + ref + b'"' + s_attr + b"/>" if style else b""
    if strings is not None:
        return b'<c r="' + ref + b'"' + s_attr + b' t="s"><v>' + strings.index(value) + b"</v></c>"
    return b'<c r="' + ref + b'"' + s_attr + _inline_text(value)


class SharedStrings:
    """The workbook's shared-string table, with the texts this edit adds appended (existing entries are
    never touched, so every cell already pointing into the table keeps its text). A cell then holds an
    index (~25 bytes) instead of its text inline, and a value repeated on 100,000 rows is stored once."""

    def __init__(self, xml: bytes = _EMPTY_SST) -> None:
        self.xml = xml
        # One findall over the table (a tracker's IDs make it 200,000 entries): each entry's text as
        # stored (escaped) when it is plain, else None. Plain entries are reused, looked up by the
        # text escaped as this module writes it (an entry escaped otherwise is only not reused).
        texts = _SI_TEXT.findall(xml)
        self.base = len(texts)
        self.existing: dict[bytes, bytes] = {}
        for i in range(len(texts) - 1, -1, -1):  # backwards: the first of equal entries wins
            if texts[i]:
                self.existing[texts[i]] = str(i).encode()
        self.added: dict[str, bytes] = {}

    @classmethod
    def usable(cls, xml: bytes) -> bool:
        return b"<sst" in xml and not re.search(rb"<\w+:sst\b", xml)

    def index(self, value: str) -> bytes:
        found = self.added.get(value) or self.existing.get(escape(_ILLEGAL.sub("", value)).encode("utf-8"))
        if found is None:
            found = self.added[value] = str(self.base + len(self.added)).encode()
        return found

    def patched(self) -> bytes:
        if not self.added:
            return self.xml
        items = b"".join(b"<si>" + _text_element(v) + b"</si>" for v in self.added)
        start = self.xml.index(b"<sst")
        end = self.xml.index(b">", start) + 1
        # count and uniqueCount are optional; the old values would now be wrong, so they go.
        tag = re.sub(rb'\s(?:count|uniqueCount)="[^"]*"', b"", self.xml[start:end])
        if tag.endswith(b"/>"):  # an empty table: <sst .../>
            return self.xml[:start] + tag[:-2].rstrip() + b">" + items + b"</sst>" + self.xml[end:]
        close = self.xml.rindex(b"</sst>")
        return self.xml[:start] + tag + self.xml[end:close] + items + self.xml[close:]


@lru_cache(maxsize=65536)  # the values a tool column takes repeat row after row (statuses, dates, "no")
def _text_element(value: str) -> bytes:
    clean = _ILLEGAL.sub("", value)
    text = escape(clean).encode("utf-8")
    # xml:space="preserve" only where spacing would otherwise be lost: most cells skip its 21 bytes.
    keep = clean != clean.strip() or "  " in clean or "\n" in clean or "\t" in clean
    return b"<t" + (b' xml:space="preserve">' if keep else b">") + text + b"</t>"


def _inline_text(value: str) -> bytes:
    return b' t="inlineStr"><is>' + _text_element(value) + b"</is></c>"


@lru_cache(maxsize=1024)
def _letters(column: int) -> bytes:
    return column_letter(column).encode()


class _Cells:
    """Cell XML for one edit: what follows a cell's reference depends only on its text and style, and
    a tool column repeats a few texts row after row, so each (text, style) is rendered once."""

    def __init__(self, strings: SharedStrings | None) -> None:
        self.strings = strings
        self._tails: dict[tuple[str, bytes | None], bytes] = {}

    def __call__(self, ref: bytes, value: str, style: bytes | None) -> bytes:
        tail = self._tails.get((value, style))
        if tail is None:
            whole = _cell_xml(b"", value, style, self.strings)
            tail = self._tails[(value, style)] = whole[len(b'<c r="'):] if whole else b""
        return b'<c r="' + ref + tail if tail else b""


def _row_cells(body: bytes) -> dict[int, tuple[bytes, bytes, int]] | None:
    """A row's cells by column: (the cell's XML, its attributes after r=, where its content starts in
    its XML). The row is cut at each '<c ' (C speed); a body laid out otherwise is scanned."""
    if not body:
        return {}
    parts = body.split(b"<c ")
    cells: dict[int, tuple[bytes, bytes, int]] = {}
    if not parts[0].strip():
        for part in parts[1:]:
            m = _CELL_HEAD.match(part)
            if m is None:
                break
            cells[column_number(m.group(1))] = (b"<c " + part, m.group(2), m.end() + 3)
        else:
            return cells
    cells = {}
    for m in _CELL.finditer(body):
        ref = _ATTR_R.search(m.group(1))
        if not ref or not ref.group(1):
            return None
        whole = m.group(0)
        cells[column_number(ref.group(1))] = (whole, m.group(1), m.start(2) - m.start() if m.group(2) else len(whole))
    return cells


def _patch_row(attrs: bytes, body: bytes, row: int, changes: dict[int, str], cell: _Cells) -> bytes | None:
    cells = _row_cells(body)
    if cells is None:
        return None
    styles: dict[int, bytes | None] = {}
    for col in cells.keys() & changes.keys():  # cells replaced: keep their style, never a formula
        whole, cell_attrs, content = cells[col]
        if b"<f" in whole[content:]:
            return None
        found = _ATTR_S.search(cell_attrs)
        styles[col] = found.group(1) if found else None
    number = str(row).encode()
    style = styles.get
    out = {col: c[0] for col, c in cells.items()}
    out.update({col: cell(_letters(col) + number, value, style(col)) for col, value in changes.items()})
    if b"spans=" in attrs:
        attrs = _SPANS.sub(b"", attrs)
    return b"<row" + attrs + b">" + b"".join([out[col] for col in sorted(out)]) + b"</row>"


def _patch_rows(data: bytes, by_row: dict[int, dict[int, str]], cell: _Cells) -> list[bytes] | None:
    """The rows with the changes: cut at each '<row ' (C speed), only the changed ones parsed, new
    rows in their place. None when the rows are not laid out so (``_scan_rows`` then)."""
    parts = data.split(b"<row ")
    if parts[0].strip():
        return None
    out = [parts[0]]
    pending = sorted(by_row)
    i = 0
    for part in parts[1:]:
        gt = part.find(b">")
        ref = _ATTR_R.search(part, 0, gt) if gt > 0 else None
        if ref is None:
            return None
        row = int(ref.group(2))
        while i < len(pending) and pending[i] < row:  # new rows before this one
            out.append(_new_row(pending[i], by_row[pending[i]], cell))
            i += 1
        if i < len(pending) and pending[i] == row:
            if part[gt - 1:gt] == b"/":  # <row .../>: no cells yet
                attrs, body, rest = b" " + part[:gt - 1], b"", part[gt + 1:]
            else:
                close = part.rfind(b"</row>")
                if close < 0:
                    return None
                attrs, body, rest = b" " + part[:gt], part[gt + 1:close], part[close + 6:]
            if rest.strip():
                return None
            patched = _patch_row(attrs, body, row, by_row[row], cell)
            if patched is None:
                return None
            out.append(patched + rest)
            i += 1
        else:
            out.append(b"<row " + part)
    out.extend(_new_row(r, by_row[r], cell) for r in pending[i:])
    return out


def _scan_rows(data: bytes, by_row: dict[int, dict[int, str]], cell: _Cells) -> list[bytes] | None:
    """``_patch_rows`` by a scan of the XML, for rows laid out otherwise (whitespace inside tags)."""
    out: list[bytes] = []
    pos = 0
    pending = sorted(by_row)
    i = 0
    for m in _ROW.finditer(data):
        ref = _ATTR_R.search(m.group(1))
        if not ref:
            return None
        row = int(ref.group(2))
        while i < len(pending) and pending[i] < row:  # new rows before this one
            out.append(data[pos:m.start()])
            pos = m.start()
            out.append(_new_row(pending[i], by_row[pending[i]], cell))
            i += 1
        if i < len(pending) and pending[i] == row:
            patched = _patch_row(m.group(1), m.group(3) or b"", row, by_row[row], cell)
            if patched is None:
                return None
            out.append(data[pos:m.start()])
            out.append(patched)
            pos = m.end()
            i += 1
    out.append(data[pos:])
    out.extend(_new_row(r, by_row[r], cell) for r in pending[i:])
    return out


def by_row(cells: dict[tuple[int, int], str]) -> dict[int, dict[int, str]]:
    """(row, column) -> text, as row -> column -> text."""
    rows: dict[int, dict[int, str]] = {}
    for (r, c), v in cells.items():
        rows.setdefault(r, {})[c] = v
    return rows


def patch_sheet_xml(xml: bytes, cells: dict[tuple[int, int], str],
                    strings: SharedStrings | None = None) -> bytes | None:
    return patch_sheet_rows(xml, by_row(cells), strings)


def patch_sheet_rows(xml: bytes, by_row: dict[int, dict[int, str]],
                     strings: SharedStrings | None = None) -> bytes | None:
    """The worksheet XML with ``by_row`` (row -> column -> text, 1-based) written; None when the
    XML is not one this writer handles."""
    if b"<sheetData" not in xml or re.search(rb"<\w+:sheetData\b", xml):
        return None
    if not by_row:
        return xml
    start = xml.index(b"<sheetData")
    open_end = xml.index(b">", start) + 1
    if xml[open_end - 2: open_end] == b"/>":  # an empty <sheetData/>
        head, data, tail = xml[:start] + b"<sheetData>", b"", b"</sheetData>" + xml[open_end:]
    else:
        close = xml.index(b"</sheetData>", open_end)
        head, data, tail = xml[:open_end], xml[open_end:close], xml[close:]
    cell = _Cells(strings)
    out = _patch_rows(data, by_row, cell)
    if out is None:
        out = _scan_rows(data, by_row, cell)
    if out is None:
        return None
    return _grow_dimension(head + b"".join(out) + tail, max(by_row), max(max(c) for c in by_row.values()))


def _new_row(row: int, changes: dict[int, str], cell: _Cells) -> bytes:
    number = str(row).encode()
    body = b"".join(cell(_letters(c) + number, v, None) for c, v in sorted(changes.items()))
    return b'<row r="' + number + b'">' + body + b"</row>"


def _grow_dimension(xml: bytes, max_row: int, max_col: int) -> bytes:
    m = _DIMENSION.search(xml)
    if not m:
        return xml
    last_col = column_number(m.group(3) or m.group(1))
    last_row = int(m.group(4) or m.group(2))
    ref = f"{m.group(1).decode()}{m.group(2).decode()}:{column_letter(max(last_col, max_col))}{max(last_row, max_row)}"
    return xml[:m.start()] + f'<dimension ref="{ref}"/>'.encode() + xml[m.end():]


def shared_strings_part(zf: zipfile.ZipFile) -> str | None:
    """The zip path of the workbook's shared-string table, if it has one."""
    try:
        rels = zf.read("xl/_rels/workbook.xml.rels")
    except KeyError:
        return None
    for rel in re.finditer(rb"<Relationship\b[^>]*>", rels):
        if re.search(rb'Type="[^"]*/sharedStrings"', rel.group(0)):
            target = re.search(rb'Target="([^"]+)"', rel.group(0))
            if target:
                t = target.group(1).decode()
                return t.lstrip("/") if t.startswith("/") else "xl/" + t
    return None


def set_cells(path: str | Path, worksheet: str, cells: dict[tuple[int, int], str], out: str | Path) -> bool:
    """Write ``cells`` ((row, column) 1-based -> text) into ``worksheet`` of ``path``, saving to ``out``.
    Texts go into the workbook's shared-string table when it has one (else inline). Returns False,
    writing nothing, when the file is not one this writer handles."""
    return set_rows(path, worksheet, by_row(cells), out)


def set_rows(path: str | Path, worksheet: str, rows: dict[int, dict[int, str]], out: str | Path) -> bool:
    """``set_cells`` with the cells given as row -> column -> text."""
    with zipfile.ZipFile(path) as zin:
        names = set(zin.namelist())
        part = worksheet_part(zin, worksheet)
        if part is None or part not in names:
            return False
        sst_part = shared_strings_part(zin)
        strings: SharedStrings | None = None
        created: dict[str, bytes] = {}  # package parts changed to add a shared-string table
        if sst_part in names:
            sst_xml = zin.read(sst_part)
            strings = SharedStrings(sst_xml) if SharedStrings.usable(sst_xml) else None
        elif sst_part is None and "xl/sharedStrings.xml" not in names:
            created = _add_shared_strings(zin)
            if created:
                sst_part, strings = "xl/sharedStrings.xml", SharedStrings()
        patched = patch_sheet_rows(zin.read(part), rows, strings)
        if patched is None:
            return False
        # Level 3: a third of the time of level 6 on a large worksheet, for a file ~13% larger.
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
            for info in zin.infolist():
                if info.filename == part:
                    data = patched
                elif strings is not None and info.filename == sst_part:
                    data = strings.patched()
                else:
                    data = created.get(info.filename) or zin.read(info.filename)
                zout.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=3)
            if created and strings is not None:
                zout.writestr("xl/sharedStrings.xml", strings.patched(), compress_type=zipfile.ZIP_DEFLATED,
                              compresslevel=3)
    return True


def _add_shared_strings(zin: zipfile.ZipFile) -> dict[str, bytes]:
    """The workbook relationships and content types with a shared-string table added (a workbook without
    one, as openpyxl writes); empty when either part is not as expected (the cells then go inline)."""
    try:
        rels = zin.read("xl/_rels/workbook.xml.rels")
        types = zin.read("[Content_Types].xml")
    except KeyError:
        return {}
    if rels.count(b"</Relationships>") != 1 or types.count(b"</Types>") != 1 or b'Id="rIdFhsSst"' in rels:
        return {}
    rel = b'<Relationship Id="rIdFhsSst" Type="' + _SST_TYPE + b'" Target="sharedStrings.xml"/>'
    override = b'<Override PartName="/xl/sharedStrings.xml" ContentType="' + _SST_CONTENT + b'"/>'
    return {"xl/_rels/workbook.xml.rels": rels.replace(b"</Relationships>", rel + b"</Relationships>"),
            "[Content_Types].xml": types.replace(b"</Types>", override + b"</Types>")}


# ---------------------------------------------------------------- reading a few columns, for a head start

_INLINE_T = re.compile(rb"<t\b[^>]*>([^<]*)</t>")
_PHONETIC = re.compile(rb"<rPh\b.*?</rPh>", re.S)
_V = re.compile(rb"<v>([^<]*)</v>")
_SI = re.compile(rb"<si\b[^>]*?(?:/>|>(.*?)</si>)", re.S)
_KIND = re.compile(rb'\bt="(\w+)"')


def _plain(text: bytes) -> str:
    """A <t> run's bytes as text, stripped."""
    return (_unescape(text.decode()) if b"&" in text else text.decode()).strip()


def _entry_text(body: bytes) -> str:
    """The text of an inline string or shared-string entry: its <t> runs, phonetic guides left out."""
    return _plain(b"".join(_INLINE_T.findall(_PHONETIC.sub(b"", body))))


def key_runs(path: str | Path, required: tuple[str, ...], key_columns: tuple[str, ...], *,
             search_rows: int = 10) -> Iterator[list[str]] | None:
    """Each data row's key, in row order: the first non-blank of the ``key_columns`` cells (stripped
    text), rows without one left out; from the first worksheet, below its header row (``find_header``
    over its first ``search_rows`` rows, as the workbook's real read finds it), straight from the
    worksheet XML with no other column read. The keys come a piece at a time (~1 MB of XML, ~2,000
    tracker rows) as the worksheet is decompressed, so a caller can act on the first rows while the
    rest is still being read.

    A head start, not the reading of record: it takes the text cells known writers produce (an inline
    string or a shared one, ``r`` the first attribute) and leaves out any other cell. None when the
    worksheet is not laid out that way or larger than READ_AHEAD_BYTES (known from the first piece); a
    failure further on raises from the iterator, and the caller drops what it had and relies on the
    real read, which says what is wrong."""
    try:
        return _key_runs(path, required, key_columns, search_rows)
    except Exception:  # a head start only: never the error a user sees
        return None


READ_AHEAD_BYTES = 256 << 20  # the largest worksheet XML read ahead (100,000 tracker rows: ~45 MB)
PIECE_BYTES = 1 << 20  # worksheet XML decompressed at a time; the header must lie in the first piece


def _key_runs(path: str | Path, required: tuple[str, ...], key_columns: tuple[str, ...],
              search_rows: int) -> Iterator[list[str]] | None:
    zf = zipfile.ZipFile(path)
    try:
        opened = _open_keys(zf, required, key_columns, search_rows)
    except BaseException:
        zf.close()
        raise
    if opened is None:
        zf.close()
        return None
    stream, first, (pattern, letters, header_row, texts) = opened

    def keys_in(xml: bytes, end: int) -> list[str]:
        found = pattern.findall(xml, 0, end)  # (column letters, row, inline text, shared-string index)
        if not found:
            return []
        values = texts([cell[1:] for cell in found])
        keys: dict[int, str] = {}  # row -> key: a higher priority column's non-blank text overwrites
        for letter in reversed(letters):
            keys.update((int(cell[1]), value) for cell, value in zip(found, values, strict=True)
                        if value and cell[0] == letter)
        return [keys[row] for row in sorted(keys) if row > header_row]

    def runs() -> Iterator[list[str]]:
        with zf, stream:
            pending = first
            while True:
                more = stream.read(PIECE_BYTES)
                if more:  # whole rows only, so a row's cells are read together
                    cut = pending.rfind(b"</row>")
                    cut = cut + len(b"</row>") if cut >= 0 else 0
                else:
                    cut = len(pending)
                if cut:
                    run = keys_in(pending, cut)
                    if run:
                        yield run
                    pending = pending[cut:]
                if not more:
                    return
                pending += more

    return runs()


def _open_keys(zf: zipfile.ZipFile, required: tuple[str, ...], key_columns: tuple[str, ...], search_rows: int
               ) -> tuple[IO[bytes], bytes, tuple[re.Pattern[bytes], list[bytes], int, _Texts]] | None:
    """The first worksheet opened, its first piece read and the key cells' pattern made from it."""
    part = worksheet_part(zf, None)
    if part is None or zf.getinfo(part).file_size > READ_AHEAD_BYTES:
        return None
    sst_part = shared_strings_part(zf)
    if sst_part and sst_part in zf.namelist():
        if zf.getinfo(sst_part).file_size > READ_AHEAD_BYTES:
            return None
        sst = zf.read(sst_part)
    else:
        sst = b""
    stream = zf.open(part)
    first = stream.read(PIECE_BYTES)
    found = _key_pattern(first, sst, required, key_columns, search_rows)
    if found is None:
        stream.close()
        return None
    return stream, first, found


_Texts = Callable[[list[tuple[bytes, bytes, bytes]]], list[str]]  # (row, inline, index) cells -> their texts


def _key_pattern(xml: bytes, sst: bytes, required: tuple[str, ...], key_columns: tuple[str, ...], search_rows: int
                 ) -> tuple[re.Pattern[bytes], list[bytes], int, _Texts] | None:
    """From the worksheet's first piece: the pattern of the key columns' text cells, matching (column
    letters, row, inline text, shared-string index), the key columns' letters by priority, the header
    row, and the reader of the matches' texts; None when the header is not found there or the
    layout is not one read here."""
    if xml.find(b"<sheetData") < 0:  # a namespace prefix (<x:sheetData>): not a layout read here
        return None
    plain: list[bytes] = _SI_TEXT.findall(sst) if sst else []  # an entry's text when it is one plain run
    bodies: list[bytes] = []

    def shared(i: int) -> str:
        text = plain[i] if i < len(plain) else b""
        if text:
            return _plain(text)
        if not bodies and sst:
            bodies.extend(_SI.findall(sst))
        return _entry_text(bodies[i]) if i < len(bodies) else ""

    def texts(found: list[tuple[bytes, bytes, bytes]]) -> list[str]:
        """Each matched cell's stripped text, the plain ones decoded together (XML holds no NUL)."""
        size = len(plain)
        raw = [inline if not index else (plain[i] if (i := int(index)) < size else b"")
               for _, inline, index in found]
        joined = b"\0".join(raw).decode()
        out = joined.split("\0")
        if "&" in joined:
            out = [_unescape(text) if "&" in text else text for text in out]
        out = [text.strip() for text in out]
        for k in [k for k, text in enumerate(raw) if not text and found[k][2]]:  # a rich-text shared entry
            out[k] = shared(int(found[k][2]))
        return out

    def cell_text(attrs: bytes, body: bytes | None) -> str:
        kind = _KIND.search(attrs)
        if not body or kind is None:
            return ""
        if kind.group(1) == b"inlineStr":
            return _entry_text(body)
        v = _V.search(body)
        if v is None:
            return ""
        if kind.group(1) == b"s":
            return shared(int(v.group(1)))
        return _unescape(v.group(1).decode()).strip() if kind.group(1) == b"str" else ""

    # The first rows as the real read sees them (empty rows included, cells in column order), so
    # the one header finder picks the same row; they must all lie in this piece.
    top: list[list[str]] = [[] for _ in range(search_rows)]
    past_top = False
    for m in _ROW.finditer(xml):
        row_ref = _ATTR_R.search(m.group(1))
        if row_ref is None:
            return None
        number = int(row_ref.group(2))
        if number > search_rows:
            past_top = True
            break
        for c in _CELL.finditer(m.group(3) or b""):
            ref = _ATTR_R.search(c.group(1))
            if ref is None or ref.group(1) is None:
                return None
            column = column_number(ref.group(1).decode()) - 1
            line = top[number - 1]
            line.extend([""] * (column + 1 - len(line)))
            line[column] = cell_text(c.group(1), c.group(2))
    if not past_top and xml.find(b"</sheetData>") < 0:  # the top rows run past the first piece
        return None
    from fhs_bulk.sheets.read import find_header

    h = find_header(top, required, strict=True)
    if h < 0:
        return None
    letters = {value: column_letter(c + 1).encode() for c, value in enumerate(top[h]) if value in key_columns}
    if not letters:  # (a header named twice: its last column, as the real read)
        return None
    ordered = [letters[name] for name in key_columns if name in letters]  # by priority
    pattern = re.compile(rb'<c r="(' + b"|".join(ordered) + rb')([0-9]+)"(?: s="[0-9]+")? t="(?:inlineStr"'
                         rb'(?: s="[0-9]+")?><is><t(?: xml:space="preserve")?>([^<]*)</t></is>|s"(?: s="[0-9]+")?>'
                         rb'<v>([0-9]+)</v>)</c>')
    return pattern, ordered, h + 1, texts
