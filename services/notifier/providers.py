"""Providers behind one small interface: ``await provider.send(delivery)``.

A provider raises :class:`Transient` for what may work on a later try and surely did not get
through (no connection, 503, 429; 401, 403, 407: the notifier's own credentials),
:class:`Unanswered` — a kind of Transient — when the receiver may have taken the message though it
did not say so (a time-out, a connection dropped mid-answer, 500, 502, 504: a gateway behind a
proxy may have got it; 409: the same key is being processed), and :class:`Permanent` for what never
will (a number that does not exist, any other 4xx). Every
provider hands the delivery id to the receiver — ``Idempotency-Key`` over HTTP, ``Message-ID`` by e-mail (see
:mod:`services.notifier.mail`) — so a receiver that honours it drops a message sent again after a
crash between its sending and its recording.
"""

import asyncio
import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import orjson
from yarl import URL

from contracts.zalo_token import TOKEN_REFUSED, TokenSource, token_within
from services.notifier import fitting
from services.notifier.domain import Delivery
from services.notifier.templates import without_diacritics


class Transient(Exception):
    """Worth another try."""


class Unanswered(Transient):
    """Worth another try, but the receiver may have taken this one: it went out and no answer came."""


class Permanent(Exception):
    """Never worth another try."""


class NotConfigured(Permanent):
    """Not tried: this notifier has no provider for the channel. Says nothing of an earlier try,
    which another notifier, configured, may have made and the citizen may have."""


class Provider(Protocol):
    async def send(self, delivery: Delivery) -> None: ...


def headers_for(delivery: Delivery) -> dict[str, str]:
    headers = {"Idempotency-Key": str(delivery.delivery_id)}
    if delivery.traceparent:
        headers["traceparent"] = delivery.traceparent
    return headers


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


# What is read of an answer: a gateway's or Zalo's is a few hundred bytes, and a receiver that
# streams more cannot make the notifier hold it.
ANSWER_BYTES = 16 * 1024


# A receiver's own code for a refusal: one token, no spaces (a gateway's "INVALID_SENDER", -124).
_CODE = re.compile(r"[A-Za-z0-9_.:-]{1,40}")
_CODE_FIELDS = ("code", "error_code", "errorCode", "error", "status", "reason")


def refusal(status: int, text: str) -> str:
    """What a receiver's refusal is recorded and published as: its status and, if it gave one, its
    own code for it; never its words. A district's service that echoes what it was sent (a 422
    listing the fields it could not take) put the citizen's name and address into an error that
    NotificationFailed carries to oversight, where overseers read it."""
    try:
        answer = orjson.loads(text)
    except orjson.JSONDecodeError:
        answer = text.strip()
    def is_code(value: Any) -> bool:
        return isinstance(value, (int, str)) and not isinstance(value, bool) and bool(_CODE.fullmatch(str(value)))

    for where in (answer, *(answer.values() if isinstance(answer, dict) else ())):  # {"error": {"code": …}}
        if isinstance(where, dict):
            for field in _CODE_FIELDS:
                if is_code(where.get(field)):
                    return f"HTTP {status}: {field} {where[field]}"
    return f"HTTP {status}: {answer}" if is_code(answer) else f"HTTP {status}"


