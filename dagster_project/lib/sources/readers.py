"""Read a source file's native records, one at a time, without ever dropping or merging a bad one.

Each reader yields `(line, record, error, raw)`: `line` is the 1-based line where the record starts
(Parquet: the record number); exactly one of `record` / `error` is set; `error` reads
"<kind>: <message>" and `raw` is the text of the bad record, if any. A syntax error costs the
records it touches and no others: JSON arrays are read element by element and re-synchronised on
the next record, CSV rows that swallow following lines (an unbalanced quote) are re-read line by
line, undecodable bytes reject the record holding them. A UTF-8 byte-order mark is skipped and LF,
CRLF and CR-only line endings are all line ends. A file that cannot be read at all raises
`FileUnreadable` with a one-line reason.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

Item = tuple[int, dict[str, Any] | None, str | None, str]

BOM = "\ufeff"
_EOL = re.compile(rb"\r\n|\r|\n")
_WS = re.compile(r"[ \t\n\r]*")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_DECODER = json.JSONDecoder(strict=False)  # raw control characters in strings are checked later, by field
_EXCERPT = 300
_COMMA_BRACE = re.compile(r",[ \t\n\r]*\{")
_LINE_BRACE = re.compile(r"(?:^|(?<=[\n\r]))([ \t]*)\{", re.MULTILINE)


class FileUnreadable(ValueError):
    """The file as a whole cannot be read (not Parquet, truncated, a directory...)."""


def _is_utf8(encoding: str) -> bool:
    return codecs.lookup(encoding).name == "utf-8"


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes without the line end), streaming; LF, CRLF and CR end lines."""
    line_no, buf = 0, b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            buf += chunk
            hold = buf.endswith(b"\r")  # its LF may start the next chunk
            parts = _EOL.split(buf[:-1] if hold else buf)
            buf = parts.pop() + (b"\r" if hold else b"")
            for part in parts:
                line_no += 1
                yield line_no, part
    if buf:
        for part in _EOL.split(buf):
            line_no += 1
            yield line_no, part


def _decode_line(raw: bytes, encoding: str) -> tuple[str | None, str | None]:
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        return None, f"encoding: not valid {encoding}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"


def _decode_file(raw: bytes, encoding: str) -> tuple[str, bool]:
    """The whole file as text; undecodable bytes become U+DC80..U+DCFF (flagged per record)."""
    if raw.startswith(codecs.BOM_UTF8) and _is_utf8(encoding):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode(encoding).removeprefix(BOM), False
    except UnicodeDecodeError:
        return raw.decode(encoding, errors="surrogateescape").removeprefix(BOM), True


def escaped_byte_error(text: str, encoding: str, where: str) -> str | None:
    """An `encoding:` error naming the first undecodable byte in `text`, if any."""
    match = _ESCAPED_BYTE.search(text)
    if match is None:
        return None
    return f"encoding: not valid {encoding}: byte 0x{ord(match.group()) - 0xDC00:02x} in {where}"


def _records_of(value: Any, line: int, raw: str, in_array: bool = False) -> Iterator[Item]:
    """One JSON value as records: an object is one; a list of objects on a JSON Lines line is one
    per element."""
    if isinstance(value, dict):
        yield line, value, None, ""
    elif isinstance(value, list) and not in_array and any(isinstance(v, dict) for v in value):
        for i, element in enumerate(value, start=1):
            for _, rec, err, _ in _records_of(element, line, raw, in_array=True):
                yield line, rec, (f"{err} (element {i} of the array on this line)" if err else None), \
                    json.dumps(element, ensure_ascii=False)[:_EXCERPT] if err else ""
    else:
        yield line, None, f"malformed: expected a JSON object, got {type(value).__name__}", raw[:_EXCERPT]


def read_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    """JSON Lines; a file that is really one JSON array spread over lines is read as an array."""
    first_content = 0
    for line_no, raw in _lines(path):
        if line_no == 1 and raw.startswith(codecs.BOM_UTF8) and _is_utf8(encoding):
            raw = raw[len(codecs.BOM_UTF8):]
        if not raw.strip():
            continue
        first_content = first_content or line_no
        text, err = _decode_line(raw, encoding)
        if err:
            yield line_no, None, err, raw.decode(encoding, errors="replace")[:_EXCERPT]
            continue
        text = text.removeprefix(BOM)
        try:
            value = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            if line_no == first_content and text.lstrip().startswith("["):
                yield from read_json(path, encoding)  # a JSON array given as jsonl
                return
            yield line_no, None, f"malformed: JSON: {exc.msg} (column {exc.colno})", text[:_EXCERPT]
            continue
        yield from _records_of(value, line_no, text)


