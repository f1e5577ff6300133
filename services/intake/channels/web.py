"""The web channel ("Gửi phản ánh"): the JSON endpoint, the HTML form, and its uploaded files.

The form posts, is answered with a redirect to the page showing the tracking code (so reloading
that page sends nothing twice), and carries a key made when the form was shown, so a double click
or a resubmission gives the same tracking code.
"""

import asyncio
import hashlib
import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import Field, ValidationError
from starlette.exceptions import HTTPException

from contracts import ids
from contracts.events import Attachment
from contracts.text import Text
from services.intake.application import Unavailable, database_answers
from services.intake.channels.common import accept, categories, intake, settings, typed_sender
from services.intake.channels.web_form import form_page, named_as_its_kind, read_uploads, received_page
from services.intake.store import Upload
from services.intake.domain import Problem, Submission, build_request, check_key
from services.intake.problems import problems_of

router = APIRouter()


class WebSubmission(Submission):
    """The 1022 web form asks for a name and a phone number to call back."""

    full_name: Annotated[Text, Field(min_length=1, max_length=200)]
    phone: Annotated[Text, Field(min_length=1, max_length=32)]


@router.post("/v1/channels/web/requests", status_code=202)
async def web_request(request: Request, body: WebSubmission,
                      idempotency_key: Annotated[str | None, Header()] = None) -> Response:
    event = build_request("web", check_key(idempotency_key), body, categories(request))
    return await accept(request, event, typed_sender(request, event.citizen.phone))


def _lang(request: Request) -> str:
    return "en" if request.query_params.get("lang") == "en" else "vi"


@router.get("/", response_class=HTMLResponse)
async def form(request: Request) -> Response:
    return form_page(request, _lang(request), {"form_key": str(uuid.uuid4())})


# The most a text field of the form may hold. A field is held in memory while the form is read, and
# the parser's own limit (1 MiB each, 40 fields) let one post hold 40 MiB before anything was checked;
# the longest a citizen can write (5,000 characters, decomposed, three bytes each) is a third of this.
FIELD_BYTES = 64 * 1024
# The most files the form's parser reads before it gives up on the post.
FORM_FILES = 50


@router.post("/", response_class=HTMLResponse)
async def submit_form(request: Request) -> Response:
    lang = _lang(request)

    def unread(status: int, field: str, vi: str, en: str) -> Response:
        """The form refused before its fields are read: shown again empty, with why."""
        return form_page(request, lang, {"form_key": str(uuid.uuid4())}, status=status,
                         errors=[Problem(field, vi, en).as_dict()])

    limit = settings(request).max_upload_bytes * settings(request).max_uploads + 1024 * 1024
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        # A browser always declares a form's length. A body streamed without one would be parsed,
        # its files spooled to disk, with no end in sight: it is refused before a byte is read.
        return unread(411, "body", "Thiếu độ dài nội dung (Content-Length)",
                      "The form must be sent with a Content-Length")
    count, mb = settings(request).max_uploads, settings(request).max_upload_bytes // (1024 * 1024)
    if int(declared) > limit:
        return unread(413, "files", f"Tệp đính kèm quá lớn (tối đa {count} tệp, mỗi tệp {mb} MB)",
                      f"Attachments too large (at most {count} files of {mb} MB each)")
    try:
        # A citizen who picked a few photos too many is told so by read_uploads, the form kept as typed;
        # the parser's own limit is only against a post of thousands of parts (the length bounds the bytes).
        form = await request.form(max_files=max(FORM_FILES, count + 1), max_fields=40, max_part_size=FIELD_BYTES)
    except HTTPException as error:  # a field past FIELD_BYTES, too many fields or files, or no multipart
        if "maximum size" in str(error.detail):
            return unread(413, "body", "Nội dung biểu mẫu quá dài", "The form is too long")
        if "Too many files" in str(error.detail):
            return unread(400, "files", f"Tối đa {count} tệp", f"At most {count} files")
        return unread(400, "body", "Không đọc được biểu mẫu", "The form could not be read")
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        key = check_key(values.get("form_key"), field="form_key")
        uploads = await read_uploads(form.getlist("files"), settings(request))
        links = [line for line in values.get("attachment_links", "").splitlines() if line.strip()]
        stored = [(uuid.uuid5(ids.NAMESPACE, f"attachment:{key}:{u.sha256}"), u) for u in uploads]
        attachments = [Attachment(url=link) for link in links] + [
            Attachment(url=f"{settings(request).base_url()}/v1/attachments/{aid}", media_type=u.media_type, name=u.name)
            for aid, u in stored]
        submission = WebSubmission(
            full_name=values.get("full_name", ""), phone=values.get("phone", ""), address=values.get("address", ""),
            category=values.get("category", ""), description=values.get("description", ""),
            is_public=values.get("is_public") == "1", attachments=attachments, language=lang)
        # The form's key stops double submissions; a citizen who went back and changed the form
        # sends a new request, not a conflicting retry.
        content = hashlib.sha256(submission.model_dump_json().encode()).hexdigest()[:16]
        event = build_request("web", f"{key}-{content}", submission, categories(request))
        answer = await _submit_once_free(request, event, stored)
    except (ValidationError, Problem) as error:
        status = error.status if isinstance(error, Problem) else 422
        headers = error.headers if isinstance(error, Problem) else None
        return form_page(request, lang, values, status=status, errors=problems_of(error), headers=headers)
    except Unavailable:
        retry = str(settings(request).retry_after_seconds)
        return form_page(request, lang, values, status=503, headers={"Retry-After": retry},
                         errors=[{"field": "", "reason_vi": "Hệ thống tạm bận, vui lòng gửi lại sau ít phút",
                                  "reason_en": "The system is busy; please submit again in a few minutes"}])
    # The code the receipt holds: another request's may have been this one's first (contracts/ids.py).
    return RedirectResponse(f"/received/{answer['tracking_code']}?lang={lang}", status_code=303)


