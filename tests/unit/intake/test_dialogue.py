"""The Zalo chatbot's dialogue, step by step, without Zalo, PostgreSQL or Kafka."""

import json

from contracts.categories import load
from services.intake.dialogue import CONFIRM, CONFIRM_HOW, Conversation, Incoming, match_category, plain, step
from services.intake.domain import nfc
from services.intake.oa_client import MAX_TEXT

CATEGORIES = load()
DAY = 24 * 3600


class Chat:
    """A conversation driven one message at a time, as the chatbot would."""

    def __init__(self):
        self.state, self.clock, self.n = Conversation(), 1_800_000_000.0, 0
        self.replies: list[str] = []
        self.confirmed = None

    def send(self, kind: str = "text", text: str = "", after: float = 5, **extra) -> list[str]:
        self.clock += after
        self.n += 1
        turn = step(self.state, Incoming(kind=kind, msg_id=f"m{self.n}", at=self.clock, text=text, **extra),
                    CATEGORIES, DAY)
        self.state, self.replies = Conversation.loads(turn.conversation.dumps()), turn.replies
        self.confirmed, self.key = turn.confirmed, turn.channel_key
        return turn.replies


def test_from_greeting_to_a_confirmed_submission():
    chat = Chat()
    assert "lĩnh vực" in chat.send("follow")[-1]
    assert "địa chỉ" in chat.send(text="2")[-1]
    assert "số điện thoại" in chat.send(text="45 Lê Văn Sỹ, P.13, Q.3")[-1]
    assert "mô tả" in chat.send(text="0912 345 678")[-1]
    read_back = chat.send(text="Chưa nhận được hỗ trợ gói 2")[-1]
    assert chat.state.stage == CONFIRM
    assert "Chưa nhận hỗ trợ Covid-19" in read_back and "+84912345678" in read_back
    chat.send(text="Đồng ý!")
    assert chat.confirmed is not None and chat.key == "m6"
    assert chat.confirmed.category == "covid_support" and chat.confirmed.phone == "+84912345678"
    assert chat.state == Conversation(updated_at=chat.clock), "a confirmed conversation starts afresh"


def test_a_wrong_answer_is_explained_and_asked_again():
    chat = Chat()
    chat.send(text="alo")
    assert "Chưa rõ lĩnh vực" in chat.send(text="99")[0]
    chat.send(text="khác")
    chat.send(text="Phường 1")
    said = chat.send(text="12")
    assert "Số điện thoại không hợp lệ" in said[0] and "số điện thoại" in said[-1]
    assert chat.state.stage == "phone"


def test_a_digit_int_cannot_read_is_asked_again_and_nothing_typed_is_lost():
    """"②" and "²" pass isdigit() but not int(): the step raised, and the chatbot threw the
    conversation away with an apology. A number thousands of digits long did the same."""
    chat = Chat()
    chat.send(text="Nhà tôi hết gạo, 5 người")
    for odd in ("②", "²", "9" * 5000):
        assert "Chưa rõ lĩnh vực" in chat.send(text=odd)[0]
    assert chat.state.stage == "category" and chat.state.description == "Nhà tôi hết gạo, 5 người"
    chat.send(text="１")  # a full-width one is a one
    assert chat.state.category == "essential_supplies"


def test_cancel_and_restart_at_any_point():
    chat = Chat()
    chat.send(text="1")
    chat.send(text="1")
    assert "Đã hủy" in chat.send(text="HỦY")[0] and chat.state.stage == "idle"
    chat.send(text="1")
    assert "lĩnh vực" in chat.send(text="sửa")[-1] and chat.state.category is None