async def post(client: aiohttp.ClientSession, url: str, body: dict[str, Any] | bytes, headers: dict[str, str],
               redirected: bool = False, answer_needed: bool = False, within: float | None = None) -> Answer:
    """POST ``body`` as JSON (or as the JSON bytes given); a 2xx is returned, anything else raised
    as Transient or Permanent.

    The status is the receiver's word: an answer whose body then breaks off or comes too slowly is
    read by its status all the same (text empty), unless it is a 2xx and ``answer_needed`` (Zalo
    says in the body whether it took it). Read as "maybe taken", each such 2xx sent the message again.

    Only a 307 or 308 to the same origin is followed, once, with the same POST. After a 301, 302 or 303 the client
    would repeat the POST as a GET without its body, and the receiver's 200 to that would record a
    message as delivered that never was: such a receiver must be given its new address.

    ``within``: the seconds the send has left (the client's time-out when not given), for both legs
    of a redirect together: the dispatcher cuts a send off at its time-out and a little more, and a
    send cut off after it went out is sent again."""
    started = time.monotonic()
    total = client.timeout.total if within is None else within
    # A connection not made in half the time is still told apart from a send with no answer.
    limits = {} if within is None else {"timeout": aiohttp.ClientTimeout(
        total=within, connect=min(within / 2, client.timeout.connect or within))}
    try:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with client.post(url, data=data, allow_redirects=False, **limits,
                               headers={**headers, "Content-Type": "application/json"}) as response:
            status, location = response.status, response.headers.get("Location", "")
            try:
                answer = Answer(status, _text(await _start_of(response.content), response.charset))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                if answer_needed and status < 300:
                    raise
                answer = Answer(status, "")  # the status says what became of the message
    except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as error:
        # An address no try can reach (a directory's typo): counted as "sent, no answer", it was
        # tried for an hour and dead-lettered as unanswered, the centre learning of it that late.
        raise Permanent(f"{type(error).__name__}: the address is not one a message can be sent to") from error
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:  # no connection: nothing was sent
        raise Transient(f"{type(error).__name__} talking to {URL(url).host}") from error
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise Unanswered(f"{type(error).__name__} talking to {URL(url).host}") from error
    if answer.status < 300:
        return answer
    if answer.status < 400:
        try:
            moved_to = URL(url).join(URL(location))
        except ValueError:
            raise Transient(f"HTTP {answer.status}: the receiver has moved, to an address not readable") from None
        # Only to the same scheme, host and port: the body carries a citizen's details, which a
        # redirect elsewhere (or from https to http) would hand to whoever the receiver names.
        same_origin = (moved_to.scheme, moved_to.host, moved_to.port) == (URL(url).scheme, URL(url).host, URL(url).port)
        if answer.status in (307, 308) and not redirected and same_origin:
            left = None if total is None else total - (time.monotonic() - started)
            if left is not None and left <= 0:
                raise Transient(f"HTTP {answer.status}: no time left to follow it")
            return await post(client, str(moved_to), body, headers, redirected=True, answer_needed=answer_needed,
                              within=left)
        where = moved_to.with_user(None).with_query(None).with_fragment(None)
        # This notifier's address for the receiver is out of date: like its refused credentials,
        # its to mend, and each message waits out its hour of tries for that (a gateway's address
        # set to http:// behind a redirect to https:// failed every SMS for good at once).
        raise Transient(f"HTTP {answer.status}: the receiver has moved to {where}; its address must be updated here")
    reason = refusal(answer.status, answer.text)
    # Not taken, the receiver says so; and 401, 403, 407: this notifier's credentials, not the
    # message, were refused (a key expired at 2 a.m.), so each message waits out its hour of tries
    # for them to be mended rather than failing for good at once.
    if answer.status in (401, 403, 407, 408, 425, 429, 503):
        raise Transient(reason)
    # 409 to a request with an Idempotency-Key: one under the same key is still being processed
    # (the IETF draft's meaning), so an earlier try was taken. Asked again later under the key, the
    # receiver answers as it answered that one.
    if answer.status >= 500 or (answer.status == 409 and "Idempotency-Key" in headers):
        raise Unanswered(reason)
    raise Permanent(reason)


async def _start_of(content: aiohttp.StreamReader) -> bytes:
    """The answer up to ``ANSWER_BYTES``, however many pieces it comes in."""
    start = b""
    while len(start) < ANSWER_BYTES and (piece := await content.read(ANSWER_BYTES - len(start))):
        start += piece
    return start


def _text(raw: bytes, charset: str | None) -> str:
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know: the answer is still worth reading
        return raw.decode("utf-8", errors="replace")


class WebhookProvider:
    """POSTs the message and the event that caused it to a district service (``delivery.target``).

    With a ``signing_key`` each POST says it is the notifier's, for the unit it goes to:
    ``X-1022-Unit-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>." and the body's bytes>``
    under that unit's key (:func:`unit_key`, derived from the signing key; the body names the unit).
    A district service that checks it (and that ``t`` is recent) takes no assignment, with a
    citizen's details, from anyone else, another unit included. With a ``shared_key`` (the key
    every unit was once given) the POST also has ``X-1022-Signature``, the same under that key, as
    every POST had before units had keys of their own: for district services still checking it,
    while each is given its unit's. A delivery planned before deliveries named their unit has that
    header alone (under the signing key when there is no shared key)."""

    def __init__(self, client: aiohttp.ClientSession, signing_key: bytes = b"", shared_key: bytes = b""):
        self.client, self.signing_key, self.shared_key = client, signing_key, shared_key

    async def send(self, delivery: Delivery) -> None:
        body = orjson.dumps({"delivery_id": str(delivery.delivery_id), "case_id": str(delivery.case_id),
                             "unit_id": delivery.unit_id, "template": delivery.template,
                             "subject": delivery.subject, "text": delivery.text, "event": delivery.payload})
        headers = headers_for(delivery)
        at = int(time.time())
        if self.signing_key and delivery.unit_id:
            headers[UNIT_SIGNATURE_HEADER] = signature(unit_key(self.signing_key, delivery.unit_id), body, at)
        if self.shared_key or (self.signing_key and not delivery.unit_id):
            headers[SIGNATURE_HEADER] = signature(self.shared_key or self.signing_key, body, at)
        await post(self.client, delivery.target, body, headers)


UNIT_SIGNATURE_HEADER = "X-1022-Unit-Signature"
SIGNATURE_HEADER = "X-1022-Signature"  # under the key every unit was once given


