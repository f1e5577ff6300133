"""What intake keeps of Zalo's refusal of a reply: its code, never its words, which may quote the
reply (the citizen's name, address and tracking code) into intake's log and its table of replies."""

import httpx
import pytest

from contracts.zalo_token import FixedToken
from services.intake.oa_client import OAClient, SendFailed

REPLY = "Chào chị Nguyễn Thị Lan, phản ánh 7K3MQ-9PDX4 tại 12 Lê Lợi đã được tiếp nhận."


@pytest.mark.parametrize(("status", "answer", "kept"), [
    (400, {"error": 400, "message": f"bad request: {REPLY}"}, "HTTP 400"),
    (200, {"error": -230, "message": f"user has not interacted; text was {REPLY}"}, "OA API error -230"),
])
async def test_a_refusal_is_kept_as_its_code_alone(status, answer, kept):
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=answer))
    async with httpx.AsyncClient(transport=transport) as client:
        oa = OAClient(client, "https://openapi.zalo.example", FixedToken("token"), token_wait=1)
        with pytest.raises(SendFailed) as refused:
            await oa.send_text("zalo-user-1", REPLY)
    assert str(refused.value) == kept
    assert not refused.value.retry
