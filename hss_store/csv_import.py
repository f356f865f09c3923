"""Import subscribers from CSV (for ``cxgw provision subscriber import``).

Header row with the columns ``impi, impus, k`` and either ``opc`` or ``op``; optional
``amf, sqn, schemes, groups`` (names case-insensitive; any other column is refused, so a
misspelt one is not silently dropped). List columns (impus, schemes, groups) separate their
items with spaces, or with ``;`` when the file's delimiter is not ``;``.

Files as spreadsheets write them are read: UTF-8 with or without a byte order mark, UTF-16
with one, otherwise Latin-1 (every byte is a Latin-1 character, so this never fails; an
identity that is not ASCII is then refused by its own check); the delimiter (``,``, ``;``
or a tab) is detected with :class:`csv.Sniffer`. A bad row is reported with its line
number and skipped; the others are imported.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hss_store.errors import InvalidRequest, StoreError
from hss_store.records import DEFAULT_AMF

REQUIRED = ("impi", "impus", "k")
COLUMNS = (*REQUIRED, "opc", "op", "amf", "sqn", "schemes", "groups")
DELIMITERS = ",;\t"
MAX_FILE_BYTES = 512 * 1024 * 1024  # a CSV larger than this is not a subscriber list
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding name): by BOM, else UTF-8, else Latin-1."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError as exc:
                raise InvalidRequest(f"the file starts with a {encoding} byte order mark but is not {encoding} ({exc.reason})") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def dialect_of(text: str) -> type[csv.Dialect] | csv.Dialect:
    """The file's dialect from its first lines (a one-column file stays plain CSV)."""
    sample = "\n".join(text.splitlines()[:20])
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
    except csv.Error:
        return csv.excel


def _items(text: str | None, delimiter: str) -> list[str]:
    """A list cell: items separated by ``;`` when it has one (and ``;`` is not the file's
    delimiter: "Digest-AKAv1-MD5;SIP Digest"), otherwise by spaces."""
    pattern = ";" if delimiter != ";" and ";" in (text or "") else r"\s+"
    return [x.strip() for x in re.split(pattern, text or "") if x.strip()]


def import_subscribers(path: str | Path, add: Callable[[dict[str, Any]], None]) -> tuple[int, list[str]]:
    """Call ``add`` with the keyword arguments of each row (operations.add_subscriber's);
    returns (number imported, error messages with ``file:line:``)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidRequest(f"cannot read CSV file {str(path)!r}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidRequest(f"CSV file {str(path)!r} is larger than {MAX_FILE_BYTES >> 20} MiB; split it")
    try:
        text, _ = decode(data)
    except InvalidRequest as exc:
        raise InvalidRequest(f"CSV file {str(path)!r}: {exc}") from None
    if "\x00" in text:
        raise InvalidRequest(f"CSV file {str(path)!r} contains NUL characters; is it a CSV text file?")
    dialect = dialect_of(text)
    reader = csv.reader(text.splitlines(keepends=True), dialect)
    try:
        header = [name.strip().lower() for name in next(reader, [])]
    except csv.Error as exc:
        raise InvalidRequest(f"{path}:1: unreadable header ({exc})") from None
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        problem = f"lacks the column(s) {', '.join(missing)}" if missing else f"has unknown column(s) {', '.join(map(repr, unknown))}"
        raise InvalidRequest(
            f"CSV file {str(path)!r} {problem}; the header names {', '.join(REQUIRED)}, opc or op, "
            f"and optionally amf, sqn, schemes, groups (found: {', '.join(header) or 'nothing'})"
        )
    added, errors = 0, []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(f"{path}:{reader.line_num}: unreadable row ({exc})")
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank line
        line = reader.line_num
        if len(row) != len(header):
            errors.append(f"{path}:{line}: {len(row)} fields where the header has {len(header)}")
            continue
        cells = {name: value.strip() for name, value in zip(header, row, strict=True)}
        try:
            add({
                "impi": cells["impi"],
                "impus": _items(cells["impus"], dialect.delimiter),
                "k": cells["k"],
                "opc": cells.get("opc") or None,
                "op": cells.get("op") or None,
                "amf": cells.get("amf") or DEFAULT_AMF,
                "sqn": _sqn(cells.get("sqn")),
                "schemes": _items(cells.get("schemes"), dialect.delimiter) or None,
                "groups": _items(cells.get("groups"), dialect.delimiter),
            })
            added += 1
        except StoreError as exc:
            errors.append(f"{path}:{line}: {exc}")
    return added, errors


def _sqn(text: str | None) -> int:
    if not text:
        return 0
    if not text.isdigit():
        raise InvalidRequest(f"sqn {text!r} is not a whole number; give the last SQN issued (0 for a new card)")
    return int(text)
