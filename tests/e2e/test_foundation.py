"""One request end to end through the real mesh: intake → Kafka → router → event store → outbox →
notifier and oversight, over HTTP and real Kafka and PostgreSQL."""

import random
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from contracts import topics
from contracts.categories import load as categories
from services.intake.domain import Submission, build_request
from tests.support.mesh import oversight_get, wait_for

REQUEST = {
    "full_name": "Nguyễn Thị Hoa", "phone": "0903 123 456", "address": "45 Lê Văn Sỹ, Phường 13, Quận Phú Nhuận, TP.HCM",
    "category": "essential_supplies", "description": "Gia đình 5 người đang cách ly, hết gạo.", "is_public": True,
}


def post(mesh, body=None, key=None):
    """Post a request; each gets its own citizen's phone unless told, so none is another's duplicate."""
    body = body or {**REQUEST, "phone": f"0903{random.randrange(10**6):06d}"}
    return httpx.post(mesh.url("intake") + "/v1/channels/web/requests", json=body,
                      headers={"Idempotency-Key": key or str(uuid.uuid4())}, timeout=15)


def case_when(mesh, case_id, predicate=lambda c: c.get("unit_id"), timeout=30):
    def check():
        r = oversight_get(mesh, f"/v1/cases/{case_id}")
        return r.json() if r.status_code == 200 and predicate(r.json()) else None
    return wait_for(check, timeout, what=f"case {case_id} in oversight")


def test_a_web_request_is_routed_delivered_and_visible_with_one_trace(mesh, traces):
    answer = post(mesh, {**REQUEST, "phone": "0903 123 456"})
    assert answer.status_code == 202, answer.text
    receipt = answer.json()
    assert set(receipt) == {"tracking_code", "request_id", "case_id"}

    case = case_when(mesh, receipt["case_id"])
    assert case["unit_admin_code"] == "768", case  # Quận Phú Nhuận
    assert case["tracking_code"] == receipt["tracking_code"]
    assert case["citizen_phone"] == "+84903123456"  # the 1022 centre sees it in full, normalised

    def delivered():
        t = oversight_get(mesh, f"/v1/cases/{receipt['case_id']}/timeline").json()
        sent = {(d["recipient"], d["channel"]) for d in t["deliveries"] if d["outcome"] == "sent"}
        return t if {("unit", "webhook"), ("citizen", "sms")} <= sent else None
    timeline = wait_for(delivered, 30, what="the notifier's deliveries (unit webhook, citizen SMS) in oversight")
    kinds = [e["event_type"] for e in timeline["events"]]
    assert kinds[:3] == ["CaseOpened", "CaseRouted", "AssignmentIssued"]

    public = httpx.get(mesh.url("oversight") + f"/v1/public/requests/{receipt['tracking_code'].lower()}").json()
    assert public["status"] == "routed" and "Phú Nhuận" in public["unit"]
    # The citizen's name and number are nowhere in it (the number as digits: a timestamp's
    # microseconds may well contain "903").
    assert "Hoa" not in str(public) and "903123456" not in str(public).replace(" ", "")

    wanted = {"intake", "router", "notifier", "oversight"}
    seen: dict[str, set[str]] = {}

    def one_trace():
        ours = {tid for service, tid, name in traces.spans if service == "intake" and name == "intake.submit"}
        seen.update({tid: traces.services_by_trace[tid] for tid in ours})
        return [tid for tid in ours if wanted <= traces.services_by_trace[tid]]
    try:
        wait_for(one_trace, 60, what="one trace spanning intake, router, notifier and oversight")
    except AssertionError:
        names = sorted({(service, name) for service, _, name in traces.spans})
        raise AssertionError(f"services per intake trace: {seen}; span names seen: {names}") from None


def test_the_same_request_twice_is_one_case_with_one_tracking_code(mesh):
    key = f"retry-{uuid.uuid4()}"
    body = {**REQUEST, "phone": "0903 000 111"}
    first, second = post(mesh, body, key=key), post(mesh, body, key=key)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    case = case_when(mesh, first.json()["case_id"])
    timeline = oversight_get(mesh, f"/v1/cases/{case['case_id']}/timeline").json()
    assert [e["event_type"] for e in timeline["events"]].count("CaseOpened") == 1


