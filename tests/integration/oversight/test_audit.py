"""Tamper evidence over real HTTP on real PostgreSQL: the audit trail can be recomputed by whoever
holds it, resumed from a cursor, and checked against kept checkpoints; a row altered directly in
the database is caught by ``/v1/audit/verify``, which names the record."""

import hashlib
import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.oversight.store import create_tables
from tests.integration.oversight.support import DirectFeed, drop_database, serve, settings_for
from tests.support.databases import fresh_database
from tests.unit.oversight.story import CaseStory

GENESIS = "0" * 64
STORIES = [CaseStory().opened().routed().assigned().accepted().resolved() for _ in range(3)]
FAILED = STORIES[2].delivered("citizen", "zalo", ok=False).deliveries[-1]  # the answer did not reach the citizen
EVENTS = sum(len(s.bodies()) for s in STORIES)  # 7 each (5 case events and 2 deliveries), and the failed one


@pytest.fixture
async def fresh(pg_admin_dsn, pg_port, kafka_bootstrap):
    """A history of its own to tamper with."""
    database = await fresh_database(pg_admin_dsn, "oversight_test")
    try:
        with serve(settings_for(database, pg_port, kafka_bootstrap, consume=False)) as running:
            await DirectFeed(running.settings).apply(STORIES)
            yield running
    finally:
        await drop_database(pg_admin_dsn, database)


@pytest.fixture(scope="module", autouse=True)
async def history(feed):
    await feed.apply(STORIES)


def trail(api, query=""):
    answer = api.get(f"/v1/audit/events{query}", role="front")
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()], answer


def seq_of(running, event):
    return next(r["seq"] for r in trail(running)[0] if r["event_id"] == str(event.event_id))


async def start_again(running):
    """What an upgraded oversight runs on its database as it starts."""
    conn = await asyncpg.connect(running.settings.dsn())
    try:
        await create_tables(conn)
    finally:
        await conn.close()


async def tamper(running, statement, *args):
    conn = await asyncpg.connect(running.settings.dsn())
    try:
        await conn.execute(statement, *args)
    finally:
        await conn.close()


def test_whoever_holds_the_trail_can_recompute_the_chain_to_the_published_head(api):
    records, answer = trail(api)
    assert [r["seq"] for r in records] == list(range(1, EVENTS + 1))
    head = GENESIS
    for r in records:  # with nothing but hashlib, as an auditor of HĐND or MTTQ would
        assert r["prev_hash"] == head
        head = hashlib.sha256((head + "\n" + r["canonical"]).encode()).hexdigest()
        assert r["hash"] == head
    published = api.get("/v1/audit/checkpoints", role="council").json()
    assert published["head"] == {**published["head"], "seq": EVENTS, "records": EVENTS, "hash": head}
    assert answer.headers["x-audit-head"] == str(EVENTS)


def test_the_trail_resumes_from_a_cursor(api):
    everything, _ = trail(api)
    rest, _ = trail(api, "?after=5")
    assert rest == everything[5:]
    some, _ = trail(api, "?after=5&limit=4")
    assert [r["seq"] for r in some] == [6, 7, 8, 9]
    assert trail(api, f"?after={EVENTS}")[0] == []


