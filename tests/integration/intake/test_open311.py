"""Open311 GeoReport v2 over real HTTP: services, posting (form-encoded and JSON) onto the real
Kafka topic, and reading a request back with its status from a stand-in for oversight."""

import asyncio
import json
import threading
import uuid

import httpx
import pytest

from contracts import ids
from tests.integration.intake.harness import StandIn, unused_port

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture
def oversight():
    statuses: dict[str, dict] = {}

    def respond(method, path, _body):
        code = path.rsplit("/", 1)[-1]
        if statuses.get(code) == "shared":
            return 409, {"detail": "given to more than one request"}
        return (200, statuses[code]) if code in statuses else (404, {"detail": "no request"})

    stand_in = StandIn(respond)
    stand_in.statuses = statuses
    yield stand_in
    stand_in.close()


def report(keys, **changes) -> dict:
    return {"api_key": keys.open311_key, "jurisdiction_id": "tphcm.gov.vn", "service_code": "water",
            "lat": "10.7769", "long": "106.7009", "address_string": "Ngã tư Lê Lợi - Nam Kỳ Khởi Nghĩa, Quận 1",
            "first_name": "An", "last_name": "Võ", "phone": "0978123123",
            "description": f"Ống nước vỡ, nước tràn ra đường ({uuid.uuid4().hex[:6]}).",
            "media_url": "https://example.org/ong-nuoc.jpg", "attribute[WHISPAWN]": "123"} | changes


async def test_the_service_list_is_our_categories(intake):
    async with httpx.AsyncClient(timeout=15) as client:
        services = (await client.get(intake.url + "/open311/v2/services.json")).json()
        one = await client.get(intake.url + "/open311/v2/services/water.json")
        none = await client.get(intake.url + "/open311/v2/services/ufo.json")
        elsewhere = await client.get(intake.url + "/open311/v2/services.json", params={"jurisdiction_id": "sf.gov"})
    codes = {s["service_code"] for s in services}
    assert {"essential_supplies", "covid_support", "vulnerable_person", "other", "water"} <= codes
    assert all(s["type"] == "realtime" and s["metadata"] is False and s["service_name"] for s in services)
    assert one.json() == {"service_code": "water", "attributes": []}
    assert none.status_code == 404 and none.json()[0]["code"] == 404
    assert elsewhere.status_code == 404 and elsewhere.json()[0]["field"] == "jurisdiction_id"


async def test_a_form_encoded_report_becomes_one_request_and_reads_back(start_intake, oversight, keys, tail):
    intake = start_intake(oversight_url=oversight.url)
    body = report(keys)
    async with httpx.AsyncClient(timeout=15) as client:
        first = await client.post(intake.url + "/open311/v2/requests.json", data=body)
        again = await client.post(intake.url + "/open311/v2/requests.json", data=body)
        assert first.status_code == again.status_code == 202, first.text
        code = first.json()[0]["service_request_id"]
        assert again.json()[0]["service_request_id"] == code and ids.normalise_tracking_code(code) == code

        received = (await client.get(intake.url + f"/open311/v2/requests/{code}.json")).json()
        assert received[0]["status"] == "open"  # intake holds it; oversight does not know it yet
        oversight.statuses[code] = {"tracking_code": code, "category": "water", "status": "resolved",
                                    "status_vi": "Đã có kết quả", "status_en": "Resolved", "unit": "UBND Quận 1",
                                    "received_at": "2026-11-20T01:00:00+00:00",
                                    "updated_at": "2026-11-21T01:00:00+00:00", "resolve_by": None, "answer": None}
        done = (await client.get(intake.url + f"/open311/v2/requests/{code.lower()}.json")).json()
        listed = (await client.get(intake.url + "/open311/v2/requests.json",
                                   params={"service_request_id": f"{code},ZZZZZ-ZZZZZ"})).json()
        unknown = await client.get(intake.url + "/open311/v2/requests.json",
                                   params={"service_request_id": ids.tracking_code(uuid.uuid4())})
    assert unknown.status_code == 200 and unknown.json() == []  # a list of what is known, if only one is asked
    assert done[0]["status"] == "closed" and done[0]["agency_responsible"] == "UBND Quận 1"
    assert done[0]["service_name"] == "Cấp thoát nước" and listed == done

    await tail.settle()
    [event] = [e for e in tail.seen if e.tracking_code == code]
    assert event.channel == "open311" and event.category == "water" and event.citizen.full_name == "An Võ"
    assert event.location.latitude == pytest.approx(10.7769) and event.citizen.phone == "+84978123123"
    assert event.attachments[0].url == "https://example.org/ong-nuoc.jpg"