def request_published_elsewhere(key: str, **changes) -> bytes:
    """A request as intake publishes it, but for ``changes``: a producer that does not check its
    text as intake does. The router once stored what its ledger or Kafka could not then take, and
    failed on it at every try, holding up every case published after it."""
    submission = Submission(full_name="Lê Thị Hoa", phone="0903123456", address="12 Lý Tự Trọng, P. Bến Nghé, Q.1",
                            category="essential_supplies", description="Cần gạo")
    request = build_request("web", f"{key}-{uuid.uuid4()}", submission, categories())
    return request.model_copy(update=changes).model_dump_json().encode()


def request_with_a_nul() -> bytes:
    """PostgreSQL's text cannot hold a NUL, and the router's ledger refused its row."""
    return request_published_elsewhere("nul").replace(b"+84903123456", b"+849031\\u000023456")


def request_with_a_phone_past_the_index() -> bytes:
    """Four kilobytes of phone that do not compress: past what the ledger's index of open reports holds."""
    return request_published_elsewhere("long-phone").replace(b"+84903123456", uuid.uuid4().hex.encode() * 128)


def request_past_what_kafka_takes() -> bytes:
    """A request of more than a megabyte, on the topic compressed: the router's case events, as large,
    were more than Kafka takes (a record of at most 1 MiB)."""
    return request_published_elsewhere("huge", description="Gia đình 5 người đang cách ly, hết gạo. " * 30_000)


BAD_REQUESTS = {"not json": (lambda: f"not json {uuid.uuid4()}".encode(), b"json"),
                "a NUL": (request_with_a_nul, b"NUL"),
                "a phone past the ledger's index": (request_with_a_phone_past_the_index, b"citizen.phone"),
                "a request past what Kafka takes": (request_past_what_kafka_takes, b"at most")}


@pytest.mark.parametrize("kind", list(BAD_REQUESTS))
async def test_a_malformed_message_is_dead_lettered_and_the_next_one_still_routed(kind, mesh, kafka_bootstrap):
    dlq = AIOKafkaConsumer(topics.dlq(topics.INTAKE_REQUESTS), bootstrap_servers=kafka_bootstrap,
                           auto_offset_reset="earliest", group_id=f"dlq-watch-{uuid.uuid4()}")
    await dlq.start()
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True,
                                compression_type="gzip", max_request_size=4 * 1024 * 1024)
    await producer.start()
    make, reason = BAD_REQUESTS[kind]
    marker = make()
    try:
        await producer.send_and_wait(topics.INTAKE_REQUESTS, marker, key=b"garbage")
        answer = post(mesh)  # a good request right behind the bad one
        assert answer.status_code == 202
        case_when(mesh, answer.json()["case_id"])
        found = None
        while found is None:
            batch = await dlq.getmany(timeout_ms=20_000)
            assert batch, "no dead letter arrived"
            for records in batch.values():  # a dead letter carries the first 512 KiB of a larger record
                found = next((r for r in records if r.value and marker.startswith(r.value)), found)
        headers = dict(found.headers)
        assert headers["x-source-topic"] == topics.INTAKE_REQUESTS.encode()
        assert reason in headers["x-error"]
    finally:
        await producer.stop()
        await dlq.stop()


def test_bad_input_is_refused_with_the_field_and_the_reason(mesh):
    missing_key = httpx.post(mesh.url("intake") + "/v1/channels/web/requests", json=REQUEST, timeout=10)
    assert missing_key.status_code == 400
    bad_phone = post(mesh, {**REQUEST, "phone": "12"})
    assert bad_phone.status_code == 422 and bad_phone.json()["errors"][0]["field"] == "phone"
    bad_category = post(mesh, {**REQUEST, "category": "ufo"})
    assert bad_category.status_code == 422 and "essential_supplies" in bad_category.json()["errors"][0]["reason_en"]


def test_a_stop_and_start_of_the_whole_mesh_keeps_every_case(mesh):
    receipts = [post(mesh).json() for _ in range(5)]
    for r in receipts:
        case_when(mesh, r["case_id"])
    mesh.stop_all()
    mesh.start_all()
    for r in receipts:
        case = case_when(mesh, r["case_id"])
        assert case["tracking_code"] == r["tracking_code"]
    after = post(mesh)
    assert after.status_code == 202
    case_when(mesh, after.json()["case_id"])
