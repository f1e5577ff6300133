"""The Zalo OA channel over real HTTP: signed webhook events in, the chatbot's replies out at a local
stand-in for the OA API, and the confirmed request on the real Kafka topic."""

import asyncio
import json
import secrets
import threading
import time
import uuid

import asyncpg
import httpx
import pytest

from contracts import ids
from services.intake.dialogue import WELCOME
from services.intake.zalo_store import ZaloInbox
from tests.integration.intake.harness import StandIn, unused_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
OA_ID = "388613280878808645"


class Citizen:
    """One Zalo user talking to the OA: every event signed with this run's keys, in Zalo's shape."""

    def __init__(self, keys, intake, client: httpx.AsyncClient):
        self.keys, self.intake, self.client = keys, intake, client
        self.user_id = str(secrets.randbelow(10**18))
        self.clock = int(time.time() * 1000)

    def event(self, name: str, text: str | None = None, **extra) -> dict:
        self.clock += 1000
        event = {"app_id": self.keys.zalo_app_id, "user_id_by_app": self.user_id, "event_name": name,
                 "timestamp": str(self.clock), "sender": {"id": self.user_id}, "recipient": {"id": OA_ID}}
        if name == "follow":
            event["follower"] = {"id": self.user_id}
        if text is not None:
            event["message"] = {"msg_id": secrets.token_hex(10), "text": text}
        return event | extra

    async def send(self, event: dict, secret: str | None = None, headers: dict | None = None) -> httpx.Response:
        body = json.dumps(event, ensure_ascii=False).encode()
        sign = self.keys.zalo_headers(body, event["timestamp"], secret)
        return await self.client.post(self.intake.url + "/v1/channels/zalo/webhook", content=body,
                                      headers=headers if headers is not None else sign)

    async def tells_a_whole_story(self) -> None:
        """What happened, then the category, the address and the phone: all the dialogue asks."""
        for text in ("Đèn đường hỏng cả dãy, buổi tối rất tối và nguy hiểm", "chiếu sáng",
                     "88 Phan Văn Trị, Phường 10, Gò Vấp", "0934567890"):
            await self.says(text)

    async def says(self, text: str) -> httpx.Response:
        answer = await self.send(self.event("user_send_text", text))
        assert answer.status_code == 200, answer.text
        return answer