def test_a_sound_history_verifies_with_its_checkpoints(api):
    report = api.get("/v1/audit/verify", role="council").json()
    assert report["ok"] and report["first_broken"] is None and report["case_mismatch"] is None
    assert report["records"] == report["chained"] == EVENTS
    assert report["checkpoints"] == {"stored": EVENTS // 5, "mismatched": []}  # one every 5 records here


def test_a_kept_checkpoint_is_checked_and_a_forged_one_is_not_accepted(api):
    kept = api.get("/v1/audit/checkpoints", role="front").json()["checkpoints"][1]
    assert kept["seq"] == 10
    report = api.get(f"/v1/audit/verify?seq={kept['seq']}&hash={kept['hash']}", role="front").json()
    assert report["ok"] and report["checkpoint"]["matches"]
    forged = api.get(f"/v1/audit/verify?seq={kept['seq']}&hash={'ab' * 32}", role="front").json()
    assert not forged["ok"] and not forged["checkpoint"]["matches"]
    assert forged["checkpoint"]["recomputed"] == kept["hash"]
    assert api.get("/v1/audit/verify?seq=3", role="front").status_code == 422


async def test_an_altered_audit_record_is_named(fresh):
    record = trail(fresh, "?after=2&limit=1")[0][0]
    await tamper(fresh, "UPDATE audit_log SET canonical = replace(canonical, 'router', 'routex') WHERE seq = 3")
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert not report["ok"]
    assert report["first_broken"]["seq"] == 3 and report["first_broken"]["event_id"] == record["event_id"]
    assert "altered" in report["first_broken"]["reason"]


@pytest.mark.parametrize("rewrite, reason", [
    (lambda text: text.replace("20 kg", "2 kg"), "differs from its audit record"),
    (lambda text: '{"answer": 1e400}', "cannot be read"),
], ids=["a word changed", "a text that cannot be read"])
async def test_history_rewritten_with_fresh_hashes_does_not_pass_through_the_kept_checkpoints(fresh, rewrite, reason):
    kept = fresh.get("/v1/audit/checkpoints", role="council").json()["checkpoints"][-1]
    conn = await asyncpg.connect(fresh.settings.dsn())
    try:  # a rewrite that recomputes every hash after the changed record, head included
        rows = await conn.fetch("SELECT seq, canonical FROM audit_log ORDER BY seq")
        head = GENESIS
        for r in rows:
            text = rewrite(r["canonical"]) if r["seq"] == 5 else r["canonical"]
            new = hashlib.sha256((head + "\n" + text).encode()).hexdigest()
            await conn.execute("UPDATE audit_log SET canonical = $2, prev_hash = $3, hash = $4 WHERE seq = $1",
                               r["seq"], text, head, new)
            head = new
        await conn.execute("UPDATE audit_head SET hash = $1", head)
    finally:
        await conn.close()
    report = fresh.get(f"/v1/audit/verify?seq={kept['seq']}&hash={kept['hash']}", role="council").json()
    assert not report["ok"] and not report["checkpoint"]["matches"]
    assert report["checkpoints"]["mismatched"][0]["seq"] == 5  # the first stored checkpoint after the change
    assert report["first_broken"]["seq"] == 5 and reason in report["first_broken"]["reason"]


async def test_an_event_altered_in_the_read_model_is_named(fresh):
    resolved = STORIES[1].events[-1]
    await tamper(fresh, "UPDATE case_events SET body = jsonb_set(body, '{answer}', '\"Không cần hỗ trợ\"')"
                        " WHERE event_id = $1", resolved.event_id)
    report = fresh.get("/v1/audit/verify", role="front").json()
    assert not report["ok"] and report["first_broken"]["event_id"] == str(resolved.event_id)
    assert "differs from its audit record" in report["first_broken"]["reason"]
    # The case row still says what was audited, so it no longer agrees with the altered event.
    assert report["case_mismatch"]["columns"] == ["answer"]


async def test_a_case_row_altered_directly_is_named(fresh):
    story = STORIES[2]
    await tamper(fresh, "UPDATE cases SET status = 'closed', unit_name = 'UBND Quận 5' WHERE case_id = $1", story.case_id)
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert not report["ok"] and report["first_broken"] is None
    assert report["case_mismatch"]["case_id"] == str(story.case_id)
    assert report["case_mismatch"]["columns"] == ["status", "unit_name"]


async def test_an_event_rewritten_past_what_can_be_folded_is_a_named_mismatch_not_an_error(fresh):
    story = STORIES[0]
    opened = story.events[0]
    await tamper(fresh, "UPDATE case_events SET body = body - 'occurred_at' WHERE event_id = $1", opened.event_id)
    answer = fresh.get("/v1/audit/verify", role="council")
    assert answer.status_code == 200
    report = answer.json()
    assert not report["ok"] and report["first_broken"]["event_id"] == str(opened.event_id)
    assert report["case_mismatch"]["case_id"] == str(story.case_id)
    assert "cannot be folded" in report["case_mismatch"]["reason"]


@pytest.mark.parametrize("rewrite", [
    "'[]'::jsonb", "jsonb_set(body, '{citizen}', '\"tampered\"')", "body || '{\"x\": 1e400}'::jsonb",
    "jsonb_set(body, '{citizen}', (repeat('[', 300) || repeat(']', 300))::jsonb)"],
    ids=["a list for the event", "a text for the citizen", "a number beyond a double", "a citizen nested deep"])
async def test_an_event_rewritten_into_another_shape_is_named_not_an_error(fresh, rewrite):
    story = STORIES[1]
    opened = story.events[0]
    await tamper(fresh, f"UPDATE case_events SET body = {rewrite} WHERE event_id = $1", opened.event_id)
    answer = fresh.get("/v1/audit/verify", role="front")
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert not report["ok"] and report["first_broken"]["event_id"] == str(opened.event_id)
    assert report["case_mismatch"]["case_id"] == str(story.case_id)


async def test_a_failed_notice_shown_as_sent_is_named(fresh):
    await tamper(fresh, "UPDATE deliveries SET outcome = 'sent', error = NULL WHERE event_id = $1", FAILED.event_id)
    report = fresh.get("/v1/audit/verify", role="front").json()
    assert not report["ok"]
    assert report["first_broken"] == {
        "seq": seq_of(fresh, FAILED), "event_id": str(FAILED.event_id),
        "reason": "the stored event differs from its audit record in outcome, error (altered)"}


async def test_deliveries_kept_before_their_template_column_pass_once_oversight_starts_again(fresh):
    await tamper(fresh, "UPDATE deliveries SET template = NULL")  # as rows written before the column was
    assert fresh.get("/v1/audit/verify", role="front").json()["first_broken"] is not None
    await start_again(fresh)
    report = fresh.get("/v1/audit/verify", role="front").json()
    assert report["ok"], report


async def test_an_event_shown_at_another_time_or_from_another_producer_is_named(fresh):
    accepted = STORIES[1].events[3]
    await tamper(fresh, "UPDATE case_events SET occurred_at = occurred_at - interval '1 day', producer = 'centre'"
                        " WHERE event_id = $1", accepted.event_id)
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert not report["ok"] and report["case_mismatch"] is None  # the case row is folded from the bodies
    assert report["first_broken"] == {
        "seq": seq_of(fresh, accepted), "event_id": str(accepted.event_id),
        "reason": "the stored event differs from its audit record in occurred_at, producer (altered)"}


async def test_a_chain_cut_short_does_not_pass_through_the_checkpoints_past_its_end(fresh):
    """The last case taken out whole: its records, its events, its row, and the head set back."""
    cut = EVENTS - len(STORIES[2].bodies())
    assert seq_of(fresh, STORIES[2].events[0]) == cut + 1
    conn = await asyncpg.connect(fresh.settings.dsn())
    try:
        await conn.execute("DELETE FROM audit_log WHERE seq > $1", cut)
        await conn.execute("UPDATE audit_head SET seq = $1, hash = (SELECT hash FROM audit_log WHERE seq = $1)", cut)
        for table in ("case_events", "deliveries", "cases"):
            await conn.execute(f"DELETE FROM {table} WHERE case_id = $1", STORIES[2].case_id)
    finally:
        await conn.close()
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert report["first_broken"] is None and report["case_mismatch"] is None and report["chained"] == cut
    assert not report["ok"]
    assert [(c["seq"], c["recomputed"]) for c in report["checkpoints"]["mismatched"]] == [(15, None), (20, None)]


def test_a_resume_point_that_is_no_record_of_the_trail_is_refused(api):
    past_bigint = 2**63
    assert api.get(f"/v1/audit/checkpoints?after={past_bigint}", role="front").status_code == 422
    assert api.get(f"/v1/audit/events?after={past_bigint}", role="front").status_code == 422
    for last_event_id in ("²", str(past_bigint)):  # "²".isdigit() holds; int("²") fails
        answer = api.get("/v1/audit/events?follow=true", role="front",
                         headers={"Last-Event-ID": last_event_id.encode("latin-1")})
        assert answer.status_code == 422 and "Last-Event-ID" in answer.json()["detail"]


async def test_a_deleted_event_is_named(fresh):
    first = STORIES[0].events[0]
    await tamper(fresh, "DELETE FROM case_events WHERE event_id = $1", first.event_id)
    report = fresh.get("/v1/audit/verify", role="centre").json()
    assert report["first_broken"] == {"seq": 1, "event_id": str(first.event_id),
                                      "reason": "the audited event is missing from the read model"}


async def test_an_audit_records_own_columns_altered_are_named(fresh):
    """The hash covers the audited text, but the trail serves its event type, case and time from
    columns beside it, which verify never compared: another case's record passed as sound."""
    accepted = STORIES[1].events[3]
    await tamper(fresh, "UPDATE audit_log SET case_id = $2, event_type = 'CaseResolved' WHERE event_id = $1",
                 accepted.event_id, STORIES[0].case_id)
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert not report["ok"]
    assert report["first_broken"] == {
        "seq": seq_of(fresh, accepted), "event_id": str(accepted.event_id),
        "reason": "the audit record's event_type, case_id differ from its hashed text (altered)"}


async def test_a_delivery_added_under_a_case_events_id_is_named(fresh):
    """A row added to deliveries with the id of a real case event showed in the case's timeline, and
    verify read only the case event of that id: it passed."""
    opened = STORIES[0].events[0]
    await tamper(fresh, "INSERT INTO deliveries (delivery_id, event_id, case_id, recipient, channel, outcome, attempts,"
                        " error, occurred_at, template) VALUES (gen_random_uuid(), $1, $2, 'citizen', 'sms', 'failed',"
                        " 5, 'unreachable', now(), 'case_resolved')", opened.event_id, opened.case_id)
    report = fresh.get("/v1/audit/verify", role="council").json()
    assert not report["ok"] and report["first_broken"]["event_id"] == str(opened.event_id)
    assert "both as a case event and as a delivery" in report["first_broken"]["reason"]


async def test_a_corrected_address_an_older_oversight_did_not_project_is_mended_as_oversight_starts(fresh):
    """The router may be upgraded first: an oversight that did not know CaseDeclined's corrected
    address kept the first one, and verify then named the case as altered once oversight was new."""
    story = CaseStory().opened().routed().assigned().declined("88 Phan Văn Trị, Phường 10, Gò Vấp").routed()
    feed = DirectFeed(fresh.settings)
    feed.offsets = dict.fromkeys(feed.offsets, 10_000)  # past what the fixture's history took
    assert await feed.apply([story]) == len(story.bodies())
    await tamper(fresh, "UPDATE cases SET address = $2 WHERE case_id = $1", story.case_id, story.address)
    before = fresh.get("/v1/audit/verify", role="front").json()
    assert before["case_mismatch"]["columns"] == ["address"], before
    await start_again(fresh)
    mended = fresh.get(f"/v1/cases/{story.case_id}", role="centre").json()
    assert mended["address"] == "88 Phan Văn Trị, Phường 10, Gò Vấp"
    report = fresh.get("/v1/audit/verify", role="front").json()
    assert report["ok"], report


NUMBER_WRITTEN = "Nhà chị Lan hết gạo, gọi 0903 123 456 hoặc 028.3822.1234, thư lan.tran@gmail.com"


async def test_phone_numbers_written_into_the_text_are_masked_in_the_trail_and_it_verifies(fresh):
    """The trail is handed to HĐND and MTTQ whole: a number a citizen wrote into a description was in
    it as written, though every case view masks it for them."""
    story = CaseStory(description=NUMBER_WRITTEN).opened().routed()
    feed = DirectFeed(fresh.settings)
    feed.offsets = dict.fromkeys(feed.offsets, 10_000)  # past what the fixture's history took
    assert await feed.apply([story]) == 2
    records, _ = trail(fresh)
    opened = next(r for r in records if r["event_id"] == str(story.events[0].event_id))
    assert "123 456" not in opened["canonical"] and "3822" not in opened["canonical"]
    assert "lan.tran@" not in opened["canonical"] and "l*******@gmail.com" in opened["canonical"]
    assert "Nhà chị Lan hết gạo, gọi **** *** 456" in opened["canonical"] and "masked_text_hmac" in opened["canonical"]
    assert fresh.get("/v1/audit/verify", role="front").json()["ok"]
    # The centre still reads the text as written, in the case's events.
    events = fresh.get(f"/v1/cases/{story.case_id}/timeline", role="centre").json()["events"]
    assert events[0]["body"]["description"] == NUMBER_WRITTEN
    # A digit changed where the trail shows a star is still found: the text as written is bound by its digest.
    await tamper(fresh, "UPDATE case_events SET body = jsonb_set(body, '{description}', to_jsonb($2::text))"
                        " WHERE event_id = $1", story.events[0].event_id, NUMBER_WRITTEN.replace("123 456", "923 456"))
    report = fresh.get("/v1/audit/verify", role="front").json()
    assert not report["ok"] and report["first_broken"]["seq"] == opened["seq"]
    assert "differs from its audit record" in report["first_broken"]["reason"]


async def test_a_trail_begun_before_masking_keeps_its_records_and_masks_what_comes_after(fresh):
    """Records made before keep the text they were hashed with, or the checkpoints HĐND and MTTQ kept
    of them would no longer match; what occurs after the upgrade is masked."""
    await tamper(fresh, "DELETE FROM audit_form")  # a database an oversight that did not mask began
    earlier = CaseStory(description=NUMBER_WRITTEN).opened()
    feed = DirectFeed(fresh.settings)
    feed.offsets = dict.fromkeys(feed.offsets, 10_000)
    await feed.apply([earlier])
    kept = fresh.get("/v1/audit/checkpoints", role="council").json()["head"]
    await start_again(fresh)
    later = CaseStory(description=NUMBER_WRITTEN, received_at=datetime.now(UTC) + timedelta(seconds=1)).opened()
    await feed.apply([later])
    texts = {r["event_id"]: r["canonical"] for r in trail(fresh)[0]}
    assert "0903 123 456" in texts[str(earlier.events[0].event_id)]
    assert "0903 123 456" not in texts[str(later.events[0].event_id)]
    report = fresh.get(f"/v1/audit/verify?seq={kept['seq']}&hash={kept['hash']}", role="council").json()
    assert report["ok"] and report["checkpoint"]["matches"], report


async def test_a_trail_masked_before_e_mail_addresses_were_keeps_its_records_and_masks_what_comes_after(fresh):
    """Records of the first masked form (a number's first and last digits shown, e-mail addresses
    as written) keep the text they were hashed with, and the checkpoints kept of them still match;
    what occurs after the upgrade shows only a number's last digits, and no e-mail address."""
    feed = DirectFeed(fresh.settings)
    feed.offsets = dict.fromkeys(feed.offsets, 10_000)
    await tamper(fresh, "UPDATE audit_form SET contacts_since = NULL")  # a trail begun before the column
    await start_again(fresh)  # the upgrade: the events that occur from now on take the contacts form
    earlier = CaseStory(description=NUMBER_WRITTEN, received_at=datetime.now(UTC) - timedelta(hours=1)).opened()
    await feed.apply([earlier])
    kept = fresh.get("/v1/audit/checkpoints", role="council").json()["head"]
    later = CaseStory(description=NUMBER_WRITTEN, received_at=datetime.now(UTC) + timedelta(seconds=1)).opened()
    await feed.apply([later])
    texts = {r["event_id"]: r["canonical"] for r in trail(fresh)[0]}
    assert "gọi 090* *** *56" in texts[str(earlier.events[0].event_id)]
    assert "lan.tran@gmail.com" in texts[str(earlier.events[0].event_id)]
    assert "gọi **** *** 456" in texts[str(later.events[0].event_id)]
    assert "lan.tran@" not in texts[str(later.events[0].event_id)]
    report = fresh.get(f"/v1/audit/verify?seq={kept['seq']}&hash={kept['hash']}", role="council").json()
    assert report["ok"] and report["checkpoint"]["matches"], report
