"""The web channel over real HTTP, real Kafka and PostgreSQL: the JSON endpoint and the HTML form."""

import asyncio
import json
import re
import unicodedata
import uuid

import asyncpg
import httpx
import pytest

from contracts import ids
from tests.integration.intake.harness import unused_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REQUEST = {"full_name": unicodedata.normalize("NFD", "Nguyễn Thị Hoa"), "phone": "0903 123 456",
           "address": "12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận", "category": "essential_supplies",
           "description": "Gia đình 5 người đang cách ly, hết gạo.", "is_public": True,
           "attachments": [{"url": "https://example.org/anh-1.jpg", "media_type": "image/jpeg"}]}
# The smallest PNG there is: one transparent pixel.
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6300010000050001a5f645400000000049454e44ae426082")


async def post(client, intake, body=REQUEST, key=None):
    return await client.post(intake.url + "/v1/channels/web/requests", json=body,
                             headers={"Idempotency-Key": key or str(uuid.uuid4())})


async def test_a_web_request_arrives_on_the_topic_once_however_often_it_is_sent(intake, tail):
    key = f"web-{uuid.uuid4()}"
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await post(client, intake, key=key) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 202]
    receipt = answers[0].json()
    assert all(a.json() == receipt for a in answers)
    assert ids.normalise_tracking_code(receipt["tracking_code"]) == receipt["tracking_code"]

    await tail.settle()
    found = tail.with_ids({receipt["request_id"]})
    assert len(found) == 1, "a retry must not publish the request again"
    event = found[0]
    assert (event.channel, event.channel_key, event.tracking_code) == ("web", key, receipt["tracking_code"])
    assert event.citizen.phone == "+84903123456"
    assert event.citizen.full_name == unicodedata.normalize("NFC", "Nguyễn Thị Hoa")
    assert event.category == "essential_supplies" and event.is_public
    assert event.attachments[0].url == "https://example.org/anh-1.jpg"


async def test_bad_input_is_refused_naming_the_field_in_vietnamese_and_english(intake):
    async with httpx.AsyncClient(timeout=15) as client:
        no_key = await client.post(intake.url + "/v1/channels/web/requests", json=REQUEST)
        bad_phone = await post(client, intake, {**REQUEST, "phone": "12"})
        no_name = await post(client, intake, {k: v for k, v in REQUEST.items() if k != "full_name"})
        ufo = await post(client, intake, {**REQUEST, "category": "ufo"})
        link = await post(client, intake, {**REQUEST, "attachments": [{"url": "javascript:alert(1)"}]})
        reused = f"web-{uuid.uuid4()}"
        first = await post(client, intake, key=reused)
        changed = await post(client, intake, {**REQUEST, "description": "Một chuyện khác hẳn."}, key=reused)
    assert no_key.status_code == 400 and no_key.json()["errors"][0]["field"] == "Idempotency-Key"
    assert bad_phone.status_code == 422
    assert bad_phone.json()["errors"] == [{"field": "phone", "reason_vi": "Số điện thoại không hợp lệ",
                                           "reason_en": "Not a valid phone number"}]
    assert no_name.status_code == 422
    assert no_name.json()["errors"][0] == {"field": "full_name", "reason_vi": "Thiếu thông tin bắt buộc",
                                           "reason_en": "Field required"}
    assert ufo.status_code == 422 and "essential_supplies" in ufo.json()["errors"][0]["reason_vi"]
    assert link.status_code == 422 and link.json()["errors"][0]["field"].startswith("attachments")
    assert first.status_code == 202 and changed.status_code == 422


async def post_escaped(client, intake, body):
    """Sent as JSON with ASCII escapes, so that it can carry what httpx would refuse (lone surrogates)."""
    return await client.post(intake.url + "/v1/channels/web/requests", content=json.dumps(body).encode(),
                             headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})


