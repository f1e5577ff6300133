"""The reference district client takes only the notifier's signed webhooks when it shares its key."""

import time

from fastapi.testclient import TestClient

from examples.district_client import create_app
from services.notifier.providers import SIGNATURE_HEADER, signature

KEY = b"the city's webhook key"
BODY = b'{"delivery_id":"d-1","template":"assignment","event":{"event_type":"AssignmentIssued"}}'
URL = "/units/hcmc-2021/26734/assignments"


def test_a_webhook_not_signed_with_the_notifiers_key_lately_is_refused(monkeypatch):
    monkeypatch.setenv("DISTRICT_UNITS", "none")
    monkeypatch.setenv("NOTIFIER_WEBHOOK_SIGNING_KEY", KEY.decode())
    now = int(time.time())
    with TestClient(create_app()) as district:
        def post(header: str | None, body: bytes = BODY) -> int:
            headers = {"Idempotency-Key": "d-1"} | ({SIGNATURE_HEADER: header} if header is not None else {})
            return district.post(URL, content=body, headers=headers).status_code

        assert post(signature(KEY, BODY, now)) == 200
        assert post(None) == 401
        assert post(signature(b"someone else's key", BODY, now)) == 401
        assert post(signature(KEY, BODY, now), body=BODY.replace(b"assignment", b"assignmenT")) == 401
        assert post(signature(KEY, BODY, now - 3600)) == 401, "a signed POST recorded an hour ago and sent again"
        assert post("t=abc,v1=00") == 401
        # Sent again under another Idempotency-Key (which the signature does not cover): still one delivery.
        again = district.post(URL, content=BODY, headers={"Idempotency-Key": "d-2",
                                                          SIGNATURE_HEADER: signature(KEY, BODY, now)})
        assert again.json() == {"ok": True, "first_time": False}
        nested = b"[" * 100_000 + b"]" * 100_000  # past what json reads: a 400, not the client's 500
        assert post(signature(KEY, nested, now), body=nested) == 400