async def replies(oa, user_id: str, count: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(oa.texts_to(user_id)) < count:
        assert time.monotonic() < deadline, f"expected {count} replies, got {oa.texts_to(user_id)}"
        await asyncio.sleep(0.05)
    return oa.texts_to(user_id)


async def test_the_dialogue_goes_from_greeting_to_a_confirmed_request_on_the_topic(intake, keys, oa, tail):
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        assert (await citizen.send(citizen.event("follow"))).status_code == 200
        said = await replies(oa, citizen.user_id, 2)
        assert "xin chào" in said[0] and "lĩnh vực" in said[1] and "1. Hộ gia đình thiếu nhu yếu phẩm" in said[1]

        await citizen.says("1")
        assert "địa chỉ" in (await replies(oa, citizen.user_id, 3))[-1]
        await citizen.says("12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận")
        assert "số điện thoại" in (await replies(oa, citizen.user_id, 4))[-1]
        await citizen.says("số 12")
        assert "không hợp lệ" in (await replies(oa, citizen.user_id, 6))[-2]
        await citizen.says("0903 123 456")
        assert "mô tả sự việc" in (await replies(oa, citizen.user_id, 7))[-1]
        await citizen.says("Gia đình 5 người đang cách ly, hết gạo.")
        read_back = (await replies(oa, citizen.user_id, 8))[-1]
        for shown in ("Hộ gia đình thiếu nhu yếu phẩm", "Nguyễn Văn Trỗi", "+84903123456", "hết gạo", "ĐỒNG Ý"):
            assert shown in read_back

        confirm = citizen.event("user_send_text", "Đồng ý")
        await citizen.send(confirm)
        receipt = (await replies(oa, citizen.user_id, 9))[-1]

    code = receipt.split("Mã tra cứu: ")[1][:11]
    [event] = [e for e in await tail.read(lambda seen: any(e.tracking_code == code for e in seen))
               if e.tracking_code == code]
    assert event.channel == "zalo" and event.channel_key == confirm["message"]["msg_id"]
    assert event.citizen.zalo_user_id == citizen.user_id and event.citizen.phone == "+84903123456"
    assert event.category == "essential_supplies" and event.address.startswith("12 Nguyễn Văn Trỗi")
    sent = oa.received[-1]
    assert sent[2]["access_token"] == keys.zalo_token and sent[3]["recipient"]["user_id"] == citizen.user_id


async def test_a_story_told_first_is_kept_and_only_what_is_missing_is_asked(intake, keys, oa):
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.tells_a_whole_story()
        said = await replies(oa, citizen.user_id, 5)
    assert "Chiếu sáng công cộng" in said[-1] and "Đèn đường hỏng" in said[-1]
    assert not any("mô tả sự việc" in s for s in said)


async def test_forged_and_stale_events_are_refused(intake, keys):
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        event = citizen.event("user_send_text", "xin chào")
        forged = await citizen.send(event, secret="not-the-oa-secret")
        unsigned = await citizen.send(event, headers={"Content-Type": "application/json"})
        tampered_body = json.dumps({**event, "message": {**event["message"], "text": "khác"}}).encode()
        tampered = await client.post(intake.url + "/v1/channels/zalo/webhook", content=tampered_body,
                                     headers=keys.zalo_headers(json.dumps(event).encode(), event["timestamp"]))
        stale = citizen.event("user_send_text", "xin chào")
        stale["timestamp"] = str(int(time.time() * 1000) - 10 * 60 * 1000)
        too_old = await citizen.send(stale)
    assert [r.status_code for r in (forged, unsigned, tampered)] == [401, 401, 401]
    assert too_old.status_code == 401 and "Stale" in too_old.json()["errors"][0]["reason_en"]


async def test_an_event_sent_again_is_taken_once_and_not_counted_against_the_citizen(intake, keys, oa):
    """Zalo sends an event again when intake's answer came late. Refused (401), it went on sending
    it; counted, forty copies of one "xin chào" locked the citizen out for a minute (429)."""
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        event = citizen.event("user_send_text", "xin chào")
        answers = [await citizen.send(event) for _ in range(40)]
        greeted = await replies(oa, citizen.user_id, 2)
        after = await citizen.says("1")
        asked = await replies(oa, citizen.user_id, 3)
    assert {a.status_code for a in answers} == {200}
    assert after.status_code == 200, after.text
    assert asked[:2] == greeted and asked.count(greeted[0]) == 1, "greeted once, then answered what came after"


async def test_the_webhook_answers_at_once_while_the_oa_api_is_slow(start_intake, keys, oa):
    # A send waits on the OA API longer than the client waits for the webhook: one that waited for
    # the send would time out.
    intake = start_intake(zalo_send_timeout_seconds=50.0)
    oa.gate.clear()  # the OA API answers nothing until the webhook has been answered
    try:
        async with httpx.AsyncClient(timeout=15) as client:  # a webhook waiting on the OA API: a time-out
            citizen = Citizen(keys, intake, client)
            answer = await citizen.says("xin chào")
            assert answer.status_code == 200, answer.text
            oa.gate.set()
            assert "xin chào" in (await replies(oa, citizen.user_id, 1, timeout=30))[0]
    finally:
        oa.gate.set()


async def test_a_hanging_oa_api_never_takes_the_pool_the_other_channels_use(start_intake, keys, oa):
    """Each user's replies were sent holding a pooled connection for as long as the OA API took: four
    users answered while it hung took a pool of four, and the Zalo webhook and every other channel
    of intake waited on it."""
    intake = start_intake(pg_pool_size=4, zalo_send_timeout_seconds=50.0)  # past the client's 30 s
    oa.gate.clear()  # the OA API answers nothing until the newcomers have been answered
    try:
        # Waiting on the OA API, the answers below would not come before the client's time-out.
        async with httpx.AsyncClient(timeout=30) as client:
            for citizen in [Citizen(keys, intake, client) for _ in range(4)]:
                await citizen.says("xin chào")
            deadline = time.monotonic() + 10
            while len(oa.bodies()) < 4:  # four users' replies on their way, the OA API not answering
                assert time.monotonic() < deadline, "the replies did not go out"
                await asyncio.sleep(0.05)
            newcomer = Citizen(keys, intake, client)
            fifth = await newcomer.send(newcomer.event("user_send_text", "alo"))
            web = await client.post(intake.url + "/v1/channels/web/requests",
                                    headers={"Idempotency-Key": f"h-{secrets.token_hex(6)}"},
                                    json={"full_name": "Lê Văn Tám", "phone": "0934567892", "category": "lighting",
                                          "address": "88 Phan Văn Trị, Phường 10, Gò Vấp",
                                          "description": "Đèn hỏng", "is_public": False})
    finally:
        oa.gate.set()
    assert fifth.status_code == 200 and web.status_code == 202, web.text


async def test_status_lookups_against_a_hanging_oversight_never_hold_up_a_zalo_reply(start_intake, keys, oa):
    """Open311's status lookups, which anyone may send, asked oversight through the client Zalo's
    replies use: 100 lookups waiting on a slow oversight took every connection, and citizens on Zalo
    heard nothing back."""
    gate = threading.Event()  # oversight answers nothing until the citizen on Zalo has been answered
    hanging = StandIn(lambda *_: (gate.wait(60), (404, {"detail": "no request"}))[1])
    intake = start_intake(oversight_url=hanging.url, oversight_timeout_seconds=50.0)
    codes = [ids.tracking_code(uuid.uuid4()) for _ in range(120)]
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as client:
            lookups = [asyncio.create_task(client.get(f"{intake.url}/open311/v2/requests/{code}.json"))
                       for code in codes]
            deadline = time.monotonic() + 10
            while len(hanging.received) < 16:  # lookups on their way, oversight not answering
                assert time.monotonic() < deadline, "the lookups did not reach oversight"
                await asyncio.sleep(0.05)
            citizen = Citizen(keys, intake, client)
            await citizen.says("xin chào")
            # Waiting on the lookups' connections, the reply would not come before oversight answers.
            assert "xin chào" in (await replies(oa, citizen.user_id, 1, timeout=30))[0]
            assert not gate.is_set()
            gate.set()
            answers = await asyncio.gather(*lookups)
        # Each lookup is answered: oversight's answer, or 503 for one past what intake asks at once.
        assert {a.status_code for a in answers} <= {404, 503} and 404 in {a.status_code for a in answers}
    finally:
        gate.set()
        hanging.close()


async def test_a_reply_the_oa_api_took_is_not_sent_again_when_a_shutdown_cuts_the_round(start_intake, keys, oa):
    """The welcome went out and the question after it was in flight when intake stopped. All of the
    round's "sent" marks were one transaction, undone by the stop: the citizen got the welcome twice."""
    oa.delay_for = lambda text: 0.0 if text == WELCOME else 60.0
    first = start_intake(zalo_send_timeout_seconds=60.0)
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, first, client)
        await citizen.says("xin chào")
        welcome, question = await replies(oa, citizen.user_id, 2)
        assert welcome == WELCOME
        first.stop()  # its sends are given a few seconds, then cut off
        oa.delay_for = None
        citizen.intake = start_intake()
        await replies(oa, citizen.user_id, 3, timeout=30)
        await asyncio.sleep(2.0)  # a few of its sweeps: nothing more goes out
    assert oa.texts_to(citizen.user_id) == [WELCOME, question, question]