async def test_a_location_that_is_not_one_is_refused_naming_the_field(intake):
    locations = {"location.ward_code": {"ward_code": "\ud800"}, "location.district_code": {"district_code": "7\udfff"},
                 "location.latitude": {"latitude": 90.5, "longitude": 106.7},
                 "location.longitude": {"latitude": 10.8, "longitude": -180.01}}
    async with httpx.AsyncClient(timeout=15) as client:
        answers = {field: await post_escaped(client, intake, {**REQUEST, "location": location})
                   for field, location in locations.items()}
        too_long = await post_escaped(client, intake, {**REQUEST, "location": {"ward_code": "2" * 33}})
        fine = await post_escaped(client, intake, {**REQUEST, "location": {"latitude": -90, "longitude": 180,
                                                                           "ward_code": " 26734 ", "district_code": "770"}})
    for field, answer in answers.items():
        assert answer.status_code == 422, field
        assert [e["field"] for e in answer.json()["errors"]] == [field]
        assert answer.json()["errors"][0]["reason_vi"] and answer.json()["errors"][0]["reason_en"]
    assert too_long.status_code == 422 and too_long.json()["errors"] == [
        {"field": "location.ward_code", "reason_vi": "Quá dài (tối đa 32 ký tự)", "reason_en": "Too long (at most 32 characters)"}]
    assert fine.status_code == 202, fine.text


async def test_a_name_or_phone_of_control_characters_only_is_missing(intake):
    async with httpx.AsyncClient(timeout=15) as client:
        no_phone = await post_escaped(client, intake, {**REQUEST, "phone": "\u0001"})
        no_name = await post_escaped(client, intake, {**REQUEST, "full_name": "\u0001\u001b "})
    assert no_phone.status_code == 422 and [e["field"] for e in no_phone.json()["errors"]] == ["phone"]
    assert no_name.status_code == 422 and [e["field"] for e in no_name.json()["errors"]] == ["full_name"]
    assert no_name.json()["errors"][0]["reason_vi"] == "Quá ngắn (tối thiểu 1 ký tự)"


@pytest.mark.parametrize("form", ["NFC", "NFD"])
async def test_lengths_are_counted_in_composed_characters_however_the_text_was_typed(intake, tail, form):
    # 4,500 characters composed; decomposed, well over the 5,000 a description may have.
    story = unicodedata.normalize("NFC", "Gia đình tôi gồm 5 người đang cách ly, hết gạo và nhu yếu phẩm. " * 80)[:4500]
    typed = unicodedata.normalize(form, story)
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await post(client, intake, {**REQUEST, "description": typed})
    assert answer.status_code == 202, answer.text
    await tail.settle()
    [event] = tail.with_ids({answer.json()["request_id"]})
    assert event.description == story.strip()


async def test_a_flooding_phone_number_gets_429_with_retry_after(start_intake):
    intake = start_intake(sender_limit=3)
    flooder = {**REQUEST, "phone": "0912 000 111"}
    keys = [str(uuid.uuid4()) for _ in range(4)]
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await post(client, intake, flooder, key) for key in keys]
        someone_else = await post(client, intake, {**REQUEST, "phone": "0912 000 222"})
        retry_of_accepted = await post(client, intake, flooder, keys[0])
    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
    assert answers[3].json()["errors"][0]["field"] == "phone"
    assert someone_else.status_code == 202
    assert retry_of_accepted.status_code == 202, "a retry of an accepted request costs the sender nothing"


