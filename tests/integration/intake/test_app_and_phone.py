"""The mobile app (JWT after OTP) and the phone hotline (operators, callbot) over real HTTP and Kafka."""

import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

BODY = {"full_name": "Trần Văn Nam", "address": "45 Lê Văn Sỹ, P.13, Q.3", "category": "covid_support",
        "description": "Lao động tự do mất việc, chưa nhận được tiền hỗ trợ gói 2.",
        "location": {"latitude": 10.787, "longitude": 106.679}}


def call(operator_id: str = "op-017", **changes) -> dict:
    return {"call_id": f"call-{uuid.uuid4()}", "caller_number": "028 3822 4567", "operator_id": operator_id,
            "ivr_branch": 2, "address": "88 Phan Văn Trị, Phường 10, Gò Vấp", "category": "lighting",
            "description": "Người gọi báo đèn đường hỏng cả dãy.", "full_name": "Phạm Minh Tuấn"} | changes


async def test_an_app_request_carries_the_verified_phone_and_is_not_doubled(intake, keys, tail):
    token = keys.app_token(sub="app-user-7", phone="0912345678")
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": str(uuid.uuid4())}
    async with httpx.AsyncClient(timeout=15) as client:
        first = await client.post(intake.url + "/v1/channels/app/requests", json=BODY, headers=headers)
        again = await client.post(intake.url + "/v1/channels/app/requests", json=BODY, headers=headers)
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    await tail.settle()
    [event] = tail.with_ids({first.json()["request_id"]})
    assert event.channel == "app" and event.channel_key == f"app-user-7/{headers['Idempotency-Key']}"
    assert event.citizen.phone == "+84912345678" and event.citizen.app_user_id == "app-user-7"
    assert event.location.latitude == pytest.approx(10.787)


async def test_two_app_users_never_share_a_request_through_a_slash(intake, keys):
    # One user's subject and key run together as another's would: "a/b" + "c" against "a" + "b/c".
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/v1/channels/app/requests", json=BODY,
                                     headers={"Authorization": f"Bearer {keys.app_token(sub=sub, phone=phone)}",
                                              "Idempotency-Key": key})
                   for sub, key, phone in (("team/7", "k", "0912345678"), ("team", "7/k", "0987654321"))]
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    assert answers[0].json()["request_id"] != answers[1].json()["request_id"]


async def test_bad_app_tokens_are_refused(intake, keys):
    stranger = rsa.generate_private_key(65537, 2048)
    tokens = {
        "missing": None,
        "expired": keys.app_token(expires_in=-120),
        "forged": keys.app_token(key=stranger),
        "unverified": keys.app_token(verified=False),
        "wrong issuer": keys.app_token(iss="someone-else"),
        "hs256 with the public key": jwt.encode({"sub": "x", "phone": "0912345678", "phone_verified": True,
                                                 "exp": 2**31, "iss": "tongdai1022-app"},
                                                "not-the-key-at-all-but-long-enough-for-hs256", algorithm="HS256"),
        "garbage": "abc.def.ghi",
    }
    async with httpx.AsyncClient(timeout=15) as client:
        for what, token in tokens.items():
            headers = {"Idempotency-Key": str(uuid.uuid4())} | ({"Authorization": f"Bearer {token}"} if token else {})
            answer = await client.post(intake.url + "/v1/channels/app/requests", json=BODY, headers=headers)
            assert answer.status_code == 401, what
            assert answer.headers["www-authenticate"] == "Bearer" and answer.json()["errors"][0]["field"] == "Authorization"


async def test_a_flooding_app_user_gets_429(start_intake, keys):
    intake = start_intake(sender_limit=2)
    headers = {"Authorization": f"Bearer {keys.app_token(sub='flooder')}"}
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/v1/channels/app/requests", json=BODY,
                                     headers=headers | {"Idempotency-Key": str(uuid.uuid4())}) for _ in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 429] and answers[2].headers["Retry-After"]


