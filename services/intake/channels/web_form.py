"""The web form's pages and uploads: Vietnamese first, English on ``?lang=en``.

Uploaded files are checked by their first bytes, not by what the browser claims, and only images
and PDF documents are kept: a unit opens them, so they must be what they say they are.
"""

import hashlib
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.intake.channels.common import categories, settings
from services.intake.domain import Problem, nfc
from services.intake.settings import IntakeSettings
from services.intake.store import Upload

TEXTS = {
    "vi": {
        "title": "Gửi phản ánh — Tổng đài 1022 TP.HCM", "heading": "Gửi phản ánh, kiến nghị",
        "intro": "Điền thông tin dưới đây. Tổng đài 1022 chuyển phản ánh đến đơn vị có trách nhiệm trong vài phút.",
        "full_name": "Họ và tên", "phone": "Số điện thoại", "address": "Địa chỉ nơi cần hỗ trợ",
        "address_hint": "Số nhà, đường, phường/xã, quận/huyện", "category": "Lĩnh vực", "choose": "— Chọn lĩnh vực —",
        "description": "Nội dung phản ánh", "links": "Đường dẫn tệp đính kèm (mỗi dòng một đường dẫn)",
        "files": "Tải lên hình ảnh hoặc PDF (tối đa {count} tệp, mỗi tệp {mb} MB)",
        "visibility": "Chế độ hiển thị", "public": "Công khai",
        "private": "Không công khai", "submit": "Gửi phản ánh", "other_lang": "English", "errors": "Chưa gửi được:",
        "received": "Đã tiếp nhận phản ánh", "code_is": "Mã tra cứu của anh/chị:",
        "keep": "Xin ghi lại mã này để tra cứu tình trạng xử lý qua tổng đài 1022.", "again": "Gửi phản ánh khác",
    },
    "en": {
        "title": "Submit a request — HCMC 1022 hotline", "heading": "Submit a request",
        "intro": "Fill in the form below. The 1022 centre sends it to the responsible unit within minutes.",
        "full_name": "Full name", "phone": "Phone number", "address": "Address where help is needed",
        "address_hint": "House number, street, ward/commune, district", "category": "Category",
        "choose": "— Choose a category —", "description": "What happened",
        "links": "Links to attachments (one per line)",
        "files": "Upload photos or PDF (at most {count} files of {mb} MB each)", "visibility": "Visibility",
        "public": "Public", "private": "Not public", "submit": "Submit", "other_lang": "Tiếng Việt",
        "errors": "Not sent yet:", "received": "Request received", "code_is": "Your tracking code:",
        "keep": "Keep this code to follow your request through the 1022 hotline.", "again": "Submit another request",
    },
}
# First bytes of the kinds of files we keep.
SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"), (b"GIF87a", "image/gif"),
              (b"GIF89a", "image/gif"), (b"%PDF-", "application/pdf"))
# A kept file's name ends as its kind does: "bien-ban.html" that is a GIF by its first bytes (and
# HTML after them) was downloaded by a unit under that name, and opened as a page.
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "application/pdf": ".pdf"}
# Every page of the form: nothing but itself, framed by no other site (which could dress it up
# and have a citizen click "Công khai" and "Gửi" unawares), posting only to itself.
PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
                                           " base-uri 'none'; frame-ancestors 'none'",
                "X-Frame-Options": "DENY"}


def sniff(content: bytes) -> str | None:
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return next((kind for magic, kind in SIGNATURES if content.startswith(magic)), None)


async def read_uploads(files: list[Any], settings: IntakeSettings) -> list[Upload]:
    """The uploaded files worth keeping; a Problem naming ``files`` for one too big or of the wrong kind."""
    chosen = [f for f in files if isinstance(f, UploadFile) and f.filename]
    if len(chosen) > settings.max_uploads:
        raise Problem("files", f"Tối đa {settings.max_uploads} tệp", f"At most {settings.max_uploads} files")
    uploads = []
    for file in chosen:
        content = await file.read(settings.max_upload_bytes + 1)
        if len(content) > settings.max_upload_bytes:
            mb = settings.max_upload_bytes // (1024 * 1024)
            raise Problem("files", f"Tệp vượt quá {mb} MB", f"A file is larger than {mb} MB", status=413)
        media_type = sniff(content)
        if media_type is None:
            raise Problem("files", "Chỉ nhận ảnh (JPEG, PNG, GIF, WebP) hoặc PDF",
                          "Only images (JPEG, PNG, GIF, WebP) or PDF documents are accepted", status=415)
        name = named_as_its_kind(nfc("".join(c for c in file.filename if c.isprintable())), media_type)
        uploads.append(Upload(name=name, media_type=media_type, content=content,
                              sha256=hashlib.sha256(content).hexdigest()))
    return uploads


def named_as_its_kind(name: str, media_type: str) -> str:
    """``name`` (at most 200 characters) ending as a file of ``media_type`` does."""
    extension = EXTENSIONS.get(media_type, "")
    stem = (name.rsplit(".", 1)[0] if "." in name[1:] else name) or "attachment"
    return stem[:200 - len(extension)] + extension


def form_page(request: Request, lang: str, values: dict[str, str], *, status: int = 200,
              errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> Response:
    limits = settings(request)
    # The limits said before the files are chosen: a post past them is refused before it is read,
    # and comes back empty (web.py).
    t = {**TEXTS[lang], "files": TEXTS[lang]["files"].format(
        count=limits.max_uploads, mb=limits.max_upload_bytes // (1024 * 1024))}
    context = {"lang": lang, "t": t, "values": values, "errors": errors or [],
               "error_fields": {e["field"] for e in errors or []},
               "categories": [(c.code, c.vi if lang == "vi" else c.en) for c in categories(request).values()]}
    return request.app.state.templates.TemplateResponse(request, "form.html", context, status_code=status,
                                                        headers={**PAGE_HEADERS, **(headers or {})})


def received_page(request: Request, lang: str, tracking_code: str) -> Response:
    context = {"lang": lang, "t": TEXTS[lang], "tracking_code": tracking_code}
    return request.app.state.templates.TemplateResponse(request, "received.html", context, headers=PAGE_HEADERS)