async def test_a_code_an_older_intake_gave_twice_is_refused_with_the_number_to_call(start_intake, oversight):
    """Oversight will not say which request it is (409): asking again would not help, so not 503."""
    intake = start_intake(oversight_url=oversight.url)
    code = ids.tracking_code(uuid.uuid4())
    oversight.statuses[code] = "shared"
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.get(intake.url + f"/open311/v2/requests/{code}.json")
    assert answer.status_code == 409 and "Retry-After" not in answer.headers
    assert "1022" in answer.json()[0]["description"]


async def test_a_json_report_with_an_idempotency_key_is_taken_too(intake, keys, tail):
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/open311/v2/requests.json", headers={"Idempotency-Key": key},
                                   json=report(keys, lat=None, long=None, service_code="trees"))
    assert answer.status_code == 202, answer.text
    await tail.settle()
    [event] = [e for e in tail.seen if e.tracking_code == answer.json()[0]["service_request_id"]]
    assert event.channel_key == key and event.location is None


async def test_a_json_report_is_read_as_json_however_its_media_type_is_written(intake, keys, tail):
    """Media types are named in any case; one written Application/JSON was read as an empty form,
    and the client was told that the fields it had sent were missing."""
    body = json.dumps(report(keys, lat=None, long=None, service_code="trees")).encode()
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/open311/v2/requests.json", content=body, headers={
            "Content-Type": media_type, "Idempotency-Key": str(uuid.uuid4())})
            for media_type in ("Application/JSON", "application/json; charset=UTF-8")]
    assert [a.status_code for a in answers] == [202, 202], [a.text for a in answers]
    await tail.settle()
    codes = {a.json()[0]["service_request_id"] for a in answers}
    assert len([e for e in tail.seen if e.tracking_code in codes]) == 2


async def test_open311_refusals_use_georeport_errors_naming_the_field(start_intake, keys):
    intake = start_intake(oversight_url=f"http://127.0.0.1:{unused_port()}")
    async with httpx.AsyncClient(timeout=15) as client:
        async def post(**changes):
            return await client.post(intake.url + "/open311/v2/requests.json", data=report(keys, **changes))

        no_key = await post(api_key="")
        ufo = await post(service_code="ufo")
        nowhere = await post(address_string="", lat="", long="")
        no_text = await post(description="")
        # json.loads raised RecursionError here, and the answer was a 500 with a traceback logged.
        too_deep = await client.post(intake.url + "/open311/v2/requests.json", content=b"[" * 100_000,
                                     headers={"Content-Type": "application/json"})
        # A file where GeoReport takes a link, and a body that is not UTF-8: the framework could not
        # read either, and its answer was not GeoReport's list, so a client could not read why.
        with_a_file = await client.post(intake.url + "/open311/v2/requests.json", data=report(keys),
                                        files={"media": ("ong-nuoc.jpg", b"\xff\xd8\xff", "image/jpeg")})
        not_utf8 = await client.post(intake.url + "/v1/channels/web/requests", content=b'{"full_name": "\xff"}',
                                     headers={"Content-Type": "application/json", "Idempotency-Key": "k-1"})
        unknown = await client.get(intake.url + "/open311/v2/requests/ZZZZZ-ZZZZZ.json")
        oversight_down = await client.get(intake.url + "/open311/v2/requests/"
                                          + ids.tracking_code(uuid.uuid4()) + ".json")
    assert no_key.status_code == 403 and no_key.json()[0]["field"] == "api_key"
    assert ufo.status_code == 400 and ufo.json()[0]["field"] == "service_code"
    assert "essential_supplies" in ufo.json()[0]["description"]
    assert nowhere.status_code == 400 and nowhere.json()[0]["field"] == "address_string"
    assert no_text.status_code == 400 and no_text.json()[0]["field"] == "description"
    assert no_text.json()[0]["reason_vi"] and no_text.json()[0]["code"] == 400
    assert too_deep.status_code == 400 and too_deep.json()[0]["field"] == "body"
    assert with_a_file.status_code == 400 and with_a_file.json()[0]["field"] == "body"
    assert not_utf8.status_code == 400 and not_utf8.json()["errors"][0]["field"] == "body"
    assert unknown.status_code == 404
    assert oversight_down.status_code == 503 and oversight_down.headers["Retry-After"]


async def test_without_api_keys_configured_open311_refuses_every_report(start_intake, keys):
    intake = start_intake(open311_api_keys=[])
    async with httpx.AsyncClient(timeout=15) as client:
        answers = [await client.post(intake.url + "/open311/v2/requests.json", data=body)
                   for body in ({k: v for k, v in report(keys).items() if k != "api_key"}, report(keys),
                                report(keys, api_key=""))]
        services = await client.get(intake.url + "/open311/v2/services.json")
    for answer in answers:
        assert answer.status_code == 503
        [error] = answer.json()
        assert error["code"] == 503 and error["field"] == "api_key" and error["reason_vi"]
        assert "not configured" in error["reason_en"]
    assert services.status_code == 200, "reading the service list needs no key"


