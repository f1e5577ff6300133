"""The words each message says (mẫu tin), Vietnamese first, English second.

Officials (đầu mối xử lý) read Vietnamese. A citizen who wrote in English gets the Vietnamese text,
which is the official one, followed by the English. Times are Vietnam's (UTC+7, no summer time).
"""

import unicodedata
from datetime import datetime
from typing import Any

from contracts.text import VIETNAM


# name → (subject vi, text vi, subject en, text en)
TEMPLATES: dict[str, tuple[str, str, str, str]] = {
    "assignment": (
        "[1022] Phản ánh mới {code}",
        "Phản ánh {code} giao cho {handler} ({unit}): {category} tại {address}. Nội dung: {description} "
        "Hạn tiếp nhận: {respond_by}. Hạn có kết quả: {resolve_by}.",
        "[1022] New case {code}",
        "Case {code} for {handler} ({unit}): {category} at {address}. {description} "
        "Acknowledge by {respond_by}; result due {resolve_by}."),
    # To a unit the category's rule tells as well (``AssignmentIssued.also``), by its webhook.
    "assignment_copy": (
        "[1022] Phối hợp xử lý phản ánh {code}",
        "Gửi {to}: phản ánh {code} ({category}) tại {address} đã giao cho {unit} xử lý; đề nghị phối hợp. "
        "Nội dung: {description} Hạn có kết quả: {resolve_by}.",
        "[1022] Case {code}: for your action with {unit}",
        "To {to}: case {code} ({category}) at {address} was given to {unit}; please act with them. "
        "{description} Result due {resolve_by}."),
    # To the unit that holds a case: a report linked to it, in its own words (DuplicateLinked).
    "duplicate_report": (
        "[1022] Phản ánh bổ sung cho {code}",
        "Phản ánh mới {duplicate} cùng số điện thoại, lĩnh vực và địa bàn đã được gộp vào phản ánh {code} "
        "đơn vị đang xử lý. Địa chỉ: {address}. Nội dung: {description}",
        "[1022] Another report joined case {code}",
        "New report {duplicate}, from the same phone number about the same matter and area, was joined to "
        "case {code}, which your unit holds. Address: {address}. {description}"),
    # To the unit the 1022 centre took a case from, for another unit.
    "withdrawn": (
        "[1022] Phản ánh {code} đã chuyển đơn vị khác",
        "Tổng đài 1022 đã chuyển phản ánh {code} sang {unit} xử lý. Đơn vị không cần xử lý tiếp phản ánh này.",
        "[1022] Case {code} moved to another unit",
        "The 1022 centre has given case {code} to {unit}. Your unit need not act on it any more."),
    "handler_escalated": (
        "[1022] Phản ánh {code} quá hạn",
        "Phản ánh {code} đã quá hạn {deadline} và được báo lên {level}. Đề nghị khẩn trương xử lý.",
        "[1022] Case {code} is late",
        "Case {code} missed its {deadline} deadline; {level} has been told. Please act now."),
    # To the 1022 centre: a unit's case is late past its unit head, the chain's last step.
    "centre_escalated": (
        "[1022] Phản ánh {code} quá hạn tại {unit}",
        "Phản ánh {code} giao {unit} đã quá hạn {deadline}; lãnh đạo đơn vị đã được báo mà chưa xử lý. "
        "Đề nghị Tổng đài 1022 đôn đốc.",
        "[1022] Case {code} late at {unit}",
        "Case {code}, given to {unit}, missed its {deadline} deadline and its unit head was told without"
        " effect. The 1022 centre is asked to follow it up."),
    # To the 1022 centre: a case it is sorting (triage) has not reached a unit in time.
    "triage_escalated": (
        "[1022] Phản ánh {code} chưa được chuyển đơn vị",
        "Phản ánh {code} đang chờ Tổng đài 1022 phân loại đã quá thời hạn chuyển đơn vị xử lý và được báo lên "
        "{level}. Đề nghị khẩn trương phân loại.",
        "[1022] Case {code} not yet sent to a unit",
        "Case {code}, waiting for the 1022 centre to sort it, is past its time to reach a unit; {level} has "
        "been told. Please sort it now."),
    "received": (
        "[1022] Đã nhận phản ánh {code}",
        "Tổng đài 1022 đã nhận phản ánh của bạn. Mã tra cứu: {code}.",
        "[1022] Request {code} received",
        "The 1022 hotline received your request. Tracking code: {code}."),
    "routed": (
        "[1022] Phản ánh {code} đã được chuyển",
        "Phản ánh {code} đã được chuyển đến {unit} để xử lý.",
        "[1022] Request {code} forwarded",
        "Request {code} has been sent to {unit} for handling."),
    "resolved": (
        "[1022] Kết quả phản ánh {code}",
        "Phản ánh {code} đã có kết quả từ {unit}: {answer}",
        "[1022] Result of request {code}",
        "Request {code} has a result from {unit}: {answer}"),
    "apology": (
        "[1022] Xin lỗi về phản ánh {code}",
        "Tổng đài 1022 xin lỗi: phản ánh {code} chưa có kết quả đúng hạn. Đơn vị đang khẩn trương xử lý "
        "và sẽ báo bạn ngày có kết quả.",
        "[1022] Our apologies about request {code}",
        "The 1022 hotline apologises: request {code} has no result on time yet. The unit is working on it "
        "and will tell you when to expect it."),
    "apology_dated": (
        "[1022] Xin lỗi về phản ánh {code}",
        "Tổng đài 1022 xin lỗi: phản ánh {code} chưa có kết quả đúng hạn."
        " {unit} hẹn có kết quả chậm nhất {at}ngày {date}.",
        "[1022] Our apologies about request {code}",
        "The 1022 hotline apologises: request {code} has no result on time. {unit} commits to a result by {at}{date}."),
    # Nothing of the case it repeats: the phone was typed, never verified, so whoever reads this
    # may not be the citizen who reported first, and that case's code would let them look it up.
    "duplicate": (
        "[1022] Phản ánh {code} đã được gộp",
        "Phản ánh {code} đã được gộp vào một phản ánh cùng số điện thoại đang được xử lý. "
        "Thông tin cập nhật sẽ được gửi theo mã tra cứu bạn nhận được lần đầu.",
        "[1022] Request {code} joined to an earlier one",
        "Request {code} was joined to a request from the same phone number that is already being handled. "
        "Updates will come under the tracking code you were given first."),
}