async def test_requests_arriving_together_from_one_phone_are_counted_one_by_one(start_intake, tail):
    # Claims that arrive together are written together: the limit must still count each request.
    intake = start_intake(sender_limit=3)
    flooder = {**REQUEST, "phone": "0912 000 333"}
    async with httpx.AsyncClient(timeout=15) as client:
        answers = await asyncio.gather(*(post(client, intake, flooder) for _ in range(8)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * 3 + [429] * 5
    await tail.settle()
    accepted = {a.json()["request_id"] for a in answers if a.status_code == 202}
    assert sorted(str(r.request_id) for r in tail.with_ids(accepted)) == sorted(accepted), "each accepted one once"


async def test_one_request_sent_many_times_at_once_is_published_once(intake, tail):
    key = f"web-{uuid.uuid4()}"
    async with httpx.AsyncClient(timeout=15) as client:
        answers = await asyncio.gather(*(post(client, intake, key=key) for _ in range(6)))
        later = await post(client, intake, key=key)
    assert {a.status_code for a in answers} <= {202, 409} and any(a.status_code == 202 for a in answers)
    assert all(a.headers["Retry-After"] for a in answers if a.status_code == 409), "an answer in progress says when to retry"
    assert later.status_code == 202
    receipt = later.json()
    assert all(a.json() == receipt for a in answers if a.status_code == 202)
    await tail.settle()
    assert len(tail.with_ids({receipt["request_id"]})) == 1, "sent six times at once, published once"


async def test_an_accepted_request_sent_again_several_times_at_once_is_answered_202_each_time(intake, tail):
    key = f"web-{uuid.uuid4()}"
    async with httpx.AsyncClient(timeout=15) as client:
        accepted = await post(client, intake, key=key)
        again = await asyncio.gather(*(post(client, intake, key=key) for _ in range(3)))
        changed = await asyncio.gather(*(post(client, intake, {**REQUEST, "description": "Một chuyện khác."}, key)
                                         for _ in range(2)))
    assert accepted.status_code == 202
    assert [a.status_code for a in again] == [202] * 3 and all(a.json() == accepted.json() for a in again)
    assert [c.status_code for c in changed] == [422] * 2, "the key is taken by another request"
    await tail.settle()
    assert len(tail.with_ids({accepted.json()["request_id"]})) == 1


async def test_kafka_unreachable_means_503_with_retry_after(start_intake):
    intake = start_intake(healthy=False, kafka_bootstrap=f"127.0.0.1:{unused_port()}")
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await post(client, intake)
        health = await client.get(intake.url + "/healthz")
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
    assert health.status_code == 503 and health.json()["kafka"] is False


@pytest.mark.parametrize("end", ["pg_terminate_backend", "pg_cancel_backend"])
async def test_postgresql_ending_a_claim_in_flight_means_503_and_the_retry_is_accepted(
        end, intake, intake_database, pg_admin_dsn, tail):
    """A restart of PostgreSQL ends the connections in flight, an operator or a statement timeout
    cancels a statement (57014): either way the sender is told to retry, and the retry is accepted."""
    key = f"web-{uuid.uuid4()}"
    holder = await asyncpg.connect(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database)
    try:
        async with httpx.AsyncClient(timeout=15) as client:
            async with holder.transaction():
                await holder.execute("LOCK TABLE intake_receipts IN ACCESS EXCLUSIVE MODE")
                pending = asyncio.create_task(post(client, intake, key=key))
                waiting = None
                async with asyncio.timeout(15):
                    while waiting is None:  # intake's claim is waiting for the lock
                        await asyncio.sleep(0.05)
                        waiting = await holder.fetchval("SELECT pid FROM pg_stat_activity WHERE datname = $1"
                                                        " AND wait_event_type = 'Lock'", intake_database)
                await holder.execute(f"SELECT {end}($1)", waiting)
                answer = await pending
            retry = await post(client, intake, key=key)
    finally:
        await holder.close()
    assert answer.status_code == 503 and answer.headers["Retry-After"], answer.text
    assert retry.status_code == 202
    await tail.settle()
    assert len(tail.with_ids({retry.json()["request_id"]})) == 1


async def test_the_form_speaks_vietnamese_first_and_english_on_request(intake):
    async with httpx.AsyncClient(timeout=15) as client:
        vi = await client.get(intake.url + "/")
        en = await client.get(intake.url + "/?lang=en")
    assert vi.status_code == 200 and 'lang="vi"' in vi.text and "Gửi phản ánh" in vi.text
    assert "Hộ gia đình thiếu nhu yếu phẩm" in vi.text
    assert 'lang="en"' in en.text and "Household short of essential supplies" in en.text
    assert re.search(r'name="form_key" value="[0-9a-f-]{36}"', vi.text)


async def test_the_form_posts_with_an_upload_and_shows_the_tracking_code(intake, tail):
    form_key = str(uuid.uuid4())
    fields = {"form_key": form_key, "full_name": "Lê Thị Mai", "phone": "0987654321",
              "address": "P. Thảo Điền, Q.2", "category": "vulnerable_person",
              "description": "Cụ bà 82 tuổi sống một mình, cần người hỗ trợ.", "is_public": "0",
              "attachment_links": "https://example.org/a.jpg\n"}
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/", data=fields, files={"files": ("cụ bà.png", PNG, "image/png")})
                   for _ in range(2)]
        assert [a.status_code for a in answers] == [303, 303]
        location = answers[0].headers["location"]
        assert location == answers[1].headers["location"], "a resubmitted form is the same request"
        code = location.split("/received/")[1].split("?")[0]
        page = await client.get(intake.url + location)
        assert page.status_code == 200 and code in page.text

        await tail.settle()
        [event] = [e for e in tail.seen if e.tracking_code == code]
        assert event.channel == "web" and event.channel_key.startswith(form_key) and not event.is_public
        assert [a.url for a in event.attachments][0] == "https://example.org/a.jpg"
        uploaded = event.attachments[1]
        assert uploaded.media_type == "image/png" and uploaded.name == "cụ bà.png"
        stored = await client.get(uploaded.url)
        assert stored.status_code == 200 and stored.content == PNG
        assert stored.headers["x-content-type-options"] == "nosniff"


async def test_a_double_clicked_form_is_one_request_with_its_files(intake, tail):
    """The second click came while the first was being accepted: it got the form back (409) without
    its files, and sent again as it said, that was a second case with none. Both clicks now lead
    to the one request's code."""
    fields = {"form_key": str(uuid.uuid4()), "full_name": "Lê Thị Mai", "phone": "0987654322",
              "address": "P. Thảo Điền, Q.2", "category": "vulnerable_person",
              "description": "Cụ ông 85 tuổi sống một mình, cần người hỗ trợ.", "is_public": "0"}
    async with httpx.AsyncClient(timeout=15) as client:
        for _ in range(3):  # a few double clicks: each pair lands in one moment, its clicks in one claim
            fields["form_key"] = str(uuid.uuid4())
            answers = await asyncio.gather(*(client.post(intake.url + "/", data=fields,
                                                         files={"files": ("ông.png", PNG, "image/png")})
                                              for _ in range(2)))
            assert [a.status_code for a in answers] == [303, 303], [a.text[:300] for a in answers]
            assert answers[0].headers["location"] == answers[1].headers["location"]
    await tail.settle()
    mine = [e for e in tail.seen if e.citizen.phone == "+84987654322"]
    assert len(mine) == 3 and all(len(e.attachments) == 1 for e in mine)


async def test_a_form_refused_for_its_sender_keeps_none_of_its_files(start_intake, pg_port, intake_database):
    """The files were stored before the sender's limit was checked, and kept for good: anyone could
    fill the database 25 MiB a post while being refused with 429."""
    intake = start_intake(sender_limit=1)
    files = [bytes(PNG + bytes([n])) for n in range(2)]  # two files, as two posts' own
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/", files={"files": (f"ảnh {n}.png", content, "image/png")},
                                     data={"form_key": str(uuid.uuid4()), "full_name": "Lê Thị Mai",
                                           "phone": "0987654323", "address": "P. Thảo Điền, Q.2",
                                           "category": "vulnerable_person", "description": f"Lần {n}."})
                   for n, content in enumerate(files)]
    assert [a.status_code for a in answers] == [303, 429]
    conn = await asyncpg.connect(f"postgresql://mesh@127.0.0.1:{pg_port}/{intake_database}")
    try:
        kept = await conn.fetch("SELECT content FROM intake_attachments")
    finally:
        await conn.close()
    assert [r["content"] for r in kept] == files[:1]