def read_json(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    """A JSON array of objects (or one object); a file that is really JSON Lines is read as such."""
    text, escaped = _decode_file(path.read_bytes(), encoding)
    start = _WS.match(text).end()
    if text.startswith("{", start):
        try:
            value = _DECODER.decode(text)
        except json.JSONDecodeError:
            yield from read_jsonl(path, encoding)  # JSON Lines
            return
        items = _records_of(value, _LineCounter(text).line(start), text, in_array=True)
    elif text.startswith("[", start):
        items = _array_items(text, start + 1)
    else:
        yield from read_jsonl(path, encoding)
        return
    yield from _flag_escaped(items, encoding) if escaped else items


def _flag_escaped(items: Iterator[Item], encoding: str) -> Iterator[Item]:
    """Reject the records holding a byte the encoding could not decode."""
    for line, rec, err, raw in items:
        if rec is not None:
            bad = escaped_byte_error(json.dumps(rec, ensure_ascii=False), encoding, "the record")
            if bad:
                yield line, None, bad, ""
                continue
        yield line, rec, err, raw


class _LineCounter:
    """Line numbers of increasing positions in one text, in a single pass (LF, CRLF, CR)."""

    def __init__(self, text: str) -> None:
        self.text, self.pos, self.lines = text, 0, 1

    def line(self, pos: int) -> int:
        if pos < self.pos:
            self.pos, self.lines = 0, 1
        t = self.text
        self.lines += t.count("\n", self.pos, pos) + t.count("\r", self.pos, pos) - t.count("\r\n", self.pos, pos)
        self.pos = pos
        return self.lines


def _array_items(text: str, pos: int) -> Iterator[Item]:
    """The elements of the JSON array that starts just before `pos`, one record each. A syntax error
    between two records (a missing `,`, a stray `]` or other text) rejects the record after it."""
    lines, n = _LineCounter(text), len(text)
    pos = _WS.match(text, pos).end()
    indent = _indent_of(text, pos)
    number, problem = 0, None  # problem: what is wrong just before the next record
    if text.startswith("]", pos):
        pos = _WS.match(text, pos + 1).end()
        if pos >= n:
            return
        problem, pos = "text after the closing `]`", _resync(text, pos, indent)
    while True:
        pos = None if pos is None else _WS.match(text, pos).end()
        if pos is None or pos >= n:
            reason = problem or "the array ends without `]` (a truncated file?)"
            yield lines.line(n), None, f"malformed: JSON: {reason}", ""
            return
        number += 1
        line = lines.line(pos)
        try:
            value, end = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            resume = _resync(text, pos + 1, indent)
            yield line, None, (f"malformed: JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}; "
                               f"record {number} of the array)"), text[pos:min(resume or n, pos + _EXCERPT)]
            if resume is None:
                return
            pos, problem = resume, None
            continue
        if isinstance(value, list) and _WS.match(text, end).end() >= n and any(isinstance(v, dict) for v in value):
            # a stray `[` opened a list that swallowed every record after it: read them one by one
            number, pos, problem = number - 1, pos + 1, "a stray `[`"
            continue
        if problem:  # the record is whole, but the array around it is not: not trusted
            yield line, None, f"malformed: JSON: {problem} before record {number} of the array", \
                text[pos:min(end, pos + _EXCERPT)]
        else:
            for item in _records_of(value, line, text[pos:end], in_array=True):
                yield item if item[2] is None else (line, None, f"{item[2]} (record {number} of the array)", item[3])
        pos = _WS.match(text, end).end()
        problem = None
        if text.startswith(",", pos):
            pos += 1
        elif text.startswith("]", pos):
            after = _WS.match(text, pos + 1).end()
            if after >= n:
                return
            problem, pos = "a stray `]`", after + text.startswith(",", after)
        elif text.startswith("{", pos):
            problem = "missing ','"
        elif pos < n:
            problem, pos = "unexpected text", _resync(text, pos, indent)
        else:
            yield lines.line(pos), None, "malformed: JSON: the array ends without `]` (a truncated file?)", ""
            return


def _indent_of(text: str, pos: int) -> int | None:
    """The indentation of the record at `pos` when it starts a line, else None."""
    line_start = max(text.rfind("\n", 0, pos), text.rfind("\r", 0, pos)) + 1
    prefix = text[line_start:pos]
    return len(prefix) if line_start > 0 and not prefix.strip(" \t") else None


def _resync(text: str, pos: int, indent: int | None) -> int | None:
    """Where the next whole record starts after a broken one: the first `{` holding a complete
    object followed by `,` or `]`, looked for at the start of a line (at the first record's
    indentation when it had one), else right after a `,` (a one-line array)."""
    at_line_start = (m.end() - 1 for m in _LINE_BRACE.finditer(text, pos)
                     if indent is None or len(m.group(1)) == indent)
    after_comma = (m.end() - 1 for m in _COMMA_BRACE.finditer(text, pos))
    for candidates in (at_line_start, after_comma):
        for start in candidates:
            try:
                _, end = _DECODER.raw_decode(text, start)
            except json.JSONDecodeError:
                continue
            after = _WS.match(text, end).end()
            if after >= len(text) or text[after] in ",]":
                return start
    return None


def read_csv(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    """CSV with a header row. Rows are parsed strictly; a row whose field count is wrong is rejected
    alone, and one that swallowed the lines after it (an unbalanced quote) costs only its first line."""
    text, escaped = _decode_file(path.read_bytes(), encoding)
    if csv.field_size_limit() < 1 << 30:
        csv.field_size_limit(1 << 30)  # long fields are read, then judged by the question length limit
    lines = io.StringIO(text, newline="").readlines()
    header_reader = csv.reader(lines, strict=True)
    try:
        header = next(header_reader, None)
    except csv.Error as exc:
        raise FileUnreadable(f"the CSV header cannot be read: {exc}") from None
    if header is None:
        return
    header = [h.strip() for h in header]
    bad = escaped_byte_error("".join(header), encoding, "the header")
    if bad:
        raise FileUnreadable(f"the CSV header is {bad.removeprefix('encoding: ')}")
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise FileUnreadable(f"the CSV header repeats column(s) {repeated}")
    pos = header_reader.line_num
    while pos < len(lines):
        pos = yield from _csv_rows(lines, pos, header, encoding if escaped else None)


def _csv_rows(lines: list[str], pos: int, header: list[str], encoding: str | None):
    """Rows from line index `pos`; returns where to restart after a row that swallowed lines.
    `encoding` is set when the file held undecodable bytes (the rows holding them are rejected)."""
    reader = csv.reader(itertools.islice(lines, pos, None), strict=True)
    done = 0
    while True:
        start = pos + done
        try:
            row = next(reader)
        except StopIteration:
            return len(lines)
        except csv.Error as exc:
            end = pos + reader.line_num
            yield start + 1, None, f"malformed: CSV: {exc}", lines[start][:_EXCERPT]
            return start + 1 if end - start > 1 else end
        done = reader.line_num
        end = pos + done
        if not row:
            continue  # a blank line is not a record
        if len(row) != len(header):
            yield (start + 1, None, f"malformed: CSV: {len(row)} fields, the header has {len(header)}"
                   + (" (an unbalanced quote?)" if end - start > 1 else ""), lines[start][:_EXCERPT])
            if end - start > 1:
                return start + 1
            continue
        record = dict(zip(header, row))
        bad = encoding and next((escaped_byte_error(v, encoding, f"field `{k}`") for k, v in record.items()
                                 if _ESCAPED_BYTE.search(v)), None)
        if bad:
            yield start + 1, None, bad, ""
            continue
        yield start + 1, record, None, ""


def read_parquet(path: Path, encoding: str = "utf-8") -> Iterator[Item]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FileUnreadable(f"not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    names = [name.removeprefix(BOM).strip() for name in pf.schema_arrow.names]
    n = 0
    for group in range(pf.num_row_groups):
        expected = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=4096, row_groups=[group]):
                for rec in batch.rename_columns(names).to_pylist():
                    done += 1
                    yield n + done, rec, None, ""
        except (pa.ArrowException, OSError) as exc:
            reason = f"malformed: Parquet row group {group} cannot be read: {str(exc).splitlines()[0]}"
            for i in range(done, expected):
                yield n + i + 1, None, reason, ""
        n += expected


READERS = {"jsonl": read_jsonl, "json": read_json, "parquet": read_parquet, "csv": read_csv}


def read_records(path: Path, fmt: str, encoding: str = "utf-8") -> Iterator[Item]:
    return READERS[fmt](path, encoding)
