"""A citizen on Zalo, end to end: the chatbot's replies (intake) and the citizen's messages about
the case (the notifier) go out with the OA access token intake keeps fresh against the stand-ins'
OAuth server, as deployed. The stand-in Zalo API answers -216 to any token it did not issue."""

import json
import random
import secrets
import time

import httpx

from services.intake.dialogue import RECEIVED
from services.intake.zalo_events import signature
from tests.support.mesh import wait_for


class ZaloUser:
    def __init__(self, mesh):
        self.mesh, self.user_id = mesh, str(secrets.randbelow(10**18))
        self.clock = int(time.time() * 1000)

    def says(self, text: str | None = None, event_name: str = "user_send_text") -> None:
        self.clock += 1000
        event = {"app_id": self.mesh.env["INTAKE_ZALO_APP_ID"], "user_id_by_app": self.user_id,
                 "event_name": event_name, "timestamp": str(self.clock), "sender": {"id": self.user_id},
                 "recipient": {"id": "388613280878808645"}}
        if text is not None:
            event["message"] = {"msg_id": secrets.token_hex(10), "text": text}
        body = json.dumps(event, ensure_ascii=False).encode()
        mac = signature(event["app_id"], body, event["timestamp"], self.mesh.env["INTAKE_ZALO_OA_SECRET_KEY"])
        answer = httpx.post(self.mesh.url("intake") + "/v1/channels/zalo/webhook", content=body, timeout=10,
                            headers={"X-ZEvent-Signature": mac, "Content-Type": "application/json"})
        assert answer.status_code == 200, answer.text

    def heard(self) -> list[str]:
        messages = httpx.get(self.mesh.url("gateways") + "/messages", timeout=10).json()
        return [m["text"] for m in messages if m["channel"] == "zalo" and m["to"] == self.user_id]

    def hears(self, count: int) -> list[str]:
        return wait_for(lambda: len(self.heard()) >= count and self.heard(), 30, what=f"{count} Zalo messages")


def dialogue() -> tuple[tuple[str, str], ...]:
    """The citizen's answers and what the chatbot asks next. A phone of its own: with one another
    test's request used, the case was that request's duplicate, and never routed."""
    return (("1", "địa chỉ"), ("12 Nguyễn Văn Trỗi, Phường 12, Quận Phú Nhuận", "số điện thoại"),
            (f"0903 {random.randrange(10**6):06d}", "mô tả sự việc"),
            ("Gia đình 5 người đang cách ly, hết gạo.", "ĐỒNG Ý"))


def test_a_zalo_citizen_talks_to_the_chatbot_and_hears_of_the_case_on_zalo(mesh):
    citizen = ZaloUser(mesh)
    citizen.says(event_name="follow")
    assert "lĩnh vực" in citizen.hears(2)[1]
    for heard, (answer, asked) in enumerate(dialogue(), start=3):
        citizen.says(answer)
        assert asked in citizen.hears(heard)[-1]
    citizen.says("Đồng ý")
    # The chatbot's receipt gives the code; the notifier's message about the case may come first.
    receipts = wait_for(lambda: [t for t in citizen.heard() if t.startswith(RECEIVED.split("{code}")[0])],
                        30, what="the chatbot's receipt")
    receipt = receipts[0]
    code = receipt.split("Mã tra cứu: ")[1][:11]
    wait_for(lambda: [t for t in citizen.heard() if code in t and "đã được chuyển đến" in t], 60,
             what="the notifier's Zalo message that the case went to a unit")