async def test_a_form_whose_files_cannot_be_kept_in_time_is_told_to_come_back_and_then_taken(
        start_intake, pg_port, intake_database):
    """Keeping the files holds the request's claim as the publish does: with no end to it, a slow
    database left the claim pending, and the citizen's second click got the form back (409)."""
    intake = start_intake(publish_timeout_seconds=1.0)
    fields = {"form_key": str(uuid.uuid4()), "full_name": "Lê Thị Mai", "phone": "0987654324",
              "address": "P. Thảo Điền, Q.2", "category": "vulnerable_person", "description": "Cần hỗ trợ."}
    blocker = await asyncpg.connect(f"postgresql://mesh@127.0.0.1:{pg_port}/{intake_database}")
    async with httpx.AsyncClient(timeout=30) as client:
        async def submit():
            return await client.post(intake.url + "/", data=fields, files={"files": ("ảnh.png", PNG, "image/png")})

        try:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE intake_attachments IN ACCESS EXCLUSIVE MODE")
                slow = await submit()
        finally:
            await blocker.close()
        again = await submit()
    assert slow.status_code == 503 and slow.headers["retry-after"]
    assert again.status_code == 303, again.text[:300]


async def test_a_file_whose_name_has_a_line_break_can_still_be_downloaded(intake, pg_port, intake_database):
    attachment_id = uuid.uuid4()
    conn = await asyncpg.connect(f"postgresql://mesh@127.0.0.1:{pg_port}/{intake_database}")
    try:
        await conn.execute("INSERT INTO intake_attachments (attachment_id, name, media_type, size, sha256, content)"
                           " VALUES ($1, $2, 'image/png', $3, '', $4)",
                           attachment_id, "ảnh\nhỏng\t.png", len(PNG), PNG)
    finally:
        await conn.close()
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.get(f"{intake.url}/v1/attachments/{attachment_id}")
    assert answer.status_code == 200 and answer.content == PNG
    assert answer.headers["content-disposition"] == \
        "attachment; filename=\"?nh?h?ng?.png\"; filename*=UTF-8''%E1%BA%A3nh%0Ah%E1%BB%8Fng%09.png"


