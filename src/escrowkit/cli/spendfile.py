"""Read a list of spend requests from a JSON or CSV file.

Columns / keys: ``agent_id``, ``amount`` (token units, exact: ``"25"`` or ``"0.5"``),
``provider``, ``purpose``, and optionally ``category`` and ``idempotency_key``. JSON is a
list of objects; CSV has a header row naming the columns, in any order. Spreadsheet CSVs
read as written: a UTF-8 byte-order mark and blanks around the values are ignored. A file
whose first row is not a header is refused rather than read as one (its first spend would
vanish into the column names). A float amount in JSON is refused, like everywhere else
money is handled. Errors name the file and the row.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from escrowkit.coordinator import SpendRequest
from escrowkit.core.errors import InvalidRequest
from escrowkit.core.units import parse_units

__all__ = ["read_spend_requests"]

_REQUIRED = ("agent_id", "amount", "provider", "purpose")
_OPTIONAL = ("category", "idempotency_key")


def read_spend_requests(path: str | os.PathLike[str], decimals: int) -> list[SpendRequest]:
    """The requests in ``path`` (``.json`` or ``.csv``), amounts converted to base units."""
    file = Path(path)
    try:
        # utf-8-sig: spreadsheets start their CSVs with a byte-order mark.
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidRequest(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidRequest(f"{file}: not UTF-8 text (save it as CSV UTF-8)") from None
    if file.suffix.lower() == ".json":
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise InvalidRequest(f"{file}: not valid JSON: {exc}") from None
        if not isinstance(rows, list):
            raise InvalidRequest(f"{file}: expected a JSON list of spends")
    elif file.suffix.lower() == ".csv":
        rows = _csv_rows(file, text)
    else:
        raise InvalidRequest(f"{file}: use a .json or .csv file")
    return [_request(file, n, row, decimals) for n, row in enumerate(rows, start=1)]


def _csv_rows(file: Path, text: str) -> list[dict[str, str]]:
    """The data rows as dicts keyed by the header row, every value stripped of blanks."""
    lines = [
        [cell.strip() for cell in row]
        for row in csv.reader(text.splitlines(), skipinitialspace=True)
        if any(cell.strip() for cell in row)
    ]
    if not lines:
        return []
    header, *data = lines
    columns = ",".join(_REQUIRED)
    if not set(header) & {*_REQUIRED, *_OPTIONAL}:
        raise InvalidRequest(
            f"{file} has no header row: its first row reads {','.join(header)!r}; "
            f"start the file with a row naming the columns, e.g. {columns}"
        )
    missing = [name for name in _REQUIRED if name not in header]
    if missing:
        raise InvalidRequest(
            f"{file}: the header row {','.join(header)!r} has no {', '.join(missing)} "
            f"column (the columns are {columns}, and optionally {','.join(_OPTIONAL)})"
        )
    rows = []
    for n, values in enumerate(data, start=1):
        if len(values) > len(header):
            raise InvalidRequest(
                f"{file} row {n}: {len(values)} values for {len(header)} columns "
                f"({','.join(values)!r}); quote a value that holds a comma"
            )
        rows.append(dict(zip(header, values, strict=False)))
    return rows


def _request(file: Path, n: int, row: Any, decimals: int) -> SpendRequest:
    where = f"{file} row {n}"
    if not isinstance(row, dict):
        raise InvalidRequest(f"{where}: expected an object with {', '.join(_REQUIRED)}")
    missing = [key for key in _REQUIRED if row.get(key) in (None, "")]
    if missing:
        raise InvalidRequest(f"{where}: missing {', '.join(missing)}")
    unknown = set(row) - set(_REQUIRED) - set(_OPTIONAL)
    if unknown:
        raise InvalidRequest(f"{where}: unknown fields {sorted(unknown)}")
    amount = row["amount"]
    if isinstance(amount, float):
        raise InvalidRequest(f'{where}: amount {amount!r} is a float; write it as "{amount}"')
    try:
        return SpendRequest(
            agent_id=str(row["agent_id"]),
            amount=parse_units(amount, decimals),
            provider=str(row["provider"]),
            purpose=str(row["purpose"]),
            category=row.get("category") or None,
            idempotency_key=row.get("idempotency_key") or None,
        )
    except InvalidRequest as exc:
        raise InvalidRequest(f"{where}: {exc}") from None
