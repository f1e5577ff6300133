"""The Zalo chatbot's dialogue (hội thoại): what to ask next, and when a request is complete (no I/O).

A conversation collects what a request needs — category (lĩnh vực), address, a phone number to
call back, what happened — asking only for what is still missing, reads it all back, and is
confirmed by the citizen. Its state is a small JSON document that the chatbot keeps in PostgreSQL,
so a conversation survives a restart and may continue on another intake instance.
"""

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field, replace

from contracts.categories import Category
from services.intake.domain import Problem, Submission, e164, nfc
from services.intake.oa_client import MAX_TEXT

IDLE, CONFIRM = "idle", "confirm"
ASKED = ("category", "address", "phone", "description")
MAX_ATTACHMENTS = 10
LIMITS = {"address": 500, "description": 5000}

WELCOME = "Tổng đài 1022 TP.HCM xin chào! Chúng tôi sẽ hỏi vài thông tin để tiếp nhận phản ánh của anh/chị."
QUESTIONS = {
    "address": "Xin cho biết địa chỉ nơi cần hỗ trợ (số nhà, đường, phường/xã, quận/huyện).",
    "phone": "Xin cho biết số điện thoại để cán bộ gọi lại.",
    "description": "Xin mô tả sự việc: chuyện gì đang xảy ra, cần hỗ trợ gì?",
}
CONFIRM_HOW = 'Trả lời "ĐỒNG Ý" để gửi phản ánh, "SỬA" để nhập lại từ đầu, hoặc "HỦY" để hủy.'
CANCELLED = "Đã hủy phản ánh. Anh/chị có thể nhắn tin bất cứ lúc nào để bắt đầu lại."
RESTARTED = "Chúng ta nhập lại từ đầu."
EXPIRED = "Phản ánh đang nhập dở đã quá hạn nên được bắt đầu lại."
TEXT_PLEASE = "Xin vui lòng trả lời bằng tin nhắn chữ."
GOT_ATTACHMENT = "Đã nhận tệp đính kèm ({n})."
GOT_LOCATION = "Đã nhận vị trí của anh/chị."
TOO_SHORT = "Thông tin quá ngắn, xin nhập rõ hơn."
RECEIVED = ("Tổng đài 1022 đã tiếp nhận phản ánh của anh/chị. Mã tra cứu: {code}. "
            "Xin ghi lại mã này để theo dõi kết quả xử lý.")
UNKNOWN_CATEGORY = "Chưa rõ lĩnh vực. Xin trả lời bằng số thứ tự trong danh sách."

_COMMANDS = {
    "yes": {"dong y", "ok", "oke", "co", "xac nhan", "yes", "dung", "gui", "y", "dong y gui"},
    "cancel": {"huy", "cancel", "thoi", "huy bo"},
    "restart": {"sua", "lam lai", "bat dau lai", "nhap lai", "restart"},
}


@dataclass(frozen=True)
class Incoming:
    """One thing the citizen did in Zalo, as the dialogue needs it."""

    kind: str  # text | attachment | location | sticker | follow | unfollow | info
    msg_id: str
    at: float  # seconds since the epoch, Zalo's clock
    text: str = ""
    attachments: list[dict[str, str]] = field(default_factory=list)
    location: dict[str, float] | None = None
    info: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Conversation:
    stage: str = IDLE  # idle | category | address | phone | description | confirm
    category: str | None = None
    address: str | None = None
    phone: str | None = None
    description: str | None = None
    full_name: str | None = None
    attachments: tuple[dict[str, str], ...] = ()
    location: dict[str, float] | None = None
    updated_at: float = 0.0

    def dumps(self) -> str:
        # ASCII escapes keep whatever a citizen typed storable as PostgreSQL text.
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, text: str | None) -> "Conversation":
        if not text:
            return cls()
        data = json.loads(text)
        # What a newer intake kept that this one does not know is left aside (a rolling upgrade, a
        # rollback): refused, the citizen's every message was put off until the conversation expired.
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "attachments": tuple(data.get("attachments") or ())})


@dataclass(frozen=True)
class Turn:
    """The result of one step: the new state, what to answer, and the request once confirmed."""

    conversation: Conversation
    replies: list[str]
    confirmed: Submission | None = None
    channel_key: str | None = None


def plain(text: str) -> str:
    """Text without diacritics, case or punctuation, for matching what people type on a phone."""
    text = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    text = "".join(c for c in text if unicodedata.category(c) != "Mn").casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", text).split())


def category_question(categories: dict[str, Category]) -> str:
    lines = [f"{i}. {c.vi}" for i, c in enumerate(categories.values(), 1)]
    return "Anh/chị cần phản ánh về lĩnh vực nào? Xin trả lời bằng số thứ tự:\n" + "\n".join(lines)


def match_category(text: str, categories: dict[str, Category]) -> str | None:
    """The category a reply names: its number in the list, its code, or (part of) its name."""
    wanted = plain(text)
    listed = list(categories.values())
    # isdigit() takes "②" and "²", which int() refuses: the conversation, and what the citizen had
    # typed, was thrown away. Three digits are ample, and keep int() from a number thousands long.
    if wanted.isdecimal() and len(wanted) <= 3 and 1 <= int(wanted) <= len(listed):
        return listed[int(wanted) - 1].code
    exact = [c.code for c in listed if wanted in (plain(c.vi), plain(c.en), c.code.replace("_", " "))]
    if len(exact) == 1:
        return exact[0]
    partial = [c.code for c in listed if len(wanted) >= 4 and (wanted in plain(c.vi) or wanted in plain(c.en))]
    return partial[0] if len(partial) == 1 else None