async def _submit_once_free(request: Request, event, stored: list[tuple[uuid.UUID, Upload]]) -> dict[str, str]:
    """Submit the form's request, its files kept once it is let in (one refused before that, by the
    sender's limit or a conflict, keeps none); while the same request is being accepted (a double
    click), wait for that answer instead of giving 409. The form shown again with the 409 had lost
    its files, and sent again it was a new request: a second case, without them."""
    async def keep_files() -> None:
        for aid, upload in stored:
            await intake(request).attachments.keep(aid, upload)

    # The claim is held while the files are kept and while Kafka is asked, each at most the time-out.
    deadline = asyncio.get_running_loop().time() + 2 * settings(request).publish_timeout_seconds + 1
    while True:
        try:
            return await intake(request).submit(event, typed_sender(request, event.citizen.phone),
                                                before_publish=keep_files)
        except Problem as problem:
            if problem.status != 409 or asyncio.get_running_loop().time() >= deadline:
                raise
        await asyncio.sleep(0.2)  # the claim in progress is not counted against the sender


@router.get("/received/{tracking_code}", response_class=HTMLResponse)
async def received(request: Request, tracking_code: str) -> Response:
    code = ids.normalise_tracking_code(tracking_code)
    if code is None:
        return RedirectResponse(f"/?lang={_lang(request)}", status_code=303)
    return received_page(request, _lang(request), code)


@router.get("/v1/attachments/{attachment_id}")
async def attachment(request: Request, attachment_id: uuid.UUID) -> Response:
    with database_answers():
        row = await intake(request).attachments.get(attachment_id)
    if row is None:
        raise Problem("attachment_id", "Không có tệp đính kèm này", "No such attachment", status=404)
    # Served as a download that the browser must not reinterpret: uploads are the public's files.
    # A header value is printable ASCII: a line feed in a name once made every download of it a 500.
    # The name as written goes in filename* (RFC 6266): "ảnh hiện trường.jpg" was saved "_nh hi_n tr__ng.jpg".
    # Named as its kind here too, for files kept before names were (web_form.named_as_its_kind).
    name = named_as_its_kind(row["name"], row["media_type"])
    ascii_name = "".join(c if c.isascii() and c.isprintable() else "?" for c in name)
    ascii_name = ascii_name.replace('"', "'").replace("\\", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
    return Response(row["content"], media_type=row["media_type"],
                    headers={"Content-Disposition": disposition,
                             "X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=86400"})