async def test_a_file_is_named_as_its_kind_and_downloaded_under_its_vietnamese_name(intake, tail):
    """A GIF by its first bytes, with a page after them, was kept as "bien-ban.html" and downloaded
    by the unit under that name, to open as a page; a Vietnamese name was saved as underscores."""
    page_in_a_gif = b"GIF89a<html><body><script>alert(1)</script></body></html>"
    fields = {"form_key": str(uuid.uuid4()), "full_name": "Lê Thị Mai", "phone": "0987654324",
              "address": "P. Thảo Điền, Q.2", "category": "vulnerable_person",
              "description": "Cụ bà 82 tuổi sống một mình, cần người hỗ trợ.", "is_public": "0"}
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/", data=fields, files=[
            ("files", ("bien-ban.html", page_in_a_gif, "text/html")),
            ("files", ("ảnh hiện trường.png", PNG, "image/png"))])
        assert answer.status_code == 303, answer.text
        code = answer.headers["location"].split("/received/")[1].split("?")[0]
        await tail.settle()
        [event] = [e for e in tail.seen if e.tracking_code == code]
        assert [(a.name, a.media_type) for a in event.attachments] == [
            ("bien-ban.gif", "image/gif"), ("ảnh hiện trường.png", "image/png")]
        gif, png = [await client.get(a.url) for a in event.attachments]
    assert gif.headers["content-disposition"].startswith('attachment; filename="bien-ban.gif";')
    assert png.headers["content-disposition"].endswith(
        "filename*=UTF-8''%E1%BA%A3nh%20hi%E1%BB%87n%20tr%C6%B0%E1%BB%9Dng.png")


async def test_the_form_is_framed_by_no_other_site_and_says_its_limits_before_files_are_chosen(intake):
    async with httpx.AsyncClient(timeout=15) as client:
        form = await client.get(intake.url + "/")
        refused = await client.post(intake.url + "/", data={"form_key": str(uuid.uuid4())})
    for page in (form, refused):
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "tối đa 5 tệp, mỗi tệp 5 MB" in form.text