async def test_behind_a_trusted_proxy_the_address_limit_counts_each_citizen_not_the_proxy(start_intake, keys,
                                                                                            monkeypatch):
    # An anonymous Open311 report (no phone, device or e-mail) is limited by its sender's address.
    anonymous = {k: v for k, v in report(keys).items() if k != "phone"}

    async def reports(intake, forwarded_for: str, n: int) -> list[int]:
        async with httpx.AsyncClient(timeout=15) as client:
            return [(await client.post(intake.url + "/open311/v2/requests.json",
                                       data={**anonymous, "description": f"Đèn đường hỏng ({uuid.uuid4().hex[:6]})."},
                                       headers={"X-Forwarded-For": forwarded_for})).status_code for _ in range(n)]

    # The proxy on this machine is trusted (uvicorn's FORWARDED_ALLOW_IPS, loopback by default).
    behind_proxy = start_intake(sender_limit=2)
    assert await reports(behind_proxy, "127.0.0.7", 3) == [202, 202, 429]
    assert await reports(behind_proxy, "127.0.0.8", 1) == [202], "another citizen behind the same proxy"

    # A client that is not a trusted proxy cannot choose its address by sending the header.
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "127.0.0.2")
    direct = start_intake(sender_limit=2)
    assert await reports(direct, "127.0.0.9", 2) + await reports(direct, "127.0.0.10", 1) == [202, 202, 429]


async def test_without_an_idempotency_key_only_the_very_same_report_is_the_same_request(intake, keys):
    """A client that sends no key is recognised by what it sent. The same phone and text under
    another name was refused, 422, for a key the client never sent; and a key used before for
    another report is GeoReport's 400 naming the header, not intake's 422."""
    body = report(keys)
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(timeout=15) as client:
        async def post(data, **headers):
            return await client.post(intake.url + "/open311/v2/requests.json", data=data, headers=headers)

        first, retried, renamed = await post(body), await post(body), await post(body | {"first_name": "Bình"})
        keyed = await post(report(keys), **{"Idempotency-Key": key})
        reused = await post(report(keys), **{"Idempotency-Key": key})
    assert first.status_code == retried.status_code == renamed.status_code == 202, renamed.text
    code = first.json()[0]["service_request_id"]
    assert retried.json()[0]["service_request_id"] == code != renamed.json()[0]["service_request_id"]
    assert keyed.status_code == 202
    assert reused.status_code == 400 and reused.json()[0]["field"] == "Idempotency-Key", reused.text


async def test_a_report_with_the_longest_names_georeport_allows_is_taken(intake, keys, tail):
    """Each name may be 100 characters; the two together were 201, one more than a citizen's name
    may be, and the report was refused with 400 on first_name."""
    first, last = "Nguyễn " * 14 + "Ho", "Trần " * 19 + "Thịnh"
    assert len(first) == len(last) == 100
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/open311/v2/requests.json",
                                   data=report(keys, first_name=first, last_name=last))
    assert answer.status_code == 202, answer.text
    await tail.settle()
    [event] = [e for e in tail.seen if e.tracking_code == answer.json()[0]["service_request_id"]]
    assert event.citizen.full_name == f"{first} {last}"[:200]


async def test_lists_of_codes_take_turns_and_leave_oversights_connections_to_single_lookups(start_intake):
    """A list is up to 50 lookups and anyone may send one: a flood of lists held every connection
    to oversight, and a citizen looking up their one code was answered 503."""
    held, lock = threading.Event(), threading.Lock()
    in_flight, most = [0], [0]
    mine = ids.tracking_code(uuid.uuid4())

    def respond(method, path, _body):
        code = path.rsplit("/", 1)[-1]
        if code == mine:
            return 200, {"tracking_code": code, "category": "water", "status": "routed"}
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        held.wait(30)  # oversight slow to answer the lists' codes
        with lock:
            in_flight[0] -= 1
        return 404, {"detail": "no request"}

    slow = StandIn(respond)
    intake = start_intake(oversight_url=slow.url)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            codes = ",".join(ids.tracking_code(uuid.uuid4()) for _ in range(3))
            lists = [asyncio.create_task(client.get(intake.url + "/open311/v2/requests.json",
                                                    params={"service_request_id": codes})) for _ in range(20)]
            await asyncio.sleep(1)  # the lists have come in and are waiting on oversight or their turn
            single = await client.get(intake.url + f"/open311/v2/requests/{mine}.json")
            held.set()
            answers = await asyncio.gather(*lists)
    finally:
        held.set()
        slow.close()
    assert single.status_code == 200 and single.json()[0]["service_request_id"] == mine
    assert most[0] <= 2, f"{most[0]} lists' lookups at oversight at once"
    assert {a.status_code for a in answers} <= {200, 503} and any(a.status_code == 200 for a in answers)
    assert all(a.headers.get("Retry-After") for a in answers if a.status_code == 503)