def read_back(c: Conversation, categories: dict[str, Category]) -> str:
    """What the citizen is asked to confirm, within one Zalo message. A description too long for it
    is shown cut (it is sent whole): cut by Zalo instead, the message lost its end, and with it how
    to confirm."""
    def text(description: str) -> str:
        lines = ["Xin kiểm tra lại thông tin phản ánh:",
                 f"• Lĩnh vực: {categories[c.category].vi if c.category in categories else c.category}",
                 f"• Địa chỉ: {c.address}", f"• Số điện thoại: {c.phone}", f"• Nội dung: {description}"]
        if c.attachments:
            lines.append(f"• Tệp đính kèm: {len(c.attachments)}")
        return "\n".join(lines + [CONFIRM_HOW])

    description = c.description or ""
    whole = text(description)
    over = len(whole) - MAX_TEXT
    return whole if over <= 0 else text(description[:len(description) - over - 1] + "…")


def _command(text: str) -> str | None:
    said = plain(text)
    return next((name for name, words in _COMMANDS.items() if said in words), None)


def _answer(c: Conversation, text: str, categories: dict[str, Category]) -> tuple[Conversation, str | None]:
    """Fill the field the conversation asked for from ``text``; or say why it cannot be."""
    if c.stage == "category":
        code = match_category(text, categories)
        return (replace(c, category=code), None) if code else (c, UNKNOWN_CATEGORY)
    if c.stage == "phone":
        try:
            return replace(c, phone=e164(text)), None
        except Problem as problem:
            return c, problem.vi + "."
    value = nfc(text)[:LIMITS[c.stage]]
    if len(value) < 3:
        return c, TOO_SHORT
    return replace(c, **{c.stage: value}), None


def _from_info(c: Conversation, info: dict[str, str]) -> Conversation:
    """What the citizen shared with Zalo's "request information" form fills what is still missing."""
    changes: dict[str, str] = {}
    if info.get("name") and not c.full_name:
        changes["full_name"] = nfc(info["name"])[:200]
    if info.get("phone") and not c.phone:
        try:
            changes["phone"] = e164(info["phone"])
        except Problem:
            pass
    place = ", ".join(nfc(info[k]) for k in ("address", "ward", "district", "city") if info.get(k))
    if len(place) >= 3 and not c.address:
        changes["address"] = place[:LIMITS["address"]]
    return replace(c, **changes)


def _ask_next(c: Conversation, replies: list[str], categories: dict[str, Category]) -> Turn:
    missing = next((name for name in ASKED if not getattr(c, name)), None)
    if missing is None:
        return Turn(replace(c, stage=CONFIRM), replies + [read_back(c, categories)])
    question = category_question(categories) if missing == "category" else QUESTIONS[missing]
    return Turn(replace(c, stage=missing), replies + [question])


def _submission(c: Conversation) -> Submission:
    return Submission(full_name=c.full_name, phone=c.phone, address=c.address, category=c.category,
                      description=c.description, attachments=list(c.attachments), location=c.location)


def step(c: Conversation, msg: Incoming, categories: dict[str, Category], ttl_seconds: float) -> Turn:
    """Take one event of the citizen; answer it, and hand over the request once it is confirmed."""
    replies: list[str] = []
    if c.stage != IDLE and msg.at - c.updated_at > ttl_seconds:
        c, replies = Conversation(), [EXPIRED]
    fresh = Conversation(updated_at=msg.at)
    c = replace(c, updated_at=max(c.updated_at, msg.at))
    if msg.kind == "unfollow":
        return Turn(fresh, [])
    if msg.kind == "follow":
        return _ask_next(fresh, [WELCOME], categories)
    if msg.kind == "text":
        command = _command(msg.text)
        if command == "cancel":
            return Turn(fresh, replies + [CANCELLED])
        if command == "restart":
            return _ask_next(fresh, replies + [RESTARTED], categories)
        if c.stage == CONFIRM:
            if command == "yes":
                return Turn(fresh, replies, confirmed=_submission(c), channel_key=msg.msg_id)
            return Turn(c, replies + [CONFIRM_HOW])
        if c.stage == IDLE:
            replies.append(WELCOME)
            said = nfc(msg.text)
            # A first message that tells the story is the description; a greeting is not.
            if len(said) >= 15 and match_category(said, categories) is None:
                c = replace(c, description=said[:LIMITS["description"]])
        else:
            c, problem = _answer(c, msg.text, categories)
            if problem:
                return _ask_next(c, replies + [problem], categories)
    elif msg.kind == "attachment":
        kept = (c.attachments + tuple(msg.attachments))[:MAX_ATTACHMENTS]
        c = replace(c, attachments=kept)
        replies += ([WELCOME] if c.stage == IDLE else []) + [GOT_ATTACHMENT.format(n=len(kept))]
    elif msg.kind == "location":
        c = replace(c, location=msg.location or c.location)
        replies += ([WELCOME] if c.stage == IDLE else []) + [GOT_LOCATION]
    elif msg.kind == "info":
        c = _from_info(c, msg.info)
    else:
        replies += ([WELCOME] if c.stage == IDLE else []) + [TEXT_PLEASE]
    return _ask_next(c, replies, categories)