async def test_a_flooding_zalo_user_gets_429(start_intake, keys):
    intake = start_intake(zalo_message_limit=3)
    async with httpx.AsyncClient(timeout=15) as client:
        flooder, other = Citizen(keys, intake, client), Citizen(keys, intake, client)
        answers = [await flooder.send(flooder.event("user_send_text", "alo")) for _ in range(4)]
        theirs = await other.send(other.event("user_send_text", "alo"))
    assert [a.status_code for a in answers] == [200, 200, 200, 429] and "Retry-After" in answers[3].headers
    assert theirs.status_code == 200


async def test_a_conversation_survives_a_restart_and_a_kafka_outage(start_intake, keys, oa, tail):
    cut_off = start_intake(healthy=False, kafka_bootstrap=f"127.0.0.1:{unused_port()}")
    async with httpx.AsyncClient(timeout=15) as client:
        deadline = time.monotonic() + 20
        while not (await client.get(cut_off.url + "/healthz")).json()["postgres"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        citizen = Citizen(keys, cut_off, client)
        for text in ("Cụ bà 82 tuổi sống một mình, cần người hỗ trợ", "3", "P. Thảo Điền, Q.2", "0987654321"):
            await citizen.says(text)
        await replies(oa, citizen.user_id, 5)
        await citizen.says("ok")  # confirmed while Kafka cannot be reached: kept, not lost
        await asyncio.sleep(1.0)
        assert len(oa.texts_to(citizen.user_id)) == 5
        cut_off.stop()

        citizen.intake = start_intake()  # the same database, a working Kafka
        receipt = (await replies(oa, citizen.user_id, 6))[-1]
    code = receipt.split("Mã tra cứu: ")[1][:11]
    found = await tail.read(lambda seen: any(e.tracking_code == code for e in seen))
    [event] = [e for e in found if e.tracking_code == code]
    assert event.category == "vulnerable_person" and event.citizen.phone == "+84987654321"


async def test_a_photo_sent_just_before_the_yes_and_taken_by_another_instance_goes_with_the_request(
        intake, keys, oa, tail, pg_admin_dsn, intake_database):
    """The citizen sent a photo and, a moment later, "Đồng ý". Behind a load balancer each reached
    another instance, and the photo was recorded a little after the "Đồng ý" had woken the dialogue:
    the request went without the photo, and the photo began a new conversation with a welcome."""
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.tells_a_whole_story()
        assert "ĐỒNG Ý" in (await replies(oa, citizen.user_id, 5))[-1]
        photo = citizen.event("user_send_image", message={"msg_id": secrets.token_hex(10), "attachments": [
            {"type": "image", "payload": {"url": "https://photo-stal.zadn.vn/1022/den-hong.jpg"}}]})
        yes = citizen.event("user_send_text", "Đồng ý")
        assert (await citizen.send(yes)).status_code == 200
        await asyncio.sleep(0.1)  # the other instance records the photo, as its webhook would
        pool = await asyncpg.create_pool(pg_admin_dsn.rsplit("/", 1)[0] + "/" + intake_database, min_size=1,
                                         max_size=1)
        try:
            assert await ZaloInbox(pool).record(photo["message"]["msg_id"], citizen.user_id, "user_send_image",
                                                int(photo["timestamp"]), json.dumps(photo).encode())
        finally:
            await pool.close()
        said = await replies(oa, citizen.user_id, 8)
    assert said[5] == "Đã nhận tệp đính kèm (1)." and "Tệp đính kèm: 1" in said[6] and "Mã tra cứu" in said[7], said[5:]
    code = said[7].split("Mã tra cứu: ")[1][:11]
    [event] = [e for e in await tail.read(lambda seen: any(e.tracking_code == code for e in seen))
               if e.tracking_code == code]
    assert [a.url for a in event.attachments] == ["https://photo-stal.zadn.vn/1022/den-hong.jpg"]


async def test_a_burst_of_messages_as_a_citizen_confirms_never_stalls_intake(start_intake, keys, oa):
    """Each message once started a task that took a pooled connection and waited on the user's row
    lock, while the task holding it needed one more connection to submit: a burst as small as the
    pool hung every channel of intake, for good. Here the pool has four connections."""
    intake = start_intake(pg_pool_size=4)
    async with httpx.AsyncClient(timeout=15) as client:
        citizen = Citizen(keys, intake, client)
        await citizen.tells_a_whole_story()
        assert "ĐỒNG Ý" in (await replies(oa, citizen.user_id, 5))[-1]
        burst = [citizen.event("user_send_text", "Đồng ý")] + \
            [citizen.event("user_send_text", f"Xin hỗ trợ sớm ({n})") for n in range(8)]
        answers = await asyncio.gather(*(citizen.send(event) for event in burst))
        assert [a.status_code for a in answers] == [200] * len(burst)
        said = await replies(oa, citizen.user_id, 6, timeout=30)
        assert any("Mã tra cứu" in s for s in said), said
        web = await client.post(intake.url + "/v1/channels/web/requests",
                                headers={"Idempotency-Key": f"b-{citizen.user_id}"}, json={"full_name": "Lê Văn Tám", "phone": "0934567891", "category": "lighting",
                                      "address": "88 Phan Văn Trị, Phường 10, Gò Vấp", "description": "Đèn hỏng",
                                      "is_public": False})
    assert web.status_code == 202, web.text
