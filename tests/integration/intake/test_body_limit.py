"""Bodies past a channel's limit over real HTTP: refused with 413 in the channel's own errors as
soon as they pass it, whether the client declared the length or streams a body without one."""

import asyncio
import json
import unicodedata
import uuid

import httpx
import pytest

from tests.integration.intake.test_web import REQUEST

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

# The defaults (README, configuration): the JSON channels, Open311 (form-encoded text takes up to
# three times the bytes), the Zalo webhook (an event a platform never sends twice).
LIMITS = {"/v1/channels/web/requests": 64 * 1024, "/v1/channels/app/requests": 64 * 1024,
          "/v1/channels/phone/requests": 64 * 1024, "/open311/v2/requests.json": 128 * 1024,
          "/v1/channels/zalo/webhook": 256 * 1024}


def errors(path: str, answer: httpx.Response) -> list[dict]:
    """The refusal's entries: GeoReport's list on Open311, ``{"errors": [...]}`` elsewhere."""
    return answer.json() if path.startswith("/open311/") else answer.json()["errors"]


def too_big(limit: int) -> bytes:
    """Well-formed JSON one byte past ``limit``."""
    head, tail = b'{"description": "', b'"}'
    return head + b"x" * (limit + 1 - len(head) - len(tail)) + tail


async def answer_to(intake, head: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` and ``body`` on a raw connection, sending nothing more, and read the answer."""
    host, port = intake.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + body)
        await writer.drain()
        status = int((await asyncio.wait_for(reader.readline(), 10)).split()[1])
        headers = {}
        while (line := await asyncio.wait_for(reader.readline(), 10)) != b"\r\n":
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        return status, headers, await reader.readexactly(int(headers["content-length"]))
    finally:
        writer.close()


async def test_a_body_past_its_channels_limit_is_refused_with_413_naming_the_limit(intake):
    async with httpx.AsyncClient(timeout=30) as client:
        answers = {path: await client.post(intake.url + path, content=too_big(limit),
                                           headers={"Content-Type": "application/json"})
                   for path, limit in LIMITS.items()}
    for path, answer in answers.items():
        assert answer.status_code == 413, path
        [problem] = errors(path, answer)
        assert problem["field"] == "body" and problem["reason_vi"], path
        assert f"at most {LIMITS[path]} bytes" in problem["reason_en"], path
    assert answers["/open311/v2/requests.json"].json()[0]["code"] == 413, "GeoReport's error list"


@pytest.mark.parametrize("path", ["/v1/channels/web/requests", "/v1/channels/zalo/webhook"])
async def test_a_body_streamed_without_a_length_is_refused_once_past_the_limit(intake, path):
    # The client has sent only the limit and a little more, and never ends its body: the answer
    # must come all the same, so nothing waited for (or kept) the rest.
    chunk = b"x" * (LIMITS[path] + 1024)
    head = (f"POST {path} HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
            f"Transfer-Encoding: chunked\r\nIdempotency-Key: {uuid.uuid4()}\r\n")
    status, _, body = await answer_to(intake, head, b"%x\r\n%s\r\n" % (len(chunk), chunk))
    assert status == 413
    assert json.loads(body)["errors"][0]["field"] == "body"


async def test_the_web_form_streamed_without_a_length_is_refused_before_its_files_are_read(intake):
    # Its uploads may be megabytes (a limit per file, checked once read), so no undeclared stream
    # is taken at all; the client never ends its body, and the answer comes all the same.
    boundary = "b" * 16
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * 65536
    head = ("POST / HTTP/1.1\r\nHost: intake\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n")
    status, headers, body = await answer_to(intake, head, b"%x\r\n%s\r\n" % (len(part), part))
    assert status == 411
    assert "text/html" in headers["content-type"] and "Content-Length" in body.decode()


async def test_a_declared_length_past_the_limit_is_refused_before_the_body_is_read(intake):
    head = ("POST /open311/v2/requests.json HTTP/1.1\r\nHost: intake\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 52428800\r\n")
    status, _, body = await answer_to(intake, head, b"service_code=water&description=")
    assert status == 413
    assert json.loads(body)[0]["field"] == "body"


async def test_the_longest_request_a_citizen_can_write_fits_under_the_limit(intake):
    # Every field at its longest, decomposed (NFD) and with every non-ASCII character escaped:
    # the most bytes a web client can legitimately send.
    story = "Gia đình tôi gồm 5 người đang cách ly tại nhà, đã hết gạo và nhu yếu phẩm, xin được hỗ trợ. "
    words = unicodedata.normalize("NFD", story * 60)
    longest = {**REQUEST, "full_name": words[:200].strip(), "address": words[:500].strip(),
               "description": unicodedata.normalize("NFD", unicodedata.normalize("NFC", story * 60)[:5000]).strip(),
               "email": "a" * 240 + "@example.org",
               "attachments": [{"url": "https://example.org/" + "a" * 1970, "media_type": "image/jpeg",
                                "name": words[:200].strip()}] * 10}
    body = json.dumps(longest).encode()
    async with httpx.AsyncClient(timeout=15) as client:
        answer = await client.post(intake.url + "/v1/channels/web/requests", content=body,
                                   headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
    assert answer.status_code == 202, answer.text
    assert len(body) > LIMITS["/v1/channels/web/requests"] // 2


@pytest.mark.parametrize("path", ["/v1/channels/web/requests", "/internal/zalo/access-token"])
async def test_a_body_that_does_not_arrive_in_time_is_refused_with_408(start_intake, path):
    intake = start_intake(body_read_seconds=1)
    head = (f"POST {path} HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n")
    status, headers, body = await answer_to(intake, head, b'{"full_name": ')
    assert status == 408 and headers["connection"] == "close"
    problem = json.loads(body)["errors"][0]
    assert problem["field"] == "body" and "within 1 seconds" in problem["reason_en"]


async def test_the_token_lenders_body_is_capped_before_its_key_is_checked(intake):
    head = ("POST /internal/zalo/access-token HTTP/1.1\r\nHost: intake\r\nContent-Type: application/json\r\n"
            "Content-Length: 2147483648\r\n")
    status, _, body = await answer_to(intake, head, b'{"refused": "')
    assert status == 413 and json.loads(body)["errors"][0]["field"] == "body"