async def test_nobody_can_lock_a_citizens_number_out_of_the_hotline_by_typing_it_into_the_web_form(start_intake, keys):
    """The web's phone numbers are what anyone typed: 20 junk requests with a citizen's number once
    refused that citizen on every channel, their own call to 1022 included, for ten minutes. So did
    20 calls from a withheld number giving the citizen's as the one to call back on."""
    intake = start_intake(sender_limit=2)
    victim = "0912 555 010"
    async with httpx.AsyncClient(timeout=15) as client:
        async def web(address: str) -> int:
            body = BODY | {"phone": victim, "description": f"Tin rác {uuid.uuid4().hex[:6]}."}
            headers = {"Idempotency-Key": str(uuid.uuid4()), "X-Forwarded-For": address}
            return (await client.post(intake.url + "/v1/channels/web/requests", json=body, headers=headers)).status_code

        flood = [await web("127.0.0.21") for _ in range(3)]
        from_home = await web("127.0.0.22")
        # ... nor by withholding their own number and asking to be called back on the citizen's.
        call_me_back = [(await client.post(
            intake.url + "/v1/channels/phone/requests", headers={"Authorization": f"Bearer {keys.operators['callbot-1']}"},
            json=call("callbot-1", source="callbot", caller_number="withheld", phone=victim))).status_code
            for _ in range(3)]
        calls = await client.post(intake.url + "/v1/channels/phone/requests", json=call(caller_number=victim),
                                  headers={"Authorization": f"Bearer {keys.operators['op-017']}"})
        async def withheld(operator: str) -> int:
            return (await client.post(intake.url + "/v1/channels/phone/requests",
                                      json=call(operator, source="callbot", caller_number="withheld"),
                                      headers={"Authorization": f"Bearer {keys.operators[operator]}"})).status_code

        callbot = [await withheld("callbot-1") for _ in range(3)]
        a_person_saying_callbot = [await withheld("op-042") for _ in range(3)]
    assert flood == [202, 202, 429], "the flooder is still limited"
    assert call_me_back == [202, 202, 429], "and so are the calls giving the number"
    assert from_home == 202 and calls.status_code == 202, calls.text
    assert callbot == [202] * 3, "the callbot takes the overflow of withheld calls"
    assert a_person_saying_callbot == [202, 202, 429], "a callbot by its token, not by what the body says"


async def test_an_operator_types_in_a_call_once_however_often_it_is_saved(intake, keys, tail):
    body = call()
    headers = {"Authorization": f"Bearer {keys.operators['op-017']}"}
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/v1/channels/phone/requests", json=body, headers=headers)
                   for _ in range(2)]
        callbot = await client.post(intake.url + "/v1/channels/phone/requests",
                                    json=call("callbot-1", source="callbot", phone="0903123456"),
                                    headers={"Authorization": f"Bearer {keys.operators['callbot-1']}"})
    assert [a.status_code for a in answers] == [202, 202] and answers[0].json() == answers[1].json()
    assert callbot.status_code == 202
    await tail.settle()
    [event] = tail.with_ids({answers[0].json()["request_id"]})
    assert event.channel == "phone" and event.channel_key == body["call_id"]
    assert event.citizen.phone == "+842838224567" and event.received_by == "operator:op-017"
    [transcript] = tail.with_ids({callbot.json()["request_id"]})
    assert transcript.received_by == "callbot:callbot-1" and transcript.citizen.phone == "+84903123456"


async def test_unauthenticated_or_mismatched_operators_are_refused(intake, keys):
    async with httpx.AsyncClient(timeout=15) as client:
        async def send(body, token):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return await client.post(intake.url + "/v1/channels/phone/requests", json=body, headers=headers)

        nobody = await send(call(), None)
        wrong = await send(call(), "guessed-token")
        someone_else = await send(call("op-042"), keys.operators["op-017"])
        info_line = await send(call(ivr_branch=1), keys.operators["op-017"])
    assert nobody.status_code == wrong.status_code == 401
    assert someone_else.status_code == 403 and someone_else.json()["errors"][0]["field"] == "operator_id"
    assert info_line.status_code == 422 and info_line.json()["errors"][0]["field"] == "ivr_branch"


@pytest.mark.parametrize("given", ["0912345678", None], ids=["a number to call back", "no number"])
async def test_a_call_from_a_withheld_number_is_taken(intake, keys, tail, given):
    """A caller who withholds their number still reaches the hotline; intake refused the operator's
    request with 422 on caller_number, even with a number to call back on."""
    body = call(caller_number="Anonymous") | ({"phone": given} if given else {})
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/v1/channels/phone/requests", json=body,
                                   headers={"Authorization": f"Bearer {keys.operators['op-017']}"})
    assert answer.status_code == 202, answer.text
    await tail.settle()
    [event] = tail.with_ids({answer.json()["request_id"]})
    assert event.citizen.phone == ("+84912345678" if given else None)
