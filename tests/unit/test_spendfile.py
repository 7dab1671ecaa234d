"""Spend files as people write them: spreadsheet CSVs (a byte-order mark, blanks after the
commas) read as written; a CSV without a header row is refused, never read as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from escrowkit.cli.spendfile import read_spend_requests
from escrowkit.core.errors import InvalidRequest

PROVIDER = "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc"


def write(tmp_path: Path, text: str, name: str = "spends.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def test_a_spreadsheet_csv_reads_as_written(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "agent_id, amount, provider, purpose, category\r\n"
        f"research-agent, 25, {PROVIDER}, market dataset , compute\r\n"
        "\r\n"
        f'data-agent,0.5,{PROVIDER},"labels, batch 2",\r\n',
        bom=True,
    )
    first, second = read_spend_requests(path, 6)
    assert (first.agent_id, first.amount) == ("research-agent", 25 * 10**6)
    assert first.provider == PROVIDER
    assert first.purpose == "market dataset" and first.category == "compute"
    assert (second.amount, second.purpose, second.category) == (500_000, "labels, batch 2", None)


def test_a_csv_without_a_header_row_is_refused_saying_what_was_read(tmp_path: Path) -> None:
    path = write(tmp_path, f"research-agent,10,{PROVIDER},a\nresearch-agent,20,{PROVIDER},b\n")
    with pytest.raises(InvalidRequest) as caught:
        read_spend_requests(path, 6)
    message = str(caught.value)
    assert "has no header row" in message
    assert f"'research-agent,10,{PROVIDER},a'" in message
    assert "agent_id,amount,provider,purpose" in message


def test_a_header_missing_a_column_names_it(tmp_path: Path) -> None:
    path = write(tmp_path, f"agent_id,amount,provider\nresearch-agent,10,{PROVIDER}\n")
    with pytest.raises(InvalidRequest, match="has no purpose column"):
        read_spend_requests(path, 6)


def test_a_row_with_more_values_than_columns_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, f"agent_id,amount,provider,purpose\nresearch-agent,1,000,{PROVIDER},a\n")
    with pytest.raises(InvalidRequest, match="row 1: 5 values for 4 columns"):
        read_spend_requests(path, 6)


def test_an_empty_csv_and_a_header_only_csv_have_no_spends(tmp_path: Path) -> None:
    assert read_spend_requests(write(tmp_path, ""), 6) == []
    assert read_spend_requests(write(tmp_path, "agent_id,amount,provider,purpose\n"), 6) == []


def test_json_with_a_byte_order_mark_reads(tmp_path: Path) -> None:
    text = f'[{{"agent_id": "a", "amount": "1", "provider": "{PROVIDER}", "purpose": "x"}}]'
    (request,) = read_spend_requests(write(tmp_path, text, "spends.json", bom=True), 6)
    assert request.amount == 10**6
