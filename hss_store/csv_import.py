"""Import subscribers from CSV (for ``cxgw provision subscriber import``).

Header row with the columns ``impi, impus, k`` and either ``opc`` or ``op``; optional
``amf, sqn, schemes, groups``. List columns (impus, schemes, groups) separate their items
with spaces or ``;``. A bad row is reported with its line number and skipped; the others
are imported.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from hss_store.errors import InvalidRequest, StoreError
from hss_store.records import DEFAULT_AMF, DEFAULT_SCHEMES, Subscriber

REQUIRED = ("impi", "impus", "k")


def _items(text: str | None) -> list[str]:
    return [x for x in re.split(r"[;\s]+", text or "") if x]


def import_subscribers(store: Any, path: str | Path) -> tuple[int, list[str]]:
    """(number imported, error messages with line numbers)."""
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InvalidRequest(f"cannot read CSV file {str(path)!r}: {exc.strerror}") from None
    added, errors = 0, []
    with handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidRequest(f"CSV file {str(path)!r} lacks the column(s) {', '.join(missing)}; header: impi,impus,k,opc,...")
        for row in reader:
            try:
                sub = Subscriber.new(
                    row["impi"],
                    _items(row["impus"]),
                    row["k"],
                    opc=row.get("opc") or None,
                    op=row.get("op") or None,
                    amf=row.get("amf") or DEFAULT_AMF,
                    sqn=int(row.get("sqn") or 0),
                    schemes=_items(row.get("schemes")) or DEFAULT_SCHEMES,
                    groups=_items(row.get("groups")),
                )
                store.add_subscriber(sub)
                added += 1
            except (StoreError, ValueError) as exc:
                errors.append(f"{path}:{reader.line_num}: {exc}")
    return added, errors
