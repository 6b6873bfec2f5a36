"""What a sheet file must be before any parser sees it: a regular file, within size limits, not a zip
bomb, not password-protected, and with its cells within a sane extent.

Parsers (python-calamine, pyarrow) allocate by what a file claims: a 1.5 KB xlsx with a cell at
XFD1048576 asks for a dense range of 17 billion cells, and a 1 MB xlsx can unzip to gigabytes. Each
check here is cheap next to the parse, and each refusal names the file, the limit and what to do.
"""

from __future__ import annotations

import os
import re
import stat
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from fhs_bulk.errors import SheetError
from fhs_bulk.sheets.columns import column_letter, column_number

if TYPE_CHECKING:
    import zipfile  # imported where a workbook is opened: a CSV never needs it

MiB = 1 << 20
MAX_CSV_BYTES = 1024 * MiB  # a CSV larger than this is no order sheet or tracker
MAX_PART_BYTES = 256 * MiB  # one unzipped part of an xlsx/ods
MAX_UNZIPPED_BYTES = 512 * MiB  # all parts together
MAX_CELLS = 10_000_000  # rows x columns of the used range a workbook sheet may span
MAX_FIELD_BYTES = 1 * MiB  # one CSV cell

CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
# BIFF8 FILEPASS record (0x002F) with RC4 / CryptoAPI encryption, as written after the workbook's BOF.
_XLS_FILEPASS = re.compile(rb"\x2f\x00[\x06-\xff]\x00\x01\x00[\x01-\x04]\x00")


def too_large(shown: str, what: str, limit: str, fix: str) -> SheetError:
    return SheetError(f"{shown}: {what} (the limit is {limit}); {fix}", code="sheet-too-large", path=shown)


def encrypted(shown: str) -> SheetError:
    return SheetError(f"{shown}: the workbook is password-protected: save a copy without a password "
                      "(File > Info > Protect Workbook > Encrypt with Password, clear it) and use that.",
                      code="sheet-encrypted", path=shown)


def check_regular_file(path: Path, shown: str) -> int:
    """The file's size; refuses FIFOs, devices and sockets (or a symlink to one) at once, without
    opening them, so nothing ever waits on a pipe."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SheetError(f"{shown}: cannot be read ({exc.strerror}).", code="sheet-unreadable", path=shown) from exc
    if stat.S_ISDIR(st.st_mode):
        raise SheetError(f"{shown}: is a directory, not a sheet file. Name the .xlsx or .csv file inside it.",
                         code="sheet-is-directory", path=shown)
    if not stat.S_ISREG(st.st_mode):
        kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise SheetError(f"{shown}: is {kind}, not a sheet file. Save the sheet to a file and name that.",
                         code="sheet-not-a-file", path=shown)
    return st.st_size


def check_csv_size(size: int, shown: str) -> None:
    if size > MAX_CSV_BYTES:
        raise too_large(shown, f"the file is {size / MiB:,.0f} MiB", f"{MAX_CSV_BYTES // MiB} MiB",
                        "split it into smaller files")


def check_workbook(path: Path, shown: str) -> dict[str, bytes]:
    """Encryption, zip-bomb and extent checks for .xlsx/.xlsm/.ods (zip) and .xls (CFB) files.

    Returns the worksheets' XML (xlsx), inflated once here, so later scans (formulas) need not inflate
    them again."""
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == CFB_MAGIC:
        if path.suffix.lower() in (".xlsx", ".xlsm", ".xlsb", ".ods") and _cfb_holds(path, _ENCRYPTED_PACKAGE):
            raise encrypted(shown)
        return {}  # .xls: calamine reads it; an encrypted one is recognised from its error (xls_encrypted)
    if not head.startswith(b"PK"):
        return {}  # not a zip: calamine says what it is
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            sheets = _check_zip(zf, path, shown)
    except zipfile.BadZipFile:
        return {}  # calamine reports the damage in its own words
    for xml in sheets.values():
        check_extent(xml, shown)
    return sheets


def xls_encrypted(path: Path) -> bool:
    """Whether a .xls that calamine could not open carries a FILEPASS (password) record."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(4 * MiB)
    except OSError:
        return False
    return data.startswith(CFB_MAGIC) and _XLS_FILEPASS.search(data) is not None


def _cfb_holds(path: Path, name: bytes) -> bool:
    with open(path, "rb") as fh:
        data = fh.read(4 * MiB)
    return name in data


_WORKSHEET = re.compile(r"xl/worksheets/[^/]+\.xml")