# The part of a message that is someone else's free text, of any length: an SMS or a Zalo message
# carries as much of its start as its channel leaves room for (services/notifier/fitting.py), never
# the fixed words.
FREE_TEXT = {"resolved": "answer", "assignment": "description", "assignment_copy": "description",
             "duplicate_report": "description"}
# In the English part of a message in both languages, in the place of the free text given above it.
GIVEN_ABOVE = "see above, in Vietnamese."
# Said after an answer cut short, when a public page shows it whole: in Vietnamese, in English
# alone (an English reader's SMS), in both (an English reader's Zalo message).
READ_IN_FULL = {"vi": "Xem đầy đủ: {url}", "en": "Read it all: {url}", "vi+en": "Xem đầy đủ / Read it all: {url}"}

# Words filled into the officials' messages, which are in Vietnamese only.
DEADLINES = {"reach": "tiếp nhận", "resolve": "giải quyết"}
LEVELS = {"unit_head": "lãnh đạo đơn vị", "centre": "Trung tâm 1022"}
# The same levels for a case the centre itself is sorting: its duty head, then its leadership.
TRIAGE_LEVELS = {"unit_head": "trưởng ca Tổng đài 1022", "centre": "lãnh đạo Tổng đài 1022"}


def when(moment: datetime | str | None) -> str:
    """A deadline as a Vietnamese reader writes it: ``17:30 05/12/2026``."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y")


def committed_by(moment: datetime | str) -> dict[str, str]:
    """A unit's committed date as the apology gives it (``at``, ``date``): the day alone for a day
    (its end in Vietnam), else its time too. The case is late from that moment: told the day alone
    of a promise of 08:00, the citizen was apologised to again that morning, before the day was out."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    local = moment.astimezone(VIETNAM) if moment.tzinfo is not None else moment
    at = "" if (local.hour, local.minute, local.second) == (23, 59, 59) else local.strftime("%H:%M ")
    return {"at": at, "date": local.strftime("%d/%m/%Y")}


def render(template: str, language: str, *, alone: bool = False, **values: Any) -> tuple[str, str]:
    """(subject, text) of a message; ``language`` is the reader's: ``vi`` or ``en``. With ``alone``,
    in the reader's language only: an SMS has no room for two."""
    subject_vi, text_vi, subject_en, text_en = TEMPLATES[template]
    if alone and language == "en":
        return subject_en.format(**values), text_en.format(**values)
    subject, text = subject_vi.format(**values), text_vi.format(**values)
    if language == "en":
        # Someone's free text (a unit's answer, in Vietnamese) is given once, in the Vietnamese part.
        in_english = {**values, FREE_TEXT[template]: GIVEN_ABOVE} if template in FREE_TEXT else values
        subject = f"{subject} / {subject_en.format(**in_english)}"
        text = f"{text}\n\n{text_en.format(**in_english)}"
    return subject, text


def without_diacritics(text: str) -> str:
    """``Phản ánh đã được chuyển`` → ``Phan anh da duoc chuyen``: for SMS routes that take only ASCII."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
