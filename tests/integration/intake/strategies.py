"""Hypothesis strategies for requests to every intake endpoint: mostly well-formed, often not.

Each strategy draws a :class:`Call` — what to send — and the run materialises it just before
sending, because Zalo events must be signed over their final bytes with a timestamp near "now".
"""

import json
import secrets
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from contracts import ids
from contracts.categories import load
from tests.integration.intake.harness import Secrets

CODES = list(load())
ADDRESSES = ["12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận", "P. Thảo Điền, Q.2", "45 Lê Văn Sỹ, P.13, Q.3",
             "Xã Tân Thông Hội, Củ Chi", "88 Phan Văn Trị, Phường 10, Gò Vấp"]
STORIES = ["Gia đình 5 người đang cách ly, hết gạo.", "Chưa nhận được tiền hỗ trợ gói 2.",
           "Cụ bà 82 tuổi sống một mình.", "Đèn đường hỏng cả dãy.", "Ống nước vỡ, nước tràn ra đường."]
PHONES = [f"09{n:08d}" for n in range(10_000_000, 10_000_200)]
ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
# Any text, lone surrogates and control characters included: JSON can carry them.
ANY_TEXT = st.one_of(st.text(max_size=80), st.text(st.characters(codec=None), max_size=20),
                     st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=5))
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT)
REUSED_KEYS = [f"reused-{i}" for i in range(8)]
# Keys made fresh at each draw: Hypothesis' own uuids repeat on purpose, which would make most
# requests retries of a few.
FRESH = st.builds(lambda: str(uuid.uuid4()))