def test_photos_and_a_location_are_kept_and_a_sticker_asks_for_words():
    chat = Chat()
    chat.send(text="Cây đổ chắn ngang đường Lê Lợi, xe không qua được")
    chat.send("attachment", attachments=[{"url": "https://zalo.example/anh.jpg", "media_type": "image", "name": ""}])
    chat.send("location", location={"latitude": 10.77, "longitude": 106.70})
    assert "chữ" in chat.send("sticker")[0]
    for answer in ("cây xanh", "Lê Lợi, Quận 1", "0903123456"):
        chat.send(text=answer)
    chat.send(text="ok")
    assert chat.confirmed.category == "trees" and chat.confirmed.location.latitude == 10.77
    assert chat.confirmed.attachments[0].url == "https://zalo.example/anh.jpg"


def test_what_zalo_shares_fills_what_is_missing():
    chat = Chat()
    chat.send("follow")
    chat.send(text="4")
    chat.send("info", info={"name": "Võ Thị Lan", "phone": "0978123123", "address": "12 Hai Bà Trưng",
                            "ward": "Phường Bến Nghé", "district": "Quận 1"})
    assert chat.state.stage == "description"
    assert chat.state.address == "12 Hai Bà Trưng, Phường Bến Nghé, Quận 1" and chat.state.full_name == "Võ Thị Lan"


def test_a_conversation_left_for_a_day_starts_again():
    chat = Chat()
    chat.send(text="1")
    said = chat.send(text="12 Nguyễn Văn Trỗi", after=DAY + 1)
    assert "quá hạn" in said[0] and chat.state.address is None


def test_categories_are_understood_without_diacritics_or_by_number():
    assert match_category("giao thong", CATEGORIES) == "traffic"
    assert match_category("Thiếu nhu yếu phẩm", CATEGORIES) == "essential_supplies"
    assert match_category("13", CATEGORIES) == "other" and match_category("14", CATEGORIES) is None
    assert match_category("nước", CATEGORIES) == "water"  # "Cấp thoát nước" is the only one with it
    assert match_category("đi", CATEGORIES) is None  # too short to tell
    assert match_category("công", CATEGORIES) is None  # "Chiếu sáng công cộng", "Vận tải công cộng", …
    assert plain("Đồng Ý!") == "dong y"


def test_a_long_description_is_read_back_cut_and_the_way_to_confirm_stays_in_the_message():
    """Zalo takes 2,000 characters a message and the dialogue 5,000 of description: Zalo cut the
    read-back's end, "ĐỒNG Ý" with it, and the citizen was not told how to send the request."""
    chat = Chat()
    chat.send("follow")
    chat.send(text="2")
    chat.send(text="45 Lê Văn Sỹ, P.13, Q.3, " + "hẻm sâu " * 55)
    chat.send(text="0912 345 678")
    story = "Nhà tôi năm người, hết gạo từ hôm qua. " * 100
    read_back = chat.send(text=story)[-1]
    assert len(read_back) == MAX_TEXT and read_back.endswith(CONFIRM_HOW)
    assert "…" in read_back and "+84912345678" in read_back
    chat.send(text="ĐỒNG Ý")
    assert chat.confirmed.description == nfc(story).strip()[:5000], "the request keeps what was written"


def test_a_description_that_fits_is_read_back_whole():
    chat = Chat()
    chat.send("follow")
    for said in ("2", "45 Lê Văn Sỹ, P.13, Q.3", "0912 345 678"):
        chat.send(text=said)
    read_back = chat.send(text="Chưa nhận được hỗ trợ gói 2")[-1]
    assert "• Nội dung: Chưa nhận được hỗ trợ gói 2\n" in read_back and "…" not in read_back


def test_a_conversation_a_newer_intake_kept_goes_on_here():
    """Old and new instances run together in a rolling upgrade, and a rollback reads what the new one
    saved: a field this one does not know once made every message of that citizen fail, until the
    conversation expired a day later."""
    chat = Chat()
    chat.send("follow")
    chat.send(text="2")
    newer = json.loads(chat.state.dumps()) | {"ward_code": "26734"}
    chat.state = Conversation.loads(json.dumps(newer))
    assert "số điện thoại" in chat.send(text="45 Lê Văn Sỹ, P.13, Q.3")[-1]