async def test_a_form_with_mistakes_comes_back_filled_in_with_the_reasons(intake):
    fields = {"form_key": str(uuid.uuid4()), "full_name": "Trần Văn Nam", "phone": "123",
              "address": "45 Lê Văn Sỹ", "category": "covid_support", "description": "Chưa nhận hỗ trợ."}
    async with httpx.AsyncClient(timeout=15) as client:
        vi = await client.post(intake.url + "/", data=fields)
        en = await client.post(intake.url + "/?lang=en", data=fields)
        script = await client.post(intake.url + "/", data=fields, files={"files": ("x.png", b"<script>", "image/png")})
    assert vi.status_code == 422 and "Số điện thoại không hợp lệ" in vi.text and "45 Lê Văn Sỹ" in vi.text
    assert en.status_code == 422 and "Not a valid phone number" in en.text
    assert script.status_code == 415 and "PDF" in script.text


async def test_a_form_with_a_few_photos_too_many_comes_back_filled_in_saying_how_many(intake):
    """Picking one photo more than the form takes emptied the form: every word the citizen had typed
    was gone, with "the form could not be read" as the only reason."""
    fields = {"form_key": str(uuid.uuid4()), "full_name": "Lê Thị Mai", "phone": "0987654323",
              "address": "P. Thảo Điền, Q.2", "category": "vulnerable_person",
              "description": "Cụ bà 82 tuổi sống một mình, mái nhà bị dột.", "is_public": "0"}
    photos = [("files", (f"anh-{i}.png", PNG, "image/png")) for i in range(8)]
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/", data=fields, files=photos)
    assert answer.status_code == 422 and "Tối đa 5 tệp" in answer.text
    assert "Cụ bà 82 tuổi sống một mình, mái nhà bị dột." in answer.text and fields["form_key"] in answer.text


async def test_two_intake_instances_share_the_rate_limit_and_the_receipts(start_intake, tail):
    one, two = start_intake(sender_limit=2), start_intake(sender_limit=2)
    flooder = {**REQUEST, "phone": "0912 000 333"}
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=15) as client:
        first = await post(client, one, flooder, key)
        retried_elsewhere = await post(client, two, flooder, key)
        second = await post(client, two, flooder)
        third = await post(client, one, flooder)
    assert [first.status_code, retried_elsewhere.status_code, second.status_code, third.status_code] == [202, 202, 202, 429]
    assert retried_elsewhere.json() == first.json()
    await tail.settle()
    assert len(tail.with_ids({first.json()["request_id"]})) == 1


async def test_a_form_field_past_what_a_citizen_can_write_is_refused_before_the_rest_is_read(intake):
    """The form's parser held each text field whole in memory, up to 1 MiB each and 40 of them: one
    post held 40 MiB before anything was checked. The longest a citizen can write still goes in."""
    story = "Gia đình tôi gồm 5 người đang cách ly tại nhà, đã hết gạo và nhu yếu phẩm, xin được hỗ trợ. "
    longest = unicodedata.normalize("NFD", unicodedata.normalize("NFC", story * 60)[:5000]).strip()
    fields = {"full_name": "Lê Thị Mai", "phone": "0987654321", "address": "P. Thảo Điền, Q.2",
              "category": "essential_supplies", "is_public": "0"}
    async with httpx.AsyncClient(timeout=15) as client:
        taken = await client.post(intake.url + "/", files={"files": ("a.png", PNG, "image/png")},
                                  data=fields | {"form_key": str(uuid.uuid4()), "description": longest})
        padded = await client.post(intake.url + "/", files={"files": ("a.png", PNG, "image/png")},
                                   data=fields | {"form_key": str(uuid.uuid4()), "description": "x" * 300_000})
        broken = await client.post(intake.url + "/", content=b"full_name=An", headers={
            "Content-Type": "multipart/form-data"})  # no boundary: not too long, just not a form
    assert taken.status_code == 303, taken.text
    assert padded.status_code == 413 and "quá dài" in padded.text
    assert broken.status_code == 400 and "Không đọc được" in broken.text
