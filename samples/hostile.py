"""Hostile and odd sheet files, built on demand: the cases the reader must refuse or survive.

Used by tests/test_hostile.py and benchmarks/hostile.py (which prints each case's time and peak RSS).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

CONTENT_TYPES = (b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName='
                 b'"/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
                 b'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
                 b'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings'
                 b'.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
                 b'</Types>')
RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        b'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        b'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (b'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
            b'2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
            b'name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
WB_RELS = (b'<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
           b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
           b'relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.'
           b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
           b'</Relationships>')
NS = b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


def inline(ref: str, text: str) -> bytes:
    return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'.encode()


def write_xlsx(path: Path, rows: list[tuple[int, list[bytes]]], shared: list[bytes] | None = None,
               dimension: str = "A1:A2") -> Path:  # a minimal workbook, written by hand
    body = b"".join(f'<row r="{r}">'.encode() + b"".join(cells) + b"</row>" for r, cells in rows)
    sheet = (b'<?xml version="1.0" encoding="UTF-8"?><worksheet ' + NS + b'><dimension ref="' + dimension.encode() +
             b'"/><sheetData>' + body + b"</sheetData></worksheet>")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", RELS)
        zf.writestr("xl/workbook.xml", WORKBOOK)
        zf.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        zf.writestr("xl/worksheets/sheet1.xml", sheet)
        sst = b"".join(b"<si><t>" + s + b"</t></si>" for s in (shared or [b"fk_order_id"]))
        head = b'<?xml version="1.0" encoding="UTF-8"?><sst ' + NS + b">"
        zf.writestr("xl/sharedStrings.xml", head + sst + b"</sst>")
    return path




def stream_part(path: Path, name: str, head: bytes, chunk: bytes, times: int, tail: bytes) -> Path:
    """Rewrite the workbook at ``path`` with part ``name`` streamed in as head + chunk * times + tail."""
    big = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
        with dst.open(name, "w", force_zip64=True) as fh:
            fh.write(head)
            for _ in range(times):
                fh.write(chunk)
            fh.write(tail)
    os.replace(big, path)
    return path


SST_HEAD = b'<?xml version="1.0" encoding="UTF-8"?><sst ' + NS + b">"


def one_gib_string(path: Path) -> Path:
    """About 1 MB on disk; its shared strings part holds one 1 GiB string."""
    write_xlsx(path, [(1, [b'<c r="A1" t="s"><v>0</v></c>'])])
    return stream_part(path, "xl/sharedStrings.xml", SST_HEAD + b"<si><t>", b"A" * (16 << 20), 64, b"</t></si></sst>")


def many_small_strings(path: Path) -> Path:
    """About 720 MiB of small shared strings."""
    write_xlsx(path, [(1, [b'<c r="A1" t="s"><v>0</v></c>'])])
    return stream_part(path, "xl/sharedStrings.xml", SST_HEAD, b"<si><t>OD</t></si>" * (1 << 20), 40, b"</sst>")


def lying_sizes(src: Path, dst: Path, part: str = "xl/sharedStrings.xml") -> Path:
    """A copy of ``src`` whose declared size for ``part`` is rewritten to 1 KiB (the data unchanged)."""
    with zipfile.ZipFile(src) as zf:
        size = zf.getinfo(part).file_size
    data = src.read_bytes()
    for width in (8, 4):
        data = data.replace(size.to_bytes(width, "little"), (1024).to_bytes(width, "little"))
    dst.write_bytes(data)
    return dst


def long_line_csv(path: Path, first: str, second: str, megabytes: int = 200) -> Path:
    with open(path, "wb") as fh:
        fh.write(b"fk_order_id,remarks\n" + first.encode() + b",ok\n" + second.encode() + b",")
        chunk = b"x" * (1 << 20)
        for _ in range(megabytes):
            fh.write(chunk)
        fh.write(b"\n")
    return path


def garbage_csv(path: Path, rows: int = 2_000_000) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("fk_order_id,remarks\n")
        for i in range(rows):
            fh.write(f"junk{i}" + (",a,b,c\n" if i % 3 else "\n"))  # ragged rows: pyarrow declines them
    return path


def encrypted_ods(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:'
                    'names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="content.xml"'
                    ' manifest:media-type="text/xml"><manifest:encryption-data manifest:checksum-type="SHA1/1K" '
                    'manifest:checksum="x"/></manifest:file-entry></manifest:manifest>')
        zf.writestr("content.xml", os.urandom(512))
    return path