@functools.lru_cache(maxsize=4096)
def unit_key(signing_key: bytes, unit_id: str) -> bytes:
    """The key a unit's webhooks are signed with, which that unit alone is given: the hex HMAC-SHA256,
    under the notifier's signing key, of "1022 unit webhook", a newline and the unit's id
    (``python -m services.notifier unit-key <unit id>`` prints it)."""
    return hmac.new(signing_key, b"1022 unit webhook\n" + unit_id.encode(), hashlib.sha256).hexdigest().encode()


def signature(key: bytes, body: bytes, at: int) -> str:
    """The signature header's value for ``body`` sent at unix time ``at``."""
    return f"t={at},v1={hmac.new(key, f'{at}.'.encode() + body, hashlib.sha256).hexdigest()}"


def signed_with(key: bytes, header: str, body: bytes, now: float, within: float = 300) -> bool:
    """Whether ``header`` has a ``v1`` made with ``key`` for ``body``, at a ``t`` within ``within``
    seconds of ``now``: what a district service checks (examples/district_client.py)."""
    try:
        parts = [part.split("=", 1) for part in header.split(",") if "=" in part]
        at = int(next(value for name, value in parts if name == "t"))
    except (StopIteration, ValueError):
        return False
    expected = hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(now - at) < within and any(
        name == "v1" and hmac.compare_digest(value.encode(), expected.encode()) for name, value in parts)


class GatewayProvider:
    """POSTs ``{to, subject, text}`` to a configured gateway: the SMS gateway and the app's push endpoint.

    The causing event is not sent: a gateway needs the words, not the case.
    """

    def __init__(self, client: aiohttp.ClientSession, url: str, *, ascii_only: bool = False):
        self.client, self.url, self.ascii_only = client, url, ascii_only

    async def send(self, delivery: Delivery) -> None:
        # An SMS is planned without diacritics already (domain.citizen_message), so this changes
        # nothing of it; it keeps one planned under another configuration off a route that takes only ASCII.
        text = without_diacritics(delivery.text) if self.ascii_only else delivery.text
        body = {"delivery_id": str(delivery.delivery_id), "case_id": str(delivery.case_id), "to": delivery.target,
                "subject": delivery.subject, "text": text}
        await post(self.client, self.url, body, headers_for(delivery))


# Zalo answers HTTP 200 with an error code in the body; these codes may pass on a later try
# (-32: rate limited; a refused token, whose next try has a fresh one (contracts/zalo_token.py);
# -201, read by some as a bad token and by others as a bad parameter, tried again as it always was;
# -1: Zalo's own failure, after which the message may or may not have gone). Any other code is final.
ZALO_RETRIED: dict[int, type[Exception]] = {-32: Transient, -201: Transient, -1: Unanswered,
                                            **dict.fromkeys(TOKEN_REFUSED, Transient)}


class ZaloProvider:
    """The Zalo OA message API (v3, ``message/cs``): a text to a user who wrote to the OA."""

    def __init__(self, client: aiohttp.ClientSession, url: str, token: TokenSource, token_wait: float):
        self.client, self.url = client, url
        # How long a send waits for the token (borrowed from intake): a part of the send's time, so
        # a slow lender never makes a send that did not go out look like one that may have.
        self.token, self.token_wait = token, token_wait

    async def send(self, delivery: Delivery) -> None:
        started = time.monotonic()
        access_token = await token_within(self.token, self.token_wait)
        if access_token is None:
            raise Transient("no Zalo OA access token to hand")
        # The wait for the token is a part of the send's time, not more of it.
        left = None if self.client.timeout.total is None else self.client.timeout.total - (time.monotonic() - started)
        if left is not None and left <= 0:  # aiohttp reads a time-out of 0 as none at all
            raise Transient("no time left to send after waiting for the Zalo token")
        # The text is planned within the API's 2,000 characters (domain, fitting.zalo); the cut keeps
        # one planned before that off a refusal.
        body = {"recipient": {"user_id": delivery.target}, "message": {"text": delivery.text[:fitting.ZALO_CHARACTERS]}}
        response = await post(self.client, self.url, body, {**headers_for(delivery), "access_token": access_token},
                              answer_needed=True, within=left)
        try:
            answer = orjson.loads(response.text)
        except orjson.JSONDecodeError as error:  # a 2xx all the same: it may have been taken
            raise Unanswered("Zalo answered something that is not JSON") from error
        code = answer.get("error", 0) if isinstance(answer, dict) else 0
        if code == 0:
            return
        if code in TOKEN_REFUSED:
            await self.token.refused(access_token)
        reason = f"Zalo error {code}"  # its code, not its words (refusal())
        raise ZALO_RETRIED.get(code, Permanent)(reason)


class Providers:
    """The provider for each channel this notifier can send on."""

    def __init__(self, by_channel: dict[str, Provider]):
        self.by_channel = by_channel

    def get(self, channel: str) -> Provider:
        provider = self.by_channel.get(channel)
        if provider is None:
            raise NotConfigured(f"channel {channel} is not configured here")
        return provider