def _check_zip(zf: zipfile.ZipFile, path: Path, shown: str) -> dict[str, bytes]:
    infos = zf.infolist()
    names = {i.filename for i in infos}
    if "META-INF/manifest.xml" in names:
        manifest = _read_capped(zf, zf.getinfo("META-INF/manifest.xml"), shown, MAX_PART_BYTES)
        if b"encryption-data" in manifest:
            raise encrypted(shown)
    if "EncryptedPackage" in names or "EncryptionInfo" in names:
        raise encrypted(shown)
    declared = sum(i.file_size for i in infos)
    limit = f"{MAX_UNZIPPED_BYTES // MiB} MiB unzipped ({MAX_PART_BYTES // MiB} MiB for one part)"
    fix = "no order sheet is that large: open the file, delete what does not belong, save it again"
    biggest = max(infos, key=lambda i: i.file_size, default=None)
    if biggest is not None and biggest.file_size > MAX_PART_BYTES:
        raise too_large(shown, f"its part {biggest.filename} unzips to {biggest.file_size / MiB:,.0f} MiB", limit, fix)
    if declared > MAX_UNZIPPED_BYTES:
        raise too_large(shown, f"it unzips to {declared / MiB:,.0f} MiB", limit, fix)
    # Declared sizes can lie: inflate every part here, counting what really comes out and stopping at
    # the limit; the worksheets' XML is kept for the extent check and the formula scan.
    total = 0
    kept: dict[str, bytes] = {}
    with open(path, "rb") as fh:
        for info in infos:
            if info.is_dir():
                continue
            keep = _WORKSHEET.fullmatch(info.filename) is not None
            size, data = _inflate(fh, info, shown, MAX_PART_BYTES, limit, fix, keep)
            total += size
            if total > MAX_UNZIPPED_BYTES:
                raise too_large(shown, f"it unzips to more than {MAX_UNZIPPED_BYTES // MiB} MiB", limit, fix)
            if data is not None:
                kept[info.filename] = data
    return kept


def _inflate(fh: BinaryIO, info: zipfile.ZipInfo, shown: str, cap: int, limit: str, fix: str,
             keep: bool) -> tuple[int, bytes | None]:
    """(bytes a member really inflates to, the bytes when ``keep``): read raw and inflated here, since
    zipfile would stop at the declared size."""
    import zipfile

    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return info.file_size, None
    fh.seek(info.header_offset)
    header = fh.read(30)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        return info.file_size, None
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    fh.seek(info.header_offset + 30 + name_len + extra_len)
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size, (fh.read(min(info.compress_size, cap)) if keep else None)
    inflater = zlib.decompressobj(-15)
    left = info.compress_size
    out = 0
    parts: list[bytes] = []
    while left > 0:
        chunk = fh.read(min(left, 4 * MiB))
        if not chunk:
            break
        left -= len(chunk)
        try:
            # At most 4 MiB out per call: a bomb never gets a big buffer, only a count.
            piece = inflater.decompress(chunk, 4 * MiB)
            while True:
                out += len(piece)
                if keep:
                    parts.append(piece)
                if not inflater.unconsumed_tail or out > cap:
                    break
                piece = inflater.decompress(inflater.unconsumed_tail, 4 * MiB)
        except zlib.error:
            return out, None  # damaged: the parser reports it
        if out > cap:
            raise too_large(shown, f"its part {info.filename} unzips to more than {cap // MiB} MiB", limit, fix)
    return out, (b"".join(parts) if keep else None)


def _read_capped(zf: zipfile.ZipFile, info: zipfile.ZipInfo, shown: str, cap: int) -> bytes:
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise too_large(shown, f"its part {info.filename} is too large", f"{cap // MiB} MiB", "save it again")
    return data


_ROW_REF = re.compile(rb'<(?:\w+:)?row\b[^>]*?\br="([0-9]+)"')
_WIDE_CELL = re.compile(rb' r="([A-Z]{2,3})([0-9]+)"')  # a literal prefix keeps the scan fast


def check_extent(xml: bytes, shown: str) -> None:
    """Refuse a worksheet whose cells span more than MAX_CELLS (rows x columns of the used range),
    naming the farthest cell: parsers allocate the whole rectangle."""
    last_row = 0
    tail = xml.rfind(b"<row ")
    if tail < 0:
        tail = xml.rfind(b":row ")
    if tail >= 0:
        m = _ROW_REF.search(xml, max(0, tail - 8))
        if m:
            last_row = int(m.group(1))
    last_col, far_row = 1, 1
    for m in _WIDE_CELL.finditer(xml):
        col = column_number(m.group(1))
        if col > last_col:
            last_col, far_row = col, int(m.group(2))
    if last_row * last_col > MAX_CELLS:
        far = f"{column_letter(last_col)}{far_row}" if last_col > 1 else f"A{last_row}"
        raise too_large(shown, f"its cells span {last_row:,} rows x {last_col:,} columns (a value at {far} or row "
                        f"{last_row:,}, far from the data)", f"{MAX_CELLS:,} cells",
                        "delete the stray cells (select the empty rows and columns past the data, Delete), save, "
                        "and try again")