def weighted(*choices: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of ``choices`` with about these weights; put the usual one first, as Hypothesis leans to it."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


@dataclass
class Call:
    """One request to make: ``sign`` is set for Zalo events, which are signed when sent."""

    method: str
    path: str
    endpoint: str
    json_body: Any = None
    form: dict[str, str] | None = None
    files: dict[str, tuple[str, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    zalo: dict[str, Any] | None = None
    sign: str | None = None


def mostly(valid: st.SearchStrategy, junk: st.SearchStrategy = ANY_TEXT) -> st.SearchStrategy:
    return st.one_of(valid, valid, valid, valid, junk)


def maybe(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), s)


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


idempotency_key = weighted((12, FRESH), (1, st.none()), (1, ASCII), (1, st.sampled_from(REUSED_KEYS)))
good_phone = st.sampled_from(PHONES).flatmap(lambda p: st.sampled_from([p, "+84" + p[1:], p[:4] + " " + p[4:]]))
phone = mostly(good_phone)
category = mostly(st.sampled_from(CODES))
address = mostly(st.sampled_from(ADDRESSES))
story = mostly(st.sampled_from(STORIES), st.text(max_size=6000))
attachments = st.lists(st.fixed_dictionaries({"url": mostly(st.just("https://example.org/a.jpg"))},
                                             optional={"media_type": ANY_TEXT, "name": ANY_TEXT}), max_size=3)
good_attachments = st.lists(st.fixed_dictionaries({"url": st.just("https://example.org/a.jpg")},
                                                  optional={"media_type": st.just("image/jpeg")}), max_size=3)


def clean_or_not() -> st.SearchStrategy:
    """Most calls are what a real client sends; the rest have junk in some fields."""
    return weighted((7, st.just(True)), (3, st.just(False)))


def pick(draw, clean: bool, valid: st.SearchStrategy, junk: st.SearchStrategy = ANY_TEXT) -> Any:
    return draw(valid if clean else mostly(valid, junk))


@st.composite
def submission(draw, with_phone: bool = True) -> dict[str, Any]:
    clean = draw(clean_or_not())
    if clean:
        body = {"full_name": draw(st.just("Nguyễn Thị Hoa")), "address": draw(st.sampled_from(ADDRESSES)),
                "category": draw(st.sampled_from(CODES)), "description": draw(st.sampled_from(STORIES)),
                "is_public": draw(st.booleans())}
        if with_phone:
            body["phone"] = draw(good_phone)
        return body | ({"attachments": draw(good_attachments)} if draw(st.booleans()) else {})
    body = drop_none({"full_name": draw(maybe(mostly(st.just("Nguyễn Thị Hoa")))),
                      "phone": draw(phone) if with_phone else draw(st.one_of(st.none(), st.none(), phone)),
                      "address": draw(maybe(address)), "category": draw(maybe(category)),
                      "description": draw(maybe(story)), "is_public": draw(maybe(mostly(st.booleans(), JSON_SCALAR))),
                      "attachments": draw(maybe(attachments)),
                      "location": draw(maybe(st.fixed_dictionaries({"latitude": st.floats(-90, 90),
                                                                    "longitude": st.floats(-180, 180)})))})
    if draw(st.integers(0, 20)) == 0:
        body[draw(ASCII)] = draw(JSON_SCALAR)
    return body


def web_json() -> st.SearchStrategy:
    return st.builds(lambda body, key: Call("POST", "/v1/channels/web/requests", "web", json_body=body,
                                            headers=drop_none({"Idempotency-Key": key})),
                     weighted((19, submission()), (1, JSON_SCALAR)), idempotency_key)


def app_json(tokens: list[str]) -> st.SearchStrategy:
    # Drawn by index, so that a failing example's description is not pages of tokens.
    authorization = mostly(st.integers(0, len(tokens) - 1).map(lambda i: f"Bearer {tokens[i]}"),
                           st.one_of(ASCII, st.just("Bearer x.y.z")))
    return st.builds(lambda body, key, auth: Call("POST", "/v1/channels/app/requests", "app", json_body=body,
                                                  headers=drop_none({"Idempotency-Key": key, "Authorization": auth})),
                     submission(with_phone=False), idempotency_key,
                     weighted((9, authorization), (1, st.none())))


def phone_json(keys: Secrets) -> st.SearchStrategy:
    operators = list(keys.operators)

    @st.composite
    def call(draw) -> Call:
        signed_in, clean = draw(st.sampled_from(operators)), draw(clean_or_not())
        body = draw(submission(with_phone=False)) | drop_none({
            "call_id": pick(draw, clean, weighted((9, FRESH), (1, st.sampled_from(REUSED_KEYS)))),
            "caller_number": pick(draw, clean, good_phone), "operator_id": pick(draw, clean, st.just(signed_in)),
            "ivr_branch": pick(draw, clean, st.just(2), st.one_of(st.integers(), JSON_SCALAR)),
            "source": pick(draw, clean, st.sampled_from(["operator", "callbot"]))})
        token = pick(draw, clean, st.just(keys.operators[signed_in]), ASCII)
        return Call("POST", "/v1/channels/phone/requests", "phone", json_body=body,
                    headers={"Authorization": f"Bearer {token}"} if clean or draw(st.booleans()) else {})

    return call()


def zalo_event(keys: Secrets, users: list[str]) -> st.SearchStrategy:
    names = st.sampled_from(["user_send_text", "user_send_text", "user_send_text", "follow", "unfollow",
                             "user_send_image", "user_send_location", "user_send_sticker", "user_seen_message",
                             "user_submit_info", "oa_send_text"])
    text = mostly(st.sampled_from(["xin chào", "1", "đồng ý", "hủy", "sửa", *ADDRESSES, *PHONES[:5], *STORIES]))

    @st.composite
    def event(draw) -> Call:
        user = draw(mostly(st.sampled_from(users), ASCII))
        body = {"app_id": keys.zalo_app_id, "event_name": draw(mostly(names)), "sender": {"id": user},
                "recipient": {"id": "388613280878808645"}, "follower": {"id": user},
                "message": drop_none({"msg_id": draw(mostly(FRESH, st.sampled_from(REUSED_KEYS))),
                                      "text": draw(maybe(text)),
                                      "attachments": draw(maybe(st.lists(st.fixed_dictionaries({
                                          "type": st.sampled_from(["image", "location", "file"]),
                                          "payload": st.fixed_dictionaries({}, optional={
                                              "url": mostly(st.just("https://example.org/z.jpg")),
                                              "coordinates": st.fixed_dictionaries({"latitude": JSON_SCALAR,
                                                                                    "longitude": JSON_SCALAR})})}),
                                          max_size=2)))}),
                "info": draw(maybe(st.dictionaries(st.sampled_from(["name", "phone", "address", "ward"]), text)))}
        age = draw(st.one_of(st.just(0), st.just(0), st.just(0), st.integers(-10**6, 10**6), st.just("junk")))
        sign = draw(st.sampled_from(["good", "good", "good", "good", "forged", "none"]))
        return Call("POST", "/v1/channels/zalo/webhook", "zalo", zalo={"body": body, "age": age}, sign=sign)

    return event()


def open311_post(keys: Secrets) -> st.SearchStrategy:
    @st.composite
    def report(draw) -> Call:
        if draw(clean_or_not()):
            fields = {"api_key": keys.open311_key, "service_code": draw(st.sampled_from(CODES)),
                      "address_string": draw(st.sampled_from(ADDRESSES)), "phone": draw(phone),
                      "lat": str(draw(st.floats(10, 11))), "long": str(draw(st.floats(106, 107))),
                      "first_name": "An", "description": draw(st.sampled_from(STORIES)),
                      "device_id": draw(FRESH)}
        else:
            fields = drop_none({
                "api_key": draw(maybe(mostly(st.just(keys.open311_key), ASCII))),
                "service_code": draw(maybe(category)), "address_string": draw(maybe(address)),
                "lat": draw(maybe(mostly(st.floats(-90, 90).map(str), ASCII))),
                "long": draw(maybe(mostly(st.floats(-180, 180).map(str), ASCII))),
                "first_name": draw(maybe(st.text(max_size=20))), "phone": draw(maybe(phone)),
                "email": draw(maybe(ASCII)), "device_id": draw(maybe(ASCII)), "description": draw(maybe(story)),
                "media_url": draw(maybe(mostly(st.just("https://example.org/m.jpg"))))})
        key = draw(st.one_of(st.none(), st.none(), idempotency_key))
        headers = drop_none({"Idempotency-Key": key})
        if draw(st.booleans()):
            return Call("POST", "/open311/v2/requests.json", "open311", json_body=fields, headers=headers)
        safe = {k: v.encode("utf-8", "replace").decode() for k, v in fields.items()}
        return Call("POST", "/open311/v2/requests.json", "open311", form=safe, headers=headers)

    return report()


def web_form() -> st.SearchStrategy:
    png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                        "0000000d49444154789c6300010000050001a5f645400000000049454e44ae426082")

    @st.composite
    def form(draw) -> Call:
        body = draw(submission())
        fields = {k: str(v).encode("utf-8", "replace").decode() for k, v in body.items()
                  if k in ("full_name", "phone", "address", "category", "description")}
        fields["form_key"] = draw(mostly(FRESH, ASCII))
        fields["is_public"] = draw(st.sampled_from(["0", "1", "x"]))
        upload = draw(weighted((6, st.none()), (3, st.just(png)), (1, st.binary(max_size=64))))
        files = {"files": ("ảnh.png", upload, "image/png")} if upload is not None else None
        return Call("POST", "/?lang=" + draw(st.sampled_from(["vi", "en", "xx"])), "form", form=fields, files=files)

    return form()


def reads() -> st.SearchStrategy:
    code = st.one_of(st.uuids().map(ids.tracking_code),
                     ANY_TEXT.map(lambda t: urllib.parse.quote(t.encode("utf-8", "replace"), safe="")))
    return st.one_of(
        st.just(Call("GET", "/open311/v2/services.json", "read")),
        st.sampled_from(CODES + ["ufo"]).map(lambda c: Call("GET", f"/open311/v2/services/{c}.json", "read")),
        code.map(lambda c: Call("GET", f"/open311/v2/requests/{c}.json", "read")),
        code.map(lambda c: Call("GET", f"/open311/v2/requests.json?service_request_id={c}", "read")),
        code.map(lambda c: Call("GET", f"/received/{c}", "read")),
        st.sampled_from(["vi", "en", "zz"]).map(lambda lang: Call("GET", f"/?lang={lang}", "read")),
        st.uuids().map(lambda u: Call("GET", f"/v1/attachments/{u}", "read")))


def any_call(keys: Secrets, app_tokens: list[str], zalo_users: list[str]) -> st.SearchStrategy:
    """A call to any endpoint, in about these shares: the posting channels first, reads last."""
    return weighted((4, web_json()), (3, app_json(app_tokens)), (3, phone_json(keys)), (3, zalo_event(keys, zalo_users)),
                    (3, open311_post(keys)), (2, web_form()), (2, reads()))


def zalo_request(keys: Secrets, call: Call) -> tuple[bytes, dict[str, str]]:
    """The bytes and headers of a Zalo event, signed now (or forged, or unsigned, as drawn)."""
    age = call.zalo["age"]
    timestamp = "junk" if age == "junk" else str(int(time.time() * 1000) - age)
    body = json.dumps(call.zalo["body"] | {"timestamp": timestamp}).encode()
    if call.sign == "none":
        return body, {"Content-Type": "application/json"}
    secret = keys.zalo_secret if call.sign == "good" else secrets.token_hex(8)
    return body, keys.zalo_headers(body, timestamp, secret)


def new_users(n: int) -> list[str]:
    return [str(uuid.uuid4().int)[:18] for _ in range(n)]
