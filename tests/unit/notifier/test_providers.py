"""What the notifier makes of a receiver's answer, over a real socket on loopback."""

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from services.notifier.domain import Delivery
from services.notifier.providers import Permanent, Transient, Unanswered, WebhookProvider, post, refusal
from services.notifier.main import build_providers, concurrency_for
from services.notifier.settings import SEND_GRACE, NotifierSettings


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[tuple[str, str]]]]:
    """A district service that moved (/old → /new) and a gateway that fails with an endless answer."""
    seen: list[tuple[str, str]] = []

    async def moved(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        raise web.HTTPMovedPermanently(location=f"http://unit:pass@127.0.0.1:{request.url.port}/new?token=secret")

    async def new(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        return web.Response(text="ok")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        await response.write(b"x" * 65536)
        await asyncio.sleep(3600)  # the rest never comes
        return response

    async def kept(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        raise web.HTTPPermanentRedirect(location="/new")

    async def signed(request: web.Request) -> web.Response:
        signatures = {k: v for k, v in request.headers.items() if k in ("X-1022-Signature", "X-1022-Unit-Signature")}
        seen.append((signatures, (await request.read()).decode()))
        return web.Response(text="ok")

    async def kept_elsewhere(request: web.Request) -> web.Response:
        seen.append((request.method, request.path))
        # The same server under another name: another origin, as far as the sender can tell.
        raise web.HTTPPermanentRedirect(location=f"http://localhost:{request.url.port}/new")

    async def in_pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json; charset=utf8mb4"})
        await response.prepare(request)
        await response.write(b'{"error": 0, ')
        await asyncio.sleep(0.2)
        await response.write(b'"message": "Success"}')
        await response.write_eof()
        return response

    async def silent(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(3600)  # took the message, never answers
        return web.Response(text="ok")

    async def dropped(request: web.Request) -> web.Response:
        await request.read()
        request.transport.close()  # took the message, then the connection went
        await asyncio.sleep(3600)
        return web.Response(text="ok")

    async def status(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": "status"}, status=int(request.match_info["code"]))

    async def taken_then_broken(request: web.Request) -> web.StreamResponse:
        await request.read()
        status = int(request.query.get("status", "200"))
        response = web.StreamResponse(status=status, headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b'{"queued": ')
        request.transport.close()  # the answer breaks off after its status
        return response

    async def taken_then_slow(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(status=200)
        await response.prepare(request)
        await response.write(b'{"queued": ')
        await asyncio.sleep(3600)  # the rest of the answer never comes
        return response

    async def late_moved(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.6)
        raise web.HTTPTemporaryRedirect(location="/late-new")

    async def late_new(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(0.6)
        return web.Response(text="ok")

    async def created_elsewhere(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=201, headers={"Location": "http://a:99999/x"})

    async def echoing(request: web.Request) -> web.Response:
        sent = await request.json()  # a framework's 422: every field it could not take, as given
        return web.json_response({"detail": [{"loc": ["body", "citizen"], "input": sent["citizen"]}],
                                  "code": "VALIDATION_FAILED"}, status=422)

    app = web.Application()
    app.router.add_post("/echo", echoing)
    app.router.add_post("/broken", taken_then_broken)
    app.router.add_post("/slow", taken_then_slow)
    app.router.add_post("/created", created_elsewhere)
    app.router.add_post("/late-moved", late_moved)
    app.router.add_post("/late-new", late_new)
    app.router.add_post("/status/{code}", status)
    app.router.add_post("/silent", silent)
    app.router.add_post("/dropped", dropped)
    app.router.add_post("/old", moved)
    app.router.add_post("/kept", kept)
    app.router.add_post("/kept-elsewhere", kept_elsewhere)
    app.router.add_post("/signed", signed)
    app.router.add_post("/pieces", in_pieces)
    app.router.add_route("*", "/new", new)
    app.router.add_post("/endless", endless)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001 - the port the OS chose
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_a_receiver_that_moved_is_not_a_delivery_and_is_the_notifiers_address_to_mend(receiver):
    # Following the redirect would repeat the POST as a GET without the assignment, and the new
    # address's 200 would record the unit as told. Nor is it the message's failure: refused for good,
    # a gateway set to http:// behind a redirect to https:// failed every SMS at once.
    url, seen = receiver
    async with aiohttp.ClientSession() as client:
        with pytest.raises(Transient) as failed:
            await post(client, f"{url}/old", {"case_id": "c"}, {})
    assert seen == [("POST", "/old")]
    assert f"moved to {url}/new" in str(failed.value)
    assert "secret" not in str(failed.value) and "pass" not in str(failed.value)


async def test_a_receiver_that_keeps_the_post_through_its_redirect_gets_it(receiver):
    url, seen = receiver
    async with aiohttp.ClientSession() as client:
        await post(client, f"{url}/kept", {"case_id": "c"}, {})
    assert seen == [("POST", "/kept"), ("POST", "/new")]


async def test_a_redirect_to_another_host_is_not_followed_with_the_citizens_details(receiver):
    """An assignment carries the citizen's name, phone and address: a 308 to another host (or from
    https to http) would hand them to whoever the receiver names. Its address is the notifier's to mend."""
    url, seen = receiver
    async with aiohttp.ClientSession() as client:
        with pytest.raises(Transient) as failed:
            await post(client, f"{url}/kept-elsewhere", {"case_id": "c"}, {})
    assert seen == [("POST", "/kept-elsewhere")]
    assert "moved to http://localhost" in str(failed.value) and not isinstance(failed.value, Unanswered)


async def test_a_district_service_can_tell_the_notifiers_webhooks_from_anyone_elses(receiver):
    """An assignment names a citizen and where they live; a district service that takes one from
    whoever posts it can be sent forged cases. With a signing key each POST carries an HMAC of the
    time and the exact bytes sent, under the key of the unit it goes to: one key for every unit let
    any unit sign cases for the others."""
    url, seen = receiver
    city, old_key = b"the city's webhook key", b"the key every unit was once given"
    delivery = Delivery(delivery_id=uuid.uuid4(), case_id=uuid.uuid4(), cause_event_id=uuid.uuid4(),
                        correlation_id=uuid.uuid4(), recipient="unit", channel="webhook", target=f"{url}/signed",
                        template="assignment", subject="[1022] Phản ánh mới", text="Hết gạo.",
                        payload={"event_type": "AssignmentIssued"}, source_topic="unit.assignments.v1",
                        unit_id="hcmc-2021/26734")
    before = dataclasses.replace(delivery, unit_id=None)  # planned before deliveries named their unit
    async with aiohttp.ClientSession() as client:
        await WebhookProvider(client, city).send(delivery)
        await WebhookProvider(client, city, shared_key=old_key).send(delivery)
        await WebhookProvider(client, city, shared_key=old_key).send(before)
        await WebhookProvider(client, city).send(before)
        await WebhookProvider(client).send(delivery)
    (own, body), (both, _), (legacy, legacy_body), (no_move, _), (unsigned, _) = seen
    units_key = hmac.new(city, b"1022 unit webhook\nhcmc-2021/26734", hashlib.sha256).hexdigest().encode()

    def signed(header: str, key: bytes, sent: str = body) -> bool:
        stamp = header.split(",")[0].removeprefix("t=")
        assert abs(int(stamp) - time.time()) < 60
        return header == f"t={stamp},v1=" + hmac.new(key, f"{stamp}.{sent}".encode(), hashlib.sha256).hexdigest()

    assert own.keys() == {"X-1022-Unit-Signature"} and signed(own["X-1022-Unit-Signature"], units_key)
    # While districts move to their own keys: the signature as it was, which a district reading the
    # header whole still checks, beside the unit's.
    assert signed(both["X-1022-Unit-Signature"], units_key) and signed(both["X-1022-Signature"], old_key)
    assert legacy.keys() == {"X-1022-Signature"} and signed(legacy["X-1022-Signature"], old_key, legacy_body)
    assert no_move.keys() == {"X-1022-Signature"} and signed(no_move["X-1022-Signature"], city, legacy_body)
    assert '"unit_id":"hcmc-2021/26734"' in body and '"template":"assignment"' in body and unsigned == {}


async def test_an_answer_in_pieces_and_an_unknown_charset_is_read_whole(receiver):
    # Read only as far as its first piece, Zalo's success looked like broken JSON: sent again, and again.
    url, _ = receiver
    async with aiohttp.ClientSession() as client:
        answer = await post(client, f"{url}/pieces", {"case_id": "c"}, {})
    assert answer.text == '{"error": 0, "message": "Success"}'


async def test_an_answer_that_never_ends_is_read_no_further_than_its_start(receiver):
    url, _ = receiver
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
        with pytest.raises(Transient) as failed:
            await post(client, f"{url}/endless", {"case_id": "c"}, {})
    # Its status, read from the start of the answer: not the 5 s time-out, which reads otherwise.
    assert str(failed.value) == "HTTP 500"


async def test_a_message_sent_without_an_answer_is_told_apart_from_one_that_never_left(receiver):
    # A message that went out unanswered may have been taken: it is tried again on its own channel,
    # under its key, but never sent on by another route (the citizen would hear it twice).
    url, _ = receiver
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        for path in ("/silent", "/dropped", "/status/500", "/status/502", "/status/504"):
            with pytest.raises(Unanswered):
                await post(client, f"{url}{path}", {"case_id": "c"}, {})
        # The same key is being processed (a 409 was a refusal for good, and the message went by
        # another route too); without a key, 409 is the receiver's refusal.
        with pytest.raises(Unanswered):
            await post(client, f"{url}/status/409", {"case_id": "c"}, {"Idempotency-Key": "k"})
        with pytest.raises(Permanent):
            await post(client, f"{url}/status/409", {"case_id": "c"}, {})
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            nobody = closed.getsockname()[1]  # bound, never listening: the connection is refused
            with pytest.raises(Transient) as refused:
                await post(client, f"http://127.0.0.1:{nobody}/sms", {"case_id": "c"}, {})
        assert not isinstance(refused.value, Unanswered)
        for code in (429, 503):  # the receiver says it did not take it
            with pytest.raises(Transient) as refused:
                await post(client, f"{url}/status/{code}", {"case_id": "c"}, {})
            assert not isinstance(refused.value, Unanswered), code


async def test_a_gateway_refusing_the_notifiers_own_credentials_is_tried_again_not_given_up(receiver):
    """An SMS gateway key that expired at 2 a.m. failed every citizen's message for good at its first
    try; a refused key is this notifier's to mend, and each message waits out its hour of tries."""
    url, _ = receiver
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        for code in (401, 403, 407):
            with pytest.raises(Transient) as refused:
                await post(client, f"{url}/status/{code}", {"case_id": "c"}, {})
            assert not isinstance(refused.value, Unanswered), code
        with pytest.raises(Permanent):  # the message's own fault: an unknown number, say
            await post(client, f"{url}/status/404", {"case_id": "c"}, {})


async def test_a_redirect_is_followed_within_the_sends_own_time_not_a_fresh_one(receiver):
    """The second leg of a 307 had the client's whole time-out again: a send could outlast the
    dispatcher's cut, and one cut off after it went out is sent again (Zalo does not drop repeats)."""
    url, _ = receiver
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        with pytest.raises(Unanswered):  # 0.6 s to the redirect, 0.6 s more for the answer: past 1 s
            await post(client, f"{url}/late-moved", {"case_id": "c"}, {})
        assert (await post(client, f"{url}/late-moved", {"case_id": "c"}, {}, within=2)).text == "ok"


async def test_a_2xx_whose_answer_breaks_off_or_stalls_is_a_delivery(receiver):
    """The receiver said it took the message; the rest of its answer is not needed. Read as "maybe
    taken", each such answer sent the message again, up to 25 times; and a 201 whose Location could
    not be read failed outside any outcome, so the message was claimed and sent again, every 30 s."""
    url, _ = receiver
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as client:
        for path in ("/broken", "/slow"):
            assert (await post(client, f"{url}{path}", {"case_id": "c"}, {})).status == 200, path
        assert (await post(client, f"{url}/created", {"case_id": "c"}, {})).status == 201
        with pytest.raises(Transient) as busy:  # a 503 says it did not take it, however its body ends
            await post(client, f"{url}/broken?status=503", {"case_id": "c"}, {})
        assert not isinstance(busy.value, Unanswered)
        for path in ("/broken", "/slow"):  # Zalo says in the body whether it took the message
            with pytest.raises(Unanswered):
                await post(client, f"{url}{path}", {"case_id": "c"}, {}, answer_needed=True)


async def test_a_2xx_whose_answer_stalls_is_a_delivery_with_the_notifiers_own_time_outs(receiver):
    """As the notifier runs: its HTTP client's time-out is the send time-out (rounded up to the
    second by aiohttp past 5 s), and the dispatcher cuts a send off from outside. Cut off at the same
    moment, the stalled 2xx came out as a time-out, "maybe taken", and was sent again."""
    url, _ = receiver
    send_timeout = 5.0
    timeout = aiohttp.ClientTimeout(total=send_timeout, connect=send_timeout / 2)
    async with aiohttp.ClientSession(timeout=timeout) as client:
        answer = await asyncio.wait_for(post(client, f"{url}/slow", {"case_id": "c"}, {}), send_timeout + SEND_GRACE)
    assert answer.status == 200


async def test_a_refusal_is_recorded_by_its_status_and_code_never_by_the_receivers_words(receiver):
    """The error goes out in NotificationFailed, which oversight shows: a district service echoing
    the assignment it refused put the citizen's name and address there."""
    url, _ = receiver
    citizen = {"full_name": "Nguyễn Thị Hoa", "address": "12 Nguyễn Văn Trỗi, Phường 12"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        with pytest.raises(Permanent) as refused:
            await post(client, f"{url}/echo", {"citizen": citizen}, {})
    assert str(refused.value) == "HTTP 422: code VALIDATION_FAILED"


async def test_an_address_no_message_can_be_sent_to_fails_at_once_not_after_an_hour(receiver):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as client:
        for address in ("ftp://units.example/768", "http://[not-an-address/768"):
            with pytest.raises(Permanent) as refused:
                await post(client, address, {"case_id": "c"}, {})
            assert not isinstance(refused.value, Unanswered), address


@pytest.mark.parametrize(("answer", "recorded"), [
    ('{"error": "INVALID_SENDER", "message": "sender Trần Văn A not allowed"}', "HTTP 400: error INVALID_SENDER"),
    ('{"error": {"code": -124, "message": "Nguyễn Thị Hoa, 12 Lê Lợi"}}', "HTTP 400: code -124"),
    ("-124", "HTTP 400: -124"),
    ("Số điện thoại 0903 123 456 của Nguyễn Thị Hoa không tồn tại", "HTTP 400"),
    ('{"detail": [{"input": "Nguyễn Thị Hoa"}]}', "HTTP 400"),
])
def test_a_gateways_own_code_is_kept_and_its_sentences_are_not(answer, recorded):
    assert refusal(400, answer) == recorded


async def test_no_more_mail_is_sent_at_once_than_the_mail_provider_has_threads_for():
    """The dispatcher sent 32 e-mails at once into 8 threads: a send waiting for one ran out its
    time-out before it began, and was counted as a try that went unanswered (a handler's e-mail
    then failed with no other route, and a slow server could get it twice)."""
    settings = NotifierSettings(smtp_host="127.0.0.1", sms_gateway_url="http://127.0.0.1:9/sms")
    async with contextlib.AsyncExitStack() as clients:
        providers = build_providers(settings, clients)
        mail = providers.by_channel["email"]
        threads = mail.threads._max_workers  # noqa: SLF001 - the pool's own count
        assert concurrency_for("email", providers, settings) == threads < settings.concurrency
        assert concurrency_for("sms", providers, settings) == settings.concurrency


def test_unit_keys_are_not_made_from_the_key_every_unit_holds():
    """During the move every unit still holds the shared key: unit keys made from it, any unit could
    make any other's."""
    with pytest.raises(ValueError, match="must be another"):
        NotifierSettings(webhook_signing_key="the same", webhook_shared_key="the same")
    assert NotifierSettings(webhook_signing_key="new", webhook_shared_key="old").webhook_shared_key
